"""Augmented values, :class:`CANothing`, request types and value conversion.

Values returned by :func:`~CaChannel.aio.caget` and passed to
:func:`~CaChannel.aio.camonitor` callbacks are instances of the augmented
classes of ``epicscorelibs.ca.dbr``, the same ones aioca returns:
``ca_int``, ``ca_float``, ``ca_str``, ``ca_bytes`` (subclasses of the Python
types) and ``ca_array`` (a numpy array subclass). ``+value`` gives the plain
``int``/``float``/``str``/``bytes``/``numpy.ndarray``. Extra attributes:

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
array (``ca_array``; strings as a numpy unicode array).

The ``DBR_*``, ``DBE_*`` and ``FORMAT_*`` constants are those of
``epicscorelibs.ca.dbr``/``cadef`` (re-exported). Each value is built once,
in the event loop, from what the backend decoded: a scalar becomes its
augmented class in one call, an array is viewed (not copied) as ``ca_array``.
"""
from __future__ import annotations

import types as _types
from typing import Any, Callable, Optional, Tuple

import numpy as np
from epicscorelibs.ca import cadef as _cadef
from epicscorelibs.ca import dbr as _dbr
from epicscorelibs.ca.cadef import DBE_ALARM, DBE_LOG, DBE_PROPERTY, DBE_VALUE
from epicscorelibs.ca.dbr import (DBR_CHAR, DBR_CHAR_BYTES, DBR_CHAR_STR, DBR_CHAR_UNICODE,
                                  DBR_CLASS_NAME, DBR_DOUBLE, DBR_ENUM, DBR_ENUM_STR, DBR_FLOAT,
                                  DBR_LONG, DBR_PUT_ACKS, DBR_PUT_ACKT, DBR_SHORT, DBR_STRING,
                                  DBR_STSACK_STRING, FORMAT_CTRL, FORMAT_RAW, FORMAT_TIME,
                                  ca_array, ca_bytes, ca_extra_fields, ca_float, ca_int, ca_str)

from .. import ca

__all__ = [
    "CANothing", "CAException", "InvalidDatatype", "ca_error",
    "ca_int", "ca_float", "ca_str", "ca_bytes", "ca_array", "ca_extra_fields",
    "FORMAT_RAW", "FORMAT_TIME", "FORMAT_CTRL",
    "DBR_STRING", "DBR_SHORT", "DBR_FLOAT", "DBR_ENUM", "DBR_CHAR", "DBR_LONG", "DBR_DOUBLE",
    "DBR_PUT_ACKT", "DBR_PUT_ACKS", "DBR_STSACK_STRING", "DBR_CLASS_NAME",
    "DBR_ENUM_STR", "DBR_CHAR_BYTES", "DBR_CHAR_UNICODE", "DBR_CHAR_STR",
    "DBE_VALUE", "DBE_LOG", "DBE_ALARM", "DBE_PROPERTY",
]

ECA_NORMAL = ca.ECA_NORMAL

#: what aioca raises when a libca call refuses a request at once (e.g. a put
#: without write access): ``status`` is the ECA code
CAException = _cadef.CAException


class InvalidDatatype(_dbr.InvalidDatatype, ValueError):
    """A ``datatype`` or ``format`` that Channel Access cannot serve.

    It is ``epicscorelibs.ca.dbr.InvalidDatatype`` (what aioca raises) and a
    :class:`ValueError`.
    """


def ca_error(status: int, function: str) -> CAException:
    """The ``CAException`` aioca raises when libca's ``function`` returns ``status``.

    >>> str(ca_error(ca.ECA_NOWTACCESS, 'ca_array_put'))
    'Write access denied calling ca_array_put'
    """
    # CAException's text names the failing function by its __name__
    return CAException(int(status), _types.SimpleNamespace(__name__=function))


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


_SCALAR_TYPE = {0: ca_str, 1: ca_int, 2: ca_float, 3: ca_int, 4: ca_int, 5: ca_int, 6: ca_float}
#: element dtype of each numeric DBR type
DTYPE = {1: np.dtype(np.int16), 2: np.dtype(np.float32), 3: np.dtype(np.uint16),
         4: np.dtype(np.uint8), 5: np.dtype(np.int32), 6: np.dtype(np.float64)}

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

    Raises :class:`InvalidDatatype` (a ``ValueError``) for anything else.

    >>> datatype_to_dbr(float), datatype_to_dbr(int), datatype_to_dbr(str)
    (6, 5, 0)
    """
    if isinstance(datatype, (int, np.integer)) and not isinstance(datatype, bool):
        code = int(datatype)
        if code in _BASIC or code in _CHAR_AS_TEXT or code in (
                DBR_ENUM_STR, DBR_PUT_ACKT, DBR_PUT_ACKS, DBR_STSACK_STRING, DBR_CLASS_NAME):
            return code
        raise InvalidDatatype("datatype %r is not a supported DBR request type" % (datatype,))
    try:
        char = np.dtype(datatype).char
    except TypeError as exc:
        raise InvalidDatatype("datatype %r not supported for Channel Access"
                              % (datatype,)) from exc
    try:
        return _NUMPY_CHAR_TO_DBR[char]
    except KeyError:
        raise InvalidDatatype("datatype %r not supported for Channel Access"
                              % (datatype,)) from None


class Request:
    """How to ask libca for a value and how to turn the reply into a value.

    Built per call (or per subscription) from a connected channel: its native
    type and element count decide the wire type and the value's class.
    """

    __slots__ = ("name", "dbr", "base", "datatype", "element_count", "text", "scalar",
                 "augment", "_attrs", "_make", "_meta", "key")

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
            raise InvalidDatatype("DBR_PUT_ACKT/DBR_PUT_ACKS can only be written")
        self.text = base if base in _CHAR_AS_TEXT else 0
        wire = DBR_CHAR if self.text else base
        self.datatype = wire
        meta: Optional[Callable[[dict, dict], None]] = None
        if base in (DBR_STSACK_STRING, DBR_CLASS_NAME):
            self.dbr = self.datatype = base
            wire = DBR_STRING
            if base == DBR_STSACK_STRING:
                meta = _augment
        elif format == FORMAT_RAW:
            self.dbr = wire
        elif format == FORMAT_TIME:
            self.dbr = wire + 14
            meta = _time_fields
        elif format == FORMAT_CTRL:
            if wire == DBR_STRING:
                self.dbr = ca.DBR_TIME_STRING
                meta = _time_fields
            else:
                self.dbr = wire + 28
                meta = _augment
        else:
            raise InvalidDatatype("format must be FORMAT_RAW, FORMAT_TIME or FORMAT_CTRL, not %r"
                                  % (format,))
        self.name = name
        self.key = (datatype, format)  # what it was made for (a channel's cache of them)
        self.base = wire
        self.element_count = int(ca.element_count(chid))
        self.scalar = self.element_count == 1
        self._attrs = {"name": name, "ok": True, "datatype": self.datatype,
                       "element_count": self.element_count}
        self._meta = meta
        as_bytes = isinstance(datatype, type) and issubclass(datatype, bytes)
        # the plain function, not a bound method: one object less per request
        # (a subscription keeps its request; 100,000 of them in a process)
        if self.text:
            self._make = Request._text
        elif wire == DBR_STRING:
            if self.scalar:
                self._make = Request._bytes if as_bytes else Request._string
            else:
                self._make = Request._byte_strings if as_bytes else Request._strings
        elif self.scalar:
            self._make = Request._number
        else:
            self._make = Request._array
        #: ``(cls, attrs)`` for ``ca.create_subscription(augment=)``: the
        #: backend makes the value of a scalar number or text itself, by the
        #: same rule as :meth:`convert` (other events still come as dicts)
        self.augment: Optional[tuple] = None
        if self.dbr == wire + (14 if meta is _time_fields else 0) and meta in (None, _time_fields):
            if self._make is Request._number:
                self.augment = (_SCALAR_TYPE[wire], self._attrs)
            elif self._make is Request._string:
                self.augment = (ca_str, self._attrs)

    def count(self, count: int) -> int:
        """libca request count for the aioca ``count`` (0 server, -1 native, n>0 at most n)."""
        count = int(count)
        if count < 0:
            return self.element_count
        if count > 0:
            return min(count, self.element_count)
        return 0

    @property
    def dtype(self) -> Optional[np.dtype]:
        """Element dtype of a numeric value, None for strings and text."""
        return None if self.text else DTYPE.get(self.base)

    def convert(self, args: dict) -> Any:
        """The augmented value of a get/event callback dict, or a CANothing."""
        if args["status"] != ECA_NORMAL:
            return CANothing(self.name, args["status"])
        raw = args["value"]
        meta = self._meta
        if meta is None:
            value = self._make(self, raw)
            value.__dict__.update(self._attrs)
        else:
            fields = raw
            value = self._make(self, fields["value"])
            d = value.__dict__
            d.update(self._attrs)
            meta(d, fields)
        return value

    def event_of(self, chid: Any, value: Any) -> dict:
        """The event dict that :meth:`convert` makes ``value`` of, for a
        value the backend augmented itself (:attr:`augment`)."""
        plain = +value
        if self._meta is None:
            return {"chid": chid, "type": self.dbr, "count": 1, "status": ECA_NORMAL,
                    "value": plain}
        secs, nsec = value.raw_stamp
        return {"chid": chid, "type": self.dbr, "count": 1, "status": ECA_NORMAL,
                "value": {"value": plain, "status": value.status, "severity": value.severity,
                          "stamp": {"seconds": secs, "nanoseconds": nsec,
                                    "timestamp": secs + nsec * 1e-9}}}

    # -- one of these makes the value (chosen once, in __init__)
    def _number(self, raw: Any) -> Any:
        t = type(raw)
        if t is float or t is int:
            return _SCALAR_TYPE[self.base](raw)
        if isinstance(raw, (list, tuple, np.ndarray)):  # a waveform of NELM 1 with NORD 0
            raw = raw[0] if len(raw) else 0
        return _SCALAR_TYPE[self.base](raw)

    def _first(self, raw: Any) -> Any:
        if isinstance(raw, (list, tuple, np.ndarray)):
            return raw[0] if len(raw) else ""
        return raw

    def _string(self, raw: Any) -> ca_str:
        if type(raw) is not str:
            raw = self._first(raw)
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8", "replace")
        return ca_str(raw)

    def _bytes(self, raw: Any) -> ca_bytes:
        raw = self._first(raw)
        return ca_bytes(raw if isinstance(raw, bytes) else str(raw).encode("utf-8"))

    def _strings(self, raw: Any) -> ca_array:
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        items = [s.decode("utf-8", "replace") if isinstance(s, bytes) else s for s in items]
        width = max([len(s) for s in items] + [1])
        return np.array(items, dtype="U%d" % width).view(ca_array)

    def _byte_strings(self, raw: Any) -> ca_array:
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        items = [s if isinstance(s, bytes) else str(s).encode("utf-8") for s in items]
        width = max([len(s) for s in items] + [1])
        return np.array(items, dtype="S%d" % width).view(ca_array)

    def _array(self, raw: Any) -> ca_array:
        if isinstance(raw, np.ndarray):
            return raw.view(ca_array)
        return np.array([raw] if not isinstance(raw, (list, tuple)) else raw,
                        dtype=DTYPE[self.base]).view(ca_array)

    def _text(self, raw: Any) -> Any:
        if isinstance(raw, np.ndarray):
            data = raw.tobytes()
        elif isinstance(raw, (list, tuple)):
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


def _time_fields(d: dict, fields: dict) -> None:
    """The FORMAT_TIME attributes (the common case of a monitor, kept short)."""
    d["status"] = int(fields["status"])
    d["severity"] = int(fields["severity"])
    stamp = fields["stamp"]
    secs = stamp["seconds"]
    nsec = stamp["nanoseconds"]
    d["raw_stamp"] = (secs, nsec)
    d["timestamp"] = round(secs + nsec * 1e-9, 6)


def _augment(d: dict, fields: dict) -> None:
    """Every attribute of a CTRL (or STSACK) dict of the backend."""
    for key, item in fields.items():
        if key == "value" or key == "no_str":
            continue
        if key == "stamp":
            secs = int(item["seconds"])
            nsec = int(item["nanoseconds"])
            d["raw_stamp"] = (secs, nsec)
            d["timestamp"] = round(secs + nsec * 1e-9, 6)
        elif key == "strs":
            d["enums"] = list(item)
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
        raise InvalidDatatype("%s cannot be written" % ca.dbr_type_to_text(code))
    return value, code


Converter = Callable[[dict], Any]
