"""``PV`` objects with pyepics' names, on CaChannel's low-level ``ca`` API.

A :class:`PV` connects itself, keeps the latest value from an internal
monitor (``auto_monitor``), carries any number of user callbacks and exposes
value and metadata as attributes -- the names, keywords and defaults are
pyepics' (``epics.PV``), so code moving from pyepics mostly changes its
imports::

    from CaChannel import PV, get_pv        # instead of: from epics import PV, get_pv

The examples run against the test IOC (``tests/test.db``):

>>> pv = PV('catest')
>>> pv.wait_for_connection()
True
>>> pv.put(2.5, wait=True)
1
>>> pv.get()
2.5
>>> pv.char_value, pv.units, pv.precision
('2.5000', 'mm', 4)
>>> pv.type, pv.count, pv.access
('time_double', 1, 'read/write')

Threads: callbacks (value, connection, access rights, put completion) run on
libca's own threads, the moment libca delivers the event (value callbacks
run on the shared delivery threads of :mod:`CaChannel.monitor` instead
with ``PV(..., delivery='latest')`` or ``'all'``, see :class:`PV`). Keep them short;
do not block in them -- a blocking :meth:`PV.get` (``use_monitor=False``),
:meth:`PV.put` with ``wait=True`` or :meth:`PV.wait_for_connection` inside a
callback can wait for an answer that the very thread it blocks would have
delivered. Hand work to another thread (a ``queue.Queue``) instead; ophyd's
control layer (:mod:`CaChannel.ophyd`) does so with its dispatcher. An
exception raised by a callback is printed with its traceback and ignored;
the other callbacks still run.
"""
from __future__ import annotations

import math
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from . import ca, core
from ._convert import char_bytes as _char_bytes
from .core.errors import CaChannelException
from .core.errors import report_callback_error as _report_callback_error

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

__all__ = ["PV", "get_pv", "clear_pvcache", "AUTOMONITOR_MAXLENGTH", "DEFAULT_CONNECTION_TIMEOUT"]

#: arrays with this many elements or more are not monitored unless
#: ``auto_monitor`` is given (pyepics' threshold)
AUTOMONITOR_MAXLENGTH = 65536
#: seconds :meth:`PV.wait_for_connection` waits by default (pyepics' value)
DEFAULT_CONNECTION_TIMEOUT = 2.0
#: subscription mask of ``auto_monitor=True``
DEFAULT_SUBSCRIPTION_MASK = ca.DBE_VALUE | ca.DBE_ALARM

_USE_NUMPY = bool(ca.HAS_NUMPY) and _np is not None

_ACCESS_TEXT = {(False, False): "no access", (True, False): "read-only",
                (False, True): "write-only", (True, True): "read/write"}

_FIELDS = ("pvname", "value", "char_value", "status", "ftype", "chid", "host", "count", "nelm",
           "type", "typefull", "access", "write_access", "read_access", "severity", "timestamp",
           "posixseconds", "nanoseconds", "precision", "units", "enum_strs",
           "upper_disp_limit", "lower_disp_limit", "upper_alarm_limit", "lower_alarm_limit",
           "lower_warning_limit", "upper_warning_limit", "upper_ctrl_limit", "lower_ctrl_limit")

_CTRL_KEYS = ("status", "severity", "precision", "units", "enum_strs",
              "upper_disp_limit", "lower_disp_limit", "upper_alarm_limit", "lower_alarm_limit",
              "upper_warning_limit", "lower_warning_limit", "upper_ctrl_limit", "lower_ctrl_limit")
_TIME_KEYS = ("status", "severity", "timestamp", "posixseconds", "nanoseconds")


_FLOAT_TYPES = (ca.DBF_FLOAT, ca.DBF_DOUBLE)
_NORMAL = ca.ECA_NORMAL
_FIXED, _GENERAL = "%%.%df", "%%.%dg"  # char_value of a float: by the PV's precision

_tls = threading.local()
# one condition for every PV's "connected" / "first value" waits: cheaper than
# two Events per PV when thousands are created, and callbacks only notify
_cond = threading.Condition()


def _notify(pv: "PV") -> None:
    """Wake the waiters if one waits for ``pv`` (call after changing its state)."""
    if pv._waited:
        with _cond:
            _cond.notify_all()


def _wait_until(pv: "PV", predicate: Callable[[], bool], timeout: float) -> bool:
    """Wait (at most ``timeout`` s, ``inf``: no limit) until ``predicate()``,
    re-checked when ``pv``'s state changes.

    Only a PV somebody waits for wakes the waiters: ``pv._waited`` is counted
    up before the predicate is read, and libca's thread changes the state
    before it reads the count, so no change is missed (a thread waiting for
    one PV is not woken by each of 100,000 others connecting)."""
    deadline = time.monotonic() + timeout
    with _cond:
        pv._waited += 1
        try:
            while not predicate():
                left = core.checks.remaining(deadline, time.monotonic())
                if left <= 0:
                    return False
                _cond.wait(min(left, core.checks.CHUNK))
        finally:
            pv._waited -= 1
    return True


def _wait_event(event: threading.Event, timeout: Optional[float]) -> bool:
    """``event.wait`` for ``timeout`` s, where ``None`` and ``inf`` wait without
    limit (in chunks, so that Ctrl-C is seen)."""
    return core.checks.wait_event(event, math.inf if timeout is None else timeout)


def _attach() -> None:
    """The process's context, attached once per thread (``CaChannel.core``)."""
    core.context.attach()


def _monitor_policies() -> tuple:
    from .monitor import POLICIES
    return POLICIES


def _in_ca_thread() -> bool:
    """True on a thread Python did not start (libca's callback threads)."""
    return isinstance(threading.current_thread(), getattr(threading, "_DummyThread", ()))


def _stamp_into(out: Dict[str, Any], stamp: Dict[str, Any]) -> None:
    """pyepics' time keys of a low-level ``stamp`` dict, written into ``out``."""
    out["posixseconds"] = int(stamp["seconds"])
    out["nanoseconds"] = int(stamp["nanoseconds"])
    out["timestamp"] = float(stamp["timestamp"])


def _float_text(value: Any, precision: Any) -> str:
    """pyepics' char_value of a float by the PV's precision (``str`` without one)."""
    if precision is None:  # not read (yet): every update of such a PV, no exception raised
        return str(value)
    try:
        fmt = _FIXED if abs(value) < 1e5 or value == 0 else _GENERAL
        return (fmt % int(precision)) % value
    except (TypeError, ValueError, ArithmeticError):
        return str(value)


def _is_time(value: Any) -> bool:
    """Is a low-level converted value a TIME value (every monitor update of a PV)?"""
    return (type(value) is dict and len(value) == 4 and "stamp" in value
            and "severity" in value and "status" in value)


def _time_into(out: Dict[str, Any], value: Dict[str, Any]) -> Any:
    """The pyepics keys of a TIME value written into ``out`` (no loop over the
    keys, no intermediate dict); returns the plain value."""
    _stamp_into(out, value["stamp"])
    out["value"] = plain = value["value"]
    out["status"] = int(value["status"])
    out["severity"] = int(value["severity"])
    return plain


def _flatten(value: Any) -> Dict[str, Any]:
    """A low-level converted value (plain or structured dict) -> pyepics keys."""
    if not isinstance(value, dict):
        return {"value": value}
    if _is_time(value):
        out: Dict[str, Any] = {}
        _time_into(out, value)
        return out
    out = {}
    for key, item in value.items():
        if key == "stamp":
            _stamp_into(out, item)
        elif key == "strs":
            out["enum_strs"] = tuple(item)
        elif key == "no_str":
            continue
        elif key in ("status", "severity"):
            out[key] = int(item)
        else:
            out[key] = item
    return out


def _chars(value: Any) -> str:
    """Characters of a char array up to the first 0 (pyepics' char_value)."""
    return _char_bytes(value).decode("utf-8", "replace").rstrip()


class PV:
    """One process variable: connection, latest value, metadata, callbacks.

    :param pvname: the PV name.
    :param callback: a value callback, added with :meth:`add_callback`
        (or a list of them).
    :param form: ``'time'`` (default: value with alarm and timestamp),
        ``'ctrl'`` (value with units, limits, precision, enum strings) or
        ``'native'`` (value only).
    :param auto_monitor: keep the value current with a subscription.
        ``None`` (default): yes unless the PV is an array of
        :data:`AUTOMONITOR_MAXLENGTH` (65,536) elements or more; ``True``:
        yes, mask ``DBE_VALUE|DBE_ALARM``; an int: yes, with that DBE mask
        (``ca.DBE_VALUE|ca.DBE_ALARM|ca.DBE_PROPERTY``); ``False``: no, every
        :meth:`get` asks the server.
    :param count: read at most this many elements (default: all).
    :param connection_callback: ``fn(pvname=, conn=, pv=)`` on every
        connection and disconnection (or a list of them).
    :param connection_timeout: default timeout (s) of
        :meth:`wait_for_connection` (default
        :data:`DEFAULT_CONNECTION_TIMEOUT`, 2 s).
    :param access_callback: ``fn(read_access, write_access, pv=)`` on every
        change of the access rights (or a list of them).
    :param delivery: where value callbacks run. ``None`` (default, as
        pyepics): on libca's thread, the moment the update arrives.
        ``'latest'`` or ``'all'``: on the shared delivery threads of
        :func:`CaChannel.monitor.subscribe` (in order, one update at a time
        for this PV; other PVs' callbacks may use the same threads), so a slow
        callback never stalls libca; ``'latest'`` hands a slow callback only the newest update,
        ``'all'`` queues up to 16 (oldest dropped). ``monitor_stats`` then
        counts received/delivered/dropped updates.

    Nothing blocks: the channel is searched in the background; attributes are
    ``None`` until the PV connected and its first value arrived. See the
    module docstring about the threads callbacks run on.

    >>> pv = PV('cabo')
    >>> pv.put('Busy', wait=True)
    1
    >>> pv.get(), pv.get(as_string=True), pv.enum_strs
    (1, 'Busy', ('Done', 'Busy'))
    >>> pv.severity, pv.status
    (1, 7)
    """

    _fields = _FIELDS

    def __init__(self, pvname: str, callback: Union[Callable, List[Callable], None] = None,
                 form: str = "time", verbose: bool = False, auto_monitor: Union[bool, int, None] = None,
                 count: Optional[int] = None,
                 connection_callback: Union[Callable, List[Callable], None] = None,
                 connection_timeout: Optional[float] = None,
                 access_callback: Union[Callable, List[Callable], None] = None,
                 delivery: Optional[str] = None) -> None:
        pvname = core.checks.pv_name(pvname)
        form = str(form).lower()
        if form not in ("time", "ctrl", "native"):
            raise ValueError("form must be 'time', 'ctrl' or 'native', not %r" % (form,))
        self.pvname: str = pvname.strip()
        self.form: str = form
        self.verbose = verbose
        self.connection_timeout: float = core.checks.timeout(
            connection_timeout, DEFAULT_CONNECTION_TIMEOUT, what="connection_timeout")
        count = core.checks.count(count)
        if delivery is not None and delivery not in _monitor_policies():
            raise ValueError("delivery must be None, 'latest' or 'all', not %r" % (delivery,))
        self._delivery = delivery
        self._auto_monitor = _auto_monitor_arg(auto_monitor)
        callbacks = core.checks.callback_list(callback)
        connection_callbacks = core.checks.callback_list(connection_callback,
                                                         what="connection_callback")
        access_callbacks = core.checks.callback_list(access_callback, what="access_callback")
        self._user_count = count
        self._args: Dict[str, Any] = dict.fromkeys(_FIELDS)
        self._args["pvname"] = self.pvname
        self._args["count"] = count
        self._args["nelm"] = -1
        self._args["type"] = "unknown"
        self._lock = threading.RLock()
        self.connected: bool = False
        self._up = False  # connected, set before the monitor is made (connected after)
        self.chid = None
        self._channel: Optional[core.Channel] = None  # this PV's use of the shared channel
        self._relay: Optional[core.WeakRelay] = None
        self.ftype: Optional[int] = None  # DBR request type of the form
        self._field_type: Optional[int] = None  # native DBF type
        self._evid = None
        self._mask: Optional[int] = None
        self._put_complete: Optional[bool] = None
        self._has_value = False
        self._waited = 0  # threads in _wait_until for this PV
        # set when a put completed: the monitor update of that write may still be
        # on its way (the IOC sends it independently), so the next get() reads
        self._stale = False
        self.callbacks: Dict[int, Tuple[Callable, Dict[str, Any]]] = {}
        # made on first use (most PVs have none: two lists fewer per PV)
        self._connection_callbacks: Optional[List[Callable]] = connection_callbacks or None
        self._access_callbacks: Optional[List[Callable]] = access_callbacks or None
        for cb in callbacks:
            self.add_callback(cb)
        self._connect_channel()

    @property
    def connection_callbacks(self) -> List[Callable]:
        """The connection callbacks, ``fn(pvname=, conn=, pv=)`` (a list: append to it)."""
        cbs = self._connection_callbacks
        if cbs is None:
            cbs = self._connection_callbacks = []
        return cbs

    @connection_callbacks.setter
    def connection_callbacks(self, value: List[Callable]) -> None:
        self._connection_callbacks = value

    @property
    def access_callbacks(self) -> List[Callable]:
        """The access-rights callbacks, ``fn(read_access, write_access, pv=)`` (a list: append to it)."""
        cbs = self._access_callbacks
        if cbs is None:
            cbs = self._access_callbacks = []
        return cbs

    @access_callbacks.setter
    def access_callbacks(self, value: List[Callable]) -> None:
        self._access_callbacks = value

    # ------------------------------------------------------------ connection
    def _connect_channel(self) -> None:
        # no flush: libca's search timer sends the search by itself (the
        # context is preemptive); a flush per PV cost a system call and a
        # GIL hand-off to the connection callbacks of the PVs made before
        channel = core.acquire(self.pvname, flush=False)
        relay = core.WeakRelay(self, "_on_connection", "_on_access", "_on_event")
        with self._lock:
            self._channel, self._relay = channel, relay
            self.chid = channel.chid
            self._args["chid"] = channel.chid
        relay.listen(channel)

    def _release_channel(self) -> Any:
        """End this PV's use of its channel; returns the chid it had."""
        with self._lock:
            channel, relay, self._channel, self._relay = self._channel, self._relay, None, None
            chid, self.chid = self.chid, None
        if channel is not None:
            if relay is not None:
                relay.stop(channel)
            channel.release()
        return chid

    def _on_access(self, channel: core.Channel, read: bool, write: bool) -> None:
        self._args["read_access"] = read
        self._args["write_access"] = write
        self._args["access"] = _ACCESS_TEXT[(read, write)]
        for cb in list(self._access_callbacks or ()):
            try:
                cb(read, write, pv=self)
            except Exception:
                _report_callback_error("PV access rights")

    def _on_connection(self, channel: core.Channel, up: bool) -> None:
        if up:
            if self.chid is None:  # connected inside create_channel (same-process server)
                self.chid = self._args["chid"] = channel.chid
            ftype, nelm, host = channel.native_type, channel.native_count, channel.host
            if ftype is None or nelm is None:
                return
            ftype = int(ftype)
            self._field_type = ftype
            if self.form == "time":
                req = ca.dbf_type_to_DBR_TIME(ftype)
            elif self.form == "ctrl":
                req = ca.dbf_type_to_DBR_CTRL(ftype)
            else:
                req = ca.dbf_type_to_DBR(ftype)
            self.ftype = int(req)
            name = ca.dbr_type_to_text(req)[4:].lower()
            self._args.update(ftype=int(req), type=name, typefull=name, nelm=nelm, host=host,
                              count=min(nelm, self._user_count or nelm))
            self._up = True
            if self.form != "ctrl" and (
                    (ftype == ca.DBF_ENUM and self._args["enum_strs"] is None)
                    or (ftype in (ca.DBF_FLOAT, ca.DBF_DOUBLE) and nelm == 1 and self._args["precision"] is None)):
                # state names / precision before the first monitor update (same circuit:
                # answered in order), so that char_value is right from the first callback
                self._request_ctrlvars_async()
            try:
                self._check_auto_monitor()
            except Exception:
                _report_callback_error("PV %r monitor set-up" % (self.pvname,))
            self.connected = True
            _notify(self)
        else:
            self._up = self.connected = False
            _notify(self)  # a get() waiting for a first value gives up now
        for cb in list(self._connection_callbacks or ()):
            try:
                cb(pvname=self.pvname, conn=up, pv=self)
            except Exception:
                _report_callback_error("PV connection")

    def _request_ctrlvars_async(self) -> None:
        ref = weakref.ref(self)

        def on_ctrl(args: Dict[str, Any]) -> None:
            pv = ref()
            if pv is not None and args.get("status") == ca.ECA_NORMAL:
                data = _flatten(args.get("value"))
                data.pop("value", None)
                data.pop("status", None)
                data.pop("severity", None)
                pv._args.update(data)

        try:  # called in the connection callback: libca sends it after the callback batch
            ca.get(self.chid, ca.dbf_type_to_DBR_CTRL(self._field_type), 1, on_ctrl)
        except Exception:
            pass

    def _check_auto_monitor(self) -> None:
        """Subscribe or unsubscribe according to ``auto_monitor`` (when connected)."""
        with self._lock:
            if not self._up or self.chid is None:
                return
            if self._auto_monitor is None:
                self._auto_monitor = self._args["nelm"] < AUTOMONITOR_MAXLENGTH
            auto = self._auto_monitor
            if auto is False or auto == 0:
                self._clear_monitor()
                return
            mask = DEFAULT_SUBSCRIPTION_MASK if auto is True else int(auto)
            if self._evid is not None:
                if mask == self._mask:
                    return
                self._clear_monitor()
            relay = self._relay
            if relay is None:  # released meanwhile
                return
            on_event = relay  # relay(args) calls self._on_event while this PV lives
            in_callback = _in_ca_thread()
            if not in_callback:
                _attach()
            if self._delivery is None:
                status, evid = ca.create_subscription(self.chid, on_event, self.ftype,
                                                      self._user_count or 0, mask, _USE_NUMPY)
            else:  # a Subscription (CaChannel.monitor) delivered by the shared pool
                from .monitor import subscribe
                status, evid = subscribe(self.chid, on_event, self.ftype, self._user_count or 0,
                                         mask, _USE_NUMPY, policy=self._delivery)
            if status != ca.ECA_NORMAL:
                raise CaChannelException(status, "cannot monitor %r" % (self.pvname,))
            self._evid, self._mask = evid, mask
        if not in_callback:  # libca sends requests made in its callbacks after the callback batch
            ca.flush_io()

    def _clear_monitor(self) -> None:
        evid, self._evid, self._mask = self._evid, None, None
        if evid is None:
            return
        if self._delivery is not None:
            # not waiting for a running callback: it may be waiting for our lock
            evid.close(wait=False)
            return
        try:
            ca.clear_subscription(evid)
            ca.flush_io()
        except Exception:
            pass

    @property
    def monitor_stats(self) -> Any:
        """With ``delivery='latest'``/``'all'``: the internal monitor's
        :class:`CaChannel.monitor.MonitorStats` (received, delivered, dropped,
        pending); else ``None``."""
        evid = self._evid
        return evid.stats if self._delivery is not None and evid is not None else None

    @property
    def auto_monitor(self) -> Union[bool, int, None]:
        """Whether (``True``/DBE mask) or not (``False``) the PV keeps its value current.

        Assigning subscribes or unsubscribes at once when connected.

        >>> pv = PV('catest', auto_monitor=False)
        >>> pv.wait_for_connection(), pv.auto_monitor
        (True, False)
        >>> pv.auto_monitor = True
        >>> pv.auto_monitor_mask == ca.DBE_VALUE | ca.DBE_ALARM
        True
        """
        return self._auto_monitor

    @auto_monitor.setter
    def auto_monitor(self, value: Union[bool, int, None]) -> None:
        self._auto_monitor = _auto_monitor_arg(value)
        self._check_auto_monitor()

    @property
    def auto_monitor_mask(self) -> Optional[int]:
        """The DBE mask of the internal subscription (``None``: not monitored)."""
        return self._mask

    def clear_auto_monitor(self) -> None:
        """Stop the internal monitor (``auto_monitor = False``)."""
        self.auto_monitor = False

    def wait_for_connection(self, timeout: Optional[float] = None) -> bool:
        """Wait until connected, at most ``timeout`` s (default ``connection_timeout``); True if connected.

        >>> PV('catest').wait_for_connection(5)
        True
        >>> PV('no:such:pv').wait_for_connection(0.2)
        False
        """
        seconds = core.checks.timeout(timeout, self.connection_timeout)
        if self.connected:
            return True
        if self._channel is None:
            self._connect_channel()
        _wait_until(self, lambda: self.connected, seconds)
        return self.connected

    def connect(self, timeout: Optional[float] = None) -> bool:
        """(Re)start connecting if :meth:`disconnect` was called, then :meth:`wait_for_connection`."""
        return self.wait_for_connection(timeout)

    def disconnect(self, deepclean: bool = True) -> None:
        """Clear the channel (and its monitor); :meth:`connect` or :meth:`reconnect` connects again.

        With ``deepclean`` (default) the value callbacks are removed too, as in
        pyepics. Connection callbacks are told ``conn=False`` if the PV was
        connected.
        """
        with self._lock:
            was_connected = self.connected
            self.connected = self._up = False
            evid, self._evid, self._mask = self._evid, None, None
            if deepclean:
                self.callbacks.clear()
        if evid is not None:
            if self._delivery is not None:  # its waiting updates are dropped with it
                evid.close(wait=False)
            else:
                try:
                    _attach()
                    ca.clear_subscription(evid)
                except Exception:
                    pass
        self._release_channel()
        _forget(self)
        if was_connected:
            for cb in list(self._connection_callbacks or ()):
                try:
                    cb(pvname=self.pvname, conn=False, pv=self)
                except Exception:
                    _report_callback_error("PV connection")

    def reconnect(self, timeout: Optional[float] = None) -> bool:
        """Clear the channel and connect again (callbacks kept); True if connected in time."""
        callbacks = dict(self.callbacks)
        self.disconnect(deepclean=False)
        self.callbacks.update(callbacks)
        self._connect_channel()
        return self.wait_for_connection(timeout)

    def poll(self, evt: float = 1e-4, iot: float = 1.0) -> None:
        """pyepics compatibility: nothing to do (CaChannel's context delivers callbacks by itself)."""
        return None

    def __del__(self) -> None:
        try:
            if sys.is_finalizing():
                return
            channel = getattr(self, "_channel", None)
            if channel is None:
                return
            self._channel = None
            # a delivery-thread subscription (monitor.Subscription) ends by itself
            evid = self._evid if self._delivery is None else None
            if self._relay is not None:
                self._relay.finalize(channel, evid)
        except Exception:
            pass

    # ------------------------------------------------------------- monitor
    def _on_event(self, args: Dict[str, Any]) -> None:
        if args.get("status") != _NORMAL:
            return  # read access lost: keep the last value
        value = args.get("value")
        data = self._args
        if _is_time(value):  # every update of form='time': straight into the PV's keys
            value = _time_into(data, value)
        else:
            flat = _flatten(value)
            if "timestamp" not in flat:
                now = time.time()
                flat.update(timestamp=now, posixseconds=int(now), nanoseconds=int((now % 1) * 1e9))
            data.update(flat)
            value = flat.get("value")
        data["char_value"] = self._char_value(value, fetch=False)
        if not self._has_value:
            self._has_value = True
            _notify(self)
        if self.verbose:
            print("%s: %s (%s)" % (self.pvname, data["char_value"],
                                   time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data["timestamp"]))))
        if self.callbacks:
            self.run_callbacks()

    def _char_value(self, value: Any, fetch: bool, long_string: bool = False) -> str:
        if value is None:
            return "None"
        ftype = self._field_type
        if type(value) is float and ftype in _FLOAT_TYPES and (
                not fetch or self._args["precision"] is not None):
            return _float_text(value, self._args["precision"])  # the common update: a scalar
        if ftype == ca.DBF_STRING:
            if isinstance(value, (list, tuple)):
                return value[0] if len(value) == 1 else str(value)
            return value if isinstance(value, str) else str(value)
        nelm = self._args.get("nelm") or 1
        if ftype == ca.DBF_CHAR and (nelm > 1 or long_string):
            if nelm < AUTOMONITOR_MAXLENGTH or long_string:
                return _chars(value)
        is_array = (_np is not None and isinstance(value, _np.ndarray)) or isinstance(value, (list, tuple))
        if is_array and nelm > 1:
            return "<array size=%d, type=%s>" % (len(value), self._args.get("type"))
        if ftype in _FLOAT_TYPES:
            if fetch and self._args["precision"] is None:
                self.get_ctrlvars(warn=False)
            return _float_text(value, self._args.get("precision"))
        if ftype == ca.DBF_ENUM:
            if fetch and not self._args["enum_strs"]:
                self.get_ctrlvars(warn=False)
            try:
                return self._args["enum_strs"][int(value)]
            except (TypeError, IndexError, KeyError, ValueError):
                return str(value)
        return str(value)

    # ----------------------------------------------------------- callbacks
    def add_callback(self, callback: Optional[Callable] = None, index: Optional[int] = None,
                     run_now: bool = False, with_ctrlvars: bool = False, **kw: Any) -> Optional[int]:
        """Add a value callback; returns its index (for :meth:`remove_callback`).

        ``callback(**kw)`` gets pyepics' keywords on every update: ``pvname,
        value, char_value, status, severity, timestamp, posixseconds,
        nanoseconds, count, nelm, type, ftype, host, access, read_access,
        write_access, units, precision, enum_strs``, the limits, ``chid``, the
        extra keywords given here, and ``cb_info=(index, pv)``. All callbacks
        of a PV share its one subscription (``auto_monitor`` is switched on
        if it was off). ``index`` replaces the callback of that index.
        ``with_ctrlvars`` reads the control fields (units, limits...) first
        so that the keywords carry them; ``run_now`` calls it once at once
        with the current value (when connected).

        >>> import queue
        >>> seen = queue.Queue()
        >>> pv = PV('catest')
        >>> index = pv.add_callback(lambda value=None, **kw: seen.put(value))
        >>> pv.put(3.5, wait=True)
        1
        >>> while seen.get(timeout=5) != 3.5: pass
        >>> pv.remove_callback(index)
        """
        callback = core.checks.optional_callback(callback)
        if callback is not None:
            with self._lock:
                if index is None:
                    index = 1 + max(self.callbacks, default=0)
                self.callbacks[index] = (callback, kw)
        if not self._auto_monitor and self._auto_monitor is not None:
            self.auto_monitor = True
        if with_ctrlvars and self.connected and not _in_ca_thread():
            self.get_ctrlvars(warn=False)
        if run_now and index is not None and self.connected:
            if self._args["value"] is None and not _in_ca_thread():
                self.get()
            if self._args["value"] is not None:
                self.run_callback(index)
        return index

    def remove_callback(self, index: Optional[int] = None) -> None:
        """Remove the value callback of ``index`` (no error if there is none)."""
        with self._lock:
            self.callbacks.pop(index, None)

    def clear_callbacks(self, with_access_callback: bool = False,
                        with_connect_callback: bool = False) -> None:
        """Remove all value callbacks (and optionally access/connection callbacks)."""
        with self._lock:
            self.callbacks.clear()
            if with_access_callback:
                self._access_callbacks = None
            if with_connect_callback:
                self._connection_callbacks = None

    def run_callbacks(self) -> None:
        """Call every value callback with the current data (in index order)."""
        with self._lock:
            indices = sorted(self.callbacks)
        for index in indices:
            self.run_callback(index)

    def run_callback(self, index: int) -> None:
        """Call the value callback of ``index`` with the current data.

        An exception it raises is printed with its traceback and ignored.
        """
        entry = self.callbacks.get(index)
        if entry is None:
            return
        fn, kw = entry
        kwds = dict(self._args)
        if kw:
            kwds.update(kw)
        kwds["cb_info"] = (index, self)
        try:
            fn(**kwds)
        except Exception:
            _report_callback_error("PV %r value" % (self.pvname,))

    # ----------------------------------------------------------------- read
    def _read(self, dbrtype: int, count: Optional[int], timeout: float,
              as_numpy: bool = True) -> Optional[Dict[str, Any]]:
        """One get with callback; the flattened result dict, or None on timeout/failure."""
        done = threading.Event()
        box: Dict[str, Any] = {}

        def on_get(args: Dict[str, Any]) -> None:
            box.update(args)
            done.set()

        channel = self._channel
        if channel is None:
            return None
        status, _ = channel.get(dbrtype, 0 if count is None else count, on_get, as_numpy and _USE_NUMPY)
        if status != ca.ECA_NORMAL:
            return None
        ca.flush_io()
        if not _wait_event(done, timeout):
            return None
        if box.get("status") != ca.ECA_NORMAL:
            return None
        return _flatten(box.get("value"))

    def _default_timeout(self) -> float:
        nelm = max(self._args.get("nelm") or 1, 1)
        return 1.0 + math.log10(nelm)

    def get_with_metadata(self, count: Optional[int] = None, as_string: bool = False,
                          as_numpy: bool = True, timeout: Optional[float] = None,
                          with_ctrlvars: bool = False, form: Optional[str] = None,
                          use_monitor: bool = True, as_namespace: bool = False) -> Any:
        """The value and its metadata as a dict (``value``, ``status``, ``timestamp``, ...); None on timeout.

        ``form`` (``'time'``/``'ctrl'``/``'native'``) overrides the PV's
        form for this read; other keywords as in :meth:`get`; with
        ``as_namespace`` a ``types.SimpleNamespace``.

        >>> md = PV('catest').get_with_metadata(form='ctrl')
        >>> md['units'], md['upper_disp_limit']
        ('mm', 20.0)
        """
        if form is not None:
            form = str(form).lower()
            if form not in ("time", "ctrl", "native"):
                raise ValueError("form must be 'time', 'ctrl' or 'native', not %r" % (form,))
        count = core.checks.count(count)
        if not self.wait_for_connection(timeout):
            return None
        timeout = core.checks.timeout(timeout, self._default_timeout())
        ftype = self.ftype
        if form is not None and form != self.form:
            dbf = self._field_type
            ftype = int({"time": ca.dbf_type_to_DBR_TIME, "ctrl": ca.dbf_type_to_DBR_CTRL}.get(
                form, ca.dbf_type_to_DBR)(dbf))
        if with_ctrlvars and self._args["units"] is None and ftype != ca.dbf_type_to_DBR_CTRL(self._field_type):
            self.get_ctrlvars(timeout=timeout, warn=False)
        value = self._args["value"]
        try:
            cached_len = len(value)
        except TypeError:
            cached_len = 1
        if (not use_monitor or self._evid is None or ftype != self.ftype or value is None
                or self._stale or (count is not None and count > cached_len)):
            if self._evid is not None and use_monitor and ftype == self.ftype and value is None:
                # the first monitor update is on its way: wait for it
                _wait_until(self, lambda: self._has_value or not self.connected, timeout)
                value = self._args["value"]
            if value is None or not use_monitor or ftype != self.ftype or self._evid is None or \
                    self._stale or (count is not None and count > cached_len):
                req_count = count if count is not None else self._user_count
                if ftype == self.ftype:
                    self._stale = False
                md = self._read(ftype, req_count, timeout, as_numpy)
                if md is None:
                    return None
                if ftype == self.ftype or ftype == ca.dbf_type_to_DBR_CTRL(self._field_type):
                    upd = dict(md)
                    if ftype != self.ftype:
                        upd.pop("value", None)
                    self._args.update(upd)
                if ftype == self.ftype:
                    self._args["char_value"] = self._char_value(md.get("value"), fetch=False)
                metad = dict(self._args) if with_ctrlvars else dict(md)
                metad["value"] = md.get("value")
            else:
                metad = dict(self._args)
        else:
            metad = dict(self._args)
        val = metad.get("value")
        if as_string:
            metad["value"] = self._char_value(val, fetch=not _in_ca_thread(), long_string=True)
        elif val is not None and (self._args.get("nelm") or 1) > 1:
            if not isinstance(val, (list, tuple, str, bytes)) and not (
                    _np is not None and isinstance(val, _np.ndarray)):
                val = [val]  # an array PV holding one element (e.g. NORD 1) is still an array
            if isinstance(val, (list, tuple)) or (_np is not None and isinstance(val, _np.ndarray)):
                if as_numpy and _np is not None and not isinstance(val, _np.ndarray) \
                        and self._field_type != ca.DBF_STRING:
                    val = _np.asarray(val)
                elif not as_numpy and _np is not None and isinstance(val, _np.ndarray):
                    val = val.tolist()
                if count is not None and count < len(val):
                    val = val[:count]
                metad["value"] = val
        if as_namespace:
            import types
            return types.SimpleNamespace(**metad)
        return metad

    def get(self, count: Optional[int] = None, as_string: bool = False, as_numpy: bool = True,
            timeout: Optional[float] = None, with_ctrlvars: bool = False,
            use_monitor: bool = True) -> Any:
        """The value; ``None`` if not connected or not read within ``timeout``.

        :param count: at most this many elements of an array.
        :param as_string: the text form (``char_value``): enum state name,
            number formatted with the PV's precision, char array as ``str``.
        :param as_numpy: arrays as numpy arrays (else lists).
        :param timeout: seconds to wait for connection and value (default
            ``1 + log10(element count)``).
        :param with_ctrlvars: read the control fields (units, limits...) too.
        :param use_monitor: ``True``: the latest monitored value when
            ``auto_monitor`` is on; ``False``: always ask the server.

        >>> pv = PV('cawavec')
        >>> pv.put('abc', wait=True)
        1
        >>> pv.get(as_string=True), pv.get(count=3, as_numpy=False)
        ('abc', [97, 98, 99])
        """
        md = self.get_with_metadata(count=count, as_string=as_string, as_numpy=as_numpy,
                                    timeout=timeout, with_ctrlvars=with_ctrlvars,
                                    use_monitor=use_monitor)
        return None if md is None else md["value"]

    def get_ctrlvars(self, timeout: float = 5.0, warn: bool = True) -> Optional[Dict[str, Any]]:
        """Read the control fields (units, precision, enum_strs, limits, alarm); dict or None.

        >>> sorted(PV('catest').get_ctrlvars())  # doctest: +NORMALIZE_WHITESPACE
        ['lower_alarm_limit', 'lower_ctrl_limit', 'lower_disp_limit', 'lower_warning_limit',
         'precision', 'severity', 'status', 'units', 'upper_alarm_limit', 'upper_ctrl_limit',
         'upper_disp_limit', 'upper_warning_limit']
        """
        if not self.wait_for_connection(timeout):
            return None
        md = self._read(ca.dbf_type_to_DBR_CTRL(self._field_type), 1, timeout)
        if md is None:
            if warn:
                sys.stderr.write("CaChannel.PV: control fields of %r not read within %s s\n"
                                 % (self.pvname, timeout))
            return None
        md.pop("value", None)
        self._args.update(md)
        return md

    def get_timevars(self, timeout: float = 5.0, warn: bool = True) -> Optional[Dict[str, Any]]:
        """Read alarm status, severity and timestamp; dict or None.

        >>> sorted(PV('catest').get_timevars())
        ['nanoseconds', 'posixseconds', 'severity', 'status', 'timestamp']
        """
        if not self.wait_for_connection(timeout):
            return None
        md = self._read(ca.dbf_type_to_DBR_TIME(self._field_type), 1, timeout)
        if md is None:
            if warn:
                sys.stderr.write("CaChannel.PV: time fields of %r not read within %s s\n"
                                 % (self.pvname, timeout))
            return None
        md.pop("value", None)
        self._args.update(md)
        return md

    # ---------------------------------------------------------------- write
    def put(self, value: Any, wait: bool = False, timeout: Optional[float] = 30.0,
            use_complete: bool = False, callback: Optional[Callable] = None,
            callback_data: Any = None) -> Optional[int]:
        """Write ``value``; with ``wait`` block until the server completed it.

        Returns ``1`` (``ca.ECA_NORMAL``) when the write was sent (or, with
        ``wait``, completed), ``-1`` when ``wait`` timed out after
        ``timeout`` s (``None``: no limit), ``None`` if the PV did not
        connect within ``connection_timeout``. ``use_complete``: do not
        wait, but let :attr:`put_complete` tell when the server finished.
        ``callback(pvname=, data=callback_data, status=)`` runs when the
        server finished. A refused write (no write access, bad enum state,
        server error reported with ``wait``) raises
        :class:`CaChannel.CaChannelException` naming the PV. After a write
        the server reported complete, the next :meth:`get` asks the server
        (the monitor update of the write may arrive after the completion).

        >>> pv = PV('catest')
        >>> pv.put(1.25, use_complete=True)
        1
        >>> import time
        >>> while not pv.put_complete: time.sleep(0.01)
        >>> pv.get(use_monitor=False)
        1.25
        """
        seconds = None if timeout is None else core.checks.timeout(timeout)
        callback = core.checks.optional_callback(callback)
        if not self.wait_for_connection():
            return None
        if not self._args.get("write_access") and not ca.write_access(self.chid):
            raise CaChannelException(ca.ECA_NOWTACCESS, "%r is read-only (no write access)" % self.pvname)
        if self._field_type == ca.DBF_ENUM and isinstance(value, str):
            strs = self._args.get("enum_strs")
            if not strs and not _in_ca_thread():
                self.get_ctrlvars(warn=False)
                strs = self._args.get("enum_strs")
            if strs and value in strs:
                value = list(strs).index(value)
            elif strs:
                try:
                    value = int(value)
                except ValueError:
                    raise CaChannelException(ca.ECA_BADSTR, "%r is not a state of %r (states: %r)"
                                             % (value, self.pvname, tuple(strs))) from None
        _attach()
        if not (wait or use_complete or callback is not None):
            self._put_complete = None
            status = ca.put(self.chid, value)
            if status != ca.ECA_NORMAL:
                raise CaChannelException(status, "write of %r to %r" % (value, self.pvname))
            ca.flush_io()
            return int(ca.ECA_NORMAL)
        done = threading.Event()
        result: Dict[str, Any] = {}
        ref = weakref.ref(self)

        def on_put(args: Dict[str, Any]) -> None:
            result.update(args)
            pv = ref()
            if pv is not None:
                pv._stale = True
                pv._put_complete = True
            done.set()
            if callback is not None:
                try:
                    callback(pvname=self.pvname, data=callback_data, status=args.get("status"))
                except Exception:
                    _report_callback_error("PV %r put" % (self.pvname,))

        self._put_complete = False
        status = ca.put(self.chid, value, None, None, on_put)
        if status != ca.ECA_NORMAL:
            self._put_complete = None
            raise CaChannelException(status, "write of %r to %r" % (value, self.pvname))
        ca.flush_io()
        if not wait:
            return int(ca.ECA_NORMAL)
        if not _wait_event(done, seconds):
            return -1
        status = result.get("status")
        if status is not None and status != ca.ECA_NORMAL:
            raise CaChannelException(status, "write of %r to %r" % (value, self.pvname))
        return int(ca.ECA_NORMAL)

    @property
    def put_complete(self) -> Optional[bool]:
        """After ``put(use_complete=True)``: False until the server completed it, then True."""
        return self._put_complete

    # ----------------------------------------------------------- attributes
    def _getarg(self, name: str) -> Any:
        """An ``_args`` entry; missing metadata is read once (not from libca's threads)."""
        value = self._args.get(name)
        if value is None and self.connected and not _in_ca_thread():
            if name in _TIME_KEYS:
                self.get_timevars(timeout=1.0, warn=False)
            elif name in _CTRL_KEYS:
                self.get_ctrlvars(timeout=1.0, warn=False)
            value = self._args.get(name)
        return value

    @property
    def value(self) -> Any:
        """The value (as :meth:`get`); assigning writes it (as :meth:`put`)."""
        return self.get()

    @value.setter
    def value(self, val: Any) -> None:
        self.put(val)

    @property
    def char_value(self) -> str:
        """The value as text: enum state name, number with the PV's precision, char array as str."""
        val = self.get()
        return self._char_value(val, fetch=not _in_ca_thread())

    @property
    def status(self) -> Optional[int]:
        """Alarm status (``ca.AlarmCondition`` number; 0: no alarm)."""
        return self._getarg("status")

    @property
    def severity(self) -> Optional[int]:
        """Alarm severity (0 none, 1 minor, 2 major, 3 invalid)."""
        return self._getarg("severity")

    @property
    def timestamp(self) -> Optional[float]:
        """POSIX time (s) of the value."""
        return self._getarg("timestamp")

    @property
    def posixseconds(self) -> Optional[int]:
        """Integer POSIX seconds of the value's time."""
        return self._getarg("posixseconds")

    @property
    def nanoseconds(self) -> Optional[int]:
        """Nanoseconds part of the value's time."""
        return self._getarg("nanoseconds")

    @property
    def precision(self) -> Optional[int]:
        """Display precision (floating point PVs)."""
        return self._getarg("precision")

    @property
    def units(self) -> Optional[str]:
        """Engineering units."""
        return self._getarg("units")

    @property
    def enum_strs(self) -> Optional[Tuple[str, ...]]:
        """The state names of an enum PV."""
        return self._getarg("enum_strs")

    @property
    def count(self) -> Optional[int]:
        """Number of elements of the current value (arrays: the server's current length)."""
        value = self._args.get("value")
        if value is not None and (self._args.get("nelm") or 1) > 1:
            try:
                return len(value)
            except TypeError:
                return 1
        return self._args.get("count")

    @property
    def nelm(self) -> int:
        """Native element count of the channel (-1 before the first connection)."""
        return self._args.get("nelm")

    @property
    def type(self) -> str:
        """Request type name, e.g. ``'time_double'``, ``'ctrl_enum'``, ``'double'``."""
        return self._args.get("type")

    @property
    def typefull(self) -> str:
        """Same as :attr:`type`."""
        return self._args.get("typefull") or self._args.get("type")

    @property
    def host(self) -> Optional[str]:
        """``host:port`` of the server."""
        return self._args.get("host")

    @property
    def access(self) -> Optional[str]:
        """``'read/write'``, ``'read-only'``, ``'write-only'`` or ``'no access'``."""
        return self._args.get("access")

    @property
    def read_access(self) -> Optional[bool]:
        """Whether this client may read the PV."""
        return self._args.get("read_access")

    @property
    def write_access(self) -> Optional[bool]:
        """Whether this client may write the PV."""
        return self._args.get("write_access")

    upper_disp_limit = property(lambda self: self._getarg("upper_disp_limit"), doc="Upper display limit (HOPR).")
    lower_disp_limit = property(lambda self: self._getarg("lower_disp_limit"), doc="Lower display limit (LOPR).")
    upper_alarm_limit = property(lambda self: self._getarg("upper_alarm_limit"), doc="Upper alarm limit (HIHI).")
    lower_alarm_limit = property(lambda self: self._getarg("lower_alarm_limit"), doc="Lower alarm limit (LOLO).")
    upper_warning_limit = property(lambda self: self._getarg("upper_warning_limit"),
                                   doc="Upper warning limit (HIGH).")
    lower_warning_limit = property(lambda self: self._getarg("lower_warning_limit"),
                                   doc="Lower warning limit (LOW).")
    upper_ctrl_limit = property(lambda self: self._getarg("upper_ctrl_limit"), doc="Upper control limit (DRVH).")
    lower_ctrl_limit = property(lambda self: self._getarg("lower_ctrl_limit"), doc="Lower control limit (DRVL).")

    @property
    def info(self) -> Optional[str]:
        """A multi-line text with value, type, host, access, alarm, time and control fields.

        >>> print(PV('cabo').info)  # doctest: +ELLIPSIS
        == cabo (time_enum) ==
           value      = ...
           enum_strs  = ('Done', 'Busy')
        ...
        """
        if not self.wait_for_connection():
            return None
        self.get_ctrlvars(warn=False)
        self.get(use_monitor=False)
        a = self._args
        lines = ["== %s (%s) ==" % (self.pvname, a.get("type"))]
        rows = [("value", self.get()), ("char_value", repr(self.char_value)), ("count", self.count),
                ("nelm", a.get("nelm")), ("type", a.get("type")), ("units", a.get("units")),
                ("precision", a.get("precision")), ("host", a.get("host")),
                ("access", a.get("access")), ("status", a.get("status")),
                ("severity", a.get("severity"))]
        ts = a.get("timestamp")
        if ts is not None:
            rows.append(("timestamp", "%.3f (%s)" % (ts, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)))))
        if a.get("enum_strs") is not None:
            rows.append(("enum_strs", a.get("enum_strs")))
        for key in ("upper_ctrl_limit", "lower_ctrl_limit", "upper_disp_limit", "lower_disp_limit",
                    "upper_alarm_limit", "lower_alarm_limit", "upper_warning_limit", "lower_warning_limit"):
            if a.get(key) is not None:
                rows.append((key, a.get(key)))
        for key, val in rows:
            lines.append("   %-10s = %s" % (key, val))
        mon = "monitored" if self._evid is not None else "not monitored"
        lines.append("   PV is internally %s, with %d user-defined callbacks" % (mon, len(self.callbacks)))
        lines.append("=" * 28)
        return "\n".join(lines)

    def __repr__(self) -> str:
        if not self.connected:
            return "<PV %r: not connected>" % (self.pvname,)
        nelm = self._args.get("nelm") or 1
        count = "%s/%s" % (self.count, nelm) if nelm > 1 else "%s" % nelm
        return "<PV %r, count=%s, type=%s, access=%s>" % (self.pvname, count, self._args.get("type"),
                                                        self._args.get("access"))


def _auto_monitor_arg(value: Any) -> Union[bool, int, None]:
    """``auto_monitor``: None (by size), a bool, 0 (off) or a DBE mask (``core.checks.mask``)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value == 0:
        return 0
    return core.checks.mask(value, what="auto_monitor")


# ------------------------------------------------------------------------ cache
_PVcache_: Dict[Tuple[str, str], PV] = {}
_cache_lock = threading.Lock()


def _forget(pv: PV) -> None:
    with _cache_lock:
        key = (pv.pvname, pv.form)
        if _PVcache_.get(key) is pv:
            del _PVcache_[key]


def get_pv(pvname: str, form: str = "time", connect: bool = False, context: Any = None,
           timeout: float = 5.0, connection_callback: Optional[Callable] = None,
           access_callback: Optional[Callable] = None, callback: Optional[Callable] = None,
           **kwargs: Any) -> PV:
    """The cached :class:`PV` of ``(pvname, form)``, created on first use.

    Callbacks given are added to the (possibly existing) PV; with ``connect``
    wait up to ``timeout`` s for the connection. ``context`` is accepted for
    pyepics compatibility and ignored (CaChannel uses one CA context per
    process). Other keywords go to :class:`PV` when it is created.
    :meth:`PV.disconnect` removes a PV from the cache.

    >>> get_pv('catest') is get_pv('catest')
    True
    >>> get_pv('catest', connect=True).connected
    True
    """
    pvname = core.checks.pv_name(pvname)
    timeout = core.checks.timeout(timeout)
    callbacks = core.checks.callback_list(callback)
    connection_callbacks = core.checks.callback_list(connection_callback, what="connection_callback")
    access_callbacks = core.checks.callback_list(access_callback, what="access_callback")
    key = (pvname.strip(), str(form).lower())
    with _cache_lock:
        pv = _PVcache_.get(key)
        created = pv is None
        if created:
            pv = PV(pvname, form=form, connection_callback=connection_callback,
                    access_callback=access_callback, callback=callback, **kwargs)
            _PVcache_[key] = pv
    if not created:
        for conn_cb in connection_callbacks:
            pv.connection_callbacks.append(conn_cb)
            if pv.connected:
                conn_cb(pvname=pv.pvname, conn=True, pv=pv)
        for access_cb in access_callbacks:
            pv.access_callbacks.append(access_cb)
            if pv.connected:
                access_cb(pv.read_access, pv.write_access, pv=pv)
        for value_cb in callbacks:
            pv.add_callback(value_cb)
    if connect:
        pv.wait_for_connection(timeout)
    return pv


def clear_pvcache() -> None:
    """Forget the PVs cached by :func:`get_pv` (disconnecting them)."""
    with _cache_lock:
        pvs = list(_PVcache_.values())
        _PVcache_.clear()
    for pv in pvs:
        pv.disconnect()
