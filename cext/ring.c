/*
 * CaChannel._ca, ring.c: the C fast path of CaChannel.monitor.ArrayMonitor.
 *
 * A _Ring owns `buffers` preallocated slots (the rows of one numpy array)
 * and per-slot metadata arrays. _ring_subscribe installs ring_handler as the
 * subscription's event handler: on libca's thread it claims a slot, copies
 * the DBR_TIME_* event's values straight out of libca's receive buffer,
 * stamps the slot and wakes the consumer. It never takes the GIL and never
 * creates a Python object, so a consumer that is slow, or busy in Python
 * holding the GIL, cannot stall libca's receive thread and with it every
 * other channel of the same server.
 *
 * A slot goes FREE -> FILLING (producer) -> PENDING -> HELD (consumer, take)
 * -> FREE (give_back). The copy happens in FILLING, outside the lock: a
 * 4 Mpixel frame must not keep the consumer's take/give_back waiting. The
 * policy picks the slot of a new update: "latest" recycles the pending one
 * (at most one is ever pending), "all" takes a free one and otherwise
 * recycles the oldest pending one. Recycled updates count as dropped and an
 * update counts as received when it is published, so received == delivered
 * + dropped + pending holds whenever the lock is free.
 *
 * The lock and the wake-up are libCom's epicsMutex and epicsEvent (portable
 * to every target of EPICS base). epicsEvent is a binary semaphore, so a
 * consumer re-checks the state after every wake-up, and one that finds the
 * ring closed signals again to pass the wake-up on to any other waiter.
 *
 * Lifetime: the ring is the evid's "callback" reference, which the
 * channel's evid list keeps until libca has promised not to call back
 * (clear_subscription, clear_channel, destroy_context); frames handed out
 * keep `data` alive by themselves. After fork the child must not touch the
 * lock (a parent thread may have held it): a ring made before the fork
 * behaves as closed and is never locked again.
 */
#include "cachannel.h"
#include <structmember.h>

#include <epicsMutex.h>
#include <epicsEvent.h>

#ifdef _WIN32
#include <windows.h>
static double mono_now(void) { return (double)GetTickCount64() * 1e-3; }
#else
static double
mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#endif

/* how long a waiting take() may go without checking for signals (Ctrl-C) */
#define TAKE_CHUNK 0.1

enum { SLOT_FREE = 0, SLOT_FILLING, SLOT_PENDING, SLOT_HELD };

typedef struct {          /* a FIFO of slot numbers; holds at most nslots */
    Py_ssize_t *v;
    Py_ssize_t head, len;
} slot_fifo;

typedef struct {
    PyObject_HEAD
    epicsMutexId lock;
    epicsEventId wake;
    unsigned long epoch;  /* fork_epoch when made; another value: forked child */
    int policy_all;
    int closed;
    int subscribed;
    Py_ssize_t nslots, capacity, elem_size, ntag;
    PyObject *data, *counts, *seqs, *stamps, *alarm, *tagvals;   /* ndarrays */
    char *data_p;
    epicsInt64 *counts_p, *seqs_p, *tagvals_p, *tagnow;
    double *stamps_p;
    epicsInt16 *alarm_p;
    unsigned char *state;
    slot_fifo free_q, pend_q;
    unsigned long long received, delivered, dropped;
} RingObject;

static void
fifo_push(slot_fifo *q, Py_ssize_t n, Py_ssize_t slot)
{
    q->v[(q->head + q->len) % n] = slot;
    q->len++;
}

static Py_ssize_t
fifo_pop(slot_fifo *q, Py_ssize_t n)
{
    Py_ssize_t slot = q->v[q->head];
    q->head = (q->head + 1) % n;
    q->len--;
    return slot;
}

static int
forked(RingObject *r)
{
    return r->epoch != fork_epoch;
}

/* ------------------------------------------------------------------------ */
/* libca's thread: no GIL, no Python object */

static void
ring_handler(struct event_handler_args args)
{
    RingObject *r = args.usr;
    if (args.status != ECA_NORMAL || !args.dbr || !dbr_type_is_TIME(args.type)
        || (Py_ssize_t)dbr_value_size[args.type] != r->elem_size)
        return;   /* no data (read access lost) or not what the slots hold: not a frame */
    if (!cb_enter())
        return;   /* interpreter exit: the arrays may be going away */
    Py_ssize_t n = r->nslots, slot;
    epicsMutexLock(r->lock);
    if (r->closed) {
        epicsMutexUnlock(r->lock);
        cb_leave();
        return;
    }
    if (!r->policy_all && r->pend_q.len) {
        slot = fifo_pop(&r->pend_q, n);       /* replaced before delivery */
        r->dropped++;
    } else if (r->free_q.len) {
        slot = fifo_pop(&r->free_q, n);
    } else if (r->pend_q.len) {
        slot = fifo_pop(&r->pend_q, n);       /* "all": the oldest waiting goes */
        r->dropped++;
    } else {                                  /* every slot held: nowhere to copy */
        r->received++;
        r->dropped++;
        epicsMutexUnlock(r->lock);
        cb_leave();
        return;
    }
    r->state[slot] = SLOT_FILLING;
    epicsMutexUnlock(r->lock);

    Py_ssize_t count = args.count < 0 ? 0 : (Py_ssize_t)args.count;
    if (count > r->capacity)
        count = r->capacity;
    memcpy(r->data_p + slot * r->capacity * r->elem_size,
           dbr_value_ptr(args.dbr, args.type), (size_t)(count * r->elem_size));
    /* status, severity and stamp lead every DBR_TIME_* structure alike */
    const struct dbr_time_short *head = args.dbr;

    epicsMutexLock(r->lock);
    if (r->closed) {                          /* closed while copying */
        r->state[slot] = SLOT_FREE;
        fifo_push(&r->free_q, n, slot);
        epicsMutexUnlock(r->lock);
        cb_leave();
        return;
    }
    r->received++;
    r->counts_p[slot] = count;
    r->seqs_p[slot] = (epicsInt64)r->received;
    r->stamps_p[slot] = (double)((long long)head->stamp.secPastEpoch + posix_epoch_offset)
                        + (double)head->stamp.nsec * 1e-9;
    r->alarm_p[2 * slot] = head->status;
    r->alarm_p[2 * slot + 1] = head->severity;
    if (r->ntag)
        memcpy(r->tagvals_p + slot * r->ntag, r->tagnow, (size_t)r->ntag * sizeof(epicsInt64));
    r->state[slot] = SLOT_PENDING;
    fifo_push(&r->pend_q, n, slot);
    epicsMutexUnlock(r->lock);
    epicsEventSignal(r->wake);
    cb_leave();
}

/* ------------------------------------------------------------------------ */
/* The consumer's side (GIL held unless said otherwise) */

/* the oldest pending slot, now held, or -1; *closed tells why not. Lock held. */
static Py_ssize_t
take_locked(RingObject *r, int *closed)
{
    *closed = r->closed;
    if (!r->pend_q.len)
        return -1;
    Py_ssize_t slot = fifo_pop(&r->pend_q, r->nslots);
    r->state[slot] = SLOT_HELD;
    r->delivered++;
    return slot;
}

static PyObject *
ring_take(RingObject *r, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"timeout"};
    PyObject *tobj = Py_None;
    if (bind_args("take", names, 1, 0, args, nargs, kwnames, &tobj) < 0)
        return NULL;
    double timeout = 0;
    int forever = tobj == Py_None;
    if (!forever && parse_timeout(tobj, &timeout) < 0)
        return NULL;
    if (forked(r))
        Py_RETURN_NONE;
    int closed;
    /* a frame already waiting: no GIL round trip */
    epicsMutexLock(r->lock);
    Py_ssize_t slot = take_locked(r, &closed);
    epicsMutexUnlock(r->lock);
    double deadline = mono_now() + timeout;
    while (slot < 0 && !closed) {
        int timed_out = 0;
        Py_BEGIN_ALLOW_THREADS
        double left = forever ? TAKE_CHUNK : deadline - mono_now();
        if (left <= 0) {
            timed_out = 1;
        } else {
            epicsEventWaitWithTimeout(r->wake, left < TAKE_CHUNK ? left : TAKE_CHUNK);
            epicsMutexLock(r->lock);
            slot = take_locked(r, &closed);
            epicsMutexUnlock(r->lock);
        }
        Py_END_ALLOW_THREADS
        if (timed_out)
            Py_RETURN_NONE;
        if (slot < 0 && !closed && PyErr_CheckSignals() < 0)
            return NULL;
    }
    if (slot < 0) {
        epicsEventSignal(r->wake);   /* closed: wake the next waiter too */
        Py_RETURN_NONE;
    }
    return PyLong_FromSsize_t(slot);
}

static PyObject *
ring_give_back(RingObject *r, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *obj;
    if (bind_one("give_back", "slot", args, nargs, kwnames, &obj) < 0)
        return NULL;
    Py_ssize_t slot = PyNumber_AsSsize_t(obj, PyExc_OverflowError);
    if (slot == -1 && PyErr_Occurred())
        return NULL;
    if (slot < 0 || slot >= r->nslots) {
        PyErr_Format(PyExc_ValueError, "slot %zd out of range 0..%zd", slot, r->nslots - 1);
        return NULL;
    }
    if (forked(r))
        Py_RETURN_NONE;
    epicsMutexLock(r->lock);
    int held = r->state[slot] == SLOT_HELD;
    if (held) {
        r->state[slot] = SLOT_FREE;
        fifo_push(&r->free_q, r->nslots, slot);
    }
    epicsMutexUnlock(r->lock);
    if (!held) {
        PyErr_Format(PyExc_ValueError, "slot %zd is not held by the consumer", slot);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
ring_close(RingObject *r, PyObject *noargs)
{
    if (forked(r)) {
        r->closed = 1;
        Py_RETURN_NONE;
    }
    Py_ssize_t n = r->nslots;
    epicsMutexLock(r->lock);
    if (!r->closed) {
        r->closed = 1;
        r->dropped += (unsigned long long)r->pend_q.len;   /* never delivered */
        while (r->pend_q.len) {
            Py_ssize_t slot = fifo_pop(&r->pend_q, n);
            r->state[slot] = SLOT_FREE;
            fifo_push(&r->free_q, n, slot);
        }
    }
    epicsMutexUnlock(r->lock);
    epicsEventSignal(r->wake);
    Py_RETURN_NONE;
}

static PyObject *
ring_stats(RingObject *r, PyObject *noargs)
{
    unsigned long long rec, del, drop;
    Py_ssize_t pend;
    int lock = !forked(r);
    if (lock)
        epicsMutexLock(r->lock);
    rec = r->received;
    del = r->delivered;
    drop = r->dropped;
    pend = r->pend_q.len;
    if (lock)
        epicsMutexUnlock(r->lock);
    return Py_BuildValue("(KKKn)", rec, del, drop, pend);
}

static PyObject *
ring_set_tag(RingObject *r, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *obj;
    if (bind_one("set_tag", "values", args, nargs, kwnames, &obj) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(obj, "values must be a sequence of ints");
    if (!seq)
        return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != r->ntag) {
        PyErr_Format(PyExc_ValueError, "expected %zd tag values, got %zd", r->ntag,
                     PySequence_Fast_GET_SIZE(seq));
        Py_DECREF(seq);
        return NULL;
    }
    epicsInt64 vals[16];
    for (Py_ssize_t i = 0; i < r->ntag; i++) {
        long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return NULL;
        }
        vals[i] = (epicsInt64)v;
    }
    Py_DECREF(seq);
    if (r->ntag && !forked(r)) {
        epicsMutexLock(r->lock);
        memcpy(r->tagnow, vals, (size_t)r->ntag * sizeof(epicsInt64));
        epicsMutexUnlock(r->lock);
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* Type */

#define RING_MAX_TAG 16

static PyObject *
zeros(int nd, npy_intp *dims, int typenum, void **data)
{
    PyObject *a = PyArray_ZEROS(nd, dims, typenum, 0);
    *data = a ? PyArray_DATA((PyArrayObject *)a) : NULL;
    return a;
}

static PyObject *
ring_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buffers", "capacity", "dtype", "policy", "ntag", NULL};
    Py_ssize_t nslots, capacity, ntag = 0;
    PyArray_Descr *descr = NULL;
    const char *policy;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnO&s|n:_Ring", kwlist, &nslots, &capacity,
                                     PyArray_DescrConverter, &descr, &policy, &ntag))
        return NULL;
    int all = strcmp(policy, "all") == 0;
    const char *bad = NULL;
    if (!all && strcmp(policy, "latest") != 0)
        bad = "policy must be 'latest' or 'all'";
    else if (nslots < 2)
        bad = "buffers must be >= 2 (one held by the consumer, one to fill)";
    else if (capacity < 1)
        bad = "capacity must be >= 1";
    else if (ntag < 0 || ntag > RING_MAX_TAG)
        bad = "ntag must be in 0..16";
    else if (capacity > PY_SSIZE_T_MAX / 8 / nslots)
        bad = "ring too large";
    if (bad) {
        Py_DECREF(descr);
        PyErr_SetString(PyExc_ValueError, bad);
        return NULL;
    }
    RingObject *r = (RingObject *)type->tp_alloc(type, 0);
    if (!r) {
        Py_DECREF(descr);
        return NULL;
    }
    r->epoch = fork_epoch;
    r->policy_all = all;
    r->nslots = nslots;
    r->capacity = capacity;
    r->ntag = ntag;
    npy_intp dims[2] = {nslots, capacity};
    /* PyArray_Zeros steals the descriptor reference, failed or not */
    r->data = PyArray_Zeros(2, dims, descr, 0);
    if (!r->data)
        goto fail;
    r->data_p = PyArray_DATA((PyArrayObject *)r->data);
    r->elem_size = PyArray_ITEMSIZE((PyArrayObject *)r->data);
    if ((r->elem_size != 1 && r->elem_size != 2 && r->elem_size != 4 && r->elem_size != 8)
        || PyArray_ISOBJECT((PyArrayObject *)r->data)) {
        PyErr_SetString(PyExc_ValueError, "dtype must be numeric with 1, 2, 4 or 8 bytes "
                        "an element");
        goto fail;
    }
    npy_intp one[1] = {nslots}, pair[2] = {nslots, 2}, tags[2] = {nslots, ntag};
    void *p[5];
    r->counts = zeros(1, one, NPY_INT64, &p[0]);
    r->seqs = zeros(1, one, NPY_INT64, &p[1]);
    r->stamps = zeros(1, one, NPY_FLOAT64, &p[2]);
    r->alarm = zeros(2, pair, NPY_INT16, &p[3]);
    r->tagvals = zeros(2, tags, NPY_INT64, &p[4]);
    r->counts_p = p[0];
    r->seqs_p = p[1];
    r->stamps_p = p[2];
    r->alarm_p = p[3];
    r->tagvals_p = p[4];
    if (!r->data || !r->counts || !r->seqs || !r->stamps || !r->alarm || !r->tagvals)
        goto fail;
    r->state = PyMem_Calloc((size_t)nslots, 1);
    r->free_q.v = PyMem_Calloc((size_t)nslots, sizeof(Py_ssize_t));
    r->pend_q.v = PyMem_Calloc((size_t)nslots, sizeof(Py_ssize_t));
    r->tagnow = PyMem_Calloc(RING_MAX_TAG, sizeof(epicsInt64));
    if (!r->state || !r->free_q.v || !r->pend_q.v || !r->tagnow) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < nslots; i++)
        fifo_push(&r->free_q, nslots, i);
    r->lock = epicsMutexCreate();
    r->wake = epicsEventCreate(epicsEventEmpty);
    if (!r->lock || !r->wake) {
        PyErr_SetString(PyExc_MemoryError, "cannot create the ring's lock");
        goto fail;
    }
    return (PyObject *)r;
fail:
    Py_DECREF(r);
    return NULL;
}

static void
ring_dealloc(RingObject *r)
{
    /* a child after fork leaks them: a dead parent thread may hold the lock */
    if (!forked(r)) {
        if (r->lock)
            epicsMutexDestroy(r->lock);
        if (r->wake)
            epicsEventDestroy(r->wake);
    }
    PyMem_Free(r->state);
    PyMem_Free(r->free_q.v);
    PyMem_Free(r->pend_q.v);
    PyMem_Free(r->tagnow);
    Py_XDECREF(r->data);
    Py_XDECREF(r->counts);
    Py_XDECREF(r->seqs);
    Py_XDECREF(r->stamps);
    Py_XDECREF(r->alarm);
    Py_XDECREF(r->tagvals);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *
ring_get_policy(RingObject *r, void *closure)
{
    return PyUnicode_FromString(r->policy_all ? "all" : "latest");
}

static PyObject *
ring_get_closed(RingObject *r, void *closure)
{
    return PyBool_FromLong(r->closed || forked(r));
}

#define RING_FAST (PyCFunction)(void (*)(void))
static PyMethodDef ring_methods[] = {
    {"take", RING_FAST ring_take, METH_FASTCALL | METH_KEYWORDS,
     "take(timeout=None)\n--\n\n"
     "The oldest pending slot, now held by the caller; None on timeout or once closed."},
    {"give_back", RING_FAST ring_give_back, METH_FASTCALL | METH_KEYWORDS,
     "give_back(slot)\n--\n\nReturn a held slot to the free list."},
    {"close", (PyCFunction)ring_close, METH_NOARGS,
     "close()\n--\n\nStop filling; pending slots count as dropped; wake waiting takers."},
    {"stats", (PyCFunction)ring_stats, METH_NOARGS,
     "stats()\n--\n\n(received, delivered, dropped, pending), read under the ring's lock."},
    {"set_tag", RING_FAST ring_set_tag, METH_FASTCALL | METH_KEYWORDS,
     "set_tag(values)\n--\n\nThe ntag integers copied into every slot filled from now on."},
    {NULL}
};

static PyMemberDef ring_members[] = {
    {"data", T_OBJECT, offsetof(RingObject, data), READONLY, "slots: ndarray[buffers, capacity]"},
    {"counts", T_OBJECT, offsetof(RingObject, counts), READONLY, "elements in each slot"},
    {"seqs", T_OBJECT, offsetof(RingObject, seqs), READONLY, "update number of each slot"},
    {"stamps", T_OBJECT, offsetof(RingObject, stamps), READONLY, "POSIX time stamp of each slot"},
    {"alarm", T_OBJECT, offsetof(RingObject, alarm), READONLY, "(status, severity) of each slot"},
    {"tagvals", T_OBJECT, offsetof(RingObject, tagvals), READONLY, "tag of each slot"},
    {"capacity", T_PYSSIZET, offsetof(RingObject, capacity), READONLY, "elements a slot holds"},
    {NULL}
};

static PyGetSetDef ring_getset[] = {
    {"policy", (getter)ring_get_policy, NULL, "'latest' or 'all'", NULL},
    {"closed", (getter)ring_get_closed, NULL, "True once closed", NULL},
    {NULL}
};

PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "CaChannel._ca._Ring",
    .tp_basicsize = sizeof(RingObject),
    .tp_dealloc = (destructor)ring_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "_Ring(buffers, capacity, dtype, policy, ntag=0)\n--\n\n"
              "Preallocated slots that libca's thread fills without the GIL "
              "(CaChannel.monitor.ArrayMonitor's C fast path; private).",
    .tp_methods = ring_methods,
    .tp_members = ring_members,
    .tp_getset = ring_getset,
    .tp_new = ring_new,
};

/* ------------------------------------------------------------------------ */
/* _ring_subscribe(chid, ring, chtype, count=None, mask=None) -> (ECA, evid|None) */

PyObject *
ca_ring_subscribe_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"chid", "ring", "chtype", "count", "mask"};
    PyObject *a[5] = {NULL, NULL, NULL, Py_None, Py_None};
    if (bind_args("_ring_subscribe", names, 5, 3, args, nargs, kwnames, a) < 0)
        return NULL;
    if (!PyObject_TypeCheck(a[1], &RingType)) {
        PyErr_Format(PyExc_TypeError, "ring must be a _Ring, not %.100s", Py_TYPE(a[1])->tp_name);
        return NULL;
    }
    RingObject *r = (RingObject *)a[1];
    ChannelObject *c;
    int got = get_channel(a[0], &c);
    if (got < 0)
        return NULL;
    long t = -1, given_n = 0, mask = DBE_VALUE | DBE_ALARM;
    if (opt_index(a[2], "chtype", &t) == -1 || opt_index(a[3], "count", &given_n) == -1 ||
        opt_index(a[4], "mask", &mask) == -1)
        return NULL;
    if (t < 0 || t > LAST_BUFFER_TYPE || !dbr_type_is_TIME(t) ||
        (Py_ssize_t)dbr_value_size[t] != r->elem_size) {
        PyErr_Format(PyExc_ValueError, "chtype must be a DBR_TIME_* type with %zd-byte "
                     "elements, not %ld", r->elem_size, t);
        return NULL;
    }
    if (r->subscribed || r->closed || forked(r)) {
        PyErr_SetString(PyExc_ValueError, "the ring is closed or already subscribed");
        return NULL;
    }
    if (got == 0 || !c->valid)   /* __index__ above may have cleared it */
        return status_none(ECA_BADCHID);
    long native;
    int connected;
    short ft;
    channel_info(c, &ft, &native, &connected);
    if (!c->valid)
        return status_none(ECA_BADCHID);
    long n = subscription_count_rule(a[3] == Py_None, given_n, native);
    PyObject *res = start_subscription(c, t, n, mask, ring_handler, (PyObject *)r, 1, r,
                                       NULL, NULL, NULL);
    if (res && PyTuple_GET_ITEM(res, 1) != Py_None)
        r->subscribed = 1;
    return res;
}
