/*
 * CaChannel._ca: the C extension backend of CaChannel.ca (ca-api.md section 2).
 *
 * Rules that shape this file:
 *  - every libca call is made with the GIL released: with a preemptive
 *    context libca runs callbacks in its own threads while holding its
 *    callback lock, and those callbacks need the GIL;
 *  - callbacks take the GIL with PyGILState_Ensure, and never run Python
 *    code once the module's atexit hook has started (see cb_enter);
 *  - the Python objects handed to libca as "puser"/"usr" are kept alive by a
 *    reference libca conceptually owns, dropped only after libca promised
 *    not to call back with them (clear_channel, clear_subscription, after a
 *    get/put callback ran);
 *  - the reference conversions are CaChannel._common.decode/encode; the C
 *    code here reproduces decode exactly and takes over encode only for the
 *    common cases whose result is obvious (numbers, numpy arrays of the right
 *    dtype); everything else goes through the Python encode.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <math.h>
#include <float.h>
#include <string.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>

#include <cadef.h>
#include <db_access.h>
#include <epicsThread.h>

#if PY_VERSION_HEX >= 0x030D0000
#define PY_FINALIZING() Py_IsFinalizing()
#else
#define PY_FINALIZING() _Py_IsFinalizing()
#endif

#define POSIX_EPOCH_OFFSET 631152000

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *Py_NewRef(PyObject *o) { Py_INCREF(o); return o; }
static int
PyModule_AddObjectRef(PyObject *m, const char *name, PyObject *v)
{
    Py_INCREF(v);
    if (PyModule_AddObject(m, name, v) < 0) {
        Py_DECREF(v);
        return -1;
    }
    return 0;
}
#endif

/* ------------------------------------------------------------------------ */
/* Module state. Single-phase init: the extension supports one interpreter,
 * as libca's callbacks cannot tell interpreters apart anyway. */

static PyObject *m_module;
static PyObject *py_encode;          /* CaChannel._common.encode */

/* Buffers of callback-less reads (get/sg_get) that libca may still fill,
 * held until the settle point of their own request set: pend_io of the
 * channel's context, or sg_block/sg_reset/sg_delete of the group (a group
 * belongs to one context). One set per (context, group); gid -1 is the
 * context's pend_io set. A settle point in one context or group never
 * releases another's buffers. */
typedef struct read_set {
    struct ca_client_context *ctx;
    long long gid;
    PyObject *held;      /* list of buffers */
    struct read_set *next;
} read_set;
static read_set *read_sets;

/* Liveness of context handles: a Context object is alive while its
 * (address, generation) is the one recorded here; destroy_context forgets
 * the address, fork() forgets them all (and bumps fork_epoch). */
static PyObject *ctx_gens;           /* dict: address (int) -> generation (int) */
/* addresses of contexts destroyed here and not seen alive since: another
 * thread that was attached to one still has it as its current context in
 * libca's thread-private slot (ca_context_destroy only detaches the calling
 * thread), a dangling pointer libca would use on that thread's next call */
static PyObject *dead_ctxs;          /* set of addresses (int) */
static unsigned long long next_ctx_gen = 1;
static unsigned long fork_epoch;

#define ECA_CACHE 512
static PyObject *eca_members[ECA_CACHE];
static PyObject *dbr_members[40];    /* index t+1, t = -1..38 */
static PyObject *dbf_members[8];     /* index t+1, t = -1..6 */
static PyObject *op_members[8];
static PyObject *cs_members[5];
static PyObject *cond_members[22];
static PyObject *sev_members[4];

/* Dict keys of the callback arguments, made once: Py_BuildValue("{s:O..}")
 * creates and hashes every key string again per event, which was most of
 * the cost of delivering a scalar monitor event. */
enum { K_CHID, K_TYPE, K_COUNT, K_STATUS, K_VALUE, K_SEVERITY, K_STAMP, K_SECONDS,
       K_NANOSECONDS, K_TIMESTAMP, K_OP, K_READ_ACCESS, K_WRITE_ACCESS, K_N };
static const char *const key_names[K_N] = {
    "chid", "type", "count", "status", "value", "severity", "stamp", "seconds",
    "nanoseconds", "timestamp", "op", "read_access", "write_access",
};
static PyObject *keys[K_N];

/* callbacks in flight; the atexit hook waits for them to drain */
static atomic_int cb_inflight;
static atomic_int shutting_down;

static PyObject *printf_callback;    /* protected by the GIL */

/* Exception handler slots: one per context, so that libca can hold the
 * slot pointer as "usr" while the callable inside is swapped under the GIL;
 * freed by destroy_context once libca has forgotten the pointer. */
typedef struct exc_slot {
    struct ca_client_context *ctx;
    PyObject *callback;
    struct exc_slot *next;
} exc_slot;
static exc_slot *exc_slots;

static PyObject *
cached(PyObject **table, long lo, long hi, long v)
{
    if (v >= lo && v <= hi && table[v - lo]) {
        Py_INCREF(table[v - lo]);
        return table[v - lo];
    }
    return PyLong_FromLong(v);
}
#define ECA_OBJ(s)  cached(eca_members, 0, ECA_CACHE - 1, (long)(s))
/* libca reports "no type" as -1 in a long on success but as the 32-bit
 * pattern 0xFFFFFFFF on some failures: read the low 32 bits as signed */
#define DBR_OBJ(t)  cached(dbr_members, -1, 38, (long)(int32_t)(t))
#define DBF_OBJ(t)  cached(dbf_members, -1, 6, (long)(t))
#define OP_OBJ(o)   cached(op_members, 0, 7, (long)(o))
#define CS_OBJ(s)   cached(cs_members, 0, 4, (long)(s))
#define COND_OBJ(s) cached(cond_members, 0, 21, (long)(s))
#define SEV_OBJ(s)  cached(sev_members, 0, 3, (long)(s))

/* ------------------------------------------------------------------------ */
/* Callback plumbing */

/* Returns 0 when the callback must not touch Python at all. The increment
 * comes before the flag test so that the atexit hook, which sets the flag
 * and then waits for cb_inflight to reach 0, never misses a callback that is
 * about to take the GIL: a thread that takes the GIL during finalization is
 * terminated by CPython, which would leave libca's locks held. */
static int
cb_enter(void)
{
    atomic_fetch_add(&cb_inflight, 1);
    if (atomic_load(&shutting_down) || PY_FINALIZING()) {
        atomic_fetch_sub(&cb_inflight, 1);
        return 0;
    }
    return 1;
}

static void
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
#include <pthread.h>
static pthread_key_t pin_key;
static int pin_key_ok;

static void
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
report_callback_error(void)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (!t)
        return;
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb && v)
        PyException_SetTraceback(v, tb);
    PySys_WriteStderr("Exception in CaChannel callback:\n");
    PyErr_Display(t, v, tb);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    PyErr_Clear();
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
/* Handle types */

typedef struct ChannelObject {
    PyObject_HEAD
    chid ch;
    int valid;
    int inuse;           /* calls in progress with the GIL released */
    int clear_pending;   /* clear_channel came while inuse: the last call clears */
    int dead_reason;     /* why invalid: DEAD_CLEARED, DEAD_CONTEXT, DEAD_FORK */
    struct ca_client_context *ctx;
    PyObject *conn_cb;
    PyObject *access_cb;
    PyObject *evids;     /* list of live EvidObjects (strong refs) */
    PyObject *name;      /* the name as given (str) */
    struct ChannelObject *prev, *next;   /* registry of live channels */
    struct request_ctx *requests;   /* get/put callbacks not yet run */
} ChannelObject;

typedef struct {
    PyObject_HEAD
    evid ev;
    int valid;
    int use_numpy;
    ChannelObject *chan;
    PyObject *callback;
} EvidObject;

typedef struct {
    PyObject_HEAD
    struct ca_client_context *ctx;
    unsigned long long gen;   /* see ctx_gens */
    unsigned long epoch;      /* fork_epoch when it was made */
} ContextObject;

enum { DEAD_CLEARED = 0, DEAD_CONTEXT = 1, DEAD_FORK = 2 };

enum { BUF_RAW = 0, BUF_ARRAY = 1, BUF_OUT = 2 };

typedef struct {
    PyObject_HEAD
    long type;
    long count;
    int use_numpy;
    int mode;
    PyObject *buf;       /* bytes (raw DBR struct) or ndarray (plain values) */
    PyObject *result;    /* BUF_OUT: out or out[:count] */
} DBRValueObject;

static PyTypeObject ChannelType, EvidType, ContextType, DBRValueType;
static ChannelObject *live_channels;

static void
registry_add(ChannelObject *c)
{
    c->prev = NULL;
    c->next = live_channels;
    if (live_channels)
        live_channels->prev = c;
    live_channels = c;
}

static void
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
    Py_XDECREF(self->evids);
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
channel_repr(ChannelObject *self)
{
    return PyUnicode_FromFormat("<chid %R%s>", self->name ? self->name : Py_None,
                                self->valid ? "" : " (cleared)");
}

static PyTypeObject ChannelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "CaChannel._ca.chid",
    .tp_basicsize = sizeof(ChannelObject),
    .tp_dealloc = (destructor)channel_dealloc,
    .tp_repr = (reprfunc)channel_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Channel handle from create_channel (opaque).",
};

static void
evid_dealloc(EvidObject *self)
{
    Py_XDECREF(self->chan);
    Py_XDECREF(self->callback);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
evid_repr(EvidObject *self)
{
    return PyUnicode_FromFormat("<evid of %R%s>", self->chan ? (PyObject *)self->chan : Py_None,
                                self->valid ? "" : " (cleared)");
}

static PyTypeObject EvidType = {
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

static void
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
static void
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
static void
detach_if_destroyed(void)
{
    if (PySet_GET_SIZE(dead_ctxs) == 0)
        return;
    struct ca_client_context *cur;
    Py_BEGIN_ALLOW_THREADS
    cur = ca_current_context();
    Py_END_ALLOW_THREADS
    if (!cur)
        return;
    PyObject *key = PyLong_FromVoidPtr(cur);
    int dead = key ? PySet_Contains(dead_ctxs, key) : -1;
    Py_XDECREF(key);
    if (dead < 0)
        PyErr_Clear();
    if (dead > 0) {
        Py_BEGIN_ALLOW_THREADS
        ca_detach_context();
        Py_END_ALLOW_THREADS
    }
}

static PyObject *
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
static struct ca_client_context *
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

static PyTypeObject ContextType = {
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

/* ------------------------------------------------------------------------ */
/* Argument helpers */

/* 1: live channel in *out; 0: None or cleared; -1: TypeError set */
static int
get_channel(PyObject *obj, ChannelObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    if (!PyObject_TypeCheck(obj, &ChannelType)) {
        PyErr_Format(PyExc_TypeError, "expected a chid from create_channel, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    ChannelObject *c = (ChannelObject *)obj;
    if (!c->valid)
        return 0;
    *out = c;
    return 1;
}

static const char *
dead_text(int reason)
{
    switch (reason) {
    case DEAD_CONTEXT:
        return "the channel's context has been destroyed (destroy_context)";
    case DEAD_FORK:
        return "the channel was created in the parent process before fork(); "
               "create a new channel in this process";
    default:
        return "the channel has been cleared";
    }
}

static ChannelObject *
info_channel(PyObject *obj)
{
    ChannelObject *c;
    int r = get_channel(obj, &c);
    if (r < 0)
        return NULL;
    if (r == 0) {
        if (obj == Py_None)
            PyErr_SetString(PyExc_ValueError, "the channel is None");
        else
            PyErr_SetString(PyExc_ValueError, dead_text(((ChannelObject *)obj)->dead_reason));
        return NULL;
    }
    return c;
}

/* -2 for None; -1 with TypeError set; else 0 and *v */
static int
opt_index(PyObject *obj, const char *what, long *v)
{
    if (obj == NULL || obj == Py_None)
        return -2;
    PyObject *i = PyNumber_Index(obj);
    if (!i) {
        PyErr_Format(PyExc_TypeError, "%s must be an integer or None, not %.100s",
                     what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (overflow)
        x = overflow > 0 ? LONG_MAX : LONG_MIN;
    else if (x == -1 && PyErr_Occurred())
        return -1;
    if (x > LONG_MAX) x = LONG_MAX;
    if (x < LONG_MIN) x = LONG_MIN;
    *v = (long)x;
    return 0;
}

/* callback argument of create_channel/get/put/create_subscription */
static int
check_callback(PyObject *cb)
{
    if (cb && cb != Py_None && !PyCallable_Check(cb)) {
        PyErr_Format(PyExc_TypeError, "callback must be callable or None, not %.100s",
                     Py_TYPE(cb)->tp_name);
        return -1;
    }
    return 0;
}

/* Vectorcall argument binding for the per-request functions (get, put,
 * create_channel): PyArg_ParseTupleAndKeywords builds a tuple and a dict
 * and walks a format string, which cost more than the rest of a put.
 * Slots not given stay as the caller initialised them. Keyword names are
 * matched by identity first (call sites use interned literals), then by
 * value; the errors read like CPython's. */
static int
bind_args(const char *fname, const char *const *names, int nmax, int nreq,
          PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **slots)
{
    if (nargs > nmax) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)",
                     fname, nmax, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        slots[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int j;
        for (j = 0; j < nmax; j++) {
            if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0)
                break;
        }
        if (j == nmax) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'",
                         fname, key);
            return -1;
        }
        if (j < nargs) {
            PyErr_Format(PyExc_TypeError,
                         "argument for %s() given by name ('%s') and position (%d)",
                         fname, names[j], j + 1);
            return -1;
        }
        slots[j] = args[nargs + k];
    }
    for (int j = 0; j < nreq; j++) {
        if (!slots[j]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %d)",
                         fname, names[j], j + 1);
            return -1;
        }
    }
    return 0;
}

/* the 'p' converter: -1 with an exception set */
static int
opt_bool(PyObject *obj, int dflt)
{
    return obj ? PyObject_IsTrue(obj) : dflt;
}

static int
parse_timeout(PyObject *obj, double *t)
{
    double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "timeout must be a number, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (v != v || v < 0) {
        PyErr_Format(PyExc_ValueError, "timeout must be >= 0, not %R", obj);
        return -1;
    }
    *t = v;
    return 0;
}

static void chan_leave(ChannelObject *c);

/* Release the GIL around a libca call on a channel. The caller checked
 * c->valid with no Python code run since (any Python code, a conversion
 * or a finalizer run by an allocation, may clear the channel or destroy its
 * context). inuse keeps the chid alive meanwhile: clear_channel defers to
 * the last call (chan_leave), destroy_context waits for it. */
#define CHAN_CALL(c, stmt) do { \
        (c)->inuse++; \
        Py_BEGIN_ALLOW_THREADS \
        stmt; \
        Py_END_ALLOW_THREADS \
        chan_leave(c); \
    } while (0)

/* Wait with the GIL released until no other thread is inside a libca call
 * on this channel. Called after valid was cleared, so no new call starts. */
static void
channel_quiesce(ChannelObject *c)
{
    while (c->inuse > 0) {
        Py_BEGIN_ALLOW_THREADS
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        Py_END_ALLOW_THREADS
    }
}

/* ------------------------------------------------------------------------ */
/* Decoding received DBR buffers: the C twin of CaChannel._common.decode. */

static int
elem_kind(long t)
{
    if (t == DBR_PUT_ACKT || t == DBR_PUT_ACKS)
        return DBR_ENUM;
    if (t == DBR_STSACK_STRING || t == DBR_CLASS_NAME)
        return DBR_STRING;
    return (int)(t % 7);
}

static const int npy_of_kind[7] = {
    -1, NPY_INT16, NPY_FLOAT32, NPY_UINT16, NPY_UINT8, NPY_INT32, NPY_FLOAT64
};
static const size_t size_of_kind[7] = {MAX_STRING_SIZE, 2, 4, 2, 1, 4, 8};

static PyObject *
decode_cstring(const char *p, size_t max)
{
    size_t n = strnlen(p, max);
    PyObject *s = PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, NULL);
    if (!s && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        s = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
    }
    return s;
}

/* units and state strings: always str, latin-1 when not UTF-8 */
static PyObject *
meta_text(const char *p, size_t max)
{
    size_t n = strnlen(p, max);
    PyObject *s = PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, NULL);
    if (!s && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        s = PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
    }
    return s;
}

static PyObject *
scalar_of_kind(int kind, const char *p)
{
    switch (kind) {
    case 0: return decode_cstring(p, MAX_STRING_SIZE);
    case 1: { epicsInt16 v; memcpy(&v, p, 2); return PyLong_FromLong(v); }
    case 2: { epicsFloat32 v; memcpy(&v, p, 4); return PyFloat_FromDouble((double)v); }
    case 3: { epicsUInt16 v; memcpy(&v, p, 2); return PyLong_FromLong(v); }
    case 4: { epicsUInt8 v; memcpy(&v, p, 1); return PyLong_FromLong(v); }
    case 5: { epicsInt32 v; memcpy(&v, p, 4); return PyLong_FromLong(v); }
    default: { epicsFloat64 v; memcpy(&v, p, 8); return PyFloat_FromDouble(v); }
    }
}

static PyObject *
decode_values(int kind, long count, const char *p, int use_numpy)
{
    if (count == 1)
        return scalar_of_kind(kind, p);
    if (count < 0)
        count = 0;
    if (use_numpy && kind != 0) {
        npy_intp n = count;
        PyObject *arr = PyArray_SimpleNew(1, &n, npy_of_kind[kind]);
        if (arr && n)
            memcpy(PyArray_DATA((PyArrayObject *)arr), p, (size_t)n * size_of_kind[kind]);
        return arr;
    }
    PyObject *list = PyList_New(count);
    if (!list)
        return NULL;
    for (long i = 0; i < count; i++) {
        PyObject *item = scalar_of_kind(kind, p + (size_t)i * size_of_kind[kind]);
        if (!item) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static int
set_item(PyObject *d, const char *key, PyObject *v)
{
    if (!v)
        return -1;
    int r = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return r;
}

#define SET(key, expr) do { if (set_item(d, key, (expr)) < 0) goto fail; } while (0)

/* d[keys[k]] = v, consuming v (NULL: the error that made it) */
static int
set_key(PyObject *d, int k, PyObject *v)
{
    if (!v)
        return -1;
    int r = PyDict_SetItem(d, keys[k], v);
    Py_DECREF(v);
    return r;
}

static int
set_sts(PyObject *d, dbr_short_t status, dbr_short_t severity)
{
    if (set_key(d, K_STATUS, COND_OBJ(status)) < 0)
        return -1;
    return set_key(d, K_SEVERITY, SEV_OBJ(severity));
}

static int
set_stamp(PyObject *d, const epicsTimeStamp *ts)
{
    long long secs = (long long)ts->secPastEpoch + POSIX_EPOCH_OFFSET;
    PyObject *stamp = PyDict_New();
    if (!stamp)
        return -1;
    if (set_key(stamp, K_SECONDS, PyLong_FromLongLong(secs)) < 0 ||
        set_key(stamp, K_NANOSECONDS, PyLong_FromUnsignedLong((unsigned long)ts->nsec)) < 0 ||
        set_key(stamp, K_TIMESTAMP,
                PyFloat_FromDouble((double)secs + (double)ts->nsec * 1e-9)) < 0) {
        Py_DECREF(stamp);
        return -1;
    }
    return set_key(d, K_STAMP, stamp);
}

#define LIMITS6(S, conv) \
    SET("upper_disp_limit", conv((S)->upper_disp_limit)); \
    SET("lower_disp_limit", conv((S)->lower_disp_limit)); \
    SET("upper_alarm_limit", conv((S)->upper_alarm_limit)); \
    SET("upper_warning_limit", conv((S)->upper_warning_limit)); \
    SET("lower_warning_limit", conv((S)->lower_warning_limit)); \
    SET("lower_alarm_limit", conv((S)->lower_alarm_limit))
#define LIMITS8(S, conv) \
    LIMITS6(S, conv); \
    SET("upper_ctrl_limit", conv((S)->upper_ctrl_limit)); \
    SET("lower_ctrl_limit", conv((S)->lower_ctrl_limit))
#define INT_(x) PyLong_FromLong((long)(x))
#define FLT_(x) PyFloat_FromDouble((double)(x))

static int
set_enum_strs(PyObject *d, dbr_short_t no_str, char strs[][MAX_ENUM_STRING_SIZE])
{
    if (set_item(d, "no_str", PyLong_FromLong(no_str)) < 0)
        return -1;
    int n = no_str < 0 ? 0 : (no_str > MAX_ENUM_STATES ? MAX_ENUM_STATES : no_str);
    PyObject *t = PyTuple_New(n);
    if (!t)
        return -1;
    for (int i = 0; i < n; i++) {
        PyObject *s = meta_text(strs[i], MAX_ENUM_STRING_SIZE);
        if (!s) {
            Py_DECREF(t);
            return -1;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return set_item(d, "strs", t);
}

static PyObject *
decode_dbr(long t, long count, const void *buf, int use_numpy)
{
    if (t < 0 || t > LAST_BUFFER_TYPE) {
        PyErr_Format(PyExc_ValueError, "invalid DBR type %ld", t);
        return NULL;
    }
    const char *base = (const char *)buf;
    int kind = elem_kind(t);
    PyObject *value = decode_values(kind, count, base + dbr_value_offset[t], use_numpy);
    if (!value)
        return NULL;
    if (t <= DBR_DOUBLE || (t >= DBR_PUT_ACKT && t != DBR_STSACK_STRING))
        return value;
    PyObject *d = PyDict_New();
    if (!d) {
        Py_DECREF(value);
        return NULL;
    }
    if (set_key(d, K_VALUE, value) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    /* every structured DBR starts with status and severity */
    const struct dbr_sts_string *sts = buf;
    if (set_sts(d, sts->status, sts->severity) < 0)
        goto fail;
    if (t >= DBR_TIME_STRING && t <= DBR_TIME_DOUBLE) {
        /* the stamp follows status/severity in every TIME struct */
        const struct dbr_time_string *tm = buf;
        if (set_stamp(d, &tm->stamp) < 0)
            goto fail;
        return d;
    }
    switch (t) {
    /* GR/CTRL numeric structs differ only in their C type, the limit count
     * and whether they carry a precision (FLOAT/DOUBLE do) */
#define META_CASE(TAG, STRUCT, LIMITS, CONV) \
    case TAG: { \
        const struct STRUCT *s = buf; \
        SET("units", meta_text(s->units, MAX_UNITS_SIZE)); \
        LIMITS(s, CONV); \
        break; \
    }
#define META_CASE_PREC(TAG, STRUCT, LIMITS) \
    case TAG: { \
        const struct STRUCT *s = buf; \
        SET("precision", INT_(s->precision)); \
        SET("units", meta_text(s->units, MAX_UNITS_SIZE)); \
        LIMITS(s, FLT_); \
        break; \
    }
    META_CASE(DBR_GR_SHORT, dbr_gr_short, LIMITS6, INT_)
    META_CASE(DBR_CTRL_SHORT, dbr_ctrl_short, LIMITS8, INT_)
    META_CASE(DBR_GR_CHAR, dbr_gr_char, LIMITS6, INT_)
    META_CASE(DBR_CTRL_CHAR, dbr_ctrl_char, LIMITS8, INT_)
    META_CASE(DBR_GR_LONG, dbr_gr_long, LIMITS6, INT_)
    META_CASE(DBR_CTRL_LONG, dbr_ctrl_long, LIMITS8, INT_)
    META_CASE_PREC(DBR_GR_FLOAT, dbr_gr_float, LIMITS6)
    META_CASE_PREC(DBR_CTRL_FLOAT, dbr_ctrl_float, LIMITS8)
    META_CASE_PREC(DBR_GR_DOUBLE, dbr_gr_double, LIMITS6)
    META_CASE_PREC(DBR_CTRL_DOUBLE, dbr_ctrl_double, LIMITS8)
#undef META_CASE
#undef META_CASE_PREC
    case DBR_GR_ENUM: {
        struct dbr_gr_enum *s = (struct dbr_gr_enum *)buf;
        if (set_enum_strs(d, s->no_str, s->strs) < 0)
            goto fail;
        break;
    }
    case DBR_CTRL_ENUM: {
        struct dbr_ctrl_enum *s = (struct dbr_ctrl_enum *)buf;
        if (set_enum_strs(d, s->no_str, s->strs) < 0)
            goto fail;
        break;
    }
    case DBR_STSACK_STRING: {
        const struct dbr_stsack_string *s = buf;
        SET("ackt", INT_(s->ackt));
        SET("acks", SEV_OBJ(s->acks));
        break;
    }
    default:
        break;   /* STS_*, GR_STRING, CTRL_STRING: status and severity only */
    }
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* DBRValue */

static void
dbrvalue_dealloc(DBRValueObject *self)
{
    /* a read libca may still fill holds its buffer in a read_set */
    Py_XDECREF(self->buf);
    Py_XDECREF(self->result);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
dbrvalue_get(DBRValueObject *self, PyObject *Py_UNUSED(ignored))
{
    switch (self->mode) {
    case BUF_OUT:
        Py_INCREF(self->result);
        return self->result;
    case BUF_ARRAY:
        if (self->use_numpy) {
            Py_INCREF(self->buf);
            return self->buf;
        }
        return decode_values(elem_kind(self->type), self->count,
                             PyArray_DATA((PyArrayObject *)self->buf), 0);
    default:
        return decode_dbr(self->type, self->count, PyBytes_AS_STRING(self->buf),
                          self->use_numpy);
    }
}

static PyObject *
dbrvalue_get_use_numpy(DBRValueObject *self, void *c)
{
    return PyBool_FromLong(self->use_numpy);
}

static int
dbrvalue_set_use_numpy(DBRValueObject *self, PyObject *v, void *c)
{
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete use_numpy");
        return -1;
    }
    int b = PyObject_IsTrue(v);
    if (b < 0)
        return -1;
    self->use_numpy = b;
    return 0;
}

static PyObject *
dbrvalue_get_dbrtype(DBRValueObject *self, void *c)
{
    return DBR_OBJ(self->type);
}

static PyObject *
dbrvalue_get_count(DBRValueObject *self, void *c)
{
    return PyLong_FromLong(self->count);
}

static PyObject *
dbrvalue_repr(DBRValueObject *self)
{
    return PyUnicode_FromFormat("<DBRValue type=%ld count=%ld>", self->type, self->count);
}

static PyMethodDef dbrvalue_methods[] = {
    {"get", (PyCFunction)dbrvalue_get, METH_NOARGS,
     "The received value (valid after pend_io/sg_block returned NORMAL)."},
    {NULL}
};

static PyGetSetDef dbrvalue_getset[] = {
    {"use_numpy", (getter)dbrvalue_get_use_numpy, (setter)dbrvalue_set_use_numpy,
     "return arrays as numpy arrays", NULL},
    {"dbrtype", (getter)dbrvalue_get_dbrtype, NULL, "requested DBR type", NULL},
    {"count", (getter)dbrvalue_get_count, NULL, "requested element count", NULL},
    {NULL}
};

static PyTypeObject DBRValueType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "CaChannel._ca.DBRValue",
    .tp_basicsize = sizeof(DBRValueObject),
    .tp_dealloc = (destructor)dbrvalue_dealloc,
    .tp_repr = (reprfunc)dbrvalue_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Result of a callback-less get/sg_get.",
    .tp_methods = dbrvalue_methods,
    .tp_getset = dbrvalue_getset,
};

/* A DBRValue with a buffer for count x t. Plain numeric arrays read with
 * use_numpy get a numpy array that libca fills directly (no copy later). */
static DBRValueObject *
dbrvalue_new(long t, long count, int use_numpy, void **data)
{
    DBRValueObject *v = PyObject_New(DBRValueObject, &DBRValueType);
    if (!v)
        return NULL;
    v->type = t;
    v->count = count;
    v->use_numpy = use_numpy;
    v->result = NULL;
    if (use_numpy && t >= DBR_SHORT && t <= DBR_DOUBLE && count > 1) {
        npy_intp n = count;
        v->mode = BUF_ARRAY;
        v->buf = PyArray_SimpleNew(1, &n, npy_of_kind[t]);
        if (!v->buf)
            goto fail;
        *data = PyArray_DATA((PyArrayObject *)v->buf);
    } else {
        v->mode = BUF_RAW;
        v->buf = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)dbr_size_n(t, count));
        if (!v->buf)
            goto fail;
        memset(PyBytes_AS_STRING(v->buf), 0, PyBytes_GET_SIZE(v->buf));
        *data = PyBytes_AS_STRING(v->buf);
    }
    return v;
fail:
    v->buf = NULL;
    Py_DECREF(v);
    return NULL;
}

/* A failed request: libca never got the buffer, free it normally. */
static void
dbrvalue_discard(DBRValueObject *v)
{
    Py_DECREF(v);
}

static read_set *
read_set_find(struct ca_client_context *ctx, long long gid, int create)
{
    for (read_set *r = read_sets; r; r = r->next)
        if (r->ctx == ctx && r->gid == gid)
            return r;
    if (!create)
        return NULL;
    read_set *r = PyMem_Malloc(sizeof(*r));
    if (!r) {
        PyErr_NoMemory();
        return NULL;
    }
    r->held = PyList_New(0);
    if (!r->held) {
        PyMem_Free(r);
        return NULL;
    }
    r->ctx = ctx;
    r->gid = gid;
    r->next = read_sets;
    read_sets = r;
    return r;
}

/* Hold buf until the settle point of (ctx, gid): libca writes into it when
 * the reply comes. -1 with an exception set. */
static int
read_hold(struct ca_client_context *ctx, long long gid, PyObject *buf)
{
    read_set *r = read_set_find(ctx, gid, 1);
    return r ? PyList_Append(r->held, buf) : -1;
}

/* How many buffers (ctx, gid) holds: taken before a settle point, as reads
 * issued by other threads while it runs are not settled by it. */
static Py_ssize_t
read_mark(struct ca_client_context *ctx, long long gid)
{
    read_set *r = read_set_find(ctx, gid, 0);
    return r ? PyList_GET_SIZE(r->held) : 0;
}

/* The settle point of (ctx, gid) returned: the reads held before it (mark)
 * are done or cancelled by libca. */
static void
read_settle(struct ca_client_context *ctx, long long gid, Py_ssize_t mark)
{
    read_set *r = read_set_find(ctx, gid, 0);
    if (r && mark > 0 && PyList_SetSlice(r->held, 0, mark, NULL) < 0)
        PyErr_Clear();
}

/* Forget the sets of ctx (every gid, or only gid when all is 0): the
 * context was destroyed or the group deleted. ctx NULL and all: every set
 * (in a child after fork, where no libca thread of the parent runs). */
static void
read_drop(struct ca_client_context *ctx, long long gid, int all)
{
    read_set **pp = &read_sets;
    while (*pp) {
        read_set *r = *pp;
        if ((ctx == NULL && all) || (r->ctx == ctx && (all || r->gid == gid))) {
            *pp = r->next;
            Py_DECREF(r->held);
            PyMem_Free(r);
        } else {
            pp = &r->next;
        }
    }
}

static struct ca_client_context *
current_ctx(void)
{
    struct ca_client_context *ctx;
    Py_BEGIN_ALLOW_THREADS
    ctx = ca_current_context();
    Py_END_ALLOW_THREADS
    return ctx;
}

/* ------------------------------------------------------------------------ */
/* Callbacks from libca */

/* A get/put callback request. Linked into its channel's list (under the
 * GIL) so that clear_channel/destroy_context can free the ones libca
 * cancelled without calling back. */
typedef struct request_ctx {
    PyObject *callback;
    ChannelObject *chan;
    int use_numpy;
    struct request_ctx *prev, *next;
} request_ctx;

static request_ctx *
request_new(PyObject *cb, ChannelObject *chan, int use_numpy)
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
    r->prev = NULL;
    r->next = chan->requests;
    if (chan->requests)
        chan->requests->prev = r;
    chan->requests = r;
    return r;
}

static void
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
    PyMem_Free(r);
    Py_DECREF(c);
}

/* After ca_clear_channel/ca_context_destroy: libca dropped the requests
 * still outstanding without calling back. */
static void
requests_cancelled(ChannelObject *c)
{
    Py_INCREF(c);   /* the last request may hold the last reference */
    while (c->requests)
        request_free(c->requests);
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

static PyObject *
event_dict(ChannelObject *chan, struct event_handler_args *args, int use_numpy)
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
    if (!d || set_key(d, K_VALUE, value) < 0) {
        Py_XDECREF(d);
        if (!d)
            Py_DECREF(value);
        return NULL;
    }
    return d;
}

static void
get_handler(struct event_handler_args args)
{
    if (!cb_enter())
        return;   /* the request context leaks at exit; nothing may be freed now */
    PyGILState_STATE g = gil_take();
    request_ctx *r = args.usr;
    if (r->chan->valid)   /* else cleared, its libca clear deferred (chan_leave) */
        call_user(r->callback, event_dict(r->chan, &args, r->use_numpy));
    request_free(r);
    PyGILState_Release(g);
    cb_leave();
}

static void
put_handler(struct event_handler_args args)
{
    if (!cb_enter())
        return;
    PyGILState_STATE g = gil_take();
    request_ctx *r = args.usr;
    if (r->chan->valid)
        call_user(r->callback, request_dict(r->chan, &args));
    request_free(r);
    PyGILState_Release(g);
    cb_leave();
}

static void
event_handler(struct event_handler_args args)
{
    if (!cb_enter())
        return;
    PyGILState_STATE g = gil_take();
    EvidObject *e = args.usr;
    if (e->valid && e->chan->valid && e->callback) {
        /* the callback may clear this subscription: hold it until done */
        Py_INCREF(e);
        PyObject *cb = Py_NewRef(e->callback);
        call_user(cb, event_dict(e->chan, &args, e->use_numpy));
        Py_DECREF(cb);
        Py_DECREF(e);
    }
    PyGILState_Release(g);
    cb_leave();
}

static void
connection_handler(struct connection_handler_args args)
{
    if (!cb_enter())
        return;
    PyGILState_STATE g = gil_take();
    ChannelObject *c = ca_puser(args.chid);
    if (c && c->valid) {
        if (!c->ch)   /* ran inside ca_create_channel, before it returned */
            c->ch = args.chid;
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

static void
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

static void
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

static int
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

/* ------------------------------------------------------------------------ */
/* Contexts */

static exc_slot *
slot_for(struct ca_client_context *ctx, int create)
{
    for (exc_slot *s = exc_slots; s; s = s->next)
        if (s->ctx == ctx)
            return s;
    if (!create)
        return NULL;
    /* raw malloc: the slot must outlive the interpreter, libca may still
     * hold it when Python's allocators are gone */
    exc_slot *s = PyMem_RawCalloc(1, sizeof(*s));
    if (!s) {
        PyErr_NoMemory();
        return NULL;
    }
    s->ctx = ctx;
    s->next = exc_slots;
    exc_slots = s;
    return s;
}

static PyObject *
ca_create_context_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"preemptive_callback", NULL};
    int preemptive = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:create_context", kwlist, &preemptive))
        return NULL;
    detach_if_destroyed();
    int s;
    struct ca_client_context *ctx;
    Py_BEGIN_ALLOW_THREADS
    s = ca_context_create(preemptive ? ca_enable_preemptive_callback
                                     : ca_disable_preemptive_callback);
    ctx = ca_current_context();
    Py_END_ALLOW_THREADS
    if (s == ECA_NORMAL)
        context_seen_alive(ctx);
    return ECA_OBJ(s);
}

static void mark_evids_dead(ChannelObject *c);

/* Mark every channel of ctx dead before libca frees them. The registry is
 * walked and unlinked without releasing the GIL (another thread may clear
 * and free any channel once it runs); only then are the calls still inside
 * libca on those channels awaited (GIL released). */
static int
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

static void requests_cancelled(ChannelObject *c);

static void
forget_channel_refs(ChannelObject *c)
{
    requests_cancelled(c);
    Py_CLEAR(c->conn_cb);
    Py_CLEAR(c->access_cb);
    if (c->evids) {
        Py_ssize_t n = PyList_GET_SIZE(c->evids);
        for (Py_ssize_t i = 0; i < n; i++)
            ((EvidObject *)PyList_GET_ITEM(c->evids, i))->valid = 0;
        if (PyList_SetSlice(c->evids, 0, n, NULL) < 0)
            PyErr_Clear();
    }
}

static void
mark_evids_dead(ChannelObject *c)
{
    Py_ssize_t n = c->evids ? PyList_GET_SIZE(c->evids) : 0;
    for (Py_ssize_t i = 0; i < n; i++)
        ((EvidObject *)PyList_GET_ITEM(c->evids, i))->valid = 0;
}

/* ca_clear_channel for a channel already marked dead (GIL held). inuse
 * stays raised over the libca call so that destroy_context waits for it. */
static int
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
static void
chan_leave(ChannelObject *c)
{
    c->inuse--;
    if (c->inuse == 0 && c->clear_pending)
        finish_clear(c);
}

static PyObject *
ca_destroy_context_py(PyObject *m, PyObject *noargs)
{
    struct ca_client_context *ctx = current_ctx();
    if (!ctx)
        Py_RETURN_NONE;
    PyObject *dead = PyList_New(0);
    if (!dead)
        return NULL;
    if (invalidate_context_channels(ctx, dead, DEAD_CONTEXT) < 0) {
        /* out of memory half way: the channels listed are dead, the
         * others stay usable and the context stays */
        Py_DECREF(dead);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(dead); i++)
        channel_quiesce((ChannelObject *)PyList_GET_ITEM(dead, i));
    context_forget(ctx);
    Py_BEGIN_ALLOW_THREADS
    ca_context_destroy();
    Py_END_ALLOW_THREADS
    /* libca cancelled every outstanding read of the context */
    read_drop(ctx, 0, 1);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(dead); i++)
        forget_channel_refs((ChannelObject *)PyList_GET_ITEM(dead, i));
    Py_DECREF(dead);
    /* the context is gone, and with it libca's pointer to the slot */
    for (exc_slot **pp = &exc_slots; *pp; pp = &(*pp)->next) {
        if ((*pp)->ctx == ctx) {
            exc_slot *s = *pp;
            *pp = s->next;
            Py_CLEAR(s->callback);
            PyMem_RawFree(s);
            break;
        }
    }
    Py_CLEAR(printf_callback);
    Py_RETURN_NONE;
}

static PyObject *
ca_attach_context_py(PyObject *m, PyObject *arg)
{
    if (!PyObject_TypeCheck(arg, &ContextType)) {
        PyErr_Format(PyExc_TypeError, "expected a context from current_context(), not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    int s;
    struct ca_client_context *ctx = context_live((ContextObject *)arg);
    if (!ctx)
        return NULL;
    detach_if_destroyed();
    Py_BEGIN_ALLOW_THREADS
    s = ca_attach_context(ctx);
    Py_END_ALLOW_THREADS
    return ECA_OBJ(s);
}

static PyObject *
ca_detach_context_py(PyObject *m, PyObject *noargs)
{
    Py_BEGIN_ALLOW_THREADS
    ca_detach_context();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *
ca_current_context_py(PyObject *m, PyObject *noargs)
{
    struct ca_client_context *ctx;
    Py_BEGIN_ALLOW_THREADS
    ctx = ca_current_context();
    Py_END_ALLOW_THREADS
    if (!ctx)
        Py_RETURN_NONE;
    if (PySet_GET_SIZE(dead_ctxs) > 0) {
        /* the thread is still "attached" to a context another thread
         * destroyed: it has none (a Context made of it would be live) */
        PyObject *key = PyLong_FromVoidPtr(ctx);
        int dead = key ? PySet_Contains(dead_ctxs, key) : -1;
        Py_XDECREF(key);
        if (dead < 0)
            return NULL;
        if (dead)
            Py_RETURN_NONE;
    }
    return context_new(ctx);
}

static PyObject *
ca_show_context_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"context", "level", NULL};
    PyObject *context = Py_None, *levelobj = NULL;
    long level = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:show_context", kwlist, &context, &levelobj))
        return NULL;
    if (levelobj && opt_index(levelobj, "level", &level) == -1)
        return NULL;
    if (level < 0)
        level = 0;
    if (context != Py_None && !PyObject_TypeCheck(context, &ContextType)) {
        PyErr_Format(PyExc_TypeError, "expected a context or None, not %.100s",
                     Py_TYPE(context)->tp_name);
        return NULL;
    }
    struct ca_client_context *ctx = NULL;
    if (context != Py_None && !(ctx = context_live((ContextObject *)context)))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (ctx)
        ca_context_status(ctx, (unsigned)level);
    else
        ca_client_status((unsigned)level);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* Channels */

static PyObject *status_pair(int s, PyObject *obj);

static PyObject *
ca_create_channel_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"name", "callback", "priority"};
    PyObject *a[3] = {NULL, Py_None, NULL};
    if (bind_args("create_channel", names, 3, 1, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *nameobj = a[0], *cb = a[1], *prioobj = a[2];
    long prio = 0;
    PyObject *raw;
    if (PyUnicode_Check(nameobj))
        raw = PyUnicode_AsUTF8String(nameobj);
    else if (PyBytes_Check(nameobj))
        raw = Py_NewRef(nameobj);
    else {
        PyErr_Format(PyExc_TypeError, "channel name must be str or bytes, not %.100s",
                     Py_TYPE(nameobj)->tp_name);
        return NULL;
    }
    if (!raw)
        return NULL;
    if (check_callback(cb) < 0 || (prioobj && opt_index(prioobj, "priority", &prio) == -1)) {
        Py_DECREF(raw);
        return NULL;
    }
    if ((Py_ssize_t)strlen(PyBytes_AS_STRING(raw)) != PyBytes_GET_SIZE(raw)) {
        Py_DECREF(raw);
        return Py_BuildValue("(NO)", ECA_OBJ(ECA_BADSTR), Py_None);
    }
    if (prio < CA_PRIORITY_MIN || prio > CA_PRIORITY_MAX) {
        Py_DECREF(raw);
        return Py_BuildValue("(NO)", ECA_OBJ(ECA_BADPRIORITY), Py_None);
    }
    ChannelObject *c = PyObject_New(ChannelObject, &ChannelType);
    if (!c) {
        Py_DECREF(raw);
        return NULL;
    }
    c->ch = NULL;
    c->inuse = 0;
    c->clear_pending = 0;
    c->dead_reason = DEAD_CLEARED;
    c->ctx = NULL;
    c->access_cb = NULL;
    c->prev = c->next = NULL;
    c->requests = NULL;
    c->conn_cb = cb == Py_None ? NULL : Py_NewRef(cb);
    c->evids = PyList_New(0);
    c->name = PyUnicode_Check(nameobj) ? Py_NewRef(nameobj)
              : PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), "replace");
    c->valid = 1;
    if (!c->evids || !c->name) {
        c->valid = 0;
        Py_DECREF(c);
        Py_DECREF(raw);
        return NULL;
    }
    /* Fully set up (and kept alive for libca) before libca sees it: the
     * connection callback may run inside ca_create_channel. */
    Py_INCREF(c);
    registry_add(c);
    chid ch = NULL;
    int s;
    caCh *handler = c->conn_cb ? connection_handler : NULL;
    struct ca_client_context *ctx;
    c->inuse++;
    Py_BEGIN_ALLOW_THREADS
    s = ca_create_channel(PyBytes_AS_STRING(raw), handler, c, (capri)prio, &ch);
    ctx = ca_current_context();
    Py_END_ALLOW_THREADS
    Py_DECREF(raw);
    if (s != ECA_NORMAL) {
        c->inuse--;
        c->valid = 0;
        c->clear_pending = 0;
        registry_remove(c);
        Py_CLEAR(c->conn_cb);
        Py_DECREF(c);   /* keep-alive */
        Py_DECREF(c);
        return Py_BuildValue("(NO)", ECA_OBJ(s), Py_None);
    }
    c->ch = ch;
    c->ctx = ctx;
    context_seen_alive(ctx);
    /* a connection callback run inside ca_create_channel may have cleared it */
    chan_leave(c);
    return status_pair(s, (PyObject *)c);
}

static PyObject *
ca_clear_channel_py(PyObject *m, PyObject *arg)
{
    ChannelObject *c;
    int r = get_channel(arg, &c);
    if (r < 0)
        return NULL;
    if (r == 0)
        return ECA_OBJ(ECA_BADCHID);
    /* dead first, so a concurrent clear or a racing callback sees it */
    c->valid = 0;
    c->dead_reason = DEAD_CLEARED;
    mark_evids_dead(c);
    if (c->inuse > 0) {
        /* a libca call on it is in progress: in another thread, or below
         * us in this one (a callback libca runs inside the call, e.g. the
         * access rights handler of replace_access_rights_event). Waiting
         * would deadlock the latter; the call clears it when it returns.
         * It stays in the registry so that destroy_context finds it. */
        c->clear_pending = 1;
        return ECA_OBJ(ECA_NORMAL);
    }
    return ECA_OBJ(finish_clear(c));
}

static PyObject *
ca_change_connection_event_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"chid", "callback", NULL};
    PyObject *obj, *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:change_connection_event", kwlist, &obj, &cb))
        return NULL;
    ChannelObject *c;
    int r = get_channel(obj, &c);
    if (r < 0)
        return NULL;
    if (r == 0)
        return ECA_OBJ(ECA_BADCHID);
    PyObject *old = c->conn_cb;
    c->conn_cb = PyCallable_Check(cb) ? Py_NewRef(cb) : NULL;
    caCh *handler = c->conn_cb ? connection_handler : NULL;
    int s;
    CHAN_CALL(c, s = ca_change_connection_event(c->ch, handler));
    /* released only now: its finalizer may clear this very channel */
    Py_XDECREF(old);
    return ECA_OBJ(s);
}

static PyObject *
ca_replace_access_rights_event_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"chid", "callback", NULL};
    PyObject *obj, *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:replace_access_rights_event", kwlist,
                                     &obj, &cb))
        return NULL;
    ChannelObject *c;
    int r = get_channel(obj, &c);
    if (r < 0)
        return NULL;
    if (r == 0)
        return ECA_OBJ(ECA_BADCHID);
    /* set before the call: libca runs the handler inside it when connected */
    PyObject *old = c->access_cb;
    c->access_cb = PyCallable_Check(cb) ? Py_NewRef(cb) : NULL;
    caArh *handler = c->access_cb ? access_handler : NULL;
    int s;
    CHAN_CALL(c, s = ca_replace_access_rights_event(c->ch, handler));
    /* released only now: its finalizer may clear this very channel */
    Py_XDECREF(old);
    return ECA_OBJ(s);
}

static PyObject *
ca_add_exception_event_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"callback", NULL};
    PyObject *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:add_exception_event", kwlist, &cb))
        return NULL;
    struct ca_client_context *ctx;
    Py_BEGIN_ALLOW_THREADS
    ctx = ca_current_context();
    if (!ctx) {
        /* what libca itself would do on this call */
        ca_context_create(ca_disable_preemptive_callback);
        ctx = ca_current_context();
    }
    Py_END_ALLOW_THREADS
    exc_slot *slot = slot_for(ctx, 1);
    if (!slot)
        return NULL;
    int s;
    if (PyCallable_Check(cb)) {
        Py_XSETREF(slot->callback, Py_NewRef(cb));
        Py_BEGIN_ALLOW_THREADS
        s = ca_add_exception_event(exception_handler, slot);
        Py_END_ALLOW_THREADS
    } else {
        Py_BEGIN_ALLOW_THREADS
        s = ca_add_exception_event(NULL, NULL);
        Py_END_ALLOW_THREADS
        Py_CLEAR(slot->callback);
    }
    return ECA_OBJ(s);
}

static PyObject *
ca_replace_printf_handler_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"callback", NULL};
    PyObject *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:replace_printf_handler", kwlist, &cb))
        return NULL;
    int s;
    if (PyCallable_Check(cb)) {
        Py_XSETREF(printf_callback, Py_NewRef(cb));
        Py_BEGIN_ALLOW_THREADS
        s = ca_replace_printf_handler(printf_handler);
        Py_END_ALLOW_THREADS
    } else {
        Py_BEGIN_ALLOW_THREADS
        s = ca_replace_printf_handler(NULL);
        Py_END_ALLOW_THREADS
        Py_CLEAR(printf_callback);
    }
    return ECA_OBJ(s);
}

/* ------------------------------------------------------------------------ */
/* Request type resolution shared by get/put/subscribe */

/* ECA_NORMAL and *t, or an error status. chtype already checked for type. */
static int
resolve_type(short ft, PyObject *chtype, long given, long *t)
{
    if (chtype == NULL || chtype == Py_None) {
        if (ft < 0 || ft > LAST_TYPE)
            return ECA_BADTYPE;
        *t = ft;
        return ECA_NORMAL;
    }
    if (given < 0 || given > LAST_BUFFER_TYPE)
        return ECA_BADTYPE;
    *t = given;
    return ECA_NORMAL;
}

/* one GIL release for all three: each release/reacquire costs as much as
 * the libca getter itself */
static void
channel_info(ChannelObject *c, short *ft, long *native, int *connected)
{
    unsigned long n;
    enum channel_state st;
    short f;
    CHAN_CALL(c, (f = ca_field_type(c->ch), n = ca_element_count(c->ch),
                  st = ca_state(c->ch)));
    *ft = f;
    *native = (long)n;
    *connected = st == cs_conn;
}

/* Validate out= and pick type/count. -1 with an exception set. */
static int
out_request(PyObject *out, PyObject *chtype, long given_t, PyObject *countobj, long given_n,
            long native, long *t, long *n)
{
    if (!PyArray_Check(out)) {
        PyErr_Format(PyExc_TypeError, "out must be a numpy array, not %.100s",
                     Py_TYPE(out)->tp_name);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)out;
    if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISWRITEABLE(a)) {
        PyErr_SetString(PyExc_ValueError, "out must be a writable C-contiguous numpy array");
        return -1;
    }
    PyArray_Descr *d = PyArray_DESCR(a);
    int tn = d->type_num;
    if (!PyArray_ISNBO(d->byteorder)) {
        tn = -1;
    }
    long dt = -1;
    switch (tn) {
    case NPY_INT16: dt = DBR_SHORT; break;
    case NPY_FLOAT32: dt = DBR_FLOAT; break;
    case NPY_UINT16: dt = DBR_ENUM; break;
    case NPY_UINT8: dt = DBR_CHAR; break;
    case NPY_INT32: dt = DBR_LONG; break;
    case NPY_FLOAT64: dt = DBR_DOUBLE; break;
    default:
        /* int32/int64 spelled as long on some platforms */
        if (tn == NPY_LONG && sizeof(long) == 4) dt = DBR_LONG;
        else if (tn == NPY_INT && sizeof(int) == 4) dt = DBR_LONG;
        break;
    }
    if (chtype == NULL || chtype == Py_None) {
        if (dt < 0) {
            PyErr_Format(PyExc_TypeError, "no DBR type reads into an array of dtype %R",
                         (PyObject *)d);
            return -1;
        }
        *t = dt;
    } else {
        if (given_t < DBR_SHORT || given_t > DBR_DOUBLE || dt != given_t) {
            PyErr_Format(PyExc_TypeError, "out dtype %R does not match DBR type %ld",
                         (PyObject *)d, given_t);
            return -1;
        }
        *t = given_t;
    }
    long size = (long)PyArray_SIZE(a);
    if (countobj == NULL || countobj == Py_None) {
        *n = native < size ? native : size;
    } else {
        if (given_n > size) {
            PyErr_Format(PyExc_ValueError, "count %ld exceeds the size of out (%ld)",
                         given_n, size);
            return -1;
        }
        *n = (given_n <= 0 || given_n > native) ? (native < size ? native : size) : given_n;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* get */

/* (ECA(s), obj), consuming obj */
static PyObject *
status_pair(int s, PyObject *obj)
{
    PyObject *t = PyTuple_New(2);
    PyObject *st = ECA_OBJ(s);
    if (!t || !st) {
        Py_XDECREF(t);
        Py_XDECREF(st);
        Py_DECREF(obj);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, st);
    PyTuple_SET_ITEM(t, 1, obj);
    return t;
}

static PyObject *
status_none(int s)
{
    return status_pair(s, Py_NewRef(Py_None));
}

/* the body shared by get (gid == NULL) and sg_get */
static PyObject *
do_get(CA_SYNC_GID *gid, PyObject *obj, PyObject *chtype, PyObject *countobj, PyObject *cb,
       int use_numpy, PyObject *out)
{
    long given_t = 0, given_n = 0;
    ChannelObject *c;
    int r = get_channel(obj, &c);
    if (r < 0 || check_callback(cb) < 0)
        return NULL;
    if (opt_index(chtype, "chtype", &given_t) == -1 ||
        opt_index(countobj, "count", &given_n) == -1)
        return NULL;
    int with_cb = cb && cb != Py_None;
    if (out && out != Py_None && with_cb) {
        PyErr_SetString(PyExc_ValueError, "out= is for synchronous gets (no callback)");
        return NULL;
    }
    /* the conversions above ran Python code (__index__), which may have
     * cleared the channel or destroyed its context */
    if (r == 0 || !c->valid)
        return status_none(ECA_BADCHID);
    long native, t = 0, n;
    int connected;
    short ft;
    channel_info(c, &ft, &native, &connected);
    int has_out = out && out != Py_None;
    if (has_out) {
        if (out_request(out, chtype, given_t, countobj, given_n, native, &t, &n) < 0)
            return NULL;
        if (!connected)
            return status_none(ECA_DISCONN);
    } else {
        int s = resolve_type(ft, chtype, given_t, &t);
        if (s != ECA_NORMAL)
            return status_none(s);
        if (!connected)
            return status_none(ECA_DISCONN);
        int no_count = countobj == NULL || countobj == Py_None;
        if (with_cb)
            n = (no_count || given_n < 0 || given_n > native) ? native : given_n;
        else
            n = (no_count || given_n <= 0 || given_n > native) ? native : given_n;
        if (t == DBR_CLASS_NAME)
            n = 1;   /* one string whatever the channel's count; the server
                        pads further elements with garbage */
    }
    int s;
    if (with_cb) {
        if (!c->valid)
            return status_none(ECA_BADCHID);
        request_ctx *rq = request_new(cb, c, use_numpy);
        if (!rq)
            return NULL;
        CHAN_CALL(c, s = ca_array_get_callback(t, n, c->ch, get_handler, rq));
        if (s != ECA_NORMAL)
            request_free(rq);
        return status_none(s);
    }
    DBRValueObject *v;
    void *data;
    if (has_out) {
        v = PyObject_New(DBRValueObject, &DBRValueType);
        if (!v)
            return NULL;
        v->type = t;
        v->count = n;
        v->use_numpy = 1;
        v->mode = BUF_OUT;
        v->buf = Py_NewRef(out);
        if (n == (long)PyArray_SIZE((PyArrayObject *)out)) {
            v->result = Py_NewRef(out);
        } else {
            PyObject *stop = PyLong_FromLong(n);
            PyObject *slice = stop ? PySlice_New(NULL, stop, NULL) : NULL;
            Py_XDECREF(stop);
            v->result = slice ? PyObject_GetItem(out, slice) : NULL;
            Py_XDECREF(slice);
            if (!v->result) {
                dbrvalue_discard(v);
                return NULL;
            }
        }
        data = PyArray_DATA((PyArrayObject *)out);
    } else {
        v = dbrvalue_new(t, n, use_numpy, &data);
        if (!v)
            return NULL;
    }
    /* out[:n] may run Python code (an ndarray subclass) */
    if (!c->valid) {
        dbrvalue_discard(v);
        return status_none(ECA_BADCHID);
    }
    struct ca_client_context *set_ctx = c->ctx;
    if (gid)   /* a group belongs to the calling thread's context */
        CHAN_CALL(c, (s = ca_sg_array_get(*gid, t, n, c->ch, data),
                      set_ctx = ca_current_context()));
    else
        CHAN_CALL(c, s = ca_array_get(t, n, c->ch, data));
    if (s != ECA_NORMAL) {
        dbrvalue_discard(v);
        return status_none(s);
    }
    /* libca fills the buffer when the reply comes: it lives until the
     * settle point of its own request set, whatever happens to v */
    if (read_hold(set_ctx, gid ? (long long)*gid : -1, v->buf) < 0) {
        PyErr_Clear();
        Py_INCREF(v->buf);   /* no memory to track it: never free it */
    }
    return status_pair(s, (PyObject *)v);
}

static PyObject *
ca_get_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"chid", "chtype", "count", "callback", "use_numpy",
                                        "out"};
    PyObject *a[6] = {NULL, Py_None, Py_None, Py_None, NULL, Py_None};
    if (bind_args("get", names, 6, 1, args, nargs, kwnames, a) < 0)
        return NULL;
    int use_numpy = opt_bool(a[4], 0);
    if (use_numpy < 0)
        return NULL;
    return do_get(NULL, a[0], a[1], a[2], a[3], use_numpy, a[5]);
}

/* ------------------------------------------------------------------------ */
/* put */

typedef struct {
    long type;
    long count;
    const void *data;
    Py_buffer view;
    int has_view;
    PyObject *hold;
    union { epicsInt16 s; epicsUInt16 u; epicsUInt8 c; epicsInt32 l;
            epicsFloat32 f; epicsFloat64 d; } scalar;
} put_req;

static void
put_req_release(put_req *p)
{
    if (p->has_view)
        PyBuffer_Release(&p->view);
    Py_XDECREF(p->hold);
}

/* Numbers to numeric types, the C twin of encode's scalar branch. 1 done,
 * 0 not handled here, -1 error (same exception types as encode). */
static int
put_number(PyObject *value, long t, put_req *p)
{
    int kind = elem_kind(t);
    if (kind == 0 || !(PyLong_CheckExact(value) || PyFloat_CheckExact(value) || PyBool_Check(value)))
        return 0;
    p->type = t;
    p->count = 1;
    if (kind == DBR_FLOAT || kind == DBR_DOUBLE) {
        double v = PyFloat_AsDouble(value);
        if (v == -1.0 && PyErr_Occurred())
            return -1;
        if (kind == DBR_FLOAT) {
            if (isfinite(v) && fabs(v) > FLT_MAX) {
                PyErr_Format(PyExc_OverflowError, "value %R out of range for DBR_FLOAT", value);
                return -1;
            }
            p->scalar.f = (epicsFloat32)v;
        } else {
            p->scalar.d = v;
        }
        p->data = &p->scalar;
        return 1;
    }
    long long v;
    if (PyFloat_CheckExact(value)) {
        double d = PyFloat_AS_DOUBLE(value);
        if (!isfinite(d)) {
            PyErr_Format(PyExc_ValueError, "cannot put %R to an integer DBR type", value);
            return -1;
        }
        if (fabs(d) >= 9.0e18) {
            PyErr_Format(PyExc_OverflowError, "value %R out of range", value);
            return -1;
        }
        v = (long long)d;   /* truncation toward zero, like int() */
    } else {
        int overflow;
        v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) {
            PyErr_Format(PyExc_OverflowError, "value %R out of range", value);
            return -1;
        }
        if (v == -1 && PyErr_Occurred())
            return -1;
    }
    long long lo, hi;
    switch (t) {
    case DBR_SHORT: lo = -32768; hi = 32767; break;
    case DBR_CHAR: lo = 0; hi = 255; break;
    case DBR_LONG: lo = -2147483648LL; hi = 2147483647LL; break;
    default: lo = 0; hi = 65535; break;   /* ENUM, PUT_ACKT, PUT_ACKS */
    }
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_OverflowError, "value %R out of range for DBR type %ld (%lld..%lld)",
                     value, t, lo, hi);
        return -1;
    }
    switch (kind) {
    case DBR_SHORT: p->scalar.s = (epicsInt16)v; break;
    case DBR_CHAR: p->scalar.c = (epicsUInt8)v; break;
    case DBR_LONG: p->scalar.l = (epicsInt32)v; break;
    default: p->scalar.u = (epicsUInt16)v; break;
    }
    p->data = &p->scalar;
    return 1;
}

/* Element i of a 1-D array of a plain numeric dtype, as a double or an
 * integer (*isint says which). 0 for dtypes this file does not convert. */
static int
read_elem(int tn, const char *ptr, double *d, long long *ll, int *isint)
{
    *isint = 1;
    switch (tn) {
    case NPY_BOOL: *ll = *(const npy_bool *)ptr != 0; return 1;
    case NPY_BYTE: *ll = *(const npy_byte *)ptr; return 1;
    case NPY_UBYTE: *ll = *(const npy_ubyte *)ptr; return 1;
    case NPY_SHORT: *ll = *(const npy_short *)ptr; return 1;
    case NPY_USHORT: *ll = *(const npy_ushort *)ptr; return 1;
    case NPY_INT: *ll = *(const npy_int *)ptr; return 1;
    case NPY_UINT: *ll = *(const npy_uint *)ptr; return 1;
    case NPY_LONG: *ll = *(const npy_long *)ptr; return 1;
    case NPY_LONGLONG: *ll = *(const npy_longlong *)ptr; return 1;
    case NPY_ULONG:
    case NPY_ULONGLONG: {
        npy_ulonglong u = tn == NPY_ULONG ? *(const npy_ulong *)ptr
                                          : *(const npy_ulonglong *)ptr;
        if (u > (npy_ulonglong)LLONG_MAX) {
            *isint = 0;   /* beyond every integer DBR type; exact enough as double */
            *d = (double)u;
        } else {
            *ll = (long long)u;
        }
        return 1;
    }
    case NPY_FLOAT: *isint = 0; *d = *(const npy_float *)ptr; return 1;
    case NPY_DOUBLE: *isint = 0; *d = *(const npy_double *)ptr; return 1;
    default: return 0;
    }
}

/* A 1-D numeric array of another dtype converted element by element into
 * a new array of the put type, with encode's checks. 1 done, 0 not
 * handled here: other dtypes, and values encode rejects (NaN or infinity
 * to an integer type, out of range), so that the exception and its text
 * stay exactly encode's. -1 error. */
static int
put_converted(PyArrayObject *a, long t, long cnt, put_req *p)
{
    int tn = PyArray_TYPE(a);
    double d = 0;
    long long ll = 0;
    int isint;
    if (!PyArray_ISNBO(PyArray_DESCR(a)->byteorder)
        || !read_elem(tn, PyArray_BYTES(a), &d, &ll, &isint))
        return 0;
    npy_intp dims = cnt;
    PyObject *out = PyArray_SimpleNew(1, &dims, npy_of_kind[t]);
    if (!out)
        return -1;
    char *dst = PyArray_BYTES((PyArrayObject *)out);
    const char *src = PyArray_BYTES(a);
    npy_intp stride = PyArray_STRIDE(a, 0);
    long long lo = 0, hi = 0;
    switch (t) {
    case DBR_SHORT: lo = -32768; hi = 32767; break;
    case DBR_ENUM: lo = 0; hi = 65535; break;
    case DBR_CHAR: lo = 0; hi = 255; break;
    case DBR_LONG: lo = -2147483648LL; hi = 2147483647LL; break;
    }
    for (long i = 0; i < cnt; i++, src += stride) {
        read_elem(tn, src, &d, &ll, &isint);
        if (t == DBR_DOUBLE) {
            ((epicsFloat64 *)dst)[i] = isint ? (double)ll : d;
            continue;
        }
        if (t == DBR_FLOAT) {
            double v = isint ? (double)ll : d;
            if (!isint && isfinite(v) && fabs(v) > FLT_MAX
                && !isfinite((double)(epicsFloat32)v))
                goto reject;
            ((epicsFloat32 *)dst)[i] = (epicsFloat32)v;
            continue;
        }
        if (!isint) {
            if (!isfinite(d) || d < (double)lo || d > (double)hi)
                goto reject;
            ll = (long long)d;   /* toward zero, like astype */
        } else if (ll < lo || ll > hi) {
            goto reject;
        }
        switch (t) {
        case DBR_SHORT: ((epicsInt16 *)dst)[i] = (epicsInt16)ll; break;
        case DBR_ENUM: ((epicsUInt16 *)dst)[i] = (epicsUInt16)ll; break;
        case DBR_CHAR: ((epicsUInt8 *)dst)[i] = (epicsUInt8)ll; break;
        default: ((epicsInt32 *)dst)[i] = (epicsInt32)ll; break;
        }
    }
    p->hold = out;
    p->type = t;
    p->count = cnt;
    p->data = dst;
    return 1;
reject:
    Py_DECREF(out);
    return 0;
}

/* 1-D numeric numpy arrays: in the element type they go to libca as they
 * are, other numeric dtypes are converted here */
static int
put_array(PyObject *value, long t, long n, put_req *p)
{
    if (!PyArray_Check(value) || t < DBR_SHORT || t > DBR_DOUBLE)
        return 0;
    PyArrayObject *a = (PyArrayObject *)value;
    if (PyArray_NDIM(a) != 1)
        return 0;
    long len = (long)PyArray_DIM(a, 0);
    long cnt = len < n ? len : n;
    if (cnt < 2)
        return 0;   /* encode's scalar rules apply */
    if (PyArray_TYPE(a) != npy_of_kind[t] || !PyArray_ISNBO(PyArray_DESCR(a)->byteorder))
        return put_converted(a, t, cnt, p);
    PyArrayObject *c = (PyArrayObject *)PyArray_GETCONTIGUOUS(a);
    if (!c)
        return -1;
    p->hold = (PyObject *)c;
    p->type = t;
    p->count = cnt;
    p->data = PyArray_DATA(c);
    return 1;
}

static int
put_via_encode(PyObject *value, long t, long n, put_req *p)
{
    PyObject *r = PyObject_CallFunction(py_encode, "Oll", value, t, n);
    if (!r)
        return -1;
    long rt, rc;
    PyObject *data;
    if (!PyArg_ParseTuple(r, "llO", &rt, &rc, &data)) {
        Py_DECREF(r);
        return -1;
    }
    if (PyObject_GetBuffer(data, &p->view, PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(r);
        return -1;
    }
    p->has_view = 1;
    p->hold = r;
    p->type = rt;
    p->count = rc;
    p->data = p->view.buf;
    if (rt < 0 || rt > LAST_BUFFER_TYPE || rc < 1
        || (size_t)p->view.len < (size_t)rc * dbr_value_size[rt]) {
        PyErr_SetString(PyExc_SystemError, "encode returned a short buffer");
        return -1;
    }
    return 0;
}

/* Common part of put/sg_put: validity, type, count and conversion.
 * Returns ECA_NORMAL with *p filled, another status, or -1 on exception. */
static int
prepare_put(ChannelObject *c, PyObject *value, PyObject *chtype, long given_t,
            PyObject *countobj, long given_n, put_req *p)
{
    memset(p, 0, sizeof(*p));
    long t, native;
    int connected;
    short ft;
    channel_info(c, &ft, &native, &connected);
    int s = resolve_type(ft, chtype, given_t, &t);
    if (s != ECA_NORMAL)
        return s;
    if (!(t <= DBR_DOUBLE || t == DBR_PUT_ACKT || t == DBR_PUT_ACKS))
        return ECA_BADTYPE;
    if (!connected)
        return ECA_DISCONN;
    long n = (countobj == NULL || countobj == Py_None || given_n <= 0 || given_n > native)
             ? native : given_n;
    if (n < 1)
        n = 1;
    int h = put_number(value, t, p);
    if (h == 0)
        h = put_array(value, t, n, p);
    if (h == 0)
        h = put_via_encode(value, t, n, p) == 0 ? 1 : -1;
    if (h < 0) {
        put_req_release(p);
        return -1;
    }
    return ECA_NORMAL;
}

static PyObject *
ca_put_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"chid", "value", "chtype", "count", "callback"};
    PyObject *a[5] = {NULL, NULL, Py_None, Py_None, Py_None};
    if (bind_args("put", names, 5, 2, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *obj = a[0], *value = a[1], *chtype = a[2], *count = a[3], *cb = a[4];
    long given_t = 0, given_n = 0;
    ChannelObject *c;
    int r = get_channel(obj, &c);
    if (r < 0 || check_callback(cb) < 0 || opt_index(chtype, "chtype", &given_t) == -1 ||
        opt_index(count, "count", &given_n) == -1)
        return NULL;
    if (r == 0 || !c->valid)   /* __index__ above may have cleared it */
        return ECA_OBJ(ECA_BADCHID);
    put_req p;
    int s = prepare_put(c, value, chtype, given_t, count, given_n, &p);
    if (s < 0)
        return NULL;
    if (s != ECA_NORMAL)
        return ECA_OBJ(s);
    if (!c->valid) {
        /* the conversion ran Python code (__float__, __len__, a finalizer)
         * that cleared the channel or destroyed its context */
        put_req_release(&p);
        return ECA_OBJ(ECA_BADCHID);
    }
    if (cb != Py_None) {
        request_ctx *rq = request_new(cb, c, 0);
        if (!rq) {
            put_req_release(&p);
            return NULL;
        }
        CHAN_CALL(c, s = ca_array_put_callback(p.type, p.count, c->ch, p.data, put_handler, rq));
        if (s != ECA_NORMAL)
            request_free(rq);
    } else {
        CHAN_CALL(c, s = ca_array_put(p.type, p.count, c->ch, p.data));
    }
    put_req_release(&p);
    return ECA_OBJ(s);
}

/* ------------------------------------------------------------------------ */
/* Subscriptions */

static PyObject *
ca_create_subscription_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"chid", "callback", "chtype", "count", "mask", "use_numpy", NULL};
    PyObject *obj, *cb, *chtype = Py_None, *count = Py_None, *maskobj = Py_None;
    int use_numpy = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOOp:create_subscription", kwlist, &obj,
                                     &cb, &chtype, &count, &maskobj, &use_numpy))
        return NULL;
    long given_t = 0, given_n = 0, mask = DBE_VALUE | DBE_ALARM;
    ChannelObject *c;
    int r = get_channel(obj, &c);
    if (r < 0)
        return NULL;
    if (!PyCallable_Check(cb)) {
        /* a subscription exists only to call back: None is an error here */
        PyErr_Format(PyExc_TypeError, "callback must be callable, not %.100s",
                     Py_TYPE(cb)->tp_name);
        return NULL;
    }
    if (opt_index(chtype, "chtype", &given_t) == -1 ||
        opt_index(count, "count", &given_n) == -1 || opt_index(maskobj, "mask", &mask) == -1)
        return NULL;
    if (r == 0 || !c->valid)   /* __index__ above may have cleared it */
        return status_none(ECA_BADCHID);
    long t, native;
    int connected;
    short ft;
    channel_info(c, &ft, &native, &connected);
    if (!c->valid)
        return status_none(ECA_BADCHID);
    int s = resolve_type(ft, chtype, given_t, &t);
    if (s != ECA_NORMAL)
        return status_none(s);
    long n = (count == Py_None || given_n < 0 || (native > 0 && given_n > native))
             ? native : given_n;
    EvidObject *e = PyObject_New(EvidObject, &EvidType);
    if (!e)
        return NULL;
    e->ev = NULL;
    e->valid = 1;
    e->use_numpy = use_numpy;
    e->chan = (ChannelObject *)Py_NewRef((PyObject *)c);
    e->callback = Py_NewRef(cb);
    /* in the channel's list (which keeps it alive for libca) before the
     * first event, which may arrive inside ca_create_subscription */
    if (PyList_Append(c->evids, (PyObject *)e) < 0) {
        Py_DECREF(e);
        return NULL;
    }
    evid ev = NULL;
    if (!c->valid) {
        e->valid = 0;
        Py_ssize_t i = PySequence_Index(c->evids, (PyObject *)e);
        if (i >= 0)
            PySequence_DelItem(c->evids, i);
        PyErr_Clear();
        Py_DECREF(e);
        return status_none(ECA_BADCHID);
    }
    CHAN_CALL(c, s = ca_create_subscription(t, n, c->ch, mask, event_handler, e, &ev));
    if (s != ECA_NORMAL) {
        e->valid = 0;
        Py_ssize_t i = c->evids ? PySequence_Index(c->evids, (PyObject *)e) : -1;
        if (i >= 0)
            PySequence_DelItem(c->evids, i);
        PyErr_Clear();
        Py_DECREF(e);
        return status_none(s);
    }
    e->ev = ev;
    return Py_BuildValue("(NN)", ECA_OBJ(s), (PyObject *)e);
}

static PyObject *
ca_clear_subscription_py(PyObject *m, PyObject *arg)
{
    if (arg == Py_None)
        return ECA_OBJ(ECA_BADMONID);
    if (!PyObject_TypeCheck(arg, &EvidType)) {
        PyErr_Format(PyExc_TypeError, "expected an evid from create_subscription, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    EvidObject *e = (EvidObject *)arg;
    ChannelObject *c = e->chan;
    if (!e->valid || !c->valid || !e->ev)
        return ECA_OBJ(ECA_BADMONID);
    e->valid = 0;   /* claimed: a second clear returns BADMONID */
    int s;
    evid ev = e->ev;
    CHAN_CALL(c, s = ca_clear_subscription(ev));
    /* drop the keep-alive reference held by the channel's list */
    Py_ssize_t i = PySequence_Index(c->evids, arg);
    if (i >= 0)
        PySequence_DelItem(c->evids, i);
    PyErr_Clear();
    return ECA_OBJ(s);
}

/* ------------------------------------------------------------------------ */
/* Execution */

static PyObject *
pend_io_impl(double t)
{
    int s;
    struct ca_client_context *ctx = current_ctx();
    Py_ssize_t mark = read_mark(ctx, -1);
    Py_BEGIN_ALLOW_THREADS
    s = ca_pend_io(t);
    Py_END_ALLOW_THREADS
    /* NORMAL or TIMEOUT: libca ended (or abandoned) every read of the
     * context issued before; EVDISALLOW (inside a callback): nothing done */
    if (s != ECA_EVDISALLOW)
        read_settle(ctx, -1, mark);
    return ECA_OBJ(s);
}

static PyObject *
pend_event_impl(double t)
{
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_pend_event(t);
    Py_END_ALLOW_THREADS
    return ECA_OBJ(s);
}

static PyObject *
ca_pend_io_py(PyObject *m, PyObject *arg)
{
    double t;
    if (parse_timeout(arg, &t) < 0)
        return NULL;
    return pend_io_impl(t);
}

static PyObject *
ca_pend_event_py(PyObject *m, PyObject *arg)
{
    double t;
    if (parse_timeout(arg, &t) < 0)
        return NULL;
    return pend_event_impl(t);
}

static PyObject *
ca_poll_py(PyObject *m, PyObject *noargs)
{
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_poll();
    Py_END_ALLOW_THREADS
    return ECA_OBJ(s);
}

static PyObject *
ca_pend_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", "early", NULL};
    PyObject *tobj, *early;
    double t;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO:pend", kwlist, &tobj, &early))
        return NULL;
    if (parse_timeout(tobj, &t) < 0)
        return NULL;
    int e = PyObject_IsTrue(early);
    if (e < 0)
        return NULL;
    return e ? pend_io_impl(t) : pend_event_impl(t);
}

static PyObject *
ca_flush_io_py(PyObject *m, PyObject *noargs)
{
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_flush_io();
    Py_END_ALLOW_THREADS
    return ECA_OBJ(s);
}

static PyObject *
ca_test_io_py(PyObject *m, PyObject *noargs)
{
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_test_io();
    Py_END_ALLOW_THREADS
    return ECA_OBJ(s);
}

/* ------------------------------------------------------------------------ */
/* Channel information */

static PyObject *
ca_field_type_py(PyObject *m, PyObject *arg)
{
    ChannelObject *c = info_channel(arg);
    if (!c)
        return NULL;
    short ft;
    CHAN_CALL(c, ft = ca_field_type(c->ch));
    return DBF_OBJ(ft);
}

static PyObject *
ca_element_count_py(PyObject *m, PyObject *arg)
{
    ChannelObject *c = info_channel(arg);
    if (!c)
        return NULL;
    unsigned long n;
    CHAN_CALL(c, n = ca_element_count(c->ch));
    return PyLong_FromUnsignedLong(n);
}

static PyObject *
ca_name_py(PyObject *m, PyObject *arg)
{
    ChannelObject *c = info_channel(arg);
    if (!c)
        return NULL;
    const char *s;
    CHAN_CALL(c, s = ca_name(c->ch));
    if (!s)
        return Py_NewRef(c->name);
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

static PyObject *
ca_state_py(PyObject *m, PyObject *arg)
{
    if (arg == Py_None)
        return CS_OBJ(4);
    if (!PyObject_TypeCheck(arg, &ChannelType)) {
        PyErr_Format(PyExc_TypeError, "expected a chid from create_channel, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    ChannelObject *c = (ChannelObject *)arg;
    if (!c->valid)
        return CS_OBJ(cs_closed);
    enum channel_state st;
    CHAN_CALL(c, st = ca_state(c->ch));
    return CS_OBJ(st);
}

static PyObject *
ca_host_name_py(PyObject *m, PyObject *arg)
{
    ChannelObject *c = info_channel(arg);
    if (!c)
        return NULL;
    char buf[256];
    CHAN_CALL(c, ca_get_host_name(c->ch, buf, sizeof(buf)));
    buf[sizeof(buf) - 1] = '\0';
    return PyUnicode_DecodeUTF8(buf, (Py_ssize_t)strlen(buf), "replace");
}

static PyObject *
ca_read_access_py(PyObject *m, PyObject *arg)
{
    ChannelObject *c = info_channel(arg);
    if (!c)
        return NULL;
    int a;
    CHAN_CALL(c, a = ca_read_access(c->ch));
    return PyBool_FromLong(a);
}

static PyObject *
ca_write_access_py(PyObject *m, PyObject *arg)
{
    ChannelObject *c = info_channel(arg);
    if (!c)
        return NULL;
    int a;
    CHAN_CALL(c, a = ca_write_access(c->ch));
    return PyBool_FromLong(a);
}

static PyObject *
ca_message_py(PyObject *m, PyObject *arg)
{
    PyObject *i = PyNumber_Long(arg);
    if (!i)
        return NULL;
    long s = PyLong_AsLong(i);
    Py_DECREF(i);
    if (s == -1 && PyErr_Occurred())
        return NULL;
    const char *msg;
    Py_BEGIN_ALLOW_THREADS
    msg = ca_message(s);
    Py_END_ALLOW_THREADS
    return PyUnicode_FromString(msg ? msg : "");
}

static PyObject *
ca_version_py(PyObject *m, PyObject *noargs)
{
    const char *v;
    Py_BEGIN_ALLOW_THREADS
    v = ca_version();
    Py_END_ALLOW_THREADS
    return PyUnicode_FromString(v);
}

/* ------------------------------------------------------------------------ */
/* Synchronous groups */

/* 0 ok; 1 out of range (-> BADSYNCGRP); -1 TypeError */
static int
parse_gid(PyObject *obj, CA_SYNC_GID *gid)
{
    PyObject *i = PyNumber_Index(obj);
    if (!i) {
        PyErr_Format(PyExc_TypeError, "gid must be an integer, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(i);
    Py_DECREF(i);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    if (v != (CA_SYNC_GID)v)
        return 1;
    *gid = (CA_SYNC_GID)v;
    return 0;
}

#define GID_OR_RETURN(obj, gid) do { \
        int _r = parse_gid(obj, &gid); \
        if (_r < 0) return NULL; \
        if (_r > 0) return ECA_OBJ(ECA_BADSYNCGRP); \
    } while (0)

static PyObject *
ca_sg_create_py(PyObject *m, PyObject *noargs)
{
    CA_SYNC_GID gid = 0;
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_sg_create(&gid);
    Py_END_ALLOW_THREADS
    if (s != ECA_NORMAL)
        return status_none(s);
    return Py_BuildValue("(Nk)", ECA_OBJ(s), (unsigned long)gid);
}

static PyObject *
sg_settle(int which, PyObject *arg)
{
    CA_SYNC_GID gid;
    GID_OR_RETURN(arg, gid);
    struct ca_client_context *ctx = current_ctx();
    Py_ssize_t mark = read_mark(ctx, gid);
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = which ? ca_sg_reset(gid) : ca_sg_delete(gid);
    Py_END_ALLOW_THREADS
    /* the group's outstanding reads are cancelled */
    if (s == ECA_NORMAL && !which)
        read_drop(ctx, gid, 0);
    else if (s == ECA_NORMAL)
        read_settle(ctx, gid, mark);
    return ECA_OBJ(s);
}

static PyObject *
ca_sg_delete_py(PyObject *m, PyObject *arg)
{
    return sg_settle(0, arg);
}

static PyObject *
ca_sg_reset_py(PyObject *m, PyObject *arg)
{
    return sg_settle(1, arg);
}

static PyObject *
ca_sg_block_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"gid", "timeout", NULL};
    PyObject *gidobj, *tobj;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO:sg_block", kwlist, &gidobj, &tobj))
        return NULL;
    CA_SYNC_GID gid;
    double t;
    GID_OR_RETURN(gidobj, gid);
    if (parse_timeout(tobj, &t) < 0)
        return NULL;
    struct ca_client_context *ctx = current_ctx();
    Py_ssize_t mark = read_mark(ctx, gid);
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_sg_block(gid, t);
    Py_END_ALLOW_THREADS
    /* NORMAL: done; TIMEOUT: libca reset the group (cancelled them) */
    if (s == ECA_NORMAL || s == ECA_TIMEOUT)
        read_settle(ctx, gid, mark);
    return ECA_OBJ(s);
}

static PyObject *
ca_sg_test_py(PyObject *m, PyObject *arg)
{
    CA_SYNC_GID gid;
    GID_OR_RETURN(arg, gid);
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_sg_test(gid);
    Py_END_ALLOW_THREADS
    return ECA_OBJ(s);
}

static PyObject *
ca_sg_get_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"gid", "chid", "chtype", "count", "use_numpy", NULL};
    PyObject *gidobj, *obj, *chtype = Py_None, *count = Py_None;
    int use_numpy = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOp:sg_get", kwlist, &gidobj, &obj,
                                     &chtype, &count, &use_numpy))
        return NULL;
    CA_SYNC_GID gid;
    int r = parse_gid(gidobj, &gid);
    if (r < 0)
        return NULL;
    if (r > 0)
        return status_none(ECA_BADSYNCGRP);
    return do_get(&gid, obj, chtype, count, NULL, use_numpy, NULL);
}

static PyObject *
ca_sg_put_py(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"gid", "chid", "value", "chtype", "count", NULL};
    PyObject *gidobj, *obj, *value, *chtype = Py_None, *count = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|OO:sg_put", kwlist, &gidobj, &obj, &value,
                                     &chtype, &count))
        return NULL;
    CA_SYNC_GID gid;
    GID_OR_RETURN(gidobj, gid);
    long given_t = 0, given_n = 0;
    ChannelObject *c;
    int r = get_channel(obj, &c);
    if (r < 0 || opt_index(chtype, "chtype", &given_t) == -1 ||
        opt_index(count, "count", &given_n) == -1)
        return NULL;
    if (r == 0 || !c->valid)
        return ECA_OBJ(ECA_BADCHID);
    put_req p;
    int s = prepare_put(c, value, chtype, given_t, count, given_n, &p);
    if (s < 0)
        return NULL;
    if (s != ECA_NORMAL)
        return ECA_OBJ(s);
    if (!c->valid) {   /* see put */
        put_req_release(&p);
        return ECA_OBJ(ECA_BADCHID);
    }
    CHAN_CALL(c, s = ca_sg_array_put(gid, p.type, p.count, c->ch, p.data));
    put_req_release(&p);
    return ECA_OBJ(s);
}

/* ------------------------------------------------------------------------ */
/* Interpreter exit */

/* Registered with atexit: runs while the interpreter is fully alive. From
 * here on libca callbacks return without touching Python; we wait (GIL
 * released) for the callbacks already inside Python code to finish. */
static PyObject *
ca_shutdown_py(PyObject *m, PyObject *noargs)
{
    atomic_store(&shutting_down, 1);
    /* Another libca user (the cffi backend's own atexit hook, say) may
     * destroy the contexts our channels live in; objects finalized after
     * this point (a __del__ calling clear_channel) must then see dead
     * handles instead of freed chids. libca reclaims the channels at exit. */
    for (ChannelObject *c = live_channels; c; ) {
        ChannelObject *next = c->next;
        c->valid = 0;
        Py_ssize_t n = c->evids ? PyList_GET_SIZE(c->evids) : 0;
        for (Py_ssize_t i = 0; i < n; i++)
            ((EvidObject *)PyList_GET_ITEM(c->evids, i))->valid = 0;
        c = next;
    }
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < 5000 && atomic_load(&cb_inflight) > 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* fork() */

/* os.register_at_fork(after_in_child=...): runs in the child, whose only
 * thread is the one that forked. libca's threads and whatever locks they
 * held are gone, so nothing of the inherited contexts may be touched: every
 * handle becomes dead without a libca call, the thread's context pointer is
 * dropped (ca_detach_context only resets a thread-private slot) and the
 * first CA call of the child makes a new context. */
static PyObject *
ca_after_fork_child_py(PyObject *m, PyObject *noargs)
{
    fork_epoch++;
    /* callbacks that were running in the parent's libca threads never end */
    atomic_store(&cb_inflight, 0);
    PyDict_Clear(ctx_gens);
    PySet_Clear(dead_ctxs);
    PyObject *dead = PyList_New(0);
    if (!dead)
        return NULL;
    if (invalidate_context_channels(NULL, dead, DEAD_FORK) < 0) {
        Py_DECREF(dead);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(dead); i++)
        ((ChannelObject *)PyList_GET_ITEM(dead, i))->inuse = 0;   /* those threads are gone */
    read_drop(NULL, 0, 1);
    while (exc_slots) {
        exc_slot *s = exc_slots;
        exc_slots = s->next;
        Py_CLEAR(s->callback);
        PyMem_RawFree(s);
    }
    Py_CLEAR(printf_callback);
    ca_detach_context();
    /* libCom's first epicsThread use in a child prints a warning about
     * fork; make it here, where the Python hook silences stderr, rather
     * than at the child's first CA call */
    (void)epicsThreadGetIdSelf();
    /* last: dropping callbacks runs finalizers, which find every handle dead */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(dead); i++)
        forget_channel_refs((ChannelObject *)PyList_GET_ITEM(dead, i));
    Py_DECREF(dead);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */

#define KW (PyCFunction)(void (*)(void))
static PyMethodDef ca_methods[] = {
    {"create_context", KW ca_create_context_py, METH_VARARGS | METH_KEYWORDS,
     "create_context(preemptive_callback=True) -> ECA"},
    {"destroy_context", ca_destroy_context_py, METH_NOARGS,
     "destroy_context() -> None\n\nDestroy the calling thread's context. Its channels and "
     "subscriptions are dead afterwards (ECA_BADCHID/ECA_BADMONID; ValueError from the "
     "information functions) and so is its context object (attach_context/show_context "
     "raise ValueError). The thread's next CA call makes a new context (non-preemptive "
     "unless create_context comes first). Only the calling thread is detached."},
    {"attach_context", ca_attach_context_py, METH_O,
     "attach_context(context) -> ECA\n\nValueError for a context that was destroyed or "
     "inherited across fork()."},
    {"detach_context", ca_detach_context_py, METH_NOARGS, "detach_context() -> None"},
    {"current_context", ca_current_context_py, METH_NOARGS, "current_context() -> context|None"},
    {"show_context", KW ca_show_context_py, METH_VARARGS | METH_KEYWORDS,
     "show_context(context=None, level=0) -> None\n\nValueError for a context that was "
     "destroyed or inherited across fork()."},
    {"create_channel", (PyCFunction)(void (*)(void))ca_create_channel_py, METH_FASTCALL | METH_KEYWORDS,
     "create_channel(name, callback=None, priority=0) -> (ECA, chid|None)"},
    {"clear_channel", ca_clear_channel_py, METH_O,
     "clear_channel(chid) -> ECA\n\nThe channel is dead at once; when a libca call on it is "
     "in progress (another thread, or a callback libca runs inside that call) the libca "
     "clear is made when that call returns."},
    {"change_connection_event", KW ca_change_connection_event_py, METH_VARARGS | METH_KEYWORDS,
     "change_connection_event(chid, callback=None) -> ECA"},
    {"replace_access_rights_event", KW ca_replace_access_rights_event_py,
     METH_VARARGS | METH_KEYWORDS, "replace_access_rights_event(chid, callback=None) -> ECA"},
    {"add_exception_event", KW ca_add_exception_event_py, METH_VARARGS | METH_KEYWORDS,
     "add_exception_event(callback=None) -> ECA"},
    {"replace_printf_handler", KW ca_replace_printf_handler_py, METH_VARARGS | METH_KEYWORDS,
     "replace_printf_handler(callback=None) -> ECA"},
    {"get", (PyCFunction)(void (*)(void))ca_get_py, METH_FASTCALL | METH_KEYWORDS,
     "get(chid, chtype=None, count=None, callback=None, use_numpy=False, out=None)"
     " -> (ECA, DBRValue|None)"},
    {"put", (PyCFunction)(void (*)(void))ca_put_py, METH_FASTCALL | METH_KEYWORDS,
     "put(chid, value, chtype=None, count=None, callback=None) -> ECA"},
    {"create_subscription", KW ca_create_subscription_py, METH_VARARGS | METH_KEYWORDS,
     "create_subscription(chid, callback, chtype=None, count=None, mask=None, use_numpy=False)"
     " -> (ECA, evid|None)"},
    {"clear_subscription", ca_clear_subscription_py, METH_O, "clear_subscription(evid) -> ECA"},
    {"pend_io", ca_pend_io_py, METH_O, "pend_io(timeout) -> ECA"},
    {"pend_event", ca_pend_event_py, METH_O, "pend_event(timeout) -> ECA"},
    {"poll", ca_poll_py, METH_NOARGS, "poll() -> ECA"},
    {"pend", KW ca_pend_py, METH_VARARGS | METH_KEYWORDS, "pend(timeout, early) -> ECA"},
    {"flush_io", ca_flush_io_py, METH_NOARGS, "flush_io() -> ECA"},
    {"test_io", ca_test_io_py, METH_NOARGS, "test_io() -> ECA"},
    {"field_type", ca_field_type_py, METH_O, "field_type(chid) -> DBF"},
    {"element_count", ca_element_count_py, METH_O, "element_count(chid) -> int"},
    {"name", ca_name_py, METH_O, "name(chid) -> str"},
    {"state", ca_state_py, METH_O, "state(chid) -> ChannelState"},
    {"host_name", ca_host_name_py, METH_O, "host_name(chid) -> str"},
    {"read_access", ca_read_access_py, METH_O, "read_access(chid) -> bool"},
    {"write_access", ca_write_access_py, METH_O, "write_access(chid) -> bool"},
    {"message", ca_message_py, METH_O, "message(status) -> str"},
    {"version", ca_version_py, METH_NOARGS, "version() -> str"},
    {"sg_create", ca_sg_create_py, METH_NOARGS, "sg_create() -> (ECA, gid|None)"},
    {"sg_delete", ca_sg_delete_py, METH_O, "sg_delete(gid) -> ECA"},
    {"sg_get", KW ca_sg_get_py, METH_VARARGS | METH_KEYWORDS,
     "sg_get(gid, chid, chtype=None, count=None, use_numpy=False) -> (ECA, DBRValue|None)"},
    {"sg_put", KW ca_sg_put_py, METH_VARARGS | METH_KEYWORDS,
     "sg_put(gid, chid, value, chtype=None, count=None) -> ECA"},
    {"sg_block", KW ca_sg_block_py, METH_VARARGS | METH_KEYWORDS, "sg_block(gid, timeout) -> ECA"},
    {"sg_test", ca_sg_test_py, METH_O, "sg_test(gid) -> ECA"},
    {"sg_reset", ca_sg_reset_py, METH_O, "sg_reset(gid) -> ECA"},
    {"_shutdown", ca_shutdown_py, METH_NOARGS, "stop delivering callbacks (atexit hook)"},
    {"_after_fork_child", ca_after_fork_child_py, METH_NOARGS,
     "abandon the inherited CA state in a child after fork (os.register_at_fork hook)"},
    {NULL}
};

static struct PyModuleDef ca_module = {
    PyModuleDef_HEAD_INIT, "CaChannel._ca",
    "C extension backend of CaChannel.ca (Channel Access on libca).", -1, ca_methods,
};

static int
fill_cache(PyObject *common, const char *clsname, PyObject **table, long lo, long hi)
{
    PyObject *cls = PyObject_GetAttrString(common, clsname);
    if (!cls)
        return -1;
    for (long v = lo; v <= hi; v++) {
        PyObject *member = PyObject_CallFunction(cls, "l", v);
        if (!member) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
                Py_DECREF(cls);
                return -1;
            }
            PyErr_Clear();
        }
        table[v - lo] = member;   /* owned for the life of the process */
    }
    Py_DECREF(cls);
    return 0;
}

PyMODINIT_FUNC
PyInit__ca(void)
{
    import_array();
#ifndef _WIN32
    pin_key_ok = pthread_key_create(&pin_key, pin_release) == 0;
#endif
    if (PyType_Ready(&ChannelType) < 0 || PyType_Ready(&EvidType) < 0 ||
        PyType_Ready(&ContextType) < 0 || PyType_Ready(&DBRValueType) < 0)
        return NULL;
    PyObject *common = PyImport_ImportModule("CaChannel._common");
    if (!common)
        return NULL;
    PyObject *m = PyModule_Create(&ca_module);
    PyObject *all = NULL, *names = NULL;
    if (!m)
        goto fail;
    for (int k = 0; k < K_N; k++) {
        keys[k] = PyUnicode_InternFromString(key_names[k]);   /* owned for good */
        if (!keys[k])
            goto fail;
    }
    if (fill_cache(common, "ECA", eca_members, 0, ECA_CACHE - 1) < 0 ||
        fill_cache(common, "DBR", dbr_members, -1, 38) < 0 ||
        fill_cache(common, "DBF", dbf_members, -1, 6) < 0 ||
        fill_cache(common, "CA_OP", op_members, 0, 7) < 0 ||
        fill_cache(common, "ChannelState", cs_members, 0, 4) < 0 ||
        fill_cache(common, "AlarmCondition", cond_members, 0, 21) < 0 ||
        fill_cache(common, "AlarmSeverity", sev_members, 0, 3) < 0)
        goto fail;
    py_encode = PyObject_GetAttrString(common, "encode");
    ctx_gens = PyDict_New();
    dead_ctxs = PySet_New(NULL);
    if (!py_encode || !ctx_gens || !dead_ctxs)
        goto fail;

    /* the constants, enums and pure helpers are the shared ones */
    names = PyObject_GetAttrString(common, "__all__");
    if (!names)
        goto fail;
    all = PySequence_List(names);
    if (!all)
        goto fail;
    Py_ssize_t n = PyList_GET_SIZE(all);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyList_GET_ITEM(all, i);
        PyObject *val = PyObject_GetAttr(common, key);
        if (!val || PyObject_SetAttr(m, key, val) < 0) {
            Py_XDECREF(val);
            goto fail;
        }
        Py_DECREF(val);
    }
    for (PyMethodDef *d = ca_methods; d->ml_name; d++) {
        if (d->ml_name[0] == '_')
            continue;
        PyObject *s = PyUnicode_FromString(d->ml_name);
        if (!s || PyList_Append(all, s) < 0) {
            Py_XDECREF(s);
            goto fail;
        }
        Py_DECREF(s);
    }
    static const char *extra[] = {"backend", "HAS_NUMPY", "DBRValue", NULL};
    for (const char **e = extra; *e; e++) {
        PyObject *s = PyUnicode_FromString(*e);
        if (!s || PyList_Append(all, s) < 0) {
            Py_XDECREF(s);
            goto fail;
        }
        Py_DECREF(s);
    }
    if (PyList_Sort(all) < 0)
        goto fail;
    if (PyModule_AddStringConstant(m, "backend", "cext") < 0 ||
        PyModule_AddObjectRef(m, "HAS_NUMPY", Py_True) < 0 ||
        PyModule_AddObjectRef(m, "DBRValue", (PyObject *)&DBRValueType) < 0 ||
        PyModule_AddObjectRef(m, "chid", (PyObject *)&ChannelType) < 0 ||
        PyModule_AddObjectRef(m, "evid", (PyObject *)&EvidType) < 0 ||
        PyModule_AddObjectRef(m, "Context", (PyObject *)&ContextType) < 0 ||
        PyModule_AddObjectRef(m, "__all__", all) < 0)
        goto fail;

    /* stop callbacks before the interpreter starts to finalize */
    PyObject *atexit = PyImport_ImportModule("atexit");
    if (!atexit)
        goto fail;
    PyObject *hook = PyObject_GetAttrString(m, "_shutdown");
    PyObject *r = hook ? PyObject_CallMethod(atexit, "register", "O", hook) : NULL;
    Py_DECREF(atexit);
    Py_XDECREF(hook);
    if (!r)
        goto fail;
    Py_DECREF(r);

    /* abandon the inherited CA state in a child after fork */
    PyObject *fhook = PyObject_GetAttrString(m, "_after_fork_child");
    r = fhook ? PyObject_CallMethod(common, "_register_fork_child", "O", fhook) : NULL;
    Py_XDECREF(fhook);
    if (!r)
        goto fail;
    Py_DECREF(r);

    Py_DECREF(names);
    Py_DECREF(all);
    Py_DECREF(common);
    m_module = m;
    return m;
fail:
    Py_XDECREF(names);
    Py_XDECREF(all);
    Py_XDECREF(common);
    Py_XDECREF(m);
    return NULL;
}
