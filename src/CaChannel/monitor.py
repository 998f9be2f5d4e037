"""Monitors delivered off libca's thread, and array monitors into a ring of buffers.

Every CA monitor callback normally runs on libca's receive thread: a callback
that takes 20 ms (a plot, a fit, a file write) stalls that thread and with it
every other channel of the same server. The classes here keep user code off
libca's thread. libca's thread only queues the update (the C extension
without the GIL; one intake thread, ``CaChannel-intake``, takes the queued
updates in batches and stores each in its subscription) and a consumer takes
it: either your own thread (pull: :meth:`Subscription.get`, iteration) or a
delivery thread that calls your callback.

Delivery threads are shared: the callbacks of every :func:`subscribe`,
:class:`Monitor` and ``PV(delivery=...)`` run on a small pool of daemon
threads named ``CaChannel-monitor`` (4 unless :func:`set_delivery_threads`
says otherwise), started on first use, so 10,000 subscriptions cost 4
threads, not 10,000. What that means for callbacks:

* the callbacks of one subscription run one at a time and in the order of the
  updates (a subscription is never delivered by two threads at once);
* callbacks of *different* subscriptions may run on the same thread, one
  after the other, and up to 4 of them at the same time; do not rely on
  ``threading.current_thread()`` or thread-local state being a
  subscription's own;
* a worker hands at most ``BATCH`` (16) waiting updates to one callback, then
  turns to the next subscription with updates waiting;
* a callback that blocks or computes for long holds one worker: the others
  keep delivering the other subscriptions, but if every worker is held,
  delivery waits (the updates are kept or dropped by each subscription's
  policy meanwhile, and counted). Raise the number with
  :func:`set_delivery_threads` if several callbacks may block at once.

What is kept when the consumer is slower than the updates is chosen per
subscription by its *policy*:

``"latest"``
    keep only the newest undelivered update; an update replaced before it was
    delivered is counted as dropped.
``"all"``
    a bounded queue (``maxlen`` updates); when it is full the oldest waiting
    update is dropped and counted.

Nothing is lost silently: :attr:`Subscription.stats` (and
:attr:`ArrayMonitor.stats`) always satisfies
``received == delivered + dropped + pending``; after ``close()`` updates that
were still waiting are counted as dropped, so ``pending`` is 0.

Three ways in:

* :func:`subscribe` (the ``ca`` level): like ``ca.create_subscription`` but the
  callback (the same event dict) runs on a delivery thread, or you pull events;
* :class:`Monitor` (the high level): for a :class:`CaChannel.CaChannel` or a
  PV name, the callback gets the ``(epicsArgs, user_args)`` of
  ``CaChannel.add_masked_array_event``;
* :class:`ArrayMonitor`: array updates copied into a ring of preallocated
  numpy buffers, handed out as :class:`Frame` objects (views into the ring).

Example::

    from CaChannel.monitor import ArrayMonitor
    with ArrayMonitor("13SIM1:image1:ArrayData", buffers=4) as mon:
        for frame in mon:              # blocks; ends when mon is closed
            process(frame.array)       # a view into a ring slot, valid until
            if done:                   # the next frame is taken or release()
                break
        print(mon.stats)

The C fast path: an :class:`ArrayMonitor`'s ring is the backend's
``_Ring``, filled by the backend's ``_ring_subscribe``. With the C extension
(``cext/ring.c``) the subscription's event handler is C code that claims a
slot, copies the values straight out of libca's receive buffer and wakes the
consumer, without the GIL and without creating a Python object, so a consumer
busy in Python (holding the GIL) or a slow one never stalls libca's receive
thread and the other channels of that server (``ArrayMonitor.fast_path`` is
then True). With the cffi backend the ring is ``CaChannel._ring.Ring``,
filled by a Python callback on libca's thread with one copy from libca's
buffer: same behaviour, more CPU per frame. The consumer side (``take``,
``give_back``, ``close``, ``stats``, ``set_tag`` and the slot arrays) is the
same for both, and all that :class:`Frame` and :class:`ArrayMonitor` use.
"""
from __future__ import annotations

import atexit
import collections
import math
import threading
import time
from typing import (Any, Callable, Deque, Dict, Iterator, List, NamedTuple, Optional, Sequence,
                    Tuple)

from . import _common, _convert, _delivery, _ring, ca, core
from .core.errors import CaChannelException
from .core.errors import report_callback_error as _report_callback_error
from ._common import enum_or_int as _enum_or_int

try:
    import numpy as _np
except ImportError:  # pragma: no cover - numpy is a dependency of array monitors only
    _np = None  # type: ignore[assignment]

__all__ = ["POLICIES", "set_delivery_threads", "delivery_threads",
           "MonitorStats", "Subscription", "subscribe", "Monitor",
           "Frame", "ArrayMonitor"]

#: the delivery policies
POLICIES = ("latest", "all")

#: updates of one subscription a delivery worker hands to its callback before it
#: turns to the next subscription waiting (the subscription is queued again)
BATCH = 16


def set_delivery_threads(n: int) -> int:
    """Deliver the callbacks of :func:`subscribe`, :class:`Monitor` and
    ``PV(delivery=...)`` on at most ``n`` threads (default 4); returns the
    previous number.

    Raising it lets more callbacks block or compute at the same time; extra
    threads start at once if delivery already started, surplus ones end when
    idle.

    >>> from CaChannel import monitor
    >>> previous = monitor.set_delivery_threads(8)
    >>> monitor.set_delivery_threads(previous)
    8
    """
    return _delivery.set_threads(n)


def delivery_threads() -> int:
    """The number of delivery threads callbacks run on at most (see :func:`set_delivery_threads`)."""
    return _delivery.threads()


#: the thread that closes the live subscriptions at interpreter exit (set when
#: exit starts): its closes leave the subscriptions and channels to the end of
#: the context (100,000 clear+flush round trips through libca's callback lock
#: took 20 s); closes by other threads, still running then, clear as always
_exit_thread: Optional[threading.Thread] = None


def _mark_exiting() -> None:
    global _exit_thread
    _exit_thread = threading.current_thread()


def _closing_at_exit() -> bool:
    return _exit_thread is not None and threading.current_thread() is _exit_thread


# run before core.context closes the live objects (both run LIFO, and core
# registered first): threading's hook runs before non-daemon threads are joined
_register_threading_atexit = getattr(threading, "_register_atexit", None)
try:
    if _register_threading_atexit is not None:
        _register_threading_atexit(_mark_exiting)
    else:  # pragma: no cover - Python < 3.9
        atexit.register(_mark_exiting)
except RuntimeError:  # pragma: no cover - imported during shutdown
    pass


class MonitorStats(NamedTuple):
    """Counters of one subscription.

    ``received == delivered + dropped + pending`` at every instant (read under
    the subscription's lock). ``dropped`` counts updates replaced or pushed out
    by the policy, and after ``close()`` the ones that were still waiting.
    """
    received: int
    delivered: int
    dropped: int
    pending: int


def _check_policy(policy: str, maxlen: int) -> None:
    core.checks.choice(policy, POLICIES, what="policy")
    core.checks.integer(maxlen, what="maxlen", low=1)


def release_quietly(clear: Callable[[], Any]) -> None:
    """Run ``clear`` (clear_subscription calls) and flush, attaching the calling
    thread to the process context if needed (a close at exit or from a thread
    of the user's); errors are ignored, the handles may be dead already."""
    try:
        core.context.attach()
        clear()
        ca.flush_io()
    except Exception:
        pass


class _EventQueue:
    """The policy core of :class:`Subscription`: a lock, a deque, and a
    condition on that lock made by the first thread that waits.

    Most subscriptions have a callback and nobody ever waits on them (a
    ``get()`` of your own, or a ``close()`` waiting for a running callback,
    does): a ``threading.Condition`` per subscription was seven more objects
    for the garbage collector each (100,000 PVs with ``delivery=``: 2.5 of
    the 3.5 s their interpreter exit took)."""

    __slots__ = ("dispatch", "scheduled", "running", "policy", "maxlen", "items", "lock",
                 "_cond", "received", "delivered", "dropped", "closed")

    def __init__(self, policy: str, maxlen: int, dispatch: bool = False) -> None:
        _check_policy(policy, maxlen)
        self.dispatch = dispatch
        #: in the delivery pool's ready queue or being delivered (``dispatch`` only)
        self.scheduled = False
        #: the worker running the subscription's callback now, if any
        self.running: Optional[threading.Thread] = None
        self.policy = policy
        self.maxlen = 1 if policy == "latest" else maxlen
        self.items: Deque[Any] = collections.deque()
        self.lock = threading.Lock()
        self._cond: Optional[threading.Condition] = None
        self.received = self.delivered = self.dropped = 0
        self.closed = False

    def waiter(self) -> threading.Condition:
        """The condition to wait on (call with ``lock`` held)."""
        cond = self._cond
        if cond is None:
            cond = self._cond = threading.Condition(self.lock)
        return cond

    def wake(self) -> None:
        """Wake every waiter, if any (call with ``lock`` held)."""
        if self._cond is not None:
            self._cond.notify_all()

    def put(self, item: Any) -> bool:
        """Store one update (the intake's thread): constant time, no user code.

        True when the caller must hand the subscription to the delivery pool:
        only for a queue made with ``dispatch``, and only when it was idle
        (neither queued in the pool nor being delivered); ``scheduled`` is
        then set here, under the lock, and cleared by the worker under it."""
        with self.lock:
            if self.closed:
                return False
            self.received += 1
            if len(self.items) >= self.maxlen:
                self.items.popleft()
                self.dropped += 1
            self.items.append(item)
            if not self.dispatch:  # a get() may wait (with a callback nobody does)
                self.wake()
            elif not self.scheduled:
                self.scheduled = True
                return True
            return False

    def get(self, seconds: float, chunked: bool = True) -> Tuple[bool, Any]:
        """``(True, item)``, or ``(False, None)`` after ``seconds`` (checked by the
        caller; ``inf``: no limit, waiting in chunks unless not ``chunked``) or
        when closed."""
        deadline = time.monotonic() + seconds
        with self.lock:
            while not self.items:
                if self.closed:
                    return False, None
                if not chunked and math.isinf(seconds):
                    self.waiter().wait()
                    continue
                left = core.checks.remaining(deadline, time.monotonic())
                if left <= 0:
                    return False, None
                self.waiter().wait(min(left, core.checks.CHUNK))
            self.delivered += 1
            return True, self.items.popleft()

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.dropped += len(self.items)
            self.items.clear()
            self.wake()

    def stats(self) -> MonitorStats:
        with self.lock:
            return MonitorStats(self.received, self.delivered, self.dropped, len(self.items))


class Subscription:
    """A CA subscription whose updates are delivered off libca's thread.

    Made by :func:`subscribe`. With a callback, the shared delivery pool
    (:func:`set_delivery_threads` workers, daemon threads named
    ``CaChannel-monitor``, attached to the CA context of the caller of
    :func:`subscribe`) calls ``callback(event)`` with the event dict of
    ``ca.create_subscription``, one update at a time and in order;
    exceptions are printed and swallowed. Without one, take the updates with
    :meth:`get` or by iterating (iteration ends when the subscription is
    closed). Close with :meth:`close` or a ``with`` block; live subscriptions
    are closed at interpreter exit.
    """

    def __init__(self, policy: str = "latest", maxlen: int = 16,
                 callback: Optional[Callable[[Dict[str, Any]], Any]] = None) -> None:
        self._queue = _EventQueue(policy, maxlen, dispatch=callback is not None)
        self._callback = callback
        self._evid: Any = None
        self._context = ca.current_context()
        #: close() waited for a running callback once already
        self._waited = False
        core.context.close_at_exit(self)

    @property
    def policy(self) -> str:
        """``"latest"`` or ``"all"``."""
        return self._queue.policy

    @property
    def stats(self) -> MonitorStats:
        """:class:`MonitorStats` (received, delivered, dropped, pending)."""
        return self._queue.stats()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._queue.closed

    def _on_event(self, args: Dict[str, Any]) -> None:  # the intake's thread (or libca's)
        if self._queue.put(args):
            _delivery.pool().submit(self._context, self._deliver_batch)

    def _start(self) -> None:
        if self._callback is not None:
            _delivery.pool().start()

    def _deliver_batch(self) -> bool:
        """Deliver up to ``BATCH`` waiting updates (a pool worker); True: more are waiting
        (the pool queues this subscription again, behind the others)."""
        queue = self._queue
        callback = self._callback
        me = threading.current_thread()
        for _ in range(BATCH):
            with queue.lock:
                if queue.closed or not queue.items or callback is None:
                    break
                item = queue.items.popleft()
                queue.delivered += 1
                queue.running = me
            try:
                callback(item)
            except BaseException:
                _report_callback_error("monitor")
        with queue.lock:
            queue.running = None
            again = bool(queue.items) and not queue.closed
            if not again:
                queue.scheduled = False
            queue.wake()  # a close() waiting for this callback
        return again

    def get(self, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """The next update's event dict; ``None`` on timeout or once closed.

        ``timeout`` in seconds (``None`` or ``inf``: no limit; NaN, negative
        and non-numbers are refused, as everywhere: ``core.checks.timeout``).
        Not for subscriptions with a callback (the delivery pool takes the updates).
        """
        seconds = core.checks.timeout(timeout, math.inf)
        if self._callback is not None:
            raise RuntimeError("this subscription delivers to its callback")
        ok, item = self._queue.get(seconds)
        return item if ok else None

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        while True:
            item = self.get()
            if item is None:
                return
            yield item

    def close(self, wait: bool = True) -> None:
        """Cancel the CA subscription, count waiting updates as dropped, stop delivery.

        Idempotent. With ``wait`` (default) it waits (up to 5 s) for a
        callback of this subscription in progress to return; called from
        that callback itself it never waits. Updates still waiting are not
        delivered (counted as dropped).
        """
        evid, self._evid = self._evid, None
        if evid is not None and not _closing_at_exit():
            release_quietly(lambda: ca.clear_subscription(evid))
        queue = self._queue
        queue.close()
        if wait:
            deadline = time.monotonic() + 5.0
            with queue.lock:
                # waited for once: a callback still busy after 5 s is not waited
                # for again (exit closes live subscriptions twice)
                while (queue.running is not None and not self._waited
                       and queue.running is not threading.current_thread()):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._waited = True
                        break
                    queue.waiter().wait(left)
        core.context.forget_at_exit(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<Subscription %s %s%s>" % (self.policy, tuple(self.stats),
                                          " closed" if self.closed else "")


def subscribe(chid: Any, callback: Optional[Callable[[Dict[str, Any]], Any]] = None,
              chtype: Optional[int] = None, count: Optional[int] = None,
              mask: Optional[int] = None, use_numpy: bool = False, *,
              policy: str = "latest", maxlen: int = 16) -> Tuple[int, Optional[Subscription]]:
    """``ca.create_subscription`` with delivery off libca's thread.

    Arguments as ``ca.create_subscription`` (``callback`` may be ``None``:
    then pull with :meth:`Subscription.get`), plus ``policy`` (``"latest"`` or
    ``"all"``) and ``maxlen`` (queue bound of ``"all"``). Returns
    ``(ECA, Subscription or None)``; the subscription is queued like any CA
    request (flush or pend to send it). Call from a thread in a CA context;
    the delivery worker attaches to that context, so the callback may call
    ``ca`` functions (blocking ones too: it is not libca's thread).
    """
    callback = core.checks.optional_callback(callback)
    mask = core.checks.mask(mask)
    sub = Subscription(policy, maxlen, callback)
    try:
        status, evid = ca.create_subscription(chid, sub._on_event, chtype, count, mask,
                                              use_numpy, queue=_delivery.intake_queue())
    except BaseException:
        sub._queue.close()
        core.context.forget_at_exit(sub)
        raise
    if status != ca.ECA_NORMAL:
        sub._queue.close()
        core.context.forget_at_exit(sub)
        return status, None
    sub._evid = evid
    sub._start()
    return status, sub


class Monitor:
    """High-level monitor delivered off libca's thread.

    ``source`` is a :class:`CaChannel.CaChannel` (connected, e.g. after
    ``searchw()``) or a PV name (a channel is made and waited for, up to
    ``timeout`` seconds). ``callback(epicsArgs, user_args)`` gets the same
    ``pv_*`` dict as with ``CaChannel.add_masked_array_event``, but on a
    delivery thread; without a callback pull with :meth:`get` (returns that
    dict) or iterate. ``req_type``, ``count``, ``mask`` and ``use_numpy`` are as
    in ``add_masked_array_event``; ``policy`` and ``maxlen`` as in
    :func:`subscribe`. The channel's own ``add_masked_array_event``
    subscription is not touched. Use as a context manager or call
    :meth:`close`.
    """

    def __init__(self, source: Any, callback: Optional[Callable[..., Any]] = None,
                 *user_args: Any, req_type: Optional[int] = None, count: Optional[int] = None,
                 mask: Optional[int] = None, use_numpy: Optional[bool] = None,
                 policy: str = "latest", maxlen: int = 16, timeout: float = 5.0) -> None:
        callback = core.checks.optional_callback(callback)
        _check_policy(policy, maxlen)
        req_type = core.checks.request_type(req_type)
        count = core.checks.count(count)
        mask = core.checks.mask(mask)
        seconds = core.checks.timeout(timeout)
        if isinstance(source, (str, bytes)):
            channel = core.acquire(source)
            if not channel.wait_connected(seconds):
                channel.release()
                raise CaChannelException(ca.ECA_TIMEOUT, "%r did not connect within %.3g s"
                                         % (channel.name, seconds))
        else:
            shared = getattr(source, "core_channel", None)
            if not isinstance(shared, core.Channel):
                raise TypeError("source must be a searched CaChannel or a PV name, not %s"
                                % type(source).__name__)
            channel = core.acquire(shared.name, shared.priority)
        #: the shared channel this monitor uses (``CaChannel.core``); None once closed
        self.channel: Optional[core.Channel] = channel
        numpy_flag = _convert.use_numpy(use_numpy)
        self._numpy = numpy_flag
        self._user_callback = callback
        self._user_args = user_args
        deliver = None if callback is None else self._deliver
        try:
            core.context.attach()
            status, sub = subscribe(channel.chid, deliver, req_type, count, mask, numpy_flag,
                                    policy=policy, maxlen=maxlen)
        except BaseException:
            channel.release()
            raise
        if sub is None:
            channel.release()
            raise CaChannelException(status, "subscription to %r" % channel.name)
        ca.flush_io()
        self._sub = sub
        core.context.close_at_exit(self)

    def _epics_args(self, event: Dict[str, Any]) -> Dict[str, Any]:
        return _convert.epics_args(event, self._numpy)

    def _deliver(self, event: Dict[str, Any]) -> None:
        callback = self._user_callback
        if callback is not None:   # always: a monitor without one is never delivered to
            callback(self._epics_args(event), self._user_args)

    @property
    def stats(self) -> MonitorStats:
        """:class:`MonitorStats` (received, delivered, dropped, pending)."""
        return self._sub.stats

    @property
    def policy(self) -> str:
        """``"latest"`` or ``"all"``."""
        return self._sub.policy

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (as :attr:`Subscription.closed`)."""
        return self._sub.closed

    def get(self, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """The next update as an ``epicsArgs`` dict; ``None`` on timeout or once closed."""
        event = self._sub.get(timeout)
        return None if event is None else self._epics_args(event)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        for event in self._sub:
            yield self._epics_args(event)

    def close(self) -> None:
        """Cancel the subscription and end this monitor's use of the channel. Idempotent."""
        self._sub.close()
        channel, self.channel = self.channel, None
        if channel is not None and not _closing_at_exit():
            channel.release()
        core.context.forget_at_exit(self)

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- array monitors

def _request_for(dtype: Any, field_type: int) -> Tuple[Any, Any, int]:
    """(user dtype, wire dtype, DBR_TIME_* request type) for a dtype or the field type
    (the type table of ``_common``)."""
    if dtype is None:
        if int(field_type) not in _common.DBF_NUMPY:
            raise ValueError("field type %s has no numeric array dtype"
                             % (getattr(ca.DBF(int(field_type)), "name", "") or field_type))
        dtype = _common.DBF_NUMPY[int(field_type)]
    user = _np.dtype(dtype)
    if user.name not in _common.DTYPE_REQUEST:
        raise ValueError("dtype %s is not supported (use one of %s)"
                         % (user, ", ".join(sorted(_common.DTYPE_REQUEST))))
    plain, wire = _common.DTYPE_REQUEST[user.name]
    return user, wire, int(_common.in_family(plain, "time"))


def _new_ring(buffers: int, capacity: int, dtype: Any, policy: str, ntag: int) -> Any:
    """The backend's ring (C: filled without the GIL), or the Python one for
    an ordinary subscription when ``_USE_FAST_RING`` is off."""
    ring_type = ca._Ring if _USE_FAST_RING else _ring.Ring
    return ring_type(buffers, max(int(capacity), 1), dtype, policy, ntag)


#: False: new ArrayMonitors take their updates through an ordinary
#: subscription callback into the Python ring (the tests' and benchmarks'
#: comparison with the backend's own ``_ring_subscribe``)
_USE_FAST_RING = True


class Frame:
    """One array update: a view into a ring slot plus its metadata.

    ``array`` is valid until the frame is released: explicitly with
    :meth:`release` (or leaving a ``with frame:`` block), or implicitly when the
    consumer takes the next frame of the same monitor. After that ``array``
    raises ``ValueError``, and arrays obtained from it earlier see the slot
    being overwritten: copy (``frame.array.copy()``) what you keep.

    Attributes: ``seq`` (1-based number of the update among all received by
    the monitor: gaps are updates dropped by the policy), ``timestamp`` (the
    server's time stamp, POSIX seconds as a float), ``status`` (``ca.AlarmCondition``), ``severity`` (``ca.AlarmSeverity``),
    ``count`` (elements received), ``tag`` (the tuple of integers the monitor
    was told with :meth:`ArrayMonitor.set_tag` before this update arrived, e.g.
    the image metadata of :class:`CaChannel.areadetector.ImageReader`; None for
    a monitor without tags).
    """

    __slots__ = ("_sink", "_slot", "_array", "seq", "timestamp", "status", "severity",
                 "count", "tag", "__weakref__")

    def __init__(self, sink: Any, slot: int, dtype: Any) -> None:
        self._sink: Any = sink
        self._slot = slot
        self.count = int(sink.counts[slot])
        self.seq = int(sink.seqs[slot])
        self.timestamp = float(sink.stamps[slot])
        self.status = _enum_or_int(ca.AlarmCondition, int(sink.alarm[slot, 0]))
        self.severity = _enum_or_int(ca.AlarmSeverity, int(sink.alarm[slot, 1]))
        tags = sink.tagvals[slot]
        self.tag: Optional[Tuple[int, ...]] = tuple(tags.tolist()) if tags.shape[0] else None
        view = sink.data[slot, :self.count]
        self._array = view if view.dtype == dtype else view.view(dtype)

    @property
    def array(self) -> Any:
        """The data: a 1-D numpy view into the ring slot (``count`` elements)."""
        if self._sink is None:
            raise ValueError("frame %d was released; its slot may hold another frame now"
                             % self.seq)
        return self._array

    @property
    def released(self) -> bool:
        """True once the slot went back to the ring."""
        return self._sink is None

    def release(self) -> None:
        """Give the slot back to the ring (idempotent)."""
        sink, self._sink = self._sink, None
        if sink is not None:
            self._array = None
            sink.give_back(self._slot)

    def __enter__(self) -> "Frame":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return "<Frame seq=%d count=%d t=%.6f %s>" % (
            self.seq, self.count, self.timestamp, "released" if self._sink is None else "held")


class ArrayMonitor:
    """Monitor an array PV into a ring of ``buffers`` preallocated numpy buffers.

    ``ArrayMonitor(name, buffers=4, dtype=None, count=None, policy="latest")``
    connects to ``name`` (waiting up to ``timeout`` s, ``TimeoutError``
    otherwise), allocates ``buffers`` slots of ``count`` elements (default: the
    channel's native element count) and subscribes with ``DBR_TIME_*``. Each
    update is copied into a free slot on libca's thread; no user code runs
    there. With the C extension backend that copy is C code that runs without
    the GIL and creates no Python object (:attr:`fast_path` is True); with the
    cffi backend it is Python on libca's thread. Take frames by iterating
    (blocks; ends when closed) or with
    :meth:`get`; each is a :class:`Frame` whose ``array`` views its slot until
    the next frame is taken or it is released.

    ``dtype``: numpy dtype of the frames, default from the field type.
    ``uint16`` is requested as ``DBR_ENUM`` (2 bytes a pixel on the wire, CA has
    no unsigned short), ``int8``/``uint8`` as ``DBR_CHAR``, ``uint32`` as
    ``DBR_LONG`` viewed unsigned. ``count=None`` subscribes with count 0, so
    variable-length arrays arrive with their current length.

    ``policy``: ``"latest"`` (only the newest undelivered frame is kept) or
    ``"all"`` (up to ``buffers - 1`` frames wait; when none is free the oldest
    waiting is dropped). :attr:`stats` counts received/delivered/dropped/pending
    exactly. Disconnections are counted in :attr:`disconnects` and listed in
    :attr:`outages` (``(down, up)`` ``time.time()`` pairs, ``up`` None while
    down); libca re-subscribes by itself on reconnection and the frames go on
    (``seq`` keeps counting). One consumer thread per monitor: taking a
    frame releases the previous one, whoever holds it. Use as a context manager or call
    :meth:`close` (live monitors are closed at interpreter exit).

    ``tag``: a sequence of up to 16 integers attached to every frame (as
    ``Frame.tag``, a tuple) until changed with :meth:`set_tag`; ``set_tag``
    called from a callback of another channel of the same server (libca's
    thread for that server) is ordered with this channel's updates, which is
    how :class:`CaChannel.areadetector.ImageReader` gives every image the
    metadata that came with it.

    ``priority``: the CA priority of the channel, 1 by default. libca opens
    one TCP circuit per (server, priority), so a monitor at priority 1 has a
    circuit of its own, apart from the channels made with the default
    priority 0 (``CaChannel``, ``util``, PV objects): megabyte frames then
    never queue, in the server or in the client, ahead of the scalar updates
    of the same server. Give 0 to share the default circuit.

    Example (``ca:wave:SHORT`` is a SHORT waveform of the test IOC)::

        >>> from CaChannel.monitor import ArrayMonitor
        >>> with ArrayMonitor("ca:wave:SHORT", buffers=3, tag=(42,)) as mon:
        ...     frame = mon.get(timeout=5)     # the subscription's first update
        ...     print(frame.array.dtype, frame.seq, frame.tag, mon.capacity)
        ...     frame.release()                # the slot goes back to the ring
        ...     print(mon.stats)
        int16 1 (42,) 10
        MonitorStats(received=1, delivered=1, dropped=0, pending=0)
    """

    def __init__(self, name: str, buffers: int = 4, dtype: Any = None,
                 count: Optional[int] = None, policy: str = "latest", *,
                 timeout: float = 5.0, mask: Optional[int] = None,
                 tag: Optional[Sequence[int]] = None, priority: int = 1) -> None:
        if _np is None:
            raise ImportError("ArrayMonitor needs numpy")
        _check_policy(policy, 1)
        buffers = core.checks.integer(buffers, what="buffers", low=2)
        count = core.checks.count(count, allow_zero=False)
        mask = core.checks.mask(mask)
        seconds = core.checks.timeout(timeout)
        self.name = name
        self.policy = policy
        self.disconnects = 0
        #: ``[(down, up), ...]``: ``time.time()`` of each disconnection and reconnection
        self.outages: List[Tuple[float, Optional[float]]] = []
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._channel: Optional[core.Channel] = None
        self._evid: Any = None
        self._current: Optional[Frame] = None
        self._closed = False
        channel = self._channel = core.acquire(name, priority)
        channel.add_listener(self._on_connection)
        try:
            if not core.checks.wait_event(self._connected, seconds):
                raise TimeoutError("%s did not connect within %g s" % (name, seconds))
            native = channel.native_count or 1
            self.dtype, wire, self.request_type = _request_for(dtype, channel.native_type)
            capacity = native if count is None else min(count, native)
            ntag = 0 if tag is None else len(tag)
            self._sink = _new_ring(buffers, capacity, wire, policy, ntag)
            if tag is not None:
                self._sink.set_tag(tag)
            sub_count = 0 if count is None else capacity
            if _USE_FAST_RING:   # C: libca's thread copies into the ring without the GIL
                status, evid = channel.ring_subscribe(self._sink, self.request_type, sub_count,
                                                      mask)
            else:
                status, evid = channel.subscribe(self._on_event, self.request_type, sub_count,
                                                 mask, True)
            if status != ca.ECA_NORMAL:
                raise CaChannelException(status, "subscription to %s" % name)
            self._evid = evid
            ca.flush_io()
        except BaseException:
            channel.remove_listener(self._on_connection)
            channel.release()
            self._channel = None
            raise
        core.context.close_at_exit(self)

    # libca's thread ------------------------------------------------------
    def _on_connection(self, channel: core.Channel, up: bool) -> None:
        if up:
            if self.outages and self.outages[-1][1] is None:
                self.outages[-1] = (self.outages[-1][0], time.time())
            self._connected.set()
        else:
            self._connected.clear()
            self.disconnects += 1
            self.outages.append((time.time(), None))

    def _on_event(self, args: Dict[str, Any]) -> None:
        value = args.get("value")
        if args.get("status") != ca.ECA_NORMAL or not isinstance(value, dict):
            return  # no data (read access lost): not a frame
        stamp = value.get("stamp") or {}
        self._sink.offer(value["value"], args["count"], value.get("status", 0),
                         value.get("severity", 0), stamp.get("timestamp", 0.0))

    # consumer side ------------------------------------------------------
    @property
    def stats(self) -> MonitorStats:
        """:class:`MonitorStats`: received, delivered, dropped, pending."""
        return MonitorStats(*self._sink.stats())

    @property
    def fast_path(self) -> bool:
        """True when C code fills the ring on libca's thread without the GIL."""
        return not isinstance(self._sink, _ring.Ring)

    def set_tag(self, values: Sequence[int]) -> None:
        """Attach these integers (as many as ``tag`` had) to the frames that arrive from now on."""
        self._sink.set_tag(values)

    @property
    def buffers(self) -> int:
        """Number of ring slots."""
        return int(self._sink.data.shape[0])

    @property
    def capacity(self) -> int:
        """Elements per ring slot."""
        return self._sink.capacity

    @property
    def connected(self) -> bool:
        """Whether the channel is connected now."""
        return self._connected.is_set()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def get(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The next frame, releasing the previous one; ``None`` on timeout or once closed.

        ``timeout`` follows ``core.checks.timeout`` (``None`` or ``inf``: no limit)."""
        seconds = core.checks.timeout(timeout, math.inf)
        self.release()
        slot = self._sink.take(None if math.isinf(seconds) else seconds)
        if slot is None:
            return None
        frame = Frame(self._sink, slot, self.dtype)
        self._current = frame
        return frame

    def release(self) -> None:
        """Release the frame last handed out (if any) so its slot can be refilled."""
        frame, self._current = self._current, None
        if frame is not None:
            frame.release()

    def __iter__(self) -> "ArrayMonitor":
        return self

    def __next__(self) -> Frame:
        frame = self.get()
        if frame is None:
            raise StopIteration
        return frame

    def close(self) -> None:
        """Cancel the subscription, clear the channel, wake a waiting consumer.

        Frames still waiting are counted as dropped. A frame held by the
        consumer stays readable until released (its buffer stays alive).
        Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        channel, self._channel = self._channel, None
        evid, self._evid = self._evid, None
        if channel is not None:
            if evid is not None:
                release_quietly(lambda: channel.unsubscribe(evid))
            channel.remove_listener(self._on_connection)
            channel.release()
        sink = getattr(self, "_sink", None)
        if sink is not None:
            sink.close()
        core.context.forget_at_exit(self)

    def __enter__(self) -> "ArrayMonitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<ArrayMonitor %r %s buffers=%d %s%s>" % (
            self.name, self.policy, self.buffers, tuple(self.stats),
            " closed" if self._closed else "")
