"""The ring of preallocated array slots behind ``CaChannel.monitor.ArrayMonitor``, in Python.

The C extension has the same type in C (``CaChannel._ca._Ring``, ``cext/ring.c``),
filled by libca's thread without the GIL. This one is the cffi backend's
``_Ring`` (filled by its ``_ring_subscribe`` callback, on libca's thread with the
GIL, one copy per update straight from libca's buffer), and the one an
ArrayMonitor uses on either backend when it is fed by an ordinary subscription
(``CaChannel.monitor._USE_FAST_RING = False``). Both behave alike; the
consumer side (``take``, ``give_back``, ``close``, ``stats``, ``set_tag``, the
slot arrays) is all that ``CaChannel.monitor`` uses.

A slot is free, filling, pending (filled, not yet taken) or held (taken by the
consumer until ``give_back``). The policy picks the slot of a new update:
``"latest"`` recycles the pending one (at most one is pending), ``"all"`` a
free one and else the oldest pending one; recycled updates count as dropped,
so ``received == delivered + dropped + pending``.
"""
from __future__ import annotations

import collections
import operator
import os
import threading
import time
from typing import Any, Deque, Optional, Sequence, Set, Tuple

import numpy as np

#: most integers a tag may have (as in the C type)
MAX_TAG = 16


class Ring:
    """``Ring(buffers, capacity, dtype, policy, ntag=0)``: slots ``data[buffers, capacity]``."""

    def __init__(self, buffers: int, capacity: int, dtype: Any, policy: str,
                 ntag: int = 0) -> None:
        buffers, capacity, ntag = (operator.index(buffers), operator.index(capacity),
                                   operator.index(ntag))
        if policy not in ("latest", "all"):
            raise ValueError("policy must be 'latest' or 'all'")
        if buffers < 2:
            raise ValueError("buffers must be >= 2 (one held by the consumer, one to fill)")
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        if not 0 <= ntag <= MAX_TAG:
            raise ValueError("ntag must be in 0..%d" % MAX_TAG)
        if capacity > (2 ** 63 - 1) // 8 // buffers:
            raise ValueError("ring too large")
        dt = np.dtype(dtype)
        if dt.itemsize not in (1, 2, 4, 8) or dt.hasobject:
            raise ValueError("dtype must be numeric with 1, 2, 4 or 8 bytes an element")
        self.policy = policy
        self.capacity = capacity
        self.data = np.zeros((buffers, capacity), dtype=dt)
        self.counts = np.zeros(buffers, dtype=np.int64)
        self.seqs = np.zeros(buffers, dtype=np.int64)
        self.stamps = np.zeros(buffers, dtype=np.float64)
        self.alarm = np.zeros((buffers, 2), dtype=np.int16)      # status, severity
        self.tagvals = np.zeros((buffers, ntag), dtype=np.int64)
        self._tagnow = np.zeros(ntag, dtype=np.int64)
        self._free: Deque[int] = collections.deque(range(buffers))
        self._pending: Deque[int] = collections.deque()
        self._held: Set[int] = set()
        self._cond = threading.Condition(threading.Lock())
        self._received = self._delivered = self._dropped = 0
        self.closed = False
        self.subscribed = False
        # a fork child must not touch the lock (a parent thread may have held
        # it): a ring made before the fork acts closed there, as in C
        self._pid = os.getpid()

    def _forked(self) -> bool:
        return self._pid != os.getpid()

    # producer (libca's thread) ------------------------------------------
    def offer(self, values: Any, count: int, status: int, severity: int, stamp: float) -> None:
        """Copy one update into a slot and wake the consumer.

        ``values``: array-like of at least ``min(count, capacity)`` elements
        (an array of the slot dtype is copied once, with no conversion).
        """
        values = np.asarray(values)
        if values.ndim == 0:
            values = values.reshape(1)
        n = max(0, min(int(count), self.capacity, values.shape[0]))
        with self._cond:
            if self.closed:
                return
            if self.policy == "latest" and self._pending:
                slot = self._pending.popleft()      # replaced before delivery
                self._dropped += 1
            elif self._free:
                slot = self._free.popleft()
            elif self._pending:
                slot = self._pending.popleft()      # "all": the oldest waiting goes
                self._dropped += 1
            else:                                   # every slot held: nowhere to copy
                self._received += 1
                self._dropped += 1
                return
        # copied outside the lock, as the C ring does (the slot is ours now)
        try:
            self.data[slot, :n] = values[:n]
            ok = True
        except (TypeError, ValueError):             # unconvertible data: not a frame
            ok = False
        with self._cond:
            if self.closed or not ok:
                self._free.append(slot)
                return
            self._received += 1
            self.counts[slot] = n
            self.seqs[slot] = self._received
            self.stamps[slot] = stamp
            self.alarm[slot, 0] = status
            self.alarm[slot, 1] = severity
            self.tagvals[slot] = self._tagnow
            self._pending.append(slot)
            self._cond.notify()

    # consumer -------------------------------------------------------------
    def take(self, timeout: Optional[float] = None) -> Optional[int]:
        """The oldest pending slot, now held by the caller; None on timeout or once closed."""
        if timeout is not None:
            if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
                raise TypeError("timeout must be a number, not %s" % type(timeout).__name__)
            if timeout != timeout or timeout < 0:
                raise ValueError("timeout must be >= 0, not %r" % (timeout,))
        if self._forked():
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._pending:
                if self.closed:
                    return None
                if deadline is None:
                    self._cond.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)
            slot = self._pending.popleft()
            self._held.add(slot)
            self._delivered += 1
            return slot

    def give_back(self, slot: int) -> None:
        """Return a held slot to the free list."""
        slot = operator.index(slot)
        if not 0 <= slot < self.data.shape[0]:
            raise ValueError("slot %d out of range 0..%d" % (slot, self.data.shape[0] - 1))
        if self._forked():
            return
        with self._cond:
            if slot not in self._held:
                raise ValueError("slot %d is not held by the consumer" % slot)
            self._held.discard(slot)
            self._free.append(slot)

    def close(self) -> None:
        """Stop filling; pending slots count as dropped; wake waiting takers."""
        if self._forked():
            self.closed = True
            return
        with self._cond:
            if self.closed:
                return
            self.closed = True
            self._dropped += len(self._pending)
            self._free.extend(self._pending)
            self._pending.clear()
            self._cond.notify_all()

    def stats(self) -> Tuple[int, int, int, int]:
        """(received, delivered, dropped, pending), read under the ring's lock."""
        if self._forked():
            return (self._received, self._delivered, self._dropped, len(self._pending))
        with self._cond:
            return (self._received, self._delivered, self._dropped, len(self._pending))

    def set_tag(self, values: Sequence[int]) -> None:
        """The ntag integers copied into every slot filled from now on."""
        ints = [operator.index(v) for v in values]
        if len(ints) != self._tagnow.shape[0]:
            raise ValueError("expected %d tag values, got %d" % (self._tagnow.shape[0], len(ints)))
        tag = np.array(ints, dtype=np.int64)
        if self._forked():
            return
        with self._cond:
            self._tagnow[:] = tag
