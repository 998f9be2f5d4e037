/*
 * CaChannel._ca, channel.c: channels: create/clear, connection and
 * access-rights callbacks, and the information functions.
 */
#include "cachannel.h"

/* ------------------------------------------------------------------------ */
/* Channels */


PyObject *
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
    c->evids = NULL;
    c->native_type = -1;
    c->native_count = 0;
    c->name = PyUnicode_Check(nameobj) ? Py_NewRef(nameobj)
              : PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), "replace");
    c->valid = 1;
    if (!c->name) {
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

PyObject *
ca_clear_channel_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *arg;
    if (bind_one("clear_channel", "chid", args, nargs, kwnames, &arg) < 0)
        return NULL;
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

/* change_connection_event and replace_access_rights_event: put the new
 * callable (or none) in the channel's slot before the call, as libca runs
 * the handler inside it when the channel is connected */
static PyObject *
replace_handler(const char *fname, int access, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    static const char *const names[] = {"chid", "callback"};
    PyObject *a[2] = {NULL, Py_None};
    if (bind_args(fname, names, 2, 1, args, nargs, kwnames, a) < 0)
        return NULL;
    ChannelObject *c;
    int r = get_channel(a[0], &c);
    if (r < 0)
        return NULL;
    if (r == 0)
        return ECA_OBJ(ECA_BADCHID);
    PyObject **slot = access ? &c->access_cb : &c->conn_cb;
    PyObject *old = *slot;
    *slot = PyCallable_Check(a[1]) ? Py_NewRef(a[1]) : NULL;
    int on = *slot != NULL, s;
    if (access)
        CHAN_CALL(c, s = ca_replace_access_rights_event(c->ch, on ? access_handler : NULL));
    else
        CHAN_CALL(c, s = ca_change_connection_event(c->ch, on ? connection_handler : NULL));
    /* released only now: its finalizer may clear this very channel */
    Py_XDECREF(old);
    return ECA_OBJ(s);
}

PyObject *
ca_change_connection_event_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return replace_handler("change_connection_event", 0, args, nargs, kwnames);
}

PyObject *
ca_replace_access_rights_event_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return replace_handler("replace_access_rights_event", 1, args, nargs, kwnames);
}


/* ------------------------------------------------------------------------ */
/* Channel information */

PyObject *
ca_field_type_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *c = info_channel("field_type", args, nargs, kwnames);
    if (!c)
        return NULL;
    short ft;
    CHAN_CALL(c, ft = ca_field_type(c->ch));
    return DBF_OBJ(ft);
}

PyObject *
ca_element_count_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *c = info_channel("element_count", args, nargs, kwnames);
    if (!c)
        return NULL;
    unsigned long n;
    CHAN_CALL(c, n = ca_element_count(c->ch));
    return PyLong_FromUnsignedLong(n);
}

PyObject *
ca_name_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *c = info_channel("name", args, nargs, kwnames);
    if (!c)
        return NULL;
    const char *s;
    CHAN_CALL(c, s = ca_name(c->ch));
    if (!s)
        return Py_NewRef(c->name);
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

PyObject *
ca_state_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *arg;
    if (bind_one("state", "chid", args, nargs, kwnames, &arg) < 0)
        return NULL;
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

PyObject *
ca_host_name_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *c = info_channel("host_name", args, nargs, kwnames);
    if (!c)
        return NULL;
    char buf[256];
    CHAN_CALL(c, ca_get_host_name(c->ch, buf, sizeof(buf)));
    buf[sizeof(buf) - 1] = '\0';
    return PyUnicode_DecodeUTF8(buf, (Py_ssize_t)strlen(buf), "replace");
}

PyObject *
ca_read_access_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *c = info_channel("read_access", args, nargs, kwnames);
    if (!c)
        return NULL;
    int a;
    CHAN_CALL(c, a = ca_read_access(c->ch));
    return PyBool_FromLong(a);
}

PyObject *
ca_write_access_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *c = info_channel("write_access", args, nargs, kwnames);
    if (!c)
        return NULL;
    int a;
    CHAN_CALL(c, a = ca_write_access(c->ch));
    return PyBool_FromLong(a);
}

PyObject *
ca_message_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *arg;
    if (bind_one("message", "status", args, nargs, kwnames, &arg) < 0)
        return NULL;
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

PyObject *
ca_version_py(PyObject *m, PyObject *noargs)
{
    const char *v;
    Py_BEGIN_ALLOW_THREADS
    v = ca_version();
    Py_END_ALLOW_THREADS
    return PyUnicode_FromString(v);
}
