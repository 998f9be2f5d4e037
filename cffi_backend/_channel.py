"""Channels in the cffi backend (the twin of ``cext/channel.c``): create and
clear, the connection and access rights handlers, channel information,
``message`` and ``version``.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

from CaChannel import _common
from CaChannel._common import DBF, ECA, ChannelState, to_eca

from . import _callbacks, _handles
from ._args import as_index, callable_or_none, get_channel
from ._bindings import ffi, lib
from ._handles import (as_usr, chid, counted, dead_contexts, dead_text, forget, held,
                       live_channels, new_token, pending_clears, registry, token_of)

_NULL = ffi.NULL


@counted
def create_channel(name: Union[str, bytes], callback: Optional[Callable] = None,
                   priority: int = _common.CA_PRIORITY_DEFAULT) -> Tuple[ECA, Optional[chid]]:
    """Create a channel; ``(ECA, chid)`` with ``chid`` None unless NORMAL.

    Without ``callback`` the first connection is awaited by ``pend_io``.
    """
    raw = _common.encode_name(name)
    callback = callable_or_none(callback)
    priority = as_index(priority, "priority")
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
    status = lib.ca_create_channel(raw, _callbacks.conn_cb if callback is not None else _NULL,
                                   as_usr(ch._token), priority, pchid)
    if status != ECA.NORMAL:
        registry.pop(ch._token, None)
        return to_eca(status), None
    ch._ctx = token_of(lib.ca_current_context())
    dead_contexts.discard(ch._ctx)
    ch._ptr = pchid[0]
    live_channels[token_of(ch._ptr)] = ch
    return ECA.NORMAL, ch


@counted
def clear_channel(chid: chid) -> ECA:
    """Clear the channel; its subscriptions and callbacks are dropped."""
    ch = get_channel(chid)
    if ch is None:
        return ECA.BADCHID
    with _handles.use_lock:
        ptr = ch._ptr
        if ptr is None:
            return ECA.BADCHID
        # dead from now on: no new call starts on it, callbacks are ignored
        dropped = forget(ch)
        if ch.inuse:
            # in use: by another thread, or by a call below us in this one
            # (a conversion's __float__, a callback libca runs inside the
            # call). Waiting would deadlock the latter: the last user clears
            # it when it is done (held).
            ch._clear_ptr = ptr
            pending_clears[id(ch)] = ch
            ptr = None
    if ptr is None:
        del dropped
        return ECA.NORMAL
    status = lib.ca_clear_channel(ptr)
    del dropped  # only now: finalizers it runs may call back into this module
    return to_eca(status)


@counted
def change_connection_event(chid: chid, callback: Optional[Callable] = None) -> ECA:
    """Replace the connection callback; None or a non-callable removes it."""
    cb = callback if callable(callback) else None
    with held(get_channel(chid)) as (ch, ptr):
        if ch is None:
            return ECA.BADCHID
        # the old callback stays referenced until this frame ends, after the
        # channel is released: its finalizer may clear the channel
        old, ch.conn_callback = ch.conn_callback, cb  # noqa: F841
        return to_eca(lib.ca_change_connection_event(
            ptr, _callbacks.conn_cb if cb is not None else _NULL))


@counted
def replace_access_rights_event(chid: chid, callback: Optional[Callable] = None) -> ECA:
    """Install (or with None remove) the access-rights callback.

    It runs once inside this call when the channel is connected.
    """
    cb = callback if callable(callback) else None
    with held(get_channel(chid)) as (ch, ptr):
        if ch is None:
            return ECA.BADCHID
        # the old callback stays referenced until this frame ends, after the
        # channel is released: its finalizer may clear the channel
        old, ch.access_callback = ch.access_callback, cb  # noqa: F841
        return to_eca(lib.ca_replace_access_rights_event(
            ptr, _callbacks.access_cb if cb is not None else _NULL))


# ---------------------------------------------------------------------------
# Channel information


def _info(obj, func):
    """``func(chid pointer)`` for an information call; ValueError if None/cleared."""
    with held(get_channel(obj)) as (ch, ptr):
        if ch is None:
            raise ValueError("the channel is None" if obj is None else dead_text(obj._dead))
        return func(ptr)


@counted
def field_type(chid: chid) -> DBF:
    """Native field type; ``DBF.NOTCONN`` (-1) if never connected."""
    return DBF(_info(chid, lib.ca_field_type))


@counted
def element_count(chid: chid) -> int:
    return int(_info(chid, lib.ca_element_count))


def name(chid: chid) -> str:
    return _info(chid, lambda ptr: chid._name)


@counted
def state(chid: Optional[chid]) -> ChannelState:
    """Connection state; ``NEVER_SEARCH`` for None, ``CLOSED`` once cleared."""
    if chid is None:
        return ChannelState.NEVER_SEARCH
    with held(get_channel(chid)) as (ch, ptr):
        if ch is None:
            return ChannelState.CLOSED
        return ChannelState(lib.ca_state(ptr))


@counted
def host_name(chid: chid) -> str:
    """``'host:port'`` of the server (libca's placeholder when disconnected)."""
    buf = ffi.new("char[256]")
    _info(chid, lambda ptr: lib.ca_get_host_name(ptr, buf, 256))
    return ffi.string(buf).decode("utf-8", "replace")


@counted
def read_access(chid: chid) -> bool:
    return bool(_info(chid, lib.ca_read_access))


@counted
def write_access(chid: chid) -> bool:
    return bool(_info(chid, lib.ca_write_access))


def message(status: int) -> str:
    """libca's text for an ECA status (anything ``int()`` accepts)."""
    return ffi.string(lib.ca_message(int(status))).decode("utf-8", "replace")


def version() -> str:
    """libca's version string, e.g. ``'4.13.x'``."""
    return ffi.string(lib.ca_version()).decode()
