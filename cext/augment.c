/*
 * CaChannel._ca, augment.c: augmented values (epicscorelibs.ca.dbr's
 * ca_float, ca_int, ca_str: a value with attributes) made straight from a
 * scalar event buffer, for create_subscription(augment=(cls, attrs)).
 *
 * The asyncio face (aioca's semantics) otherwise receives the event dict
 * and builds the same value in Python: three dicts made here and taken apart
 * there, per event. Only the common case is done here -- one element of a
 * plain or TIME type, status ECA_NORMAL, text that is UTF-8; every other
 * event still gets the dict, and the face converts it as before. The result
 * must equal the face's own conversion (_common.augment is the rule, and the
 * cffi backend's implementation of it), down to the float timestamp.
 */
#include "cachannel.h"

/* round(x, 6) as Python's float.__round__ computes it: the exact binary
 * value rounded to 6 decimals (ties to even), then the nearest double. A
 * timestamp's x*1e6 is not exact in double arithmetic, so the rounding is
 * done on integers: x = m * 2^-shift exactly, x*1e6 = m*1e6 / 2^shift. Returns 0
 * where this is not handled (no 128-bit integers, huge or odd x); the caller
 * then asks Python. */
static int
round6(double x, double *out)
{
#ifdef __SIZEOF_INT128__
    if (!(x > 0 && x < 4.0e9)) /* 0, negative, NaN, far future: Python does it */
        return 0;
    int e;
    double f = frexp(x, &e);                      /* x = f * 2^e, 0.5 <= f < 1 */
    unsigned long long m = (unsigned long long)ldexp(f, 53);   /* exact */
    int shift = 53 - e;
    if (shift <= 0) {                             /* an integer already */
        *out = x;
        return 1;
    }
    unsigned __int128 p = (unsigned __int128)m * 1000000u;
    unsigned __int128 q = p >> shift;
    unsigned __int128 rem = p - (q << shift);
    unsigned __int128 half = (unsigned __int128)1 << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    if (q >= ((unsigned __int128)1 << 53))        /* not exact as a double */
        return 0;
    /* q and 1e6 are exact doubles: one correctly rounded division gives the
     * double nearest q / 10^6, as Python's decimal round trip does */
    *out = (double)(unsigned long long)q / 1e6;
    return 1;
#else
    (void)x;
    (void)out;
    return 0;
#endif
}

static PyObject *
timestamp_of(long long secs, unsigned long nsec)
{
    /* the same two operations as Python's secs + nsec * 1e-9, kept apart:
     * a fused multiply-add would round once instead of twice */
    volatile double frac = (double)nsec * 1e-9;
    double x = (double)secs + frac;
    double r;
    if (round6(x, &r))
        return PyFloat_FromDouble(r);
    PyObject *f = PyFloat_FromDouble(x);
    if (!f)
        return NULL;
    PyObject *rounded = PyObject_CallMethod(f, "__round__", "i", 6);
    Py_DECREF(f);
    return rounded;
}

int
augment_spec_check(PyObject *spec)
{
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 2 ||
        !PyType_Check(PyTuple_GET_ITEM(spec, 0)) || !PyDict_Check(PyTuple_GET_ITEM(spec, 1))) {
        PyErr_Format(PyExc_TypeError,
                     "augment must be None or a tuple (type, dict), not %.100s",
                     Py_TYPE(spec)->tp_name);
        return -1;
    }
    PyTypeObject *cls = (PyTypeObject *)PyTuple_GET_ITEM(spec, 0);
    if (cls->tp_dictoffset == 0) {
        PyErr_Format(PyExc_TypeError,
                     "augment's type must have a __dict__ for the attributes: %.100s has none",
                     cls->tp_name);
        return -1;
    }
    return 0;
}

int
augment_event(PyObject *spec, const struct event_handler_args *args, PyObject **out)
{
    *out = NULL;
    long t = args->type;
    int timed = t >= DBR_TIME_STRING && t <= DBR_TIME_DOUBLE;
    if (args->status != ECA_NORMAL || !args->dbr || args->count != 1 ||
        !((t >= 0 && t <= DBR_DOUBLE) || timed))
        return 0;
    const char *buf = (const char *)args->dbr;
    PyObject *raw = scalar_of_kind(elem_kind(t), buf + dbr_value_offset[t]);
    if (!raw)
        return -1;
    if (PyBytes_Check(raw)) {   /* text that is not UTF-8: the face's rule decides */
        Py_DECREF(raw);
        return 0;
    }
    PyObject *v = PyObject_CallOneArg(PyTuple_GET_ITEM(spec, 0), raw);
    Py_DECREF(raw);
    if (!v)
        return -1;
    PyObject *d = PyObject_GenericGetDict(v, NULL);
    if (!d || PyDict_Update(d, PyTuple_GET_ITEM(spec, 1)) < 0)
        goto fail;
    if (timed) {
        /* status, severity and stamp open every TIME struct */
        const struct dbr_time_string *tm = (const struct dbr_time_string *)buf;
        long long secs = (long long)tm->stamp.secPastEpoch + posix_epoch_offset;
        unsigned long nsec = (unsigned long)tm->stamp.nsec;
        if (set_key(d, K_STATUS, PyLong_FromLong(tm->status)) < 0 ||
            set_key(d, K_SEVERITY, PyLong_FromLong(tm->severity)) < 0 ||
            set_key(d, K_RAW_STAMP, Py_BuildValue("(Lk)", secs, nsec)) < 0 ||
            set_key(d, K_TIMESTAMP, timestamp_of(secs, nsec)) < 0)
            goto fail;
    }
    Py_DECREF(d);
    *out = v;
    return 1;
fail:
    Py_XDECREF(d);
    Py_DECREF(v);
    return -1;
}
