"""``core.wait_all()`` and ``PV.wait_for_connection()`` are woken only by the
channel they wait for (not by each of thousands of others connecting), and no
such wake-up is lost.

A waiter also re-checks every ``checks.CHUNK`` seconds (so that Ctrl-C is
seen); these tests stretch that to a minute, so a lost wake-up would wait out
the whole timeout instead of being hidden by the periodic re-check."""
from __future__ import annotations

import re
import time

from coretools import TEST_DB

from CaChannel import PV, core
from CaChannel.core import checks

#: a priority no other test uses: new channels, connecting while we wait
PRIO = 41


def _field_names(fields=("NAME", "DESC", "SEVR")):
    """A few hundred distinct channel names the session IOC serves."""
    records = re.findall(r'record\(\s*\w+\s*,\s*"([^"]+)"', TEST_DB.read_text())
    return ["%s.%s" % (rec, field) for rec in records for field in fields]


def test_wait_all_misses_no_connection(monkeypatch):
    monkeypatch.setattr(checks, "CHUNK", 60.0)
    chans = core.acquire_many(_field_names(), PRIO)
    try:
        pending = sum(not ch.connected for ch in chans)
        t0 = time.monotonic()
        assert core.wait_all(chans, 30), [ch.name for ch in chans if not ch.connected][:5]
        took = time.monotonic() - t0
        assert pending, "every channel connected before wait_all() began: nothing was waited for"
        assert took < 15, "wait_all() took %.1f s: a connection did not wake it" % took
    finally:
        core.release_many(chans)


def test_wait_for_connection_of_each_pv_misses_no_connection(monkeypatch):
    monkeypatch.setattr(checks, "CHUNK", 60.0)
    pvs = [PV(name) for name in _field_names(("STAT", "SCAN"))]
    t0 = time.monotonic()
    for pv in pvs:
        assert pv.wait_for_connection(30), pv.pvname
    took = time.monotonic() - t0
    assert took < 15, "waiting for %d PVs took %.1f s: a connection did not wake it" % (len(pvs), took)
    for pv in pvs:
        pv.disconnect()

