"""Contexts, threads, execution functions and synchronous groups."""
import threading

import pytest

from CaChannel import ca
from lltools import Collector, TIMEOUT, connect, read, write


def in_thread(fn):
    """Run ``fn`` in a new thread; return its result or re-raise its exception."""
    result = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert not t.is_alive(), "thread did not finish within 30 s"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def test_context_of_the_test_thread(context):
    assert context is not None
    assert ca.current_context() == context
    assert hash(ca.current_context()) == hash(context)
    # a second create in the same thread is fine
    assert ca.create_context(True) == ca.ECA_NORMAL
    assert ca.attach_context(context) == ca.ECA_ISATTACHED


def test_other_thread_attaches(context):
    def work():
        assert ca.current_context() is None
        assert ca.attach_context(context) == ca.ECA_NORMAL
        assert ca.current_context() == context
        chid = connect("catest")
        write(chid, 2.5)
        value = read(chid)
        ca.clear_channel(chid)
        ca.detach_context()
        assert ca.current_context() is None
        return value
    assert in_thread(work) == 2.5


def test_non_preemptive_context_in_a_thread():
    def work():
        assert ca.create_context(False) == ca.ECA_NORMAL
        ctx = ca.current_context()
        assert ca.create_context(True) == ca.ECA_NOTTHREADED
        # non-preemptive: callbacks only inside pend_event of this thread
        got = Collector()
        status, chid = ca.create_channel("catest", got)
        ca.flush_io()
        for _ in range(100):
            if got.items:
                break
            ca.pend_event(0.05)
        assert got.items and got.items[0]["op"] == ca.CA_OP_CONN_UP
        ca.clear_channel(chid)
        ca.destroy_context()
        assert ca.current_context() is None
        return ctx
    ctx = in_thread(work)
    assert ctx is not None


def test_attach_errors(context):
    with pytest.raises(TypeError):
        ca.attach_context("ctx")
    with pytest.raises(TypeError):
        ca.attach_context(None)

    def work():
        assert ca.create_context(False) == ca.ECA_NORMAL
        own = ca.current_context()
        ca.detach_context()
        assert ca.attach_context(own) == ca.ECA_NOTTHREADED       # not preemptive
        return True
    assert in_thread(work)


def test_destroy_context_in_a_thread():
    def work():
        assert ca.create_context(True) == ca.ECA_NORMAL
        chid = connect("catest")
        read(chid)
        ca.destroy_context()
        return ca.current_context()
    assert in_thread(work) is None


def test_show_context(capfd, context):
    ca.show_context()
    ca.show_context(context, 1)
    out = capfd.readouterr().out
    assert "ca_client_context" in out or "Channel Access Client Context" in out
    with pytest.raises(TypeError):
        ca.show_context("nope")


def test_pend_io_times_out_for_a_missing_pv():
    status, chid = ca.create_channel("does:not:exist")
    assert status == ca.ECA_NORMAL
    assert ca.test_io() == ca.ECA_IOINPROGRESS
    assert ca.pend_io(0.3) == ca.ECA_TIMEOUT
    assert ca.state(chid) == ca.ChannelState.NEVER_CONN
    assert ca.field_type(chid) == ca.DBF.NOTCONN and ca.element_count(chid) == 0
    assert ca.read_access(chid) is False and ca.write_access(chid) is False
    assert ca.get(chid) == (ca.ECA_BADTYPE, None)      # type cannot be derived
    assert ca.get(chid, ca.DBR_DOUBLE) == (ca.ECA_DISCONN, None)
    assert ca.put(chid, 1) == ca.ECA_BADTYPE
    assert ca.put(chid, 1, ca.DBR_DOUBLE) == ca.ECA_DISCONN
    assert ca.create_subscription(chid, print) == (ca.ECA_BADTYPE, None)
    assert isinstance(ca.host_name(chid), str)
    assert ca.clear_channel(chid) == ca.ECA_NORMAL
    assert ca.test_io() == ca.ECA_IODONE


def test_execution_functions():
    chid = connect("catest")
    assert ca.pend_event(0.01) == ca.ECA_TIMEOUT
    assert ca.poll() == ca.ECA_TIMEOUT
    assert ca.flush_io() == ca.ECA_NORMAL
    assert ca.test_io() == ca.ECA_IODONE
    status, value = ca.get(chid)
    assert ca.pend(TIMEOUT, True) == ca.ECA_NORMAL
    assert isinstance(value.get(), float)
    assert ca.pend(0.01, False) == ca.ECA_TIMEOUT
    for bad in ("1", None):
        with pytest.raises(TypeError):
            ca.pend_io(bad)
    with pytest.raises(ValueError):
        ca.pend_event(-1)
    ca.clear_channel(chid)


def test_channel_information():
    status, chid = ca.create_channel(b"catest", priority=ca.CA_PRIORITY_MAX)
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL
    assert ca.name(chid) == "catest"
    host, port = ca.host_name(chid).rsplit(":", 1)
    assert host in ("localhost", "127.0.0.1") and int(port) > 0
    assert ca.state(chid) == ca.ChannelState.CONN and isinstance(ca.state(chid), ca.ChannelState)
    assert ca.read_access(chid) is True and ca.write_access(chid) is True
    assert ca.state(None) == ca.ChannelState.NEVER_SEARCH
    ca.clear_channel(chid)
    assert ca.state(chid) == ca.ChannelState.CLOSED
    for fn in (ca.name, ca.field_type, ca.element_count, ca.host_name, ca.read_access,
               ca.write_access):
        with pytest.raises(ValueError):
            fn(chid)
        with pytest.raises(ValueError):
            fn(None)
        with pytest.raises(TypeError):
            fn("catest")


def test_create_channel_arguments():
    assert ca.create_channel("catest", priority=100) == (ca.ECA_BADPRIORITY, None)
    assert ca.create_channel("catest", priority=-1) == (ca.ECA_BADPRIORITY, None)
    with pytest.raises(TypeError):
        ca.create_channel(None)
    with pytest.raises(TypeError):
        ca.create_channel(42)
    with pytest.raises(TypeError):
        ca.create_channel("catest", priority=1.5)
    assert ca.create_channel("catest\0x") == (ca.ECA_BADSTR, None)


def test_cleared_and_foreign_handles():
    chid = connect("catest")
    assert ca.clear_channel(chid) == ca.ECA_NORMAL
    assert ca.clear_channel(chid) == ca.ECA_BADCHID
    assert ca.clear_channel(None) == ca.ECA_BADCHID
    assert ca.get(chid) == (ca.ECA_BADCHID, None)
    assert ca.get(None) == (ca.ECA_BADCHID, None)
    assert ca.put(chid, 1.0) == ca.ECA_BADCHID
    assert ca.put(None, 1.0) == ca.ECA_BADCHID
    assert ca.create_subscription(chid, print) == (ca.ECA_BADCHID, None)
    assert ca.get(chid, callback=print) == (ca.ECA_BADCHID, None)
    for bad in ("catest", 12345, object()):
        with pytest.raises(TypeError):
            ca.get(bad)
        with pytest.raises(TypeError):
            ca.put(bad, 1)
        with pytest.raises(TypeError):
            ca.clear_channel(bad)
        with pytest.raises(TypeError):
            ca.create_subscription(bad, print)


def test_synchronous_groups():
    wave = connect("cawave")
    cat = connect("catest")
    status, gid = ca.sg_create()
    assert status == ca.ECA_NORMAL and isinstance(gid, int)
    assert ca.sg_put(gid, wave, [9, 8, 7]) == ca.ECA_NORMAL
    assert ca.sg_put(gid, cat, 4.25) == ca.ECA_NORMAL
    assert ca.sg_block(gid, TIMEOUT) == ca.ECA_NORMAL
    s1, v1 = ca.sg_get(gid, wave, count=3, use_numpy=True)
    s2, v2 = ca.sg_get(gid, cat, ca.DBR_CTRL_DOUBLE)
    assert s1 == s2 == ca.ECA_NORMAL
    assert ca.sg_block(gid, TIMEOUT) == ca.ECA_NORMAL
    assert ca.sg_test(gid) == ca.ECA_IODONE
    assert v1.get().tolist() == [9.0, 8.0, 7.0]
    assert v2.get()["value"] == 4.25 and v2.get()["units"] == "mm"
    s3, v3 = ca.sg_get(gid, wave, count=0)
    assert ca.sg_block(gid, TIMEOUT) == ca.ECA_NORMAL
    assert len(v3.get()) == 20                  # count 0: native
    assert ca.sg_reset(gid) == ca.ECA_NORMAL
    with pytest.raises(ValueError):
        ca.sg_put(gid, cat, None)
    assert ca.sg_delete(gid) == ca.ECA_NORMAL
    assert ca.sg_delete(gid) == ca.ECA_BADSYNCGRP
    assert ca.sg_block(gid, 0.1) == ca.ECA_BADSYNCGRP
    assert ca.sg_reset(gid) == ca.ECA_BADSYNCGRP
    with pytest.raises(TypeError):
        ca.sg_delete("gid")
    ca.clear_channel(wave)
    ca.clear_channel(cat)
