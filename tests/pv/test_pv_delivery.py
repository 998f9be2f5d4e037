"""PV value callbacks delivered off libca's thread (``PV(..., delivery=...)``)."""
from __future__ import annotations

import queue
import threading

import pytest

from CaChannel import PV, util

TIMEOUT = 10.0


def test_delivery_runs_callbacks_on_the_pv_delivery_thread(softioc):
    seen: "queue.Queue" = queue.Queue()

    def on_value(pvname=None, value=None, **kw):
        seen.put((threading.current_thread().name, value))

    pv = PV("catest", callback=on_value, delivery="all")
    try:
        assert pv.wait_for_connection(TIMEOUT)
        util.caput("catest", 4.25, wait=True)
        while True:
            name, value = seen.get(timeout=TIMEOUT)
            assert name == "CaChannel-monitor"
            if value == 4.25:
                break
        assert pv.get() == 4.25
        stats = pv.monitor_stats
        assert stats.received == stats.delivered + stats.dropped + stats.pending
        assert stats.delivered >= 1
    finally:
        pv.disconnect()
    assert pv.monitor_stats is None


def test_latest_gives_a_slow_callback_only_the_newest_update(softioc):
    gate = threading.Event()
    got: "queue.Queue" = queue.Queue()

    def slow(value=None, **kw):
        got.put(value)
        gate.wait(TIMEOUT)

    util.caput("catest", 0.0, wait=True)
    pv = PV("catest", delivery="latest")
    try:
        assert pv.wait_for_connection(TIMEOUT)
        # the initial 0.0 delivered (to no callback) before the callback comes:
        # were it still waiting, the 1.0 would replace it, and the counts below
        # (the updates after the held one) would be one short
        pause = threading.Event()
        for _ in range(int(TIMEOUT / 0.05)):
            stats = pv.monitor_stats
            if stats.delivered >= 1 and stats.pending == 0:
                break
            pause.wait(0.05)
        else:
            pytest.fail("the initial update was not delivered: %r" % (pv.monitor_stats,))
        pv.add_callback(slow)
        util.caput("catest", 1.0, wait=True)
        first = got.get(timeout=TIMEOUT)           # the callback now blocks
        for value in (2.0, 3.0, 4.0, 5.0):
            util.caput("catest", value, wait=True)
        # the last write is seen by the PV's monitor while the callback is held
        # no event to wait on here: libca's thread only counts the update
        after = 4  # 2.0 .. 5.0 after the held 1.0
        for _ in range(int(TIMEOUT / 0.05)):
            stats = pv.monitor_stats
            if stats.received >= stats.delivered + after and stats.pending == 1:
                break
            pause.wait(0.05)
        else:
            pytest.fail("the 4 writes did not reach the held monitor: %r" % (pv.monitor_stats,))
        gate.set()
        assert got.get(timeout=TIMEOUT) == 5.0      # only the newest waited
        assert first == 1.0
        stats = pv.monitor_stats
        assert stats.dropped >= 3
        assert stats.received == stats.delivered + stats.dropped + stats.pending
    finally:
        gate.set()
        pv.disconnect()


def test_bad_delivery_value():
    with pytest.raises(ValueError):
        PV("catest", delivery="sometimes")
