"""Command-line-tool-like functions: :func:`caget`, :func:`caput`, :func:`camonitor`, :func:`cainfo`.

Channels are created on first use of a name (``CaChannel(name).searchw()``)
and kept in the module dict ``_channels_``; a name that does not connect
raises :class:`CaChannel.CaChannelException` and is not cached. In a child
process made by ``os.fork()`` (a ``multiprocessing`` pool with the ``fork``
start method, say) the cache starts empty and the functions just work.

>>> import time
>>> caput('catest', 1.23, wait=True)
>>> caget('catest')
1.23
>>> caput('cabo', 'Busy')
>>> caget('cabo')
1
>>> caget('cabo', as_string=True)
'Busy'
>>> caput('cawavec', 'this can be a long string')
>>> caget('cawavec', as_string=True)
'this '
>>> caput('cawave', range(4))
>>> caget('cawave', count=4)
[0.0, 1.0, 2.0, 3.0]
"""
from __future__ import annotations

import datetime
import os
import threading
from typing import Any, Callable, Dict, Optional

from . import ca
from ._channel import CaChannel, CaChannelException, _chars_to_str

__all__ = ["caget", "caput", "camonitor", "cainfo"]

#: cache of connected channels, keyed by PV name
_channels_: Dict[str, CaChannel] = {}
_cache_lock = threading.Lock()


def _after_fork_child() -> None:
    """In a child after fork: the cached channels are the parent's (dead
    here); the child searches its own on first use."""
    global _cache_lock
    _cache_lock = threading.Lock()
    _channels_.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)


def _channel(name: str) -> CaChannel:
    chan = _channels_.get(name)
    if chan is not None:
        if chan.state() != ca.ChannelState.CLOSED:
            return chan
        # dead: its context was destroyed (ca.destroy_context); search again
        with _cache_lock:
            if _channels_.get(name) is chan:
                del _channels_[name]
    if not isinstance(name, (str, bytes)):
        raise TypeError("PV name must be str or bytes, not %s" % type(name).__name__)
    chan = CaChannel(name)
    chan.searchw()  # raises CaChannelException; nothing cached then
    with _cache_lock:
        existing = _channels_.get(name)
        if existing is not None:
            chan.clear_channel()
            return existing
        _channels_[name] = chan
    return chan


def caget(name: str, as_string: bool = False, count: Optional[int] = None) -> Any:
    """Return the current value of PV ``name``.

    With ``as_string`` an enum PV gives its state name and a char array PV a
    ``str`` (up to the first 0). ``count`` limits the number of elements.

    >>> caput('cabo', 'Busy')
    >>> caget('cabo', as_string=True)
    'Busy'
    """
    chan = _channel(name)
    ftype = chan.field_type()
    req: int = ca.dbf_type_to_DBR(ftype)
    if as_string and ftype == ca.DBF_ENUM:
        req = ca.DBR_STRING
    value = chan.getw(req, count)
    if as_string and ftype == ca.DBF_CHAR:
        value = _chars_to_str(value)
    return value


def caput(name: str, value: Any, wait: bool = False, timeout: Optional[float] = None) -> None:
    """Write ``value`` to PV ``name``.

    With ``wait`` the call blocks until the server completed the write (and the
    processing it triggered), at most ``timeout`` seconds (``None``: no limit);
    a timeout is not an error. A write the server reports as failed raises
    :class:`CaChannel.CaChannelException` naming the PV.

    >>> caput('catest', 1.23, wait=True)
    >>> caget('catest')
    1.23
    """
    chan = _channel(name)
    if not wait:
        chan.putw(value)
        return
    chan._precheck_put(value, None)
    done = threading.Event()
    result: Dict[str, Any] = {}

    def on_put(epics_args, _):
        result.update(epics_args)
        done.set()

    chan.array_put_callback(value, None, None, on_put)
    chan.flush_io()
    done.wait(timeout)
    status = result.get("status")
    if status is not None and status != ca.ECA_NORMAL:
        raise CaChannelException(status, "write of %r to %r" % (value, name))


def _print_monitor(epics_args: Dict[str, Any], _user_args: Any) -> None:
    name = _user_name(epics_args)
    seconds = epics_args.get("pv_seconds")
    if seconds is None:
        stamp = ""
    else:
        posix = seconds + ca.POSIX_TIME_AT_EPICS_EPOCH + epics_args.get("pv_nseconds", 0) * 1e-9
        stamp = datetime.datetime.fromtimestamp(posix).strftime("%Y-%m-%d %H:%M:%S.%f")
    print(name, stamp, epics_args.get("pv_value"))


def _user_name(epics_args: Dict[str, Any]) -> str:
    try:
        return ca.name(epics_args["chid"])
    except Exception:
        return "?"


def camonitor(name: str, as_string: bool = False, count: Optional[int] = None,
              callback: Any = None) -> None:
    """Call ``callback(epics_args, user_args)`` on every value/alarm change of ``name``.

    ``callback`` None prints ``name timestamp value`` lines; a non-callable
    (e.g. ``()``) removes the monitor. A new call replaces the previous
    monitor of that name: once ``camonitor`` is called, the previous callback
    is not called again, even for an update already in flight. With
    ``as_string`` enum values arrive as state names and char arrays as ``str``.

    >>> camonitor('cacalc')
    >>> time.sleep(2) # doctest: +ELLIPSIS
    cacalc ...
    >>> camonitor('cacalc', callback=())
    """
    chan = _channel(name)
    # Cancel the previous monitor first, before any call that lets another
    # thread take the GIL: from here on an update that is already on its way
    # no longer reaches the old callback.
    chan.clear_event()
    if callback is not None and not callable(callback):
        chan.flush_io()
        return
    if callback is None:
        callback = _print_monitor
    ftype = chan.field_type()
    req: int = ca.dbf_type_to_DBR_TIME(ftype)
    if as_string and ftype == ca.DBF_ENUM:
        req = ca.DBR_TIME_STRING
    convert = as_string and ftype == ca.DBF_CHAR
    # updates arriving while camonitor() is still running (the initial one
    # can come back before the flush returns) are held until it returned
    installed = threading.Event()

    def user_cb(epics_args, user_args):
        installed.wait(1.0)
        if convert:  # fixed: char arrays as str (the original compared a TIME type)
            epics_args["pv_value"] = _chars_to_str(epics_args.get("pv_value"))
        callback(epics_args, user_args)

    try:
        chan.add_masked_array_event(req, count, None, user_cb)
        chan.flush_io()
    finally:
        installed.set()


def cainfo(name: str) -> None:
    """Print connection, type, access and alarm information of ``name``.

    >>> caput('cabo', 1)
    >>> cainfo('cabo') # doctest: +ELLIPSIS
    cabo
        State:          Connected
        Host:           ...
        Data type:      DBF_ENUM
        Element count:  1
        Access:         RW
        Status:         STATE
        Severity:       MINOR
        Enumerates:     ('Done', 'Busy')
    """
    chan = _channel(name)
    connected = chan.state() == ca.cs_conn
    ftype = chan.field_type()
    read, write = chan.read_access(), chan.write_access()
    access = {(True, True): "RW", (True, False): "R", (False, True): "W"}.get((read, write), "No access")
    lines = [
        str(name),
        "    %-16s%s" % ("State:", "Connected" if connected else "Not connected"),
        "    %-16s%s" % ("Host:", chan.host_name()),
        "    %-16s%s" % ("Data type:", ca.dbf_type_to_text(ftype)),
        "    %-16s%s" % ("Element count:", chan.element_count()),
        "    %-16s%s" % ("Access:", access),
    ]
    if connected:
        info = chan.getw(ca.dbf_type_to_DBR_CTRL(ftype), 1)
        lines.append("    %-16s%s" % ("Status:", ca.alarmStatusString(info["pv_status"])))
        lines.append("    %-16s%s" % ("Severity:", ca.alarmSeverityString(info["pv_severity"])))
        if ftype == ca.DBF_ENUM:
            lines.append("    %-16s%s" % ("Enumerates:", tuple(info.get("pv_statestrings", ()))))
    print("\n".join(lines))
