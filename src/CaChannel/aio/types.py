"""Type names of the aioca 2.x API (``aioca.types``) for annotations.

``from CaChannel.aio.types import AugmentedValue, Dbr, Format`` works as
``from aioca.types import ...`` does (and after :func:`CaChannel.aio.use`,
``aioca.types`` *is* this module). Nothing here is needed at run time.

* :data:`Timeout`: ``None`` (no limit), seconds from now as a number, or an
  absolute ``time.time()`` deadline as a 1-tuple ``(deadline,)``.
* :data:`Dbe`: ``None`` (the default mask of the format) or an ``or`` of
  ``DBE_VALUE``, ``DBE_LOG``, ``DBE_ALARM``, ``DBE_PROPERTY``.
* :data:`Dbr`: a request code: ``DBR_STRING`` ... ``DBR_DOUBLE`` (0-6),
  ``DBR_PUT_ACKT``/``DBR_PUT_ACKS`` (35, 36, writes only),
  ``DBR_STSACK_STRING`` (37), ``DBR_CLASS_NAME`` (38), and the client-side
  codes ``DBR_ENUM_STR``, ``DBR_CHAR_BYTES``, ``DBR_CHAR_UNICODE``,
  ``DBR_CHAR_STR`` (996-999).
* :data:`Datatype`: ``None`` (the channel's native type), a :data:`Dbr`, or a
  Python/numpy type that maps to one (``float``, ``int``, ``str``,
  ``numpy.int16``...).
* :data:`Format`: ``FORMAT_RAW`` (0), ``FORMAT_TIME`` (1), ``FORMAT_CTRL`` (2).
* :data:`Count`: 0 (as many elements as the server sends now), -1 (the
  channel's element count) or a positive maximum.
* :class:`AugmentedValue`: what ``caget`` returns and ``camonitor`` passes.

>>> from CaChannel.aio import types
>>> import typing
>>> typing.get_args(types.Format)
(0, 1, 2)
"""
from __future__ import annotations

import datetime
from typing import List, Literal, Optional, Sized, Tuple, Type, Union

try:
    from typing import Protocol
except ImportError:  # pragma: no cover - Python < 3.8
    Protocol = object  # type: ignore[assignment]

__all__ = ["Timeout", "Dbe", "Dbr", "Datatype", "Format", "Count", "AugmentedValue"]

#: ``None``, seconds (a number) or an absolute deadline ``(time.time() value,)``
Timeout = Union[None, Tuple[float], float]

#: an event mask (``DBE_*`` bits), ``None`` for the default of the format
Dbe = Optional[int]

#: a DBR request code (see the module docstring)
Dbr = Literal[0, 1, 2, 3, 4, 5, 6, 35, 36, 37, 38, 996, 997, 998, 999]

#: native (``None``), a :data:`Dbr`, or a Python/numpy type
Datatype = Union[None, Dbr, Type]

#: ``FORMAT_RAW``, ``FORMAT_TIME`` or ``FORMAT_CTRL``
Format = Literal[0, 1, 2]

#: 0 (server's current length), -1 (full length) or a positive maximum
Count = Union[Literal[0, -1], int]


class AugmentedValue(Protocol, Sized):
    """A value from ``caget``/``camonitor``: a scalar or array with CA fields.

    The object is an instance of one of the augmented classes of
    ``epicscorelibs.ca.dbr`` (``ca_int``, ``ca_float``, ``ca_str``,
    ``ca_bytes``, ``ca_array``); ``+value`` gives the plain Python or numpy
    value. A channel with one element gives a scalar, any other an array.
    Which attributes exist depends on the request: ``name`` and ``ok`` always,
    ``datatype`` and ``element_count`` for a value, ``status``, ``severity``,
    ``timestamp``, ``raw_stamp`` (and the property ``datetime``) with
    ``FORMAT_TIME``; ``status``, ``severity`` and the control fields of the
    type with ``FORMAT_CTRL`` (``units`` and the limits for numbers,
    ``precision`` for floating types, ``enums`` for enums; strings have no
    control form and get the time fields). ``DBR_STSACK_STRING`` adds
    ``ackt`` and ``acks``. A failure is a ``CANothing`` with ``ok`` false and
    ``errorcode``.
    """

    name: str                   #: the PV name asked for
    ok: bool                    #: True for a value
    errorcode: int              #: ECA status (failures only)
    datatype: int               #: the DBR type of the value (without the format)
    element_count: int          #: the channel's element count
    severity: int               #: alarm severity: 0 none, 1 minor, 2 major, 3 invalid
    status: int                 #: alarm status (the reason for the severity)
    raw_stamp: Tuple[int, int]  #: ``(seconds, nanoseconds)`` since the POSIX epoch
    timestamp: float            #: POSIX seconds, rounded to the microsecond
    datetime: datetime.datetime  #: ``timestamp`` as a local ``datetime``
    units: str                  #: engineering units
    upper_disp_limit: float     #: display range, high end
    lower_disp_limit: float     #: display range, low end
    upper_alarm_limit: float    #: major alarm above this
    lower_alarm_limit: float    #: major alarm below this
    upper_warning_limit: float  #: minor alarm above this
    lower_warning_limit: float  #: minor alarm below this
    upper_ctrl_limit: float     #: writes are limited to at most this
    lower_ctrl_limit: float     #: writes are limited to at least this
    precision: int              #: digits after the decimal point for display
    enums: List[str]            #: the state names of an enum
    ackt: int                   #: must transient alarms be acknowledged (0 no, 1 yes)
    acks: int                   #: highest unacknowledged alarm severity
