"""Argument checks shared by every face: one rule per kind of argument.

Timeouts (every face, every call that waits):

* ``None`` means the caller's default (each face documents its own);
* a number ``>= 0`` is seconds; ``0`` means "do not wait";
* ``math.inf`` means "no limit": the wait goes on until the event
  (faces wait in short chunks, so Ctrl-C still interrupts it);
* ``NaN``, negative numbers, ``bool`` and non-numbers are refused with
  ``ValueError``/``TypeError`` naming the argument.

>>> timeout(2)
2.0
>>> timeout(None, default=3)
3.0
>>> timeout(float('inf'))
inf
>>> timeout(float('nan'))
Traceback (most recent call last):
    ...
ValueError: timeout must be a number >= 0 (or inf), not nan
>>> timeout('1')
Traceback (most recent call last):
    ...
TypeError: timeout must be a number or None, not str
"""
from __future__ import annotations

import math
import numbers
import threading
import time
from typing import Any, Callable, List, Optional, Sequence

from .. import _common

__all__ = ["timeout", "remaining", "count", "integer", "request_type", "mask",
           "callback", "optional_callback", "callback_list", "choice", "pv_name", "priority",
           "wait_event", "CHUNK", "MASK_BITS"]

#: every DBE_* bit a subscription mask may carry (VALUE|LOG|ALARM|PROPERTY)
MASK_BITS = 0x0F

#: longest single wait: waits longer than this (an infinite timeout) loop in
#: chunks so that KeyboardInterrupt is seen
CHUNK = 0.5


def timeout(value: Any, default: Optional[float] = None, *, what: str = "timeout") -> float:
    """The timeout rule: seconds as a float (``inf`` = no limit)."""
    if value is None:
        if default is None:
            raise TypeError("%s must be a number, not None" % what)
        value = default
    if type(value) is float or type(value) is int:  # the common case, without the ABC check
        if value >= 0:  # False for NaN
            return float(value)
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("%s must be a number or None, not %s" % (what, type(value).__name__))
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("%s must be a number >= 0 (or inf), not %r" % (what, seconds))
    return seconds


def remaining(deadline: float, now: float) -> float:
    """Seconds left before ``deadline`` (0 when past), capped at :data:`CHUNK`
    when the deadline is infinite."""
    if math.isinf(deadline):
        return CHUNK
    return max(deadline - now, 0.0)


def wait_event(event: threading.Event, seconds: float) -> bool:
    """``event.wait`` for ``seconds`` as given by :func:`timeout` (``inf``: no
    limit); waits in :data:`CHUNK` pieces so that Ctrl-C is seen. True if set.

    >>> wait_event(threading.Event(), 0.01)
    False
    """
    deadline = time.monotonic() + seconds
    while not event.is_set():
        left = remaining(deadline, time.monotonic())
        if left <= 0:
            return event.is_set()
        event.wait(min(left, CHUNK))
    return True


def count(value: Any, *, what: str = "count", allow_zero: bool = True) -> Optional[int]:
    """An element count: ``None`` (native) or an int ``>= 0`` (``>= 1`` unless ``allow_zero``).

    >>> count(None), count(3)
    (None, 3)
    >>> count(-1)
    Traceback (most recent call last):
        ...
    ValueError: count must be >= 0, not -1
    """
    if value is None:
        return None
    low = 0 if allow_zero else 1
    if type(value) is int and value >= low:  # the common case, without the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("%s must be an int or None, not %s" % (what, type(value).__name__))
    n = int(value)
    if n < low:
        raise ValueError("%s must be >= %d, not %d" % (what, low, n))
    return n


def integer(value: Any, *, what: str, low: int = 0) -> int:
    """An int ``>= low`` (``bool`` refused), e.g. a number of buffers.

    >>> integer(4, what="buffers", low=2)
    4
    >>> integer("4", what="buffers", low=2)
    Traceback (most recent call last):
        ...
    TypeError: buffers must be an int, not str
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("%s must be an int, not %s" % (what, type(value).__name__))
    n = int(value)
    if n < low:
        raise ValueError("%s must be an int >= %d, not %d" % (what, low, n))
    return n


def request_type(value: Any, *, what: str = "request type") -> Optional[int]:
    """A DBR request type: ``None`` (native) or a valid ``DBR_*`` code."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("%s must be a DBR_* int or None, not %s" % (what, type(value).__name__))
    code = int(value)
    if not _common.dbr_type_is_valid(code):
        raise ValueError("%s %d is not a valid DBR type" % (what, code))
    return code


def mask(value: Any, *, what: str = "mask") -> Optional[int]:
    """A subscription's DBE mask: ``None`` (the face's default) or an int made
    of :data:`MASK_BITS` (``DBE_VALUE|DBE_LOG|DBE_ALARM|DBE_PROPERTY``), not 0.

    Refused before anything is sent: libca passes any non-zero mask on, and
    an IOC that gets one with other bits drops the whole TCP circuit (every
    channel of this client to that server disconnects).

    >>> mask(None), mask(5)
    (None, 5)
    >>> mask(0x100)
    Traceback (most recent call last):
        ...
    ValueError: mask must be a DBE mask in 1..15 (DBE_VALUE|DBE_LOG|DBE_ALARM|DBE_PROPERTY), not 256
    """
    if value is None:
        return None
    if type(value) is int and 0 < value <= MASK_BITS:  # the common case, without the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("%s must be a DBE mask (int) or None, not %s" % (what, type(value).__name__))
    bits = int(value)
    if bits <= 0 or bits & ~MASK_BITS:
        raise ValueError("%s must be a DBE mask in 1..%d (DBE_VALUE|DBE_LOG|DBE_ALARM|DBE_PROPERTY),"
                         " not %d" % (what, MASK_BITS, bits))
    return bits


def choice(value: Any, choices: Sequence[Any], *, what: str) -> Any:
    """One of ``choices`` (compared with ``==``), else ``ValueError`` listing them.

    >>> choice("all", ("latest", "all"), what="policy")
    'all'
    """
    try:
        ok = value in choices
    except TypeError:  # unhashable in a set-like choices
        ok = False
    if not ok:
        raise ValueError("%s must be one of %s, not %r" % (what, tuple(choices), value))
    return value


def callback(value: Any, *, what: str = "callback") -> Callable:
    """A callable, refused before anything is sent when it is not one."""
    if not callable(value):
        raise TypeError("%s must be callable, not %s" % (what, type(value).__name__))
    return value


def optional_callback(value: Any, *, what: str = "callback") -> Optional[Callable]:
    """``None`` or a callable."""
    return None if value is None else callback(value, what=what)


def callback_list(value: Any, *, what: str = "callback") -> List[Callable]:
    """``None``, a callable or a list/tuple of callables, as a list (pyepics'
    ``callback=`` keywords); anything not callable is refused.

    >>> callback_list(None), callback_list(print)
    ([], [<built-in function print>])
    >>> callback_list([print, 5])
    Traceback (most recent call last):
        ...
    TypeError: callback must be callable, not int
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [callback(item, what=what) for item in value]
    return [callback(value, what=what)]


def pv_name(value: Any, *, what: str = "PV name") -> str:
    """A PV name: a non-empty ``str`` (``bytes`` are decoded as UTF-8)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("%s %r is not UTF-8" % (what, value)) from None
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s" % (what, type(value).__name__))
    if not value:
        raise ValueError("%s must not be empty" % what)
    return value


def priority(value: Any) -> int:
    """A CA channel priority, 0..99."""
    if type(value) is int and 0 <= value <= 99:  # the common case, without the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("priority must be an int, not %s" % type(value).__name__)
    p = int(value)
    if not 0 <= p <= 99:
        raise ValueError("priority must be in 0..99, not %d" % p)
    return p
