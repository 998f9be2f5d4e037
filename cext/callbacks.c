/*
 * CaChannel._ca, callbacks.c: what libca calls: callback entry/exit
 * accounting against interpreter exit, the GIL and the kept thread states of
 * libca's threads, and the trampolines (connection, access rights, get/put
 * completion, monitor events, exceptions, printf).
 */
#include "cachannel.h"

/* ------------------------------------------------------------------------ */
/* Callback plumbing */

/* Returns 0 when the callback must not touch Python at all. The increment
 * comes before the flag test so that the atexit hook, which sets the flag
 * and then waits for cb_inflight to reach 0, never misses a callback that is
 * about to take the GIL: a thread that takes the GIL during finalization is
 * terminated by CPython, which would leave libca's locks held. */
int
cb_enter(void)
{
    atomic_fetch_add(&cb_inflight, 1);
    if (atomic_load(&shutting_down) || PY_FINALIZING()) {
        atomic_fetch_sub(&cb_inflight, 1);
        return 0;
    }
    return 1;
}

void
cb_leave(void)
{
    atomic_fetch_sub(&cb_inflight, 1);
}

/* libca calls back from its own long-lived threads (one per server
 * circuit). A bare PyGILState_Ensure/Release pair creates and destroys a
 * thread state each time, and in 3.11+ that includes mmap/munmap of the
 * frame data stack: about half the cost of a monitor event. So the first
 * callback on such a thread keeps its thread state (one extra Ensure that
 * is never matched) and the thread-exit destructor below deletes it.
 * Threads that already had a thread state (Python threads running
 * pend_event, say) are left alone: Python owns and deletes those. */
#ifndef _WIN32
pthread_key_t pin_key;
int pin_key_ok;

void
pin_release(void *p)
{
    /* after the atexit hook the interpreter deletes every thread state
     * itself, and taking the GIL there could hang this thread */
    if (!cb_enter())
        return;
    PyEval_RestoreThread((PyThreadState *)p);
    PyThreadState_Clear((PyThreadState *)p);
    PyThreadState_DeleteCurrent();
    cb_leave();
}
#endif

static PyGILState_STATE
gil_take(void)
{
#ifndef _WIN32
    if (pin_key_ok && !pthread_getspecific(pin_key)
        && !PyGILState_GetThisThreadState()) {
        PyGILState_STATE g = PyGILState_Ensure();
        if (pthread_setspecific(pin_key, PyThreadState_Get()) == 0)
            PyGILState_Ensure();   /* the pin; its count is never released */
        return g;
    }
#endif
    return PyGILState_Ensure();
}

/* Print and swallow the pending exception. PyErr_Print is not used: it
 * would exit the process on SystemExit and keep the traceback alive in
 * sys.last_value. */
static void
report_error_as(const char *header)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (!t)
        return;
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb && v)
        PyException_SetTraceback(v, tb);
    PySys_WriteStderr("%s", header);
    PyErr_Display(t, v, tb);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    PyErr_Clear();
}

static void
report_callback_error(void)
{
    report_error_as("Exception in CaChannel callback:\n");
}

/* Calls callback(arg) and consumes the reference to arg (which may be NULL
 * after a failed build, then the build error is reported instead). */
static void
call_user(PyObject *callback, PyObject *arg)
{
    if (!arg) {
        report_callback_error();
        return;
    }
    PyObject *r = PyObject_CallOneArg(callback, arg);
    Py_DECREF(arg);
    if (!r)
        report_callback_error();
    else
        Py_DECREF(r);
}

/* ------------------------------------------------------------------------ */
/* Callbacks from libca */


request_ctx *
request_new(PyObject *cb, ChannelObject *chan, int use_numpy, int is_get, PyObject *augment,
            PyObject *queue)
{
    request_ctx *r = PyMem_Malloc(sizeof(*r));
    if (!r) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_INCREF(cb);
    Py_INCREF(chan);
    r->callback = cb;
    r->chan = chan;
    r->use_numpy = use_numpy;
    r->is_get = is_get;
    r->augment = augment ? Py_NewRef(augment) : NULL;
    r->queue = queue ? (EvQueueObject *)Py_NewRef(queue) : NULL;
    r->queued = 0;
    r->prev = NULL;
    r->next = chan->requests;
    if (chan->requests)
        chan->requests->prev = r;
    chan->requests = r;
    return r;
}

void
request_free(request_ctx *r)
{
    ChannelObject *c = r->chan;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->requests = r->next;
    if (r->next)
        r->next->prev = r->prev;
    Py_DECREF(r->callback);
    Py_XDECREF(r->augment);
    Py_XDECREF((PyObject *)r->queue);
    PyMem_Free(r);
    Py_DECREF(c);
}

/* After ca_clear_channel/ca_context_destroy: libca dropped the requests
 * still outstanding without calling back. A reply already queued in an
 * EventQueue stays (its take() frees it, without calling back: the channel
 * is no longer valid). Each free may run Python code (a callback's
 * finalizer) that changes the list: the walk starts over after each. */
void
requests_cancelled(ChannelObject *c)
{
    Py_INCREF(c);   /* the last request may hold the last reference */
    for (;;) {
        request_ctx *r = c->requests;
#ifndef _WIN32
        while (r && evqueue_holds(r))
            r = r->next;
#endif
        if (!r)
            break;
        request_free(r);
    }
    Py_DECREF(c);
}

/* {"chid", "type", "count", "status"}: the put callback's argument and the
 * start of the get/monitor one */
static PyObject *
request_dict(ChannelObject *chan, struct event_handler_args *args)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (PyDict_SetItem(d, keys[K_CHID], (PyObject *)chan) < 0 ||
        set_key(d, K_TYPE, DBR_OBJ(args->type)) < 0 ||
        set_key(d, K_COUNT, PyLong_FromLong(args->count)) < 0 ||
        set_key(d, K_STATUS, ECA_OBJ(args->status)) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

PyObject *
event_dict(ChannelObject *chan, struct event_handler_args *args, int use_numpy)
{
    return event_dict_as(chan, args, use_numpy, K_VALUE);
}

/* the event dict with the value under keys[value_key] */
PyObject *
event_dict_as(ChannelObject *chan, struct event_handler_args *args, int use_numpy, int value_key)
{
    PyObject *value;
    if (args->status == ECA_NORMAL && args->dbr && args->type >= 0
        && args->type <= LAST_BUFFER_TYPE) {
        value = decode_dbr(args->type, args->count, args->dbr, use_numpy);
        if (!value)
            return NULL;
    } else {
        value = Py_NewRef(Py_None);
    }
    PyObject *d = request_dict(chan, args);
    if (!d || set_key(d, value_key, value) < 0) {
        Py_XDECREF(d);
        if (!d)
            Py_DECREF(value);
        return NULL;
    }
    return d;
}

/* what a get/put request's callback gets: a put's status dict, a get's
 * event dict or (augment=) the augmented value; NULL with an exception */
PyObject *
request_value(request_ctx *r, struct event_handler_args *args)
{
    if (!r->is_get)
        return request_dict(r->chan, args);
    if (r->augment) {
        PyObject *v;
        if (augment_event(r->augment, args, &v) != 0)
            return v;   /* made, or NULL with the exception */
    }
    return event_dict(r->chan, args, r->use_numpy);
}

/* a get or put request's one callback (both handlers: the request knows which) */
static void
request_done(struct event_handler_args *args)
{
    if (!cb_enter())
        return;   /* the request context leaks at exit; nothing may be freed now */
    PyGILState_STATE g = gil_take();
    request_ctx *r = args->usr;
    if (r->chan->valid)   /* else cleared, its libca clear deferred (chan_leave) */
        call_user(r->callback, request_value(r, args));
    request_free(r);
    PyGILState_Release(g);
    cb_leave();
}

void
get_handler(struct event_handler_args args)
{
    request_done(&args);
}

void
put_handler(struct event_handler_args args)
{
    request_done(&args);
}

/* create_subscription(pv_callback=): an event whose value is no structured
 * dict (a plain DBR type's value, or None with an error status) is 3.x's
 * epicsArgs after one key rename; made here, it spares the 3.x face three
 * Python calls per update. Structured values go to the plain callback,
 * which converts them in Python. */
static int
pv_form(struct event_handler_args *args)
{
    return (args->type >= DBR_STRING && args->type <= DBR_DOUBLE)
           || args->status != ECA_NORMAL || !args->dbr;
}

/* as the 3.x face reports a raising monitor callback (core.errors) */
static const char PV_EVENT_ERROR[] = "CaChannel: exception in monitor callback (ignored):\n";

static void
pv_event(EvidObject *e, struct event_handler_args *args)
{
    /* the callback may clear this subscription: hold it until done (its
     * fn and args live as long as it does) */
    Py_INCREF(e);
    PyObject *d = event_dict_as(e->chan, args, e->use_numpy, K_PV_VALUE);
    if (!d) {
        report_error_as(PV_EVENT_ERROR);
    } else {
        PyObject *argv[2] = {d, e->pv_args};
        PyObject *r = PyObject_Vectorcall(e->pv_fn, argv, 2, NULL);
        Py_DECREF(d);
        if (!r)
            report_error_as(PV_EVENT_ERROR);
        else
            Py_DECREF(r);
    }
    Py_DECREF(e);
}

void
event_handler(struct event_handler_args args)
{
    if (!cb_enter())
        return;
    PyGILState_STATE g = gil_take();
    EvidObject *e = args.usr;
    if (e->valid && e->chan->valid && e->pv_fn && pv_form(&args)) {
        pv_event(e, &args);
    } else if (e->valid && e->chan->valid && e->callback) {
        /* the callback may clear this subscription: hold it until done */
        Py_INCREF(e);
        PyObject *cb = Py_NewRef(e->callback);
        PyObject *arg = NULL;
        if (!e->augment || augment_event(e->augment, &args, &arg) == 0)
            arg = event_dict(e->chan, &args, e->use_numpy);
        call_user(cb, arg);   /* NULL: reports the exception set */
        Py_DECREF(cb);
        Py_DECREF(e);
    }
    PyGILState_Release(g);
    cb_leave();
}

void
connection_handler(struct connection_handler_args args)
{
    if (!cb_enter())
        return;
    /* Asked before the GIL is taken: asked from Python in the callback, each
     * was one more GIL release and re-take on this thread, which waits for
     * busy Python threads each time (100,000 channels connecting). */
    short ft = -1;
    unsigned int n = 0;
    if (args.op == CA_OP_CONN_UP) {
        ft = ca_field_type(args.chid);
        n = (unsigned int)ca_element_count(args.chid);
    }
    PyGILState_STATE g = gil_take();
    ChannelObject *c = ca_puser(args.chid);
    if (c && c->valid) {
        if (!c->ch)   /* ran inside ca_create_channel, before it returned */
            c->ch = args.chid;
        if (args.op == CA_OP_CONN_UP) {
            c->native_type = ft;
            c->native_count = n;
        }
        if (c->conn_cb) {
            Py_INCREF(c);
            PyObject *cb = Py_NewRef(c->conn_cb);
            PyObject *d = PyDict_New();
            if (d && (PyDict_SetItem(d, keys[K_CHID], (PyObject *)c) < 0 ||
                      set_key(d, K_OP, OP_OBJ(args.op)) < 0))
                Py_CLEAR(d);
            call_user(cb, d);
            Py_DECREF(cb);
            Py_DECREF(c);
        }
    }
    PyGILState_Release(g);
    cb_leave();
}

void
access_handler(struct access_rights_handler_args args)
{
    if (!cb_enter())
        return;
    PyGILState_STATE g = gil_take();
    ChannelObject *c = ca_puser(args.chid);
    if (c && c->valid && c->access_cb) {
        if (!c->ch)
            c->ch = args.chid;
        Py_INCREF(c);
        PyObject *cb = Py_NewRef(c->access_cb);
        PyObject *d = PyDict_New();
        if (d && (PyDict_SetItem(d, keys[K_CHID], (PyObject *)c) < 0 ||
                  PyDict_SetItem(d, keys[K_READ_ACCESS],
                                 args.ar.read_access ? Py_True : Py_False) < 0 ||
                  PyDict_SetItem(d, keys[K_WRITE_ACCESS],
                                 args.ar.write_access ? Py_True : Py_False) < 0))
            Py_CLEAR(d);
        call_user(cb, d);
        Py_DECREF(cb);
        Py_DECREF(c);
    }
    PyGILState_Release(g);
    cb_leave();
}

static PyObject *
text_or_empty(const char *s)
{
    if (!s)
        return PyUnicode_FromString("");
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

void
exception_handler(struct exception_handler_args args)
{
    if (!cb_enter())
        return;
    PyGILState_STATE g = gil_take();
    exc_slot *slot = args.usr;
    if (slot && slot->callback) {
        PyObject *cb = Py_NewRef(slot->callback);
        PyObject *ch = NULL;
        if (args.chid) {
            /* the handler is per context, so the channel may belong to
             * another user of libca (e.g. the cffi backend) whose puser is
             * not ours: find it among our channels instead of trusting it */
            for (ChannelObject *c = live_channels; c; c = c->next) {
                if (c->ch == args.chid && c->valid) {
                    ch = Py_NewRef((PyObject *)c);
                    break;
                }
            }
        }
        if (!ch)
            ch = Py_NewRef(Py_None);
        PyObject *type = DBR_OBJ(args.type), *stat = ECA_OBJ(args.stat);
        PyObject *op = OP_OBJ(args.op);
        PyObject *ctx = text_or_empty(args.ctx), *file = text_or_empty(args.pFile);
        PyObject *d = NULL;
        if (type && stat && op && ctx && file)
            d = Py_BuildValue("{s:O,s:O,s:l,s:O,s:O,s:O,s:O,s:O,s:I}",
                              "chid", ch, "type", type, "count", args.count,
                              "state", stat, "stat", stat, "op", op, "ctx", ctx,
                              "file", file, "lineNo", args.lineNo);
        Py_XDECREF(type);
        Py_XDECREF(stat);
        Py_XDECREF(op);
        Py_XDECREF(ctx);
        Py_XDECREF(file);
        Py_DECREF(ch);
        call_user(cb, d);
        Py_DECREF(cb);
    }
    PyGILState_Release(g);
    cb_leave();
}

int
printf_handler(const char *fmt, va_list ap)
{
    /* format before taking the GIL; the stack buffer keeps threads apart */
    char buf[1024];
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    if (!cb_enter())
        return n;
    PyGILState_STATE g = gil_take();
    if (printf_callback) {
        PyObject *cb = Py_NewRef(printf_callback);
        call_user(cb, PyUnicode_DecodeUTF8(buf, (Py_ssize_t)strlen(buf), "replace"));
        Py_DECREF(cb);
    } else {
        fputs(buf, stderr);
    }
    PyGILState_Release(g);
    cb_leave();
    return n;
}
