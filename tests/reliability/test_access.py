"""Access security (tests/test.acf): read-only PVs refuse every put path, and
a PV that becomes writable at run time fires the access-rights callbacks."""
import threading
import time

import pytest

from CaChannel import CaChannel, CaChannelException, ca, util

WAIT = 5.0


def connect(name):
    status, chid = ca.create_channel(name)
    assert status == ca.ECA_NORMAL, status
    assert ca.pend_io(WAIT) == ca.ECA_NORMAL, "%s did not connect" % name
    return chid


def wait_for(pred, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %s s waiting for %s" % (timeout, what))
        ca.pend_event(0.02)


def test_readonly_lowlevel_put_paths_refused():
    chid = connect("ca:readonly")
    try:
        assert ca.read_access(chid) is True
        assert ca.write_access(chid) is False
        assert ca.put(chid, 1) == ca.ECA_NOWTACCESS
        called = []
        assert ca.put(chid, 1, callback=called.append) == ca.ECA_NOWTACCESS
        assert ca.put(chid, [1, 2], ca.DBR_DOUBLE, 2) == ca.ECA_NOWTACCESS
        assert ca.put(chid, "3", ca.DBR_STRING) == ca.ECA_NOWTACCESS
        status, gid = ca.sg_create()
        assert status == ca.ECA_NORMAL
        try:
            assert ca.sg_put(gid, chid, 1) == ca.ECA_NOWTACCESS
            assert ca.sg_block(gid, WAIT) == ca.ECA_NORMAL
        finally:
            assert ca.sg_delete(gid) == ca.ECA_NORMAL
        ca.pend_event(0.1)
        assert called == [], "a refused put must not call its callback"
        status, value = ca.get(chid)
        assert ca.pend_io(WAIT) == ca.ECA_NORMAL
        assert value.get() == 7.0, "the read-only PV was changed"
    finally:
        ca.clear_channel(chid)
        ca.flush_io()


def test_readonly_highlevel_put_paths_refused():
    chan = CaChannel("ca:readonly")
    chan.searchw()
    assert chan.read_access() is True and chan.write_access() is False
    for call in (lambda: chan.putw(3),
                 lambda: chan.putw("3", ca.DBR_STRING),
                 lambda: chan.array_put(3),
                 lambda: chan.array_put([3, 4], ca.DBR_DOUBLE, 2),
                 lambda: chan.array_put_callback(3, None, None, lambda a, u: None),
                 lambda: util.caput("ca:readonly", 3),
                 lambda: util.caput("ca:readonly", 3, wait=True, timeout=WAIT)):
        with pytest.raises(CaChannelException) as info:
            call()
        assert info.value.status == ca.ECA_NOWTACCESS, info.value
        assert "ca:readonly" in str(info.value) or "write access" in str(info.value).lower(), info.value
    assert chan.getw() == 7.0
    chan.clear_channel()


@pytest.fixture
def guard(softioc):
    softioc.shell("dbpf ca:guard 0")
    yield softioc
    softioc.shell("dbpf ca:guard 0")


def test_guarded_becomes_writable_fires_lowlevel_callback(guard):
    chid = connect("ca:guarded")
    events = []
    cond = threading.Condition()

    def on_access(args):
        with cond:
            events.append((args["chid"] == chid, args["read_access"], args["write_access"]))
            cond.notify_all()

    try:
        wait_for(lambda: not ca.write_access(chid), "ca:guarded to be read-only")
        assert ca.replace_access_rights_event(chid, on_access) == ca.ECA_NORMAL
        # called once right away for a connected channel
        assert events and events[0] == (True, True, False), events
        assert ca.put(chid, 1) == ca.ECA_NOWTACCESS
        guard.shell("dbpf ca:guard 1")
        wait_for(lambda: (True, True, True) in events, "write access granted callback")
        assert ca.write_access(chid) is True
        done = []
        assert ca.put(chid, 2.5, callback=done.append) == ca.ECA_NORMAL
        ca.flush_io()
        wait_for(lambda: done, "put callback after access was granted")
        assert done[0]["status"] == ca.ECA_NORMAL
        guard.shell("dbpf ca:guard 0")
        wait_for(lambda: events[-1] == (True, True, False), "write access revoked callback")
        assert ca.put(chid, 1) == ca.ECA_NOWTACCESS
        assert ca.replace_access_rights_event(chid, None) == ca.ECA_NORMAL
    finally:
        ca.clear_channel(chid)
        ca.flush_io()


def test_guarded_becomes_writable_fires_channel_callback(guard):
    chan = CaChannel("ca:guarded")
    chan.searchw()
    events = []

    def on_access(epics_args, user_args):
        events.append((epics_args["read_access"], epics_args["write_access"], user_args))

    wait_for(lambda: not chan.write_access(), "ca:guarded to be read-only")
    chan.replace_access_rights_event(on_access, "u")
    assert events and events[0] == (True, False, "u"), events
    with pytest.raises(CaChannelException) as info:
        chan.putw(1)
    assert info.value.status == ca.ECA_NOWTACCESS
    guard.shell("dbpf ca:guard 1")
    wait_for(lambda: (True, True, "u") in events, "write access granted callback")
    chan.putw(4.5)
    wait_for(lambda: chan.getw() == 4.5, "write to ca:guarded")
    guard.shell("dbpf ca:guard 0")
    wait_for(lambda: events[-1] == (True, False, "u"), "write access revoked callback")
    chan.clear_channel()
