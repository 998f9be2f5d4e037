"""Writing in the cffi backend (the twin of ``cext/dbr_encode.c``): the
checks and conversion of a put's value, shared by ``put`` and ``sg_put``.

The conversion itself is ``CaChannel._common.encode`` (ca-api.md 2.10).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from CaChannel import _common
from CaChannel._common import ECA

from ._args import resolve_type
from ._bindings import CS_CONN, ffi, lib
from ._handles import chid


def prepare_put(ch: chid, ptr: Any, value: Any, chtype: Any,
                count: Any) -> Tuple[int, Optional[tuple]]:
    """Checks and conversion shared by ``put`` and ``sg_put``.

    Returns ``(status, (type, count, cdata))``; the tuple is None unless the
    status is NORMAL. Unconvertible values raise (ca-api.md 2.10).
    """
    t, status = resolve_type(ptr, chtype)
    if t is None:
        return status, None
    if t not in _common.PUT_TYPES:
        return ECA.BADTYPE, None
    if lib.ca_state(ptr) != CS_CONN:
        return ECA.DISCONN, None
    native = int(lib.ca_element_count(ptr))
    n = _common.put_count(count, max(native, 1))
    t2, n2, data = _common.encode(value, t, n)
    if ch._ptr is None:
        # the conversion ran Python code (__float__, __len__, a finalizer)
        # that cleared the channel or destroyed its context
        return ECA.BADCHID, None
    return ECA.NORMAL, (t2, n2, ffi.from_buffer(data))
