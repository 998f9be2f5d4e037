/*
 * CaChannel._ca, sync_group.c: synchronous groups.
 */
#include "cachannel.h"

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

PyObject *
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

PyObject *
ca_sg_delete_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *arg;
    if (bind_one("sg_delete", "gid", args, nargs, kwnames, &arg) < 0)
        return NULL;
    return sg_settle(0, arg);
}

PyObject *
ca_sg_reset_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *arg;
    if (bind_one("sg_reset", "gid", args, nargs, kwnames, &arg) < 0)
        return NULL;
    return sg_settle(1, arg);
}

PyObject *
ca_sg_block_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"gid", "timeout"};
    PyObject *a[2] = {NULL, NULL};
    if (bind_args("sg_block", names, 2, 2, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *gidobj = a[0], *tobj = a[1];
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

PyObject *
ca_sg_test_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *arg;
    if (bind_one("sg_test", "gid", args, nargs, kwnames, &arg) < 0)
        return NULL;
    CA_SYNC_GID gid;
    GID_OR_RETURN(arg, gid);
    int s;
    Py_BEGIN_ALLOW_THREADS
    s = ca_sg_test(gid);
    Py_END_ALLOW_THREADS
    return ECA_OBJ(s);
}

PyObject *
ca_sg_get_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"gid", "chid", "chtype", "count", "use_numpy"};
    PyObject *a[5] = {NULL, NULL, Py_None, Py_None, NULL};
    if (bind_args("sg_get", names, 5, 2, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *gidobj = a[0], *obj = a[1], *chtype = a[2], *count = a[3];
    int use_numpy = opt_bool(a[4], 0);
    if (use_numpy < 0)
        return NULL;
    CA_SYNC_GID gid;
    int r = parse_gid(gidobj, &gid);
    if (r < 0)
        return NULL;
    if (r > 0)
        return status_none(ECA_BADSYNCGRP);
    return do_get(&gid, obj, chtype, count, NULL, use_numpy, NULL, NULL, NULL);
}

PyObject *
ca_sg_put_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"gid", "chid", "value", "chtype", "count"};
    PyObject *a[5] = {NULL, NULL, NULL, Py_None, Py_None};
    if (bind_args("sg_put", names, 5, 3, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *gidobj = a[0], *obj = a[1], *value = a[2], *chtype = a[3], *count = a[4];
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
