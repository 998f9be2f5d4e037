"""The C paths added for speed keep encode's results and the bookkeeping
stays leak free: numpy arrays of another dtype converted in C, callback
records of requests cancelled by clear_channel, per-context exception
handler slots."""
from __future__ import annotations

import gc
import sys
import threading

import numpy as np
import pytest

from CaChannel import _common
from cexttools import Collector, connect, read


def put_and_read(ca, chid, value, chtype):
    assert ca.put(chid, value, chtype) == ca.ECA_NORMAL
    assert ca.pend_io(5.0) == ca.ECA_NORMAL
    return np.asarray(read(ca, chid, ca.DBR_DOUBLE, len(value), use_numpy=True))


CASES = [
    (np.array([1.7, -2.9, 3.0]), "DBR_LONG"),
    (np.array([1.7, -2.9, 3.0]), "DBR_SHORT"),
    (np.array([1, 2, 250], dtype=np.int64), "DBR_CHAR"),
    (np.array([True, False, True]), "DBR_CHAR"),
    (np.array([1, 2, 3], dtype=np.int8), "DBR_DOUBLE"),
    (np.array([1, 2, 3], dtype=np.uint64), "DBR_ENUM"),
    (np.array([2 ** 64 - 1, 0], dtype=np.uint64), "DBR_DOUBLE"),
    (np.array([1.5, 2.5, 1e30], dtype=np.float64), "DBR_FLOAT"),
    (np.arange(10, dtype=np.float32)[::3], "DBR_DOUBLE"),
    (np.array([1.0, 2.0, 3.0], dtype=">f8"), "DBR_DOUBLE"),
    (np.array([7, 8, 9], dtype=np.int32), "DBR_SHORT"),
]


@pytest.mark.parametrize("value,tname", CASES, ids=[f"{v.dtype}-{t}" for v, t in CASES])
def test_converted_array_put_matches_encode(ca, chan, value, tname):
    chid = chan("cawave")
    t = getattr(ca, tname)
    got = put_and_read(ca, chid, value, t)
    rt, rc, data = _common.encode(value, t, 20)
    expected = np.asarray(data, dtype=_common.DBR_DTYPE[int(rt)] if isinstance(data, bytes) else None)
    assert rc == len(value)
    np.testing.assert_array_equal(got, np.asarray(expected, dtype=np.float64))


BAD = [
    (np.array([1.0, np.nan]), "DBR_LONG"),
    (np.array([1.0, np.inf]), "DBR_SHORT"),
    (np.array([1, 70000], dtype=np.int64), "DBR_SHORT"),
    (np.array([-1, 3], dtype=np.int32), "DBR_CHAR"),
    (np.array([1.0, 1e300]), "DBR_FLOAT"),
    (np.array([2 ** 63, 1], dtype=np.uint64), "DBR_LONG"),
]


@pytest.mark.parametrize("value,tname", BAD, ids=[f"{v.dtype}-{t}" for v, t in BAD])
def test_converted_array_rejects_like_encode(ca, chan, value, tname):
    chid = chan("cawave")
    t = getattr(ca, tname)
    with pytest.raises(Exception) as want:
        _common.encode(value, t, 20)
    with pytest.raises(type(want.value)) as got:
        ca.put(chid, value, t)
    assert str(got.value) == str(want.value)


def test_cancelled_callback_requests_are_freed(ca):
    """A get/put callback whose channel is cleared before the reply comes
    back is never called; its record (and the references to the callback
    and the channel) must still go."""
    class Marker:
        def __call__(self, arg):
            pass
    for _ in range(5):
        chid = connect(ca, "catest")
        cb = Marker()
        before = sys.getrefcount(cb)
        for _ in range(20):
            assert ca.get(chid, callback=cb)[0] == ca.ECA_NORMAL
            assert ca.put(chid, 1.0, callback=cb) == ca.ECA_NORMAL
        assert sys.getrefcount(cb) == before + 40
        # no flush: the requests are still queued when the channel goes
        assert ca.clear_channel(chid) == ca.ECA_NORMAL
        assert sys.getrefcount(cb) == before
        ref = sys.getrefcount(chid)
        assert ref <= 3, ref   # ours + getrefcount's argument (+ at most one frame temp)


def test_completed_requests_unlink(ca):
    chid = connect(ca, "catest")
    got = Collector()
    for _ in range(50):
        assert ca.put(chid, 2.0, callback=got) == ca.ECA_NORMAL
        assert ca.get(chid, callback=got)[0] == ca.ECA_NORMAL
    ca.flush_io()
    got.wait(100)
    base = sys.getrefcount(got)
    assert ca.clear_channel(chid) == ca.ECA_NORMAL
    assert sys.getrefcount(got) == base


def test_exception_handler_released_with_its_context(ca):
    """destroy_context drops the context's exception handler (and its slot)."""
    result = {}

    def worker():
        class Handler:
            def __call__(self, arg):
                pass
        h = Handler()
        assert ca.create_context(True) == ca.ECA_NORMAL
        assert ca.add_exception_event(h) == ca.ECA_NORMAL
        result["held"] = sys.getrefcount(h)
        ca.destroy_context()
        gc.collect()
        result["after"] = sys.getrefcount(h)
    for _ in range(3):
        t = threading.Thread(target=worker)
        t.start()
        t.join(20)
        assert result["after"] == result["held"] - 1, result
