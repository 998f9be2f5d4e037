/*
 * CaChannel._ca, args.c: argument binding and conversion shared by all
 * functions (the one parsing style, see cachannel.h).
 */
#include "cachannel.h"

/* ------------------------------------------------------------------------ */
/* Argument helpers */

/* 1: live channel in *out; 0: None or cleared; -1: TypeError set */
int
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

/* The live channel given as the only argument "chid" of the information
 * function fname; NULL with an exception set (ValueError for None or a
 * cleared channel, as the info functions of ca-api.md raise) */
ChannelObject *
info_channel(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *obj;
    if (bind_one(fname, "chid", args, nargs, kwnames, &obj) < 0)
        return NULL;
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
int
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
int
check_callback(PyObject *cb)
{
    if (cb && cb != Py_None && !PyCallable_Check(cb)) {
        PyErr_Format(PyExc_TypeError, "callback must be callable or None, not %.100s",
                     Py_TYPE(cb)->tp_name);
        return -1;
    }
    return 0;
}

/* Vectorcall argument binding, the one parsing style of the module (see
 * cachannel.h). Slots not given stay as the caller initialised them; the
 * errors read like CPython's. */
int
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

/* bind_args for the functions of one required argument */
int
bind_one(const char *fname, const char *name, PyObject *const *args, Py_ssize_t nargs,
         PyObject *kwnames, PyObject **out)
{
    if (nargs == 1 && !kwnames) {
        *out = args[0];
        return 0;
    }
    const char *const names[1] = {name};
    *out = NULL;
    return bind_args(fname, names, 1, 1, args, nargs, kwnames, out);
}

/* the 'p' converter: -1 with an exception set */
int
opt_bool(PyObject *obj, int dflt)
{
    return obj ? PyObject_IsTrue(obj) : dflt;
}

int
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

/* Arguments of the test hooks _encode/_decode: exactly `want` positional
 * arguments, args[i] and args[i + 1] (DBR type and count) as C longs.
 * 0, or -1 with TypeError/OverflowError set. */
int
hook_args(const char *usage, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want,
          Py_ssize_t i, long *t, long *n)
{
    if (nargs != want) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    *t = PyLong_AsLong(args[i]);
    if (*t == -1 && PyErr_Occurred())
        return -1;
    *n = PyLong_AsLong(args[i + 1]);
    return *n == -1 && PyErr_Occurred() ? -1 : 0;
}
