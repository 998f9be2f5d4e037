"""Command-line-tool-like functions: :func:`caget`, :func:`caput`, :func:`camonitor`, :func:`cainfo`.

Channels are the process's shared ones (``CaChannel.core``): the first use of
a name connects it and it stays open for the next use (of util or of any
other face); a name that does not connect raises
:class:`CaChannel.CaChannelException`. In a child
process made by ``os.fork()`` (a ``multiprocessing`` pool with the ``fork``
start method, say) the cache starts empty and the functions just work.
:func:`clear_cache` closes and forgets them.

:func:`caget`, :func:`caput` and :func:`cainfo` also take a *list* of names
(and :func:`caput` a list of values): all channels are searched at once and
all requests sent together, one ``timeout=`` covers the whole call, results
come back in the order of the names. A failure raises after all the others
finished, one :class:`CaChannel.CaChannelException` naming every failed PV
(its ``failures`` dict maps each to its own exception); with ``throw=False``
failed PVs give ``None`` instead.


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
>>> caput(['catest', 'cabo'], [1.23, 1], wait=True)
>>> caget(['catest', 'cabo'], timeout=5)
[1.23, 1]
"""
from __future__ import annotations

import datetime
import math
import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Union, cast

from . import _listops, ca, core
from ._channel import CaChannel, CaChannelException, connected, put_wait
from ._convert import chars_to_str

__all__ = ["caget", "caput", "camonitor", "cainfo", "clear_cache"]

#: camonitor's objects, one per PV name (a new camonitor replaces the old)
_monitors: Dict[str, CaChannel] = {}
_monitors_lock = threading.Lock()


def _after_fork_child() -> None:
    """In a child after fork: the parent's monitors are dead here."""
    global _monitors_lock
    _monitors_lock = threading.Lock()
    _monitors.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)


def clear_cache() -> None:
    """Stop every :func:`camonitor` and close the channels nobody uses any more.

    util keeps no channels of its own: it uses the process's shared channels
    (``CaChannel.core``), which stay open while idle so that the next use of
    a name is fast; this closes those idle channels (of every face).

    >>> caget('catest') is not None
    True
    >>> clear_cache()
    >>> [ch.name for ch in core.channels() if ch.users == 0]
    []
    """
    with _monitors_lock:
        chans = list(_monitors.values())
        _monitors.clear()
    for chan in chans:
        chan.clear_channel()
    core.close_idle()


def _one(results: Any) -> Any:
    """The single result of a one-name list operation."""
    return results[0]


def _single_failure(exc: CaChannelException) -> CaChannelException:
    failures = getattr(exc, "failures", None)
    return next(iter(failures.values())) if failures else exc


def caget(name: Union[str, Sequence[str]], as_string: bool = False, count: Optional[int] = None,
          timeout: Optional[float] = None, throw: bool = True) -> Any:
    """Return the current value of PV ``name`` (or a list of values for a list of names).

    With ``as_string`` an enum PV gives its state name and a char array PV a
    ``str`` (up to the first 0). ``count`` limits the number of elements.
    ``timeout`` (s) covers connecting and reading together (default
    ``CaChannel.ca_timeout``, 3 s; a single name without ``timeout`` keeps
    CaChannel 3.x's 3 s to connect plus 3 s to read). A PV that fails raises
    :class:`CaChannel.CaChannelException`, or gives ``None`` with
    ``throw=False``; a list raises only after all its other reads finished,
    naming every failed PV.

    >>> caput('cabo', 'Busy')
    >>> caget('cabo', as_string=True)
    'Busy'
    >>> caput(['cabo', 'catest'], ['Busy', 1.23], wait=True)
    >>> caget(['cabo', 'catest', 'no:such:pv'], as_string=True, timeout=1, throw=False)
    ['Busy', 1.23, None]
    """
    count = core.checks.count(count)
    if _listops.is_many(name):
        return _listops.caget(name, as_string, count, timeout, throw)
    core.checks.pv_name(name)
    if timeout is not None or not throw:
        try:
            return _one(_listops.caget([name], as_string, count, timeout, True))
        except CaChannelException as exc:
            if throw:
                raise _single_failure(exc) from None
            return None
    chan = connected(cast(str, name))
    try:
        ftype = chan.field_type()
        req: int = ca.dbf_type_to_DBR(ftype)
        if as_string and ftype == ca.DBF_ENUM:
            req = ca.DBR_STRING
        value = chan.getw(req, count)
    finally:
        chan.clear_channel()
    if as_string and ftype == ca.DBF_CHAR:
        value = chars_to_str(value)
    return value


def caput(name: Union[str, Sequence[str]], value: Any, wait: bool = False,
          timeout: Optional[float] = None,
          throw: bool = True) -> Union[None, bool, List[Optional[bool]]]:
    """Write ``value`` to PV ``name`` (or ``value[i]`` to ``name[i]`` for a list of names).

    With ``wait`` the call blocks until the server completed the write (and the
    processing it triggered), at most ``timeout`` seconds (``None``: no limit);
    for a single name a timeout is not an error. A write the server reports
    as failed raises :class:`CaChannel.CaChannelException` naming the PV.

    For a list of names ``timeout`` covers connecting (default 3 s) and,
    with ``wait``, completing all writes; a write not completed in time is a
    failure. Failures raise after all other writes finished, naming every
    failed PV; with ``throw=False`` the call returns a list with ``True`` for
    each write done and ``None`` for each failed one (a single name:
    ``True`` or ``None``).

    >>> caput('catest', 1.23, wait=True)
    >>> caget('catest')
    1.23
    >>> caput(['catest', 'no:such:pv'], [1.23, 0], wait=True, timeout=1, throw=False)
    [True, None]
    """
    core.checks.timeout(timeout, math.inf)  # also without wait: a bad timeout is refused
    if _listops.is_many(name):
        return _listops.caput(name, value, wait, timeout, throw)
    core.checks.pv_name(name)  # a bad name/timeout is the caller's error, not a failed write
    if not throw:  # a single name: True when written, None when it failed (as a list's item)
        try:
            caput(name, value, wait, timeout)
        except (CaChannelException, TypeError, ValueError, OverflowError):
            return None
        return True
    chan = connected(cast(str, name))
    try:
        if not wait:
            chan.putw(value)
            return None
        put_wait(chan, value, timeout)
    finally:
        chan.clear_channel()
    return None


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
    # Cancel the previous monitor first, before any call that lets another
    # thread take the GIL: from here on an update that is already on its way
    # no longer reaches the old callback.
    name = core.checks.pv_name(name)
    count = core.checks.count(count)
    with _monitors_lock:
        old = _monitors.pop(name, None)
    if old is not None:
        old.clear_channel()
    if callback is not None and not callable(callback):
        core.context.flush()
        return
    chan = connected(name)
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
            epics_args["pv_value"] = chars_to_str(epics_args.get("pv_value"))
        callback(epics_args, user_args)

    try:
        chan.add_masked_array_event(req, count, None, user_cb)
        chan.flush_io()
    except BaseException:
        chan.clear_channel()
        raise
    finally:
        installed.set()
    with _monitors_lock:
        old = _monitors.pop(name, None)
        _monitors[name] = chan
    if old is not None:  # another thread's camonitor of the same name meanwhile
        old.clear_channel()


def cainfo(name: Union[str, Sequence[str]], timeout: Optional[float] = None, throw: bool = True) -> None:
    """Print connection, type, access and alarm information of ``name`` (or of each in a list).

    A list connects all names at once (within ``timeout``, default 3 s) and
    prints one block per name; a name that did not connect prints
    ``State: Not connected`` and, unless ``throw=False``, the call raises at
    the end naming every such PV.

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
    if _listops.is_many(name):
        found, failures = _listops.connect(name, timeout)
        for item in name:
            if item in found:
                cainfo(item)
            else:
                print("%s\n    %-16s%s" % (item, "State:", "Not connected"))
        if throw:
            _listops.raise_failures(list(name), failures, "connect")
        return None
    core.checks.pv_name(name)
    chan = connected(cast(str, name), timeout)
    try:
        _print_info(name, chan)
    finally:
        chan.clear_channel()


def _print_info(name: Any, chan: CaChannel) -> None:
    is_connected = chan.state() == ca.cs_conn
    ftype = chan.field_type()
    read, write = chan.read_access(), chan.write_access()
    access = {(True, True): "RW", (True, False): "R", (False, True): "W"}.get((read, write), "No access")
    lines = [
        str(name),
        "    %-16s%s" % ("State:", "Connected" if is_connected else "Not connected"),
        "    %-16s%s" % ("Host:", chan.host_name()),
        "    %-16s%s" % ("Data type:", ca.dbf_type_to_text(ftype)),
        "    %-16s%s" % ("Element count:", chan.element_count()),
        "    %-16s%s" % ("Access:", access),
    ]
    if is_connected:
        info = chan.getw(ca.dbf_type_to_DBR_CTRL(ftype), 1)
        lines.append("    %-16s%s" % ("Status:", ca.alarmStatusString(info["pv_status"])))
        lines.append("    %-16s%s" % ("Severity:", ca.alarmSeverityString(info["pv_severity"])))
        if ftype == ca.DBF_ENUM:
            lines.append("    %-16s%s" % ("Enumerates:", tuple(info.get("pv_statestrings", ()))))
    print("\n".join(lines))
