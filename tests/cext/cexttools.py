"""Helpers of the C-extension tests: connect, read, write, collect callbacks."""
from __future__ import annotations

import threading
import time

TIMEOUT = 5.0


def connect(ca, name, timeout=TIMEOUT):
    status, chid = ca.create_channel(name)
    assert status == ca.ECA_NORMAL, (name, status)
    assert ca.pend_io(timeout) == ca.ECA_NORMAL, "%s did not connect" % name
    return chid


def read(ca, chid, chtype=None, count=None, use_numpy=False):
    status, value = ca.get(chid, chtype, count, use_numpy=use_numpy)
    assert status == ca.ECA_NORMAL, status
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL
    return value.get()


class Collector:
    def __init__(self):
        self.items = []
        self._cond = threading.Condition()

    def __call__(self, arg):
        with self._cond:
            self.items.append(arg)
            self._cond.notify_all()

    def wait(self, n=1, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("waited for %d callbacks, got %d" % (n, len(self.items)))
                self._cond.wait(left)
            return list(self.items)


def write(ca, chid, value, chtype=None, count=None):
    done = Collector()
    assert ca.put(chid, value, chtype, count, callback=done) == ca.ECA_NORMAL
    ca.flush_io()
    return done.wait(1)[0]
