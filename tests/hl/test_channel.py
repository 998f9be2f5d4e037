"""CaChannel/util/epicsPV/epicsMotor behaviour: bad input, interop servers, callbacks."""
import pickle
import threading
import time

import pytest

import CaChannel as pkg
from CaChannel import ca, CaChannel, CaChannelException
from CaChannel import core, util
from CaChannel.epicsMotor import epicsMotor, epicsMotorException
from CaChannel.epicsPV import epicsPV

WAIT = 5.0


def connected(name, timeout=None):
    chan = CaChannel(name)
    if timeout is not None:
        chan.setTimeout(timeout)
    chan.searchw()
    return chan


# ------------------------------------------------------------------ exception
def test_exception_protocol():
    e = CaChannelException(ca.ECA_TIMEOUT)
    assert e.status == 80 and int(e) == 80 and e.args == (80,)
    assert [10, 20][0:CaChannelException(1)] == [10]  # __index__
    assert str(e) == ca.message(ca.ECA_TIMEOUT)
    assert ca.message(e) == str(e)
    d = CaChannelException(ca.ECA_NOWTACCESS, "x is read-only")
    assert str(d).startswith(ca.message(ca.ECA_NOWTACCESS)) and "x is read-only" in str(d)
    assert d.args == (ca.ECA_NOWTACCESS,)


# ------------------------------------------------------------------ bad input
def test_searchw_missing_pv_raises_within_timeout():
    chan = CaChannel("hl:does:not:exist")
    chan.setTimeout(0.5)
    t0 = time.monotonic()
    with pytest.raises(CaChannelException) as info:
        chan.searchw()
    assert info.value.status == ca.ECA_TIMEOUT
    assert time.monotonic() - t0 < 3.0


def test_never_searched_object():
    chan = CaChannel("catest")
    assert chan.state() == ca.cs_never_search
    chan.clear_channel()  # no-op
    for call in (chan.getw, chan.field_type, chan.element_count, chan.name, chan.host_name,
                 chan.read_access, chan.write_access, chan.array_get, chan.getValue.__call__ and chan.clear_event):
        try:
            call()
        except CaChannelException as exc:
            assert exc.status == ca.ECA_BADCHID
    with pytest.raises(CaChannelException):
        chan.putw(1)
    with pytest.raises(CaChannelException):
        chan.add_masked_array_event(None, None, None, lambda *a: None)
    assert chan.getValue() is None


def test_cleared_channel_raises():
    chan = connected("catest")
    chan.clear_channel()
    assert chan.state() == ca.cs_never_search
    with pytest.raises(CaChannelException):
        chan.getw()
    with pytest.raises(CaChannelException):
        chan.putw(1)
    chan.clear_channel()


def test_never_connected_channel_raises():
    chan = CaChannel("hl:never:connects")
    chan.search()
    assert chan.state() == ca.cs_never_conn
    with pytest.raises(CaChannelException):
        chan.getw()
    with pytest.raises(CaChannelException):
        chan.putw(1)
    chan.clear_channel()


def test_set_timeout_validation():
    chan = CaChannel()
    with pytest.raises(ValueError):
        chan.setTimeout(-1)
    with pytest.raises(TypeError):
        chan.setTimeout("x")
    chan.setTimeout(None)
    assert chan.getTimeout() == CaChannel.ca_timeout


def test_bad_names():
    with pytest.raises(TypeError):
        CaChannel().search(12)
    with pytest.raises(ValueError):
        CaChannel().search()


def test_putw_unknown_enum_string_names_pv():
    chan = connected("cabo")
    with pytest.raises(CaChannelException) as info:
        chan.putw("Nonsense")
    assert "cabo" in str(info.value)


def test_putw_too_long_string_names_pv():
    chan = connected("ca:scalar:STRING")
    with pytest.raises(CaChannelException) as info:
        chan.putw("x" * 60)
    assert "ca:scalar:STRING" in str(info.value)


def test_putw_wrong_type_names_pv():
    chan = connected("catest")
    with pytest.raises((TypeError, ValueError)) as info:
        chan.putw({"a": 1})
    assert "catest" in str(info.value)
    with pytest.raises(ValueError) as info:
        chan.putw("not a number")
    assert "catest" in str(info.value)


def test_putw_readonly_names_pv():
    chan = connected("ca:readonly")
    assert chan.read_access() and not chan.write_access()
    with pytest.raises(CaChannelException) as info:
        chan.putw(1)
    assert "ca:readonly" in str(info.value)
    assert info.value.status == ca.ECA_NOWTACCESS


def test_caput_wait_refused_names_pv():
    with pytest.raises(CaChannelException) as info:
        util.caput("ca:readonly", 3, wait=True, timeout=WAIT)
    assert "ca:readonly" in str(info.value)


# ------------------------------------------------------------------ callbacks
def test_plain_update_epics_args_keys_and_values():
    """A plain scalar's epicsArgs (renamed in place from the backend's dict)
    has 3.x's keys in 3.x's order, for a monitor and for array_get_callback;
    the values are the update's own."""
    chan = connected("catest")
    chan.putw(12.5)
    seen, ev = [], threading.Event()

    def on(epics_args, user_args):
        seen.append((list(epics_args), dict(epics_args), user_args))
        ev.set()
    chan.add_masked_array_event(ca.DBR_DOUBLE, 1, None, on, "mon")
    chan.flush_io()
    assert ev.wait(WAIT), "no monitor update"
    chan.clear_event()
    ev.clear()
    chan.array_get_callback(ca.DBR_DOUBLE, 1, on, "get")
    chan.flush_io()
    assert ev.wait(WAIT), "no get callback"
    for (keys, args, user), tag in zip(seen, ("mon", "get")):
        assert keys == ["chid", "type", "count", "status", "pv_value"], keys
        assert args["pv_value"] == 12.5 and args["type"] == ca.DBR_DOUBLE
        assert args["count"] == 1 and args["status"] == ca.ECA_NORMAL
        assert args["chid"] == chan.core_channel.chid and user == (tag,)


def test_raising_callback_does_not_stop_others(capfd):
    a, b = connected("catest"), connected("catest")
    got = threading.Event()

    def bad(epics_args, user_args):
        raise RuntimeError("boom in user callback")

    def good(epics_args, user_args):
        if epics_args["pv_value"] == 77.0:
            got.set()

    a.add_masked_array_event(None, None, None, bad)
    b.add_masked_array_event(None, None, None, good)
    a.flush_io()
    a.putw(77)
    assert got.wait(WAIT), "second monitor callback did not run"
    a.clear_event()
    b.clear_event()
    a.flush_io()
    err = capfd.readouterr().err
    assert "boom in user callback" in err
    assert "CaChannel: exception in monitor callback (ignored):" in err


@pytest.mark.parametrize("req_type", [ca.DBR_DOUBLE, ca.DBR_TIME_DOUBLE])
def test_raising_monitor_callback_report_is_the_same_for_every_type(capfd, req_type):
    # plain types are called back by the backend itself (pv_callback=), the
    # others through the 3.x object: one report either way
    chan = connected("catest")
    ran = threading.Event()

    def bad(epics_args, user_args):
        ran.set()
        raise ZeroDivisionError("boom %s" % user_args[0])

    chan.add_masked_array_event(req_type, None, None, bad, req_type)
    chan.flush_io()
    assert ran.wait(WAIT), "monitor callback did not run"
    chan.clear_event()
    chan.flush_io()
    err = capfd.readouterr().err
    assert "CaChannel: exception in monitor callback (ignored):" in err
    assert "ZeroDivisionError: boom %d" % req_type in err and "Traceback" in err


def test_search_and_connect_and_access_rights_from_thread():
    result = {}
    done = threading.Event()

    def worker():
        chan = CaChannel()
        conn = threading.Event()
        chan.search_and_connect("catest", lambda args, user: conn.set() if args[1] == ca.CA_OP_CONN_UP else None)
        chan.flush_io()
        result["conn"] = conn.wait(WAIT)
        seen = []
        chan.replace_access_rights_event(lambda args, user: seen.append((args["read_access"], user)), "u")
        result["access"] = seen
        result["value"] = chan.getw()
        done.set()

    threading.Thread(target=worker).start()
    assert done.wait(2 * WAIT)
    assert result["conn"] and result["access"] == [(True, "u")]
    assert isinstance(result["value"], float)


def test_use_numpy_read_at_call_time():
    np = pytest.importorskip("numpy")
    chan = connected("cawave")
    chan.putw([1, 2, 3])
    assert isinstance(chan.getw(count=3), list)
    pkg.USE_NUMPY = True
    try:
        assert isinstance(chan.getw(count=3), np.ndarray)
    finally:
        pkg.USE_NUMPY = False


def test_char_as_string_numpy():
    chan = connected("cawavec")
    chan.putw("ab")
    assert chan.getw(ca.DBR_STRING, use_numpy=True) == "ab"
    assert chan.getw(ca.DBR_TIME_STRING)["pv_value"] == "ab"


def test_camonitor_as_string_char(capsys):
    util.caput("cawavec", "xyz", wait=True, timeout=WAIT)
    got = []
    ev = threading.Event()
    util.camonitor("cawavec", as_string=True, callback=lambda a, u: (got.append(a["pv_value"]), ev.set()))
    assert ev.wait(WAIT)
    util.camonitor("cawavec", callback=())
    assert got[0] == "xyz"


def test_cainfo_not_connected_layout(capsys):
    util.cainfo("catest")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "catest"
    assert out[1] == "    State:          Connected"
    assert out[3] == "    Data type:      DBF_DOUBLE"


def test_caget_missing_not_cached():
    with pytest.raises(CaChannelException):
        CaChannel.ca_timeout = 0.5
        try:
            util.caget("hl:missing:pv")
        finally:
            CaChannel.ca_timeout = 3.0
    assert "hl:missing:pv" not in {ch.name for ch in core.channels()}


# ------------------------------------------------------------------ epicsPV
def test_epicspv_monitor_and_putwait():
    pv = epicsPV("catest")
    pv.putWait(2.5, timeout=WAIT)
    pv.setMonitor()
    pv.putWait(3.5, timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while pv.getw() != 3.5 and time.monotonic() < deadline:
        pv.pend_event(0.01)
    assert pv.getw() == 3.5
    pv.getControl()
    assert pv.callBack.pv_units == "mm" and pv.callBack.pv_precision == 4
    pv.clearMonitor()
    assert pv.callBack.monitorState == 0


def test_top_level_modules():
    import epicsMotor as top_motor
    import epicsPV as top_pv
    assert top_pv.epicsPV is epicsPV and top_motor.epicsMotor is epicsMotor
    assert issubclass(top_pv.epicsPV, top_pv.CaChannel)


# ------------------------------------------------------------------ interop
PREFIXES = ["", "cap:", "pcas:"]


@pytest.fixture(params=PREFIXES, ids=["softioc", "caproto", "pcaspy"])
def prefix(request, hl_servers):
    if request.param == "pcas:" and "pcaspy" not in hl_servers:
        pytest.skip("pcaspy not installed")
    return request.param


def test_interop_get_put(prefix):
    chan = connected(prefix + "catest")
    chan.putw(12.5)
    assert chan.getw() == 12.5
    ctrl = chan.getw(ca.DBR_CTRL_DOUBLE)
    assert ctrl["pv_units"] == "mm" and ctrl["pv_precision"] == 4
    assert ctrl["pv_upalarmlim"] == 20.0 and ctrl["pv_upwarnlim"] == 10.0


def test_interop_enum(prefix):
    chan = connected(prefix + "cabo")
    chan.putw("Busy")
    assert chan.getw() == 1
    assert chan.getw(ca.DBR_STRING) == "Busy"
    assert chan.getw(ca.DBR_CTRL_ENUM)["pv_statestrings"] == ("Done", "Busy")
    with pytest.raises(CaChannelException) as info:
        chan.putw("Nonsense")
    assert "cabo" in str(info.value)
    chan.putw(0)
    assert chan.getw(ca.DBR_STRING) == "Done"


def test_interop_arrays_strings(prefix):
    wave = connected(prefix + "cawave")
    wave.putw([1, 2, 3])
    assert wave.getw(req_type=ca.DBR_LONG, count=4) == [1, 2, 3, 0]
    chars = connected(prefix + "cawavec")
    chars.putw("123")
    assert chars.getw(count=4) == [49, 50, 51, 0]
    assert chars.getw(ca.DBR_STRING) == "123"
    strings = connected(prefix + "cawaves")
    if prefix.startswith("pcas"):
        # pcaspy 0.8.1 (numpy 2) dies on any DBR_STRING array put, pyepics'
        # included: read its string array only
        assert strings.getw() == ["", "", ""]
        return
    strings.putw(["string 1", "string 2"])
    assert strings.getw()[:2] == ["string 1", "string 2"]


def test_interop_monitor_and_put_callback(prefix):
    chan = connected(prefix + "catest")
    seen = []
    updated = threading.Event()
    put_done = threading.Event()

    def on_event(args, user):
        seen.append(args["pv_value"])
        if args["pv_value"] == 7.25:
            updated.set()

    chan.add_masked_array_event(ca.DBR_TIME_DOUBLE, None, None, on_event)
    chan.array_put_callback(7.25, None, None, lambda args, user: put_done.set() if args["status"] == ca.ECA_NORMAL else None)
    chan.flush_io()
    assert put_done.wait(WAIT) and updated.wait(WAIT)
    chan.clear_event()
    chan.flush_io()


def test_pcaspy_pickled_table(pcas_server):
    table = connected("pcas:table")
    assert table.field_type() in (ca.DBF_CHAR,)
    raw = table.getw(use_numpy=True).tobytes()
    rows = pickle.loads(raw)
    assert len(rows) == 9 and rows[0]["d"] == float("inf")
    assert rows[-1]["2theta"] == 103.441


def test_caproto_sequence_server():
    cmd = connected("cap:CMD")
    ack = connected("cap:ACK")
    values = connected("cap:values")
    assert not ack.write_access()
    updates = []
    got = threading.Event()

    def on_values(args, user):
        updates.append(args["pv_value"])
        if isinstance(args["pv_value"], list) and args["pv_value"] and args["pv_value"][0] == 5000.0:
            got.set()

    values.add_masked_array_event(None, 0, None, on_values)
    values.flush_io()
    command = ("move x 1; " * 500)[:5000]
    done = threading.Event()
    status = {}
    cmd.array_put_callback(command, None, None, lambda a, u: (status.update(a), done.set()))
    cmd.flush_io()
    assert done.wait(WAIT) and status["status"] == ca.ECA_NORMAL
    assert ack.getw(ca.DBR_STRING) == "done 5000"  # caproto serves str as a CHAR array
    assert got.wait(WAIT)
    assert cmd.getw(ca.DBR_STRING) == command
    values.clear_event()
    with pytest.raises(CaChannelException) as info:
        ack.putw("x")
    assert "cap:ACK" in str(info.value)


# ------------------------------------------------------------------ motor
@pytest.fixture
def motor(hl_servers):
    m = epicsMotor("13BMD:m1")
    m.dial_high_limit = 500
    m.dial_low_limit = -500
    m.offset = 0
    m.move(0, ignore_limits=True)
    m.wait(ignore_limits=True)
    return m


def test_motor_move_and_positions(motor):
    motor.move(10)
    motor.wait()
    assert motor.get_position(readback=True) == pytest.approx(10.0)
    motor.move(5, relative=True)
    motor.wait(start=True, stop=True)
    assert motor.get_position(readback=True) == pytest.approx(15.0)
    motor.move(100, step=True, relative=True)
    motor.wait()
    assert motor.get_position(readback=True, step=True) == 15100
    assert motor.done_moving == 1
    motor.done_moving = 0  # read-only: ignored
    assert isinstance(type(motor).slew_speed, object)


def test_motor_soft_limit(motor):
    with pytest.raises(epicsMotorException) as info:
        motor.move(600)
    assert str(info.value) == "Soft limit violation"
    motor.move(600, ignore_limits=True)
    assert motor.get_position() == pytest.approx(0.0)


def test_motor_hard_limit_in_wait(motor):
    motor.dial_high_limit = 2000
    # 10x the default speed: the run to the hard limit at 1000 and back takes
    # 2 s instead of 20 (the limit logic does not depend on the speed)
    util.caput("13BMD:m1.VELO", 1000.0, wait=True)
    try:
        motor.move(1500)
        with pytest.raises(epicsMotorException) as info:
            motor.wait()
        assert str(info.value) == "High hard limit violation"
        assert motor.get_position(readback=True, dial=True) == pytest.approx(1000.0)
    finally:
        motor.dial_high_limit = 500
        motor.move(0, ignore_limits=True)
        motor.wait(ignore_limits=True)
        util.caput("13BMD:m1.VELO", 100.0, wait=True)


def test_motor_set_position_and_stop(motor):
    motor.set_position(100)
    assert motor.get_position() == pytest.approx(100.0)
    assert motor.get_position(dial=True) == pytest.approx(0.0)
    assert motor.offset == pytest.approx(100.0)
    motor.move(400)
    motor.wait(start=True)
    # DMOV drops before the simulator's first position tick: stop only once
    # the readback has left the start, or there is nothing to stop
    deadline = time.monotonic() + 5.0
    while motor.get_position(readback=True) <= 100.0:
        assert time.monotonic() < deadline, "the motor readback never left 100"
        time.sleep(0.01)
    motor.stop()
    motor.wait()
    assert 100.0 < motor.get_position(readback=True) < 400.0


def test_motor_absent_raises():
    CaChannel.ca_timeout = 0.5
    try:
        with pytest.raises(CaChannelException):
            epicsMotor("hl:no:motor")
    finally:
        CaChannel.ca_timeout = 3.0
