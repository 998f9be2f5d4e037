"""aio's view of the shared channels: who in which event loop waits for a connection.

Every channel is the process's shared one (``CaChannel.core``): a PV name
maps to one libca channel whatever face, loop or thread uses it. An aio
:class:`Channel` holds one use of it for ``CaChannel.aio`` (all loops
together) and adds what asyncio needs: operations waiting for the connection
in some loop (handed to that loop's :class:`~._dispatch.Dispatcher`), the
subscriptions to tell about connection changes, and the prepared requests.

Connection changes arrive on libca's thread (through the core channel's
listener) and are forwarded to the loops that wait for them.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .. import core
from ._dispatch import Dispatcher, flush
from ._values import Request

__all__ = ["Channel", "Waiter", "CallWaiter", "ChannelInfo", "get_channel", "get_channels", "get_channel_infos", "purge_channel_caches"]


class Waiter:
    """Work for one event loop once a channel is connected (see
    :meth:`Channel.when_connected`): ``waiter(True)`` runs in the loop of
    ``disp`` (its :class:`~._dispatch.Dispatcher`) when the channel
    connects, ``waiter(False)`` if the channel is purged first. Subclasses
    carry what the work needs in their own slots: the waiter is all that is
    queued (no tuple, partial or lambda per waiting operation)."""

    __slots__ = ("disp",)

    def __init__(self, disp: Dispatcher) -> None:
        self.disp = disp

    def __call__(self, ok: bool) -> None:
        raise NotImplementedError


class CallWaiter(Waiter):
    """A :class:`Waiter` that calls ``fn(ok)``."""

    __slots__ = ("fn",)

    def __init__(self, disp: Dispatcher, fn: Callable[[bool], None]) -> None:
        self.disp = disp
        self.fn = fn

    def __call__(self, ok: bool) -> None:
        self.fn(ok)


class Channel:
    """aio's use of one shared channel (used internally).

    ``connected`` follows the shared channel; ``chid`` is its low-level handle,
    ``core`` the :class:`CaChannel.core.Channel` itself.
    """

    # 100,000 of them in a process: no lock, list, set or dict of its own
    # until it needs one (one module lock guards them all, held briefly)
    __slots__ = ("name", "core", "chid", "connected", "_waiters", "_listeners", "requests")

    def __init__(self, name: str, shared: Optional[core.Channel] = None) -> None:
        self.name = name
        self.connected = False
        # the Requests of this connection (the native type may change): None,
        # one (most channels are read one way), or a dict by Request.key
        self.requests: Union[None, Request, Dict[Any, Request]] = None
        # waiter(True) runs in its loop once connected: None, one Waiter, or
        # a list of them (most channels have one at a time: no list for it)
        self._waiters: Union[None, Waiter, List[Waiter]] = None
        # Subscriptions told of connection changes (sub._connection(up) in the
        # libca thread): None, one, or a set (most channels have one at most)
        self._listeners: Any = None
        # ``shared``: a use of the core channel acquired by the caller
        self.core = shared if shared is not None else core.acquire(name, flush=False)
        self.chid = self.core.chid
        # the listener is this object itself (__call__): no bound method per channel
        self.core.add_listener(self, replay=False)
        if self.core.connected:
            self._on_conn(self.core, True)

    def __repr__(self) -> str:
        return "<Channel %r %s>" % (self.name, "connected" if self.connected else "not connected")

    # libca thread
    def _on_conn(self, channel: core.Channel, up: bool) -> None:
        with _lock:
            if up == self.connected and not up:
                return
            self.connected = up
            self.requests = None
            waiters = None
            if up:
                waiters, self._waiters = self._waiters, None
            listeners = _members(self._listeners)
        for waiter in _each(waiters):
            waiter.disp.post(waiter, True)
        for sub in listeners:
            sub._connection(up)

    __call__ = _on_conn

    def when_connected(self, waiter: Waiter) -> bool:
        """Arrange ``waiter(True)`` in its loop once connected.

        Returns ``False`` if the channel is connected now (the caller goes on
        at once, ``waiter`` is not called), else ``True``: the caller passes
        the waiter to :meth:`forget` when it stops waiting (done, cancelled,
        timed out). ``waiter(False)`` is called if the channel is purged first.
        """
        if self.connected:
            return False
        with _lock:
            if self.connected:
                return False
            waiters = self._waiters
            if waiters is None:
                self._waiters = waiter
            elif type(waiters) is list:
                waiters.append(waiter)
            else:
                self._waiters = [waiters, waiter]
            return True

    def forget(self, waiter: Optional[Waiter]) -> None:
        """Drop a waiter of :meth:`when_connected` (cancellation, timeout)."""
        if waiter is None or self._waiters is None:  # (none left: it ran or was never queued)
            return
        with _lock:
            waiters = self._waiters
            if waiters is waiter:
                self._waiters = None
            elif type(waiters) is list:
                try:
                    waiters.remove(waiter)
                except ValueError:  # not (any more) there
                    pass

    def request(self, datatype: Any, format: int) -> Request:
        """The :class:`~._values.Request` of ``(datatype, format)`` for this
        connection, made on first use (in the loop's thread: raises what
        ``Request`` raises, ``CANothing`` if disconnected)."""
        key = (datatype, format)
        reqs = self.requests
        try:
            if type(reqs) is dict:
                found = reqs.get(key)
                if found is not None:
                    return found
            elif reqs is not None and reqs.key == key:
                return reqs
        except (TypeError, ValueError):  # an odd datatype: Request refuses it below
            pass
        req = Request(self.name, self.chid, datatype, format)
        reqs = self.requests  # again: Request() called libca, the connection may have changed
        try:
            if reqs is None:
                self.requests = req
            elif type(reqs) is dict:
                reqs[key] = req
            else:
                self.requests = {reqs.key: reqs, key: req}
        except TypeError:  # unhashable datatype: not kept
            pass
        return req

    def waiter_count(self) -> int:
        """Number of operations waiting for the connection (for tests)."""
        return len(_each(self._waiters))

    def add_listener(self, sub: Any) -> None:
        with _lock:
            listeners = self._listeners
            if listeners is None:
                self._listeners = sub
            elif type(listeners) is set:
                listeners.add(sub)
            elif listeners is not sub:
                self._listeners = {listeners, sub}

    def remove_listener(self, sub: Any) -> None:
        with _lock:
            listeners = self._listeners
            if listeners is sub:
                self._listeners = None
            elif type(listeners) is set:
                listeners.discard(sub)

    def subscriptions(self) -> list:
        with _lock:
            return _members(self._listeners)

    def _purge(self) -> None:
        for sub in self.subscriptions():
            sub.close()
        with _lock:
            waiters, self._waiters = self._waiters, None
        for waiter in _each(waiters):
            waiter.disp.post(waiter, False)
        self.core.remove_listener(self)
        # as aioca closes its channels here: unless another face uses it, the
        # channel is cleared, not kept idle (a channel of a restarted IOC kept
        # open would wait ~10 s in libca's disconnect governor)
        self.core.release(keep_idle=False)


def _members(listeners: Any) -> list:
    """A channel's subscriptions (None, one, or a set) as a new list."""
    if listeners is None:
        return []
    if type(listeners) is set:
        return list(listeners)
    return [listeners]


def _each(waiters: Union[None, Waiter, List[Waiter]]) -> Sequence[Waiter]:
    """The waiters of a ``Channel._waiters`` value as a sequence."""
    if waiters is None:
        return ()
    if type(waiters) is list:
        return waiters
    return (waiters,)  # type: ignore[return-value]


_cache: Dict[str, Channel] = {}
_cache_lock = threading.Lock()
#: guards the waiters, listeners and connected flag of every Channel (never
#: held while calling out)
_lock = threading.Lock()


def get_channel(name: str) -> Channel:
    """The :class:`Channel` of PV ``name``, created (and searched) on first use."""
    chan = _cache.get(name)
    if chan is not None and chan.core.alive:
        return chan
    if not isinstance(name, str):
        raise TypeError("PV name must be a str, not %s" % type(name).__name__)
    with _cache_lock:
        chan = _cache.get(name)
        if chan is None or not chan.core.alive:
            chan = Channel(name)
            _cache[name] = chan
    return chan  # the caller flushes (once for a list of names)


def get_channels(names: Sequence[Any]) -> None:
    """Make sure each ``str`` name of ``names`` has its :class:`Channel`,
    acquiring the missing ones from the core together (one context check,
    one cache lock): a list operation then finds every channel cached.
    Other names are left for :func:`get_channel` to refuse."""
    todo = [n for n in dict.fromkeys(n for n in names if type(n) is str)
            if (c := _cache.get(n)) is None or not c.core.alive]
    if not todo:
        return
    with _cache_lock:
        todo = [n for n in todo if (c := _cache.get(n)) is None or not c.core.alive]
        failed: Dict[Any, Exception] = {}
        shared = core.acquire_many(todo, flush=False, failures=failed)
        for name, ch in zip(todo, shared):
            if ch is not None:
                _cache[name] = Channel(name, ch)


def _forget_all() -> None:
    """The context was replaced (destroyed, fork): every channel here is dead."""
    global _cache_lock, _lock
    _cache.clear()
    _cache_lock = threading.Lock()
    _lock = threading.Lock()


core.context.on_reset(_forget_all)


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
    """Information about every channel used by ``CaChannel.aio`` (all loops).

    >>> import asyncio
    >>> from CaChannel import aio
    >>> _ = asyncio.run(aio.caget('catest'))
    >>> [i.name for i in aio.get_channel_infos() if i.name == 'catest']
    ['catest']
    """
    with _cache_lock:
        chans = list(_cache.values())
    return [ChannelInfo(c.name, c.connected, len(c.subscriptions())) for c in chans]


def purge_channel_caches() -> None:
    """Close every subscription of ``CaChannel.aio`` and end its use of every channel.

    As in aioca, the channels are cleared -- except those another face still
    uses, which stay open for it (``CaChannel.core``). Operations still
    waiting for a connection fail with ``ECA_DISCONN``.
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


def _close_subscriptions_at_exit() -> None:
    """No callback of our subscriptions runs once the interpreter exits.

    libca's subscriptions themselves are left to the end of the context (the
    backend's exit hook stops its callbacks first): clearing 100,000 of them
    one by one took seconds of the exit.
    """
    if not _cache:
        return
    with _cache_lock:
        chans = list(_cache.values())
    for chan in chans:
        for sub in chan.subscriptions():
            try:
                sub._abandon()
            except Exception:
                pass


core.context.at_exit(_close_subscriptions_at_exit)
