"""The object-oriented ``CaChannel`` class and ``CaChannelException``.

A :class:`CaChannel` wraps one Channel Access channel of the low-level
:mod:`CaChannel.ca` module. Its methods map almost one to one to the CA C
functions; the ``...w`` methods (:meth:`CaChannel.searchw`,
:meth:`CaChannel.getw`, :meth:`CaChannel.putw`) are the convenient blocking
forms.

Context: the first method that needs a CA context creates a *preemptive* one
(callbacks run in CA's own threads) and remembers it; every later call, from
any thread, attaches to that context first, so threads need no set-up. If
that context is destroyed (``ca.destroy_context()``), the channels made in
it are dead (their methods raise ``CaChannelException(ECA_BADCHID)``) and
the next method that needs a context creates a new one, so a new
``CaChannel`` (or :meth:`CaChannel.searchw` again) works. In a child process
made by ``os.fork()`` (e.g. a ``multiprocessing`` pool with the ``fork``
start method) the objects inherited from the parent are dead in the same way,
with an error that names fork, and the child gets its own context on first
use; the parent is unaffected.

Errors: every failure of the CA library is raised as
:class:`CaChannelException` carrying the ECA status. Values that cannot be
converted raise ``TypeError``/``ValueError``/``OverflowError``; methods of an
object that never searched raise ``CaChannelException(ECA.BADCHID)``.

The examples run against the test IOC (``tests/test.db``).
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple, Union

from . import ca, core
from ._convert import chars_to_str as _chars_to_str, epics_args, plain as _plain, pv_dict as _pv_dict
from ._convert import use_numpy as _use_numpy
from .core.errors import CaChannelException, report_callback_error

_check = core.check


__all__ = ["CaChannel", "CaChannelException"]

_NORMAL = ca.ECA_NORMAL

# DBR_*_STRING request types and the matching DBR_*_CHAR ones (char-as-string)
_STRING_TO_CHAR = {
    ca.DBR_STRING: ca.DBR_CHAR,
    ca.DBR_STS_STRING: ca.DBR_STS_CHAR,
    ca.DBR_TIME_STRING: ca.DBR_TIME_CHAR,
    ca.DBR_GR_STRING: ca.DBR_GR_CHAR,
    ca.DBR_CTRL_STRING: ca.DBR_CTRL_CHAR,
}

#: forks seen by this process: a channel searched before a fork is dead in the child
_forks = 0


def _after_fork_child() -> None:
    global _forks, _pending_lock
    _forks += 1
    _pending.clear()
    _pending_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)

#: channels searched with search() (no callback) since the last pend_io: as
#: with libca's ca_pend_io, the next CaChannel.pend_io waits for them
_pending: "set[core.Channel]" = set()
_pending_lock = threading.Lock()


def _pend_io(seconds: float) -> int:
    """``ca.pend_io`` for ``seconds`` (``inf``: no limit, libca's 0; never 0
    otherwise, which libca would take as no limit)."""
    if math.isinf(seconds):
        return ca.pend_io(0.0)
    return ca.pend_io(max(seconds, 1e-6))


def _take_pending() -> list:
    with _pending_lock:
        chans = list(_pending)
        _pending.clear()
    return chans


def connected(name: Union[str, bytes], timeout: Optional[float] = None) -> "CaChannel":
    """A new :class:`CaChannel` object for ``name``, connected: waits up to
    ``timeout`` s (default ``CaChannel.ca_timeout``) for this channel only
    (``searchw`` waits for every pending search of the process, as libca's
    ``pend_io``). Raises :class:`CaChannelException` (``ECA_TIMEOUT``).

    >>> connected('catest').state()
    <ChannelState.CONN: 2>
    """
    if not isinstance(name, (str, bytes)):
        raise TypeError("PV name must be str or bytes, not %s" % type(name).__name__)
    seconds = core.checks.timeout(timeout, CaChannel.ca_timeout)
    chan = CaChannel(name)
    chan.search_and_connect(None, _no_callback)
    channel = chan._need_channel()
    if not channel.wait_connected(seconds):
        chan.clear_channel()
        raise CaChannelException(ca.ECA_TIMEOUT, "%s did not connect within %.3g s" % (chan._label(), seconds))
    return chan


def put_wait(chan: "CaChannel", value: Any, timeout: Optional[float]) -> None:
    """Write ``value`` through ``chan`` and wait for the server to complete it,
    at most ``timeout`` s (``None``: no limit; running out is not an error).
    Writes the server would refuse are refused first (as :meth:`CaChannel.putw`);
    a completion with an error status raises :class:`CaChannelException`."""
    seconds = None if timeout is None else core.checks.timeout(timeout)
    chan._precheck_put(value, None)
    done = threading.Event()
    result: Dict[str, Any] = {}

    def on_put(epics_args: Dict[str, Any], _: Any) -> None:
        result.update(epics_args)
        done.set()

    chan.array_put_callback(value, None, None, on_put)
    chan.flush_io()
    if seconds is None or math.isinf(seconds):
        while not done.wait(core.checks.CHUNK):
            pass
    else:
        done.wait(seconds)
    status = result.get("status")
    if status is not None and status != ca.ECA_NORMAL:
        raise CaChannelException(status, "write of %r to %s" % (value, chan._label()))


def _no_callback(args: Any, user_args: Any) -> None:
    """Connection callback of :func:`connected`'s objects."""


class _MonitorCall:
    """libca's callback of one :meth:`CaChannel.add_masked_array_event` for
    the updates of a structured type (``DBR_STS_*``, ``DBR_TIME_*``, ...):
    ``callback(epicsArgs, user_args)`` while it is its object's current
    subscription (a late update of a cancelled one is dropped). The backend
    calls ``callback`` itself for the other updates (``pv_callback=`` of
    ``ca.create_subscription``). One slotted object per subscription instead
    of a closure with five cells: 100,000 monitored objects in a process, and
    every garbage collection visits them."""

    __slots__ = ("chan", "callback", "user_args", "numpy_flag")

    def __init__(self, chan: "CaChannel", callback: Callable, user_args: tuple,
                 numpy_flag: bool) -> None:
        self.chan = chan
        self.callback = callback
        self.user_args = user_args
        self.numpy_flag = numpy_flag

    def __call__(self, args: Dict[str, Any]) -> None:
        chan = self.chan
        if chan._event_cb is not self:
            return
        try:
            self.callback(chan._epics_args(args, self.numpy_flag), self.user_args)
        except Exception:
            report_callback_error("monitor")


class CaChannel:
    """A Channel Access channel to one process variable.

    The most used operations have short blocking forms: connect with
    :meth:`searchw`, read with :meth:`getw`, write with :meth:`putw`.

    >>> chan = CaChannel('catest')
    >>> chan.searchw()
    >>> chan.putw(12.5)
    >>> chan.getw()
    12.5
    >>> chan.searchw('cabo')
    >>> chan.putw('Done')
    >>> chan.getw(ca.DBR_STRING)
    'Done'
    """

    #: default timeout (seconds) of objects without their own :meth:`setTimeout`
    ca_timeout: float = 3.0

    # ------------------------------------------------------------------ setup
    def __init__(self, pvName: Optional[Union[str, bytes]] = None) -> None:
        self.pvname = pvName
        # this object's use of the core's shared channel (None: not searched)
        self._channel: Optional[core.Channel] = None
        self._forks = _forks
        self._timeout: Optional[float] = None
        self._evid: Optional[ca._Evid] = None
        self._event_cb: Optional[_MonitorCall] = None  # the current subscription's callback
        self._get_cb: Optional[Tuple[Callable, tuple, bool]] = None
        self._conn_cb: Optional[Tuple[Callable, tuple]] = None
        self._access_cb: Optional[Tuple[Callable, Any]] = None
        self._relay: Optional[core.WeakRelay] = None
        self._access_listening = False
        self._dbrvalue: Optional[ca.DBRValue] = None
        self._dbrvalue_numpy = False
        self._char_as_string = False

    def __repr__(self) -> str:
        return "CaChannel(%r)" % (self.pvname,)

    def __del__(self) -> None:
        try:
            if sys.is_finalizing():
                return  # libca may already be torn down
            channel = getattr(self, "_channel", None)
            if channel is None:
                return
            self._channel = None
            evid, self._evid = self._evid, None
            if self._relay is not None:
                self._relay.finalize(channel, evid)
        except Exception:
            pass

    @property
    def core_channel(self) -> Optional[core.Channel]:
        """The shared channel (``CaChannel.core.Channel``) this object uses;
        ``None`` before :meth:`search` and after :meth:`clear_channel`.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> chan.core_channel.name, chan.core_channel.connected
        ('catest', True)
        """
        return self._channel

    @property
    def _chid(self) -> Any:
        """The low-level handle, as CaChannel 3.x objects had it (code written
        for 3.x reads ``chan._chid``); ``None`` if not searched."""
        channel = self._channel
        return None if channel is None else channel.chid

    def _need_chid(self):
        channel = self._need_channel()
        return channel.chid

    def _need_channel(self) -> core.Channel:
        channel = self._channel
        if channel is None:
            raise CaChannelException(ca.ECA_BADCHID, "channel %r was never searched" % (self.pvname,))
        if self._forks != _forks:
            raise CaChannelException(
                ca.ECA_BADCHID, "channel %s was searched in the parent process before fork(); "
                "search again (searchw) in this process" % self._label())
        return channel

    def _label(self) -> str:
        name = self.pvname
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return repr(name)

    # --------------------------------------------------------------- statics
    @staticmethod
    def version() -> str:
        """Version of the CaChannel package.

        >>> isinstance(CaChannel.version(), str)
        True
        """
        from ._version import __version__
        return __version__

    def setTimeout(self, timeout: Optional[float]) -> None:
        """Set this object's timeout in seconds (``None``: use ``CaChannel.ca_timeout``).

        >>> chan = CaChannel()
        >>> chan.setTimeout(10.)
        >>> chan.getTimeout()
        10.0
        """
        if timeout is None:
            self._timeout = None
            return
        self._timeout = core.checks.timeout(timeout)

    def getTimeout(self) -> float:
        """The timeout of this object, or the class default ``ca_timeout``.

        >>> chan = CaChannel()
        >>> chan.getTimeout() == CaChannel.ca_timeout
        True
        """
        if self._timeout is None:
            return float(type(self).ca_timeout)
        return self._timeout

    # --------------------------------------------------------------- connect
    def search(self, pvName: Optional[Union[str, bytes]] = None) -> None:
        """Start connecting to ``pvName`` (or the stored name); needs :meth:`pend_io`.

        >>> chan = CaChannel()
        >>> chan.search('catest')
        >>> status = chan.pend_io()
        >>> chan.state()
        <ChannelState.CONN: 2>
        """
        self._create(pvName, None)

    def search_and_connect(self, pvName: Optional[Union[str, bytes]], callback: Callable,
                           *user_args: Any) -> None:
        """Start connecting; ``callback((chid, op), user_args)`` on every connection change.

        >>> chan = CaChannel('catest')
        >>> def connCB(epicsArgs, _):
        ...     chid = epicsArgs[0]
        ...     connection_state = epicsArgs[1]
        ...     if connection_state == ca.CA_OP_CONN_UP:
        ...         print(ca.name(chid), "is connected")
        >>> chan.search_and_connect(None, connCB, chan)
        >>> status = chan.pend_event(3) # doctest: +SKIP
        catest is connected
        >>> chan.search_and_connect('cabo', connCB, chan)
        >>> status = chan.pend_event(3) # doctest: +SKIP
        cabo is connected
        >>> chan.clear_channel()
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        self._create(pvName, (callback, user_args))

    def _create(self, pvName, conn_cb) -> None:
        if pvName is not None:
            if not isinstance(pvName, (str, bytes)):
                raise TypeError("pvName must be str or bytes, not %s" % type(pvName).__name__)
            self.pvname = pvName
        if self.pvname is None:
            raise ValueError("no PV name given")
        if not isinstance(self.pvname, (str, bytes)):
            raise TypeError("pvName must be str or bytes, not %s" % type(self.pvname).__name__)
        self.clear_channel()
        try:
            channel = core.acquire(self.pvname, flush=False)
        except CaChannelException as exc:
            raise CaChannelException(exc.status, "search for %s" % self._label()) from None
        self._channel = channel
        self._forks = _forks
        self._conn_cb = conn_cb
        # the channel holds the listeners weakly (core.WeakRelay): an object
        # nobody references is collected (and releases its use) as before
        relay = self._relay = core.WeakRelay(self, "_on_connection", "_on_access")
        self._access_listening = False  # added by replace_access_rights_event
        channel.add_listener(relay, replay=conn_cb is not None)
        if conn_cb is None and not channel.connected:
            with _pending_lock:
                _pending.add(channel)

    def searchw(self, pvName: Optional[Union[str, bytes]] = None) -> None:
        """Connect and wait up to :meth:`getTimeout` seconds.

        Raises :class:`CaChannelException` (``ECA_TIMEOUT``) if the PV does not
        connect in time.

        >>> chan = CaChannel('non-exist-channel')
        >>> chan.searchw() # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
            ...
        CaChannelException: User specified timeout on IO operation expired
        """
        self.search(pvName)
        self.pend_io()

    def clear_channel(self) -> None:
        """End this object's use of the channel (no-op if never searched); cancels its monitor.

        The channel itself is shared by every object and face using the same
        name in this process; it stays open for them (and, idle, for the next
        use of the name: see ``CaChannel.core.channel``).
        """
        channel = self._channel
        if channel is None:
            return
        self._channel = None
        evid = self._evid
        self._evid = None
        self._event_cb = None
        self._get_cb = None
        self._conn_cb = None
        self._access_cb = None
        self._dbrvalue = None
        relay = self._relay
        if relay is not None:
            relay.stop(channel)
        with _pending_lock:
            _pending.discard(channel)
        if self._forks != _forks:
            return  # the parent's: dead here, nothing to release in this process
        try:
            if evid is not None and channel.alive:
                core.context.attach()
                ca.clear_subscription(evid)
        except Exception:
            pass
        channel.release()

    def change_connection_event(self, callback: Optional[Callable], *user_args: Any) -> None:
        """Install (callable) or remove (anything else) the connection callback.

        >>> chan = CaChannel('catest')
        >>> chan.search() # connect without callback
        >>> def connCB(epicsArgs, _):
        ...     chid = epicsArgs[0]
        ...     connection_state = epicsArgs[1]
        ...     if connection_state == ca.CA_OP_CONN_UP:
        ...         print(ca.name(chid), "is connected")
        >>> chan.change_connection_event(connCB) # install connection callback
        >>> status = chan.pend_event(3) # doctest: +SKIP
        catest is connected
        >>> chan.change_connection_event(None) # remove connection callback
        """
        channel = self._need_channel()
        if channel.state() == ca.ChannelState.CLOSED:
            raise CaChannelException(ca.ECA_BADCHID, "connection callback of %s" % self._label())
        if callable(callback):
            self._conn_cb = (callback, user_args)
            with _pending_lock:  # as libca: a channel with a callback is no pending I/O
                _pending.discard(channel)
        else:
            self._conn_cb = None

    def _on_connection(self, channel: core.Channel, up: bool) -> None:
        entry = self._conn_cb
        if entry is None:
            return
        callback, user_args = entry
        op = ca.CA_OP_CONN_UP if up else ca.CA_OP_CONN_DOWN
        try:
            callback((channel.chid, op), user_args)
        except Exception:
            report_callback_error("connection")

    # ------------------------------------------------------------------ write
    def array_put(self, value: Any, req_type: Optional[int] = None,
                  count: Optional[int] = None) -> None:
        """Queue a write of ``value`` (needs :meth:`flush_io`).

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> chan.array_put(123)
        >>> chan.flush_io()
        >>> chan.getw()
        123.0
        >>> chan = CaChannel('cawavec')
        >>> chan.searchw()
        >>> chan.array_put([1,2,3])
        >>> chan.flush_io()
        >>> chan.getw()
        [1, 2, 3, 0, 0]
        >>> chan.getw(count=3, use_numpy=True)
        array([1, 2, 3], dtype=uint8)
        """
        self._put(value, req_type, count, None)

    def array_put_callback(self, value: Any, req_type: Optional[int], count: Optional[int],
                           callback: Callable, *user_args: Any) -> None:
        """Queue a write; ``callback(epicsArgs, user_args)`` runs once it completed.

        ``epicsArgs`` has ``chid``, ``type``, ``count`` and ``status``.

        >>> def putCB(epicsArgs, _):
        ...     print(ca.name(epicsArgs['chid']), 'put completed')
        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> chan.array_put_callback(145, None, None, putCB)
        >>> status = chan.pend_event(1)
        catest put completed
        """
        if not callable(callback):
            raise TypeError("callback must be callable")

        def on_put(args: Dict[str, Any]) -> None:
            try:
                callback(dict(args), user_args)
            except Exception:
                report_callback_error("put")

        self._put(value, req_type, count, on_put)

    def _put(self, value, req_type, count, callback) -> None:
        count = core.checks.count(count)
        chid = self._need_chid()
        core.context.attach()
        try:
            status = ca.put(chid, value, req_type, count, callback)
        except (TypeError, ValueError, OverflowError) as exc:
            raise type(exc)("cannot write %r to %s: %s" % (value, self._label(), exc)) from exc
        _check(status, "write to %s" % self._label())

    def putw(self, value: Any, req_type: Optional[int] = None) -> None:
        """Write ``value`` and flush (does not wait for the server to process it).

        Writes that the server would refuse are checked first and raised with
        the PV name: no write access, an enum state name that is not one of
        the PV's states, a string longer than 39 bytes for a string field.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> chan.putw(145)
        >>> chan.getw()
        145.0
        >>> chan = CaChannel('cabo')
        >>> chan.searchw()
        >>> chan.putw('Busy', ca.DBR_STRING)
        >>> chan.getw()
        1
        >>> chan.getw(ca.DBR_STRING)
        'Busy'
        >>> chan = CaChannel('cawave')
        >>> chan.searchw()
        >>> chan.putw([1,2,3])
        >>> chan.getw(req_type=ca.DBR_LONG,count=4)
        [1, 2, 3, 0]
        >>> chan = CaChannel('cawavec')
        >>> chan.searchw()
        >>> chan.putw('123')
        >>> chan.getw(count=4)
        [49, 50, 51, 0]
        >>> chan.getw(req_type=ca.DBR_STRING)
        '123'
        >>> chan = CaChannel('cawaves')
        >>> chan.searchw()
        >>> chan.putw(['string 1','string 2'])
        >>> chan.getw()
        ['string 1', 'string 2', '']
        """
        self._precheck_put(value, req_type)
        self.array_put(value, req_type)
        self.flush_io()

    def _precheck_put(self, value: Any, req_type: Optional[int]) -> None:
        self._need_channel().precheck_put(value, req_type, self.getTimeout(), self._label())

    # ------------------------------------------------------------------- read
    def array_get(self, req_type: Optional[int] = None, count: Optional[int] = None, *,
                  use_numpy: Optional[bool] = None) -> None:
        """Queue a read; the value is available by :meth:`getValue` after :meth:`pend_io`.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> chan.putw(123)
        >>> chan.array_get()
        >>> chan.pend_io()
        >>> chan.getValue()
        123.0
        """
        self._array_get(req_type, count, _use_numpy(use_numpy), False)

    def _array_get(self, req_type, count, use_numpy: bool, char_as_string: bool) -> None:
        count = core.checks.count(count)
        chid = self._need_chid()
        core.context.attach()
        status, dbrvalue = ca.get(chid, req_type, count, None, use_numpy)
        if status != _NORMAL:
            raise CaChannelException(status, "read of %s" % self._label())
        self._dbrvalue = dbrvalue
        self._dbrvalue_numpy = use_numpy
        self._char_as_string = char_as_string

    def getValue(self) -> Any:
        """Value of the last :meth:`array_get` (after :meth:`pend_io` succeeded).

        A plain request type gives the value, other types a dict of ``pv_*``
        keys.

        >>> chan = CaChannel('cabo')
        >>> chan.searchw()
        >>> chan.putw(1)
        >>> chan.array_get(req_type=ca.DBR_CTRL_ENUM)
        >>> chan.pend_io()
        >>> for k,v in sorted(chan.getValue().items()):
        ...    if k in ['pv_severity', 'pv_status']:
        ...        print(k, v.name)
        ...    else:
        ...        print(k, v)
        pv_nostrings 2
        pv_severity Minor
        pv_statestrings ('Done', 'Busy')
        pv_status State
        pv_value 1
        """
        dbrvalue = self._dbrvalue
        if dbrvalue is None:
            return None
        value = dbrvalue.get()
        if isinstance(value, dict):
            out = _pv_dict(value, self._dbrvalue_numpy)
            if self._char_as_string:
                out["pv_value"] = _chars_to_str(out.get("pv_value"))
            return out
        if self._char_as_string:
            return _chars_to_str(value)
        return _plain(value, self._dbrvalue_numpy)

    def array_get_callback(self, req_type: Optional[int], count: Optional[int],
                           callback: Callable, *user_args: Any,
                           use_numpy: Optional[bool] = None) -> None:
        """Queue a read; ``callback(epicsArgs, user_args)`` gets the result.

        ``epicsArgs`` has ``chid``, ``type``, ``count``, ``status`` and the
        ``pv_*`` keys of the request type.

        >>> def getCB(epicsArgs, _):
        ...     for item in sorted(epicsArgs.keys()):
        ...         if item in ['pv_severity', 'pv_status']:
        ...             print(item,epicsArgs[item].name)
        ...         elif item.startswith('pv_'):
        ...             print(item,epicsArgs[item])
        >>> chan = CaChannel('cabo')
        >>> chan.searchw()
        >>> chan.putw(0)
        >>> chan.array_get_callback(ca.DBR_CTRL_ENUM, 1, getCB)
        >>> status = chan.pend_event(1)
        pv_nostrings 2
        pv_severity No
        pv_statestrings ('Done', 'Busy')
        pv_status No
        pv_value 0
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        count = core.checks.count(count)
        chid = self._need_chid()
        core.context.attach()
        numpy_flag = _use_numpy(use_numpy)
        # one outstanding request per object: a new call replaces the callback
        self._get_cb = (callback, user_args, numpy_flag)
        status, _ = ca.get(chid, req_type, count, self._on_get, numpy_flag)
        if status != _NORMAL:
            self._get_cb = None
            raise CaChannelException(status, "read of %s" % self._label())

    def _on_get(self, args: Dict[str, Any]) -> None:
        entry = self._get_cb
        self._get_cb = None
        if entry is None:
            return
        callback, user_args, numpy_flag = entry
        try:
            callback(self._epics_args(args, numpy_flag), user_args)
        except Exception:
            report_callback_error("get")

    @staticmethod
    def _epics_args(args: Dict[str, Any], numpy_flag: bool) -> Dict[str, Any]:
        # args: the dict the backend made for this one callback
        return epics_args(args, numpy_flag, own=True)

    def getw(self, req_type: Optional[int] = None, count: Optional[int] = None, *,
             use_numpy: Optional[bool] = None) -> Any:
        """Read and wait up to :meth:`getTimeout`; returns the value (or ``pv_*`` dict).

        For a ``DBF_CHAR`` field a ``DBR_*STRING`` request reads the characters
        and returns them as one ``str``.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> chan.putw(0)
        >>> value = chan.getw(ca.DBR_TIME_DOUBLE)
        >>> for k,v in sorted(value.items()): # doctest: +ELLIPSIS
        ...    if k in ['pv_severity', 'pv_status']:
        ...        print(k, v.name)
        ...    else:
        ...        print(k, v)
        pv_nseconds ...
        pv_seconds ...
        pv_severity No
        pv_status No
        pv_value 0.0
        """
        chid = self._need_chid()
        numpy_flag = _use_numpy(use_numpy)
        char_as_string = False
        if req_type is not None and int(req_type) in _STRING_TO_CHAR:
            try:
                is_char = ca.field_type(chid) == ca.DBF_CHAR
            except Exception:
                is_char = False
            if is_char:
                req_type = _STRING_TO_CHAR[int(req_type)]
                char_as_string = True
        self._array_get(req_type, count, numpy_flag, char_as_string)
        status = _pend_io(self.getTimeout())
        if status != _NORMAL:
            self._dbrvalue = None
            raise CaChannelException(status, "read of %s" % self._label())
        return self.getValue()

    # ---------------------------------------------------------------- monitor
    def add_masked_array_event(self, req_type: Optional[int], count: Optional[int],
                               mask: Optional[int], callback: Callable, *user_args: Any,
                               use_numpy: Optional[bool] = None) -> None:
        """Subscribe; ``callback(epicsArgs, user_args)`` runs on every update.

        One subscription per object: a previous one is cancelled first.

        >>> def eventCB(epicsArgs, _):
        ...     print('pv_value', epicsArgs['pv_value'])
        ...     print('pv_status', epicsArgs['pv_status'].name)
        ...     print('pv_severity', epicsArgs['pv_severity'].name)
        >>> chan = CaChannel('cabo')
        >>> chan.searchw()
        >>> chan.putw(1)
        >>> chan.add_masked_array_event(ca.DBR_STS_ENUM, None, None, eventCB)
        >>> status = chan.pend_event(1)
        pv_value 1
        pv_status State
        pv_severity Minor
        >>> chan.add_masked_array_event(ca.DBR_STS_STRING, None, None, eventCB)
        >>> status = chan.pend_event(1)
        pv_value Busy
        pv_status State
        pv_severity Minor
        >>> chan.clear_event()
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        count = core.checks.count(count)
        try:
            mask = core.checks.mask(mask)
        except ValueError as exc:  # 3.x: a bad mask is CA's ECA_BADMASK
            raise CaChannelException(ca.ECA_BADMASK, "subscription to %s: %s"
                                     % (self._label(), exc)) from None
        chid = self._need_chid()
        core.context.attach()
        if self._evid is not None:
            self.clear_event()
            ca.flush_io()
        if mask is None:
            mask = ca.DBE_VALUE | ca.DBE_ALARM
        numpy_flag = _use_numpy(use_numpy)
        on_event = _MonitorCall(self, callback, user_args, numpy_flag)
        self._event_cb = on_event
        # plain types' updates (the most frequent) go from the backend to the
        # user's callback directly; clear_subscription ends both at once
        status, evid = ca.create_subscription(chid, on_event, req_type, count, mask, numpy_flag,
                                              pv_callback=(callback, user_args))
        if status != _NORMAL:
            self._event_cb = None
            raise CaChannelException(status, "subscription to %s" % self._label())
        self._evid = evid

    def clear_event(self) -> None:
        """Cancel the subscription of :meth:`add_masked_array_event` (if any)."""
        evid = self._evid
        self._evid = None
        self._event_cb = None
        if evid is None:
            return
        core.context.attach()
        _check(ca.clear_subscription(evid), "cancel subscription of %s" % self._label())

    # ---------------------------------------------------------------- execute
    def pend_io(self, timeout: Optional[float] = None) -> None:
        """Flush and wait for outstanding searches and reads; raises on timeout.

        As libca's ``ca_pend_io``: it waits for the searches of every object
        made with :meth:`search` (no connection callback) since the last
        ``pend_io``, and for the reads queued with :meth:`array_get`; a
        ``timeout`` of 0 waits without limit, as does ``math.inf``. (The
        low-level ``ca.pend_io`` waits for the reads only: channels are shared
        by every face and libca counts no search of them.)
        """
        seconds = core.checks.timeout(timeout, self.getTimeout())
        if seconds == 0:
            seconds = math.inf
        core.context.attach()
        pending = _take_pending()
        start = time.monotonic()
        if pending:
            ca.flush_io()
            if not core.wait_all(pending, seconds):
                missing = [repr(ch.name) for ch in pending if not ch.connected]
                raise CaChannelException(
                    ca.ECA_TIMEOUT, "%s did not connect within %.3g s" % (", ".join(missing[:5]) + (
                        " and %d more" % (len(missing) - 5) if len(missing) > 5 else ""), seconds))
        _check(_pend_io(seconds - (time.monotonic() - start)))

    def pend_event(self, timeout: Optional[float] = None) -> int:
        """Flush and process CA work for ``timeout`` seconds (default 0.1); returns the status.

        ``timeout`` as everywhere (``core.checks.timeout``): 0 does not wait
        (libca's ``ca_pend_event(0)`` would block for ever), ``inf`` has no
        limit.
        """
        seconds = core.checks.timeout(timeout, 0.1)
        core.context.attach()
        if seconds == 0:
            return ca.poll()
        while math.isinf(seconds):  # no limit: process events until interrupted
            ca.pend_event(core.checks.CHUNK)
        return ca.pend_event(seconds)

    def poll(self) -> int:
        """Flush and process outstanding CA work; returns the status (``ECA_TIMEOUT``)."""
        core.context.attach()
        return ca.poll()

    def flush_io(self) -> None:
        """Send buffered requests without waiting."""
        core.context.attach()
        _check(ca.flush_io())

    # ------------------------------------------------------------ information
    def _info(self, func):
        chid = self._need_chid()
        try:
            return func(chid)
        except ValueError as exc:
            raise CaChannelException(ca.ECA_BADCHID, "%s: %s" % (self._label(), exc)) from exc

    def field_type(self) -> int:
        """Native type of the PV, a ``ca.DBF`` member.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> ftype = chan.field_type()
        >>> ftype
        <DBF.DOUBLE: 6>
        >>> ca.dbf_text(ftype)
        'DBF_DOUBLE'
        >>> ca.DBF_DOUBLE == ftype
        True
        """
        return self._info(ca.field_type)

    def element_count(self) -> int:
        """Native element count of the PV.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> chan.element_count()
        1
        """
        return self._info(ca.element_count)

    def name(self) -> str:
        """Channel name given when the channel was created.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> chan.name()
        'catest'
        """
        return self._info(ca.name)

    def state(self) -> int:
        """Connection state, a ``ca.ChannelState`` member.

        >>> chan = CaChannel('catest')
        >>> chan.state()
        <ChannelState.NEVER_SEARCH: 4>
        >>> chan.searchw()
        >>> chan.state()
        <ChannelState.CONN: 2>
        """
        channel = self._channel
        if channel is None:
            return ca.ChannelState.NEVER_SEARCH
        try:
            return ca.state(channel.chid)
        except ValueError:
            return ca.ChannelState.NEVER_SEARCH

    def host_name(self) -> str:
        """``host:port`` of the server of the PV.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> host_name = chan.host_name()
        """
        return self._info(ca.host_name)

    def read_access(self) -> bool:
        """True if the channel can be read.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> chan.read_access()
        True
        """
        return bool(self._info(ca.read_access))

    def write_access(self) -> bool:
        """True if the channel can be written.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> chan.write_access()
        True
        """
        return bool(self._info(ca.write_access))

    # -------------------------------------------------------------- handlers
    def replace_access_rights_event(self, callback: Optional[Callable] = None,
                                    user_args: Any = None) -> None:
        """Install (callable) or remove the access rights callback.

        ``callback(epicsArgs, user_args)``; called at once if connected.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> def accessCB(epicsArgs, _):
        ...     print('read:', epicsArgs['read_access'], 'write:', epicsArgs['write_access'])
        >>> chan.replace_access_rights_event(accessCB)
        read: True write: True
        >>> chan.replace_access_rights_event() # clear the callback
        """
        channel = self._need_channel()
        if channel.state() == ca.ChannelState.CLOSED:
            raise CaChannelException(ca.ECA_BADCHID, "access rights callback of %s" % self._label())
        if callable(callback):
            self._access_cb = (callback, user_args)
            if self._access_listening:
                if channel.connected:  # called at once, as libca does
                    self._on_access(channel, channel.read_access, channel.write_access)
            elif self._relay is not None:
                self._access_listening = True
                channel.add_access_listener(self._relay, replay=True)  # (at once if connected)
        else:
            self._access_cb = None

    def _on_access(self, channel: core.Channel, read: bool, write: bool) -> None:
        entry = self._access_cb
        if entry is None:
            return
        callback, user_args = entry
        try:
            callback({"chid": channel.chid, "read_access": read, "write_access": write}, user_args)
        except Exception:
            report_callback_error("access rights")

    @classmethod
    def add_exception_event(cls, callback: Optional[Callable] = None, user_args: Any = None) -> None:
        """Install (callable) or reset the context-wide CA exception handler.

        ``callback(epicsArgs, user_args)`` with ``chid``, ``type``, ``count``,
        ``state``, ``op``, ``ctx``, ``file``, ``lineNo``.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> def exceptionCB(epicsArgs, _):
        ...     print('op:', epicsArgs['op'], 'file:', epicsArgs['file'], 'line:', epicsArgs['lineNo'])
        >>> chan.add_exception_event(exceptionCB) # add callback # doctest: +SKIP
        >>> chan.add_exception_event() # clear the callback # doctest: +SKIP
        """
        core.context.attach()
        if callable(callback):
            def on_exception(args: Dict[str, Any]) -> None:
                try:
                    callback(dict(args), user_args)
                except Exception:
                    report_callback_error("exception")

            status = ca.add_exception_event(on_exception)
        else:
            status = ca.add_exception_event(None)
        _check(status)

    @classmethod
    def replace_printf_handler(cls, callback: Optional[Callable] = None, user_args: Any = None) -> None:
        """Install (callable) or reset the handler of CA diagnostic messages.

        >>> chan = CaChannel('catest')
        >>> chan.searchw()
        >>> def printfCB(message, _):
        ...     print('CA message:', message)
        >>> chan.replace_printf_handler(printfCB)  # add callback # doctest: +SKIP
        >>> chan.replace_printf_handler() # clear the callback # doctest: +SKIP
        """
        core.context.attach()
        if callable(callback):
            def on_message(message: str) -> None:
                try:
                    callback(message, user_args)
                except Exception:
                    report_callback_error("printf")

            status = ca.replace_printf_handler(on_message)
        else:
            status = ca.replace_printf_handler(None)
        _check(status)
