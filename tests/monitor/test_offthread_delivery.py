"""Monitors delivered off libca's thread (CaChannel.monitor): policies, counts, high level."""
from __future__ import annotations

import threading
import time

import pytest

from CaChannel import CaChannel, ca
from CaChannel.monitor import Monitor, subscribe

from mon_helpers import wait_for


@pytest.fixture
def counter(mon_ioc):
    status, chid = ca.create_channel("mon:counter")
    assert status == ca.ECA_NORMAL
    assert ca.pend_io(5) == ca.ECA_NORMAL
    ca.put(chid, 0)
    ca.pend_io(2)
    assert ca.get(chid)[1] is not None and ca.pend_io(5) == ca.ECA_NORMAL
    yield chid
    ca.clear_channel(chid)
    ca.flush_io()


def put_values(chid, values, sub=None):
    """Put values; with ``sub``, each after the previous one arrived.

    The IOC's event queue coalesces events of a subscription beyond a few
    queued ones, so the updates are paced by their arrival (the consumer under
    test stays as slow as it likes).
    """
    for v in values:
        before = None if sub is None else sub.stats.received
        assert ca.put(chid, v) == ca.ECA_NORMAL
        ca.flush_io()
        if sub is not None:
            wait_for(lambda: sub.stats.received > before, what="update %r" % v)


def test_latest_keeps_newest_and_counts(counter):
    status, sub = subscribe(counter, policy="latest")
    assert status == ca.ECA_NORMAL
    with sub:
        ca.flush_io()
        wait_for(lambda: sub.stats.received == 1, what="initial update")
        put_values(counter, range(1, 21), sub)
        wait_for(lambda: sub.stats.received == 21, what="21 updates")
        st = sub.stats
        assert st.pending == 1 and st.dropped == 20 and st.delivered == 0
        event = sub.get(1.0)
        assert event["value"] == 20
        assert sub.get(0.05) is None
        st = sub.stats
        assert st.received == st.delivered + st.dropped + st.pending == 21


def test_all_is_bounded_fifo(counter):
    status, sub = subscribe(counter, policy="all", maxlen=5)
    assert status == ca.ECA_NORMAL
    with sub:
        ca.flush_io()
        wait_for(lambda: sub.stats.received == 1, what="initial update")
        put_values(counter, range(1, 21), sub)
        wait_for(lambda: sub.stats.received == 21, what="21 updates")
        assert sub.stats.pending == 5 and sub.stats.dropped == 16
        assert [sub.get(1.0)["value"] for _ in range(5)] == [16, 17, 18, 19, 20]
        assert sub.stats == (21, 5, 16, 0)


@pytest.mark.parametrize("policy", ["latest", "all"])
def test_slow_callback_runs_off_libca_thread(counter, policy):
    calls = []
    in_callback = threading.Event()
    gate = threading.Event()

    def slow(event):
        calls.append((threading.current_thread().name, event["value"]))
        in_callback.set()
        gate.wait(10)      # a deliberately slow consumer (a plot, a fit) ...
        time.sleep(0.02)   # ... busy until all updates below have arrived

    status, sub = subscribe(counter, slow, policy=policy, maxlen=4)
    assert status == ca.ECA_NORMAL
    with sub:
        ca.flush_io()
        assert in_callback.wait(5)
        # libca's thread is not blocked by the callback: all 30 updates arrive
        put_values(counter, range(1, 31), sub)
        st = sub.stats
        assert st.received == 31 and st.delivered == 1
        assert (st.pending, st.dropped) == ((1, 29) if policy == "latest" else (4, 26))
        gate.set()
        wait_for(lambda: sub.stats.pending == 0 and len(calls) == sub.stats.delivered,
                 what="delivery to finish")
        st = sub.stats
        assert st.received == st.delivered + st.dropped == 31
        values = [v for _, v in calls]
        assert values == ([0, 30] if policy == "latest" else [0, 27, 28, 29, 30])
        assert {name for name, _ in calls} == {"CaChannel-monitor"}
    assert sub.closed


def test_close_counts_waiting_as_dropped(counter):
    status, sub = subscribe(counter, policy="all", maxlen=50)
    ca.flush_io()
    wait_for(lambda: sub.stats.received == 1)
    put_values(counter, range(1, 11), sub)
    wait_for(lambda: sub.stats.received == 11)
    sub.get(1)
    sub.close()
    assert sub.stats == (11, 1, 10, 0)
    assert sub.get(0.01) is None
    sub.close()  # idempotent


def test_bad_policy():
    with pytest.raises(ValueError):
        subscribe(None, policy="newest")
    with pytest.raises(ValueError):
        subscribe(None, policy="all", maxlen=0)


def test_high_level_monitor_with_channel_and_name(counter):
    chan = CaChannel("mon:counter")
    chan.searchw()
    got = []
    done = threading.Event()

    def cb(epics_args, user_args):
        got.append((epics_args["pv_value"], epics_args.get("pv_severity"), user_args))
        if epics_args["pv_value"] == 7:
            done.set()

    with Monitor(chan, cb, "u", req_type=ca.DBR_STS_LONG, policy="all", maxlen=100) as mon:
        with Monitor("mon:counter", policy="latest") as pull:
            assert pull.get(5)["pv_value"] == 0
            put_values(counter, range(1, 8), pull)
            assert done.wait(5)
            wait_for(lambda: pull.stats.received == 8)
            assert pull.get(1)["pv_value"] == 7
        assert [v for v, _, _ in got] == list(range(0, 8))
        assert got[0][1] == ca.AlarmSeverity.No and got[0][2] == ("u",)
        assert mon.stats == (8, 8, 0, 0)
    chan.clear_channel()
    with pytest.raises(TypeError):
        Monitor(42)


def test_bad_handle_is_a_clear_error(mon_ioc):
    with pytest.raises((TypeError, ValueError)):
        subscribe("not a chid")
