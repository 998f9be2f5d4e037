"""The cffi backend of ``CaChannel.ca`` (ABI mode: no compiler needed).

It implements the low-level API of ca-api.md section 2 on top of libca,
with the value conversions of :mod:`CaChannel._common`. cffi releases the GIL
around every libca call and takes it for every callback, so preemptive
callbacks arrive in libca's threads while Python threads block in
``pend_event``/``pend_io``.

Select it with ``CACHANNEL_BACKEND=caffi``; ``CaChannel.ca`` also falls back
to it when the C extension cannot be imported.
"""
from __future__ import annotations

import atexit
import contextlib
import operator
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from CaChannel import _common
from CaChannel._common import *  # noqa: F401,F403 (constants, enums, helpers)
from CaChannel._common import (DBF, DBR, ECA, CA_OP, ChannelState, to_eca, to_dbr,
                               to_ca_op)

from CaChannel import _ring
from . import _handles
from ._bindings import ffi, lib, vsnprintf, thread_init
from ._handles import (Context, DBRValue, chid, evid, registry, new_token, as_usr,
                       token_of, live_channels, context_gens, dead_text)

# a libca with other DBR struct layouts than _common's tables would decode garbage
_common.check_dbr_layouts(lib.dbr_size, lib.dbr_value_size, lib.dbr_value_offset,
                          "read through the cffi backend's ffi")

backend = "caffi"
HAS_NUMPY = True

_NULL = ffi.NULL
# libca's enum channel_state
_CS_CONN = 2

# ---------------------------------------------------------------------------
# Callback plumbing

#: set at interpreter exit: from then on libca callbacks return at once
_shutting_down = False


def _report_callback_error() -> None:
    """Print the traceback of an exception raised by a user callback."""
    try:
        sys.stderr.write("Exception in CaChannel callback:\n")
        traceback.print_exc()
    except Exception:  # stderr gone (interpreter exit): nothing left to tell
        pass


def _call_user(callback, arg) -> None:
    try:
        callback(arg)
    except BaseException:
        # nothing above a libca callback could handle it (SystemExit included)
        _report_callback_error()


def _on_connection(args) -> None:
    if _shutting_down:
        return
    ch = registry.get(token_of(lib.ca_puser(args.chid)))
    if not isinstance(ch, chid):
        return
    if ch._ptr is None:
        # the callback beat ca_create_channel's return (server in-process)
        ch._ptr = args.chid
    cb = ch.conn_callback
    if cb is not None:
        _call_user(cb, {"chid": ch, "op": to_ca_op(args.op)})


def _event_dict(ch, args, use_numpy: bool) -> dict:
    status = to_eca(args.status)
    value = None
    if args.status == ECA.NORMAL and args.dbr != _NULL:
        t = int(args.type)
        if 0 <= t <= _common.LAST_BUFFER_TYPE:
            size = _common.dbr_size_n(t, args.count)
            value = _common.decode(t, args.count, ffi.buffer(args.dbr, size), use_numpy)
    return {"chid": ch, "type": to_dbr(args.type), "count": int(args.count),
            "status": status, "value": value}


def _take_request(args):
    """``(channel, callback, use_numpy)`` of a get/put callback, run once; None if gone."""
    if _shutting_down:
        return None
    token = token_of(args.usr)
    entry = registry.pop(token, None)
    if entry is not None:
        entry[0].pending.discard(token)
    return entry


def _on_get(args) -> None:
    entry = _take_request(args)
    if entry is not None:
        ch, callback, use_numpy = entry
        _call_user(callback, _event_dict(ch, args, use_numpy))


def _on_put(args) -> None:
    entry = _take_request(args)
    if entry is not None:
        ch, callback, _ = entry
        _call_user(callback, {"chid": ch, "type": to_dbr(args.type),
                              "count": int(args.count), "status": to_eca(args.status)})


def _on_event(args) -> None:
    if _shutting_down:
        return
    sub = registry.get(token_of(args.usr))
    if not isinstance(sub, evid) or not sub.valid:
        return
    _call_user(sub.callback, _event_dict(sub.channel, args, sub.use_numpy))


def _on_access(args) -> None:
    if _shutting_down:
        return
    ch = registry.get(token_of(lib.ca_puser(args.chid)))
    if not isinstance(ch, chid) or ch.access_callback is None:
        return
    # caar's first bit-field (read) is the word's lowest bit on every ABI libca supports
    _call_user(ch.access_callback, {"chid": ch, "read_access": bool(args.ar & 1),
                                    "write_access": bool(args.ar & 2)})


def _cstr(ptr) -> str:
    if ptr == _NULL:
        return ""
    return ffi.string(ptr).decode("utf-8", "replace")


def _on_exception(args) -> None:
    if _shutting_down:
        return
    callback = registry.get(token_of(args.usr))
    if callback is None:
        return
    ch = live_channels.get(token_of(args.chid)) if args.chid != _NULL else None
    status = to_eca(args.stat)
    _call_user(callback, {
        "chid": ch, "type": to_dbr(args.type), "count": int(args.count),
        "state": status, "stat": status, "op": to_ca_op(args.op),
        "ctx": _cstr(args.ctx), "file": _cstr(args.pFile), "lineNo": int(args.lineNo),
    })


_printf_callback: Optional[Callable[[str], Any]] = None


def _on_printf(fmt, ap) -> int:
    callback = _printf_callback
    if _shutting_down or callback is None:
        return 0
    if vsnprintf is not None:
        buf = ffi.new("char[1024]")
        n = vsnprintf(buf, 1024, fmt, ap)
        text = ffi.string(buf).decode("utf-8", "replace")
    else:
        text = ffi.string(fmt).decode("utf-8", "replace")
        n = len(text)
    _call_user(callback, text)
    return max(0, int(n))


def _on_ring_event(args) -> None:
    # the ring's producer side: one copy from libca's buffer into a slot
    if _shutting_down or args.status != ECA.NORMAL or args.dbr == _NULL:
        return
    sub = registry.get(token_of(args.usr))
    if not isinstance(sub, evid) or not sub.valid:
        return
    t, n, ring = int(args.type), max(0, int(args.count)), sub.callback
    size = _common.DBR_VALUE_SIZE.get(t)
    if t not in _TIME_TYPES or size != ring.data.itemsize:
        return   # not what the slots hold: not a frame
    n = min(n, ring.capacity)
    base = ffi.cast("char *", args.dbr)
    head = ffi.cast("short *", base)           # status, severity: a DBR_TIME_* head
    stamp = ffi.cast("unsigned int *", base + 4)   # secPastEpoch, nsec
    values = np.frombuffer(ffi.buffer(base + _common.DBR_VALUE_OFFSET[t], n * size),
                           dtype=ring.data.dtype)
    try:
        ring.offer(values, n, int(head[0]), int(head[1]),
                   int(stamp[0]) + _common.POSIX_TIME_AT_EPICS_EPOCH + int(stamp[1]) * 1e-9)
    except Exception:
        _report_callback_error()


_TIME_TYPES = frozenset(range(int(DBR.TIME_STRING), int(DBR.TIME_DOUBLE) + 1))

_conn_cb = ffi.callback("caCh", _on_connection)
_get_cb = ffi.callback("caEventCallBackFunc", _on_get)
_put_cb = ffi.callback("caEventCallBackFunc", _on_put)
_event_cb = ffi.callback("caEventCallBackFunc", _on_event)
_ring_event_cb = ffi.callback("caEventCallBackFunc", _on_ring_event)
_access_cb = ffi.callback("caArh", _on_access)
_exception_cb = ffi.callback("caExceptionHandler", _on_exception)
_printf_cb = ffi.callback("caPrintfFunc", _on_printf, 0)


def _callable_or_none(callback, what: str = "callback"):
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError("%s must be callable or None, not %s" % (what, type(callback).__name__))
    return callback


# ---------------------------------------------------------------------------
# Argument checks


def _channel(obj) -> Optional[chid]:
    """The live channel behind ``obj``; None for None/cleared; TypeError otherwise."""
    if obj is None:
        return None
    if not isinstance(obj, chid):
        raise TypeError("expected a chid from create_channel, not %s" % type(obj).__name__)
    return obj if obj._ptr is not None else None


# guards the in-use counts of channels (held only for the count update)
_use_lock = threading.Lock()

#: channels whose clear_channel came while they were in use (id -> chid)
_pending_clears: Dict[int, chid] = {}


@contextlib.contextmanager
def _held(obj):
    """``(channel, chid pointer)`` of a live channel, counted in use meanwhile.

    Yields ``(None, None)`` for None or a cleared channel. While a channel is
    in use, clear_channel does not free it: it marks it dead and the last
    user calls ``ca_clear_channel`` on leaving, so the pointer stays valid
    through the whole call, even when Python code run by the call (a value's
    ``__float__``, a finalizer) clears the channel in this same thread.
    Such code may also destroy the channel's context, so the body checks
    ``ch._ptr`` again after running Python code and before each libca call.
    """
    ch = _channel(obj)
    ptr = None
    if ch is not None:
        me = threading.get_ident()
        with _use_lock:
            ptr = ch._ptr
            if ptr is not None:
                ch.inuse += 1
                ch.holders[me] = ch.holders.get(me, 0) + 1
    try:
        yield (ch, ptr) if ptr is not None else (None, None)
    finally:
        if ptr is not None:
            with _use_lock:
                ch.inuse -= 1
                left = ch.holders.get(me, 1) - 1
                if left:
                    ch.holders[me] = left
                else:
                    ch.holders.pop(me, None)
                pending = ch._clear_ptr if ch.inuse == 0 else None
                if pending is not None:
                    ch._clear_ptr = None
                    _pending_clears.pop(id(ch), None)
            if pending is not None:
                lib.ca_clear_channel(pending)


def _info(obj, func):
    """``func(chid pointer)`` for an information call; ValueError if None/cleared."""
    with _held(obj) as (ch, ptr):
        if ch is None:
            raise ValueError("the channel is None" if obj is None else dead_text(obj._dead))
        return func(ptr)


def _timeout(timeout) -> float:
    if isinstance(timeout, (str, bytes)):
        raise TypeError("timeout must be a number, not %s" % type(timeout).__name__)
    try:
        t = float(timeout)
    except (TypeError, ValueError):
        raise TypeError("timeout must be a number, not %s" % type(timeout).__name__) from None
    if t != t or t < 0:
        raise ValueError("timeout must be >= 0, not %r" % timeout)
    return t


def _uint(value, what: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError("%s must be an integer, not %s" % (what, type(value).__name__)) from None
    return v


def _request(ptr, chtype) -> Tuple[Optional[int], int]:
    """``(request type or None, status)`` for a get/put/subscription."""
    t = _common.resolve_request_type(chtype, lib.ca_field_type(ptr) if chtype is None else -1)
    if t is None:
        return None, ECA.BADTYPE
    return t, ECA.NORMAL


# buffers of callback-less gets must outlive the request: libca writes them
# when the reply arrives, up to the next pend_io (or sg_block) of the context
_io_buffers: Dict[int, list] = {}
# groups belong to a context: keyed by (context address, gid)
_sg_buffers: Dict[Tuple[int, int], list] = {}


def _read_buffer(t: int, count: int, use_numpy: bool):
    """``(C pointer, DBRValue)`` for a synchronous read of ``count`` x ``t``."""
    if use_numpy and 1 <= t <= 6 and count > 1:
        arr = np.empty(count, _common.DBR_DTYPE[t])
        return ffi.from_buffer(arr, require_writable=True), DBRValue(arr, t, count, True, arr)
    buf = ffi.new("char[]", _common.dbr_size_n(t, count))
    return buf, DBRValue(buf, t, count, use_numpy)


# ---------------------------------------------------------------------------
# Context

#: contexts created here: destroyed at interpreter exit so that no libca
#: thread calls into a finalising interpreter
_our_contexts: Dict[int, Context] = {}
_exception_tokens: Dict[int, int] = {}


#: addresses of contexts destroyed here and not seen alive since: another
#: thread that was attached to one still has it as its current context in
#: libca's thread-private slot (ca_context_destroy only detaches the calling
#: thread), a dangling pointer libca would use on that thread's next call
_dead_contexts: set = set()


def _detach_if_destroyed() -> None:
    """Before create/attach_context: drop a current context destroyed by another thread."""
    if _dead_contexts and token_of(lib.ca_current_context()) in _dead_contexts:
        lib.ca_detach_context()


def create_context(preemptive_callback: bool = True) -> ECA:
    """Create a CA context for the calling thread (preemptive by default)."""
    _detach_if_destroyed()
    existed = lib.ca_current_context() != _NULL
    status = lib.ca_context_create(1 if preemptive_callback else 0)
    if status == ECA.NORMAL:
        _dead_contexts.discard(token_of(lib.ca_current_context()))
    if status == ECA.NORMAL and not existed and preemptive_callback:
        # only a context made here is ours to destroy at exit
        ctx = current_context()
        _our_contexts[ctx.address] = ctx
    return to_eca(status)


def destroy_context() -> None:
    """Destroy the calling thread's context (and forget its exception handler).

    Every channel and subscription of the context is dead afterwards
    (``ECA.BADCHID``/``ECA.BADMONID``, ``ValueError`` from the information
    functions), and so is its context object (``attach_context`` and
    ``show_context`` refuse it). The next CA call of the thread makes a new
    context: a non-preemptive one, unless ``create_context`` comes first.
    """
    address = token_of(lib.ca_current_context())
    if address == 0:
        return
    with _use_lock:
        mine = [ch for ch in list(live_channels.values()) if ch._ctx == address]
        dropped = [_forget(ch, "context") for ch in mine]
        for key, ch in list(_pending_clears.items()):
            if ch._ctx == address:   # libca frees it with the context
                ch._clear_ptr = None
                del _pending_clears[key]
                mine.append(ch)
    # other threads still inside a call on one of its channels finish first
    # (they find the channel dead at their next step); this thread's own
    # holds are Python code below us (a conversion, a callback) that checks
    # the channel again before its next libca call
    me = threading.get_ident()
    for ch in mine:
        while any(tid != me for tid in list(ch.holders)):
            time.sleep(0.0002)
    context_gens.pop(address, None)
    _dead_contexts.add(address)
    lib.ca_context_destroy()
    _our_contexts.pop(address, None)
    token = _exception_tokens.pop(address, None)
    if token is not None:
        dropped.append(registry.pop(token, None))
    _io_buffers.pop(address, None)
    for key in [k for k in _sg_buffers if k[0] == address]:
        del _sg_buffers[key]
    del dropped  # finalizers it runs find every handle of the context dead


def attach_context(context: Context) -> ECA:
    """Attach the calling thread to ``context`` (from ``current_context``).

    ``ValueError`` for a context that was destroyed or inherited across fork.
    """
    if not isinstance(context, Context):
        raise TypeError("expected a context from current_context(), not %s"
                        % type(context).__name__)
    ptr = context.live_ptr()
    _detach_if_destroyed()
    return to_eca(lib.ca_attach_context(ptr))


def detach_context() -> None:
    lib.ca_detach_context()


def current_context() -> Optional[Context]:
    """The calling thread's context, None if it has none.

    None also when the thread is still attached to a context another thread
    destroyed (libca keeps that dangling pointer until the thread detaches).
    """
    ptr = lib.ca_current_context()
    if ptr == _NULL or token_of(ptr) in _dead_contexts:
        return None
    return Context(ptr)


def show_context(context: Optional[Context] = None, level: int = 0) -> None:
    """Print libca's report on ``context`` (default: the calling thread's)."""
    level = _uint(level, "level")
    if context is None:
        lib.ca_client_status(max(0, level))
    elif isinstance(context, Context):
        lib.ca_context_status(context.live_ptr(), max(0, level))
    else:
        raise TypeError("expected a context or None, not %s" % type(context).__name__)


@atexit.register
def _shutdown() -> None:
    # Stop delivering callbacks, then end the preemptive contexts we created
    # so that their threads are gone before the interpreter is.
    global _shutting_down
    _shutting_down = True
    own = lib.ca_current_context()
    for address, ctx in list(_our_contexts.items()):
        if token_of(own) != address:
            lib.ca_detach_context()
            if lib.ca_attach_context(ctx._ptr) != ECA.NORMAL:
                continue
        lib.ca_context_destroy()
        own = _NULL
    _our_contexts.clear()
    # libca freed the channels of those contexts: a __del__ that clears one
    # later during shutdown must get BADCHID, not touch freed memory
    dropped = [_forget(ch) for ch in list(live_channels.values())]
    del dropped  # every handle is dead before any finalizer can run


def _after_fork_child() -> None:
    """os.register_at_fork hook, run in the child (its only thread forked).

    libca's threads, and any lock they held, are gone: nothing of the
    inherited contexts is touched. Every handle becomes dead (reason
    "fork"), the contexts are forgotten (not destroyed at exit), the
    thread's context pointer is dropped, and the first CA call of the child
    makes a new context.
    """
    global _use_lock, _printf_callback
    _handles.fork_epoch[0] += 1
    context_gens.clear()
    _dead_contexts.clear()
    # a lock another parent thread held at fork time stays held for ever
    _use_lock = threading.Lock()
    _handles._token_lock = threading.Lock()
    inherited = list(live_channels.values())
    for ch in inherited + list(_pending_clears.values()):
        ch.inuse = 0   # the threads that used them are gone
        ch.holders.clear()
    dropped = [_forget(ch, "fork") for ch in inherited]
    for ch in _pending_clears.values():
        ch._clear_ptr = None
    _pending_clears.clear()
    dropped.append(list(registry.values()))
    registry.clear()
    _our_contexts.clear()
    _exception_tokens.clear()
    _io_buffers.clear()
    _sg_buffers.clear()
    _printf_callback = None
    lib.ca_detach_context()
    thread_init()
    del dropped  # finalizers it runs find every inherited handle dead


_common._register_fork_child(_after_fork_child)

# ---------------------------------------------------------------------------
# Channels


def create_channel(name: Union[str, bytes], callback: Optional[Callable] = None,
                   priority: int = _common.CA_PRIORITY_DEFAULT) -> Tuple[ECA, Optional[chid]]:
    """Create a channel; ``(ECA, chid)`` with ``chid`` None unless NORMAL.

    Without ``callback`` the first connection is awaited by ``pend_io``.
    """
    raw = _common.encode_name(name)
    callback = _callable_or_none(callback)
    priority = _uint(priority, "priority")
    if b"\0" in raw:
        return ECA.BADSTR, None
    if not 0 <= priority <= _common.CA_PRIORITY_MAX:
        return ECA.BADPRIORITY, None
    ch = chid(name if isinstance(name, str) else name.decode("utf-8", "replace"))
    ch.conn_callback = callback
    # registered before libca sees it: the connection callback may run
    # inside ca_create_channel when the server is in this process
    ch._token = new_token(ch)
    pchid = ffi.new("chid *")
    status = lib.ca_create_channel(raw, _conn_cb if callback is not None else _NULL,
                                   as_usr(ch._token), priority, pchid)
    if status != ECA.NORMAL:
        registry.pop(ch._token, None)
        return to_eca(status), None
    ch._ctx = token_of(lib.ca_current_context())
    _dead_contexts.discard(ch._ctx)
    ch._ptr = pchid[0]
    live_channels[token_of(ch._ptr)] = ch
    return ECA.NORMAL, ch


def _forget(ch: chid, reason: str = "cleared") -> list:
    """Mark ``ch`` and its subscriptions dead and unregister their callbacks.

    Returns the Python objects they held. The caller drops them only after it
    released ``_use_lock`` (and, in clear_channel, after libca let go of the
    channel): dropping the last reference to a callback runs finalizers, such
    as a ``CaChannel.__del__`` that clears another channel, and those must
    find every handle touched here already dead.
    """
    ptr = ch._ptr
    ch._ptr = None
    ch._dead = reason
    dropped = [registry.pop(ch._token, None), ch.conn_callback, ch.access_callback]
    ch.conn_callback = ch.access_callback = None
    if ptr is not None:
        live_channels.pop(token_of(ptr), None)
    for sub in ch.subscriptions:
        sub._ptr = None
        dropped.append(registry.pop(sub._token, None))
    dropped.extend(ch.subscriptions)
    ch.subscriptions.clear()
    dropped.extend(registry.pop(token, None) for token in ch.pending)
    ch.pending.clear()
    return dropped


def clear_channel(chid: chid) -> ECA:
    """Clear the channel; its subscriptions and callbacks are dropped."""
    ch = _channel(chid)
    if ch is None:
        return ECA.BADCHID
    with _use_lock:
        ptr = ch._ptr
        if ptr is None:
            return ECA.BADCHID
        # dead from now on: no new call starts on it, callbacks are ignored
        dropped = _forget(ch)
        if ch.inuse:
            # in use: by another thread, or by a call below us in this one
            # (a conversion's __float__, a callback libca runs inside the
            # call). Waiting would deadlock the latter: the last user clears
            # it when it is done (_held).
            ch._clear_ptr = ptr
            _pending_clears[id(ch)] = ch
            ptr = None
    if ptr is None:
        del dropped
        return ECA.NORMAL
    status = lib.ca_clear_channel(ptr)
    del dropped  # only now: finalizers it runs may call back into this module
    return to_eca(status)


def change_connection_event(chid: chid, callback: Optional[Callable] = None) -> ECA:
    """Replace the connection callback; None or a non-callable removes it."""
    cb = callback if callable(callback) else None
    with _held(chid) as (ch, ptr):
        if ch is None:
            return ECA.BADCHID
        # the old callback stays referenced until this frame ends, after the
        # channel is released: its finalizer may clear the channel
        old, ch.conn_callback = ch.conn_callback, cb  # noqa: F841
        return to_eca(lib.ca_change_connection_event(ptr, _conn_cb if cb is not None else _NULL))


def replace_access_rights_event(chid: chid, callback: Optional[Callable] = None) -> ECA:
    """Install (or with None remove) the access-rights callback.

    It runs once inside this call when the channel is connected.
    """
    cb = callback if callable(callback) else None
    with _held(chid) as (ch, ptr):
        if ch is None:
            return ECA.BADCHID
        # the old callback stays referenced until this frame ends, after the
        # channel is released: its finalizer may clear the channel
        old, ch.access_callback = ch.access_callback, cb  # noqa: F841
        return to_eca(lib.ca_replace_access_rights_event(ptr, _access_cb if cb is not None else _NULL))


def add_exception_event(callback: Optional[Callable] = None) -> ECA:
    """Install the context's exception handler; None restores libca's default."""
    cb = callback if callable(callback) else None
    address = token_of(lib.ca_current_context())
    old = _exception_tokens.pop(address, None)
    if cb is None:
        status = lib.ca_add_exception_event(_NULL, _NULL)
    else:
        token = new_token(cb)
        _exception_tokens[token_of(lib.ca_current_context())] = token
        status = lib.ca_add_exception_event(_exception_cb, as_usr(token))
    if old is not None:
        registry.pop(old, None)
    return to_eca(status)


def replace_printf_handler(callback: Optional[Callable[[str], Any]] = None) -> ECA:
    """Send libca's diagnostic messages to ``callback(str)``; None restores stderr."""
    global _printf_callback
    cb = callback if callable(callback) else None
    _printf_callback = cb
    return to_eca(lib.ca_replace_printf_handler(_printf_cb if cb is not None else _NULL))


# ---------------------------------------------------------------------------
# Read, write, subscribe


def _check_counts(chtype, count) -> None:
    """Type errors for ``chtype``/``count`` come before any status."""
    if count is not None:
        _common.index_count(count)
    if chtype is not None:
        _common.request_type(chtype)


def _prepare_read(ch, ptr, chtype, count, zero_ok: bool, out=None):
    """Checks shared by ``get`` and ``sg_get``: ``(status, type, count)``.

    ``count``: None, negative or above the native count -> native; 0 stays 0
    only when ``zero_ok`` (a get with callback: the server's current length).
    """
    native = int(lib.ca_element_count(ptr))
    if out is not None:
        t, n = _common.out_request(out, chtype, count, native)
    else:
        t, status = _request(ptr, chtype)
        if t is None:
            return status, 0, 0
        n = _common.get_count(count, native, zero_ok, t)
    if ch._ptr is None:     # count's __index__ cleared it or destroyed its context
        return ECA.BADCHID, 0, 0
    if lib.ca_state(ptr) != _CS_CONN:
        return ECA.DISCONN, 0, 0
    return ECA.NORMAL, t, n


def get(chid: chid, chtype: Optional[int] = None, count: Optional[int] = None,
        callback: Optional[Callable] = None, use_numpy: bool = False,
        out: Optional[np.ndarray] = None) -> Tuple[ECA, Optional[DBRValue]]:
    """Read a channel.

    Without ``callback``: ``(ECA, DBRValue)``, the value valid after the next
    ``pend_io`` returned NORMAL. With ``callback``: ``(ECA, None)`` and the
    callback runs once with the get dict. ``out``: a writable C-contiguous
    numpy array that libca fills directly (synchronous gets only).
    """
    callback = _callable_or_none(callback)
    if out is not None and callback is not None:
        raise ValueError("out= is for synchronous gets (no callback)")
    _check_counts(chtype, count)
    with _held(chid) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID, None
        status, t, n = _prepare_read(ch, cptr, chtype, count, callback is not None, out)
        if status != ECA.NORMAL:
            return to_eca(status), None
        if callback is not None:
            token = new_token((ch, callback, bool(use_numpy)))
            ch.pending.add(token)
            status = lib.ca_array_get_callback(t, n, cptr, _get_cb, as_usr(token))
            if status != ECA.NORMAL:
                registry.pop(token, None)
                ch.pending.discard(token)
            return to_eca(status), None
        if out is not None:
            view = out if n == out.size else out[:n]
            buf = ffi.from_buffer(view, require_writable=True)
            value = DBRValue(view, t, n, True, view, out=True)
        else:
            buf, value = _read_buffer(t, n, bool(use_numpy))
        if ch._ptr is None:
            return ECA.BADCHID, None
        status = lib.ca_array_get(t, n, cptr, buf)
    if status != ECA.NORMAL:
        return to_eca(status), None
    # held until the pend_io of the channel's context (libca counts the
    # read there, whichever context the calling thread is in)
    _io_buffers.setdefault(ch._ctx, []).append(value)
    return ECA.NORMAL, value


def _prepare_put(ch, ptr, value, chtype, count) -> Tuple[int, Optional[tuple]]:
    """Checks and conversion shared by ``put`` and ``sg_put``.

    Returns ``(status, (type, count, cdata))``; the tuple is None unless the
    status is NORMAL. Unconvertible values raise (ca-api.md 2.10).
    """
    t, status = _request(ptr, chtype)
    if t is None:
        return status, None
    if t not in _common.PUT_TYPES:
        return ECA.BADTYPE, None
    if lib.ca_state(ptr) != _CS_CONN:
        return ECA.DISCONN, None
    native = int(lib.ca_element_count(ptr))
    n = _common.put_count(count, max(native, 1))
    t2, n2, data = _common.encode(value, t, n)
    if ch._ptr is None:
        # the conversion ran Python code (__float__, __len__, a finalizer)
        # that cleared the channel or destroyed its context
        return ECA.BADCHID, None
    return ECA.NORMAL, (t2, n2, ffi.from_buffer(data))


def put(chid: chid, value: Any, chtype: Optional[int] = None, count: Optional[int] = None,
        callback: Optional[Callable] = None) -> ECA:
    """Write ``value`` (converted by the rules of ca-api.md 2.10).

    With ``callback`` it runs once the server completed the put.
    """
    callback = _callable_or_none(callback)
    _check_counts(chtype, count)
    with _held(chid) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID
        status, args = _prepare_put(ch, cptr, value, chtype, count)
        if args is None:
            return to_eca(status)
        t, n, data = args
        if callback is None:
            return to_eca(lib.ca_array_put(t, n, cptr, data))
        token = new_token((ch, callback, False))
        ch.pending.add(token)
        status = lib.ca_array_put_callback(t, n, cptr, data, _put_cb, as_usr(token))
        if status != ECA.NORMAL:
            registry.pop(token, None)
            ch.pending.discard(token)
        return to_eca(status)


def create_subscription(chid: chid, callback: Callable, chtype: Optional[int] = None,
                        count: Optional[int] = None, mask: Optional[int] = None,
                        use_numpy: bool = False) -> Tuple[ECA, Optional[evid]]:
    """Subscribe to changes; ``callback`` gets the event dict on every update."""
    _channel(chid)
    if not callable(callback):
        raise TypeError("callback must be callable, not %s" % type(callback).__name__)
    _check_counts(chtype, count)
    mask = (_common.DBE_VALUE | _common.DBE_ALARM) if mask is None else _uint(mask, "mask")
    with _held(chid) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID, None
        t, status = _request(cptr, chtype)
        if t is None:
            return to_eca(status), None
        native = int(lib.ca_element_count(cptr))
        n = _common.subscription_count(count, native)
        if ch._ptr is None:   # count/mask's __index__ cleared it
            return ECA.BADCHID, None
        return _start_subscription(ch, cptr, t, n, mask, _event_cb, callback, bool(use_numpy))


def _start_subscription(ch, cptr, t: int, n: int, mask: int, handler, target,
                        use_numpy: bool) -> Tuple[ECA, Optional[evid]]:
    """Make the evid (holding ``target``: a callable, or a ``_Ring``) and ask
    libca for the subscription; ``handler`` gets the evid's token as usr."""
    sub = evid(ch, target, use_numpy)
    sub._token = new_token(sub)
    # valid before libca can deliver the first update (it may come at once)
    pevid = ffi.new("evid *")
    sub._ptr = pevid
    ch.subscriptions.add(sub)
    status = lib.ca_create_subscription(t, n, cptr, mask, handler, as_usr(sub._token), pevid)
    if status != ECA.NORMAL:
        ch.subscriptions.discard(sub)
        registry.pop(sub._token, None)
        sub._ptr = None
        return to_eca(status), None
    sub._ptr = pevid[0]
    return ECA.NORMAL, sub


def clear_subscription(evid: evid) -> ECA:
    """Cancel a subscription; a stale or cleared one gives ``ECA.BADMONID``."""
    if evid is None:
        return ECA.BADMONID
    if not isinstance(evid, _evid_type):
        raise TypeError("expected an evid from create_subscription, not %s"
                        % type(evid).__name__)
    # the channel is held: clear_channel (which frees its evids) waits for us
    with _held(evid.channel) as (ch, _):
        if ch is None:
            return ECA.BADMONID
        with _use_lock:
            ptr = evid._ptr
            evid._ptr = None
        if ptr is None:
            return ECA.BADMONID
        ch.subscriptions.discard(evid)
        status = lib.ca_clear_subscription(ptr)
    registry.pop(evid._token, None)
    return to_eca(status)


#: ArrayMonitor's ring (the C extension's is C code filled without the GIL)
_Ring = _ring.Ring


def _ring_subscribe(chid: chid, ring: _Ring, chtype: int, count: Optional[int] = None,
                    mask: Optional[int] = None) -> Tuple[ECA, Optional[evid]]:
    """A subscription whose updates libca's thread copies into ``ring`` (private:
    ``CaChannel.monitor.ArrayMonitor``); ``chtype`` is a DBR_TIME_* type of the
    ring's element size."""
    if not isinstance(ring, _ring.Ring):
        raise TypeError("ring must be a _Ring, not %s" % type(ring).__name__)
    _channel(chid)
    t = _uint(chtype, "chtype")
    if count is not None:
        _uint(count, "count")
    mask = (_common.DBE_VALUE | _common.DBE_ALARM) if mask is None else _uint(mask, "mask")
    if t not in _TIME_TYPES or _common.DBR_VALUE_SIZE[t] != ring.data.itemsize:
        raise ValueError("chtype must be a DBR_TIME_* type with %d-byte elements, not %d"
                         % (ring.data.itemsize, t))
    if ring.subscribed or ring.closed:
        raise ValueError("the ring is closed or already subscribed")
    with _held(chid) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID, None
        native = int(lib.ca_element_count(cptr))
        n = _common.subscription_count(count, native)
        if ch._ptr is None:
            return ECA.BADCHID, None
        status, sub = _start_subscription(ch, cptr, t, n, mask, _ring_event_cb, ring, True)
        ring.subscribed = sub is not None
        return status, sub


_evid_type = evid

# ---------------------------------------------------------------------------
# Execution


def pend_io(timeout: float) -> ECA:
    """Flush, then wait for callback-less gets and connections (0 = forever)."""
    t = _timeout(timeout)
    address = token_of(lib.ca_current_context())
    held = _io_buffers.get(address)
    mark = len(held) if held else 0
    status = lib.ca_pend_io(t)
    if status != ECA.EVDISALLOW and mark:
        # NORMAL or TIMEOUT: libca ended (or abandoned) the context's reads
        # issued before; reads other threads issued meanwhile stay held
        del held[:mark]
    return to_eca(status)


def pend_event(timeout: float) -> ECA:
    """Flush and process background activity for ``timeout`` s (0 = forever)."""
    return to_eca(lib.ca_pend_event(_timeout(timeout)))


def poll() -> ECA:
    """Flush and process outstanding background activity without waiting."""
    return to_eca(lib.ca_pend_event(1e-12))


def pend(timeout: float, early: bool) -> ECA:
    """``pend_io`` when ``early`` is true, else ``pend_event``."""
    return pend_io(timeout) if early else pend_event(timeout)


def flush_io() -> ECA:
    return to_eca(lib.ca_flush_io())


def test_io() -> ECA:
    """``ECA.IODONE`` when no callback-less get/connect is outstanding."""
    return to_eca(lib.ca_test_io())


# ---------------------------------------------------------------------------
# Channel information


def field_type(chid: chid) -> DBF:
    """Native field type; ``DBF.NOTCONN`` (-1) if never connected."""
    return DBF(_info(chid, lib.ca_field_type))


def element_count(chid: chid) -> int:
    return int(_info(chid, lib.ca_element_count))


def name(chid: chid) -> str:
    return _info(chid, lambda ptr: chid._name)


def state(chid: Optional[chid]) -> ChannelState:
    """Connection state; ``NEVER_SEARCH`` for None, ``CLOSED`` once cleared."""
    if chid is None:
        return ChannelState.NEVER_SEARCH
    with _held(chid) as (ch, ptr):
        if ch is None:
            return ChannelState.CLOSED
        return ChannelState(lib.ca_state(ptr))


def host_name(chid: chid) -> str:
    """``'host:port'`` of the server (libca's placeholder when disconnected)."""
    buf = ffi.new("char[256]")
    _info(chid, lambda ptr: lib.ca_get_host_name(ptr, buf, 256))
    return ffi.string(buf).decode("utf-8", "replace")


def read_access(chid: chid) -> bool:
    return bool(_info(chid, lib.ca_read_access))


def write_access(chid: chid) -> bool:
    return bool(_info(chid, lib.ca_write_access))


def message(status: int) -> str:
    """libca's text for an ECA status (anything ``int()`` accepts)."""
    return ffi.string(lib.ca_message(int(status))).decode("utf-8", "replace")


def version() -> str:
    """libca's version string, e.g. ``'4.13.x'``."""
    return ffi.string(lib.ca_version()).decode()


# ---------------------------------------------------------------------------
# Synchronous groups


def _gid(gid) -> Optional[int]:
    """The group id, or None for one no group can have (-> ECA.BADSYNCGRP)."""
    return _common.sync_group_id(gid)


def sg_create() -> Tuple[ECA, Optional[int]]:
    pgid = ffi.new("CA_SYNC_GID *")
    status = lib.ca_sg_create(pgid)
    if status != ECA.NORMAL:
        return to_eca(status), None
    return ECA.NORMAL, int(pgid[0])


def _sg_key(g: int) -> Tuple[int, int]:
    """Groups are per context: the key of the calling thread's group ``g``."""
    return token_of(lib.ca_current_context()), g


def sg_delete(gid: int) -> ECA:
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP
    status = lib.ca_sg_delete(g)
    if status == ECA.NORMAL:
        _sg_buffers.pop(_sg_key(g), None)
    return to_eca(status)


def sg_get(gid: int, chid: chid, chtype: Optional[int] = None, count: Optional[int] = None,
           use_numpy: bool = False) -> Tuple[ECA, Optional[DBRValue]]:
    """Queue a read in group ``gid``; the value is valid after ``sg_block``."""
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP, None
    _check_counts(chtype, count)
    with _held(chid) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID, None
        status, t, n = _prepare_read(ch, cptr, chtype, count, False)
        if status != ECA.NORMAL:
            return to_eca(status), None
        buf, value = _read_buffer(t, n, bool(use_numpy))
        if ch._ptr is None:
            return ECA.BADCHID, None
        status = lib.ca_sg_array_get(g, t, n, cptr, buf)
    if status != ECA.NORMAL:
        return to_eca(status), None
    _sg_buffers.setdefault(_sg_key(g), []).append(value)
    return ECA.NORMAL, value


def sg_put(gid: int, chid: chid, value: Any, chtype: Optional[int] = None,
           count: Optional[int] = None) -> ECA:
    """Queue a write in group ``gid`` (conversion as ``put``)."""
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP
    _check_counts(chtype, count)
    with _held(chid) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID
        status, args = _prepare_put(ch, cptr, value, chtype, count)
        if args is None:
            return to_eca(status)
        t, n, data = args
        return to_eca(lib.ca_sg_array_put(g, t, n, cptr, data))


def sg_block(gid: int, timeout: float) -> ECA:
    """Flush and wait for the group's requests (0 = forever)."""
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP
    key = _sg_key(g)
    held = _sg_buffers.get(key)
    mark = len(held) if held else 0
    status = lib.ca_sg_block(g, _timeout(timeout))
    if status in (ECA.NORMAL, ECA.TIMEOUT) and mark:
        # only the reads issued before: other threads may add to the group
        del held[:mark]
    return to_eca(status)


def sg_test(gid: int) -> ECA:
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP
    return to_eca(lib.ca_sg_test(g))


def sg_reset(gid: int) -> ECA:
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP
    key = _sg_key(g)
    held = _sg_buffers.get(key)
    mark = len(held) if held else 0
    status = lib.ca_sg_reset(g)
    if status == ECA.NORMAL and mark:
        del held[:mark]
    return to_eca(status)


__all__ = sorted(set(_common.__all__) | {
    "backend", "HAS_NUMPY", "DBRValue",
    "create_context", "destroy_context", "attach_context", "detach_context",
    "current_context", "show_context",
    "create_channel", "clear_channel", "change_connection_event",
    "replace_access_rights_event", "add_exception_event", "replace_printf_handler",
    "get", "put", "create_subscription", "clear_subscription",
    "pend_io", "pend_event", "poll", "pend", "flush_io", "test_io",
    "field_type", "element_count", "name", "state", "host_name",
    "read_access", "write_access", "message", "version",
    "sg_create", "sg_delete", "sg_get", "sg_put", "sg_block", "sg_test", "sg_reset",
})
