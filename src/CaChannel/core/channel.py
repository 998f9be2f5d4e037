"""One libca channel per (PV name, priority), shared by every face.

:func:`acquire` is the only way a face gets a channel: it returns the
:class:`Channel` of ``(name, priority)`` from the one process-wide cache,
creating (and searching) it on first use, and counts the caller as a user.
Each face keeps its own per-object state (its callbacks, its subscriptions)
and listens to the channel for connection and access-rights changes; the
libca channel, its connection state and its native type/count/host are the
channel's, read once per connection.

Releasing (one policy for every face):

* :meth:`Channel.release` ends one use. A channel that is no longer used
  stays open, *idle*, in the cache, so the next use of the name finds it
  connected: creating and clearing channels per call is slow and walks into
  libca's 10 s "disconnect governor" (clearing the last channel to a server
  closes its circuit; a channel searched meanwhile lands on the dying circuit
  and waits 10 s). See README, Reliability.
* Exceptions: a channel that never connected is cleared when its last user
  lets go (there is nothing to reuse and libca would go on searching for it);
  and when more than :data:`IDLE_LIMIT` channels are idle, the longest idle
  ones are cleared.
* :func:`close_idle` clears every idle channel now; :meth:`Channel.close`
  clears one for good whoever uses it (its users see it disconnected, and
  their next :func:`acquire` of the name makes a new one).

Threads and locks: ``_cache_lock`` guards the cache and is never taken on
libca's threads, so a face may hold it while calling libca (``create_channel``
takes libca's locks). Connection and access callbacks run on libca's thread
with the GIL and take only ``_cond`` (briefly, to wake waiters) and never call
back into libca themselves; the listeners they call may.

>>> ch = acquire('catest')
>>> ch.wait_connected(3)
True
>>> ch.connected, ch.native_type, ch.native_count
(True, <DBF.DOUBLE: 6>, 1)
>>> acquire('catest') is ch   # one channel per (name, priority)
True
>>> ch.release(); ch.release()
>>> ch.users, ch.connected    # idle but still open
(0, True)
"""
from __future__ import annotations

import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .. import ca
from . import checks, context
from .errors import CaChannelException, report_callback_error

__all__ = ["Channel", "WeakRelay", "acquire", "acquire_many", "release_many", "wait_all", "close_idle", "channels", "IDLE_LIMIT"]

#: most idle (unused) channels kept open; beyond it the longest idle are cleared.
#: Large enough for a list read of 100,000 names to leave them all open: clearing
#: them costs a libca call each and the next read of the names a new search.
IDLE_LIMIT = 100000

_CONN_UP = int(ca.CA_OP_CONN_UP)
_NORMAL = ca.ECA_NORMAL

ConnectionListener = Callable[["Channel", bool], None]
AccessListener = Callable[["Channel", bool, bool], None]


class Channel:
    """One libca channel: ``(name, priority)``, its handle and its connection state.

    Attributes (read them, do not set them):

    * ``name``, ``priority``, ``chid`` (the low-level handle);
    * ``connected`` (bool), ``ever_connected`` (bool);
    * ``native_type`` (``ca.DBF`` member), ``native_count`` -- of the
      current (or last) connection, ``None`` before the first; ``host`` (of
      the current connection, read from libca on first use);
    * ``read_access``, ``write_access`` (bool: from libca's access callback
      once an access listener is added, else libca's current rights);
    * ``users`` (faces' objects holding it), ``closed`` (cleared for good, or
      dead because its context was destroyed or inherited across fork).

    Listeners run on libca's thread (or, when added to a connected channel
    with ``replay``, at once in the adding thread): a connection listener as
    ``fn(channel, up)``, an access listener as ``fn(channel, read, write)``.
    """

    __slots__ = ("name", "priority", "chid", "generation", "connected", "ever_connected",
                 "native_type", "native_count", "_host", "_read", "_write",
                 "users", "closed", "_listeners", "_access_listeners", "_access_on", "_states",
                 "_watched", "__weakref__")

    def __init__(self, name: str, priority: int) -> None:
        self.name = name
        self.priority = priority
        self.chid: Any = None
        self.generation = context.generation()
        self.connected = False
        self.ever_connected = False
        self.native_type: Any = None
        self.native_count: Optional[int] = None
        self._host: Optional[str] = None
        self._read = False
        self._write = False
        self.users = 0
        self.closed = False
        # None, one listener, or a tuple of two or more (see _members): most
        # channels have one, and a tuple of one was an object per channel
        self._listeners: Any = None
        self._access_listeners: Any = None
        # libca's access-rights handler is installed with the first access
        # listener: most channels never need it (a libca call and a callback
        # per channel saved when connecting 100,000)
        self._access_on = False
        self._states: Optional[tuple] = None  # enum state strings of this connection
        # a wait_all() waits for this channel now: only then does its
        # connection wake the waiters (not on each of 100,000 connections)
        self._watched = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else "connected" if self.connected else "not connected"
        prio = "" if not self.priority else ", priority=%d" % self.priority
        return "<Channel %r%s %s, %d users>" % (self.name, prio, state, self.users)

    # ------------------------------------------------------- libca's thread
    def _on_connection(self, args: Dict[str, Any]) -> None:
        up = args.get("op") == _CONN_UP
        if self.chid is None:  # connected inside create_channel (a server in this process)
            self.chid = args.get("chid")
        if up:
            # only what every face needs now, and read by the backend before
            # it took the GIL: a ca call here would release and take back the
            # GIL on libca's receive thread, which then waits for a busy loop
            # or thread to let go of it (host and access rights are read when
            # asked for)
            chid = self.chid
            native_type = chid.native_type
            if native_type is None:  # not the chid of this connection: cleared meanwhile
                return
            self.native_type = native_type
            self.native_count = chid.native_count
            self._host = None
            self.ever_connected = True
        self._states = None
        self.connected = up
        if self._watched:  # read after `connected` is set: see wait_all
            self._watched = False
            _wake()
        for fn in _members(self._listeners):
            try:
                fn(self, up)
            except Exception:
                report_callback_error("connection")

    def __call__(self, args: Dict[str, Any]) -> None:
        """libca's connection callback and access-rights handler of this
        channel are the channel itself, told apart by their dict's keys: no
        bound method object per channel (100,000 channels in one process)."""
        if "read_access" in args:
            self._on_access(args)
        else:
            self._on_connection(args)

    @property
    def host(self) -> Optional[str]:
        """``'host:port'`` of the server of the current connection (read on
        first use), ``None`` before the first connection."""
        host = self._host
        if host is None and self.ever_connected:
            try:
                host = self._host = ca.host_name(self.chid)
            except Exception:  # cleared
                return None
        return host

    @property
    def read_access(self) -> bool:
        """Read access (from libca's access callback when an access listener
        is installed, else libca's current value)."""
        return self._rights(ca.read_access, self._read)

    @property
    def write_access(self) -> bool:
        """Write access (see :attr:`read_access`)."""
        return self._rights(ca.write_access, self._write)

    def _rights(self, ask: Callable[[Any], Any], heard: bool) -> bool:
        if self._access_on:
            return heard
        try:
            return bool(ask(self.chid))
        except Exception:  # cleared
            return False

    def _on_access(self, args: Dict[str, Any]) -> None:
        read, write = bool(args.get("read_access")), bool(args.get("write_access"))
        self._read, self._write = read, write
        for fn in _members(self._access_listeners):
            try:
                fn(self, read, write)
            except Exception:
                report_callback_error("access rights")

    # ------------------------------------------------------------ listeners
    def add_listener(self, fn: ConnectionListener, replay: bool = True) -> None:
        """Call ``fn(channel, up)`` on every connection change; with ``replay``
        also once soon (``up=True``) if the channel is connected now.

        The replay comes from the core's replay thread, not from the adding
        thread, as libca's own first connection callback would: the caller
        may hold locks the listener takes.
        """
        with _listener_lock:
            self._update("_listeners", fn, True)
            up = self.connected
        if replay and up:
            _replays.post(self, fn)

    def remove_listener(self, fn: ConnectionListener) -> None:
        """Stop calling ``fn`` (no error if it was not added)."""
        self._update("_listeners", fn, False)

    def _update(self, attr: str, fn: Any, add: bool) -> None:
        """Add ``fn`` to (or remove it from) the listeners ``attr``.

        Building the new tuple allocates, so a garbage collection may run in
        the middle and with it a face object's ``__del__``, which removes that
        object's listeners -- from this same thread, maybe on this same
        channel. The lock is reentrant for that reason (a plain lock hung the
        test run there), and the new tuple is only stored if no such nested
        change replaced the old one meanwhile; otherwise it is built again.
        """
        with _listener_lock:
            while True:
                old = getattr(self, attr)
                new = _with(old, fn) if add else _without(old, fn)
                if getattr(self, attr) is old:
                    setattr(self, attr, new)
                    return

    def add_access_listener(self, fn: AccessListener, replay: bool = True) -> None:
        """Call ``fn(channel, read, write)`` on every access-rights change; with
        ``replay`` also at once (in the calling thread) if the channel is
        connected now -- without ``replay``, ``fn`` may still be called at once
        when this is the channel's first access listener (libca calls its new
        handler with the current rights)."""
        with _listener_lock:
            self._update("_access_listeners", fn, True)
            up = self.connected
            install = not self._access_on
            self._access_on = True
        if install:
            try:
                context.attach()
                # libca calls the handler at once (this thread) if connected
                ca.replace_access_rights_event(self.chid, self)
                return
            except Exception:  # a dead channel: nothing to listen to
                return
        if replay and up:
            fn(self, self.read_access, self.write_access)

    def remove_access_listener(self, fn: AccessListener) -> None:
        """Stop calling ``fn``."""
        self._update("_access_listeners", fn, False)

    # -------------------------------------------------------------- waiting
    def wait_connected(self, timeout: Any = None, default: float = 3.0) -> bool:
        """Wait until connected, at most ``timeout`` s (:func:`checks.timeout`:
        ``None`` is ``default``, ``inf`` no limit); True if connected."""
        seconds = checks.timeout(timeout, default)
        return wait_all((self,), seconds)

    @property
    def alive(self) -> bool:
        """False once cleared for good or dead with its context."""
        return not self.closed and self.generation == context.generation()

    def state(self) -> Any:
        """libca's ``ca.ChannelState`` of the channel (``CLOSED`` once dead)."""
        if self.chid is None or self.closed:
            return ca.ChannelState.CLOSED
        try:
            return ca.state(self.chid)
        except ValueError:
            return ca.ChannelState.CLOSED

    # ------------------------------------------------------------- requests
    def get(self, req_type: Optional[int] = None, count: Optional[int] = None,
            callback: Optional[Callable] = None, use_numpy: bool = False,
            out: Any = None) -> Tuple[Any, Any]:
        """``ca.get`` on this channel (not flushed): ``(status, DBRValue)``."""
        context.attach()
        if out is None:
            return ca.get(self.chid, req_type, count, callback, use_numpy)
        return ca.get(self.chid, req_type, count, callback, use_numpy, out)

    def put(self, value: Any, req_type: Optional[int] = None, count: Optional[int] = None,
            callback: Optional[Callable] = None) -> Any:
        """``ca.put`` on this channel (not flushed): the status."""
        context.attach()
        return ca.put(self.chid, value, req_type, count, callback)

    def subscribe(self, callback: Callable, req_type: Optional[int] = None,
                  count: Optional[int] = None, mask: Optional[int] = None,
                  use_numpy: bool = False) -> Tuple[Any, Any]:
        """``ca.create_subscription`` on this channel (not flushed): ``(status, evid)``."""
        context.attach()
        return ca.create_subscription(self.chid, callback, req_type, count, mask, use_numpy)

    def ring_subscribe(self, ring: Any, req_type: int, count: Optional[int] = None,
                       mask: Optional[int] = None) -> Tuple[Any, Any]:
        """The backend's ring subscription (``ca._ring_subscribe``): libca's thread
        copies each update into ``ring`` (a ``ca._Ring``); ``(status, evid)``."""
        context.attach()
        return ca._ring_subscribe(self.chid, ring, req_type, count, mask)

    def enum_states(self, timeout: float) -> Optional[tuple]:
        """The enum state strings (read once per connection), ``None`` if they
        cannot be read within ``timeout`` s. Not from libca's threads."""
        states = self._states
        if states is not None:
            return states
        done = threading.Event()
        result: Dict[str, Any] = {}

        def on_get(args: Dict[str, Any]) -> None:
            result.update(args)
            done.set()

        try:
            status, _ = self.get(ca.DBR_GR_ENUM, 1, on_get)
            if status != _NORMAL:
                return None
            ca.flush_io()
        except Exception:
            return None
        if not done.wait(timeout):
            return None
        value = result.get("value")
        if result.get("status") != _NORMAL or not isinstance(value, dict):
            return None
        self._states = tuple(value.get("strs", ()))
        return self._states

    def precheck_put(self, value: Any, req_type: Optional[int], timeout: float,
                     label: Optional[str] = None) -> None:
        """Refuse, before anything is sent, a write the server would refuse:
        no write access, a string longer than the 39 bytes of a string field,
        an enum state name that is not one of the PV's states. Raises
        :class:`CaChannelException` naming the PV; does nothing while
        disconnected (the write itself reports that). Reads the states
        (once per connection): not from libca's threads."""
        label = label or repr(self.name)
        chid = self.chid
        try:
            if ca.state(chid) != ca.cs_conn:
                return
        except ValueError:
            return
        if not ca.write_access(chid):
            raise CaChannelException(ca.ECA_NOWTACCESS, "%s is read-only (no write access)" % label)
        if not isinstance(value, (str, bytes)):
            return
        ftype = ca.field_type(chid)
        target = ftype if req_type is None else req_type
        if ftype == ca.DBF_CHAR and target in (ca.DBF_CHAR, ca.DBR_CHAR):
            return
        raw = value.encode("utf-8") if isinstance(value, str) else value
        if target in (ca.DBR_STRING, ca.DBR_ENUM) and len(raw) > 39:
            raise CaChannelException(
                ca.ECA_STRTOBIG, "%r has %d bytes, more than the 39 a string of %s holds"
                % (value, len(raw), label))
        if ftype == ca.DBF_ENUM and target in (ca.DBR_STRING, ca.DBR_ENUM):
            states = self.enum_states(timeout)
            if states is None:
                return
            text = raw.decode("utf-8", "replace")
            if text in states:
                return
            try:
                index = int(text.strip())
            except ValueError:
                index = -1
            if 0 <= index < max(len(states), 1):
                return
            raise CaChannelException(
                ca.ECA_BADSTR, "%r is not a state of %s (states: %r)" % (value, label, states))

    @staticmethod
    def unsubscribe(evid: Any) -> Any:
        """``ca.clear_subscription`` (not flushed): the status."""
        context.attach()
        return ca.clear_subscription(evid)

    # ------------------------------------------------------------ releasing
    def release_later(self) -> None:
        """:meth:`release` at the next acquire/release of any thread: for
        ``__del__`` methods, which may run on libca's thread (garbage
        collection in a callback), where taking the cache lock could deadlock."""
        _deferred.append(self)

    def release(self, keep_idle: bool = True) -> None:
        """End one use (see the module's release policy). Idempotent past zero.

        ``keep_idle=False``: if this was the last use, clear the channel now
        instead of keeping it idle (``aio.purge_channel_caches`` does, as
        aioca closes its channels there).
        """
        if _deferred:
            _drain_deferred()
        with _cache_lock:
            victims = self._drop_use(keep_idle)
        _clear(victims)

    def _drop_use(self, keep_idle: bool) -> List["Channel"]:
        """One use less (caller holds ``_cache_lock``); the channels to clear."""
        if self.users > 0:
            self.users -= 1
        if self.users or self.closed:
            return []
        key = _key(self.name, self.priority)
        if _cache.get(key) is not self:
            return []
        if not self.ever_connected or not keep_idle:
            del _cache[key]
            return [self]
        _idle[key] = self
        victims = []
        while len(_idle) > IDLE_LIMIT:
            _, old = _idle.popitem(last=False)
            _cache.pop(_key(old.name, old.priority), None)
            victims.append(old)
        return victims

    def close(self) -> None:
        """Clear the libca channel now, for every user (they see it disconnected)."""
        with _cache_lock:
            key = _key(self.name, self.priority)
            if _cache.get(key) is self:
                del _cache[key]
            _idle.pop(key, None)
        _clear([self])


class _Replays:
    """One daemon thread that tells listeners added to a connected channel
    that it is up (started on first use, again in a fork child)."""

    def __init__(self) -> None:
        self._queue: "deque[Tuple[Channel, ConnectionListener]]" = deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: Optional[threading.Thread] = None

    def post(self, channel: Channel, fn: ConnectionListener) -> None:
        with self._cond:
            self._queue.append((channel, fn))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="CaChannel-replay",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                channel, fn = self._queue.popleft()
            # only if still connected and still listening
            if channel.connected and fn in _members(channel._listeners):
                try:
                    fn(channel, True)
                except Exception:
                    report_callback_error("connection")


_replays = _Replays()


def _members(listeners: Any) -> Tuple[Any, ...]:
    """A channel's listeners (None, one, or a tuple) as a tuple."""
    if listeners is None:
        return ()
    if type(listeners) is tuple:
        return listeners
    return (listeners,)


def _with(listeners: Any, fn: Any) -> Any:
    """``listeners`` (None, one, or a tuple) and ``fn`` after them."""
    if listeners is None:
        return fn
    return _members(listeners) + (fn,)


def _without(listeners: Any, fn: Any) -> Any:
    """``listeners`` (None, one, or a tuple) without ``fn``."""
    if type(listeners) is not tuple:  # None or one: no tuple built
        return None if listeners is None or listeners == fn else listeners
    rest = tuple(f for f in listeners if f != fn)
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else rest


_ABSENT: Any = object()  # WeakRelay.__call__: an argument not given
_deref = weakref.ref.__call__


class WeakRelay(weakref.ref):
    """A face object's listeners on a channel, holding the object weakly.

    ``WeakRelay(obj, "on_conn", "on_access", "on_event")`` calls
    ``obj.on_conn(channel, up)``, ``obj.on_access(channel, read, write)`` and
    ``obj.on_event(args)`` while ``obj`` lives: a channel's listeners must not
    keep a face's object (a PV, a 3.x ``CaChannel``) alive, or its
    ``__del__`` -- which releases its use -- would never run.

    The relay itself is all three callables, told apart by the number of
    arguments: the connection listener (two), the access listener (three) and
    the subscription callback of ``ca.create_subscription`` (one). No bound
    method per face object, and the relay is its own weak reference (a
    ``weakref.ref`` subclass) instead of holding one: 100,000 of them in a
    process, and the garbage collector visits every object (at interpreter
    exit too). :meth:`target` is the object (None once it is gone).

    >>> class Face:
    ...     def on_conn(self, channel, up): print("up" if up else "down")
    >>> face = Face()
    >>> relay = WeakRelay(face, "on_conn", "on_access")
    >>> relay(None, True)
    up
    >>> relay.target() is face
    True
    >>> WeakRelay(face, "on_conn", "on_access") == relay  # each relay is its own listener
    False
    >>> del face
    >>> relay(None, True), relay.target()
    (None, None)
    """

    __slots__ = ("connection_method", "access_method", "event_method")

    def __new__(cls, obj: Any, connection_method: str, access_method: str,
                event_method: Optional[str] = None) -> "WeakRelay":
        return weakref.ref.__new__(cls, obj)

    def __init__(self, obj: Any, connection_method: str, access_method: str,
                 event_method: Optional[str] = None) -> None:
        super().__init__(obj)
        self.connection_method = connection_method
        self.access_method = access_method
        self.event_method = event_method

    # identity, not weakref.ref's equality of the referents: removing one
    # relay of an object must not remove another relay of the same object
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    #: the face object (None once it is gone): ``weakref.ref``'s own call,
    #: which ``__call__`` below takes over for the listeners
    target = _deref

    def __call__(self, a: Any, b: Any = _ABSENT, c: Any = _ABSENT) -> None:  # type: ignore[override]
        obj = _deref(self)
        if obj is None:
            return
        if b is _ABSENT:
            getattr(obj, self.event_method)(a)  # type: ignore[arg-type]
        elif c is _ABSENT:
            getattr(obj, self.connection_method)(a, b)
        else:
            getattr(obj, self.access_method)(a, b, c)

    def listen(self, channel: "Channel", replay_connection: bool = True) -> None:
        """Add both listeners to ``channel`` (access first, replayed at once if
        connected, so a replayed connection finds the access rights set)."""
        channel.add_access_listener(self)
        channel.add_listener(self, replay=replay_connection)

    def stop(self, channel: "Channel") -> None:
        """Remove both listeners from ``channel``."""
        channel.remove_listener(self)
        channel.remove_access_listener(self)

    def finalize(self, channel: "Channel", evid: Any = None) -> None:
        """For the object's ``__del__``: stop listening, cancel its plain
        subscription ``evid`` (if any) and release its use of ``channel``
        later (``__del__`` may run on libca's thread, see
        :meth:`Channel.release_later`). Never raises."""
        try:
            self.stop(channel)
            if evid is not None and channel.alive:
                ca.clear_subscription(evid)
        except Exception:
            pass
        channel.release_later()


def _drain_deferred() -> None:
    while True:
        try:
            ch = _deferred.popleft()
        except IndexError:
            return
        ch.release()


def _clear(victims: Sequence[Channel]) -> None:
    """Clear the channels of ``victims`` in libca and tell their listeners."""
    if not victims:
        return
    live = [ch for ch in victims if not ch.closed]
    for ch in live:
        ch.closed = True
    if not live or context.is_exiting():
        return
    context.attach()
    for ch in live:
        was_up, ch.connected = ch.connected, False
        try:
            ca.clear_channel(ch.chid)
        except Exception:
            pass
        if was_up:
            for fn in _members(ch._listeners):
                try:
                    fn(ch, False)
                except Exception:
                    report_callback_error("connection")
    _wake()
    try:
        ca.flush_io()
    except Exception:
        pass


# keyed by _key(name, priority)
_cache: Dict[Any, Channel] = {}
_idle: "OrderedDict[Any, Channel]" = OrderedDict()


def _key(name: str, priority: int) -> Any:
    """The cache key of ``(name, priority)``: the name itself for priority 0
    (nearly every channel: no key tuple kept per channel), else the pair."""
    return (name, priority) if priority else name


_cache_lock = threading.Lock()
_deferred: "deque[Channel]" = deque()
_listener_lock = threading.RLock()  # reentrant: see Channel._update
_cond = threading.Condition(threading.Lock())
_waiting = 0


def _wake() -> None:
    if _waiting:
        with _cond:
            _cond.notify_all()


def _create(name: str, priority: int) -> Channel:
    """A new channel in the cache (caller holds ``_cache_lock``), search started."""
    ch = Channel(name, priority)
    status, chid = ca.create_channel(name, ch, priority)
    if status != _NORMAL:
        raise CaChannelException(status, "cannot create a channel for %r" % (name,))
    ch.chid = chid
    _cache[_key(name, priority)] = ch
    return ch


def _lookup(name: str, priority: int) -> Channel:
    """Cache hit (made alive) or a new channel; counts one user. Holds ``_cache_lock``."""
    key = _key(name, priority)
    ch = _cache.get(key)
    if ch is not None and ch.generation == context.generation() and not ch.closed:
        if ch.users == 0:
            _idle.pop(key, None)
        ch.users += 1
        return ch
    ch = _create(name, priority)
    ch.users = 1
    return ch


def acquire(name: Any, priority: Any = 0, *, flush: bool = True) -> Channel:
    """The channel of ``(name, priority)``, created on first use; counts one user.

    ``name`` is a ``str`` (``bytes`` are decoded as UTF-8). A new channel is
    flushed (``ca_flush_io``) unless ``flush=False``; libca's search timer
    sends its search either way (the context is preemptive), so callers
    making many channels pass ``flush=False`` and spare a system call and a
    GIL hand-off each. Every :func:`acquire` needs one :meth:`Channel.release`.
    """
    name = checks.pv_name(name)
    prio = checks.priority(priority)
    context.attach(check=True)
    if _deferred:
        _drain_deferred()
    with _cache_lock:
        ch = _lookup(name, prio)
    if flush and not ch.connected:
        ca.flush_io()
    return ch


def acquire_many(names: Iterable[Any], priority: Any = 0, *, flush: bool = True,
                 failures: Optional[Dict[Any, CaChannelException]] = None) -> List[Any]:
    """:func:`acquire` for every name (one user each, duplicates counted twice),
    with one context check, one cache lock and one flush for all of them.

    A name that cannot be searched (bad name, libca refuses the channel)
    raises, releasing the channels acquired so far -- unless ``failures`` is
    a dict: then that name maps to its exception there and its place in the
    returned list is ``None``. The flush is skipped with ``flush=False``.

    >>> chans = acquire_many(['catest', 'cabo'])
    >>> wait_all(chans, 3), [ch.name for ch in chans]
    (True, ['catest', 'cabo'])
    >>> failed = {}
    >>> acquire_many([''], failures=failed), list(failed)
    ([None], [''])
    >>> release_many(chans)
    """
    prio = checks.priority(priority)
    context.attach(check=True)
    if _deferred:
        _drain_deferred()
    out: List[Any] = []
    try:
        with _cache_lock:
            for raw in names:
                try:
                    out.append(_lookup(checks.pv_name(raw), prio))
                except (CaChannelException, TypeError, ValueError) as exc:
                    if failures is None:
                        raise
                    failures[raw] = exc
                    out.append(None)
    except BaseException:
        release_many(out)
        raise
    if flush:
        ca.flush_io()
    return out


def release_many(chans: Iterable[Optional[Channel]], keep_idle: bool = True) -> None:
    """:meth:`Channel.release` of every channel (``None`` entries skipped),
    with one cache lock and one flush for those it clears."""
    if _deferred:
        _drain_deferred()
    victims: List[Channel] = []
    with _cache_lock:
        for ch in chans:
            if ch is not None:
                victims += ch._drop_use(keep_idle)
    _clear(victims)


def wait_all(chans: Sequence[Channel], timeout: float) -> bool:
    """Wait until every channel of ``chans`` is connected, at most ``timeout``
    seconds (``inf``: no limit); True if they all are."""
    global _waiting
    if all(ch.connected for ch in chans):
        return True
    if timeout <= 0:
        return False
    deadline = time.monotonic() + timeout
    # The scan goes on from the first channel not yet seen connected (a scan
    # of all channels per wake-up would make waiting for n channels O(n^2));
    # the whole list is checked again before saying yes (one may have
    # disconnected behind the scan). Only that first channel's connection
    # wakes the waiter: it is marked _watched *before* its state is read
    # here, and libca's thread sets `connected` before it reads the mark, so
    # either this thread sees it connected or libca's thread sees the mark.
    n = len(chans)
    seen = 0
    with _cond:
        _waiting += 1
        try:
            while True:
                while seen < n and chans[seen].connected:
                    seen += 1
                if seen == n:
                    if all(ch.connected for ch in chans):
                        return True
                    seen = 0
                    continue
                ch = chans[seen]
                if ch.closed:  # cleared: it will not connect
                    return False
                ch._watched = True
                if ch.connected:
                    continue
                left = checks.remaining(deadline, time.monotonic())
                if left <= 0:
                    return False
                _cond.wait(min(left, checks.CHUNK))
        finally:
            _waiting -= 1


def close_idle() -> int:
    """Clear every idle channel now; returns how many."""
    if _deferred:
        _drain_deferred()
    with _cache_lock:
        victims = list(_idle.values())
        _idle.clear()
        for ch in victims:
            _cache.pop(_key(ch.name, ch.priority), None)
    _clear(victims)
    return len(victims)


def channels() -> List[Channel]:
    """Every channel in the cache (in use or idle), e.g. for diagnostics.

    >>> ch = acquire('catest')
    >>> ch in channels()
    True
    >>> ch.release()
    """
    if _deferred:
        _drain_deferred()
    with _cache_lock:
        return list(_cache.values())


def _reset() -> None:
    """The context is gone (destroyed, or fork): every cached channel is dead.

    Runs without ``_cache_lock`` (in a fork child a parent thread may have
    held it): the cache is swapped for an empty one in one step.
    """
    global _cache, _idle
    dead, _cache, _idle = _cache, {}, OrderedDict()
    for ch in dead.values():
        ch.closed = True
        ch.connected = False


def _after_fork_child() -> None:
    global _cache_lock, _listener_lock, _cond, _waiting, _replays
    _replays = _Replays()
    _cache_lock = threading.Lock()
    _listener_lock = threading.RLock()  # reentrant: see Channel._update
    _cond = threading.Condition(threading.Lock())
    _waiting = 0


context.on_reset(_reset)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)
