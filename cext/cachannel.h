/*
 * Private header of CaChannel._ca, the C extension backend of CaChannel.ca
 * (ca-api.md section 2). The extension is split by concern, in the manner of
 * CPython's Modules/_sqlite:
 *   module.c      state definitions, method table, init, exit/fork hooks
 *   callbacks.c   what libca calls: trampolines, GIL, callback accounting
 *   handles.c     chid/evid/Context types and their validity tracking
 *   args.c        argument conversion shared by all functions
 *   dbr_decode.c  DBR buffer decoding, DBRValue, parked read buffers
 *   dbr_encode.c  put value encoding
 *   context.c, channel.c, request.c (get/put/subscribe), pend.c, sync_group.c
 *
 * Argument parsing: every function with parameters is METH_FASTCALL |
 * METH_KEYWORDS and binds them with bind_args (args.c), the style the
 * benchmarked hot paths (get, put, create_channel) need; every parameter can
 * be given by position or by name, as in the cffi backend, and the
 * docstrings carry text signatures equal to the cffi functions' signatures
 * (tests/cext/test_signatures.py).
 *
 * Rules that shape the extension:
 *  - every libca call is made with the GIL released: with a preemptive
 *    context libca runs callbacks in its own threads while holding its
 *    callback lock, and those callbacks need the GIL;
 *  - callbacks take the GIL with PyGILState_Ensure, and never run Python
 *    code once the module's atexit hook has started (cb_enter, callbacks.c);
 *  - the Python objects handed to libca as "puser"/"usr" are kept alive by a
 *    reference libca conceptually owns, dropped only after libca promised
 *    not to call back with them (clear_channel, clear_subscription, after a
 *    get/put callback ran);
 *  - the rules are defined once, in CaChannel._common: decode/encode for the
 *    conversions, resolve_request_type, get_count, subscription_count,
 *    put_count, out_request and sync_group_id for requests, stamp and
 *    POSIX_TIME_AT_EPICS_EPOCH (read at init) for timestamps. The C code
 *    here reproduces decode exactly, takes over encode only for the common
 *    cases whose result is obvious (numbers, numpy arrays) and sends
 *    everything else through the Python encode; its request rules are named
 *    twins (resolve_type, *_count_rule, out_request, parse_gid).
 *    tests/cext/test_rule_parity.py holds them equal, through the private
 *    _encode/_decode hooks and on the IOC.
 */
#ifndef CACHANNEL_H
#define CACHANNEL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* one numpy API table for all files; module.c imports it */
#define PY_ARRAY_UNIQUE_SYMBOL cachannel_ARRAY_API
#ifndef CACHANNEL_MODULE_C
#define NO_IMPORT_ARRAY
#endif

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <math.h>
#include <float.h>
#include <string.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>

#include <cadef.h>
#include <db_access.h>
#include <epicsThread.h>

#if PY_VERSION_HEX >= 0x030D0000
#define PY_FINALIZING() Py_IsFinalizing()
#else
#define PY_FINALIZING() _Py_IsFinalizing()
#endif


#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *Py_NewRef(PyObject *o) { Py_INCREF(o); return o; }
static inline int
PyModule_AddObjectRef(PyObject *m, const char *name, PyObject *v)
{
    Py_INCREF(v);
    if (PyModule_AddObject(m, name, v) < 0) {
        Py_DECREF(v);
        return -1;
    }
    return 0;
}
#endif

#ifndef _WIN32
#include <pthread.h>
#endif

/* everything declared below is private to the extension: hidden, so that
 * no name here can bind to a symbol of the same name in another library */
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility push(hidden)
#endif


/* ------------------------------------------------------------------------ */
/* Module state. Single-phase init: the extension supports one interpreter,
 * as libca's callbacks cannot tell interpreters apart anyway. */

extern PyObject *m_module;
extern PyObject *py_encode;          /* CaChannel._common.encode */
/* CaChannel._common.POSIX_TIME_AT_EPICS_EPOCH, read at module init: the one
 * definition of the epoch offset added to TIME stamps (dbr_decode.c) */
extern long long posix_epoch_offset;

/* Buffers of callback-less reads (get/sg_get) that libca may still fill,
 * held until the settle point of their own request set: pend_io of the
 * channel's context, or sg_block/sg_reset/sg_delete of the group (a group
 * belongs to one context). One set per (context, group); gid -1 is the
 * context's pend_io set. A settle point in one context or group never
 * releases another's buffers. */
typedef struct read_set {
    struct ca_client_context *ctx;
    long long gid;
    PyObject *held;      /* list of buffers */
    struct read_set *next;
} read_set;
extern read_set *read_sets;

/* Liveness of context handles: a Context object is alive while its
 * (address, generation) is the one recorded here; destroy_context forgets
 * the address, fork() forgets them all (and bumps fork_epoch). */
extern PyObject *ctx_gens;           /* dict: address (int) -> generation (int) */
/* addresses of contexts destroyed here and not seen alive since: another
 * thread that was attached to one still has it as its current context in
 * libca's thread-private slot (ca_context_destroy only detaches the calling
 * thread), a dangling pointer libca would use on that thread's next call */
extern PyObject *dead_ctxs;          /* set of addresses (int) */
extern unsigned long long next_ctx_gen;
extern unsigned long fork_epoch;

#define ECA_CACHE 512
extern PyObject *eca_members[ECA_CACHE];
extern PyObject *dbr_members[40];    /* index t+1, t = -1..38 */
extern PyObject *dbf_members[8];     /* index t+1, t = -1..6 */
extern PyObject *op_members[8];
extern PyObject *cs_members[5];
extern PyObject *cond_members[22];
extern PyObject *sev_members[4];

/* Dict keys of the callback arguments, made once: Py_BuildValue("{s:O..}")
 * creates and hashes every key string again per event, which was most of
 * the cost of delivering a scalar monitor event. */
enum { K_CHID, K_TYPE, K_COUNT, K_STATUS, K_VALUE, K_SEVERITY, K_STAMP, K_SECONDS,
       K_NANOSECONDS, K_TIMESTAMP, K_OP, K_READ_ACCESS, K_WRITE_ACCESS, K_RAW_STAMP, K_PV_VALUE,
       K_N };
extern const char *const key_names[K_N];
extern PyObject *keys[K_N];

/* callbacks in flight; the atexit hook waits for them to drain */
extern atomic_int cb_inflight;
extern atomic_int shutting_down;

extern PyObject *printf_callback;    /* protected by the GIL */

/* Exception handler slots: one per context, so that libca can hold the
 * slot pointer as "usr" while the callable inside is swapped under the GIL;
 * freed by destroy_context once libca has forgotten the pointer. */
typedef struct exc_slot {
    struct ca_client_context *ctx;
    PyObject *callback;
    struct exc_slot *next;
} exc_slot;
extern exc_slot *exc_slots;

static inline PyObject *
cached(PyObject **table, long lo, long hi, long v)
{
    if (v >= lo && v <= hi && table[v - lo]) {
        Py_INCREF(table[v - lo]);
        return table[v - lo];
    }
    return PyLong_FromLong(v);
}
#define ECA_OBJ(s)  cached(eca_members, 0, ECA_CACHE - 1, (long)(s))
/* libca reports "no type" as -1 in a long on success but as the 32-bit
 * pattern 0xFFFFFFFF on some failures: read the low 32 bits as signed */
#define DBR_OBJ(t)  cached(dbr_members, -1, 38, (long)(int32_t)(t))
#define DBF_OBJ(t)  cached(dbf_members, -1, 6, (long)(t))
#define OP_OBJ(o)   cached(op_members, 0, 7, (long)(o))
#define CS_OBJ(s)   cached(cs_members, 0, 4, (long)(s))
#define COND_OBJ(s) cached(cond_members, 0, 21, (long)(s))
#define SEV_OBJ(s)  cached(sev_members, 0, 3, (long)(s))

#ifndef _WIN32
/* callbacks.c: libca threads whose thread state is kept (see gil_take) */
extern pthread_key_t pin_key;
extern int pin_key_ok;
#endif


/* ------------------------------------------------------------------------ */
/* Handle types */

struct EvidObject;

typedef struct ChannelObject {
    PyObject_HEAD
    chid ch;
    int valid;
    int inuse;           /* calls in progress with the GIL released */
    int clear_pending;   /* clear_channel came while inuse: the last call clears */
    int dead_reason;     /* why invalid: DEAD_CLEARED, DEAD_CONTEXT, DEAD_FORK */
    /* native type and count at the last connection, read by the connection
     * handler before it takes the GIL (native_type -1: none seen yet); next
     * to the ints, so that they add one word to the object, not two (100,000
     * channels): a CA element count is 32 bits on the wire */
    short native_type;
    unsigned int native_count;
    struct ca_client_context *ctx;
    PyObject *conn_cb;
    PyObject *access_cb;
    /* live subscriptions, each holding a reference for this list: linked
     * through the evids themselves (a Python list per subscribed channel was
     * one more object for the garbage collector, 100,000 in a big process) */
    struct EvidObject *evids;
    PyObject *name;      /* the name as given (str) */
    struct ChannelObject *prev, *next;   /* registry of live channels */
    struct request_ctx *requests;   /* get/put callbacks not yet run */
} ChannelObject;

typedef struct EvQueueObject EvQueueObject;   /* evqueue.c */

typedef struct EvidObject {
    PyObject_HEAD
    evid ev;
    int valid;
    int use_numpy;
    int linked;             /* in chan's evids list (which holds a reference) */
    struct EvidObject *ev_prev, *ev_next;
    ChannelObject *chan;
    PyObject *callback;
    PyObject *augment;   /* (cls, attrs) of augment.c, or NULL */
    EvQueueObject *queue;   /* create_subscription(queue=): a reference, or NULL */
    Py_ssize_t queued;      /* its records in queue (under the queue's lock) */
    /* create_subscription(pv_callback=(fn, user_args)): both, or NULL (the
     * pair itself is not kept: one object fewer per 3.x subscription) */
    PyObject *pv_fn, *pv_args;
} EvidObject;

typedef struct {
    PyObject_HEAD
    struct ca_client_context *ctx;
    unsigned long long gen;   /* see ctx_gens */
    unsigned long epoch;      /* fork_epoch when it was made */
} ContextObject;

enum { DEAD_CLEARED = 0, DEAD_CONTEXT = 1, DEAD_FORK = 2 };

enum { BUF_RAW = 0, BUF_ARRAY = 1, BUF_OUT = 2 };

typedef struct {
    PyObject_HEAD
    long type;
    long count;
    int use_numpy;
    int mode;
    PyObject *buf;       /* bytes (raw DBR struct) or ndarray (plain values) */
    PyObject *result;    /* BUF_OUT: out or out[:count] */
} DBRValueObject;

extern PyTypeObject ChannelType, EvidType, ContextType, DBRValueType, RingType;
extern ChannelObject *live_channels;

/* Release the GIL around a libca call on a channel. The caller checked
 * c->valid with no Python code run since (any Python code, a conversion
 * or a finalizer run by an allocation, may clear the channel or destroy its
 * context). inuse keeps the chid alive meanwhile: clear_channel defers to
 * the last call (chan_leave), destroy_context waits for it. */
#define CHAN_CALL(c, stmt) do { \
        (c)->inuse++; \
        Py_BEGIN_ALLOW_THREADS \
        stmt; \
        Py_END_ALLOW_THREADS \
        chan_leave(c); \
    } while (0)

/* A get/put callback request. Linked into its channel's list (under the
 * GIL) so that clear_channel/destroy_context can free the ones libca
 * cancelled without calling back. */
typedef struct request_ctx {
    PyObject *callback;
    ChannelObject *chan;
    int use_numpy;
    int is_get;             /* a get (the reply has a value) or a put */
    PyObject *augment;      /* get(augment=): (cls, attrs) of augment.c, or NULL */
    EvQueueObject *queue;   /* get/put(queue=): the reply goes there (a reference), or NULL */
    int queued;             /* its reply waits in queue (under the queue's lock): then
                               the queue's take() frees it, not requests_cancelled */
    struct request_ctx *prev, *next;
} request_ctx;

/* a put request converted to what ca_array_put takes */
typedef struct {
    long type;
    long count;
    const void *data;
    Py_buffer view;
    int has_view;
    PyObject *hold;
    union { epicsInt16 s; epicsUInt16 u; epicsUInt8 c; epicsInt32 l;
            epicsFloat32 f; epicsFloat64 d; } scalar;
} put_req;

/* numpy type number of each DBR value kind (dbr_decode.c) */
extern const int npy_of_kind[7];

/* args.c */
int get_channel(PyObject *obj, ChannelObject **out);
ChannelObject *info_channel(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames);
int opt_index(PyObject *obj, const char *what, long *v);
int check_callback(PyObject *cb);
int bind_args(const char *fname, const char *const *names, int nmax, int nreq,
              PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **slots);
int bind_one(const char *fname, const char *name, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames, PyObject **out);
int opt_bool(PyObject *obj, int dflt);
int parse_timeout(PyObject *obj, double *t);

/* handles.c */
void registry_add(ChannelObject *c);
void registry_remove(ChannelObject *c);
void context_forget(struct ca_client_context *ctx);
void context_seen_alive(struct ca_client_context *ctx);
void detach_if_destroyed(void);
PyObject *context_new(struct ca_client_context *ctx);
struct ca_client_context *context_live(ContextObject *o);
void channel_quiesce(ChannelObject *c);
int invalidate_context_channels(struct ca_client_context *ctx, PyObject *dead, int reason);
void forget_channel_refs(ChannelObject *c);
void mark_evids_dead(ChannelObject *c);
void evid_link(ChannelObject *c, EvidObject *e);
void evid_unlink(ChannelObject *c, EvidObject *e);
int finish_clear(ChannelObject *c);
void chan_leave(ChannelObject *c);

/* callbacks.c */
int cb_enter(void);    /* 0: Python is going away, touch nothing */
void cb_leave(void);
void pin_release(void *p);
request_ctx *request_new(PyObject *cb, ChannelObject *chan, int use_numpy, int is_get,
                         PyObject *augment, PyObject *queue);
PyObject *request_value(request_ctx *r, struct event_handler_args *args);
void request_free(request_ctx *r);
void requests_cancelled(ChannelObject *c);
void get_handler(struct event_handler_args args);
void put_handler(struct event_handler_args args);
void event_handler(struct event_handler_args args);
void connection_handler(struct connection_handler_args args);
void access_handler(struct access_rights_handler_args args);
void exception_handler(struct exception_handler_args args);
int printf_handler(const char *fmt, va_list ap);

/* evqueue.c (POSIX) */
#ifndef _WIN32
extern PyTypeObject EvQueueType;
void queued_handler(struct event_handler_args args);
void queued_request_handler(struct event_handler_args args);
int evqueue_holds(request_ctx *r);
void evqueue_purge(EvQueueObject *q, EvidObject *e);
#endif
PyObject *event_dict(ChannelObject *chan, struct event_handler_args *args, int use_numpy);
PyObject *event_dict_as(ChannelObject *chan, struct event_handler_args *args, int use_numpy,
                        int value_key);

/* augment.c */
int augment_spec_check(PyObject *spec);
int augment_event(PyObject *spec, const struct event_handler_args *args, PyObject **out);

/* dbr_decode.c */
int elem_kind(long t);
PyObject *scalar_of_kind(int kind, const char *p);
int set_key(PyObject *d, int k, PyObject *v);
PyObject *decode_dbr(long t, long count, const void *buf, int use_numpy);
DBRValueObject *dbrvalue_new(long t, long count, int use_numpy, void **data);
void dbrvalue_discard(DBRValueObject *v);
int read_hold(struct ca_client_context *ctx, long long gid, PyObject *buf);
Py_ssize_t read_mark(struct ca_client_context *ctx, long long gid);
void read_settle(struct ca_client_context *ctx, long long gid, Py_ssize_t mark);
void read_drop(struct ca_client_context *ctx, long long gid, int all);

/* dbr_encode.c */
void put_req_release(put_req *p);
long get_count_rule(int no_count, long given, long native, int with_cb, long t);
long subscription_count_rule(int no_count, long given, long native);
long put_count_rule(int no_count, long given, long native);
int hook_args(const char *usage, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want,
              Py_ssize_t i, long *t, long *n);
int encode_value(PyObject *value, long t, long n, put_req *p);
PyObject *ca_encode_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *ca_decode_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
int prepare_put(ChannelObject *c, PyObject *value, PyObject *chtype, long given_t,
                PyObject *countobj, long given_n, put_req *p);

/* context.c */
PyObject *ca_create_context_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames);
struct ca_client_context *current_ctx(void);
PyObject *ca_destroy_context_py(PyObject *m, PyObject *noargs);
PyObject *ca_attach_context_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames);
PyObject *ca_detach_context_py(PyObject *m, PyObject *noargs);
PyObject *ca_current_context_py(PyObject *m, PyObject *noargs);
PyObject *ca_show_context_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames);
PyObject *ca_add_exception_event_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames);
PyObject *ca_replace_printf_handler_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                       PyObject *kwnames);

/* channel.c */
PyObject *ca_create_channel_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames);
PyObject *ca_clear_channel_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames);
PyObject *ca_change_connection_event_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                        PyObject *kwnames);
PyObject *ca_replace_access_rights_event_py(PyObject *m, PyObject *const *args,
                                            Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_field_type_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_element_count_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames);
PyObject *ca_name_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_state_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_host_name_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_read_access_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames);
PyObject *ca_write_access_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames);
PyObject *ca_message_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_version_py(PyObject *m, PyObject *noargs);

/* request.c */
int resolve_type(short ft, PyObject *chtype, long given, long *t);
void channel_info(ChannelObject *c, short *ft, long *native, int *connected);
PyObject *status_pair(int s, PyObject *obj);
PyObject *status_none(int s);
PyObject *do_get(CA_SYNC_GID *gid, PyObject *obj, PyObject *chtype, PyObject *countobj,
                 PyObject *cb, int use_numpy, PyObject *out, PyObject *augment,
                 PyObject *queue);
int check_queue(PyObject *queue);
PyObject *ca_get_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_put_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *start_subscription(ChannelObject *c, long t, long n, long mask,
                             caEventCallBackFunc *handler, PyObject *target, int use_numpy,
                             void *usr, PyObject *augment, PyObject *queue,
                             PyObject *pv_callback);
PyObject *ca_create_subscription_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames);
PyObject *ca_clear_subscription_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames);

/* ring.c */
PyObject *ca_ring_subscribe_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames);

/* pend.c */
PyObject *ca_pend_io_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_pend_event_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_poll_py(PyObject *m, PyObject *noargs);
PyObject *ca_pend_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_flush_io_py(PyObject *m, PyObject *noargs);
PyObject *ca_test_io_py(PyObject *m, PyObject *noargs);

/* sync_group.c */
PyObject *ca_sg_create_py(PyObject *m, PyObject *noargs);
PyObject *ca_sg_delete_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_sg_reset_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_sg_block_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_sg_test_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_sg_get_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ca_sg_put_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);

#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility pop
#endif

#endif /* CACHANNEL_H */
