/*
 * CaChannel._ca, evqueue.c: EventQueue, subscription events handed to one
 * consumer thread (an asyncio loop) without the GIL on libca's thread.
 *
 * A subscription made with create_subscription(queue=q) does not call back
 * on libca's thread. queued_handler copies the event (its DBR bytes) into a
 * record, appends it to q under q's lock and, when q was empty, writes one
 * byte to q's pipe: the consumer watches fileno() (loop.add_reader) and calls
 * take(), which makes the values (augmented or event dicts) in its own
 * thread. With a Python callback per event, libca's receive thread and the
 * consumer handed the GIL to each other for every event of a burst; the
 * handoffs cost more than the work itself.
 *
 * get(queue=q) and put(queue=q) queue their one reply the same way: the
 * record owns the request (request_ctx) from then on, so clear_channel's
 * requests_cancelled leaves it, and take() frees it after the callback's
 * value is made (no callback if the channel was cleared meanwhile).
 *
 * Lifetime: a record points to its EvidObject without a reference (libca's
 * thread cannot touch reference counts). The evid holds q; when the evid is
 * deallocated (GIL held, libca has promised no more events for it: it left
 * its channel's evid list) evqueue_purge drops its records still queued.
 * take() references the evids of the records it took before it runs any
 * Python code, so a purge cannot miss them. After fork the child never
 * takes the lock (a parent thread may have held it): take() returns [] and
 * records made before the fork are leaked.
 *
 * POSIX only: the wake-up is a pipe an asyncio selector loop can watch.
 */
#include "cachannel.h"

#ifndef _WIN32
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <epicsMutex.h>

typedef struct evrecord {
    struct evrecord *next;
    EvidObject *ev;          /* a subscription's event (no reference: see the
                                lifetime rule above), or NULL and: */
    request_ctx *rq;         /* a get/put reply: the record owns the request */
    long type, count;
    int status;
    int has_data;
    char data[];             /* dbr_size_n(type, count) bytes if has_data */
} evrecord;

struct EvQueueObject {
    PyObject_HEAD
    /* the fields below are this file's own */
    epicsMutexId lock;
    evrecord *head, *tail;
    int signalled;           /* a byte is in the pipe for the queued records */
    int fd_r, fd_w;
    unsigned long epoch;     /* fork_epoch when made */
    Py_ssize_t queued;
    size_t bytes;            /* of the queued records */
    unsigned long long overflow;   /* events dropped: the queue was full */
};

/* A consumer that stopped taking (an event loop closed with subscriptions
 * still open) must not make the process grow without bound: events beyond
 * this are dropped and counted. */
#define EVQ_MAX_BYTES ((size_t)256 << 20)

static int
forked(EvQueueObject *q)
{
    return q->epoch != fork_epoch;
}

/* one byte in the pipe: fileno() turns readable for the consumer */
static void
wake_consumer(EvQueueObject *q)
{
    ssize_t w;
    do {
        w = write(q->fd_w, "x", 1);
    } while (w < 0 && errno == EINTR);
}

/* libca's thread: no GIL, no Python object. Copies the reply or event of
 * args into a record for e (an event) or rq (a get/put reply) and queues it
 * in q; with_data: the DBR bytes are copied too. */
static void
enqueue(EvQueueObject *q, EvidObject *e, request_ctx *rq, struct event_handler_args *args,
        int with_data)
{
    int with = with_data && args->status == ECA_NORMAL && args->dbr && args->type >= 0 &&
               args->type <= LAST_BUFFER_TYPE;
    size_t n = with ? dbr_size_n(args->type, args->count) : 0;
    evrecord *r = malloc(sizeof(*r) + n);
    if (!r)   /* no memory: the event (reply) is lost, libca's thread goes on */
        return;
    r->next = NULL;
    r->ev = e;
    r->rq = rq;
    r->type = args->type;
    r->count = args->count;
    r->status = args->status;
    r->has_data = with;
    if (n)
        memcpy(r->data, args->dbr, n);
    int wake;
    size_t size = sizeof(*r) + n;
    (void)epicsMutexLock(q->lock);
    if (q->bytes + size > EVQ_MAX_BYTES) {
        q->overflow++;
        epicsMutexUnlock(q->lock);
        free(r);
        return;
    }
    q->bytes += size;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->queued++;
    if (e)
        e->queued++;
    else
        rq->queued = 1;
    wake = !q->signalled;
    q->signalled = 1;
    epicsMutexUnlock(q->lock);
    if (wake)
        wake_consumer(q);
}

void
queued_handler(struct event_handler_args args)
{
    if (!cb_enter())
        return;
    EvidObject *e = args.usr;
    EvQueueObject *q = e->queue;
    if (q && !forked(q))
        enqueue(q, e, NULL, &args, 1);
    cb_leave();
}

/* a get or put with queue=: one reply, queued (the request goes with it) */
void
queued_request_handler(struct event_handler_args args)
{
    if (!cb_enter())
        return;   /* exit: the request leaks, as request_done's does */
    request_ctx *rq = args.usr;
    EvQueueObject *q = rq->queue;
    if (!forked(q))
        enqueue(q, NULL, rq, &args, rq->is_get);
    cb_leave();
}

/* GIL held, libca will not call back for r any more (its channel was
 * cleared): does a queued record own r? */
int
evqueue_holds(request_ctx *r)
{
    EvQueueObject *q = r->queue;
    if (!q || forked(q))
        return 0;
    (void)epicsMutexLock(q->lock);
    int held = r->queued;
    epicsMutexUnlock(q->lock);
    return held;
}

void
evqueue_purge(EvQueueObject *q, EvidObject *e)
{
    if (forked(q))
        return;
    evrecord *dead = NULL;
    (void)epicsMutexLock(q->lock);
    if (!e->queued) {   /* the common case: nothing of it waits, no walk */
        epicsMutexUnlock(q->lock);
        return;
    }
    e->queued = 0;
    evrecord **pp = &q->head, *last = NULL;
    while (*pp) {
        evrecord *r = *pp;
        if (r->ev == e) {   /* (request records have ev NULL) */
            *pp = r->next;
            r->next = dead;
            dead = r;
            q->queued--;
            q->bytes -= sizeof(*r) + (r->has_data ? dbr_size_n(r->type, r->count) : 0);
        } else {
            last = r;
            pp = &r->next;
        }
    }
    q->tail = last;
    epicsMutexUnlock(q->lock);
    while (dead) {
        evrecord *next = dead->next;
        free(dead);
        dead = next;
    }
}

static void
drain_pipe(EvQueueObject *q)
{
    char buf[64];
    while (read(q->fd_r, buf, sizeof buf) > 0)
        ;
}

/* the libca callback arguments a record stands for */
static void
record_args(evrecord *r, ChannelObject *chan, void *usr, struct event_handler_args *args)
{
    memset(args, 0, sizeof *args);
    args->usr = usr;
    args->chid = chan->ch;
    args->type = r->type;
    args->count = r->count;
    args->dbr = r->has_data ? r->data : NULL;
    args->status = r->status;
}

/* the value a subscription's callback gets for a record (augmented, or the event dict) */
static PyObject *
event_value(evrecord *r)
{
    EvidObject *e = r->ev;
    struct event_handler_args args;
    record_args(r, e->chan, e, &args);
    PyObject *v = NULL;
    if (e->augment) {
        int a = augment_event(e->augment, &args, &v);
        if (a != 0)
            return v;   /* made, or NULL with the exception */
    }
    return event_dict(e->chan, &args, e->use_numpy);
}

/* (callback, value) for a record to hand out, Py_None to skip it (its
 * subscription or channel is gone), NULL with an exception */
static PyObject *
record_item(evrecord *r)
{
    PyObject *cb, *v;
    if (r->ev) {
        EvidObject *e = r->ev;
        if (!(e->valid && e->chan->valid && e->callback))
            return Py_NewRef(Py_None);
        cb = e->callback;
        v = event_value(r);
    } else {
        request_ctx *rq = r->rq;
        if (!rq->chan->valid)   /* cleared after the reply came: no callback, as request_done */
            return Py_NewRef(Py_None);
        struct event_handler_args args;
        record_args(r, rq->chan, rq, &args);
        cb = rq->callback;
        v = request_value(rq, &args);
    }
    if (!v)
        return NULL;
    PyObject *item = PyTuple_Pack(2, cb, v);
    Py_DECREF(v);
    return item;
}

static PyObject *
evq_take(EvQueueObject *q, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"max"};
    PyObject *a[1] = {Py_None};
    if (bind_args("take", names, 1, 0, args, nargs, kwnames, a) < 0)
        return NULL;
    long max = 0;   /* 0: every record */
    int r_max = opt_index(a[0], "max", &max);
    if (r_max == -1)
        return NULL;
    if (r_max == 0 && max < 1) {
        PyErr_Format(PyExc_ValueError, "max must be >= 1 or None, not %ld", max);
        return NULL;
    }
    if (forked(q))
        return PyList_New(0);
    /* the pipe first: a byte written after this belongs to records this
     * take() does not see, and wakes the consumer again */
    drain_pipe(q);
    (void)epicsMutexLock(q->lock);
    evrecord *r = q->head, *last = NULL;
    Py_ssize_t n = 0;
    size_t bytes = 0;
    for (evrecord *p = r; p && (max == 0 || n < max); p = p->next) {
        last = p;
        n++;
        bytes += sizeof(*p) + (p->has_data ? dbr_size_n(p->type, p->count) : 0);
        if (p->ev)
            p->ev->queued--;   /* the record is ours now: a purge does not look for it */
    }
    if (last) {
        q->head = last->next;
        last->next = NULL;
    }
    int left = q->head != NULL;
    if (!left)
        q->tail = NULL;
    q->queued -= n;
    q->bytes = left ? q->bytes - bytes : 0;
    /* records left (take(max)): they keep the consumer woken */
    q->signalled = left;
    epicsMutexUnlock(q->lock);
    if (left)
        wake_consumer(q);
    /* before any Python code runs (it may drop the last reference to an
     * evid, whose purge no longer sees these records). A request stays
     * marked queued: requests_cancelled leaves it to us, and we free it. */
    for (evrecord *p = r; p; p = p->next)
        if (p->ev)
            Py_INCREF(p->ev);
    PyObject *out = PyList_New(0);
    while (r) {
        evrecord *next = r->next;
        if (out) {
            PyObject *item = record_item(r);
            if (!item || (item != Py_None && PyList_Append(out, item) < 0))
                Py_CLEAR(out);   /* the rest is freed below; the error is raised */
            Py_XDECREF(item);
        }
        if (r->ev)
            Py_DECREF(r->ev);
        else
            request_free(r->rq);
        free(r);
        r = next;
    }
    return out;
}

static PyObject *
evq_fileno(EvQueueObject *q, PyObject *noargs)
{
    return PyLong_FromLong(q->fd_r);
}

/* queued (closure NULL) or overflow: counters the producer changes under the lock */
static PyObject *
evq_counter(EvQueueObject *q, void *closure)
{
    unsigned long long n = 0;
    if (!forked(q)) {
        (void)epicsMutexLock(q->lock);
        n = closure ? q->overflow : (unsigned long long)q->queued;
        epicsMutexUnlock(q->lock);
    }
    return PyLong_FromUnsignedLongLong(n);
}

static int
set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) ? -1 : 0;
}

static PyObject *
evq_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "EventQueue() takes no arguments");
        return NULL;
    }
    EvQueueObject *q = (EvQueueObject *)type->tp_alloc(type, 0);
    if (!q)
        return NULL;
    q->fd_r = q->fd_w = -1;
    q->epoch = fork_epoch;
    int fds[2];
    if (pipe(fds) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(q);
        return NULL;
    }
    q->fd_r = fds[0];
    q->fd_w = fds[1];
    if (set_flags(fds[0]) < 0 || set_flags(fds[1]) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(q);
        return NULL;
    }
    q->lock = epicsMutexCreate();
    if (!q->lock) {
        PyErr_NoMemory();
        Py_DECREF(q);
        return NULL;
    }
    return (PyObject *)q;
}

static void
evq_dealloc(EvQueueObject *q)
{
    /* every evid and request holds its queue: no record is left but those
     * inherited across fork (their requests leak with them) */
    evrecord *r = q->head;
    while (r) {
        evrecord *next = r->next;
        free(r);
        r = next;
    }
    if (q->lock && !forked(q))
        epicsMutexDestroy(q->lock);
    if (q->fd_r >= 0)
        close(q->fd_r);
    if (q->fd_w >= 0)
        close(q->fd_w);
    Py_TYPE(q)->tp_free((PyObject *)q);
}

static PyMethodDef evq_methods[] = {
    {"take", (PyCFunction)(void (*)(void))evq_take, METH_FASTCALL | METH_KEYWORDS,
     "take($self, max=None)\n--\n\n-> [(callback, value), ...]: the events and replies queued so "
     "far (at most max of them, the oldest; the rest keep fileno() readable), oldest first, of "
     "subscriptions and channels still alive; values made as the callbacks of "
     "create_subscription, get and put get them."},
    {"fileno", (PyCFunction)evq_fileno, METH_NOARGS,
     "fileno($self)\n--\n\n-> int: readable when events are queued (for loop.add_reader)."},
    {NULL},
};

static PyGetSetDef evq_getset[] = {
    {"queued", (getter)evq_counter, NULL, "events queued now", NULL},
    {"overflow", (getter)evq_counter, NULL,
     "events dropped because 256 MiB were queued (a consumer that stopped taking)", "overflow"},
    {NULL},
};

PyTypeObject EvQueueType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "CaChannel._ca.EventQueue",
    .tp_basicsize = sizeof(EvQueueObject),
    .tp_dealloc = (destructor)evq_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "EventQueue()\n--\n\nSubscription events for one consumer thread, without "
              "the GIL on libca's thread (create_subscription(queue=)).",
    .tp_new = evq_new,
    .tp_methods = evq_methods,
    .tp_getset = evq_getset,
};
#endif
