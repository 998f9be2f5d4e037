"""core.acquire_many / release_many and the idle limit, against the session IOC
(in process: the doctests of CaChannel.core run the same way)."""
from __future__ import annotations

import pytest

from CaChannel import core
from CaChannel.core import channel as core_channel

NAMES = ["catest", "cabo", "cawave", "cacalc"]
#: a priority no other test uses: these channels are this module's alone
#: (the core keys channels by (name, priority))
PRIO = 37


def test_acquire_many_counts_one_use_per_name_and_flushes_once():
    chans = core.acquire_many(NAMES + ["catest"], PRIO)
    try:
        assert [ch.name for ch in chans] == NAMES + ["catest"]
        assert chans[0] is chans[-1] and chans[0].users == 2
        assert core.wait_all(chans, 5), [ch for ch in chans if not ch.connected]
    finally:
        core.release_many(chans)
    assert all(ch.users == 0 and ch.connected for ch in chans)   # idle, open


def test_acquire_many_failures_leave_none_in_place():
    failed = {}
    chans = core.acquire_many(["catest", "", 5, "cabo"], PRIO, failures=failed)
    try:
        assert chans[1] is None and chans[2] is None
        assert set(failed) == {"", 5}
        assert isinstance(failed[""], ValueError) and isinstance(failed[5], TypeError)
        assert chans[0].name == "catest" and chans[3].name == "cabo"
    finally:
        core.release_many(chans)


def test_acquire_many_raises_and_releases_what_it_took():
    before = {ch.name: ch.users for ch in core.channels()}
    with pytest.raises(TypeError):
        core.acquire_many(["catest", None, "cabo"], PRIO)
    after = {ch.name: ch.users for ch in core.channels()}
    assert {n: after.get(n, 0) for n in before} == before


def test_idle_limit_clears_the_longest_idle(monkeypatch):
    core.close_idle()
    others = len(core_channel._idle)  # (none: close_idle cleared them)
    monkeypatch.setattr(core_channel, "IDLE_LIMIT", others + 2)
    chans = core.acquire_many(NAMES[:3], PRIO + 1)
    assert core.wait_all(chans, 5)
    assert all(ch.users == 1 for ch in chans)
    core.release_many(chans)          # three idle, limit two: the first one goes
    assert chans[0].closed and not chans[0].connected
    assert not chans[1].closed and not chans[2].closed
    assert core.close_idle() == 2
