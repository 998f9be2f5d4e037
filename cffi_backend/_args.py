"""Argument checks shared by the cffi backend's API functions (the twin of
``cext/args.c``): handles, callbacks, timeouts, indices, request types.

Type errors come before any status: a wrong kind of argument raises, a
right kind that libca refuses gives an ECA status.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Optional, Tuple

from CaChannel import _common
from CaChannel._common import ECA

from ._bindings import lib
from ._handles import chid


def get_channel(obj: Any) -> Optional[chid]:
    """The live channel behind ``obj``; None for None/cleared; TypeError otherwise."""
    if obj is None:
        return None
    if not isinstance(obj, chid):
        raise TypeError("expected a chid from create_channel, not %s" % type(obj).__name__)
    return obj if obj._ptr is not None else None


def callable_or_none(callback: Any, what: str = "callback") -> Optional[Callable]:
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError("%s must be callable or None, not %s" % (what, type(callback).__name__))
    return callback


def parse_timeout(timeout: Any) -> float:
    if isinstance(timeout, (str, bytes)):
        raise TypeError("timeout must be a number, not %s" % type(timeout).__name__)
    try:
        t = float(timeout)
    except (TypeError, ValueError):
        raise TypeError("timeout must be a number, not %s" % type(timeout).__name__) from None
    if t != t or t < 0:
        raise ValueError("timeout must be >= 0, not %r" % timeout)
    return t


def as_index(value: Any, what: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError("%s must be an integer, not %s" % (what, type(value).__name__)) from None
    return v


def check_counts(chtype: Any, count: Any) -> None:
    """Type errors for ``chtype``/``count`` come before any status."""
    if count is not None:
        _common.index_count(count)
    if chtype is not None:
        _common.request_type(chtype)


def resolve_type(ptr: Any, chtype: Any) -> Tuple[Optional[int], int]:
    """``(request type or None, status)`` for a get/put/subscription."""
    t = _common.resolve_request_type(chtype, lib.ca_field_type(ptr) if chtype is None else -1)
    if t is None:
        return None, ECA.BADTYPE
    return t, ECA.NORMAL
