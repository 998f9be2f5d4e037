"""Channel Access facts shared by both ``ca`` backends.

Nothing in here talks to libca. This module is the single place for

* the constants and enums of the CA API (``ECA``, ``DBF``, ``DBR``, ``DBE``,
  ``CA_OP``, ``ChannelState``, ``CA_PRIORITY``, ``AlarmSeverity``,
  ``AlarmCondition``, ``CA_K``) and their module-level integer twins;
* the pure type/text helpers (``dbf_type_to_DBR``, ``dbr_text``, ...);
* the DBR buffer layout tables (struct sizes, value offsets, element sizes,
  numpy dtypes) that mirror ``db_access.h``;
* the conversion rules: :func:`decode` turns a received DBR buffer into Python
  values, :func:`encode` turns a Python value into the element buffer a put
  sends.

The C extension implements the same rules in C for speed; the cffi backend
uses the functions here directly, and the test suite checks that both agree.
"""
from __future__ import annotations

import enum
import math
import os
import struct
import sys
from numbers import Number
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

# ---------------------------------------------------------------------------
# Enums


class _PrintableIntEnum(enum.IntEnum):
    """IntEnum whose ``str()``/``format()`` read ``Class.MEMBER``.

    Python 3.11 changed ``IntEnum.__str__`` to print the bare number; the
    CaChannel manual's examples print ``DBR.TIME_DOUBLE`` and ``ECA.NORMAL``.
    A format spec (``'{:d}'``) still formats the number.
    """

    def __str__(self) -> str:
        return "%s.%s" % (type(self).__name__, self.name)

    def __format__(self, spec: str) -> str:
        if spec:
            return int.__format__(int(self), spec)
        return str(self)


class CA_K(_PrintableIntEnum):
    """Severity class of an ECA status code (``code & 7``)."""
    WARNING = 0
    SUCCESS = 1
    ERROR = 2
    INFO = 3
    SEVERE = 4
    FATAL = 6


class ECA(_PrintableIntEnum):
    """Channel Access status codes (``message_number << 3 | severity``)."""
    NORMAL = 1
    MAXIOC = 10
    UKNHOST = 18
    UKNSERV = 26
    SOCK = 34
    CONN = 40
    ALLOCMEM = 48
    UKNCHAN = 56
    UKNFIELD = 64
    TOLARGE = 72
    TIMEOUT = 80
    NOSUPPORT = 88
    STRTOBIG = 96
    DISCONNCHID = 106
    BADTYPE = 114
    CHIDNOTFND = 123
    CHIDNOTFOUND = 123
    CHIDRETRY = 131
    INTERNAL = 142
    DBLCLFAIL = 144
    GETFAIL = 152
    PUTFAIL = 160
    ADDFAIL = 168
    BADCOUNT = 176
    BADSTR = 186
    DISCONN = 192
    DBLCHNL = 200
    EVDISALLOW = 210
    BUILDGET = 216
    NEEDSFP = 224
    OVEVFAIL = 232
    BADMONID = 242
    NEWADDR = 248
    NEWCONN = 259
    NOCACTX = 264
    DEFUNCT = 278
    EMPTYSTR = 280
    NOREPEATER = 288
    NOCHANMSG = 296
    DLCKREST = 304
    SERVBEHIND = 312
    NOCAST = 320
    BADMASK = 330
    IODONE = 339
    IOINPROGRESS = 347
    BADSYNCGRP = 354
    PUTCBINPROG = 362
    NORDACCESS = 368
    NOWTACCESS = 376
    ANACHRONISM = 386
    NOSEARCHADDR = 392
    NOCONVERT = 400
    BADCHID = 410
    BADFUNCPTR = 418
    ISATTACHED = 424
    UNAVAILINSERV = 432
    CHANDESTROY = 440
    BADPRIORITY = 450
    NOTTHREADED = 458
    ARRAY16KCLIENT = 464
    CONNSEQTMO = 472
    UNRESPTMO = 480

    def message(self) -> str:
        """libca's text for this status, e.g. ``ECA.TIMEOUT.message()``."""
        from . import ca  # the active backend owns libca's message table
        return ca.message(self)

    def severity(self) -> "CA_K":
        """The severity class of this status code."""
        return CA_K(self & 7)


class DBF(_PrintableIntEnum):
    """Native field types of a channel."""
    NOTCONN = -1
    INVALID = -1
    STRING = 0
    SHORT = 1
    INT = 1
    FLOAT = 2
    ENUM = 3
    CHAR = 4
    LONG = 5
    DOUBLE = 6

    def toSTS(self) -> "DBR":
        return dbf_type_to_DBR_STS(self)

    def toTIME(self) -> "DBR":
        return dbf_type_to_DBR_TIME(self)

    def toGR(self) -> "DBR":
        return dbf_type_to_DBR_GR(self)

    def toCTRL(self) -> "DBR":
        return dbf_type_to_DBR_CTRL(self)


class DBR(_PrintableIntEnum):
    """Request types (``DBR_*``); SHORT is canonical, INT an alias."""
    INVALID = -1
    STRING = 0
    SHORT = 1
    INT = 1
    FLOAT = 2
    ENUM = 3
    CHAR = 4
    LONG = 5
    DOUBLE = 6
    STS_STRING = 7
    STS_SHORT = 8
    STS_INT = 8
    STS_FLOAT = 9
    STS_ENUM = 10
    STS_CHAR = 11
    STS_LONG = 12
    STS_DOUBLE = 13
    TIME_STRING = 14
    TIME_SHORT = 15
    TIME_INT = 15
    TIME_FLOAT = 16
    TIME_ENUM = 17
    TIME_CHAR = 18
    TIME_LONG = 19
    TIME_DOUBLE = 20
    GR_STRING = 21
    GR_SHORT = 22
    GR_INT = 22
    GR_FLOAT = 23
    GR_ENUM = 24
    GR_CHAR = 25
    GR_LONG = 26
    GR_DOUBLE = 27
    CTRL_STRING = 28
    CTRL_SHORT = 29
    CTRL_INT = 29
    CTRL_FLOAT = 30
    CTRL_ENUM = 31
    CTRL_CHAR = 32
    CTRL_LONG = 33
    CTRL_DOUBLE = 34
    PUT_ACKT = 35
    PUT_ACKS = 36
    STSACK_STRING = 37
    CLASS_NAME = 38
    LAST_BUFFER_TYPE = 38

    def isSTRING(self) -> bool:
        return dbr_type_is_STRING(self)

    def isSHORT(self) -> bool:
        return dbr_type_is_SHORT(self)

    def isFLOAT(self) -> bool:
        return dbr_type_is_FLOAT(self)

    def isENUM(self) -> bool:
        return dbr_type_is_ENUM(self)

    def isCHAR(self) -> bool:
        return dbr_type_is_CHAR(self)

    def isLONG(self) -> bool:
        return dbr_type_is_LONG(self)

    def isDOUBLE(self) -> bool:
        return dbr_type_is_DOUBLE(self)

    def isPlain(self) -> bool:
        return dbr_type_is_plain(self)

    def isSTS(self) -> bool:
        return dbr_type_is_STS(self)

    def isTIME(self) -> bool:
        return dbr_type_is_TIME(self)

    def isGR(self) -> bool:
        return dbr_type_is_GR(self)

    def isCTRL(self) -> bool:
        return dbr_type_is_CTRL(self)


class DBE(_PrintableIntEnum):
    """Subscription event mask bits."""
    VALUE = 1
    ARCHIVE = 2
    LOG = 2
    ALARM = 4
    PROPERTY = 8


class CA_OP(_PrintableIntEnum):
    """Operation codes in connection and exception callbacks."""
    GET = 0
    PUT = 1
    CREATE_CHANNEL = 2
    SEARCH = 2
    ADD_EVENT = 3
    CLEAR_EVENT = 4
    OTHER = 5
    CONN_UP = 6
    CONN_DOWN = 7


class ChannelState(_PrintableIntEnum):
    """Channel connection state; NEVER_SEARCH means "no channel yet"."""
    NEVER_CONN = 0
    PREV_CONN = 1
    CONN = 2
    CLOSED = 3
    NEVER_SEARCH = 4


class CA_PRIORITY(_PrintableIntEnum):
    """Channel priorities accepted by ``create_channel``."""
    MIN = 0
    DEFAULT = 0
    OPI = 0
    ARCHIVE = 20
    DB_LINKS = 80
    MAX = 99


class AlarmSeverity(_PrintableIntEnum):
    """Alarm severity of a value."""
    No = 0
    Minor = 1
    Major = 2
    Invalid = 3


class AlarmCondition(_PrintableIntEnum):
    """Alarm status (condition) of a value."""
    No = 0
    Read = 1
    Write = 2
    HiHi = 3
    High = 4
    LoLo = 5
    Lolo = 5
    Low = 6
    State = 7
    Cos = 8
    Comm = 9
    Timeout = 10
    HwLimit = 11
    Calc = 12
    Scan = 13
    Scam = 13
    Link = 14
    Soft = 15
    BadSub = 16
    UDF = 17
    Disable = 18
    Simm = 19
    ReadAccess = 20
    WriteAccess = 21


# ---------------------------------------------------------------------------
# Module-level integer constants (``ECA_NORMAL``, ``DBR_TIME_DOUBLE``, ...)

def _module_ints() -> dict:
    names: Dict[str, int] = {}
    member: enum.IntEnum  # the loops below walk several enum classes
    for member_name, member in ECA.__members__.items():
        names["ECA_" + member_name] = int(member)
    names["ECA_16KARRAYCLIENT"] = int(ECA.ARRAY16KCLIENT)
    for member_name, member in CA_K.__members__.items():
        names["CA_K_" + member_name] = int(member)
    for member_name, member in DBF.__members__.items():
        if member >= 0:
            names["DBF_" + member_name] = int(member)
    for member_name, member in DBR.__members__.items():
        if member >= 0 and member_name != "LAST_BUFFER_TYPE":
            names["DBR_" + member_name] = int(member)
    for member_name, member in DBE.__members__.items():
        names["DBE_" + member_name] = int(member)
    for member_name, member in CA_OP.__members__.items():
        names["CA_OP_" + member_name] = int(member)
    for member_name, member in CA_PRIORITY.__members__.items():
        names["CA_PRIORITY_" + member_name] = int(member)
    for member_name, member in ChannelState.__members__.items():
        names["cs_" + member_name.lower()] = int(member)
    return names


globals().update(_module_ints())

DBF_NO_ACCESS = 7
LAST_TYPE = 6
TYPENOTCONN = -1
LAST_BUFFER_TYPE = 38

CA_M_MSG_NO = 0xFFF8
CA_M_SEVERITY = 7
CA_M_LEVEL = 3
CA_M_SUCCESS = 1
CA_M_ERROR = 2
CA_M_SEVERE = 4
CA_V_MSG_NO = 3
CA_V_SEVERITY = 0
CA_V_SUCCESS = 0

NO_ALARM = 0
MINOR_ALARM = 1
MAJOR_ALARM = 2
INVALID_ALARM = 3
READ_ALARM = 1
WRITE_ALARM = 2
HIHI_ALARM = 3
HIGH_ALARM = 4
LOLO_ALARM = 5
LOW_ALARM = 6
STATE_ALARM = 7
COS_ALARM = 8
COMM_ALARM = 9
TIMEOUT_ALARM = 10
HW_LIMIT_ALARM = 11
CALC_ALARM = 12
SCAN_ALARM = 13
LINK_ALARM = 14
SOFT_ALARM = 15
BAD_SUB_ALARM = 16
UDF_ALARM = 17
DISABLE_ALARM = 18
SIMM_ALARM = 19
READ_ACCESS_ALARM = 20
WRITE_ACCESS_ALARM = 21

#: POSIX seconds at the EPICS epoch (1990-01-01 UTC). The one definition:
#: the C extension reads it from here at import (cext/module.c).
POSIX_TIME_AT_EPICS_EPOCH = 631152000
MAX_STRING_SIZE = 40
MAX_UNITS_SIZE = 8
MAX_ENUM_STRING_SIZE = 26
MAX_ENUM_STATES = 16

epicsAlarmSeverityStrings = ("NO_ALARM", "MINOR", "MAJOR", "INVALID")
epicsAlarmConditionStrings = (
    "NO_ALARM", "READ", "WRITE", "HIHI", "HIGH", "LOLO", "LOW", "STATE",
    "COS", "COMM", "TIMEOUT", "HWLIMIT", "CALC", "SCAN", "LINK", "SOFT",
    "BAD_SUB", "UDF", "DISABLE", "SIMM", "READ_ACCESS", "WRITE_ACCESS",
)

# ---------------------------------------------------------------------------
# Type and text helpers (pure; the C macros of db_access.h/caerr.h)


def _as_int(t: Any) -> Optional[int]:
    try:
        return int(t)
    except (TypeError, ValueError):
        return None


def dbf_type_is_valid(t: int) -> bool:
    i = _as_int(t)
    return i is not None and 0 <= i <= LAST_TYPE


def dbr_type_is_valid(t: int) -> bool:
    i = _as_int(t)
    return i is not None and 0 <= i <= LAST_BUFFER_TYPE


def _family(lo: int, hi: int):
    def test(t: int) -> bool:
        i = _as_int(t)
        return i is not None and lo <= i <= hi
    return test


dbr_type_is_plain = _family(0, 6)
dbr_type_is_STS = _family(7, 13)
dbr_type_is_TIME = _family(14, 20)
dbr_type_is_GR = _family(21, 27)
dbr_type_is_CTRL = _family(28, 34)


def _element(k: int):
    def test(t: int) -> bool:
        return dbr_type_is_valid(t) and int(t) % 7 == k
    return test


dbr_type_is_STRING = _element(0)
dbr_type_is_SHORT = _element(1)
dbr_type_is_FLOAT = _element(2)
dbr_type_is_ENUM = _element(3)
dbr_type_is_CHAR = _element(4)
dbr_type_is_LONG = _element(5)
dbr_type_is_DOUBLE = _element(6)


def _to_dbr(t: int) -> Union[DBR, int]:
    try:
        return DBR(t)
    except ValueError:
        return t


def _dbf_to(offset: int):
    # a table, not DBR(t + offset) per call: list reads convert one type per name
    table = {t: DBR(t + offset) for t in range(LAST_TYPE + 1)}

    def convert(t: int) -> DBR:
        try:
            return table[t]
        except (KeyError, TypeError):  # a float, an unhashable or out of range
            pass
        if dbf_type_is_valid(t):
            return table[int(t)]
        return DBR.INVALID
    return convert


dbf_type_to_DBR = _dbf_to(0)
dbf_type_to_DBR_STS = _dbf_to(7)
dbf_type_to_DBR_TIME = _dbf_to(14)
dbf_type_to_DBR_GR = _dbf_to(21)
dbf_type_to_DBR_CTRL = _dbf_to(28)

_DBF_TEXT = ("DBF_STRING", "DBF_SHORT", "DBF_FLOAT", "DBF_ENUM", "DBF_CHAR",
             "DBF_LONG", "DBF_DOUBLE")
_DBR_TEXT = tuple(
    ["DBR_" + n for n in ("STRING", "SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE")]
    + ["DBR_%s_%s" % (fam, n) for fam in ("STS", "TIME", "GR", "CTRL")
       for n in ("STRING", "SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE")]
    + ["DBR_PUT_ACKT", "DBR_PUT_ACKS", "DBR_STSACK_STRING", "DBR_CLASS_NAME"])


def dbf_type_to_text(t: int) -> str:
    """``'DBF_DOUBLE'`` for 6, ``'TYPENOTCONN'`` for -1, else ``'DBF_invalid'``."""
    i = _as_int(t)
    if i == -1:
        return "TYPENOTCONN"
    if i is not None and 0 <= i <= LAST_TYPE:
        return _DBF_TEXT[i]
    return "DBF_invalid"


def dbf_text_to_type(text: str) -> Union[DBF, int]:
    try:
        return DBF(_DBF_TEXT.index(text))
    except ValueError:
        return -1


def dbr_type_to_text(t: int) -> str:
    """``'DBR_CTRL_DOUBLE'`` for 34; ``'DBR_invalid'`` outside 0..38."""
    i = _as_int(t)
    if i is not None and 0 <= i <= LAST_BUFFER_TYPE:
        return _DBR_TEXT[i]
    return "DBR_invalid"


def dbr_text_to_type(text: str) -> Union[DBR, int]:
    try:
        return DBR(_DBR_TEXT.index(text))
    except ValueError:
        return -1


dbf_text = dbf_type_to_text
dbr_text = dbr_type_to_text


def alarmSeverityString(s: int) -> str:
    """``'MAJOR'`` for 2; ``IndexError`` outside 0..3."""
    s = int(s)
    if s < 0:
        raise IndexError("alarm severity out of range: %d" % s)
    return epicsAlarmSeverityStrings[s]


def alarmStatusString(s: int) -> str:
    """``'HIHI'`` for 3; ``IndexError`` outside 0..21."""
    s = int(s)
    if s < 0:
        raise IndexError("alarm status out of range: %d" % s)
    return epicsAlarmConditionStrings[s]


def CA_EXTRACT_MSG_NO(code: int) -> int:
    return (int(code) & CA_M_MSG_NO) >> CA_V_MSG_NO


def CA_EXTRACT_MSG_SEVERITY(code: int) -> int:
    return int(code) & CA_M_SEVERITY


def to_eca(status: int) -> Union[ECA, int]:
    """An ``ECA`` member for a libca status code (the int if unknown)."""
    try:
        return ECA(status)
    except ValueError:
        return status


def to_dbr(t: int) -> Union[DBR, int]:
    """A ``DBR`` member for a request type code (the int if unknown).

    libca reports "no type" as -1 on success but as the 32-bit pattern
    0xFFFFFFFF on some failures; the low 32 bits are read as signed.
    """
    t = int(t) & 0xFFFFFFFF
    return _to_dbr(t - (1 << 32) if t >= (1 << 31) else t)


def to_ca_op(op: int) -> Union[CA_OP, int]:
    try:
        return CA_OP(op)
    except ValueError:
        return op


# ---------------------------------------------------------------------------
# DBR buffer layouts (db_access.h). Every struct starts with its metadata and
# ends with the first value element; further elements follow contiguously.
# ``struct`` formats use standard sizes ('=') with the C padding spelled out,
# so they read exactly the bytes libca wrote on this host.

_ELEMENT = {
    # element kind -> (numpy dtype, element size)
    0: (np.dtype("S40"), 40),       # STRING
    1: (np.dtype("=i2"), 2),        # SHORT
    2: (np.dtype("=f4"), 4),        # FLOAT
    3: (np.dtype("=u2"), 2),        # ENUM
    4: (np.dtype("=u1"), 1),        # CHAR
    5: (np.dtype("=i4"), 4),        # LONG
    6: (np.dtype("=f8"), 8),        # DOUBLE
}

#: numpy dtype of one value element, by DBR type.
DBR_DTYPE: Dict[int, np.dtype] = {}
#: byte offset of the first value element inside the DBR struct.
DBR_VALUE_OFFSET: Dict[int, int] = {}
#: sizeof the DBR struct (metadata + one element + trailing padding).
DBR_SIZE: Dict[int, int] = {}
#: size of one value element.
DBR_VALUE_SIZE: Dict[int, int] = {}
#: metadata struct format (fields in the order of the C struct).
DBR_META_FORMAT: Dict[int, str] = {}

_LIMITS6 = ("upper_disp_limit", "lower_disp_limit", "upper_alarm_limit",
            "upper_warning_limit", "lower_warning_limit", "lower_alarm_limit")
_LIMITS8 = _LIMITS6 + ("upper_ctrl_limit", "lower_ctrl_limit")

#: metadata field names matching DBR_META_FORMAT (None = padding already in fmt)
DBR_META_FIELDS: Dict[int, Tuple[str, ...]] = {}


def _layout(t: int, fmt: str, fields: Tuple[str, ...], kind: int) -> None:
    dtype, esize = _ELEMENT[kind]
    offset = struct.calcsize(fmt)
    # C aligns the struct to its widest member; strings and chars align to 1
    align = 1 if kind in (0, 4) else esize
    if fmt != "=":
        align = max(align, 2)
    for code, size in (("i", 4), ("I", 4), ("f", 4), ("d", 8)):
        if code in fmt:
            align = max(align, size)
    size = offset + esize
    size += (-size) % align
    DBR_DTYPE[t] = dtype
    DBR_VALUE_OFFSET[t] = offset
    DBR_SIZE[t] = size
    DBR_VALUE_SIZE[t] = esize
    DBR_META_FORMAT[t] = fmt
    DBR_META_FIELDS[t] = fields


_STS = ("status", "severity")
_TIME = ("status", "severity", "seconds", "nanoseconds")
for _k in range(7):
    _layout(_k, "=", (), _k)
    _layout(7 + _k, {4: "=hhx", 6: "=hh4x"}.get(_k, "=hh"), _STS, _k)
    _layout(14 + _k, {1: "=hhII2x", 3: "=hhII2x", 4: "=hhII3x", 6: "=hhII4x"}.get(_k, "=hhII"),
            _TIME, _k)
_GR = {
    0: ("=hh", _STS),
    1: ("=hh8s6h", _STS + ("units",) + _LIMITS6),
    2: ("=hhh2x8s6f", _STS + ("precision", "units") + _LIMITS6),
    3: ("=hhh416s", _STS + ("no_str", "strs")),
    4: ("=hh8s6Bx", _STS + ("units",) + _LIMITS6),
    5: ("=hh8s6i", _STS + ("units",) + _LIMITS6),
    6: ("=hhh2x8s6d", _STS + ("precision", "units") + _LIMITS6),
}
_CTRL = {
    0: ("=hh", _STS),
    1: ("=hh8s8h", _STS + ("units",) + _LIMITS8),
    2: ("=hhh2x8s8f", _STS + ("precision", "units") + _LIMITS8),
    3: ("=hhh416s", _STS + ("no_str", "strs")),
    4: ("=hh8s8Bx", _STS + ("units",) + _LIMITS8),
    5: ("=hh8s8i", _STS + ("units",) + _LIMITS8),
    6: ("=hhh2x8s8d", _STS + ("precision", "units") + _LIMITS8),
}
for _k in range(7):
    _layout(21 + _k, _GR[_k][0], _GR[_k][1], _k)
    _layout(28 + _k, _CTRL[_k][0], _CTRL[_k][1], _k)
_layout(35, "=", (), 3)                   # PUT_ACKT: epicsUInt16
_layout(36, "=", (), 3)                   # PUT_ACKS: epicsUInt16
_layout(37, "=hhHH", _STS + ("ackt", "acks"), 0)
_layout(38, "=", (), 0)                   # CLASS_NAME: char[40]
del _k


def check_dbr_layouts(dbr_size: Sequence[int], dbr_value_size: Sequence[int],
                      dbr_value_offset: Sequence[int], source: str) -> None:
    """Compare the layout tables above with libca's own arrays.

    ``dbr_size``, ``dbr_value_size`` and ``dbr_value_offset`` are libca's
    exported arrays of ``LAST_BUFFER_TYPE + 1`` unsigned shorts (``db_access.h``)
    as read by a backend; ``source`` says how (it appears in the message).
    Each backend calls this once at import: a libca built with other struct
    layouts would otherwise decode garbage. Raises ``ImportError`` naming
    every entry that differs.
    """
    wrong = []
    for cname, table, libca in (("dbr_size", DBR_SIZE, dbr_size),
                                ("dbr_value_size", DBR_VALUE_SIZE, dbr_value_size),
                                ("dbr_value_offset", DBR_VALUE_OFFSET, dbr_value_offset)):
        for t in range(LAST_BUFFER_TYPE + 1):
            if int(libca[t]) != table[t]:
                wrong.append("%s[%s] is %d in libca, %d in CaChannel._common"
                             % (cname, _DBR_TEXT[t], int(libca[t]), table[t]))
    if wrong:
        raise ImportError("CaChannel: the DBR struct layouts of CaChannel._common do not "
                          "match the loaded libca (%s): %s" % (source, "; ".join(wrong)))


def dbr_size_n(dbrtype: int, count: int) -> int:
    """Bytes libca needs for ``count`` elements of ``dbrtype`` (C ``dbr_size_n``)."""
    t = int(dbrtype)
    if not 0 <= t <= LAST_BUFFER_TYPE:
        raise ValueError("invalid DBR type %r" % (dbrtype,))
    count = int(count)
    if count <= 0:
        return DBR_SIZE[t]
    return DBR_SIZE[t] + (count - 1) * DBR_VALUE_SIZE[t]


# ---------------------------------------------------------------------------
# Received data -> Python values (ca-api.md 2.9)


def decode_cstring(raw: bytes) -> Union[str, bytes]:
    """C string up to the first NUL as ``str``; the raw ``bytes`` if not UTF-8."""
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(raw)


def _meta_text(raw: bytes) -> str:
    # Units and state strings are always returned as str: a database in a
    # legacy 8-bit encoding still gives readable text.
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def stamp(sec_past_epoch: int, nsec: int) -> dict:
    """The timestamp form of the ``ca`` level (ca-api.md 2.9) for an
    ``epicsTimeStamp``: POSIX ``seconds``, ``nanoseconds`` and the float
    ``timestamp`` (POSIX seconds with fraction). cext/dbr_decode.c
    (set_stamp) builds the same dict.
    """
    secs = sec_past_epoch + POSIX_TIME_AT_EPICS_EPOCH
    return {"seconds": secs, "nanoseconds": nsec, "timestamp": secs + nsec * 1e-9}


def epics_seconds(stamp: dict) -> int:
    """Seconds since the EPICS epoch of a ``ca``-level ``stamp`` dict.

    The one conversion between the two documented forms: the ``ca`` level
    hands out POSIX seconds (ca-api.md 2.9), the CaChannel class hands out
    ``pv_seconds`` since the EPICS epoch as CaChannel 3.x did (ca-api.md
    4.2).
    """
    return int(stamp["seconds"]) - POSIX_TIME_AT_EPICS_EPOCH


def enum_or_int(enum_cls, v):
    try:
        return enum_cls(v)
    except ValueError:
        return v


_SCALAR_CODE = {1: "=h", 2: "=f", 3: "=H", 4: "=B", 5: "=i", 6: "=d"}


def decode_values(kind: int, count: int, buf, offset: int, use_numpy: bool):
    """Convert ``count`` elements of element kind ``kind`` (0..6) at ``offset``.

    One element gives a scalar; more give a list, or a numpy array (an owned
    copy) when ``use_numpy``. Strings are always ``str``/``bytes`` items.
    """
    if kind == 0:
        if count == 1:
            return decode_cstring(bytes(buf[offset:offset + 40]))
        raw = bytes(buf[offset:offset + 40 * count])
        return [decode_cstring(raw[i:i + 40]) for i in range(0, 40 * count, 40)]
    if count == 1:
        return struct.unpack_from(_SCALAR_CODE[kind], buf, offset)[0]
    arr = np.frombuffer(buf, _ELEMENT[kind][0], count, offset)
    if use_numpy:
        return arr.copy()
    return arr.tolist()


def decode(dbrtype: int, count: int, buf, use_numpy: bool = False):
    """Turn a DBR buffer as libca delivers it into the Python value of 2.9.

    ``buf`` is any object with the buffer protocol holding at least
    ``dbr_size_n(dbrtype, count)`` bytes.
    """
    t = int(dbrtype)
    kind = 3 if t in (35, 36) else t % 7
    if t in (37, 38):
        kind = 0
    value = decode_values(kind, count, buf, DBR_VALUE_OFFSET[t], use_numpy)
    if t <= 6 or t >= 35 and t != 37:
        return value
    fields = DBR_META_FIELDS[t]
    meta = struct.unpack_from(DBR_META_FORMAT[t], buf, 0)
    result = {"value": value}
    for name, v in zip(fields, meta):
        result[name] = v
    result["status"] = enum_or_int(AlarmCondition, result["status"])
    result["severity"] = enum_or_int(AlarmSeverity, result["severity"])
    if "seconds" in result:
        result["stamp"] = stamp(result.pop("seconds"), result.pop("nanoseconds"))
    if "units" in result:
        result["units"] = _meta_text(result["units"])
    if "strs" in result:
        n = max(0, min(result["no_str"], MAX_ENUM_STATES))
        raw = result["strs"]
        result["strs"] = tuple(_meta_text(raw[i * 26:(i + 1) * 26]) for i in range(n))
    if "acks" in result:
        result["acks"] = enum_or_int(AlarmSeverity, result["acks"])
    return result


def augment_check(spec: Any) -> None:
    """Check ``create_subscription``'s ``augment``: None or ``(type, dict)``,
    the type with a ``__dict__`` (TypeError otherwise)."""
    if spec is None:
        return
    if (not isinstance(spec, tuple) or len(spec) != 2 or not isinstance(spec[0], type)
            or not isinstance(spec[1], dict)):
        raise TypeError("augment must be None or a tuple (type, dict), not %s"
                        % type(spec).__name__)
    if not hasattr(spec[0], "__dictoffset__") or not spec[0].__dictoffset__:
        raise TypeError("augment's type must have a __dict__ for the attributes: %s has none"
                        % spec[0].__name__)


def pv_callback_check(pv_callback: Any, augment: Any, queue: Any) -> None:
    """Check ``create_subscription``'s ``pv_callback``: None or ``(callable,
    tuple)`` (TypeError otherwise), and not with ``augment`` or ``queue``
    (ValueError)."""
    if pv_callback is None:
        return
    if (not isinstance(pv_callback, tuple) or len(pv_callback) != 2
            or not callable(pv_callback[0]) or not isinstance(pv_callback[1], tuple)):
        raise TypeError("pv_callback must be None or (callable, tuple)")
    if augment is not None or queue is not None:
        raise ValueError("pv_callback cannot be combined with augment or queue")


def pv_form(dbrtype: int, status: int, has_data: bool) -> bool:
    """``create_subscription(pv_callback=)``'s rule: True for an event whose
    value is no structured dict (a plain type's value, or None with an error
    status); ``pv_callback`` gets those with the value under ``pv_value``."""
    return DBR.STRING <= dbrtype <= DBR.DOUBLE or status != ECA.NORMAL or not has_data


def augment(spec: tuple, dbrtype: int, count: int, status: int, buf) -> Any:
    """The augmented value of one event for ``create_subscription(augment=(cls, attrs))``,
    or None where the rule does not apply (the callback then gets the event dict).

    The rule (cext/augment.c is its C twin): an event of status ECA_NORMAL
    with one element of a plain or TIME type, whose text (if any) is UTF-8,
    gives ``cls(value)`` with ``attrs`` in its ``__dict__`` and, for TIME
    types, ``status``, ``severity`` (ints), ``raw_stamp`` (POSIX seconds,
    nanoseconds) and ``timestamp`` (``round(seconds + nanoseconds * 1e-9, 6)``),
    the attributes of ``epicscorelibs.ca.dbr``'s augmented values.
    """
    t = int(dbrtype)
    timed = DBR.TIME_STRING <= t <= DBR.TIME_DOUBLE
    if status != ECA.NORMAL or count != 1 or not (0 <= t <= DBR.DOUBLE or timed):
        return None
    raw = decode_values(t % 7, 1, buf, DBR_VALUE_OFFSET[t], False)
    if isinstance(raw, bytes):
        return None
    value = spec[0](raw)
    d = value.__dict__
    d.update(spec[1])
    if timed:
        status_, severity, secs, nsec = struct.unpack_from("=hhII", buf, 0)
        secs += POSIX_TIME_AT_EPICS_EPOCH
        d["status"] = status_
        d["severity"] = severity
        d["raw_stamp"] = (secs, nsec)
        d["timestamp"] = round(secs + nsec * 1e-9, 6)
    return value


# ---------------------------------------------------------------------------
# Python values -> put buffers (ca-api.md 2.10)

#: request types a put accepts
PUT_TYPES = frozenset(range(0, 7)) | {35, 36}

_INT_RANGE = {
    1: (-32768, 32767),
    3: (0, 65535),
    4: (0, 255),
    5: (-2147483648, 2147483647),
    35: (0, 65535),
    36: (0, 65535),
}
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _elem_kind(t: int) -> int:
    return 3 if t in (35, 36) else t


def _is_sequence(value) -> bool:
    if isinstance(value, (str, bytes, dict)):
        return False
    if isinstance(value, np.ndarray):
        return True
    return hasattr(value, "__len__") and hasattr(value, "__getitem__")


def _number(x) -> Union[int, float]:
    """A Python int/float from an element of a put value."""
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, (int, float)):
        return x
    if isinstance(x, np.generic):
        if x.dtype.kind in "biu":
            return int(x)
        if x.dtype.kind == "f":
            return float(x)
        raise TypeError("cannot put a numpy %s value" % x.dtype)
    if isinstance(x, (str, bytes)):
        try:
            return float(x)
        except ValueError:
            raise ValueError("cannot convert %r to a number" % (x,)) from None
    if isinstance(x, Number) and not isinstance(x, complex):
        return float(x)  # type: ignore[arg-type]  # any real Number converts
    raise TypeError("cannot put a value of type %s as a number" % type(x).__name__)


def _check_int(v, t: int) -> int:
    lo, hi = _INT_RANGE[t]
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("cannot put %r to an integer %s" % (v, dbr_type_to_text(t)))
        v = int(v)
    if not lo <= v <= hi:
        raise OverflowError("value %r out of range for %s (%d..%d)"
                            % (v, dbr_type_to_text(t), lo, hi))
    return v


def _string_element(x) -> bytes:
    if isinstance(x, str):
        raw = x.encode("utf-8")
        if len(raw) > 39:
            # cut at a character boundary so the stored text stays UTF-8
            raw = raw[:39].decode("utf-8", "ignore").encode("utf-8")
    elif isinstance(x, (bytes, bytearray, np.bytes_)):
        raw = bytes(x)[:39]
    elif isinstance(x, np.str_):
        return _string_element(str(x))
    elif isinstance(x, (bool, int, float, np.generic)):
        raw = str(x.item() if isinstance(x, np.generic) else x).encode()[:39]
    else:
        raise TypeError("cannot put a value of type %s as a string" % type(x).__name__)
    return raw.ljust(40, b"\0")


def _numeric_array(value, t: int, n: int) -> np.ndarray:
    """``value[:n]`` as a C-contiguous array of the element type of ``t``."""
    kind = _elem_kind(t)
    dtype = _ELEMENT[kind][0]
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise ValueError("cannot put a %d-dimensional array; pass a 1-D array "
                             "(e.g. arr.ravel())" % value.ndim)
        src = value[:n]
    else:
        src = np.asarray(value[:n] if not isinstance(value, range) else list(value[:n]))
        if src.ndim != 1:
            raise ValueError("cannot put a nested sequence; pass a flat sequence of numbers")
    k = src.dtype.kind
    if k in "USO":
        src = np.array([_number(x) for x in src.tolist()])
        k = src.dtype.kind
    if k == "b":
        src = src.astype(np.int64)
        k = "i"
    if k not in "iuf":
        raise TypeError("cannot put an array of dtype %s" % src.dtype)
    if src.dtype == dtype:
        return np.ascontiguousarray(src)
    if kind in (2, 6):
        with np.errstate(over="ignore"):    # overflow is detected and raised below
            out = src.astype(dtype)
        if kind == 2 and k == "f":
            big = np.isfinite(src) & ~np.isfinite(out)
            if big.any():
                raise OverflowError("value %r out of range for DBR_FLOAT" % (src[big][0].item(),))
        return out
    # integer element type
    if k == "f" and not np.isfinite(src).all():
        raise ValueError("cannot put NaN or infinity to an integer %s" % dbr_type_to_text(t))
    lo, hi = _INT_RANGE[t if t in _INT_RANGE else kind]
    if src.size and (src.min() < lo or src.max() > hi):
        bad = src[(src < lo) | (src > hi)][0]
        raise OverflowError("value %r out of range for %s (%d..%d)"
                            % (bad.item(), dbr_type_to_text(t), lo, hi))
    return src.astype(dtype)


def encode(value: Any, dbrtype: int, count: int) -> Tuple[int, int, Union[bytes, np.ndarray]]:
    """Convert a put value to ``(request_type, element_count, data)``.

    ``dbrtype`` is the requested (or native) put type, one of ``PUT_TYPES``;
    ``count`` the element limit after clamping to the native count (>= 1).
    ``data`` is ``bytes`` or a C-contiguous numpy array holding exactly
    ``element_count`` elements of ``request_type``. Raises ``ValueError``,
    ``TypeError`` or ``OverflowError`` for values that cannot be sent.
    """
    t = int(dbrtype)
    n = max(1, int(count))
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]           # a 0-d array is a (numpy) scalar
    if isinstance(value, (str, bytes)):
        raw = value.encode("utf-8") if isinstance(value, str) else value
        if t in (0, 3):
            return 0, 1, _string_element(value)
        if t == 4:
            data = (raw + b"\0")[:n]
            return 4, len(data), data
        value = _number(value)
    if _is_sequence(value):
        if len(value) == 0:
            raise ValueError("cannot put an empty sequence")
        if min(n, len(value)) == 1:
            first = value[0]
            if isinstance(value, np.ndarray) and value.ndim != 1:
                raise ValueError("cannot put a %d-dimensional array" % value.ndim)
            if _is_sequence(first):
                raise ValueError("cannot put a nested sequence")
            return encode(first, t, 1)
        if t == 0:
            items = value[:n] if not isinstance(value, np.ndarray) else value[:n].tolist()
            for x in items:
                if _is_sequence(x):
                    raise ValueError("cannot put a nested sequence")
            return 0, len(items), b"".join(_string_element(x) for x in items)
        arr = _numeric_array(value, t, n)
        return t, len(arr), arr
    if value is None or isinstance(value, dict):
        raise ValueError("cannot put %r" % (value,))
    if t == 0:
        if not isinstance(value, (bool, int, float, np.generic)):
            raise ValueError("cannot put a value of type %s" % type(value).__name__)
        return 0, 1, _string_element(value)
    try:
        v = _number(value)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    kind = _elem_kind(t)
    if kind in (2, 6):
        v = float(v)
        if kind == 2 and math.isfinite(v) and abs(v) > _FLOAT32_MAX:
            raise OverflowError("value %r out of range for DBR_FLOAT" % v)
        return t, 1, struct.pack(_SCALAR_CODE[kind], v)
    return t, 1, struct.pack(_SCALAR_CODE[kind], _check_int(v, t))


# ---------------------------------------------------------------------------
# Request rules shared by both backends (ca-api.md 2.8-2.10). The C extension
# mirrors these in cext/request.c and cext/sync_group.c for speed;
# tests/cext/test_rule_parity.py runs both backends against these functions.


def resolve_request_type(chtype: Any, native_type: int) -> Optional[int]:
    """The DBR type a get/put/subscription requests, or None for ``ECA.BADTYPE``.

    ``chtype`` None means the channel's native field type (``native_type``,
    -1 while the channel was never connected). ``TypeError`` for a
    non-integer ``chtype``.
    """
    if chtype is None:
        ft = int(native_type)
        return ft if 0 <= ft <= LAST_TYPE else None
    t = request_type(chtype)
    return t if 0 <= t <= LAST_BUFFER_TYPE else None


def put_count(count: Any, native: int) -> int:
    """Element limit of a put: ``None``/<=0 or above ``native`` -> ``native``.

    ``native`` is the channel's element count; a put needs a connected
    channel, so it is at least 1 (``max(native, 1)`` is passed).
    """
    if count is None:
        return native
    c = index_count(count)
    if c <= 0 or c > native:
        return native
    return c


def get_count(count: Any, native: int, with_callback: bool, dbrtype: int) -> int:
    """Element count a get requests from libca (the channel is connected).

    ``None``, negative or above ``native`` -> ``native``. 0 means "the
    server's current length" for a get with callback and stays 0 there; a
    synchronous get (its buffer is sized here) reads ``native`` instead.
    ``DBR_CLASS_NAME`` is one string whatever the channel's count.
    """
    if int(dbrtype) == DBR.CLASS_NAME:
        return 1
    if count is None:
        return native
    c = index_count(count)
    if c < 0 or c > native or (c == 0 and not with_callback):
        return native
    return c


def subscription_count(count: Any, native: int) -> int:
    """Element count of a subscription.

    ``None`` or negative -> ``native``; 0 stays 0 (the server's current
    length). Above ``native`` clamps to ``native`` only while the channel is
    connected: before the first connection ``native`` is 0 and the count is
    passed on as given, because libca itself clamps a subscription's count
    against the native count each time the channel (re)connects.
    """
    if count is None:
        return native
    c = index_count(count)
    if c < 0 or (native > 0 and c > native):
        return native
    return c


# ---------------------------------------------------------------------------
# The type table of the faces: which numpy dtype each numeric DBF type reads
# into, which request reads an array of a given dtype, and the request-type
# families (plain, STS, TIME, GR, CTRL: the same element type every 7 codes).

#: numeric DBF/plain DBR type -> numpy dtype of its elements (no STRING)
DBF_NUMPY: Dict[int, np.dtype] = {t: _ELEMENT[t][0] for t in range(1, 7)}

#: numpy dtype name -> (plain DBR type to request, dtype libca's values arrive
#: in): CA has no unsigned types of its own, but ENUM is a uint16 and CHAR a
#: uint8; int8 and uint32 arrive as their CA neighbours and are cast
DTYPE_REQUEST: Dict[str, Tuple[int, np.dtype]] = {
    "int8": (4, np.dtype("uint8")), "uint8": (4, np.dtype("uint8")),
    "int16": (1, np.dtype("int16")), "uint16": (3, np.dtype("uint16")),
    "int32": (5, np.dtype("int32")), "uint32": (5, np.dtype("int32")),
    "float32": (2, np.dtype("float32")), "float64": (6, np.dtype("float64")),
}

#: request-type family -> offset of its first code (DBR_<family>_STRING)
FAMILY_OFFSET = {"plain": 0, "sts": 7, "time": 14, "gr": 21, "ctrl": 28}


def in_family(t: int, family: str) -> Union[DBR, int]:
    """The request type of ``family`` with the element type of ``t`` (any DBF or DBR code).

    >>> in_family(DBR.DOUBLE, "time"), in_family(DBR.TIME_SHORT, "ctrl")
    (<DBR.TIME_DOUBLE: 20>, <DBR.CTRL_SHORT: 29>)
    """
    return to_dbr(int(t) % 7 + FAMILY_OFFSET[family])


_OUT_TYPES = {dt.newbyteorder("="): t for t, dt in DBF_NUMPY.items()}


def out_request(out: Any, chtype: Any, count: Any, native: int) -> Tuple[int, int]:
    """``(request type, count)`` of a get into ``out=`` (a numpy array libca fills).

    ``out`` must be a writable C-contiguous array of a numeric DBR element
    dtype in native byte order (``TypeError``/``ValueError`` otherwise);
    ``chtype`` None takes the type from the dtype, a given one must match it.
    ``count`` None -> ``min(native, out.size)``; above ``out.size`` is a
    ``ValueError``; <= 0 or above ``native`` -> ``min(native, out.size)``.
    cext/request.c (out_request) is the C twin.
    """
    if not isinstance(out, np.ndarray):
        raise TypeError("out must be a numpy array, not %s" % type(out).__name__)
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable C-contiguous numpy array")
    if chtype is None:
        t = _OUT_TYPES.get(out.dtype.newbyteorder("="))
        if t is None or out.dtype.byteorder not in "=|" + ("<" if sys.byteorder == "little" else ">"):
            raise TypeError("no DBR type reads into an array of dtype %s" % out.dtype)
    else:
        t = request_type(chtype)
        if not 1 <= t <= 6 or DBR_DTYPE[t] != out.dtype:
            raise TypeError("out dtype %s does not match %s" % (out.dtype, dbr_text(t)))
    if count is None:
        n = min(native, out.size)
    else:
        n = index_count(count)
        if n > out.size:
            raise ValueError("count %d exceeds the size of out (%d)" % (n, out.size))
        if n <= 0 or n > native:
            n = min(native, out.size)
    return t, n


#: highest value a sync-group id can have (CA_SYNC_GID is a 32-bit unsigned)
MAX_SYNC_GID = 0xFFFFFFFF


def sync_group_id(gid: Any) -> Optional[int]:
    """``gid`` as an int, or None when no group can have it (-> ``ECA.BADSYNCGRP``).

    ``TypeError`` for a non-integer ``gid``. An out-of-range integer (negative,
    or above 32 bits) is an unknown group like any other, not a ValueError.
    """
    g = _index(gid, "gid must be an integer, not %s")
    return g if 0 <= g <= MAX_SYNC_GID else None


def _index(value: Any, message: str) -> int:
    """``operator.index(value)``; ``TypeError(message % type name)`` otherwise."""
    import operator
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(message % type(value).__name__) from None


def index_count(count: Any) -> int:
    """``count`` as an int; ``TypeError`` for non-integers (floats, strings)."""
    return _index(count, "count must be an integer or None, not %s")


def request_type(chtype: Any) -> int:
    """``chtype`` as an int; ``TypeError`` for non-integers."""
    return _index(chtype, "chtype must be a DBR type (int), not %s")


def _quiet_fd2(func: Any) -> None:
    """Run ``func()`` with file descriptor 2 on /dev/null.

    For the at-fork child hooks only, where the calling thread is the
    process's only thread: libCom prints "Warning: Undefined Behavior!
    Detected use of epicsThread from child process after fork()" on the
    first epicsThread use in a child. The hooks abandon every inherited CA
    object without touching it, which is what that warning is about, so the
    one unavoidable use (dropping the thread's context pointer) is silenced.
    """
    try:
        sys.stderr.flush()
    except Exception:
        pass
    saved = devnull = -1
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    except OSError:
        pass
    try:
        func()
    finally:
        if saved >= 0:
            os.dup2(saved, 2)
            os.close(saved)
        if devnull >= 0:
            os.close(devnull)


def _register_fork_child(func: Any) -> None:
    """Have ``func()`` run (quietly, see :func:`_quiet_fd2`) in a child after fork."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=lambda: _quiet_fd2(func))


def encode_name(name: Union[str, bytes]) -> bytes:
    """A channel name as bytes (``str`` is UTF-8 encoded)."""
    if isinstance(name, str):
        return name.encode("utf-8")
    if isinstance(name, bytes):
        return name
    raise TypeError("channel name must be str or bytes, not %s" % type(name).__name__)


#: names every backend re-exports from this module
__all__ = [n for n in list(globals()) if n.isidentifier() and not n.startswith("_") and n not in (
    "annotations", "enum", "math", "os", "sys", "struct", "np", "Number", "Any", "Dict", "Optional",
    "Sequence", "Tuple", "Union", "enum_or_int", "DBF_NUMPY", "DTYPE_REQUEST", "FAMILY_OFFSET",
    "in_family", "decode", "decode_values", "decode_cstring",
    "encode", "put_count", "get_count", "subscription_count", "resolve_request_type",
    "sync_group_id", "MAX_SYNC_GID", "out_request", "stamp", "epics_seconds", "index_count", "request_type", "encode_name", "to_eca",
    "to_dbr", "to_ca_op", "PUT_TYPES", "DBR_DTYPE", "DBR_VALUE_OFFSET", "DBR_SIZE",
    "DBR_VALUE_SIZE", "DBR_META_FORMAT", "DBR_META_FIELDS", "check_dbr_layouts", "augment",
    "augment_check", "pv_callback_check", "pv_form")]
