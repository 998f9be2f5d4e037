"""Augmented values, :class:`CANothing`, request types and value conversion.

Values returned by :func:`~CaChannel.aio.caget` and passed to
:func:`~CaChannel.aio.camonitor` callbacks are instances of subclasses of
``int``, ``float``, ``str``, ``bytes`` or ``numpy.ndarray`` carrying extra
attributes (aioca's "augmented values"):

* always: ``name``, ``ok`` (True), ``datatype`` (the DBR type requested, without
  the format), ``element_count`` (the channel's native element count);
* ``FORMAT_TIME``: ``status``, ``severity``, ``raw_stamp`` ``(secs, nsec)`` in
  POSIX seconds, ``timestamp`` (POSIX seconds as float, rounded to the
  microsecond) and the property ``datetime`` (local time);
* ``FORMAT_CTRL``: ``status``, ``severity`` and, by type, ``units``,
  ``precision`` (floating types), the display/alarm/warning/control limits
  (``upper_disp_limit`` ... ``lower_ctrl_limit``) or ``enums`` (enum type).
  Strings have no CTRL form: ``FORMAT_CTRL`` of a string gives the TIME fields.

A channel whose native element count is 1 gives a scalar, any other an
array (``ca_array``, a numpy array; strings as a numpy unicode array).
"""
from __future__ import annotations

import datetime as _datetime
from typing import Any, Callable, Optional, Tuple

import numpy as np

from .. import ca

__all__ = [
    "CANothing", "ca_int", "ca_float", "ca_str", "ca_bytes", "ca_array", "ca_extra_fields",
    "FORMAT_RAW", "FORMAT_TIME", "FORMAT_CTRL",
    "DBR_STRING", "DBR_SHORT", "DBR_FLOAT", "DBR_ENUM", "DBR_CHAR", "DBR_LONG", "DBR_DOUBLE",
    "DBR_PUT_ACKT", "DBR_PUT_ACKS", "DBR_STSACK_STRING", "DBR_CLASS_NAME",
    "DBR_ENUM_STR", "DBR_CHAR_BYTES", "DBR_CHAR_UNICODE", "DBR_CHAR_STR",
    "DBE_VALUE", "DBE_LOG", "DBE_ALARM", "DBE_PROPERTY",
]

FORMAT_RAW = 0   #: the value only (plus ``name``, ``ok``, ``datatype``, ``element_count``)
FORMAT_TIME = 1  #: plus alarm status/severity and the timestamp
FORMAT_CTRL = 2  #: plus alarm status/severity and the control fields of the type

DBR_STRING = 0
DBR_SHORT = 1
DBR_FLOAT = 2
DBR_ENUM = 3
DBR_CHAR = 4
DBR_LONG = 5
DBR_DOUBLE = 6
DBR_PUT_ACKT = 35       #: put only: set the "acknowledge transient alarms" flag
DBR_PUT_ACKS = 36       #: put only: acknowledge alarms up to this severity
DBR_STSACK_STRING = 37  #: value as string + status, severity, ackt, acks
DBR_CLASS_NAME = 38     #: the record type, e.g. ``'ao'``
DBR_ENUM_STR = 996      #: enums as their state strings, other types native
DBR_CHAR_BYTES = 997    #: a char array as ``bytes`` (up to the first NUL)
DBR_CHAR_UNICODE = 998  #: a char array decoded as UTF-8 ``str``
DBR_CHAR_STR = 999      #: a char array as ``str`` (long strings)

DBE_VALUE = 1
DBE_LOG = 2
DBE_ALARM = 4
DBE_PROPERTY = 8

ECA_NORMAL = ca.ECA_NORMAL
EPICS_EPOCH = ca.POSIX_TIME_AT_EPICS_EPOCH

#: names of the attributes augmented values may carry
ca_extra_fields = [
    "name", "ok", "datatype", "element_count", "severity", "status", "raw_stamp",
    "timestamp", "datetime", "units", "upper_disp_limit", "lower_disp_limit",
    "upper_alarm_limit", "lower_alarm_limit", "upper_warning_limit",
    "lower_warning_limit", "upper_ctrl_limit", "lower_ctrl_limit", "precision", "enums",
]


class CANothing(Exception):
    """Result of an operation without a value, or its failure.

    Returned by :func:`caput` and :func:`connect` (success: ``ok`` true), by a
    failing :func:`caget` with ``throw=False``, passed to monitor callbacks on
    disconnection, and raised by failing calls with ``throw=True``. It is
    false when the operation failed.

    >>> bool(CANothing('catest')), bool(CANothing('catest', ca.ECA_TIMEOUT))
    (True, False)
    >>> str(CANothing('catest', ca.ECA_TIMEOUT))
    'catest: User specified timeout on IO operation expired'
    """

    def __init__(self, name: str, errorcode: int = ECA_NORMAL) -> None:
        super().__init__(name, errorcode)
        #: the PV name
        self.name = name
        #: the ECA status code
        self.errorcode = int(errorcode)
        #: true when ``errorcode`` is ``ECA_NORMAL``
        self.ok = self.errorcode == ECA_NORMAL

    def __repr__(self) -> str:
        return "CANothing(%r, %d)" % (self.name, self.errorcode)

    def __str__(self) -> str:
        return "%s: %s" % (self.name, ca.message(self.errorcode))

    def __bool__(self) -> bool:
        return self.ok


def _datetime_of(self) -> _datetime.datetime:
    return _datetime.datetime.fromtimestamp(self.timestamp)


class ca_int(int):
    """An ``int`` with the CA attributes of :mod:`CaChannel.aio._values`."""
    datetime = property(_datetime_of)


class ca_float(float):
    """A ``float`` with CA attributes."""
    datetime = property(_datetime_of)


class ca_str(str):
    """A ``str`` with CA attributes."""
    datetime = property(_datetime_of)


class ca_bytes(bytes):
    """A ``bytes`` with CA attributes."""
    datetime = property(_datetime_of)


class ca_array(np.ndarray):
    """A numpy array with CA attributes (``+value`` gives a plain array)."""
    datetime = property(_datetime_of)
    __hash__ = None  # type: ignore[assignment]

    def __pos__(self) -> np.ndarray:
        return np.array(self)


_SCALAR_TYPE = {0: ca_str, 1: ca_int, 2: ca_float, 3: ca_int, 4: ca_int, 5: ca_int, 6: ca_float}
_DTYPE = {1: np.int16, 2: np.float32, 3: np.uint16, 4: np.uint8, 5: np.int32, 6: np.float64}

# numpy type characters -> DBR type (weakly supported ones map to the nearest)
_NUMPY_CHAR_TO_DBR = {
    "b": DBR_CHAR, "B": DBR_CHAR, "?": DBR_CHAR, "h": DBR_SHORT, "H": DBR_SHORT,
    "i": DBR_LONG, "I": DBR_LONG, "l": DBR_LONG, "L": DBR_LONG, "f": DBR_FLOAT,
    "d": DBR_DOUBLE, "S": DBR_STRING, "U": DBR_STRING,
}
_BASIC = frozenset(range(7))
_CHAR_AS_TEXT = frozenset((DBR_CHAR_STR, DBR_CHAR_BYTES, DBR_CHAR_UNICODE))


def datatype_to_dbr(datatype: Any) -> int:
    """A user ``datatype`` (DBR code, Python type or numpy dtype) -> DBR code.

    >>> datatype_to_dbr(float), datatype_to_dbr(int), datatype_to_dbr(str)
    (6, 5, 0)
    """
    if isinstance(datatype, (int, np.integer)) and not isinstance(datatype, bool):
        code = int(datatype)
        if code in _BASIC or code in _CHAR_AS_TEXT or code in (
                DBR_ENUM_STR, DBR_PUT_ACKT, DBR_PUT_ACKS, DBR_STSACK_STRING, DBR_CLASS_NAME):
            return code
        raise ValueError("datatype %r is not a supported DBR request type" % (datatype,))
    try:
        char = np.dtype(datatype).char
    except TypeError as exc:
        raise ValueError("datatype %r not supported for Channel Access" % (datatype,)) from exc
    try:
        return _NUMPY_CHAR_TO_DBR[char]
    except KeyError:
        raise ValueError("datatype %r not supported for Channel Access" % (datatype,)) from None


class Request:
    """How to ask libca for a value and how to turn the reply into a value.

    Built per call from a connected channel (its native type and count).
    """

    __slots__ = ("name", "dbr", "base", "datatype", "element_count", "text", "scalar",
                 "_attrs", "_stype")

    def __init__(self, name: str, chid: Any, datatype: Any, format: int) -> None:
        ftype = int(ca.field_type(chid))
        if ftype < 0:
            raise CANothing(name, ca.ECA_DISCONN)
        if datatype is None:
            base = ftype
            if base == DBR_CHAR and name.endswith("$"):
                base = DBR_CHAR_STR
        else:
            base = datatype_to_dbr(datatype)
            if base == DBR_ENUM_STR:
                base = DBR_STRING if ftype == DBR_ENUM else ftype
        if base in (DBR_PUT_ACKT, DBR_PUT_ACKS):
            raise ValueError("DBR_PUT_ACKT/DBR_PUT_ACKS can only be written")
        self.text = base if base in _CHAR_AS_TEXT else 0
        wire = DBR_CHAR if self.text else base
        self.datatype = wire
        if base in (DBR_STSACK_STRING, DBR_CLASS_NAME):
            self.dbr = self.datatype = base
            wire = DBR_STRING
        elif format == FORMAT_RAW:
            self.dbr = wire
        elif format == FORMAT_TIME:
            self.dbr = wire + 14
        elif format == FORMAT_CTRL:
            self.dbr = ca.DBR_TIME_STRING if wire == DBR_STRING else wire + 28
        else:
            raise ValueError("format must be FORMAT_RAW, FORMAT_TIME or FORMAT_CTRL, not %r"
                             % (format,))
        self.name = name
        self.base = wire
        self.element_count = int(ca.element_count(chid))
        self.scalar = self.element_count == 1
        self._attrs = {"name": name, "ok": True, "datatype": self.datatype,
                       "element_count": self.element_count}
        self._stype = _SCALAR_TYPE.get(wire, ca_str)

    def count(self, count: int) -> int:
        """libca request count for the aioca ``count`` (0 server, -1 native, n>0 at most n)."""
        count = int(count)
        if count < 0:
            return self.element_count
        if count > 0:
            return min(count, self.element_count)
        return 0

    def convert(self, args: dict) -> Any:
        """The augmented value of a get/event callback dict, or a CANothing."""
        if args["status"] != ECA_NORMAL:
            return CANothing(self.name, args["status"])
        raw = args["value"]
        meta = None
        if type(raw) is dict:
            meta = raw
            raw = raw["value"]
        if self.text:
            value = self._text(raw)
        elif self.scalar:
            t = type(raw)
            if t is float or t is int or t is str:
                value = self._stype(raw)
            else:
                value = self._scalar(raw)
        else:
            value = self._array(raw)
        d = value.__dict__
        d.update(self._attrs)
        if meta is not None:
            _augment(d, meta)
        return value

    def _scalar(self, raw: Any) -> Any:
        if isinstance(raw, (list, tuple)) or isinstance(raw, np.ndarray):
            raw = raw[0] if len(raw) else (0 if self.base else "")
        if isinstance(raw, bytes):
            return ca_bytes(raw)
        return self._stype(raw)

    def _array(self, raw: Any) -> ca_array:
        base = self.base
        if base == DBR_STRING:
            items = raw if isinstance(raw, list) else [raw]
            items = [s.decode("utf-8", "replace") if isinstance(s, bytes) else s for s in items]
            width = max([len(s) for s in items] + [1])
            return np.array(items, dtype="U%d" % width).view(ca_array)
        if isinstance(raw, np.ndarray):
            return raw.view(ca_array)
        return np.array([raw] if not isinstance(raw, list) else raw,
                        dtype=_DTYPE[base]).view(ca_array)

    def _text(self, raw: Any) -> Any:
        if isinstance(raw, np.ndarray):
            data = raw.tobytes()
        elif isinstance(raw, list):
            data = bytes(int(x) & 0xFF for x in raw)
        else:
            data = bytes([int(raw) & 0xFF])
        nul = data.find(b"\0")
        if nul >= 0:
            data = data[:nul]
        if self.text == DBR_CHAR_BYTES:
            return ca_bytes(data)
        if self.text == DBR_CHAR_UNICODE:
            return ca_str(data.decode("utf-8"))
        return ca_str(data.decode("utf-8", "replace"))


def _augment(d: dict, meta: dict) -> None:
    for key, item in meta.items():
        if key == "value":
            continue
        if key == "stamp":
            secs = int(item["seconds"])
            nsec = int(item["nanoseconds"])
            d["raw_stamp"] = (secs, nsec)
            d["timestamp"] = round(secs + nsec * 1e-9, 6)
        elif key == "strs":
            d["enums"] = list(item)
        elif key == "no_str":
            continue
        elif key in ("status", "severity", "acks", "ackt"):
            d[key] = int(item)
        else:
            d[key] = item


def encode_put(name: str, chid: Any, value: Any, datatype: Any) -> Tuple[Any, Optional[int]]:
    """(value, chtype) for ``ca.put`` following aioca's rules.

    A ``str``/``bytes`` without ``datatype`` is sent as DBR_STRING (the server
    converts); a char array whose name ends in ``$``, or ``DBR_CHAR_STR``,
    takes a string as the bytes of the text.
    """
    if datatype is None:
        if isinstance(value, (str, bytes)):
            if name.endswith("$") and int(ca.field_type(chid)) == DBR_CHAR:
                datatype = DBR_CHAR_STR
            else:
                return value, DBR_STRING
        else:
            return value, None
    code = datatype_to_dbr(datatype)
    if code in _CHAR_AS_TEXT:
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return np.frombuffer(data, dtype=np.uint8), DBR_CHAR
    if code == DBR_ENUM_STR:
        return value, (DBR_STRING if isinstance(value, (str, bytes)) else None)
    if code in (DBR_STSACK_STRING, DBR_CLASS_NAME):
        raise ValueError("%s cannot be written" % ca.dbr_type_to_text(code))
    return value, code


Converter = Callable[[dict], Any]
