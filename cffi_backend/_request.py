"""Reads, writes and subscriptions in the cffi backend (the twin of
``cext/request.c``): ``get``, ``put``, ``create_subscription``,
``clear_subscription``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import numpy as np

from CaChannel import _common
from CaChannel._common import ECA, to_eca

from . import _callbacks, _handles
from ._args import as_index, callable_or_none, check_counts, get_channel, resolve_type
from ._bindings import CS_CONN, ffi, lib
from ._decode import PEND_IO, DBRValue, read_buffer, read_hold
from ._encode import prepare_put
from ._evqueue import EventQueue
from ._handles import as_usr, chid, counted, evid, held, new_token, registry


def prepare_read(ch, ptr, chtype, count, zero_ok: bool, out=None):
    """Checks shared by ``get`` and ``sg_get``: ``(status, type, count)``.

    ``count``: None, negative or above the native count -> native; 0 stays 0
    only when ``zero_ok`` (a get with callback: the server's current length).
    """
    native = int(lib.ca_element_count(ptr))
    if out is not None:
        t, n = _common.out_request(out, chtype, count, native)
    else:
        t, status = resolve_type(ptr, chtype)
        if t is None:
            return status, 0, 0
        n = _common.get_count(count, native, zero_ok, t)
    if ch._ptr is None:     # count's __index__ cleared it or destroyed its context
        return ECA.BADCHID, 0, 0
    if lib.ca_state(ptr) != CS_CONN:
        return ECA.DISCONN, 0, 0
    return ECA.NORMAL, t, n


def _check_queue(queue: Any) -> None:
    if queue is not None and not isinstance(queue, EventQueue):
        raise TypeError("queue must be None or an EventQueue, not %s" % type(queue).__name__)


@counted
def get(chid: chid, chtype: Optional[int] = None, count: Optional[int] = None,
        callback: Optional[Callable] = None, use_numpy: bool = False,
        out: Optional[np.ndarray] = None, augment: Optional[tuple] = None,
        queue: Optional[EventQueue] = None) -> Tuple[ECA, Optional[DBRValue]]:
    """Read a channel.

    Without ``callback``: ``(ECA, DBRValue)``, the value valid after the next
    ``pend_io`` returned NORMAL. With ``callback``: ``(ECA, None)`` and the
    callback runs once with the get dict (``augment``: a scalar as the
    augmented value; ``queue``: queued in that EventQueue instead of called
    back). ``out``: a writable C-contiguous numpy array that libca fills
    directly (synchronous gets only).
    """
    callback = callable_or_none(callback)
    _check_queue(queue)
    _common.augment_check(augment)
    if out is not None and callback is not None:
        raise ValueError("out= is for synchronous gets (no callback)")
    if callback is None and (augment is not None or queue is not None):
        raise ValueError("augment= and queue= are for gets with a callback")
    check_counts(chtype, count)
    with held(get_channel(chid)) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID, None
        status, t, n = prepare_read(ch, cptr, chtype, count, callback is not None, out)
        if status != ECA.NORMAL:
            return to_eca(status), None
        if callback is not None:
            token = new_token((ch, callback, bool(use_numpy), augment, queue))
            ch.pending.add(token)
            status = lib.ca_array_get_callback(t, n, cptr, _callbacks.get_cb, as_usr(token))
            if status != ECA.NORMAL:
                registry.pop(token, None)
                ch.pending.discard(token)
            return to_eca(status), None
        if out is not None:
            view = out if n == out.size else out[:n]
            buf = ffi.from_buffer(view, require_writable=True)
            value = DBRValue(view, t, n, True, view, out=True)
        else:
            buf, value = read_buffer(t, n, bool(use_numpy))
        if ch._ptr is None:
            return ECA.BADCHID, None
        status = lib.ca_array_get(t, n, cptr, buf)
    if status != ECA.NORMAL:
        return to_eca(status), None
    # held until the pend_io of the channel's context (libca counts the
    # read there, whichever context the calling thread is in)
    read_hold(ch._ctx, PEND_IO, value)
    return ECA.NORMAL, value


@counted
def put(chid: chid, value: Any, chtype: Optional[int] = None, count: Optional[int] = None,
        callback: Optional[Callable] = None, queue: Optional[EventQueue] = None) -> ECA:
    """Write ``value`` (converted by the rules of ca-api.md 2.10).

    With ``callback`` it runs once the server completed the put (``queue``:
    the completion is queued in that EventQueue instead).
    """
    callback = callable_or_none(callback)
    _check_queue(queue)
    if callback is None and queue is not None:
        raise ValueError("queue= is for puts with a callback")
    check_counts(chtype, count)
    with held(get_channel(chid)) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID
        status, args = prepare_put(ch, cptr, value, chtype, count)
        if args is None:
            return to_eca(status)
        t, n, data = args
        if callback is None:
            return to_eca(lib.ca_array_put(t, n, cptr, data))
        token = new_token((ch, callback, False, None, queue))
        ch.pending.add(token)
        status = lib.ca_array_put_callback(t, n, cptr, data, _callbacks.put_cb, as_usr(token))
        if status != ECA.NORMAL:
            registry.pop(token, None)
            ch.pending.discard(token)
        return to_eca(status)


@counted
def create_subscription(chid: chid, callback: Callable, chtype: Optional[int] = None,
                        count: Optional[int] = None, mask: Optional[int] = None,
                        use_numpy: bool = False, augment: Optional[tuple] = None,
                        queue: Optional[EventQueue] = None,
                        pv_callback: Optional[tuple] = None) -> Tuple[ECA, Optional[evid]]:
    """Subscribe to changes; ``callback`` gets the event dict on every update
    (or the augmented value, ``_common.augment``'s rule); with ``queue`` the
    events wait in that EventQueue for its consumer; ``pv_callback=(fn,
    user_args)`` gets 3.x's form of the events ``_common.pv_form`` picks."""
    get_channel(chid)
    if not callable(callback):
        raise TypeError("callback must be callable, not %s" % type(callback).__name__)
    _common.augment_check(augment)
    _check_queue(queue)
    _common.pv_callback_check(pv_callback, augment, queue)
    check_counts(chtype, count)
    mask = (_common.DBE_VALUE | _common.DBE_ALARM) if mask is None else as_index(mask, "mask")
    with held(get_channel(chid)) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID, None
        t, status = resolve_type(cptr, chtype)
        if t is None:
            return to_eca(status), None
        native = int(lib.ca_element_count(cptr))
        n = _common.subscription_count(count, native)
        if ch._ptr is None:   # count/mask's __index__ cleared it
            return ECA.BADCHID, None
        status, sub = start_subscription(ch, cptr, t, n, mask, _callbacks.event_cb, callback,
                                         bool(use_numpy), augment, queue, pv_callback)
        return status, sub


def start_subscription(ch, cptr, t: int, n: int, mask: int, handler, target,
                       use_numpy: bool, augment: Optional[tuple] = None,
                       queue: Optional[EventQueue] = None,
                       pv_callback: Optional[tuple] = None) -> Tuple[ECA, Optional[evid]]:
    """Make the evid (holding ``target``: a callable, or a ring) and ask
    libca for the subscription; ``handler`` gets the evid's token as usr."""
    sub = evid(ch, target, use_numpy)
    sub.augment = augment
    sub.queue = queue
    sub.pv_callback = pv_callback
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


_evid_type = evid


@counted
def clear_subscription(evid: evid) -> ECA:
    """Cancel a subscription; a stale or cleared one gives ``ECA.BADMONID``."""
    if evid is None:
        return ECA.BADMONID
    if not isinstance(evid, _evid_type):
        raise TypeError("expected an evid from create_subscription, not %s"
                        % type(evid).__name__)
    # the channel is held: clear_channel (which frees its evids) waits for us
    with held(get_channel(evid.channel)) as (ch, _):
        if ch is None:
            return ECA.BADMONID
        with _handles.use_lock:
            ptr = evid._ptr
            evid._ptr = None
        if ptr is None:
            return ECA.BADMONID
        ch.subscriptions.discard(evid)
        status = lib.ca_clear_subscription(ptr)
    registry.pop(evid._token, None)
    return to_eca(status)
