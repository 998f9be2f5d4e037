"""EventQueue in the cffi backend (the twin of ``cext/evqueue.c``): the
same API, so that ``CaChannel.aio`` has one path on both backends.

cffi takes the GIL for every libca callback anyway, so here the value is
made in the callback and queued with its subscription (or, for a get/put
reply, its channel); ``take()`` hands out those whose owner is still valid. The wake-up is the same: one byte in a
pipe when the queue goes from empty to not empty.
"""
from __future__ import annotations

import operator
import os
import threading
from typing import Any, Callable, List, Optional, Tuple

__all__ = ["EventQueue"]

#: events kept for a consumer that stopped taking (the C extension bounds bytes, 256 MiB)
MAX_QUEUED = 1_000_000


class EventQueue:
    """Subscription events and get/put replies for one consumer thread
    (``create_subscription(queue=)``, ``get(queue=)``, ``put(queue=)``).

    ``fileno()`` is readable while events are queued (for ``loop.add_reader``);
    ``take()`` returns ``[(callback, value), ...]``, oldest first.
    """

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        for fd in (self._r, self._w):
            os.set_blocking(fd, False)
        self._lock = threading.Lock()
        self._items: List[Tuple[Any, Callable, Any]] = []
        self._signalled = False
        self._pid = os.getpid()
        self._overflow = 0

    def fileno(self) -> int:
        return self._r

    @property
    def queued(self) -> int:
        """Events queued now."""
        return len(self._items)

    @property
    def overflow(self) -> int:
        """Events dropped because MAX_QUEUED were waiting (a consumer that stopped taking)."""
        return self._overflow

    def push(self, owner: Any, value: Any, callback: Callable) -> None:
        """Queue ``callback``'s ``value`` for ``owner`` (libca's thread): a
        subscription's evid or a get/put's channel, handed out while
        ``owner.valid``."""
        with self._lock:
            if len(self._items) >= MAX_QUEUED:
                self._overflow += 1
                return
            self._items.append((owner, callback, value))
            if self._signalled:
                return
            self._signalled = True
        try:
            os.write(self._w, b"x")
        except OSError:  # closed (exit) or full: the consumer is woken already
            pass

    def take(self, max: Optional[int] = None) -> List[Tuple[Callable, Any]]:
        if max is not None:
            try:
                max = operator.index(max)
            except TypeError:
                raise TypeError("max must be an integer or None, not %s"
                                % type(max).__name__) from None
            if max < 1:
                raise ValueError("max must be >= 1 or None, not %d" % max)
        if os.getpid() != self._pid:  # inherited across fork: nothing is delivered here
            return []
        # the pipe first: a byte written after this is for events taken later
        try:
            while os.read(self._r, 64):
                pass
        except OSError:  # empty (EAGAIN)
            pass
        with self._lock:
            if max is None or len(self._items) <= max:
                items, self._items = self._items, []
            else:
                items = self._items[:max]
                del self._items[:max]
            left = self._signalled = bool(self._items)
        if left:  # take(max) left records: they keep the consumer woken
            try:
                os.write(self._w, b"x")
            except OSError:
                pass
        return [(cb, v) for owner, cb, v in items if owner.valid]

    def __del__(self) -> None:
        for fd in (getattr(self, "_r", -1), getattr(self, "_w", -1)):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
