"""Correctness at scale through the public faces, both backends (run the suite with
``CACHANNEL_BACKEND=caffi`` for the cffi one).

Default size 2 IOCs x (5,000 static + 5,000 counting) records; the ``stress``
variants use 4 x 25,000. Every client is a subprocess (scale_worker.py) so that
its exit, its descriptors and its memory are its own.
"""
from __future__ import annotations

import pytest

# bounded waits: generous for a loaded 2-core machine, far below a hang
GET_TIMEOUT = 60.0
MISS_TIMEOUT = 3.0


def _check_get(res, n):
    for face in ("util", "aio", "pv"):
        assert res[face]["count"] == n, (face, res[face])
        assert res[face]["bad"] == [], "%s: wrong values (index, got, expected): %s" % (
            face, res[face]["bad"])


def _check_missing(res, nmiss):
    m = res["util_missing"]
    assert m["none_at_missing"] and m["n_none"] == nmiss, m
    assert m["bad"] == [], m
    t = res["util_throw"]
    assert t["failed_are_missing"] and t["n_failed"] == nmiss, t
    a = res["aio_missing"]
    assert a["failed_at_missing"] and a["n_failed"] == nmiss, a
    assert a["bad"] == [], a
    p = res["pv_missing"]
    assert p["unconnected_are_missing"], p
    assert p["bad"] == [], p


def test_list_get_values(scale_world, backend):
    """util.caget(list), aio.caget(list) and PV objects read every one of 10,000
    static records right; 20 missing names mixed in are the ones (and the only
    ones) reported: None, CANothing, a failure naming them, an unconnected PV."""
    res = scale_world.run(backend, "get", 240, timeout=GET_TIMEOUT, miss_timeout=MISS_TIMEOUT,
                          nmiss=20)
    assert res["returncode"] == 0, res["stderr"][-3000:]
    _check_get(res, scale_world.nioc * scale_world.nper)
    _check_missing(res, 20)


def _check_monitor(res, n, seconds, period):
    assert res["returncode"] == 0, "exit status %s\n%s" % (res["returncode"], res["stderr"][-3000:])
    assert "Traceback" not in res["stderr"], res["stderr"][-3000:]
    assert res["connected_and_updated"] == n, res
    # every counting record processed at least once in the window and was seen to
    assert res["advanced"] == n, res
    assert res["skipped"] == 0, "%d updates lost (values skipped) of %d received" % (
        res["skipped"], res["received"])
    assert res["repeats"] == 0, res
    # one update per record per scan period offered
    assert res["in_window"] >= n * (seconds // period - 1), res
    assert res["exit_s"] < 20.0, "interpreter exit took %.1f s" % res["exit_s"]


@pytest.mark.parametrize("face", ["aio", "pv", "subscribe"])
def test_monitor_every_update(scale_world, backend, face):
    """10,000 counting records, 10,000 updates/s offered: the face delivers every
    update (no value skipped or repeated) for 4 s, then the interpreter exits
    cleanly with every channel and monitor live."""
    n = scale_world.nioc * scale_world.nper
    seconds = 4
    # bounded: initial updates within 15 s, the whole process within 35 s
    res = scale_world.run(backend, "monitor", 35, face=face, seconds=seconds, first_timeout=15)
    _check_monitor(res, n, seconds, scale_world.period)


def _check_rounds(res, rss_limit_mb):
    assert res["returncode"] == 0, res["stderr"][-3000:]
    assert res["bad"] == [], res["bad"]
    fds = res["fds"]
    assert len(set(fds)) == 1, "open descriptors after each round: %s (before: %d)" % (
        fds, res["fds0"])
    # the first rounds warm up the allocator and Python's caches (the cffi backend
    # settles after the third); from the third round on RSS must stay flat
    rss = res["rss"]
    assert rss[-1] - rss[2] < rss_limit_mb, "RSS after each round (MB): %s" % [
        round(r, 1) for r in rss]


def test_rounds_flat(scale_world, backend):
    """Five rounds of connect-all/clear-all of 5,000 names (util list +
    clear_cache, PV + disconnect, low-level ca): the descriptor count is the same
    after every round and RSS is flat from the third round on (< 5 MB, i.e.
    under ~170 bytes per channel opened and closed since)."""
    _check_rounds(scale_world.run(backend, "rounds", 240, rounds=5, count=5000,
                                  timeout=GET_TIMEOUT), 5.0)


@pytest.mark.stress
def test_list_get_values_big(scale_world_big, backend):
    res = scale_world_big.run(backend, "get", 900, timeout=120, miss_timeout=30, nmiss=100)
    assert res["returncode"] == 0, res["stderr"][-3000:]
    _check_get(res, scale_world_big.nioc * scale_world_big.nper)
    _check_missing(res, 100)


@pytest.mark.stress
@pytest.mark.parametrize("face", ["aio", "pv", "subscribe", "Monitor"])
def test_monitor_every_update_big(scale_world_big, backend, face):
    n = scale_world_big.nioc * scale_world_big.nper
    seconds = 30
    res = scale_world_big.run(backend, "monitor", 400, face=face, seconds=seconds,
                              first_timeout=120)
    _check_monitor(res, n, seconds, scale_world_big.period)


@pytest.mark.stress
def test_rounds_flat_big(scale_world_big, backend):
    _check_rounds(scale_world_big.run(backend, "rounds", 1200, rounds=5, timeout=120), 40.0)
