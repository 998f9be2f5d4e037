"""Type stub: the contract of the low-level API ``CaChannel.ca``.

Both backends (the C extension ``CaChannel._ca`` and the cffi backend
``CaChannel._cffi``) export exactly the names of ``__all__`` below, and every
function takes exactly the parameters written here (names, kinds, defaults);
``tests/test_contract.py`` checks both against this file. The prose contract
is ca-api.md sections 2 and 3 (see also docs/architecture.md).

``_Chid``, ``_Evid`` and ``_Context`` name the opaque handle types; they are
not importable from ``CaChannel.ca`` (each backend has its own classes).
"""
import enum
import types
from typing import Any, Callable, Dict, Final, List, Optional, Tuple, Union

import numpy

class _Chid:
    """A channel handle (from ``create_channel``); hashable, compares equal
    to the ``chid`` handed to callbacks."""
    def __hash__(self) -> int: ...
    #: the native type at the channel's last connection (None before the
    #: first): read by the backend when libca reported the connection, before
    #: the connection callback runs (only channels created with a callback).
    #: Unlike ``field_type(chid)`` no libca call: cheap in the callback.
    @property
    def native_type(self) -> Optional[DBF]: ...
    #: the element count at the channel's last connection (None before the
    #: first), as ``native_type``
    @property
    def native_count(self) -> Optional[int]: ...

class _Evid:
    """A subscription handle (from ``create_subscription``)."""

class _Context:
    """A CA client context (from ``current_context``)."""

# Creation functions return ``(status, handle)`` with the handle ``None``
# unless status is ECA.NORMAL. The handle is typed ``X | Any`` (typeshed's
# "Any trick") so that code which checked the status, or which lets the next
# call raise, needs no ``assert handle is not None``.

#: a low-level callback: receives one ``dict`` (ca-api.md 2.8)
_Callback = Callable[[Dict[str, Any]], Any]

class AlarmCondition(enum.IntEnum):
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

class AlarmSeverity(enum.IntEnum):
    """Alarm severity of a value."""
    No = 0
    Minor = 1
    Major = 2
    Invalid = 3

class CA_K(enum.IntEnum):
    """Severity class of an ECA status code (``code & 7``)."""
    WARNING = 0
    SUCCESS = 1
    ERROR = 2
    INFO = 3
    SEVERE = 4
    FATAL = 6

class CA_OP(enum.IntEnum):
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

class CA_PRIORITY(enum.IntEnum):
    """Channel priorities accepted by ``create_channel``."""
    MIN = 0
    DEFAULT = 0
    OPI = 0
    ARCHIVE = 20
    DB_LINKS = 80
    MAX = 99

class ChannelState(enum.IntEnum):
    """Channel connection state; NEVER_SEARCH means "no channel yet"."""
    NEVER_CONN = 0
    PREV_CONN = 1
    CONN = 2
    CLOSED = 3
    NEVER_SEARCH = 4

class DBE(enum.IntEnum):
    """Subscription event mask bits."""
    VALUE = 1
    ARCHIVE = 2
    LOG = 2
    ALARM = 4
    PROPERTY = 8

class DBF(enum.IntEnum):
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

    def toSTS(self) -> DBR: ...
    def toTIME(self) -> DBR: ...
    def toGR(self) -> DBR: ...
    def toCTRL(self) -> DBR: ...

class DBR(enum.IntEnum):
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

    def isSTRING(self) -> bool: ...
    def isSHORT(self) -> bool: ...
    def isFLOAT(self) -> bool: ...
    def isENUM(self) -> bool: ...
    def isCHAR(self) -> bool: ...
    def isLONG(self) -> bool: ...
    def isDOUBLE(self) -> bool: ...
    def isPlain(self) -> bool: ...
    def isSTS(self) -> bool: ...
    def isTIME(self) -> bool: ...
    def isGR(self) -> bool: ...
    def isCTRL(self) -> bool: ...

class ECA(enum.IntEnum):
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

    def message(self) -> str: ...
    def severity(self) -> CA_K: ...

class EventQueue:
    """Subscription events for one consumer thread: ``create_subscription(queue=q)``.

    libca's thread only queues the event (the C extension copies its bytes,
    without the GIL); the consumer watches :meth:`fileno` (readable while
    events are queued, e.g. ``loop.add_reader``) and calls :meth:`take`.
    POSIX only (a pipe).
    """
    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def take(self, max: Optional[int] = None) -> List[Tuple[Callable[[Any], Any], Any]]:
        """``[(callback, value), ...]`` of the events queued so far, oldest
        first, of subscriptions still alive; each value as the callback
        would have got it (augmented or the event dict). ``max``: at most
        that many (the oldest); the rest stay queued and keep ``fileno()``
        readable (a consumer taking bursts in chunks makes and frees their
        values a chunk at a time)."""
    @property
    def queued(self) -> int: ...
    @property
    def overflow(self) -> int:
        """Events dropped because the queue was full (a consumer that stopped
        taking: 256 MiB in the C extension, a million events in cffi)."""

class DBRValue:
    """The value of a synchronous ``get``/``sg_get``, valid after ``pend_io``/``sg_block``."""
    use_numpy: bool
    @property
    def dbrtype(self) -> DBR: ...
    @property
    def count(self) -> int: ...
    def get(self) -> Any: ...

# module-level constants (each enum member also exists as an int)
BAD_SUB_ALARM: Final = 16
CALC_ALARM: Final = 12
CA_K_ERROR: Final = 2
CA_K_FATAL: Final = 6
CA_K_INFO: Final = 3
CA_K_SEVERE: Final = 4
CA_K_SUCCESS: Final = 1
CA_K_WARNING: Final = 0
CA_M_ERROR: Final = 2
CA_M_LEVEL: Final = 3
CA_M_MSG_NO: Final = 65528
CA_M_SEVERE: Final = 4
CA_M_SEVERITY: Final = 7
CA_M_SUCCESS: Final = 1
CA_OP_ADD_EVENT: Final = 3
CA_OP_CLEAR_EVENT: Final = 4
CA_OP_CONN_DOWN: Final = 7
CA_OP_CONN_UP: Final = 6
CA_OP_CREATE_CHANNEL: Final = 2
CA_OP_GET: Final = 0
CA_OP_OTHER: Final = 5
CA_OP_PUT: Final = 1
CA_OP_SEARCH: Final = 2
CA_PRIORITY_ARCHIVE: Final = 20
CA_PRIORITY_DB_LINKS: Final = 80
CA_PRIORITY_DEFAULT: Final = 0
CA_PRIORITY_MAX: Final = 99
CA_PRIORITY_MIN: Final = 0
CA_PRIORITY_OPI: Final = 0
CA_V_MSG_NO: Final = 3
CA_V_SEVERITY: Final = 0
CA_V_SUCCESS: Final = 0
COMM_ALARM: Final = 9
COS_ALARM: Final = 8
DBE_ALARM: Final = 4
DBE_ARCHIVE: Final = 2
DBE_LOG: Final = 2
DBE_PROPERTY: Final = 8
DBE_VALUE: Final = 1
DBF_CHAR: Final = 4
DBF_DOUBLE: Final = 6
DBF_ENUM: Final = 3
DBF_FLOAT: Final = 2
DBF_INT: Final = 1
DBF_LONG: Final = 5
DBF_NO_ACCESS: Final = 7
DBF_SHORT: Final = 1
DBF_STRING: Final = 0
DBR_CHAR: Final = 4
DBR_CLASS_NAME: Final = 38
DBR_CTRL_CHAR: Final = 32
DBR_CTRL_DOUBLE: Final = 34
DBR_CTRL_ENUM: Final = 31
DBR_CTRL_FLOAT: Final = 30
DBR_CTRL_INT: Final = 29
DBR_CTRL_LONG: Final = 33
DBR_CTRL_SHORT: Final = 29
DBR_CTRL_STRING: Final = 28
DBR_DOUBLE: Final = 6
DBR_ENUM: Final = 3
DBR_FLOAT: Final = 2
DBR_GR_CHAR: Final = 25
DBR_GR_DOUBLE: Final = 27
DBR_GR_ENUM: Final = 24
DBR_GR_FLOAT: Final = 23
DBR_GR_INT: Final = 22
DBR_GR_LONG: Final = 26
DBR_GR_SHORT: Final = 22
DBR_GR_STRING: Final = 21
DBR_INT: Final = 1
DBR_LONG: Final = 5
DBR_PUT_ACKS: Final = 36
DBR_PUT_ACKT: Final = 35
DBR_SHORT: Final = 1
DBR_STRING: Final = 0
DBR_STSACK_STRING: Final = 37
DBR_STS_CHAR: Final = 11
DBR_STS_DOUBLE: Final = 13
DBR_STS_ENUM: Final = 10
DBR_STS_FLOAT: Final = 9
DBR_STS_INT: Final = 8
DBR_STS_LONG: Final = 12
DBR_STS_SHORT: Final = 8
DBR_STS_STRING: Final = 7
DBR_TIME_CHAR: Final = 18
DBR_TIME_DOUBLE: Final = 20
DBR_TIME_ENUM: Final = 17
DBR_TIME_FLOAT: Final = 16
DBR_TIME_INT: Final = 15
DBR_TIME_LONG: Final = 19
DBR_TIME_SHORT: Final = 15
DBR_TIME_STRING: Final = 14
DISABLE_ALARM: Final = 18
ECA_16KARRAYCLIENT: Final = 464
ECA_ADDFAIL: Final = 168
ECA_ALLOCMEM: Final = 48
ECA_ANACHRONISM: Final = 386
ECA_ARRAY16KCLIENT: Final = 464
ECA_BADCHID: Final = 410
ECA_BADCOUNT: Final = 176
ECA_BADFUNCPTR: Final = 418
ECA_BADMASK: Final = 330
ECA_BADMONID: Final = 242
ECA_BADPRIORITY: Final = 450
ECA_BADSTR: Final = 186
ECA_BADSYNCGRP: Final = 354
ECA_BADTYPE: Final = 114
ECA_BUILDGET: Final = 216
ECA_CHANDESTROY: Final = 440
ECA_CHIDNOTFND: Final = 123
ECA_CHIDNOTFOUND: Final = 123
ECA_CHIDRETRY: Final = 131
ECA_CONN: Final = 40
ECA_CONNSEQTMO: Final = 472
ECA_DBLCHNL: Final = 200
ECA_DBLCLFAIL: Final = 144
ECA_DEFUNCT: Final = 278
ECA_DISCONN: Final = 192
ECA_DISCONNCHID: Final = 106
ECA_DLCKREST: Final = 304
ECA_EMPTYSTR: Final = 280
ECA_EVDISALLOW: Final = 210
ECA_GETFAIL: Final = 152
ECA_INTERNAL: Final = 142
ECA_IODONE: Final = 339
ECA_IOINPROGRESS: Final = 347
ECA_ISATTACHED: Final = 424
ECA_MAXIOC: Final = 10
ECA_NEEDSFP: Final = 224
ECA_NEWADDR: Final = 248
ECA_NEWCONN: Final = 259
ECA_NOCACTX: Final = 264
ECA_NOCAST: Final = 320
ECA_NOCHANMSG: Final = 296
ECA_NOCONVERT: Final = 400
ECA_NORDACCESS: Final = 368
ECA_NOREPEATER: Final = 288
ECA_NORMAL: Final = 1
ECA_NOSEARCHADDR: Final = 392
ECA_NOSUPPORT: Final = 88
ECA_NOTTHREADED: Final = 458
ECA_NOWTACCESS: Final = 376
ECA_OVEVFAIL: Final = 232
ECA_PUTCBINPROG: Final = 362
ECA_PUTFAIL: Final = 160
ECA_SERVBEHIND: Final = 312
ECA_SOCK: Final = 34
ECA_STRTOBIG: Final = 96
ECA_TIMEOUT: Final = 80
ECA_TOLARGE: Final = 72
ECA_UKNCHAN: Final = 56
ECA_UKNFIELD: Final = 64
ECA_UKNHOST: Final = 18
ECA_UKNSERV: Final = 26
ECA_UNAVAILINSERV: Final = 432
ECA_UNRESPTMO: Final = 480
HAS_NUMPY: bool
HIGH_ALARM: Final = 4
HIHI_ALARM: Final = 3
HW_LIMIT_ALARM: Final = 11
INVALID_ALARM: Final = 3
LAST_BUFFER_TYPE: Final = 38
LAST_TYPE: Final = 6
LINK_ALARM: Final = 14
LOLO_ALARM: Final = 5
LOW_ALARM: Final = 6
MAJOR_ALARM: Final = 2
MAX_ENUM_STATES: Final = 16
MAX_ENUM_STRING_SIZE: Final = 26
MAX_STRING_SIZE: Final = 40
MAX_UNITS_SIZE: Final = 8
MINOR_ALARM: Final = 1
NO_ALARM: Final = 0
POSIX_TIME_AT_EPICS_EPOCH: Final = 631152000
READ_ACCESS_ALARM: Final = 20
READ_ALARM: Final = 1
SCAN_ALARM: Final = 13
SIMM_ALARM: Final = 19
SOFT_ALARM: Final = 15
STATE_ALARM: Final = 7
TIMEOUT_ALARM: Final = 10
TYPENOTCONN: Final = -1
UDF_ALARM: Final = 17
WRITE_ACCESS_ALARM: Final = 21
WRITE_ALARM: Final = 2
backend: str
#: the backend module itself (``CaChannel._ca`` or ``CaChannel._cffi``)
_impl: types.ModuleType

class _Ring:
    """Private: the ring of preallocated slots that ``_ring_subscribe`` fills
    (``CaChannel.monitor.ArrayMonitor`` through ``core.Channel.ring_subscribe``).
    C: ``cext/ring.c``, filled on libca's thread without the GIL; cffi:
    ``CaChannel._ring.Ring``."""
    data: numpy.ndarray
    counts: numpy.ndarray
    seqs: numpy.ndarray
    stamps: numpy.ndarray
    alarm: numpy.ndarray
    tagvals: numpy.ndarray
    capacity: int
    policy: str
    closed: bool
    def __init__(self, buffers: int, capacity: int, dtype: Any, policy: str, ntag: int = 0) -> None: ...
    def set_tag(self, values: Any) -> None: ...
    def take(self, timeout: Optional[float] = None) -> Optional[int]: ...
    def give_back(self, slot: int) -> None: ...
    def stats(self) -> Tuple[int, int, int, int]: ...
    def close(self) -> None: ...

def _ring_subscribe(chid: _Chid, ring: _Ring, chtype: int, count: Optional[int] = None,
                    mask: Optional[int] = None) -> Tuple[ECA, Union[_Evid, Any]]: ...
cs_closed: Final = 3
cs_conn: Final = 2
cs_never_conn: Final = 0
cs_never_search: Final = 4
cs_prev_conn: Final = 1
epicsAlarmConditionStrings: Tuple[str, ...]
epicsAlarmSeverityStrings: Tuple[str, ...]

def CA_EXTRACT_MSG_NO(code: int) -> int: ...
def CA_EXTRACT_MSG_SEVERITY(code: int) -> int: ...
def add_exception_event(callback: Optional[_Callback] = None) -> ECA: ...
def alarmSeverityString(s: int) -> str: ...
def alarmStatusString(s: int) -> str: ...
def attach_context(context: _Context) -> ECA: ...
def change_connection_event(chid: _Chid, callback: Optional[_Callback] = None) -> ECA: ...
def clear_channel(chid: _Chid) -> ECA: ...
def clear_subscription(evid: _Evid) -> ECA: ...
def create_channel(
    name: Union[str, bytes],
    callback: Optional[_Callback] = None,
    priority: int = 0,
) -> Tuple[ECA, Union[_Chid, Any]]: ...
def create_context(preemptive_callback: bool = True) -> ECA: ...
def create_subscription(
    chid: _Chid,
    callback: _Callback,
    chtype: Optional[int] = None,
    count: Optional[int] = None,
    mask: Optional[int] = None,
    use_numpy: bool = False,
    augment: Optional[Tuple[type, Dict[str, Any]]] = None,
    queue: Optional[EventQueue] = None,
    pv_callback: Optional[Tuple[Callable[[Dict[str, Any], tuple], Any], tuple]] = None,
) -> Tuple[ECA, Union[_Evid, Any]]:
    """Subscribe; ``callback`` gets the event dict of every update.

    ``augment=(cls, attrs)``: an event of status ECA_NORMAL with one element
    of a plain or TIME type (text: UTF-8) is delivered instead as the value
    ``cls(value)`` with ``attrs`` in its ``__dict__`` and, for TIME types,
    ``status``, ``severity``, ``raw_stamp`` ``(seconds, nanoseconds)`` and
    ``timestamp`` (``round(seconds + nanoseconds * 1e-9, 6)``), POSIX
    seconds: the augmented values of ``epicscorelibs.ca.dbr``, made without
    the event dict. Other events still get the dict. ``cls`` must have a
    ``__dict__`` (TypeError otherwise).

    ``queue``: the events are not called back on libca's thread but queued
    in that :class:`EventQueue` for its consumer, who calls ``callback``.

    ``pv_callback=(fn, user_args)``: CaChannel 3.x's monitor form. An event
    of a plain type (``DBR_STRING`` .. ``DBR_DOUBLE``), or one with an error
    status or no data, calls ``fn(args, user_args)`` instead, ``args`` the
    event dict with the value under ``pv_value`` (3.x's ``epicsArgs``); other
    events still go to ``callback``. An exception ``fn`` raises is printed
    (``CaChannel: exception in monitor callback (ignored):``). Not with
    ``augment`` or ``queue`` (ValueError).
    """
def current_context() -> Optional[_Context]: ...
def dbf_text(t: int) -> str: ...
def dbf_text_to_type(text: str) -> Union[DBF, int]: ...
def dbf_type_is_valid(t: int) -> bool: ...
def dbf_type_to_DBR(t: int) -> DBR: ...
def dbf_type_to_DBR_CTRL(t: int) -> DBR: ...
def dbf_type_to_DBR_GR(t: int) -> DBR: ...
def dbf_type_to_DBR_STS(t: int) -> DBR: ...
def dbf_type_to_DBR_TIME(t: int) -> DBR: ...
def dbf_type_to_text(t: int) -> str: ...
def dbr_size_n(dbrtype: int, count: int) -> int: ...
def dbr_text(t: int) -> str: ...
def dbr_text_to_type(text: str) -> Union[DBR, int]: ...
def dbr_type_is_CHAR(t: int) -> bool: ...
def dbr_type_is_CTRL(t: int) -> bool: ...
def dbr_type_is_DOUBLE(t: int) -> bool: ...
def dbr_type_is_ENUM(t: int) -> bool: ...
def dbr_type_is_FLOAT(t: int) -> bool: ...
def dbr_type_is_GR(t: int) -> bool: ...
def dbr_type_is_LONG(t: int) -> bool: ...
def dbr_type_is_SHORT(t: int) -> bool: ...
def dbr_type_is_STRING(t: int) -> bool: ...
def dbr_type_is_STS(t: int) -> bool: ...
def dbr_type_is_TIME(t: int) -> bool: ...
def dbr_type_is_plain(t: int) -> bool: ...
def dbr_type_is_valid(t: int) -> bool: ...
def dbr_type_to_text(t: int) -> str: ...
def destroy_context() -> None: ...
def detach_context() -> None: ...
def element_count(chid: _Chid) -> int: ...
def field_type(chid: _Chid) -> DBF: ...
def flush_io() -> ECA: ...
def get(
    chid: _Chid,
    chtype: Optional[int] = None,
    count: Optional[int] = None,
    callback: Optional[_Callback] = None,
    use_numpy: bool = False,
    out: Optional[numpy.ndarray] = None,
    augment: Optional[Tuple[type, Dict[str, Any]]] = None,
    queue: Optional[EventQueue] = None,
) -> Tuple[ECA, Union[DBRValue, Any]]:
    """Read; with ``callback`` the reply's event dict goes to it (status,
    value), else the value is in the returned ``DBRValue`` after
    ``pend_io``.

    With a callback only: ``augment=(cls, attrs)`` delivers a scalar reply
    as the augmented value (the rule of :func:`create_subscription`);
    ``queue``: the reply is queued in that :class:`EventQueue` for its
    consumer instead of called back on libca's thread (ValueError without
    a callback).
    """
def host_name(chid: _Chid) -> str: ...
def message(status: int) -> str: ...
def name(chid: _Chid) -> str: ...
def pend(timeout: float, early: bool) -> ECA: ...
def pend_event(timeout: float) -> ECA: ...
def pend_io(timeout: float) -> ECA: ...
def poll() -> ECA: ...
def put(
    chid: _Chid,
    value: Any,
    chtype: Optional[int] = None,
    count: Optional[int] = None,
    callback: Optional[_Callback] = None,
    queue: Optional[EventQueue] = None,
) -> ECA:
    """Write; with ``callback`` the completion's status dict goes to it;
    ``queue``: queued in that :class:`EventQueue` instead (with a callback only)."""
def read_access(chid: _Chid) -> bool: ...
def replace_access_rights_event(chid: _Chid, callback: Optional[_Callback] = None) -> ECA: ...
def replace_printf_handler(callback: Optional[Callable[[str], Any]] = None) -> ECA: ...
def sg_block(gid: int, timeout: float) -> ECA: ...
def sg_create() -> Tuple[ECA, Union[int, Any]]: ...
def sg_delete(gid: int) -> ECA: ...
def sg_get(
    gid: int,
    chid: _Chid,
    chtype: Optional[int] = None,
    count: Optional[int] = None,
    use_numpy: bool = False,
) -> Tuple[ECA, Union[DBRValue, Any]]: ...
def sg_put(
    gid: int,
    chid: _Chid,
    value: Any,
    chtype: Optional[int] = None,
    count: Optional[int] = None,
) -> ECA: ...
def sg_reset(gid: int) -> ECA: ...
def sg_test(gid: int) -> ECA: ...
def show_context(context: Optional[_Context] = None, level: int = 0) -> None: ...
def state(chid: Optional[_Chid]) -> ChannelState: ...
def test_io() -> ECA: ...
def version() -> str: ...
def write_access(chid: _Chid) -> bool: ...

__all__ = [
    "AlarmCondition",
    "AlarmSeverity",
    "BAD_SUB_ALARM",
    "CALC_ALARM",
    "CA_EXTRACT_MSG_NO",
    "CA_EXTRACT_MSG_SEVERITY",
    "CA_K",
    "CA_K_ERROR",
    "CA_K_FATAL",
    "CA_K_INFO",
    "CA_K_SEVERE",
    "CA_K_SUCCESS",
    "CA_K_WARNING",
    "CA_M_ERROR",
    "CA_M_LEVEL",
    "CA_M_MSG_NO",
    "CA_M_SEVERE",
    "CA_M_SEVERITY",
    "CA_M_SUCCESS",
    "CA_OP",
    "CA_OP_ADD_EVENT",
    "CA_OP_CLEAR_EVENT",
    "CA_OP_CONN_DOWN",
    "CA_OP_CONN_UP",
    "CA_OP_CREATE_CHANNEL",
    "CA_OP_GET",
    "CA_OP_OTHER",
    "CA_OP_PUT",
    "CA_OP_SEARCH",
    "CA_PRIORITY",
    "CA_PRIORITY_ARCHIVE",
    "CA_PRIORITY_DB_LINKS",
    "CA_PRIORITY_DEFAULT",
    "CA_PRIORITY_MAX",
    "CA_PRIORITY_MIN",
    "CA_PRIORITY_OPI",
    "CA_V_MSG_NO",
    "CA_V_SEVERITY",
    "CA_V_SUCCESS",
    "COMM_ALARM",
    "COS_ALARM",
    "ChannelState",
    "DBE",
    "DBE_ALARM",
    "DBE_ARCHIVE",
    "DBE_LOG",
    "DBE_PROPERTY",
    "DBE_VALUE",
    "DBF",
    "DBF_CHAR",
    "DBF_DOUBLE",
    "DBF_ENUM",
    "DBF_FLOAT",
    "DBF_INT",
    "DBF_LONG",
    "DBF_NO_ACCESS",
    "DBF_SHORT",
    "DBF_STRING",
    "DBR",
    "DBRValue",
    "EventQueue",
    "DBR_CHAR",
    "DBR_CLASS_NAME",
    "DBR_CTRL_CHAR",
    "DBR_CTRL_DOUBLE",
    "DBR_CTRL_ENUM",
    "DBR_CTRL_FLOAT",
    "DBR_CTRL_INT",
    "DBR_CTRL_LONG",
    "DBR_CTRL_SHORT",
    "DBR_CTRL_STRING",
    "DBR_DOUBLE",
    "DBR_ENUM",
    "DBR_FLOAT",
    "DBR_GR_CHAR",
    "DBR_GR_DOUBLE",
    "DBR_GR_ENUM",
    "DBR_GR_FLOAT",
    "DBR_GR_INT",
    "DBR_GR_LONG",
    "DBR_GR_SHORT",
    "DBR_GR_STRING",
    "DBR_INT",
    "DBR_LONG",
    "DBR_PUT_ACKS",
    "DBR_PUT_ACKT",
    "DBR_SHORT",
    "DBR_STRING",
    "DBR_STSACK_STRING",
    "DBR_STS_CHAR",
    "DBR_STS_DOUBLE",
    "DBR_STS_ENUM",
    "DBR_STS_FLOAT",
    "DBR_STS_INT",
    "DBR_STS_LONG",
    "DBR_STS_SHORT",
    "DBR_STS_STRING",
    "DBR_TIME_CHAR",
    "DBR_TIME_DOUBLE",
    "DBR_TIME_ENUM",
    "DBR_TIME_FLOAT",
    "DBR_TIME_INT",
    "DBR_TIME_LONG",
    "DBR_TIME_SHORT",
    "DBR_TIME_STRING",
    "DISABLE_ALARM",
    "ECA",
    "ECA_16KARRAYCLIENT",
    "ECA_ADDFAIL",
    "ECA_ALLOCMEM",
    "ECA_ANACHRONISM",
    "ECA_ARRAY16KCLIENT",
    "ECA_BADCHID",
    "ECA_BADCOUNT",
    "ECA_BADFUNCPTR",
    "ECA_BADMASK",
    "ECA_BADMONID",
    "ECA_BADPRIORITY",
    "ECA_BADSTR",
    "ECA_BADSYNCGRP",
    "ECA_BADTYPE",
    "ECA_BUILDGET",
    "ECA_CHANDESTROY",
    "ECA_CHIDNOTFND",
    "ECA_CHIDNOTFOUND",
    "ECA_CHIDRETRY",
    "ECA_CONN",
    "ECA_CONNSEQTMO",
    "ECA_DBLCHNL",
    "ECA_DBLCLFAIL",
    "ECA_DEFUNCT",
    "ECA_DISCONN",
    "ECA_DISCONNCHID",
    "ECA_DLCKREST",
    "ECA_EMPTYSTR",
    "ECA_EVDISALLOW",
    "ECA_GETFAIL",
    "ECA_INTERNAL",
    "ECA_IODONE",
    "ECA_IOINPROGRESS",
    "ECA_ISATTACHED",
    "ECA_MAXIOC",
    "ECA_NEEDSFP",
    "ECA_NEWADDR",
    "ECA_NEWCONN",
    "ECA_NOCACTX",
    "ECA_NOCAST",
    "ECA_NOCHANMSG",
    "ECA_NOCONVERT",
    "ECA_NORDACCESS",
    "ECA_NOREPEATER",
    "ECA_NORMAL",
    "ECA_NOSEARCHADDR",
    "ECA_NOSUPPORT",
    "ECA_NOTTHREADED",
    "ECA_NOWTACCESS",
    "ECA_OVEVFAIL",
    "ECA_PUTCBINPROG",
    "ECA_PUTFAIL",
    "ECA_SERVBEHIND",
    "ECA_SOCK",
    "ECA_STRTOBIG",
    "ECA_TIMEOUT",
    "ECA_TOLARGE",
    "ECA_UKNCHAN",
    "ECA_UKNFIELD",
    "ECA_UKNHOST",
    "ECA_UKNSERV",
    "ECA_UNAVAILINSERV",
    "ECA_UNRESPTMO",
    "HAS_NUMPY",
    "HIGH_ALARM",
    "HIHI_ALARM",
    "HW_LIMIT_ALARM",
    "INVALID_ALARM",
    "LAST_BUFFER_TYPE",
    "LAST_TYPE",
    "LINK_ALARM",
    "LOLO_ALARM",
    "LOW_ALARM",
    "MAJOR_ALARM",
    "MAX_ENUM_STATES",
    "MAX_ENUM_STRING_SIZE",
    "MAX_STRING_SIZE",
    "MAX_UNITS_SIZE",
    "MINOR_ALARM",
    "NO_ALARM",
    "POSIX_TIME_AT_EPICS_EPOCH",
    "READ_ACCESS_ALARM",
    "READ_ALARM",
    "SCAN_ALARM",
    "SIMM_ALARM",
    "SOFT_ALARM",
    "STATE_ALARM",
    "TIMEOUT_ALARM",
    "TYPENOTCONN",
    "UDF_ALARM",
    "WRITE_ACCESS_ALARM",
    "WRITE_ALARM",
    "add_exception_event",
    "alarmSeverityString",
    "alarmStatusString",
    "attach_context",
    "backend",
    "change_connection_event",
    "clear_channel",
    "clear_subscription",
    "create_channel",
    "create_context",
    "create_subscription",
    "cs_closed",
    "cs_conn",
    "cs_never_conn",
    "cs_never_search",
    "cs_prev_conn",
    "current_context",
    "dbf_text",
    "dbf_text_to_type",
    "dbf_type_is_valid",
    "dbf_type_to_DBR",
    "dbf_type_to_DBR_CTRL",
    "dbf_type_to_DBR_GR",
    "dbf_type_to_DBR_STS",
    "dbf_type_to_DBR_TIME",
    "dbf_type_to_text",
    "dbr_size_n",
    "dbr_text",
    "dbr_text_to_type",
    "dbr_type_is_CHAR",
    "dbr_type_is_CTRL",
    "dbr_type_is_DOUBLE",
    "dbr_type_is_ENUM",
    "dbr_type_is_FLOAT",
    "dbr_type_is_GR",
    "dbr_type_is_LONG",
    "dbr_type_is_SHORT",
    "dbr_type_is_STRING",
    "dbr_type_is_STS",
    "dbr_type_is_TIME",
    "dbr_type_is_plain",
    "dbr_type_is_valid",
    "dbr_type_to_text",
    "destroy_context",
    "detach_context",
    "element_count",
    "epicsAlarmConditionStrings",
    "epicsAlarmSeverityStrings",
    "field_type",
    "flush_io",
    "get",
    "host_name",
    "message",
    "name",
    "pend",
    "pend_event",
    "pend_io",
    "poll",
    "put",
    "read_access",
    "replace_access_rights_event",
    "replace_printf_handler",
    "sg_block",
    "sg_create",
    "sg_delete",
    "sg_get",
    "sg_put",
    "sg_reset",
    "sg_test",
    "show_context",
    "state",
    "test_io",
    "version",
    "write_access",
]
