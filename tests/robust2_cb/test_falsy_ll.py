"""Low level: every callback-taking ``ca`` function calls a falsy callable,
and falsy values are written, not skipped (issue 10, item 4)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from CaChannel import ca
from falsy import make

TIMEOUT = 10.0


def connect(name: str):
    status, chid = ca.create_channel(name)
    assert status == ca.ECA_NORMAL, status
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL, "%s did not connect" % name
    return chid


def read(chid):
    status, value = ca.get(chid)
    assert status == ca.ECA_NORMAL, status
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL
    return value.get()


@pytest.fixture
def catest():
    chid = connect("catest")
    yield chid
    ca.clear_channel(chid)


def test_create_channel_calls_falsy_connection_callback(recorder_cls):
    rec = make(recorder_cls)
    status, chid = ca.create_channel("cabo", callback=rec)
    assert status == ca.ECA_NORMAL
    try:
        ca.flush_io()
        (arg,), = rec.wait(what="create_channel connection callback")
        assert arg == {"chid": chid, "op": ca.CA_OP.CONN_UP}
    finally:
        ca.clear_channel(chid)


def _in_nonpreemptive_thread(fn):
    """Run ``fn()`` in a new thread with a non-preemptive context; its result or exception."""
    out = {}

    def body():
        assert ca.create_context(False) == ca.ECA_NORMAL
        try:
            out["result"] = fn()
        except BaseException as exc:  # handed to the test thread
            out["error"] = exc
        finally:
            ca.destroy_context()

    t = threading.Thread(target=body, name="nonpreemptive")
    t.start()
    t.join(60)
    assert not t.is_alive(), "the non-preemptive thread hangs"
    if "error" in out:
        raise out["error"]
    return out["result"]


def test_change_connection_event_calls_falsy_callback(recorder_cls):
    """In a non-preemptive context nothing connects before pend_event, so the
    callback installed by change_connection_event sees the first connection."""
    rec = make(recorder_cls)

    def work():
        status, chid = ca.create_channel("cabo")
        assert status == ca.ECA_NORMAL
        assert ca.change_connection_event(chid, rec) == ca.ECA_NORMAL
        for _ in range(int(TIMEOUT / 0.05)):
            if rec.calls:
                break
            ca.pend_event(0.05)
        calls = list(rec.calls)
        ca.clear_channel(chid)
        return chid, calls

    chid, calls = _in_nonpreemptive_thread(work)
    assert calls == [({"chid": chid, "op": ca.CA_OP.CONN_UP},)], \
        "change_connection_event: a falsy callable was not called"


def test_replace_access_rights_event_calls_falsy_callback(recorder_cls, catest):
    rec = make(recorder_cls)
    assert ca.replace_access_rights_event(catest, rec) == ca.ECA_NORMAL
    try:
        # called once inside the call: the channel is connected
        assert rec.calls == [({"chid": catest, "read_access": True, "write_access": True},)]
    finally:
        assert ca.replace_access_rights_event(catest, None) == ca.ECA_NORMAL


def test_get_calls_falsy_callback(recorder_cls, catest):
    rec = make(recorder_cls)
    status, value = ca.get(catest, callback=rec)
    assert status == ca.ECA_NORMAL and value is None
    ca.flush_io()
    (arg,), = rec.wait(what="get callback")
    assert arg["status"] == ca.ECA_NORMAL and isinstance(arg["value"], float)


def test_create_subscription_calls_falsy_callback(recorder_cls, catest):
    rec = make(recorder_cls)
    status, evid = ca.create_subscription(catest, rec)
    assert status == ca.ECA_NORMAL
    try:
        ca.flush_io()
        calls = rec.wait(what="subscription callback")
        assert calls[0][0]["status"] == ca.ECA_NORMAL
    finally:
        ca.clear_subscription(evid)


# falsy values that must be written as such (and read back), each after a
# truthy one so that a skipped write shows
FALSY_WRITES = [
    ("catest", 5.0, 0, 0.0),
    ("catest", 5.0, 0.0, 0.0),
    ("catest", 5.0, False, 0.0),
    ("catest", 5.0, np.float64(0.0), 0.0),
    ("catest", 5.0, np.int32(0), 0.0),
    ("catest", 5.0, np.array([0.0]), 0.0),
    ("ca:scalar:LONG", 7, 0, 0),
    ("ca:scalar:STRING", "x", "", ""),
    ("ca:scalar:STRING", "x", b"", ""),
    ("cabo", 1, 0, 0),
]


@pytest.mark.parametrize("name,before,value,expected", FALSY_WRITES,
                         ids=["%s=%r" % (w[0], w[2]) for w in FALSY_WRITES])
def test_put_calls_falsy_callback_and_writes_falsy_values(recorder_cls, name, before, value,
                                                          expected):
    chid = connect(name)
    try:
        for v in (before, value):
            rec = make(recorder_cls)
            assert ca.put(chid, v, callback=rec) == ca.ECA_NORMAL
            ca.flush_io()
            (arg,), = rec.wait(what="put callback")
            assert arg["status"] == ca.ECA_NORMAL
        got = read(chid)
        assert got == expected and type(got) is type(expected), (got, expected)
    finally:
        ca.clear_channel(chid)


def test_put_of_an_empty_array_is_a_clear_error():
    chid = connect("ca:varwave")
    try:
        for empty in ([], (), np.zeros(0)):
            with pytest.raises(ValueError, match="empty"):
                ca.put(chid, empty)
    finally:
        ca.clear_channel(chid)


def _server_refused_put():
    """A put the server refuses: libca reports it to the exception handler."""
    chid = connect("cabo")
    assert ca.put(chid, "Nonsense") == ca.ECA_NORMAL
    ca.flush_io()
    return chid


def test_add_exception_event_calls_falsy_callback(recorder_cls):
    rec = make(recorder_cls)
    assert ca.add_exception_event(rec) == ca.ECA_NORMAL
    chid = None
    try:
        chid = _server_refused_put()
        (arg,), = rec.wait(what="exception handler")
        assert arg["chid"] == chid and arg["op"] == ca.CA_OP.PUT
        assert arg["stat"] != ca.ECA_NORMAL
    finally:
        assert ca.add_exception_event(None) == ca.ECA_NORMAL
        if chid is not None:
            ca.clear_channel(chid)


def test_replace_printf_handler_calls_falsy_callback(recorder_cls):
    rec = make(recorder_cls)
    assert ca.replace_printf_handler(rec) == ca.ECA_NORMAL
    chid = None
    try:
        assert ca.add_exception_event(None) == ca.ECA_NORMAL  # libca's default handler prints
        chid = _server_refused_put()
        rec.wait_for(lambda calls: any("CA.Client.Exception" in c[0] for c in calls),
                     what="printf handler")
    finally:
        assert ca.replace_printf_handler(None) == ca.ECA_NORMAL
        if chid is not None:
            ca.clear_channel(chid)
