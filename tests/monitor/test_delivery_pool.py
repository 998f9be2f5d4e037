"""The shared delivery pool of CaChannel.monitor: a bounded number of threads for
any number of subscriptions, per-subscription order, isolation of a blocking
callback, close() from and around callbacks, the thread-count knob."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from CaChannel import ca, monitor
from CaChannel.monitor import subscribe

from mon_helpers import wait_for

HERE = Path(__file__).resolve().parent
TIMEOUT = 10.0


@pytest.fixture
def counter(mon_ioc):
    status, chid = ca.create_channel("mon:counter")
    assert status == ca.ECA_NORMAL
    assert ca.pend_io(5) == ca.ECA_NORMAL
    assert ca.put(chid, 0) == ca.ECA_NORMAL
    assert ca.pend_io(5) == ca.ECA_NORMAL
    yield chid
    ca.clear_channel(chid)
    ca.flush_io()


def pool_threads():
    return [t for t in threading.enumerate() if t.name == "CaChannel-monitor"]


def put_paced(chid, values, sub):
    """Put values, each after the previous one reached ``sub`` (the IOC coalesces
    a subscription's events beyond a few queued ones)."""
    for v in values:
        before = sub.stats.received
        assert ca.put(chid, v) == ca.ECA_NORMAL
        ca.flush_io()
        wait_for(lambda: sub.stats.received > before, timeout=TIMEOUT,
                 what="update %r to arrive" % v)


def close_all(subs):
    for sub in subs:
        sub.close()


def test_thousand_subscriptions_use_the_pool_threads(counter):
    limit = monitor.delivery_threads()
    n = 1000
    seen = [[] for _ in range(n)]
    subs = []
    try:
        for i in range(n):
            status, sub = subscribe(counter, lambda ev, i=i: seen[i].append(ev["value"]))
            assert status == ca.ECA_NORMAL
            subs.append(sub)
        ca.flush_io()
        wait_for(lambda: all(seen), timeout=30, what="the initial update of 1,000 subscriptions")
        assert ca.put(counter, 5) == ca.ECA_NORMAL
        ca.flush_io()
        wait_for(lambda: all(s and s[-1] == 5 for s in seen), timeout=30,
                 what="value 5 delivered to 1,000 subscriptions")
        threads = pool_threads()
        assert 1 <= len(threads) <= limit, "%d delivery threads for %d subscriptions (limit %d)" % (
            len(threads), n, limit)
    finally:
        close_all(subs)
    for sub in subs:
        st = sub.stats
        assert st.received == st.delivered + st.dropped + st.pending and st.pending == 0


@pytest.mark.skipif(not hasattr(ca, "EventQueue") or sys.platform == "win32",
                    reason="no EventQueue: updates are stored on libca's thread")
def test_updates_are_stored_by_one_intake_thread(counter, monkeypatch):
    """libca's threads only queue the updates (no GIL in the C extension); one
    intake thread stores them in their subscriptions, for every subscription."""
    stored_on = set()
    original = monitor.Subscription._on_event

    def recording(self, args):
        stored_on.add(threading.current_thread().name)
        original(self, args)
    monkeypatch.setattr(monitor.Subscription, "_on_event", recording)
    seen = [[] for _ in range(20)]
    subs = []
    try:
        for i in range(20):
            status, sub = subscribe(counter, lambda ev, i=i: seen[i].append(ev["value"]),
                                    policy="all", maxlen=100)
            assert status == ca.ECA_NORMAL
            subs.append(sub)
        ca.flush_io()
        wait_for(lambda: all(seen), timeout=TIMEOUT, what="the initial update of 20 subscriptions")
        for sub in subs[:1]:
            put_paced(counter, range(1, 6), sub)
        wait_for(lambda: all(s[-1:] == [5] for s in seen), timeout=TIMEOUT,
                 what="value 5 delivered to 20 subscriptions")
    finally:
        close_all(subs)
    assert stored_on == {"CaChannel-intake"}, stored_on
    assert all(s == sorted(s) for s in seen), "an update out of order"
    intakes = [t for t in threading.enumerate() if t.name == "CaChannel-intake"]
    assert len(intakes) == 1, intakes


def test_order_kept_through_bursts_and_requeues(counter):
    """Eight subscriptions (policy all) held by a gate while 50 updates queue up
    each; released, each gets all 51 in order although the workers (fewer than
    the subscriptions) hand out at most monitor.BATCH at a time and re-queue."""
    gate = threading.Event()
    nsub, nput = 8, 50
    assert nput > 2 * monitor.BATCH
    got = [[] for _ in range(nsub)]

    def make(i):
        def cb(ev):
            gate.wait(TIMEOUT)
            got[i].append(ev["value"])
        return cb

    subs = []
    try:
        for i in range(nsub):
            status, sub = subscribe(counter, make(i), policy="all", maxlen=nput + 10)
            assert status == ca.ECA_NORMAL
            subs.append(sub)
        ca.flush_io()
        wait_for(lambda: all(s.stats.received == 1 for s in subs), timeout=TIMEOUT,
                 what="the initial updates")
        for v in range(1, nput + 1):   # paced by the slowest-to-arrive subscription
            before = [s.stats.received for s in subs]
            assert ca.put(counter, v) == ca.ECA_NORMAL
            ca.flush_io()
            wait_for(lambda: all(s.stats.received > b for s, b in zip(subs, before)),
                     timeout=TIMEOUT, what="update %d at every subscription" % v)
        gate.set()
        wait_for(lambda: all(len(g) == nput + 1 for g in got), timeout=TIMEOUT,
                 what="all updates delivered: %s" % [len(g) for g in got])
        for i, g in enumerate(got):
            assert g == list(range(nput + 1)), "subscription %d got %s" % (i, g)
        for s in subs:
            assert s.stats == (nput + 1, nput + 1, 0, 0)
    finally:
        gate.set()
        close_all(subs)


def test_blocking_callback_does_not_stall_other_subscriptions(counter):
    release = threading.Event()
    blocked = threading.Event()
    other = []
    arrived = threading.Event()

    def blocker(ev):
        blocked.set()
        release.wait(TIMEOUT)

    def on_other(ev):
        other.append(ev["value"])
        if ev["value"] == 7:
            arrived.set()

    status, slow = subscribe(counter, blocker)
    assert status == ca.ECA_NORMAL
    try:
        ca.flush_io()
        assert blocked.wait(TIMEOUT), "the blocking callback was never called"
        status, fast = subscribe(counter, on_other, policy="all")
        assert status == ca.ECA_NORMAL
        with fast:
            ca.flush_io()
            assert ca.put(counter, 7) == ca.ECA_NORMAL
            ca.flush_io()
            assert arrived.wait(TIMEOUT), (
                "a callback blocked in another subscription stalled delivery: got %s" % other)
            assert not release.is_set()   # the blocker was still blocked all along
    finally:
        release.set()
        slow.close()


def test_close_from_inside_its_own_callback(counter):
    holder = []
    closed = threading.Event()
    calls = []

    def cb(ev):
        calls.append(ev["value"])
        holder[0].close()      # wait=True: must not wait for this very callback
        closed.set()

    status, sub = subscribe(counter, cb, policy="all")
    assert status == ca.ECA_NORMAL
    holder.append(sub)
    ca.flush_io()
    assert closed.wait(TIMEOUT), "close() inside the callback did not return"
    assert sub.closed and calls == [0]
    # the pool goes on: a new subscription is delivered
    got = threading.Event()
    status, again = subscribe(counter, lambda ev: got.set())
    with again:
        ca.flush_io()
        assert got.wait(TIMEOUT), "delivery stopped after a close() inside a callback"
    st = sub.stats
    assert st.received == st.delivered + st.dropped + st.pending and st.pending == 0


def test_close_waits_for_the_running_callback(counter):
    entered = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def cb(ev):
        entered.set()
        release.wait(TIMEOUT)
        finished.set()

    status, sub = subscribe(counter, cb)
    assert status == ca.ECA_NORMAL
    ca.flush_io()
    assert entered.wait(TIMEOUT)
    # let the callback go a moment after close() started waiting; whatever the
    # timing, close(wait=True) may return only after the callback returned
    timer = threading.Timer(0.2, release.set)
    timer.start()
    try:
        sub.close(wait=True)
        assert finished.is_set(), "close(wait=True) returned while the callback was running"
    finally:
        release.set()
        timer.cancel()


def test_close_without_wait_returns_while_the_callback_runs(counter):
    entered = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def cb(ev):
        entered.set()
        release.wait(TIMEOUT)
        finished.set()

    status, sub = subscribe(counter, cb)
    ca.flush_io()
    try:
        assert entered.wait(TIMEOUT)
        sub.close(wait=False)
        assert not finished.is_set()
    finally:
        release.set()
    assert finished.wait(TIMEOUT)


def test_raising_callback_is_reported_and_delivery_goes_on(counter, capsys):
    got = []
    status, sub = subscribe(counter, lambda ev: got.append(ev["value"]) or 1 / ev["value"],
                            policy="all")
    with sub:
        ca.flush_io()
        wait_for(lambda: got == [0], timeout=TIMEOUT, what="the initial update")
        put_paced(counter, [1, 2], sub)
        wait_for(lambda: got == [0, 1, 2], timeout=TIMEOUT, what="updates after the exception")
    err = capsys.readouterr().err
    assert "exception in monitor callback" in err and "ZeroDivisionError" in err


def test_set_delivery_threads(counter):
    """With 2 threads, two blocked callbacks hold back a third subscription; a
    third thread delivers it at once."""
    previous = monitor.set_delivery_threads(2)
    release = threading.Event()
    entered = [threading.Event(), threading.Event()]
    third = threading.Event()
    subs = []
    try:
        assert monitor.delivery_threads() == 2
        wait_for(lambda: len(pool_threads()) <= 2, timeout=TIMEOUT,
                 what="surplus idle delivery threads to end")
        for ev in entered:
            status, sub = subscribe(counter, lambda e, ev=ev: (ev.set(), release.wait(TIMEOUT)))
            subs.append(sub)
        ca.flush_io()
        for ev in entered:
            assert ev.wait(TIMEOUT), "a blocking callback was not called"
        status, sub3 = subscribe(counter, lambda e: third.set())
        subs.append(sub3)
        ca.flush_io()
        wait_for(lambda: sub3.stats.received == 1, timeout=TIMEOUT, what="the third's update")
        assert sub3.stats.delivered == 0 and not third.is_set(), "both threads are blocked"
        assert monitor.set_delivery_threads(3) == 2
        assert third.wait(TIMEOUT), "a third delivery thread did not deliver"
        with pytest.raises(ValueError):
            monitor.set_delivery_threads(0)
    finally:
        release.set()
        close_all(subs)
        monitor.set_delivery_threads(previous)


@pytest.mark.parametrize("mode, words", [
    ("destroy", ["parent", "destroyed"]),
    ("fork", ["parent", "child", "child-exit-0", "parent-after"]),
])
def test_pool_after_destroy_context_and_fork(mon_ioc, mode, words):
    """In a subprocess: callbacks are delivered (on a worker attached to the new
    context) after ca.destroy_context(); in a forked child (a new pool) and in
    the parent afterwards, and the child exits 0 by a normal interpreter exit."""
    proc = subprocess.run([sys.executable, str(HERE / "pool_worker.py"), mode],
                          env=dict(os.environ), capture_output=True, text=True, timeout=90)
    out = proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0, out
    assert proc.stdout.split() == words, out
