/*
 * CaChannel._ca, dbr_decode.c: decoding received DBR buffers (the C twin of
 * _common.decode), the DBRValue type, and the parked buffers of callback-
 * less reads.
 */
#include "cachannel.h"

/* ------------------------------------------------------------------------ */
/* Decoding received DBR buffers: the C twin of CaChannel._common.decode. */

int
elem_kind(long t)
{
    if (t == DBR_PUT_ACKT || t == DBR_PUT_ACKS)
        return DBR_ENUM;
    if (t == DBR_STSACK_STRING || t == DBR_CLASS_NAME)
        return DBR_STRING;
    return (int)(t % 7);
}

const int npy_of_kind[7] = {
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

PyObject *
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
int
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

/* the C twin of _common.stamp: POSIX seconds (the epoch offset read from
 * _common at init), nanoseconds, float timestamp */
static int
set_stamp(PyObject *d, const epicsTimeStamp *ts)
{
    long long secs = (long long)ts->secPastEpoch + posix_epoch_offset;
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

PyObject *
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
     "get($self)\n--\n\nThe received value (valid after pend_io/sg_block returned NORMAL)."},
    {NULL}
};

static PyGetSetDef dbrvalue_getset[] = {
    {"use_numpy", (getter)dbrvalue_get_use_numpy, (setter)dbrvalue_set_use_numpy,
     "return arrays as numpy arrays", NULL},
    {"dbrtype", (getter)dbrvalue_get_dbrtype, NULL, "requested DBR type", NULL},
    {"count", (getter)dbrvalue_get_count, NULL, "requested element count", NULL},
    {NULL}
};

PyTypeObject DBRValueType = {
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
DBRValueObject *
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
void
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
int
read_hold(struct ca_client_context *ctx, long long gid, PyObject *buf)
{
    read_set *r = read_set_find(ctx, gid, 1);
    return r ? PyList_Append(r->held, buf) : -1;
}

/* How many buffers (ctx, gid) holds: taken before a settle point, as reads
 * issued by other threads while it runs are not settled by it. */
Py_ssize_t
read_mark(struct ca_client_context *ctx, long long gid)
{
    read_set *r = read_set_find(ctx, gid, 0);
    return r ? PyList_GET_SIZE(r->held) : 0;
}

/* The settle point of (ctx, gid) returned: the reads held before it (mark)
 * are done or cancelled by libca. */
void
read_settle(struct ca_client_context *ctx, long long gid, Py_ssize_t mark)
{
    read_set *r = read_set_find(ctx, gid, 0);
    if (r && mark > 0 && PyList_SetSlice(r->held, 0, mark, NULL) < 0)
        PyErr_Clear();
}

/* Forget the sets of ctx (every gid, or only gid when all is 0): the
 * context was destroyed or the group deleted. ctx NULL and all: every set
 * (in a child after fork, where no libca thread of the parent runs). */
void
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

/* _decode(dbrtype, count, buffer, use_numpy) -> value: decode_dbr on any
 * buffer, for the parity test against _common.decode
 * (tests/cext/test_rule_parity.py). Not API. */
PyObject *
ca_decode_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    long t, n;
    if (hook_args("_decode(dbrtype, count, buffer, use_numpy)", args, nargs, 4, 0, &t, &n) < 0)
        return NULL;
    int use_numpy = PyObject_IsTrue(args[3]);
    if (use_numpy < 0)
        return NULL;
    if (t < 0 || t > LAST_BUFFER_TYPE || n < 1) {
        PyErr_SetString(PyExc_ValueError, "bad DBR type or count");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[2], &view, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    PyObject *r;
    if ((size_t)view.len < (size_t)dbr_size_n(t, n)) {
        PyErr_SetString(PyExc_ValueError, "buffer too short");
        r = NULL;
    } else {
        r = decode_dbr(t, n, view.buf, use_numpy);
    }
    PyBuffer_Release(&view);
    return r;
}
