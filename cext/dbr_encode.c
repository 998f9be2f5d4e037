/*
 * CaChannel._ca, dbr_encode.c: encoding put values: fast paths for numbers
 * and numpy arrays, everything else through _common.encode.
 */
#include "cachannel.h"

/* ------------------------------------------------------------------------ */
/* put */



void
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
int
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
    long n = put_count_rule(countobj == NULL || countobj == Py_None, given_n, native);
    if (encode_value(value, t, n, p) < 0) {
        put_req_release(p);
        return -1;
    }
    return ECA_NORMAL;
}

/* value -> *p for request type t (a put type) and element limit n >= 1:
 * the fast paths, else _common.encode. 0 ok, -1 with an exception set. */
int
encode_value(PyObject *value, long t, long n, put_req *p)
{
    int h = put_number(value, t, p);
    if (h == 0)
        h = put_array(value, t, n, p);
    if (h == 0)
        h = put_via_encode(value, t, n, p) == 0 ? 1 : -1;
    return h < 0 ? -1 : 0;
}

/* _encode(value, dbrtype, count) -> (type, count, bytes): what a put sends,
 * fast paths included, for the parity test against _common.encode
 * (tests/cext/test_rule_parity.py). Not API. */
PyObject *
ca_encode_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    long t, n;
    if (hook_args("_encode(value, dbrtype, count)", args, nargs, 3, 1, &t, &n) < 0)
        return NULL;
    if (!(t >= 0 && t <= DBR_DOUBLE) && t != DBR_PUT_ACKT && t != DBR_PUT_ACKS) {
        PyErr_SetString(PyExc_ValueError, "not a put type");
        return NULL;
    }
    put_req p;
    memset(&p, 0, sizeof(p));
    if (encode_value(args[0], t, n < 1 ? 1 : n, &p) < 0) {
        put_req_release(&p);
        return NULL;
    }
    PyObject *data = PyBytes_FromStringAndSize(p.data,
                                               (Py_ssize_t)(p.count * dbr_value_size[p.type]));
    put_req_release(&p);
    if (!data)
        return NULL;
    return Py_BuildValue("(llN)", p.type, p.count, data);
}
