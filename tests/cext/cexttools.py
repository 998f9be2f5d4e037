"""Helpers of the C-extension tests: connect, read, write, collect callbacks."""
from __future__ import annotations

import math
import threading
import time

import numpy as np

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


def same(a, b, path="value"):
    """Assert ``a`` and ``b`` are equal values of the same types, recursively
    (floats exact with NaN equal to NaN, arrays by dtype and content)."""
    assert type(a) is type(b), (path, type(a), type(b), a, b)
    if isinstance(a, dict):
        assert list(a) == list(b), (path, list(a), list(b))
        for k in a:
            same(a[k], b[k], path + "." + k)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, "%s[%d]" % (path, i))
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, (path, a, b)


def channel_pairs(ca, cffi, names):
    """Generator for a fixture: ``{name: (C chid, cffi chid)}`` of connected
    channels (the cffi module shares the libca context the ``ca`` fixture
    made), cleared after the ``yield``."""
    chans = {}
    for name in names:
        chc = connect(ca, name)
        st, chf = cffi.create_channel(name)
        assert st == cffi.ECA.NORMAL
        chans[name] = (chc, chf)
    assert cffi.pend_io(TIMEOUT) == cffi.ECA.NORMAL
    yield chans
    for chc, chf in chans.values():
        ca.clear_channel(chc)
        cffi.clear_channel(chf)
    ca.flush_io()
