"""EventQueue: create_subscription(queue=q) queues the events for a consumer
thread (fileno() to watch, take() to get them) instead of calling back on
libca's thread."""
import gc
import os
import select
import sys
import threading

import pytest

from CaChannel import ca
from lltools import TIMEOUT, Collector, connect, write

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="EventQueue is POSIX only")
dbr = pytest.importorskip("epicscorelibs.ca.dbr")


def _readable(q, timeout=TIMEOUT):
    r, _, _ = select.select([q.fileno()], [], [], timeout)
    return bool(r)


def _take(q, n, timeout=TIMEOUT):
    """take() until n events came (bounded)."""
    got = []
    while len(got) < n:
        assert _readable(q, timeout), "no wake-up with %d of %d events" % (len(got), n)
        got += q.take()
    return got


def _witness(chid, value):
    """A plain subscription made after the queued ones: the server sends one
    client's events in subscription order, so once it sees ``value`` the
    queued subscriptions have it too (the put's completion reply can come
    before the monitor events)."""
    seen = Collector()
    _, evid = ca.create_subscription(chid, seen, ca.DBR_DOUBLE)
    ca.flush_io()

    def wait():
        seen.wait(predicate=lambda items: any(a["value"] == value for a in items))
        ca.clear_subscription(evid)
    return wait


def test_events_wait_for_the_consumer():
    chid = connect("catest")
    write(chid, 1.0)
    q = ca.EventQueue()
    called = []
    def cb(arg):
        called.append(threading.get_ident())
    status, evid = ca.create_subscription(chid, cb, ca.DBR_TIME_DOUBLE, queue=q)
    assert status == ca.ECA_NORMAL
    ca.flush_io()
    first = _take(q, 1)
    assert len(first) == 1 and first[0][0] is cb and not called   # never called back by libca
    assert type(first[0][1]) is dict and first[0][1]["value"]["value"] == 1.0
    for v in (2.0, 3.0, 4.0):
        write(chid, v)
    # three events, one wake-up byte: the pipe is written when the queue fills from empty
    assert _readable(q)
    got = _take(q, 3)
    assert [d["value"]["value"] for _, d in got] == [2.0, 3.0, 4.0]
    assert q.take() == [] and q.queued == 0
    ca.clear_subscription(evid)
    ca.clear_channel(chid)


def test_one_wake_up_byte_per_burst():
    chid = connect("catest")
    q = ca.EventQueue()
    _, evid = ca.create_subscription(chid, lambda a: None, ca.DBR_DOUBLE, queue=q)
    ca.flush_io()
    _take(q, 1)
    seen_last = _witness(chid, 7.0)
    for v in (5.0, 6.0, 7.0):
        write(chid, v)
    seen_last()
    assert _readable(q)
    assert os.read(q.fileno(), 64) == b"x"          # one byte for the three
    got = q.take()
    assert [v for _, v in got] == [{"chid": chid, "type": ca.DBR.DOUBLE, "count": 1,
                                    "status": ca.ECA.NORMAL, "value": x} for x in (5.0, 6.0, 7.0)]
    ca.clear_subscription(evid)
    ca.clear_channel(chid)


def test_augmented_values_through_the_queue():
    chid = connect("catest")
    write(chid, 8.5)
    q = ca.EventQueue()
    _, evid = ca.create_subscription(chid, print, ca.DBR_TIME_DOUBLE, queue=q,
                                     augment=(dbr.ca_float, {"name": "catest"}))
    ca.flush_io()
    (cb, v), = _take(q, 1)
    assert type(v) is dbr.ca_float and v == 8.5 and v.name == "catest" and v.timestamp > 1e9
    ca.clear_subscription(evid)
    ca.clear_channel(chid)


def test_cleared_subscriptions_are_not_handed_out():
    chid = connect("catest")
    q = ca.EventQueue()
    _, kept = ca.create_subscription(chid, lambda a: None, ca.DBR_DOUBLE, queue=q)
    _, gone = ca.create_subscription(chid, lambda a: None, ca.DBR_DOUBLE, queue=q)
    ca.flush_io()
    _take(q, 2)
    seen_last = _witness(chid, 10.0)
    write(chid, 9.0)
    write(chid, 10.0)
    seen_last()
    assert _readable(q)
    ca.clear_subscription(gone)       # its queued events are dropped at take()
    del gone
    gc.collect()                      # the evid is freed: its records purged (no dangling use)
    got = q.take()
    assert got and all(v["value"] in (9.0, 10.0) for _, v in got)
    assert len(got) == 2, got         # only the kept subscription's two events
    ca.clear_subscription(kept)
    ca.clear_channel(chid)            # then nothing more, no crash
    assert q.take() == []


def test_clear_channel_with_events_queued():
    chid = connect("catest")
    q = ca.EventQueue()
    _, evid = ca.create_subscription(chid, lambda a: None, ca.DBR_DOUBLE, queue=q)
    ca.flush_io()
    _take(q, 1)
    write(chid, 11.0)
    assert _readable(q)
    ca.clear_channel(chid)
    del evid
    gc.collect()
    assert q.take() == []


@pytest.mark.parametrize("bad", [object(), 1, "q"])
def test_bad_queue_is_a_type_error(bad):
    chid = connect("catest")
    with pytest.raises(TypeError, match="EventQueue"):
        ca.create_subscription(chid, print, ca.DBR_DOUBLE, queue=bad)
    ca.clear_channel(chid)
    with pytest.raises(TypeError):
        ca.EventQueue(1)


# ------------------------------------------------------------ get/put replies
def test_get_reply_through_the_queue():
    chid = connect("catest")
    write(chid, 12.5)
    q = ca.EventQueue()
    called = []
    cb = called.append
    status, none = ca.get(chid, ca.DBR_TIME_DOUBLE, 1, cb, queue=q)
    assert status == ca.ECA_NORMAL and none is None
    ca.flush_io()
    (got_cb, arg), = _take(q, 1)
    assert got_cb is cb and not called       # never called back by libca
    assert arg["status"] == ca.ECA_NORMAL and arg["value"]["value"] == 12.5
    assert q.take() == [] and q.queued == 0
    ca.clear_channel(chid)


def test_augmented_get_reply_through_the_queue():
    chid = connect("catest")
    write(chid, 13.25)
    q = ca.EventQueue()
    ca.get(chid, ca.DBR_TIME_DOUBLE, 1, print, queue=q, augment=(dbr.ca_float, {"name": "catest"}))
    ca.flush_io()
    (cb, v), = _take(q, 1)
    assert type(v) is dbr.ca_float and v == 13.25 and v.name == "catest" and v.timestamp > 1e9
    ca.clear_channel(chid)


def test_augmented_get_without_a_queue_calls_back_with_the_value():
    chid = connect("catest")
    write(chid, 14.0)
    got = Collector()
    ca.get(chid, ca.DBR_DOUBLE, 1, got, augment=(dbr.ca_float, {"name": "catest"}))
    ca.flush_io()
    v = got.wait_one()
    assert type(v) is dbr.ca_float and v == 14.0 and v.name == "catest"
    ca.clear_channel(chid)


def test_put_completion_through_the_queue():
    chid = connect("catest")
    q = ca.EventQueue()
    done = []
    assert ca.put(chid, 15.0, callback=done.append, queue=q) == ca.ECA_NORMAL
    ca.flush_io()
    (cb, arg), = _take(q, 1)
    assert not done and arg["status"] == ca.ECA_NORMAL and arg["chid"] is chid
    cb(arg)
    assert done == [arg]
    ca.clear_channel(chid)


def test_queued_reply_of_a_cleared_channel_is_dropped():
    chid = connect("catest")
    q = ca.EventQueue()
    for _ in range(3):
        ca.get(chid, ca.DBR_DOUBLE, 1, print, queue=q)
    ca.put(chid, 16.0, callback=print, queue=q)
    ca.flush_io()
    assert _readable(q)
    _wait_queued(q, 4)
    ca.clear_channel(chid)      # the queued replies now belong to a dead channel
    gc.collect()
    assert q.take() == []       # handed out to nobody, freed without a crash


def _wait_queued(q, n, timeout=TIMEOUT):
    """Wait (bounded) until ``n`` records are queued, without taking them:
    the pipe only says that the first one came."""
    import time
    deadline = time.monotonic() + timeout
    while q.queued < n:
        assert time.monotonic() < deadline, "only %d of %d replies queued" % (q.queued, n)
        time.sleep(0.01)


@pytest.mark.parametrize("call", [
    lambda chid, q: ca.get(chid, ca.DBR_DOUBLE, 1, queue=q),
    lambda chid, q: ca.get(chid, ca.DBR_DOUBLE, 1, augment=(dbr.ca_float, {})),
    lambda chid, q: ca.put(chid, 1.0, queue=q),
], ids=["get queue without callback", "get augment without callback", "put queue without callback"])
def test_queue_and_augment_need_a_callback(call):
    chid = connect("catest")
    with pytest.raises(ValueError):
        call(chid, ca.EventQueue())
    ca.clear_channel(chid)


@pytest.mark.parametrize("call", [
    lambda chid: ca.get(chid, ca.DBR_DOUBLE, 1, print, queue=object()),
    lambda chid: ca.put(chid, 1.0, callback=print, queue=[]),
    lambda chid: ca.get(chid, ca.DBR_DOUBLE, 1, print, augment=(int,)),
], ids=["get queue object", "put queue list", "get augment short"])
def test_bad_queue_or_augment_is_a_type_error(call):
    chid = connect("catest")
    with pytest.raises(TypeError):
        call(chid)
    ca.clear_channel(chid)


def test_take_max_leaves_the_rest_queued_and_readable():
    chid = connect("catest")
    write(chid, 0.0)
    q = ca.EventQueue()
    _, evid = ca.create_subscription(chid, lambda a: None, ca.DBR_DOUBLE, queue=q)
    ca.flush_io()
    assert _take(q, 1)[0][1]["value"] == 0.0
    wait = _witness(chid, 5.0)
    for v in (1.0, 2.0, 3.0, 4.0, 5.0):
        write(chid, v)
    wait()
    assert q.queued == 5
    first = q.take(2)
    assert [d["value"] for _, d in first] == [1.0, 2.0] and q.queued == 3
    assert _readable(q, 0), "records left after take(max) must keep fileno() readable"
    assert [d["value"] for _, d in q.take(max=10)] == [3.0, 4.0, 5.0]
    assert q.queued == 0 and not _readable(q, 0)
    assert q.take(1) == []
    for bad, exc in ((0, ValueError), (-1, ValueError), ("2", TypeError), (1.5, TypeError)):
        with pytest.raises(exc, match="max must be"):
            q.take(bad)
    ca.clear_subscription(evid)
    ca.clear_channel(chid)
