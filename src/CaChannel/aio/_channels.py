"""The channel cache: one CA channel per PV name, shared by every loop and the sync API.

All channels live in the process-wide preemptive context of the synchronous
API (:class:`CaChannel.CaChannel`). A PV name maps to one :class:`Channel`,
whatever loop or thread uses it, and the channel is the very one the
synchronous helpers of :mod:`CaChannel.util` use:

* if ``CaChannel.util`` already holds a channel for the name (in its cache
  ``util._channels_``), that ``CaChannel`` object is adopted (its connection
  callback is set to ours; util's channels have none);
* otherwise a ``CaChannel`` is created here (``search_and_connect``) and, on
  its first connection, entered into ``util._channels_`` so that a later
  ``util.caget(name)`` uses it instead of opening a second channel.

Connection changes arrive in a libca thread; they are forwarded to the loops
that wait for them through each loop's :class:`~._dispatch.Dispatcher`.
"""
from __future__ import annotations

import atexit
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import ca
from .._channel import CaChannel
from ._dispatch import Dispatcher, attach, flush

__all__ = ["Channel", "ChannelInfo", "get_channel", "get_channel_infos", "purge_channel_caches"]

_CONN = ca.ChannelState.CONN


class SharedCaChannel(CaChannel):
    """A :class:`CaChannel.CaChannel` that ``CaChannel.aio`` also uses.

    Its :meth:`clear_channel`, called by the synchronous side (e.g. when
    ``CaChannel.util`` empties its cache), lets go of the channel without
    closing it while ``CaChannel.aio`` still uses it; otherwise it closes it
    as usual. (A ``CaChannel`` of ``util`` that aio adopts becomes one.)
    """

    def clear_channel(self) -> None:
        name = self.pvname
        held = _cache.get(name) if isinstance(name, str) else None
        if held is not None and held.chan is self:
            return
        super().clear_channel()


def _util():
    from .. import util
    return util


class Channel:
    """One CA channel and who waits for it (used internally).

    ``connected`` follows libca's connection callbacks. ``chan`` is the
    :class:`CaChannel.CaChannel` object owning the chid, ``chid`` the low-level
    handle.
    """

    __slots__ = ("name", "chan", "chid", "connected", "_lock", "_waiters", "_listeners",
                 "_owned", "requests")

    def __init__(self, name: str) -> None:
        self.name = name
        self.connected = False
        #: (datatype, format) -> Request, valid while connected (the native type may change)
        self.requests: Dict[Any, Any] = {}
        self._lock = threading.Lock()
        # (dispatcher, fn): fn(True) runs in that loop once connected
        self._waiters: List[Tuple[Dispatcher, Callable[[bool], None]]] = []
        self._listeners: set = set()  # Subscriptions: _connection(up) in the libca thread
        util = _util()
        chan = getattr(util, "_channels_", {}).get(name)
        if type(chan) not in (CaChannel, SharedCaChannel) or chan._chid is None:
            chan = None
        self._owned = chan is None
        if chan is None:
            chan = SharedCaChannel(name)
            self.chan = chan
            chan.search_and_connect(None, self._on_conn)
        else:
            chan.__class__ = SharedCaChannel  # util closing it must not close ours
            self.chan = chan
            chan.change_connection_event(self._on_conn)
            self.connected = chan.state() == _CONN
        self.chid = chan._chid

    def __repr__(self) -> str:
        return "<Channel %r %s>" % (self.name, "connected" if self.connected else "not connected")

    # libca thread
    def _on_conn(self, epics_args: Tuple[Any, Any], _user_args: Any) -> None:
        up = epics_args[1] == ca.CA_OP_CONN_UP
        with self._lock:
            self.connected = up
            self.requests = {}
            waiters: list = []
            if up:
                waiters, self._waiters = self._waiters, []
            listeners = list(self._listeners)
        for disp, fn in waiters:
            disp.post(fn, True)
        for sub in listeners:
            sub._connection(up)
        if up and self._owned:
            self._share()

    def _share(self) -> None:
        """Offer our channel to ``CaChannel.util`` (once, if it has none)."""
        util = _util()
        cache = getattr(util, "_channels_", None)
        if cache is None or self.name in cache:
            return
        lock = getattr(util, "_cache_lock", None)
        if lock is None:
            cache.setdefault(self.name, self.chan)
            return
        with lock:
            cache.setdefault(self.name, self.chan)

    def when_connected(self, disp: Dispatcher, fn: Callable[[bool], None]) -> Optional[tuple]:
        """Arrange ``fn(True)`` in ``disp``'s loop once connected.

        Returns ``None`` if the channel is connected now (the caller goes on
        at once, ``fn`` is not called), else a token for :meth:`forget`.
        ``fn(False)`` is called if the channel is purged first.
        """
        if self.connected:
            return None
        with self._lock:
            if self.connected:
                return None
            entry = (disp, fn)
            self._waiters.append(entry)
            return entry

    def forget(self, entry: Optional[tuple]) -> None:
        """Drop a waiter of :meth:`when_connected` (cancellation, timeout)."""
        if entry is None:
            return
        with self._lock:
            try:
                self._waiters.remove(entry)
            except ValueError:
                pass

    def waiter_count(self) -> int:
        """Number of operations waiting for the connection (for tests)."""
        return len(self._waiters)

    def add_listener(self, sub: Any) -> None:
        with self._lock:
            self._listeners.add(sub)

    def remove_listener(self, sub: Any) -> None:
        with self._lock:
            self._listeners.discard(sub)

    def subscriptions(self) -> list:
        with self._lock:
            return list(self._listeners)

    def _purge(self) -> None:
        for sub in self.subscriptions():
            sub.close()
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for disp, fn in waiters:
            disp.post(fn, False)
        util = _util()
        cache = getattr(util, "_channels_", {})
        shared = cache.get(self.name) is self.chan
        if shared and self._owned:
            # ours, only offered to util: take it back and close it, as aioca
            # closes its channels here (kept open, a channel of a restarted
            # IOC waits ~10 s for libca's reconnection; util opens a new one)
            with getattr(util, "_cache_lock", _cache_lock):
                if cache.get(self.name) is self.chan:
                    del cache[self.name]
            shared = False
        try:
            if shared:
                self.chan.change_connection_event(None)
            else:
                self.chan.clear_channel()
        except Exception:
            pass


_cache: Dict[str, Channel] = {}
_cache_lock = threading.Lock()


def get_channel(name: str) -> Channel:
    """The :class:`Channel` of PV ``name``, created (and searched) on first use."""
    chan = _cache.get(name)
    if chan is not None:
        return chan
    if not isinstance(name, str):
        raise TypeError("PV name must be a str, not %s" % type(name).__name__)
    attach()
    with _cache_lock:
        chan = _cache.get(name)
        if chan is None:
            chan = Channel(name)
            _cache[name] = chan
    return chan  # the caller flushes (once for a list of names)


class ChannelInfo:
    """What :func:`get_channel_infos` tells about one channel.

    Attributes: ``name`` (PV name), ``connected`` (bool), ``subscriber_count``
    (live :class:`Subscription` objects on it).
    """

    def __init__(self, name: str, connected: bool, subscriber_count: int) -> None:
        self.name = name
        self.connected = connected
        self.subscriber_count = subscriber_count

    def __repr__(self) -> str:
        return "ChannelInfo(%r, connected=%r, subscriber_count=%d)" % (
            self.name, self.connected, self.subscriber_count)


def get_channel_infos() -> List[ChannelInfo]:
    """Information about every channel opened by ``CaChannel.aio`` (all loops).

    >>> import asyncio
    >>> from CaChannel import aio
    >>> _ = asyncio.run(aio.caget('catest'))
    >>> [i.name for i in aio.get_channel_infos() if i.name == 'catest']
    ['catest']
    """
    with _cache_lock:
        chans = list(_cache.values())
    return [ChannelInfo(c.name, c.connected, len(c._listeners)) for c in chans]


def purge_channel_caches() -> None:
    """Close every subscription and forget every channel of ``CaChannel.aio``.

    Channels that the synchronous ``CaChannel.util`` opened (and aio adopted)
    stay open for it; the channels aio opened are cleared, as aioca does (also
    when util used them since: its next use opens a new one). Operations
    still waiting for a connection fail with ``ECA_DISCONN``.
    """
    with _cache_lock:
        chans = list(_cache.values())
        _cache.clear()
    for chan in chans:
        chan._purge()
    try:
        flush()
    except Exception:
        pass


@atexit.register
def _close_subscriptions_at_exit() -> None:
    """Stop libca's events for our subscriptions before the interpreter goes."""
    if not _cache:
        return
    try:
        attach()
    except Exception:
        pass
    with _cache_lock:
        chans = list(_cache.values())
    for chan in chans:
        for sub in chan.subscriptions():
            try:
                sub._shutdown()
            except Exception:
                pass
    if chans and not sys.is_finalizing():
        try:
            flush()
        except Exception:
            pass
