/*
 * CaChannel._ca, module.c: the module state, the method table and module
 * init, and the interpreter-exit and fork hooks.
 */
#define CACHANNEL_MODULE_C
#include "cachannel.h"

/* module state (declared, with its rules, in cachannel.h) */
PyObject *m_module;
PyObject *py_encode;
long long posix_epoch_offset;
read_set *read_sets;
PyObject *ctx_gens;
PyObject *dead_ctxs;
unsigned long long next_ctx_gen = 1;
unsigned long fork_epoch;
PyObject *eca_members[ECA_CACHE];
PyObject *dbr_members[40];
PyObject *dbf_members[8];
PyObject *op_members[8];
PyObject *cs_members[5];
PyObject *cond_members[22];
PyObject *sev_members[4];
PyObject *keys[K_N];
atomic_int cb_inflight;
atomic_int shutting_down;
PyObject *printf_callback;
exc_slot *exc_slots;

const char *const key_names[K_N] = {
    "chid", "type", "count", "status", "value", "severity", "stamp", "seconds",
    "nanoseconds", "timestamp", "op", "read_access", "write_access", "raw_stamp",
    "pv_value",
};

/* ------------------------------------------------------------------------ */
/* Interpreter exit */

/* Registered with atexit: runs while the interpreter is fully alive. From
 * here on libca callbacks return without touching Python; we wait (GIL
 * released) for the callbacks already inside Python code to finish. */
static PyObject *
ca_shutdown_py(PyObject *m, PyObject *noargs)
{
    atomic_store(&shutting_down, 1);
    /* Another libca user (the cffi backend's own atexit hook, say) may
     * destroy the contexts our channels live in; objects finalized after
     * this point (a __del__ calling clear_channel) must then see dead
     * handles instead of freed chids. libca reclaims the channels at exit. */
    for (ChannelObject *c = live_channels; c; ) {
        ChannelObject *next = c->next;
        c->valid = 0;
        mark_evids_dead(c);
        c = next;
    }
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < 5000 && atomic_load(&cb_inflight) > 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* fork() */

/* os.register_at_fork(after_in_child=...): runs in the child, whose only
 * thread is the one that forked. libca's threads and whatever locks they
 * held are gone, so nothing of the inherited contexts may be touched: every
 * handle becomes dead without a libca call, the thread's context pointer is
 * dropped (ca_detach_context only resets a thread-private slot) and the
 * first CA call of the child makes a new context. */
static PyObject *
ca_after_fork_child_py(PyObject *m, PyObject *noargs)
{
    fork_epoch++;
    /* callbacks that were running in the parent's libca threads never end */
    atomic_store(&cb_inflight, 0);
    PyDict_Clear(ctx_gens);
    PySet_Clear(dead_ctxs);
    PyObject *dead = PyList_New(0);
    if (!dead)
        return NULL;
    if (invalidate_context_channels(NULL, dead, DEAD_FORK) < 0) {
        Py_DECREF(dead);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(dead); i++)
        ((ChannelObject *)PyList_GET_ITEM(dead, i))->inuse = 0;   /* those threads are gone */
    read_drop(NULL, 0, 1);
    while (exc_slots) {
        exc_slot *s = exc_slots;
        exc_slots = s->next;
        Py_CLEAR(s->callback);
        PyMem_RawFree(s);
    }
    Py_CLEAR(printf_callback);
    ca_detach_context();
    /* libCom's first epicsThread use in a child prints a warning about
     * fork; make it here, where the Python hook silences stderr, rather
     * than at the child's first CA call */
    (void)epicsThreadGetIdSelf();
    /* last: dropping callbacks runs finalizers, which find every handle dead */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(dead); i++)
        forget_channel_refs((ChannelObject *)PyList_GET_ITEM(dead, i));
    Py_DECREF(dead);
    Py_RETURN_NONE;
}



/* Text signatures ("name(params)\n--\n\n") give inspect.signature the
 * parameters of the cffi backend's functions, which define the same API. */
#define FAST (PyCFunction)(void (*)(void))
#define FAST_FLAGS (METH_FASTCALL | METH_KEYWORDS)
static PyMethodDef ca_methods[] = {
    {"create_context", FAST ca_create_context_py, FAST_FLAGS,
     "create_context(preemptive_callback=True)\n--\n\n-> ECA\n\n"
     "Create a CA context for the calling thread (preemptive by default)."},
    {"destroy_context", ca_destroy_context_py, METH_NOARGS,
     "destroy_context()\n--\n\n-> None\n\n"
     "Destroy the calling thread's context. Its channels and subscriptions are "
     "dead afterwards (ECA_BADCHID/ECA_BADMONID; ValueError from the "
     "information functions) and so is its context object "
     "(attach_context/show_context raise ValueError). The thread's next CA call "
     "makes a new context (non-preemptive unless create_context comes first). "
     "Only the calling thread is detached."},
    {"attach_context", FAST ca_attach_context_py, FAST_FLAGS,
     "attach_context(context)\n--\n\n-> ECA\n\n"
     "ValueError for a context that was destroyed or inherited across fork()."},
    {"detach_context", ca_detach_context_py, METH_NOARGS,
     "detach_context()\n--\n\n-> None"},
    {"current_context", ca_current_context_py, METH_NOARGS,
     "current_context()\n--\n\n-> context|None"},
    {"show_context", FAST ca_show_context_py, FAST_FLAGS,
     "show_context(context=None, level=0)\n--\n\n-> None\n\n"
     "ValueError for a context that was destroyed or inherited across fork()."},
    {"create_channel", FAST ca_create_channel_py, FAST_FLAGS,
     "create_channel(name, callback=None, priority=0)\n--\n\n-> (ECA, chid|None)"},
    {"clear_channel", FAST ca_clear_channel_py, FAST_FLAGS,
     "clear_channel(chid)\n--\n\n-> ECA\n\n"
     "The channel is dead at once; when a libca call on it is in progress "
     "(another thread, or a callback libca runs inside that call) the libca "
     "clear is made when that call returns."},
    {"change_connection_event", FAST ca_change_connection_event_py, FAST_FLAGS,
     "change_connection_event(chid, callback=None)\n--\n\n-> ECA"},
    {"replace_access_rights_event", FAST ca_replace_access_rights_event_py, FAST_FLAGS,
     "replace_access_rights_event(chid, callback=None)\n--\n\n-> ECA"},
    {"add_exception_event", FAST ca_add_exception_event_py, FAST_FLAGS,
     "add_exception_event(callback=None)\n--\n\n-> ECA"},
    {"replace_printf_handler", FAST ca_replace_printf_handler_py, FAST_FLAGS,
     "replace_printf_handler(callback=None)\n--\n\n-> ECA"},
    {"get", FAST ca_get_py, FAST_FLAGS,
     "get(chid, chtype=None, count=None, callback=None, use_numpy=False, out=None, "
     "augment=None, queue=None)\n--\n\n"
     "-> (ECA, DBRValue|None)"},
    {"put", FAST ca_put_py, FAST_FLAGS,
     "put(chid, value, chtype=None, count=None, callback=None, queue=None)\n--\n\n-> ECA"},
    {"create_subscription", FAST ca_create_subscription_py, FAST_FLAGS,
     "create_subscription(chid, callback, chtype=None, count=None, mask=None, "
     "use_numpy=False, augment=None, queue=None, pv_callback=None)\n--\n\n-> (ECA, evid|None)"},
    {"clear_subscription", FAST ca_clear_subscription_py, FAST_FLAGS,
     "clear_subscription(evid)\n--\n\n-> ECA"},
    {"pend_io", FAST ca_pend_io_py, FAST_FLAGS,
     "pend_io(timeout)\n--\n\n-> ECA"},
    {"pend_event", FAST ca_pend_event_py, FAST_FLAGS,
     "pend_event(timeout)\n--\n\n-> ECA"},
    {"poll", ca_poll_py, METH_NOARGS,
     "poll()\n--\n\n-> ECA"},
    {"pend", FAST ca_pend_py, FAST_FLAGS,
     "pend(timeout, early)\n--\n\n-> ECA"},
    {"flush_io", ca_flush_io_py, METH_NOARGS,
     "flush_io()\n--\n\n-> ECA"},
    {"test_io", ca_test_io_py, METH_NOARGS,
     "test_io()\n--\n\n-> ECA"},
    {"field_type", FAST ca_field_type_py, FAST_FLAGS,
     "field_type(chid)\n--\n\n-> DBF"},
    {"element_count", FAST ca_element_count_py, FAST_FLAGS,
     "element_count(chid)\n--\n\n-> int"},
    {"name", FAST ca_name_py, FAST_FLAGS,
     "name(chid)\n--\n\n-> str"},
    {"state", FAST ca_state_py, FAST_FLAGS,
     "state(chid)\n--\n\n-> ChannelState"},
    {"host_name", FAST ca_host_name_py, FAST_FLAGS,
     "host_name(chid)\n--\n\n-> str"},
    {"read_access", FAST ca_read_access_py, FAST_FLAGS,
     "read_access(chid)\n--\n\n-> bool"},
    {"write_access", FAST ca_write_access_py, FAST_FLAGS,
     "write_access(chid)\n--\n\n-> bool"},
    {"message", FAST ca_message_py, FAST_FLAGS,
     "message(status)\n--\n\n-> str"},
    {"version", ca_version_py, METH_NOARGS,
     "version()\n--\n\n-> str"},
    {"sg_create", ca_sg_create_py, METH_NOARGS,
     "sg_create()\n--\n\n-> (ECA, gid|None)"},
    {"sg_delete", FAST ca_sg_delete_py, FAST_FLAGS,
     "sg_delete(gid)\n--\n\n-> ECA"},
    {"sg_get", FAST ca_sg_get_py, FAST_FLAGS,
     "sg_get(gid, chid, chtype=None, count=None, use_numpy=False)\n--\n\n"
     "-> (ECA, DBRValue|None)"},
    {"sg_put", FAST ca_sg_put_py, FAST_FLAGS,
     "sg_put(gid, chid, value, chtype=None, count=None)\n--\n\n-> ECA"},
    {"sg_block", FAST ca_sg_block_py, FAST_FLAGS,
     "sg_block(gid, timeout)\n--\n\n-> ECA"},
    {"sg_test", FAST ca_sg_test_py, FAST_FLAGS,
     "sg_test(gid)\n--\n\n-> ECA"},
    {"sg_reset", FAST ca_sg_reset_py, FAST_FLAGS,
     "sg_reset(gid)\n--\n\n-> ECA"},
    {"_encode", (PyCFunction)(void (*)(void))ca_encode_py, METH_FASTCALL,
     "_encode(value, dbrtype, count)\n--\n\n-> (type, count, bytes): a put's conversion "
     "(tests only)"},
    {"_decode", (PyCFunction)(void (*)(void))ca_decode_py, METH_FASTCALL,
     "_decode(dbrtype, count, buffer, use_numpy)\n--\n\n-> value: DBR buffer decoding "
     "(tests only)"},
    {"_ring_subscribe", FAST ca_ring_subscribe_py, FAST_FLAGS,
     "_ring_subscribe(chid, ring, chtype, count=None, mask=None)\n--\n\n-> (ECA, evid|None): "
     "a subscription whose events libca's thread copies into a _Ring without the GIL "
     "(CaChannel.monitor.ArrayMonitor)"},
    {"_shutdown", ca_shutdown_py, METH_NOARGS,
     "_shutdown()\n--\n\n-> None\n\n"
     "Stop delivering callbacks (atexit hook)."},
    {"_after_fork_child", ca_after_fork_child_py, METH_NOARGS,
     "_after_fork_child()\n--\n\n-> None\n\n"
     "Abandon the inherited CA state in a child after fork (os.register_at_fork "
     "hook)."},
    {NULL}
};

static struct PyModuleDef ca_module = {
    PyModuleDef_HEAD_INIT, "CaChannel._ca",
    "C extension backend of CaChannel.ca (Channel Access on libca).", -1, ca_methods,
};

static int
fill_cache(PyObject *common, const char *clsname, PyObject **table, long lo, long hi)
{
    PyObject *cls = PyObject_GetAttrString(common, clsname);
    if (!cls)
        return -1;
    for (long v = lo; v <= hi; v++) {
        PyObject *member = PyObject_CallFunction(cls, "l", v);
        if (!member) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
                Py_DECREF(cls);
                return -1;
            }
            PyErr_Clear();
        }
        table[v - lo] = member;   /* owned for the life of the process */
    }
    Py_DECREF(cls);
    return 0;
}

PyMODINIT_FUNC
PyInit__ca(void)
{
    import_array();
#ifndef _WIN32
    pin_key_ok = pthread_key_create(&pin_key, pin_release) == 0;
#endif
    if (PyType_Ready(&ChannelType) < 0 || PyType_Ready(&EvidType) < 0 ||
        PyType_Ready(&ContextType) < 0 || PyType_Ready(&DBRValueType) < 0 ||
        PyType_Ready(&RingType) < 0
#ifndef _WIN32
        || PyType_Ready(&EvQueueType) < 0
#endif
        )
        return NULL;
    PyObject *common = PyImport_ImportModule("CaChannel._common");
    if (!common)
        return NULL;
    PyObject *m = PyModule_Create(&ca_module);
    PyObject *all = NULL, *names = NULL;
    if (!m)
        goto fail;
    for (int k = 0; k < K_N; k++) {
        keys[k] = PyUnicode_InternFromString(key_names[k]);   /* owned for good */
        if (!keys[k])
            goto fail;
    }
    if (fill_cache(common, "ECA", eca_members, 0, ECA_CACHE - 1) < 0 ||
        fill_cache(common, "DBR", dbr_members, -1, 38) < 0 ||
        fill_cache(common, "DBF", dbf_members, -1, 6) < 0 ||
        fill_cache(common, "CA_OP", op_members, 0, 7) < 0 ||
        fill_cache(common, "ChannelState", cs_members, 0, 4) < 0 ||
        fill_cache(common, "AlarmCondition", cond_members, 0, 21) < 0 ||
        fill_cache(common, "AlarmSeverity", sev_members, 0, 3) < 0)
        goto fail;
    py_encode = PyObject_GetAttrString(common, "encode");
    PyObject *epoch = PyObject_GetAttrString(common, "POSIX_TIME_AT_EPICS_EPOCH");
    if (!epoch)
        goto fail;
    posix_epoch_offset = PyLong_AsLongLong(epoch);
    Py_DECREF(epoch);
    if (posix_epoch_offset == -1 && PyErr_Occurred())
        goto fail;
    ctx_gens = PyDict_New();
    dead_ctxs = PySet_New(NULL);
    if (!py_encode || !ctx_gens || !dead_ctxs)
        goto fail;

    /* the constants, enums and pure helpers are the shared ones */
    names = PyObject_GetAttrString(common, "__all__");
    if (!names)
        goto fail;
    all = PySequence_List(names);
    if (!all)
        goto fail;
    Py_ssize_t n = PyList_GET_SIZE(all);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyList_GET_ITEM(all, i);
        PyObject *val = PyObject_GetAttr(common, key);
        if (!val || PyObject_SetAttr(m, key, val) < 0) {
            Py_XDECREF(val);
            goto fail;
        }
        Py_DECREF(val);
    }
    for (PyMethodDef *d = ca_methods; d->ml_name; d++) {
        if (d->ml_name[0] == '_')
            continue;
        PyObject *s = PyUnicode_FromString(d->ml_name);
        if (!s || PyList_Append(all, s) < 0) {
            Py_XDECREF(s);
            goto fail;
        }
        Py_DECREF(s);
    }
    static const char *extra[] = {"backend", "HAS_NUMPY", "DBRValue",
#ifndef _WIN32
                                  "EventQueue",
#endif
                                  NULL};
    for (const char **e = extra; *e; e++) {
        PyObject *s = PyUnicode_FromString(*e);
        if (!s || PyList_Append(all, s) < 0) {
            Py_XDECREF(s);
            goto fail;
        }
        Py_DECREF(s);
    }
    if (PyList_Sort(all) < 0)
        goto fail;
    if (PyModule_AddStringConstant(m, "backend", "cext") < 0 ||
        PyModule_AddObjectRef(m, "HAS_NUMPY", Py_True) < 0 ||
        PyModule_AddObjectRef(m, "DBRValue", (PyObject *)&DBRValueType) < 0 ||
        PyModule_AddObjectRef(m, "chid", (PyObject *)&ChannelType) < 0 ||
        PyModule_AddObjectRef(m, "evid", (PyObject *)&EvidType) < 0 ||
        PyModule_AddObjectRef(m, "Context", (PyObject *)&ContextType) < 0 ||
        PyModule_AddObjectRef(m, "_Ring", (PyObject *)&RingType) < 0 ||
#ifndef _WIN32
        PyModule_AddObjectRef(m, "EventQueue", (PyObject *)&EvQueueType) < 0 ||
#endif
        PyModule_AddObjectRef(m, "__all__", all) < 0)
        goto fail;

    /* stop callbacks before the interpreter starts to finalize */
    PyObject *atexit = PyImport_ImportModule("atexit");
    if (!atexit)
        goto fail;
    PyObject *hook = PyObject_GetAttrString(m, "_shutdown");
    PyObject *r = hook ? PyObject_CallMethod(atexit, "register", "O", hook) : NULL;
    Py_DECREF(atexit);
    Py_XDECREF(hook);
    if (!r)
        goto fail;
    Py_DECREF(r);

    /* abandon the inherited CA state in a child after fork */
    PyObject *fhook = PyObject_GetAttrString(m, "_after_fork_child");
    r = fhook ? PyObject_CallMethod(common, "_register_fork_child", "O", fhook) : NULL;
    Py_XDECREF(fhook);
    if (!r)
        goto fail;
    Py_DECREF(r);

    Py_DECREF(names);
    Py_DECREF(all);
    Py_DECREF(common);
    m_module = m;
    return m;
fail:
    Py_XDECREF(names);
    Py_XDECREF(all);
    Py_XDECREF(common);
    Py_XDECREF(m);
    return NULL;
}
