/*
 * CaChannel._ca, pend.c: execution: pend_io, pend_event, poll, pend,
 * flush_io, test_io.
 */
#include "cachannel.h"

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

PyObject *
ca_pend_io_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *arg;
    if (bind_one("pend_io", "timeout", args, nargs, kwnames, &arg) < 0)
        return NULL;
    double t;
    if (parse_timeout(arg, &t) < 0)
        return NULL;
    return pend_io_impl(t);
}

PyObject *
ca_pend_event_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *arg;
    if (bind_one("pend_event", "timeout", args, nargs, kwnames, &arg) < 0)
        return NULL;
    double t;
    if (parse_timeout(arg, &t) < 0)
        return NULL;
    return pend_event_impl(t);
}

PyObject *
ca_poll_py(PyObject *m, PyObject *noargs)
{
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_poll();
    Py_END_ALLOW_THREADS
    return ECA_OBJ(s);
}

PyObject *
ca_pend_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"timeout", "early"};
    PyObject *a[2] = {NULL, NULL};
    if (bind_args("pend", names, 2, 2, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *tobj = a[0], *early = a[1];
    double t;
    if (parse_timeout(tobj, &t) < 0)
        return NULL;
    int e = PyObject_IsTrue(early);
    if (e < 0)
        return NULL;
    return e ? pend_io_impl(t) : pend_event_impl(t);
}

PyObject *
ca_flush_io_py(PyObject *m, PyObject *noargs)
{
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_flush_io();
    Py_END_ALLOW_THREADS
    return ECA_OBJ(s);
}

PyObject *
ca_test_io_py(PyObject *m, PyObject *noargs)
{
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_test_io();
    Py_END_ALLOW_THREADS
    return ECA_OBJ(s);
}
