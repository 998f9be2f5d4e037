"""Python-side handles of the cffi backend: channels, subscriptions, contexts
(the twin of ``cext/handles.c``).

libca frees its C objects on clear, so each handle records whether it is
still valid; every API function checks that before touching the pointer.
A call on a channel holds it (:func:`held`) so that a ``clear_channel`` from
another thread, or from Python code the call runs, is carried out by the
last holder (:data:`pending_clears`); :func:`forget` marks a channel and its
subscriptions dead; :data:`context_gens` and :data:`dead_contexts` track
which contexts are alive. Every API call and every callback is counted in
flight (:func:`counted`, :func:`callback_enter`) so that the exit hook can
wait for them before it destroys contexts (:func:`close`).
libca hands back only an opaque ``void *usr`` with each callback: it carries
a *token*, an integer key into :data:`registry`, never a Python pointer, so a
late or stray callback can at worst miss the registry, never dereference a
dead object.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterator, Optional, Set, Tuple, TypeVar

from ._bindings import ffi, lib

#: token -> the Python object a libca callback belongs to
registry: Dict[int, Any] = {}
_tokens = itertools.count(1)
_token_lock = threading.Lock()


def new_token(obj: Any) -> int:
    """Register ``obj`` and return its token (an int usable as ``void *usr``)."""
    with _token_lock:
        token = next(_tokens)
    registry[token] = obj
    return token


def token_of(ptr) -> int:
    return int(ffi.cast("uintptr_t", ptr))


def as_usr(token: int):
    return ffi.cast("void *", token)


#: address of a live libca channel -> its chid object (for exception callbacks,
#: whose chid may belong to any channel; looking it up never dereferences it)
live_channels: Dict[int, "chid"] = {}


class chid:
    """A channel created by ``create_channel``.

    Compares and hashes by identity: callbacks receive this same object.
    """

    __slots__ = ("_ptr", "_name", "_token", "conn_callback", "access_callback",
                 "subscriptions", "pending", "inuse", "holders", "_ctx", "_dead",
                 "_clear_ptr", "_native_type", "_native_count", "__weakref__")

    def __init__(self, name: str):
        self._ptr = None
        # address of the context it belongs to
        self._ctx = 0
        # why it is no longer valid: "cleared", "context" (destroy_context), "fork"
        self._dead = "cleared"
        # a clear_channel that came while the channel was in use: the last
        # user calls ca_clear_channel with this pointer (see _held)
        self._clear_ptr = None
        # libca calls on this channel in flight (GIL released): clear_channel
        # waits for them before libca frees the chid
        self.inuse = 0
        # thread id -> its holds (destroy_context waits for other threads')
        self.holders: Dict[int, int] = {}
        self._name = name
        self._token = 0
        self.conn_callback = None
        self.access_callback = None
        self.subscriptions: Set["evid"] = set()
        self.pending: Set[int] = set()
        # native type (DBF) and count at the last connection seen by the
        # connection callback (None before): as the C extension's chid
        self._native_type: Any = None
        self._native_count: Optional[int] = None

    @property
    def valid(self) -> bool:
        return self._ptr is not None

    @property
    def native_type(self) -> Any:
        """DBF type at the last connection seen by the connection callback (None before)."""
        return self._native_type

    @property
    def native_count(self) -> Optional[int]:
        """Element count at the last connection seen by the connection callback (None before)."""
        return self._native_count

    def __repr__(self) -> str:
        state = "cleared" if self._ptr is None else hex(token_of(self._ptr))
        return "<chid %r %s>" % (self._name, state)


class evid:
    """A subscription created by ``create_subscription``."""

    __slots__ = ("_ptr", "channel", "callback", "use_numpy", "augment", "queue", "pv_callback",
                 "_token", "__weakref__")

    def __init__(self, channel: chid, callback, use_numpy: bool):
        self._ptr = None
        self.channel = channel
        self.callback = callback
        self.use_numpy = use_numpy
        #: (cls, attrs) of create_subscription(augment=...), or None
        self.augment = None
        #: the EventQueue of create_subscription(queue=...), or None
        self.queue = None
        #: (fn, user_args) of create_subscription(pv_callback=...), or None
        self.pv_callback = None
        self._token = 0

    @property
    def valid(self) -> bool:
        return self._ptr is not None and self.channel.valid

    def __repr__(self) -> str:
        return "<evid of %r%s>" % (self.channel._name, "" if self.valid else " cleared")


#: address -> generation of the contexts known to be alive (see Context)
context_gens: Dict[int, int] = {}
_gens = itertools.count(1)
#: bumped in a child after fork: contexts made before are the parent's
fork_epoch = [0]


def dead_text(reason: str) -> str:
    """The ValueError text for a channel that is no longer valid."""
    if reason == "context":
        return "the channel's context has been destroyed (destroy_context)"
    if reason == "fork":
        return ("the channel was created in the parent process before fork(); "
                "create a new channel in this process")
    return "the channel has been cleared"


class Context:
    """A libca client context (``ca_client_context *``).

    Alive while its address maps to its generation in ``context_gens``:
    destroy_context forgets the address (libca may reuse it for a new
    context, which gets a new generation), fork forgets them all.
    """

    __slots__ = ("_ptr", "_gen", "_epoch")

    def __init__(self, ptr):
        self._ptr = ptr
        address = token_of(ptr)
        gen = context_gens.get(address)
        if gen is None:
            gen = context_gens[address] = next(_gens)
        self._gen = gen
        self._epoch = fork_epoch[0]

    def live_ptr(self):
        """The ``ca_client_context *``; ValueError if destroyed or inherited across fork."""
        if self._epoch != fork_epoch[0]:
            raise ValueError("this CA context was inherited from the parent process across "
                             "fork(); it cannot be used in the child (the first CA call in "
                             "the child creates a new context)")
        if context_gens.get(self.address) != self._gen:
            raise ValueError("this CA context has been destroyed (destroy_context); a new "
                             "one is made by create_context or on demand by the next CA call")
        return self._ptr

    @property
    def address(self) -> int:
        return token_of(self._ptr)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Context) and other.address == self.address
                and other._gen == self._gen and other._epoch == self._epoch)

    def __hash__(self) -> int:
        return hash(self.address)

    def __repr__(self) -> str:
        return "<ca context %s>" % hex(self.address)


def current_context_address() -> int:
    return token_of(lib.ca_current_context())


#: addresses of contexts destroyed here and not seen alive since: another
#: thread that was attached to one still has it as its current context in
#: libca's thread-private slot (ca_context_destroy only detaches the calling
#: thread), a dangling pointer libca would use on that thread's next call
dead_contexts: Set[int] = set()


def detach_if_destroyed() -> None:
    """Before create/attach_context: drop a current context destroyed by another thread."""
    if dead_contexts and token_of(lib.ca_current_context()) in dead_contexts:
        lib.ca_detach_context()


# ---------------------------------------------------------------------------
# Channels in use, deferred clear

# guards the in-use counts of channels (held only for the count update);
# replaced in a child after fork (see reset_after_fork)
use_lock = threading.Lock()

#: channels whose clear_channel came while they were in use (id -> chid)
pending_clears: Dict[int, chid] = {}


@contextlib.contextmanager
def held(ch: Optional[chid]) -> Iterator[Tuple[Optional[chid], Any]]:
    """``(channel, chid pointer)`` of a live channel, counted in use meanwhile.

    ``ch`` is what ``_args.get_channel`` made of the caller's argument.
    Yields ``(None, None)`` for None or a cleared channel. While a channel is
    in use, clear_channel does not free it: it marks it dead and the last
    user calls ``ca_clear_channel`` on leaving, so the pointer stays valid
    through the whole call, even when Python code run by the call (a value's
    ``__float__``, a finalizer) clears the channel in this same thread.
    Such code may also destroy the channel's context, so the body checks
    ``ch._ptr`` again after running Python code and before each libca call.
    """
    ptr = None
    if ch is not None:
        me = threading.get_ident()
        with use_lock:
            ptr = ch._ptr
            if ptr is not None:
                ch.inuse += 1
                ch.holders[me] = ch.holders.get(me, 0) + 1
    try:
        yield (ch, ptr) if ptr is not None else (None, None)
    finally:
        if ptr is not None:
            with use_lock:
                ch.inuse -= 1
                left = ch.holders.get(me, 1) - 1
                if left:
                    ch.holders[me] = left
                else:
                    ch.holders.pop(me, None)
                pending = ch._clear_ptr if ch.inuse == 0 else None
                if pending is not None:
                    ch._clear_ptr = None
                    pending_clears.pop(id(ch), None)
            if pending is not None:
                lib.ca_clear_channel(pending)


def forget(ch: chid, reason: str = "cleared") -> list:
    """Mark ``ch`` and its subscriptions dead and unregister their callbacks.

    Returns the Python objects they held. The caller drops them only after it
    released ``use_lock`` (and, in clear_channel, after libca let go of the
    channel): dropping the last reference to a callback runs finalizers, such
    as a ``CaChannel.__del__`` that clears another channel, and those must
    find every handle touched here already dead.
    """
    ptr = ch._ptr
    ch._ptr = None
    ch._dead = reason
    dropped = [registry.pop(ch._token, None), ch.conn_callback, ch.access_callback]
    ch.conn_callback = ch.access_callback = None
    if ptr is not None:
        live_channels.pop(token_of(ptr), None)
    for sub in ch.subscriptions:
        sub._ptr = None
        dropped.append(registry.pop(sub._token, None))
    dropped.extend(ch.subscriptions)
    ch.subscriptions.clear()
    dropped.extend(registry.pop(token, None) for token in ch.pending)
    ch.pending.clear()
    return dropped


def reset_after_fork() -> list:
    """In a child after fork: every inherited handle dead (reason "fork"),
    contexts forgotten, locks replaced, the registry emptied.

    Returns the Python objects the handles held, for the caller to drop last
    (their finalizers must find every inherited handle dead).
    """
    global use_lock, _token_lock, _flights_lock
    fork_epoch[0] += 1
    context_gens.clear()
    dead_contexts.clear()
    # a lock another parent thread held at fork time stays held for ever
    use_lock = threading.Lock()
    _token_lock = threading.Lock()
    _flights_lock = threading.Lock()
    # the other threads, and the calls they were in, are gone
    me = _flight()
    for f in list(_flights):
        if f is not me:
            f.n = 0
    inherited = list(live_channels.values())
    for ch in inherited + list(pending_clears.values()):
        ch.inuse = 0   # the threads that used them are gone
        ch.holders.clear()
    dropped = [forget(ch, "fork") for ch in inherited]
    for ch in pending_clears.values():
        ch._clear_ptr = None
    pending_clears.clear()
    dropped.append(list(registry.values()))
    registry.clear()
    return dropped


# ---------------------------------------------------------------------------
# Calls and callbacks in flight, interpreter exit
#
# The exit hook destroys the contexts made here (so that no libca thread
# calls into a finalising interpreter). A thread still inside libca on such
# a context when it is destroyed (ca_flush_io, ca_pend_io...) uses freed
# memory, and so does its next call: the thread stays attached to the
# destroyed context. So every API call counts itself in flight here, and
# from the moment the hook started a thread's next call is refused (the
# thread is parked); the hook waits, bounded, for the calls and callbacks
# already in flight before it destroys anything.


class _Flight:
    """One thread's API calls plus libca callbacks in progress (written only
    by that thread; read by the exit hook)."""

    __slots__ = ("n", "__weakref__")

    def __init__(self) -> None:
        self.n = 0


_local = threading.local()
#: every thread's _Flight (a thread's goes when the thread ends)
_flights: "weakref.WeakSet[_Flight]" = weakref.WeakSet()
# guards _flights (registration and the exit hook's scan)
_flights_lock = threading.Lock()
#: set by the exit hook (close): callbacks return at once and other threads'
#: new API calls are refused
closing = False
_closer: Optional[_Flight] = None

#: how long a refused thread waits for the process to end before its call
#: raises RuntimeError (only reached when something keeps the process
#: alive after the exit hook, such as a later atexit hook joining it)
PARK_SECONDS = 3.0


def _flight() -> _Flight:
    """The calling thread's _Flight."""
    try:
        return _local.flight
    except AttributeError:
        f = _local.flight = _Flight()
        with _flights_lock:
            _flights.add(f)
        return f


def _refuse() -> None:
    """A new API call once the exit hook started, from a thread not already
    inside a call or callback the hook waits for: the thread waits, GIL
    released, for the process to end (as Python stops daemon threads at
    exit); RuntimeError after ``PARK_SECONDS`` if it has not."""
    time.sleep(PARK_SECONDS)
    raise RuntimeError("Channel Access is shut down: the interpreter is exiting")


F = TypeVar("F", bound=Callable[..., Any])


def counted(func: F) -> F:
    """Decorator of the API functions that call libca: the call is counted in
    flight while it runs, or refused (:func:`_refuse`) once the exit hook
    started. The count comes before the test of ``closing`` (the hook sets
    ``closing`` before it reads the counts), so no call slips through."""
    @functools.wraps(func)
    def counted_call(*args, **kwargs):
        try:
            f = _local.flight
        except AttributeError:
            f = _flight()
        f.n += 1
        if closing and f.n == 1 and f is not _closer:
            f.n -= 1
            _refuse()
        try:
            return func(*args, **kwargs)
        finally:
            f.n -= 1
    return counted_call  # type: ignore[return-value]


def callback_enter() -> bool:
    """Count a libca callback on this thread; False (touch nothing, return at
    once) once the exit hook started."""
    f = _flight()
    f.n += 1
    if closing:
        f.n -= 1
        return False
    return True


def callback_leave() -> None:
    _local.flight.n -= 1


def close(bound: float) -> bool:
    """The exit hook started: refuse new calls and callbacks, then wait (GIL
    released, at most ``bound`` s) until no other thread is inside an API
    call or a callback. True when none is left: contexts may be destroyed."""
    global closing, _closer
    _closer = _flight()
    closing = True
    deadline = time.monotonic() + bound
    while True:
        with _flights_lock:
            busy = any(f.n > 0 for f in _flights if f is not _closer)
        if not busy:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)
