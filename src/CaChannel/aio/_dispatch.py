"""Handing libca events to asyncio event loops, batched.

libca runs our callbacks in its own threads. Calling
``loop.call_soon_threadsafe`` for every event would write to the loop's
self-pipe once per event; instead every loop has one :class:`Dispatcher`:
an event is appended to its queue and the loop is woken only if no wake-up
is pending yet, so a burst of events costs one wake-up and one pass of
:meth:`Dispatcher._drain` in the loop.

Works with any loop that implements ``call_soon_threadsafe`` (asyncio's own
loops, uvloop), with several loops in several threads, and after a loop was
closed: posting to a closed loop drops the event silently.
"""
from __future__ import annotations

import asyncio
import collections
import functools
import threading
import weakref
from typing import Any, Callable, Optional, Tuple

from .. import ca, core

__all__ = ["Dispatcher", "dispatcher", "attach"]

_tls = threading.local()

#: events taken from the loop's EventQueue per wake-up (see _take_events)
_TAKE = 256


def attach() -> None:
    """Attach the calling thread to the process's shared CA context (``CaChannel.core``).

    A thread that made a context of its own is moved to the shared one (with
    a ``RuntimeWarning``). Cheap after the first call in a thread.
    """
    core.context.attach()


class Dispatcher:
    """The event queue of one event loop (see the module docstring)."""

    __slots__ = ("_loop", "_queue", "_pending", "closed", "wakeups", "_events",
                 "_no_events", "_flush_scheduled", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # weak: the registry maps loops to dispatchers weakly, and a closed
        # loop must be able to go away
        self._loop = weakref.ref(loop)
        self._queue: collections.deque = collections.deque()
        self._pending = False
        #: set once the loop refused a wake-up (it is closed): events are dropped
        self.closed = False
        #: number of times the loop was woken for this dispatcher's work: a
        #: post from another thread, or a batch taken from the event queue
        self.wakeups = 0
        self._events: Any = None  # the loop's ca.EventQueue, made on first use
        self._no_events = False   # the loop cannot watch one (no add_reader, Windows)
        self._flush_scheduled = False

    @property
    def loop(self) -> Optional[asyncio.AbstractEventLoop]:
        """The event loop (None once it has been garbage collected)."""
        return self._loop()

    def post(self, fn: Callable, *args: Any) -> None:
        """Run ``fn(*args)`` in the loop soon. Safe from any thread."""
        if self.closed:
            return
        self._queue.append((fn, args))
        loop = self._loop()
        if loop is None:
            self.closed = True
            self._queue.clear()
        elif not self._pending:
            # Two libca threads may both see False here; the second wake-up
            # then finds an empty queue, which is harmless.
            self._pending = True
            self.wakeups += 1
            try:
                loop.call_soon_threadsafe(self._drain)
            except Exception:  # RuntimeError: the loop is closed
                self.closed = True
                self._queue.clear()
        elif loop.is_closed():  # closed with a wake-up pending: it never comes
            self.closed = True
            self._queue.clear()

    def event_queue(self) -> Any:
        """The loop's ``ca.EventQueue`` for subscriptions (made and watched on
        first use, in the loop's thread), or None where the loop cannot watch
        a file descriptor: subscriptions then call back on libca's thread.

        Its events are taken in the loop, a batch per wake-up: libca's thread
        only queues them, without the GIL (C extension), instead of handing
        the GIL back and forth with the loop for every event of a burst.
        """
        q = self._events
        if q is None and not self._no_events:
            loop = self._loop()
            try:
                q = ca.EventQueue()
                loop.add_reader(q.fileno(), self._take_events)  # type: ignore[union-attr]
            except (AttributeError, NotImplementedError, OSError, RuntimeError):
                self._no_events = True
                return None
            self._events = q
        return q

    def replier(self, fn: Callable, *args: Any) -> Tuple[Callable, Any]:
        """``(callback, queue)`` for a get/put whose reply is to run
        ``fn(*args, reply)`` in the loop. Call in the loop's thread.

        Where the loop has an :meth:`event_queue`, the reply waits there
        (``ca.get``/``ca.put`` with ``queue=``): libca's thread queues it
        without the GIL, and the replies of a burst are taken in one batch.
        Else the callback posts ``fn`` to the loop from libca's thread.
        """
        q = self.event_queue()
        if q is not None:
            return functools.partial(fn, *args), q
        return functools.partial(self.post, fn, *args), None

    def post_here(self, fn: Callable, *args: Any) -> None:
        """:meth:`post` from work run by :meth:`_take_events` (the loop's
        thread): run at the end of that batch, no wake-up needed."""
        self._queue.append((fn, args))

    def _take_events(self) -> None:
        self.wakeups += 1
        # a chunk per wake-up (the rest wakes the loop again): a burst of
        # 10,000 events taken at once made 30,000 objects that lived until
        # the last was delivered, and the collections they set off promoted
        # them and walked the whole heap (two thirds of the loop's time
        # with 100,000 monitors)
        for fn, value in self._events.take(_TAKE):
            try:
                fn(value)
            except Exception as exc:  # a bug of ours: report, keep going
                self._loop().call_exception_handler({
                    "message": "CaChannel.aio: exception in event dispatch",
                    "exception": exc,
                })
        if self._queue:
            self._drain()

    def flush_soon(self) -> None:
        """Send the CA requests queued so far in the loop's next iteration.

        Called in the loop's thread by work that queues requests (a caget,
        a caput, a subscription): requests made in one iteration -- a
        gathered burst of them -- go out with one ``ca_flush_io`` (a system
        call) instead of one each, still before the loop waits for I/O.
        """
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop().call_soon(self._flush_now)  # type: ignore[union-attr]

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        ca.flush_io()

    def _drain(self) -> None:
        # Clear the flag first: an event queued from now on schedules a new
        # pass, so none is left behind. Take only what is queued now, so a
        # flood cannot starve the loop's other work.
        self._pending = False
        queue = self._queue
        popleft = queue.popleft
        for _ in range(len(queue)):
            fn, args = popleft()
            try:
                fn(*args)
            except Exception as exc:  # a bug of ours: report, keep going
                self._loop().call_exception_handler({
                    "message": "CaChannel.aio: exception in event dispatch",
                    "exception": exc,
                })


_dispatchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dispatcher]" = \
    weakref.WeakKeyDictionary()
_lock = threading.Lock()


def dispatcher(loop: asyncio.AbstractEventLoop = None) -> Dispatcher:
    """The :class:`Dispatcher` of ``loop`` (default: the running loop)."""
    if loop is None:
        loop = asyncio.get_running_loop()
    ref = getattr(_tls, "loop", None)
    if ref is not None and ref() is loop:
        return _tls.disp
    attach()  # this thread issues CA requests for the loop: it must be in the shared context
    disp = _dispatchers.get(loop)
    if disp is None:
        with _lock:
            disp = _dispatchers.get(loop)
            if disp is None:
                disp = _dispatchers[loop] = Dispatcher(loop)
    _tls.loop = weakref.ref(loop)  # a closed loop must not be kept alive by this cache
    _tls.disp = disp
    return disp


def flush() -> None:
    """Send queued CA requests (``ca_flush_io`` of the shared context)."""
    attach()
    ca.flush_io()
