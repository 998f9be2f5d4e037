/*
 * CaChannel._ca, context.c: contexts (create, destroy, attach, detach,
 * current, show), the per-context exception handler and the process-wide
 * printf handler.
 */
#include "cachannel.h"

/* ------------------------------------------------------------------------ */
/* Contexts */

static exc_slot *
slot_for(struct ca_client_context *ctx, int create)
{
    for (exc_slot *s = exc_slots; s; s = s->next)
        if (s->ctx == ctx)
            return s;
    if (!create)
        return NULL;
    /* raw malloc: the slot must outlive the interpreter, libca may still
     * hold it when Python's allocators are gone */
    exc_slot *s = PyMem_RawCalloc(1, sizeof(*s));
    if (!s) {
        PyErr_NoMemory();
        return NULL;
    }
    s->ctx = ctx;
    s->next = exc_slots;
    exc_slots = s;
    return s;
}

PyObject *
ca_create_context_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"preemptive_callback"};
    PyObject *a[1] = {NULL};
    if (bind_args("create_context", names, 1, 0, args, nargs, kwnames, a) < 0)
        return NULL;
    int preemptive = opt_bool(a[0], 1);
    if (preemptive < 0)
        return NULL;
    detach_if_destroyed();
    int s;
    struct ca_client_context *ctx;
    Py_BEGIN_ALLOW_THREADS
    s = ca_context_create(preemptive ? ca_enable_preemptive_callback
                                     : ca_disable_preemptive_callback);
    ctx = ca_current_context();
    Py_END_ALLOW_THREADS
    if (s == ECA_NORMAL)
        context_seen_alive(ctx);
    return ECA_OBJ(s);
}

struct ca_client_context *
current_ctx(void)
{
    struct ca_client_context *ctx;
    Py_BEGIN_ALLOW_THREADS
    ctx = ca_current_context();
    Py_END_ALLOW_THREADS
    return ctx;
}

PyObject *
ca_destroy_context_py(PyObject *m, PyObject *noargs)
{
    struct ca_client_context *ctx = current_ctx();
    if (!ctx)
        Py_RETURN_NONE;
    PyObject *dead = PyList_New(0);
    if (!dead)
        return NULL;
    if (invalidate_context_channels(ctx, dead, DEAD_CONTEXT) < 0) {
        /* out of memory half way: the channels listed are dead, the
         * others stay usable and the context stays */
        Py_DECREF(dead);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(dead); i++)
        channel_quiesce((ChannelObject *)PyList_GET_ITEM(dead, i));
    context_forget(ctx);
    Py_BEGIN_ALLOW_THREADS
    ca_context_destroy();
    Py_END_ALLOW_THREADS
    /* libca cancelled every outstanding read of the context */
    read_drop(ctx, 0, 1);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(dead); i++)
        forget_channel_refs((ChannelObject *)PyList_GET_ITEM(dead, i));
    Py_DECREF(dead);
    /* the context is gone, and with it libca's pointer to the slot */
    for (exc_slot **pp = &exc_slots; *pp; pp = &(*pp)->next) {
        if ((*pp)->ctx == ctx) {
            exc_slot *s = *pp;
            *pp = s->next;
            Py_CLEAR(s->callback);
            PyMem_RawFree(s);
            break;
        }
    }
    /* the printf callback is process-wide (as in the cffi backend): it
     * stays for the next context that installs the handler */
    Py_RETURN_NONE;
}

PyObject *
ca_attach_context_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *arg;
    if (bind_one("attach_context", "context", args, nargs, kwnames, &arg) < 0)
        return NULL;
    if (!PyObject_TypeCheck(arg, &ContextType)) {
        PyErr_Format(PyExc_TypeError, "expected a context from current_context(), not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    int s;
    struct ca_client_context *ctx = context_live((ContextObject *)arg);
    if (!ctx)
        return NULL;
    detach_if_destroyed();
    /* libca only reads and sets its thread-private pointer here (no lock, no
     * I/O): keeping the GIL saves two hand-offs, which cost tens of us each
     * while libca's threads queue for the GIL with callbacks */
    s = ca_attach_context(ctx);
    return ECA_OBJ(s);
}

PyObject *
ca_detach_context_py(PyObject *m, PyObject *noargs)
{
    ca_detach_context();  /* thread-private pointer only: see attach_context */
    Py_RETURN_NONE;
}

PyObject *
ca_current_context_py(PyObject *m, PyObject *noargs)
{
    struct ca_client_context *ctx = ca_current_context();  /* thread-private read */
    if (!ctx)
        Py_RETURN_NONE;
    if (PySet_GET_SIZE(dead_ctxs) > 0) {
        /* the thread is still "attached" to a context another thread
         * destroyed: it has none (a Context made of it would be live) */
        PyObject *key = PyLong_FromVoidPtr(ctx);
        int dead = key ? PySet_Contains(dead_ctxs, key) : -1;
        Py_XDECREF(key);
        if (dead < 0)
            return NULL;
        if (dead)
            Py_RETURN_NONE;
    }
    return context_new(ctx);
}

PyObject *
ca_show_context_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"context", "level"};
    PyObject *a[2] = {Py_None, NULL};
    if (bind_args("show_context", names, 2, 0, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *context = a[0], *levelobj = a[1];
    long level = 0;
    if (levelobj && opt_index(levelobj, "level", &level) == -1)
        return NULL;
    if (level < 0)
        level = 0;
    if (context != Py_None && !PyObject_TypeCheck(context, &ContextType)) {
        PyErr_Format(PyExc_TypeError, "expected a context or None, not %.100s",
                     Py_TYPE(context)->tp_name);
        return NULL;
    }
    struct ca_client_context *ctx = NULL;
    if (context != Py_None && !(ctx = context_live((ContextObject *)context)))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (ctx)
        ca_context_status(ctx, (unsigned)level);
    else
        ca_client_status((unsigned)level);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyObject *
ca_add_exception_event_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"callback"};
    PyObject *a[1] = {Py_None};
    if (bind_args("add_exception_event", names, 1, 0, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *cb = a[0];
    struct ca_client_context *ctx;
    Py_BEGIN_ALLOW_THREADS
    ctx = ca_current_context();
    if (!ctx) {
        /* what libca itself would do on this call */
        ca_context_create(ca_disable_preemptive_callback);
        ctx = ca_current_context();
    }
    Py_END_ALLOW_THREADS
    exc_slot *slot = slot_for(ctx, 1);
    if (!slot)
        return NULL;
    int s;
    if (PyCallable_Check(cb)) {
        Py_XSETREF(slot->callback, Py_NewRef(cb));
        Py_BEGIN_ALLOW_THREADS
        s = ca_add_exception_event(exception_handler, slot);
        Py_END_ALLOW_THREADS
    } else {
        Py_BEGIN_ALLOW_THREADS
        s = ca_add_exception_event(NULL, NULL);
        Py_END_ALLOW_THREADS
        Py_CLEAR(slot->callback);
    }
    return ECA_OBJ(s);
}

PyObject *
ca_replace_printf_handler_py(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"callback"};
    PyObject *a[1] = {Py_None};
    if (bind_args("replace_printf_handler", names, 1, 0, args, nargs, kwnames, a) < 0)
        return NULL;
    PyObject *cb = a[0];
    int s;
    if (PyCallable_Check(cb)) {
        Py_XSETREF(printf_callback, Py_NewRef(cb));
        Py_BEGIN_ALLOW_THREADS
        s = ca_replace_printf_handler(printf_handler);
        Py_END_ALLOW_THREADS
    } else {
        Py_BEGIN_ALLOW_THREADS
        s = ca_replace_printf_handler(NULL);
        Py_END_ALLOW_THREADS
        Py_CLEAR(printf_callback);
    }
    return ECA_OBJ(s);
}
