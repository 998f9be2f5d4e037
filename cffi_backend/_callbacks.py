"""What libca calls in the cffi backend (the twin of ``cext/callbacks.c``):
the connection, access rights, get/put completion, monitor event, exception
and printf handlers, and the ``ffi.callback`` objects handed to libca.

cffi takes the GIL for every callback. libca gives back only an opaque
``usr`` (or the channel's ``puser``): a token into ``_handles.registry``, so a
late or stray callback can at worst miss the registry. Every handler is
counted in flight (:func:`guarded`); from the moment the exit hook started
the handlers return at once.
"""
from __future__ import annotations

import sys
import traceback
from typing import Any, Callable, Optional, TypeVar

from CaChannel import _common
from CaChannel._common import ECA, to_ca_op, to_dbr, to_eca

from ._bindings import ffi, lib, vsnprintf
from ._handles import (callback_enter, callback_leave, chid, evid, live_channels, registry,
                       token_of)

_NULL = ffi.NULL
_CONN_UP = int(_common.CA_OP.CONN_UP)

H = TypeVar("H", bound=Callable[..., Any])


def guarded(refused: Any = None) -> Callable[[H], H]:
    """Decorator of the handlers libca calls: the callback is counted in
    flight while it runs (the exit hook waits for it), and once the exit hook
    started the handler returns ``refused`` at once, touching nothing."""
    def wrap(handler):
        def run(*args):
            if not callback_enter():
                return refused
            try:
                return handler(*args)
            finally:
                callback_leave()
        run.__name__ = handler.__name__
        return run
    return wrap


def report_callback_error(header: str = "Exception in CaChannel callback:\n") -> None:
    """Print the traceback of an exception raised by a user callback."""
    try:
        sys.stderr.write(header)
        traceback.print_exc()
    except Exception:  # stderr gone (interpreter exit): nothing left to tell
        pass


def _call_user(callback, arg) -> None:
    try:
        callback(arg)
    except BaseException:
        # nothing above a libca callback could handle it (SystemExit included)
        report_callback_error()


@guarded()
def _on_connection(args) -> None:
    ch = registry.get(token_of(lib.ca_puser(args.chid)))
    if not isinstance(ch, chid):
        return
    if ch._ptr is None:
        # the callback beat ca_create_channel's return (server in-process)
        ch._ptr = args.chid
    if args.op == _CONN_UP:
        ch._native_type = _common.DBF(lib.ca_field_type(args.chid))
        ch._native_count = int(lib.ca_element_count(args.chid))
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
    """``(channel, callback, use_numpy, augment, queue)`` of a get/put callback,
    run once; None if gone."""
    token = token_of(args.usr)
    entry = registry.pop(token, None)
    if entry is not None:
        entry[0].pending.discard(token)
    return entry


def _augmented(spec, args) -> Any:
    """The augmented value of a reply/event (``_common.augment``'s rule), or
    None where the event dict is due."""
    if spec is None or args.count != 1 or args.dbr == _NULL:
        return None
    t = int(args.type)
    if not 0 <= t <= _common.LAST_BUFFER_TYPE:
        return None
    return _common.augment(spec, t, 1, args.status,
                           ffi.buffer(args.dbr, _common.dbr_size_n(t, 1)))


@guarded()
def _on_get(args) -> None:
    entry = _take_request(args)
    if entry is None:
        return
    ch, callback, use_numpy, spec, queue = entry
    try:
        value = _augmented(spec, args)
        if value is None:
            value = _event_dict(ch, args, use_numpy)
    except Exception:
        report_callback_error()
        return
    if queue is not None:
        queue.push(ch, value, callback)
    else:
        _call_user(callback, value)


@guarded()
def _on_put(args) -> None:
    entry = _take_request(args)
    if entry is None:
        return
    ch, callback, _, _, queue = entry
    value = {"chid": ch, "type": to_dbr(args.type), "count": int(args.count),
             "status": to_eca(args.status)}
    if queue is not None:
        queue.push(ch, value, callback)
    else:
        _call_user(callback, value)


@guarded()
def _on_event(args) -> None:
    sub = registry.get(token_of(args.usr))
    if not isinstance(sub, evid) or not sub.valid:
        return
    pair = sub.pv_callback
    if pair is not None and _common.pv_form(int(args.type), args.status, args.dbr != _NULL):
        try:
            d = _event_dict(sub.channel, args, sub.use_numpy)
            d["pv_value"] = d.pop("value")
            pair[0](d, pair[1])
        except BaseException:
            report_callback_error("CaChannel: exception in monitor callback (ignored):\n")
        return
    try:
        value = _augmented(sub.augment, args)
        if value is None:
            value = _event_dict(sub.channel, args, sub.use_numpy)
    except Exception:
        report_callback_error()
        return
    if sub.queue is not None:
        sub.queue.push(sub, value, sub.callback)
    else:
        _call_user(sub.callback, value)


@guarded()
def _on_access(args) -> None:
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


@guarded()
def _on_exception(args) -> None:
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


# process-wide, as libca's printf handler is (replace_printf_handler)
_printf_callback: Optional[Callable[[str], Any]] = None


def set_printf_callback(callback: Optional[Callable[[str], Any]]) -> None:
    """The callable libca's diagnostics go to (None: not ours to deliver)."""
    global _printf_callback
    _printf_callback = callback


@guarded(0)
def _on_printf(fmt, ap) -> int:
    callback = _printf_callback
    if callback is None:
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


# the C function pointers handed to libca (alive as long as this module)
conn_cb = ffi.callback("caCh", _on_connection)
get_cb = ffi.callback("caEventCallBackFunc", _on_get)
put_cb = ffi.callback("caEventCallBackFunc", _on_put)
event_cb = ffi.callback("caEventCallBackFunc", _on_event)
access_cb = ffi.callback("caArh", _on_access)
exception_cb = ffi.callback("caExceptionHandler", _on_exception)
printf_cb = ffi.callback("caPrintfFunc", _on_printf, 0)
