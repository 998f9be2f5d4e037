/*
 * CaChannel._ca, request.c: requests on a channel: get, put and
 * subscriptions, and the request type/count resolution they share.
 */
#include "cachannel.h"

/* ------------------------------------------------------------------------ */
/* Request type resolution shared by get/put/subscribe */

/* ECA_NORMAL and *t, or an error status (the C twin of
 * _common.resolve_request_type). chtype already checked for type. */
int
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

/* The count rules, C twins of _common.get_count, subscription_count and
 * put_count (tests/cext/test_rule_parity.py holds them equal). given is the
 * count argument as an integer, absent when no_count. */
long
get_count_rule(int no_count, long given, long native, int with_cb, long t)
{
    if (t == DBR_CLASS_NAME)
        return 1;   /* one string whatever the channel's count; the server
                       pads further elements with garbage */
    if (no_count || given < 0 || given > native || (given == 0 && !with_cb))
        return native;
    return given;
}

long
subscription_count_rule(int no_count, long given, long native)
{
    /* native 0: never connected; libca clamps a kept count at connection */
    if (no_count || given < 0 || (native > 0 && given > native))
        return native;
    return given;
}

long
put_count_rule(int no_count, long given, long native)
{
    if (native < 1)
        native = 1;
    if (no_count || given <= 0 || given > native)
        return native;
    return given;
}

/* one GIL release for all three: each release/reacquire costs as much as
 * the libca getter itself */
void
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

/* Validate out= and pick type/count (the C twin of _common.out_request).
 * -1 with an exception set. */
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
PyObject *
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

PyObject *
status_none(int s)
{
    return status_pair(s, Py_NewRef(Py_None));
}

/* the body shared by get (gid == NULL) and sg_get */
/* queue= of get/put/create_subscription: None or an EventQueue; 0 or -1
 * with TypeError */
int
check_queue(PyObject *queue)
{
    if (!queue || queue == Py_None)
        return 0;
#ifndef _WIN32
    if (PyObject_TypeCheck(queue, &EvQueueType))
        return 0;
    PyErr_Format(PyExc_TypeError, "queue must be None or an EventQueue, not %.100s",
                 Py_TYPE(queue)->tp_name);
#else
    PyErr_SetString(PyExc_TypeError, "queue: EventQueue is not available on Windows");
#endif
    return -1;
}

/* the reply handler of a get/put with a callback: queued or called back */
static caEventCallBackFunc *
reply_handler(request_ctx *rq, caEventCallBackFunc *direct)
{
#ifndef _WIN32
    if (rq->queue)
        return queued_request_handler;
#endif
    return direct;
}

PyObject *
do_get(CA_SYNC_GID *gid, PyObject *obj, PyObject *chtype, PyObject *countobj, PyObject *cb,
       int use_numpy, PyObject *out, PyObject *augment, PyObject *queue)
{
    long given_t = 0, given_n = 0;
    ChannelObject *c;
    int r = get_channel(obj, &c);
    if (r < 0 || check_callback(cb) < 0 || check_queue(queue) < 0)
        return NULL;
    int has_augment = augment && augment != Py_None;
    if (has_augment && augment_spec_check(augment) < 0)
        return NULL;
    if (opt_index(chtype, "chtype", &given_t) == -1 ||
        opt_index(countobj, "count", &given_n) == -1)
        return NULL;
    int with_cb = cb && cb != Py_None;
    if (out && out != Py_None && with_cb) {
        PyErr_SetString(PyExc_ValueError, "out= is for synchronous gets (no callback)");
        return NULL;
    }
    if (!with_cb && (has_augment || (queue && queue != Py_None))) {
        PyErr_SetString(PyExc_ValueError, "augment= and queue= are for gets with a callback");
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
        n = get_count_rule(countobj == NULL || countobj == Py_None, given_n, native, with_cb, t);
    }
    int s;
    if (with_cb) {
        if (!c->valid)
            return status_none(ECA_BADCHID);
        request_ctx *rq = request_new(cb, c, use_numpy, 1, has_augment ? augment : NULL,
                                      queue == Py_None ? NULL : queue);
        if (!rq)
            return NULL;
        caEventCallBackFunc *handler = reply_handler(rq, get_handler);
        CHAN_CALL(c, s = ca_array_get_callback(t, n, c->ch, handler, rq));
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

PyObject *
ca_get_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"chid", "chtype", "count", "callback", "use_numpy",
                                        "out", "augment", "queue"};
    PyObject *a[8] = {NULL, Py_None, Py_None, Py_None, NULL, Py_None, Py_None, Py_None};
    if (bind_args("get", names, 8, 1, args, nargs, kwnames, a) < 0)
        return NULL;
    int use_numpy = opt_bool(a[4], 0);
    if (use_numpy < 0)
        return NULL;
    return do_get(NULL, a[0], a[1], a[2], a[3], use_numpy, a[5], a[6], a[7]);
}

PyObject *
ca_put_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"chid", "value", "chtype", "count", "callback",
                                        "queue"};
    PyObject *a[6] = {NULL, NULL, Py_None, Py_None, Py_None, Py_None};
    if (bind_args("put", names, 6, 2, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *obj = a[0], *value = a[1], *chtype = a[2], *count = a[3], *cb = a[4];
    PyObject *queue = a[5];
    long given_t = 0, given_n = 0;
    ChannelObject *c;
    int r = get_channel(obj, &c);
    if (r < 0 || check_callback(cb) < 0 || check_queue(queue) < 0 ||
        opt_index(chtype, "chtype", &given_t) == -1 ||
        opt_index(count, "count", &given_n) == -1)
        return NULL;
    if (cb == Py_None && queue != Py_None) {
        PyErr_SetString(PyExc_ValueError, "queue= is for puts with a callback");
        return NULL;
    }
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
        request_ctx *rq = request_new(cb, c, 0, 0, NULL, queue == Py_None ? NULL : queue);
        if (!rq) {
            put_req_release(&p);
            return NULL;
        }
        caEventCallBackFunc *handler = reply_handler(rq, put_handler);
        CHAN_CALL(c, s = ca_array_put_callback(p.type, p.count, c->ch, p.data, handler, rq));
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

/* pv_callback= of create_subscription: None or (callable, tuple), and only
 * where events go straight to a callback (no augment=, no queue=) */
static int
pv_callback_check(PyObject *pv_callback, PyObject *augment, PyObject *queue)
{
    if (pv_callback == Py_None)
        return 0;
    if (!PyTuple_Check(pv_callback) || PyTuple_GET_SIZE(pv_callback) != 2
        || !PyCallable_Check(PyTuple_GET_ITEM(pv_callback, 0))
        || !PyTuple_Check(PyTuple_GET_ITEM(pv_callback, 1))) {
        PyErr_SetString(PyExc_TypeError, "pv_callback must be None or (callable, tuple)");
        return -1;
    }
    if (augment != Py_None || queue != Py_None) {
        PyErr_SetString(PyExc_ValueError, "pv_callback cannot be combined with augment or queue");
        return -1;
    }
    return 0;
}

PyObject *
ca_create_subscription_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"chid", "callback", "chtype", "count", "mask", "use_numpy",
                                        "augment", "queue", "pv_callback"};
    PyObject *a[9] = {NULL, NULL, Py_None, Py_None, Py_None, NULL, Py_None, Py_None, Py_None};
    if (bind_args("create_subscription", names, 9, 2, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *obj = a[0], *cb = a[1], *chtype = a[2], *count = a[3], *maskobj = a[4];
    PyObject *augment = a[6], *queue = a[7], *pv_callback = a[8];
    int use_numpy = opt_bool(a[5], 0);
    if (use_numpy < 0)
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
    if ((augment != Py_None && augment_spec_check(augment) < 0) || check_queue(queue) < 0
        || pv_callback_check(pv_callback, augment, queue) < 0)
        return NULL;
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
    long n = subscription_count_rule(count == Py_None, given_n, native);
    caEventCallBackFunc *handler = event_handler;
#ifndef _WIN32
    if (queue != Py_None)
        handler = queued_handler;
#endif
    return start_subscription(c, t, n, mask, handler, cb, use_numpy, NULL,
                              augment == Py_None ? NULL : augment,
                              queue == Py_None ? NULL : queue,
                              pv_callback == Py_None ? NULL : pv_callback);
}

/* Make the evid of a new subscription of c and ask libca for it: handler
 * gets usr (or, when NULL, the evid itself) with every event. The evid
 * holds target (a callable, or ring.c's _Ring) and sits in the channel's
 * evid list, the reference libca conceptually owns, from before
 * ca_create_subscription (the first event may come inside it) until
 * clear_subscription/clear_channel/destroy_context. augment (augment.c) and
 * queue (evqueue.c) may be NULL; both are set before libca can deliver the
 * first event. Returns (ECA, evid) or (ECA, None); NULL with an exception set. */
PyObject *
start_subscription(ChannelObject *c, long t, long n, long mask, caEventCallBackFunc *handler,
                   PyObject *target, int use_numpy, void *usr, PyObject *augment,
                   PyObject *queue, PyObject *pv_callback)
{
    EvidObject *e = PyObject_New(EvidObject, &EvidType);
    if (!e)
        return NULL;
    e->ev = NULL;
    e->valid = 1;
    e->use_numpy = use_numpy;
    e->chan = (ChannelObject *)Py_NewRef((PyObject *)c);
    e->callback = Py_NewRef(target);
    e->augment = augment ? Py_NewRef(augment) : NULL;
    e->queue = queue ? (EvQueueObject *)Py_NewRef(queue) : NULL;
    e->queued = 0;
    e->pv_fn = pv_callback ? Py_NewRef(PyTuple_GET_ITEM(pv_callback, 0)) : NULL;
    e->pv_args = pv_callback ? Py_NewRef(PyTuple_GET_ITEM(pv_callback, 1)) : NULL;
    e->linked = 0;
    e->ev_prev = e->ev_next = NULL;
    evid_link(c, e);
    evid ev = NULL;
    int s = ECA_BADCHID;
    if (c->valid)   /* else cleared meanwhile (a finalizer run by the allocations) */
        CHAN_CALL(c, s = ca_create_subscription(t, n, c->ch, mask, handler,
                                                usr ? usr : (void *)e, &ev));
    if (s != ECA_NORMAL) {
        e->valid = 0;
        evid_unlink(c, e);
        Py_DECREF(e);
        return status_none(s);
    }
    e->ev = ev;
    return Py_BuildValue("(NN)", ECA_OBJ(s), (PyObject *)e);
}

PyObject *
ca_clear_subscription_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *arg;
    if (bind_one("clear_subscription", "evid", args, nargs, kwnames, &arg) < 0)
        return NULL;
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
    evid_unlink(c, e);
    return ECA_OBJ(s);
}
