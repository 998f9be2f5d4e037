"""``ArrayMonitor``'s fast path in the cffi backend (the twin of
``cext/ring.c``): the private ``_Ring``/``_ring_subscribe`` of the API.

The ring itself is ``CaChannel._ring.Ring`` (Python); here is the producer
side: a subscription whose handler copies libca's buffer into a slot (one
copy, on libca's thread, GIL taken).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from CaChannel import _common
from CaChannel import _ring as _ring_type
from CaChannel._common import DBR, ECA

from . import _callbacks
from ._args import as_index, get_channel
from ._bindings import ffi, lib
from ._handles import chid, counted, evid, held, registry, token_of
from ._request import start_subscription

_NULL = ffi.NULL

#: ArrayMonitor's ring (the C extension's is C code filled without the GIL)
Ring = _ring_type.Ring

_TIME_TYPES = frozenset(range(int(DBR.TIME_STRING), int(DBR.TIME_DOUBLE) + 1))


@_callbacks.guarded()
def _on_ring_event(args) -> None:
    # the ring's producer side: one copy from libca's buffer into a slot
    if args.status != ECA.NORMAL or args.dbr == _NULL:
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
        _callbacks.report_callback_error()


_ring_event_cb = ffi.callback("caEventCallBackFunc", _on_ring_event)


@counted
def ring_subscribe(chid: chid, ring: Ring, chtype: int, count: Optional[int] = None,
                   mask: Optional[int] = None) -> Tuple[ECA, Optional[evid]]:
    """A subscription whose updates libca's thread copies into ``ring`` (private:
    ``CaChannel.monitor.ArrayMonitor``); ``chtype`` is a DBR_TIME_* type of the
    ring's element size."""
    if not isinstance(ring, _ring_type.Ring):
        raise TypeError("ring must be a _Ring, not %s" % type(ring).__name__)
    get_channel(chid)
    t = as_index(chtype, "chtype")
    if count is not None:
        as_index(count, "count")
    mask = (_common.DBE_VALUE | _common.DBE_ALARM) if mask is None else as_index(mask, "mask")
    if t not in _TIME_TYPES or _common.DBR_VALUE_SIZE[t] != ring.data.itemsize:
        raise ValueError("chtype must be a DBR_TIME_* type with %d-byte elements, not %d"
                         % (ring.data.itemsize, t))
    if ring.subscribed or ring.closed:
        raise ValueError("the ring is closed or already subscribed")
    with held(get_channel(chid)) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID, None
        native = int(lib.ca_element_count(cptr))
        n = _common.subscription_count(count, native)
        if ch._ptr is None:
            return ECA.BADCHID, None
        status, sub = start_subscription(ch, cptr, t, n, mask, _ring_event_cb, ring, True)
        ring.subscribed = sub is not None
        return status, sub
