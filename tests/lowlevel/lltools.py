"""Helpers of the low-level ``ca`` tests: connect, read, write, wait with a bound."""
from __future__ import annotations

import threading
import time
from typing import Callable, List

from CaChannel import ca

TIMEOUT = 5.0


def connect(name: str, timeout: float = TIMEOUT):
    """A connected chid for ``name`` (fails the test when it does not connect)."""
    status, chid = ca.create_channel(name)
    assert status == ca.ECA_NORMAL, (name, status)
    status = ca.pend_io(timeout)
    assert status == ca.ECA_NORMAL, "%s did not connect within %s s: %s" % (name, timeout, status)
    return chid


def read(chid, chtype=None, count=None, use_numpy=False):
    """Synchronous get; returns the converted value."""
    status, value = ca.get(chid, chtype, count, use_numpy=use_numpy)
    assert status == ca.ECA_NORMAL, status
    status = ca.pend_io(TIMEOUT)
    assert status == ca.ECA_NORMAL, status
    return value.get()


def write(chid, value, chtype=None, count=None):
    """Put with callback and wait for completion; returns the callback dict."""
    done = Collector()
    status = ca.put(chid, value, chtype, count, callback=done)
    assert status == ca.ECA_NORMAL, status
    ca.flush_io()
    return done.wait_one()


class Collector:
    """A callback that records its arguments; wait for them with a bound."""

    def __init__(self):
        self.items: List = []
        self._cond = threading.Condition()

    def __call__(self, arg):
        with self._cond:
            self.items.append(arg)
            self._cond.notify_all()

    def wait(self, n: int = 1, timeout: float = TIMEOUT,
             predicate: Callable[[List], bool] = None) -> List:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                ok = predicate(self.items) if predicate else len(self.items) >= n
                if ok:
                    return list(self.items)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("waited %s s for %s callbacks, got %d: %r"
                                         % (timeout, n, len(self.items), self.items[-3:]))
                self._cond.wait(left)

    def wait_one(self, timeout: float = TIMEOUT):
        return self.wait(1, timeout)[0]


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %s s waiting for %s" % (timeout, what))
        ca.pend_event(0.01)
