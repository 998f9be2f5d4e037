"""Subscriptions, connection callbacks, access-rights/exception/printf handlers."""
import threading

import numpy as np
import pytest

from CaChannel import ca
from lltools import Collector, TIMEOUT, connect, read, wait_until, write


def test_subscription_event_dict_and_updates():
    chid = connect("catest")
    write(chid, 1.0)
    got = Collector()
    status, evid = ca.create_subscription(chid, got, ca.DBR_TIME_DOUBLE)
    assert status == ca.ECA_NORMAL and evid is not None
    ca.flush_io()
    first = got.wait_one()           # the current value right after installation
    assert set(first) == {"chid", "type", "count", "status", "value"}
    assert first["chid"] == chid and first["type"] == ca.DBR.TIME_DOUBLE
    assert first["count"] == 1 and first["status"] == ca.ECA.NORMAL
    assert first["value"]["value"] == 1.0
    write(chid, 2.0)
    write(chid, 25.0)
    items = got.wait(3)
    assert [d["value"]["value"] for d in items[:3]] == [1.0, 2.0, 25.0]
    assert items[2]["value"]["severity"] == ca.AlarmSeverity.Major
    assert ca.clear_subscription(evid) == ca.ECA_NORMAL
    assert ca.clear_subscription(evid) == ca.ECA_BADMONID      # stale id: no crash
    n = len(got.items)
    write(chid, 3.0)
    read(chid)                                 # a round trip after the put
    ca.pend_event(0.1)
    assert len(got.items) == n, "callback fired after clear_subscription"
    ca.clear_channel(chid)


def test_subscription_defaults_mask_and_numpy():
    chid = connect("cawave")
    write(chid, [1, 2, 3])
    got = Collector()
    status, evid = ca.create_subscription(chid, got, use_numpy=True)
    ca.flush_io()
    d = got.wait_one()
    assert d["type"] == ca.DBR.DOUBLE and d["count"] == 20
    assert isinstance(d["value"], np.ndarray) and d["value"].dtype == np.float64
    assert d["value"][:3].tolist() == [1, 2, 3]
    ca.clear_subscription(evid)
    # mask DBE_ALARM only: a value change without alarm change is not delivered
    cat = connect("catest")
    write(cat, 0.0)
    got = Collector()
    status, evid = ca.create_subscription(cat, got, mask=ca.DBE_ALARM)
    ca.flush_io()
    got.wait_one()
    write(cat, 1.0)                 # no alarm change
    write(cat, 15.0)                # HIGH/MINOR
    items = got.wait(2)
    assert items[1]["value"] == 15.0
    ca.clear_subscription(evid)
    write(cat, 1.0)
    ca.clear_channel(cat)
    ca.clear_channel(chid)


def test_subscription_count_zero_follows_length():
    chid = connect("ca:varwave")
    write(chid, [1.0, 2.0])
    got = Collector()
    status, evid = ca.create_subscription(chid, got, count=0)
    ca.flush_io()
    assert got.wait_one()["value"] == [1.0, 2.0]
    write(chid, [5.0, 6.0, 7.0])
    d = got.wait(2)[1]
    assert d["count"] == 3 and d["value"] == [5.0, 6.0, 7.0]
    ca.clear_subscription(evid)
    ca.clear_channel(chid)


def test_callback_that_raises_does_not_stop_ca(capfd):
    chid = connect("catest")
    calls = []

    def bad(d):
        calls.append(d)
        raise RuntimeError("boom from a callback")

    status, evid = ca.create_subscription(chid, bad)
    ca.flush_io()
    wait_until(lambda: calls, what="the raising callback")
    write(chid, 8.0)
    wait_until(lambda: len(calls) >= 2, what="a second event after an exception")
    assert read(chid) == 8.0
    ca.clear_subscription(evid)
    ca.pend_event(0.05)
    err = capfd.readouterr().err
    assert "boom from a callback" in err and "Traceback" in err
    ca.clear_channel(chid)


def test_callbacks_may_call_back_into_ca():
    src = connect("catest")
    other = connect("cawave")
    seen = Collector()

    def cb(d):
        # a get with callback and a put from inside a CA callback thread
        ca.get(other, count=2, callback=seen)
        ca.flush_io()
        assert ca.pend_io(1.0) == ca.ECA_EVDISALLOW       # blocking inside a callback
        assert ca.pend_event(0.1) == ca.ECA_EVDISALLOW

    status, evid = ca.create_subscription(src, cb)
    ca.flush_io()
    seen.wait_one()
    ca.clear_subscription(evid)
    ca.clear_channel(src)
    ca.clear_channel(other)


def test_subscription_bad_arguments():
    chid = connect("catest")
    with pytest.raises(TypeError):
        ca.create_subscription(chid, None)
    with pytest.raises(TypeError):
        ca.create_subscription(chid, "not callable")
    with pytest.raises(TypeError):
        ca.create_subscription(chid, print, mask="x")
    with pytest.raises(TypeError):
        ca.clear_subscription("evid")
    assert ca.clear_subscription(None) == ca.ECA_BADMONID
    status, evid = ca.create_subscription(chid, print, chtype=77)
    assert status == ca.ECA_BADTYPE and evid is None
    status, evid = ca.create_subscription(chid, lambda d: None)
    ca.clear_channel(chid)
    # clear_channel cancels the subscriptions of the channel
    assert ca.clear_subscription(evid) == ca.ECA_BADMONID
    status, evid = ca.create_subscription(chid, print)
    assert status == ca.ECA_BADCHID and evid is None


def test_connection_callback_and_change():
    got = Collector()
    status, chid = ca.create_channel("catest", got)
    assert status == ca.ECA_NORMAL
    ca.flush_io()
    d = got.wait_one()
    assert d == {"chid": chid, "op": ca.CA_OP.CONN_UP}
    assert isinstance(d["op"], ca.CA_OP)
    other = Collector()
    assert ca.change_connection_event(chid, other) == ca.ECA_NORMAL
    assert ca.change_connection_event(chid, None) == ca.ECA_NORMAL
    assert ca.change_connection_event(chid, "not callable") == ca.ECA_NORMAL   # removes
    assert ca.clear_channel(chid) == ca.ECA_NORMAL
    ca.pend_event(0.05)
    assert len(got.items) == 1, "clear_channel must not call the connection callback"
    assert ca.change_connection_event(chid, got) == ca.ECA_BADCHID


def test_chid_native_type_and_count_of_the_last_connection():
    """Read by the backend when libca reports the connection, before the
    callback runs: the callback sees them without a libca call."""
    seen = []
    done = threading.Event()

    def on_conn(args):
        ch = args["chid"]
        seen.append((args["op"], ch.native_type, ch.native_count))
        done.set()
    status, chid = ca.create_channel("cawave", on_conn)
    assert chid.native_type is None and chid.native_count is None   # not connected yet
    ca.flush_io()
    assert done.wait(TIMEOUT), "no connection callback"
    assert seen == [(ca.CA_OP.CONN_UP, ca.DBF.DOUBLE, ca.element_count(chid))]
    assert isinstance(chid.native_type, ca.DBF) and chid.native_count > 1
    with pytest.raises(AttributeError):
        chid.native_type = ca.DBF.LONG   # read-only
    ca.clear_channel(chid)
    assert chid.native_type == ca.DBF.DOUBLE   # the last connection's, also once cleared
    # without a connection callback the backend is not told: None
    status, plain = ca.create_channel("catest")
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL
    assert plain.native_type is None and ca.field_type(plain) == ca.DBF.DOUBLE
    ca.clear_channel(plain)


def test_connection_callback_pend_io_does_not_wait():
    got = Collector()
    status, chid = ca.create_channel("cabo", got)
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL
    got.wait_one()
    assert ca.state(chid) == ca.ChannelState.CONN
    ca.clear_channel(chid)


def test_access_rights_callback():
    chid = connect("ca:readonly")
    got = Collector()
    assert ca.replace_access_rights_event(chid, got) == ca.ECA_NORMAL
    # called once inside the call, because the channel is connected
    assert len(got.items) == 1
    assert got.items[0] == {"chid": chid, "read_access": True, "write_access": False}
    assert ca.replace_access_rights_event(chid, None) == ca.ECA_NORMAL
    ca.clear_channel(chid)
    assert ca.replace_access_rights_event(chid, got) == ca.ECA_BADCHID


def test_access_rights_change_at_run_time():
    guard = connect("ca:guard")
    write(guard, 0)
    chid = connect("ca:guarded")
    wait_until(lambda: not ca.write_access(chid), what="ca:guarded to be read-only")
    got = Collector()
    ca.replace_access_rights_event(chid, got)
    assert got.items[-1]["write_access"] is False
    write(guard, 1)
    got.wait(predicate=lambda items: items[-1]["write_access"] is True)
    assert ca.write_access(chid) is True
    assert write(chid, 3.0)["status"] == ca.ECA_NORMAL
    write(guard, 0)
    got.wait(predicate=lambda items: items[-1]["write_access"] is False)
    assert ca.put(chid, 4.0) == ca.ECA_NOWTACCESS
    ca.clear_channel(chid)
    ca.clear_channel(guard)


def test_exception_handler_receives_server_errors():
    chid = connect("cabo")
    got = Collector()
    assert ca.add_exception_event(got) == ca.ECA_NORMAL
    try:
        assert ca.put(chid, "Nonsense") == ca.ECA_NORMAL     # refused by the server
        ca.flush_io()
        d = got.wait_one()
        assert set(d) >= {"chid", "type", "count", "state", "stat", "op", "ctx", "file",
                          "lineNo"}
        assert d["state"] == d["stat"] and d["state"] != ca.ECA_NORMAL
        assert d["chid"] == chid
        assert d["op"] == ca.CA_OP.PUT
        assert isinstance(d["ctx"], str) and isinstance(d["file"], str)
        assert isinstance(d["lineNo"], int)
    finally:
        assert ca.add_exception_event(None) == ca.ECA_NORMAL
    ca.clear_channel(chid)


def test_printf_handler_gets_libca_messages():
    chid = connect("cabo")
    lines = Collector()
    assert ca.replace_printf_handler(lines) == ca.ECA_NORMAL
    try:
        ca.add_exception_event(None)           # libca's default handler prints via printf
        ca.put(chid, "Nonsense")
        ca.flush_io()
        lines.wait(predicate=lambda items: any("CA.Client.Exception" in s for s in items))
        assert all(isinstance(s, str) for s in lines.items)
    finally:
        assert ca.replace_printf_handler(None) == ca.ECA_NORMAL
    ca.clear_channel(chid)


class _PvCalls:
    """A pv_callback target: records (epicsArgs, user_args) pairs."""

    def __init__(self):
        self.got = Collector()

    def __call__(self, args, user_args):
        self.got((args, user_args))


def test_pv_callback_gets_plain_updates_in_3x_form():
    chid = connect("catest")
    write(chid, 1.0)
    plain, pv = Collector(), _PvCalls()
    status, evid = ca.create_subscription(chid, plain, ca.DBR_DOUBLE,
                                          pv_callback=(pv, ("u", 7)))
    assert status == ca.ECA_NORMAL
    ca.flush_io()
    args, user_args = pv.got.wait_one()
    assert user_args == ("u", 7)
    assert args == {"chid": chid, "type": ca.DBR.DOUBLE, "count": 1,
                    "status": ca.ECA.NORMAL, "pv_value": 1.0}
    write(chid, 2.5)
    assert [a["pv_value"] for a, _ in pv.got.wait(2)][:2] == [1.0, 2.5]
    assert ca.clear_subscription(evid) == ca.ECA_NORMAL
    n = len(pv.got.items)
    write(chid, 3.0)
    read(chid)
    ca.pend_event(0.1)
    assert len(pv.got.items) == n, "pv_callback called after clear_subscription"
    assert plain.items == [], "a plain update went to callback as well"
    ca.clear_channel(chid)


def test_pv_callback_arrays_follow_use_numpy():
    chid = connect("cawave")
    write(chid, [1, 2, 3])
    for use_numpy, kind in ((False, list), (True, np.ndarray)):
        pv = _PvCalls()
        status, evid = ca.create_subscription(chid, Collector(), ca.DBR_DOUBLE, 3,
                                              use_numpy=use_numpy, pv_callback=(pv, ()))
        ca.flush_io()
        args, user_args = pv.got.wait_one()
        assert isinstance(args["pv_value"], kind) and list(args["pv_value"]) == [1, 2, 3]
        assert "value" not in args and user_args == ()
        ca.clear_subscription(evid)
    ca.clear_channel(chid)


def test_pv_callback_leaves_structured_updates_to_callback():
    chid = connect("catest")
    write(chid, 4.0)
    plain, pv = Collector(), _PvCalls()
    status, evid = ca.create_subscription(chid, plain, ca.DBR_TIME_DOUBLE,
                                          pv_callback=(pv, ()))
    ca.flush_io()
    d = plain.wait_one()
    assert d["value"]["value"] == 4.0 and "pv_value" not in d
    ca.clear_subscription(evid)
    ca.pend_event(0.05)
    assert pv.got.items == []
    ca.clear_channel(chid)


def test_pv_callback_that_raises_is_reported_and_kept(capfd):
    chid = connect("catest")
    calls = []

    def bad(args, user_args):
        calls.append(args["pv_value"])
        raise RuntimeError("boom from a pv_callback")

    status, evid = ca.create_subscription(chid, Collector(), pv_callback=(bad, ()))
    ca.flush_io()
    wait_until(lambda: calls, what="the raising pv_callback")
    write(chid, 9.0)
    wait_until(lambda: 9.0 in calls, what="an update after the exception")
    ca.clear_subscription(evid)
    ca.pend_event(0.05)
    err = capfd.readouterr().err
    assert "CaChannel: exception in monitor callback (ignored):" in err
    assert "boom from a pv_callback" in err and "Traceback" in err
    ca.clear_channel(chid)


@pytest.mark.parametrize("bad, exc", [
    (print, TypeError),                     # not a pair
    ((print,), TypeError),
    ((print, [1]), TypeError),              # user args not a tuple
    ((42, ()), TypeError),                  # not callable
])
def test_pv_callback_bad_argument(bad, exc):
    chid = connect("catest")
    with pytest.raises(exc, match="pv_callback"):
        ca.create_subscription(chid, print, pv_callback=bad)
    ca.clear_channel(chid)


def test_pv_callback_not_with_augment_or_queue():
    chid = connect("catest")
    class Value(float):
        pass

    with pytest.raises(ValueError, match="pv_callback"):
        ca.create_subscription(chid, print, augment=(Value, {}), pv_callback=(print, ()))
    if hasattr(ca, "EventQueue"):  # POSIX only
        with pytest.raises(ValueError, match="pv_callback"):
            ca.create_subscription(chid, print, queue=ca.EventQueue(), pv_callback=(print, ()))
    ca.clear_channel(chid)


def test_pv_form_and_check_rules():
    from CaChannel import _common  # the rules both backends follow

    assert _common.pv_form(ca.DBR_STRING, ca.ECA_NORMAL, True)
    assert _common.pv_form(ca.DBR_DOUBLE, ca.ECA_NORMAL, True)
    assert not _common.pv_form(ca.DBR_TIME_DOUBLE, ca.ECA_NORMAL, True)
    assert _common.pv_form(ca.DBR_TIME_DOUBLE, ca.ECA_NORDACCESS, True)  # no value: None
    assert _common.pv_form(ca.DBR_CTRL_ENUM, ca.ECA_NORMAL, False)
    _common.pv_callback_check(None, None, None)
    _common.pv_callback_check((print, ()), None, None)
    with pytest.raises(ValueError):
        _common.pv_callback_check((print, ()), None, object())
