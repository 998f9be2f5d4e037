"""Reading DBR buffers in the cffi backend (the twin of ``cext/dbr_decode.c``):
the ``DBRValue`` of synchronous reads, their buffers, and the read sets that
keep those buffers alive until libca is done with them.

The conversions themselves are ``CaChannel._common.decode``; its layout
tables are checked against libca's at import.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from CaChannel import _common

from ._bindings import ffi, lib

# a libca with other DBR struct layouts than _common's tables would decode garbage
_common.check_dbr_layouts(lib.dbr_size, lib.dbr_value_size, lib.dbr_value_offset,
                          "read through the cffi backend's ffi")


class DBRValue:
    """The value of a synchronous ``get``/``sg_get``.

    Valid only after the matching ``pend_io`` (or ``sg_block``) returned
    ``ECA.NORMAL``. ``get()`` converts it by the rules of ca-api.md 2.9.
    """

    __slots__ = ("_buffer", "_dbrtype", "_count", "use_numpy", "_array", "_out")

    def __init__(self, buffer, dbrtype: int, count: int, use_numpy: bool,
                 array=None, out: bool = False):
        self._buffer = buffer
        self._dbrtype = int(dbrtype)
        self._count = int(count)
        self.use_numpy = bool(use_numpy)
        # an array libca wrote into directly (a numpy get, or the caller's out=)
        self._array = array
        self._out = out

    @property
    def dbrtype(self) -> _common.DBR:
        return _common.to_dbr(self._dbrtype)

    @property
    def count(self) -> int:
        return self._count

    def get(self):
        if self._array is not None:
            if self.use_numpy or self._out:
                return self._array
            return self._array.tolist() if self._count > 1 else self._array[0].item()
        return _common.decode(self._dbrtype, self._count, ffi.buffer(self._buffer),
                              self.use_numpy)

    def __repr__(self) -> str:
        return "<DBRValue %s count=%d>" % (_common.dbr_text(self._dbrtype), self._count)


def read_buffer(t: int, count: int, use_numpy: bool) -> Tuple[Any, DBRValue]:
    """``(C pointer, DBRValue)`` for a synchronous read of ``count`` x ``t``."""
    if use_numpy and 1 <= t <= 6 and count > 1:
        arr = np.empty(count, _common.DBR_DTYPE[t])
        return ffi.from_buffer(arr, require_writable=True), DBRValue(arr, t, count, True, arr)
    buf = ffi.new("char[]", _common.dbr_size_n(t, count))
    return buf, DBRValue(buf, t, count, use_numpy)


# ---------------------------------------------------------------------------
# Read sets

#: the gid of a context's pend_io read set
PEND_IO = -1

# Buffers of callback-less reads (get/sg_get) that libca may still fill,
# held until the settle point of their own request set: pend_io of the
# channel's context (gid PEND_IO), or sg_block/sg_reset/sg_delete of the
# group (a group belongs to one context). Keyed by (context address, gid).
_read_sets: Dict[Tuple[int, int], List[DBRValue]] = {}


def read_hold(ctx: int, gid: int, value: DBRValue) -> None:
    """Keep ``value``'s buffer alive until its set is settled."""
    _read_sets.setdefault((ctx, gid), []).append(value)


def read_mark(ctx: int, gid: int) -> Optional[Tuple[list, int]]:
    """The reads of a set issued so far (None if none), taken before its
    settle point's libca call: the ones other threads issue meanwhile stay."""
    held = _read_sets.get((ctx, gid))
    return (held, len(held)) if held else None


def read_settle(mark: Optional[Tuple[list, int]]) -> None:
    """Release the reads of ``mark`` (libca ended or abandoned them)."""
    if mark is not None:
        held, n = mark
        del held[:n]


def read_drop(ctx: Optional[int] = None, gid: Optional[int] = None) -> None:
    """Forget the set (ctx, gid), every set of ``ctx`` (gid None), or all."""
    if ctx is None:
        _read_sets.clear()
    elif gid is not None:
        _read_sets.pop((ctx, gid), None)
    else:
        for key in [k for k in _read_sets if k[0] == ctx]:
            del _read_sets[key]
