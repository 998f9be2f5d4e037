"""Load tests of the C backend: threads hammering the same channels while
callbacks call back into ca; memory growth over many gets, events and
create/clear cycles. A short variant runs by default, the full one with
``-m stress``."""
import faulthandler
import gc
import os
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

from cexttools import Collector, connect

FULL = pytest.mark.stress


def _hammer(ca, context, seconds):
    chans = [connect(ca, n) for n in ("catest", "cawave", "cawavec", "cawaves")]
    stop = threading.Event()
    errors = []
    counts = {"events": 0, "gets": 0, "nested": 0}
    lock = threading.Lock()

    def on_event(args):
        # back into ca from a libca thread: info calls, a callback get, a put
        ch = args["chid"]
        ca.field_type(ch)
        ca.element_count(ch)
        ca.get(ch, callback=on_nested, use_numpy=True)
        with lock:
            counts["events"] += 1

    def on_nested(args):
        with lock:
            counts["nested"] += 1

    subs = [ca.create_subscription(ch, on_event, mask=ca.DBE_VALUE)[1] for ch in chans]
    ca.flush_io()

    def worker(k):
        try:
            assert ca.attach_context(context) in (ca.ECA.NORMAL, ca.ECA.ISATTACHED)
            i = 0
            while not stop.is_set():
                i += 1
                ch = chans[i % len(chans)]
                s, v = ca.get(ch, use_numpy=bool(i & 1))
                assert s == ca.ECA.NORMAL
                assert ca.pend_io(5) == ca.ECA.NORMAL
                v.get()
                if ch is chans[0]:
                    ca.put(ch, float(i % 50))
                elif ch is chans[1]:
                    ca.put(ch, np.arange(i % 7 + 2, dtype=np.float64))
                elif ch is chans[2]:
                    ca.put(ch, "x%d" % (i % 100))
                else:
                    ca.put(ch, ["a", str(i)], callback=lambda a: None)
                ca.flush_io()
                with lock:
                    counts["gets"] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    faulthandler.dump_traceback_later(seconds + 60, exit=True)
    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
    finally:
        faulthandler.cancel_dump_traceback_later()
    for ev in subs:
        assert ca.clear_subscription(ev) == ca.ECA.NORMAL
    for ch in chans:
        assert ca.clear_channel(ch) == ca.ECA.NORMAL
    ca.flush_io()
    assert not errors, errors[:3]
    assert counts["gets"] > 100 and counts["events"] > 10, counts


def test_threads_and_reentrant_callbacks(ca):
    _hammer(ca, ca.current_context(), 2.5)


@FULL
def test_threads_and_reentrant_callbacks_20s(ca):
    _hammer(ca, ca.current_context(), 20)


def _rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _cycle(ca, n_gets, n_events, n_channels):
    ch = connect(ca, "catest")
    wave = connect(ca, "cawave")
    for i in range(n_gets):
        s, v = ca.get(ch if i & 1 else wave, use_numpy=bool(i & 2))
        assert ca.pend_io(5) == ca.ECA.NORMAL
        v.get()
    got = Collector()
    s, ev = ca.create_subscription(ch, got, chtype=ca.DBR_TIME_DOUBLE)
    ca.flush_io()
    got.wait(1)
    for i in range(n_events):
        ca.put(ch, float(i % 1000))
        if i % 100 == 99:
            # pace the flood; the server may coalesce events, so wait for the
            # last value rather than for a count
            ca.flush_io()
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and not (
                    got.items and got.items[-1]["value"]["value"] == float(i % 1000)):
                time.sleep(0.001)
            del got.items[:-1]
    ca.flush_io()
    time.sleep(0.2)
    got.items.clear()
    ca.clear_subscription(ev)
    for i in range(n_channels):
        s, c = ca.create_channel("catest", lambda a: None)
        s, e = ca.create_subscription(c, lambda a: None)
        ca.replace_access_rights_event(c, lambda a: None)
        assert ca.clear_channel(c) == ca.ECA.NORMAL
    ca.flush_io()
    ca.clear_channel(ch)
    ca.clear_channel(wave)
    ca.flush_io()


def _memory(ca, n_gets, n_events, n_channels):
    _cycle(ca, n_gets // 10, n_events // 10, n_channels // 10)   # warm up caches/pools
    gc.collect()
    rss0 = _rss_kb()
    tracemalloc.start(10)
    snap0 = tracemalloc.take_snapshot()
    _cycle(ca, n_gets, n_events, n_channels)
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = _rss_kb() - rss0
    assert grown < 5 * 1024, "RSS grew by %d kB" % grown
    pkg = os.path.dirname(ca.__file__)
    flt = [tracemalloc.Filter(True, os.path.join(pkg, "*"))]
    diff = snap1.filter_traces(flt).compare_to(snap0.filter_traces(flt), "filename")
    growth = sum(d.size_diff for d in diff)
    assert growth < 64 * 1024, [str(d) for d in diff[:5]]


def test_memory_small(ca):
    _memory(ca, 10000, 1000, 100)


@FULL
def test_memory_full(ca):
    _memory(ca, 100000, 10000, 1000)
