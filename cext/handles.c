/*
 * CaChannel._ca, handles.c: the chid, evid and Context types and their
 * validity: the registry of live channels, context generations, and what
 * clearing a channel or destroying a context leaves behind.
 */
#include "cachannel.h"

ChannelObject *live_channels;

void
registry_add(ChannelObject *c)
{
    c->prev = NULL;
    c->next = live_channels;
    if (live_channels)
        live_channels->prev = c;
    live_channels = c;
}

void
registry_remove(ChannelObject *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (live_channels == c)
        live_channels = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void
channel_dealloc(ChannelObject *self)
{
    Py_XDECREF(self->conn_cb);
    Py_XDECREF(self->access_cb);
    /* no evids here: each linked one holds a reference to this channel */
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
channel_repr(ChannelObject *self)
{
    return PyUnicode_FromFormat("<chid %R%s>", self->name ? self->name : Py_None,
                                self->valid ? "" : " (cleared)");
}

static PyObject *
channel_native_type(ChannelObject *self, void *closure)
{
    if (self->native_type < 0)
        Py_RETURN_NONE;
    return DBF_OBJ(self->native_type);
}

static PyObject *
channel_native_count(ChannelObject *self, void *closure)
{
    if (self->native_type < 0)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->native_count);
}

static PyGetSetDef channel_getset[] = {
    {"native_type", (getter)channel_native_type, NULL,
     "DBF type at the last connection seen by the connection callback (None before)", NULL},
    {"native_count", (getter)channel_native_count, NULL,
     "element count at the last connection seen by the connection callback (None before)", NULL},
    {NULL}
};

PyTypeObject ChannelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "CaChannel._ca.chid",
    .tp_basicsize = sizeof(ChannelObject),
    .tp_dealloc = (destructor)channel_dealloc,
    .tp_repr = (reprfunc)channel_repr,
    .tp_getset = channel_getset,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Channel handle from create_channel (opaque).",
};

static void
evid_dealloc(EvidObject *self)
{
    Py_XDECREF(self->chan);
    Py_XDECREF(self->callback);
    Py_XDECREF(self->augment);
    Py_XDECREF(self->pv_fn);
    Py_XDECREF(self->pv_args);
#ifndef _WIN32
    if (self->queue) {   /* libca is done with this evid: drop its queued events */
        evqueue_purge(self->queue, self);
        Py_DECREF((PyObject *)self->queue);
    }
#endif
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
evid_repr(EvidObject *self)
{
    return PyUnicode_FromFormat("<evid of %R%s>", self->chan ? (PyObject *)self->chan : Py_None,
                                self->valid ? "" : " (cleared)");
}

PyTypeObject EvidType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "CaChannel._ca.evid",
    .tp_basicsize = sizeof(EvidObject),
    .tp_dealloc = (destructor)evid_dealloc,
    .tp_repr = (reprfunc)evid_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Subscription handle from create_subscription (opaque).",
};

/* The generation of the live context at ctx (a new one if not known yet);
 * 0 with an exception set on failure. */
static unsigned long long
context_gen(struct ca_client_context *ctx)
{
    PyObject *key = PyLong_FromVoidPtr(ctx);
    if (!key)
        return 0;
    PyObject *g = PyDict_GetItemWithError(ctx_gens, key);
    unsigned long long gen;
    if (g) {
        gen = PyLong_AsUnsignedLongLong(g);
    } else if (PyErr_Occurred()) {
        gen = 0;
    } else {
        gen = next_ctx_gen++;
        g = PyLong_FromUnsignedLongLong(gen);
        if (!g || PyDict_SetItem(ctx_gens, key, g) < 0)
            gen = 0;
        Py_XDECREF(g);
    }
    Py_DECREF(key);
    return gen;
}

void
context_forget(struct ca_client_context *ctx)
{
    PyObject *key = PyLong_FromVoidPtr(ctx);
    if (!key || PyDict_DelItem(ctx_gens, key) < 0)
        PyErr_Clear();
    if (key && PySet_Add(dead_ctxs, key) < 0)
        PyErr_Clear();
    Py_XDECREF(key);
}

/* ctx is alive (libca just made it, or a channel in it) */
void
context_seen_alive(struct ca_client_context *ctx)
{
    if (!ctx || PySet_GET_SIZE(dead_ctxs) == 0)
        return;
    PyObject *key = PyLong_FromVoidPtr(ctx);
    if (!key || PySet_Discard(dead_ctxs, key) < 0)
        PyErr_Clear();
    Py_XDECREF(key);
}

/* Before create_context/attach_context: when the calling thread's current
 * context is one destroyed (by another thread), drop that dangling pointer
 * so that libca gives the thread a new or the given context. */
void
detach_if_destroyed(void)
{
    if (PySet_GET_SIZE(dead_ctxs) == 0)
        return;
    struct ca_client_context *cur = ca_current_context();  /* thread-private read */
    if (!cur)
        return;
    PyObject *key = PyLong_FromVoidPtr(cur);
    int dead = key ? PySet_Contains(dead_ctxs, key) : -1;
    Py_XDECREF(key);
    if (dead < 0)
        PyErr_Clear();
    if (dead > 0)
        ca_detach_context();
}

PyObject *
context_new(struct ca_client_context *ctx)
{
    unsigned long long gen = context_gen(ctx);
    if (!gen)
        return NULL;
    ContextObject *o = PyObject_New(ContextObject, &ContextType);
    if (o) {
        o->ctx = ctx;
        o->gen = gen;
        o->epoch = fork_epoch;
    }
    return (PyObject *)o;
}

/* The libca context behind a Context object, or NULL with ValueError set
 * when it was destroyed (or inherited across fork): libca would use freed
 * memory (SIGABRT on its mutex) if handed such a pointer. */
struct ca_client_context *
context_live(ContextObject *o)
{
    if (o->epoch != fork_epoch) {
        PyErr_SetString(PyExc_ValueError,
                        "this CA context was inherited from the parent process across "
                        "fork(); it cannot be used in the child (the first CA call in the "
                        "child creates a new context)");
        return NULL;
    }
    PyObject *key = PyLong_FromVoidPtr(o->ctx);
    if (!key)
        return NULL;
    PyObject *g = PyDict_GetItemWithError(ctx_gens, key);
    Py_DECREF(key);
    if (!g && PyErr_Occurred())
        return NULL;
    if (!g || PyLong_AsUnsignedLongLong(g) != o->gen) {
        PyErr_SetString(PyExc_ValueError,
                        "this CA context has been destroyed (destroy_context); "
                        "a new one is made by create_context or on demand by the next CA call");
        return NULL;
    }
    return o->ctx;
}

static Py_hash_t
context_hash(ContextObject *self)
{
    return _Py_HashPointer(self->ctx);
}

static PyObject *
context_richcompare(PyObject *a, PyObject *b, int op)
{
    if (!PyObject_TypeCheck(b, &ContextType) || (op != Py_EQ && op != Py_NE))
        Py_RETURN_NOTIMPLEMENTED;
    ContextObject *x = (ContextObject *)a, *y = (ContextObject *)b;
    int eq = x->ctx == y->ctx && x->gen == y->gen && x->epoch == y->epoch;
    if (op == Py_NE)
        eq = !eq;
    return PyBool_FromLong(eq);
}

static PyObject *
context_repr(ContextObject *self)
{
    return PyUnicode_FromFormat("<ca_client_context %p>", (void *)self->ctx);
}

PyTypeObject ContextType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "CaChannel._ca.Context",
    .tp_basicsize = sizeof(ContextObject),
    .tp_dealloc = (destructor)PyObject_Del,
    .tp_repr = (reprfunc)context_repr,
    .tp_hash = (hashfunc)context_hash,
    .tp_richcompare = context_richcompare,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A CA client context (from current_context).",
};

/* Wait with the GIL released until no other thread is inside a libca call
 * on this channel. Called after valid was cleared, so no new call starts. */
void
channel_quiesce(ChannelObject *c)
{
    while (c->inuse > 0) {
        Py_BEGIN_ALLOW_THREADS
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        Py_END_ALLOW_THREADS
    }
}

/* Mark every channel of ctx dead before libca frees them. The registry is
 * walked and unlinked without releasing the GIL (another thread may clear
 * and free any channel once it runs); only then are the calls still inside
 * libca on those channels awaited (GIL released). */
int
invalidate_context_channels(struct ca_client_context *ctx, PyObject *dead, int reason)
{
    for (ChannelObject *c = live_channels; c; ) {
        ChannelObject *next = c->next;
        if (c->ctx == ctx || ctx == NULL) {
            if (PyList_Append(dead, (PyObject *)c) < 0)
                return -1;
            c->valid = 0;
            c->dead_reason = reason;
            c->clear_pending = 0;   /* libca frees it with the context */
            mark_evids_dead(c);
            registry_remove(c);
            Py_DECREF(c);   /* the keep-alive reference; dead holds one */
        }
        c = next;
    }
    return 0;
}

void
forget_channel_refs(ChannelObject *c)
{
    requests_cancelled(c);
    Py_CLEAR(c->conn_cb);
    Py_CLEAR(c->access_cb);
    mark_evids_dead(c);
    /* each unlink may run Python code (a callback's finalizer) that unlinks
     * others: take the head again every time */
    while (c->evids)
        evid_unlink(c, c->evids);
}

void
mark_evids_dead(ChannelObject *c)
{
    for (EvidObject *e = c->evids; e; e = e->ev_next)
        e->valid = 0;
}

/* e joins c's list of live subscriptions, which takes a reference */
void
evid_link(ChannelObject *c, EvidObject *e)
{
    Py_INCREF(e);
    e->ev_prev = NULL;
    e->ev_next = c->evids;
    if (c->evids)
        c->evids->ev_prev = e;
    c->evids = e;
    e->linked = 1;
}

/* e leaves c's list (if it is in it) and the list's reference goes */
void
evid_unlink(ChannelObject *c, EvidObject *e)
{
    if (!e->linked)
        return;
    if (e->ev_prev)
        e->ev_prev->ev_next = e->ev_next;
    else
        c->evids = e->ev_next;
    if (e->ev_next)
        e->ev_next->ev_prev = e->ev_prev;
    e->ev_prev = e->ev_next = NULL;
    e->linked = 0;
    Py_DECREF(e);
}

/* ca_clear_channel for a channel already marked dead (GIL held). inuse
 * stays raised over the libca call so that destroy_context waits for it. */
int
finish_clear(ChannelObject *c)
{
    int s;
    chid ch = c->ch;
    c->clear_pending = 0;
    registry_remove(c);
    c->inuse++;
    Py_BEGIN_ALLOW_THREADS
    s = ca_clear_channel(ch);
    Py_END_ALLOW_THREADS
    c->inuse--;
    /* libca has cancelled everything: no callback refers to c any more */
    Py_INCREF(c);
    forget_channel_refs(c);
    Py_DECREF(c);   /* keep-alive */
    Py_DECREF(c);
    return s;
}

/* The end of a libca call on c: a clear_channel that came meanwhile (from
 * another thread, or from a callback libca ran inside this very call) is
 * carried out now, by the last call to leave. */
void
chan_leave(ChannelObject *c)
{
    c->inuse--;
    if (c->inuse == 0 && c->clear_pending)
        finish_clear(c);
}
