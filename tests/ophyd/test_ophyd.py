"""ophyd (from PyPI) on CaChannel's control layer, against the test IOC and the motor simulator."""
from __future__ import annotations

import queue
import threading
import time

import importlib.util

import pytest

from CaChannel import PV, CaChannel, CaChannelException, ca, util

# ophyd is imported by the ``cl`` fixture (CaChannel.ophyd.use()), not here: importing it
# at collection would let it start another control layer's CA client (pyepics, if
# installed) in this process before any test runs.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ophyd") is None, reason="ophyd is not installed")

TIMEOUT = 10.0


def test_use_installs_the_layer(cl):
    import ophyd
    import CaChannel.ophyd as layer
    assert ophyd.get_cl() is cl
    assert cl.name == "cachannel"
    for key in ("setup", "caget", "caput", "get_pv", "thread_class", "name", "release_pvs", "get_dispatcher"):
        assert hasattr(cl, key), key
    assert cl.get_dispatcher() is not None
    assert cl.get_dispatcher() is layer.get_dispatcher()
    assert cl.setup(None) is cl.get_dispatcher()  # a second setup keeps the dispatcher


def test_layer_caget_caput(cl):
    assert cl.caput("catest", 3.25, wait=True) == 1
    assert cl.caget("catest") == 3.25
    assert cl.caget("cabo", as_string=True) in ("Done", "Busy")
    assert cl.caget("no:such:pv", connection_timeout=0.2) is None


def test_epics_signal_read_put_subscribe(cl):
    from ophyd import EpicsSignal
    sig = EpicsSignal("catest", name="sig")
    sig.wait_for_connection(timeout=TIMEOUT)
    assert sig.cl is cl
    sig.put(4.5, wait=True)
    assert sig.get() == 4.5
    reading = sig.read()["sig"]
    assert reading["value"] == 4.5 and reading["timestamp"] > 1e9
    desc = sig.describe()["sig"]
    assert desc["units"] == "mm" and desc["precision"] == 4 and desc["dtype"] == "number"
    assert sig.precision == 4

    seen = queue.Queue()
    threads = []

    def on_value(value=None, **kw):
        threads.append(threading.current_thread().name)
        seen.put(value)

    sig.subscribe(on_value, run=False)
    st = sig.set(6.5)
    st.wait(TIMEOUT)
    assert st.success
    while seen.get(timeout=TIMEOUT) != 6.5:
        pass
    # ophyd callbacks come from its dispatcher, never from libca's threads
    assert "monitor" in threads
    assert sig.get() == 6.5
    sig.destroy()


def test_epics_signal_ro_and_enum(cl):
    from ophyd import EpicsSignal, EpicsSignalRO
    from ophyd.utils.errors import ReadOnlyError
    ro = EpicsSignalRO("ca:readonly", name="ro")
    ro.wait_for_connection(timeout=TIMEOUT)
    assert ro.get() == 7.0
    with pytest.raises(ReadOnlyError):
        ro.put(1)
    en = EpicsSignal("cabo", name="en", string=True)
    en.wait_for_connection(timeout=TIMEOUT)
    en.put("Busy", wait=True)
    assert en.get() == "Busy"
    assert tuple(en.enum_strs) == ("Done", "Busy")
    en.put("Done", wait=True)
    index = EpicsSignal("cabo", name="index")
    assert index.get() == 0
    ro.destroy()
    en.destroy()
    index.destroy()


def test_monitored_readback_signal(cl):
    from ophyd import EpicsSignalRO
    calc = EpicsSignalRO("cacalc", name="calc", auto_monitor=True)
    calc.wait_for_connection(timeout=TIMEOUT)
    values = queue.Queue()
    calc.subscribe(lambda value=None, **kw: values.put(value))
    got = [values.get(timeout=TIMEOUT) for _ in range(3)]
    assert got[2] > got[0]  # cacalc counts up every 0.1 s
    calc.destroy()


def test_put_with_completion(cl):
    from ophyd import EpicsSignal
    slow = EpicsSignal("pv:slowput.A", name="slow", put_complete=True)
    slow.wait_for_connection(timeout=TIMEOUT)
    start = time.monotonic()
    st = slow.set(slow.get() + 1)
    assert not st.done  # the record completes 0.5 s after the write
    st.wait(TIMEOUT)
    assert st.success
    assert time.monotonic() - start >= 0.4

    done = threading.Event()
    slow.put(3, use_complete=True, callback=lambda **kw: done.set())
    assert done.wait(TIMEOUT)
    assert PV("pv:slowput").get(use_monitor=False) == 3
    slow.destroy()


def test_connection_timeouts(cl):
    from ophyd import EpicsSignal
    from ophyd.signal import ConnectionTimeoutError
    bad = EpicsSignal("no:such:pv", name="bad")
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        bad.wait_for_connection(timeout=0.3)
    with pytest.raises(ConnectionTimeoutError):
        bad.get(connection_timeout=0.3)
    assert time.monotonic() - start < 5
    assert not bad.connected
    bad.destroy()


def test_epics_motor_moves_and_waits_for_dmov(cl, motor_sim):
    from ophyd import EpicsMotor
    motor = EpicsMotor("ophyd:m1", name="motor")
    motor.wait_for_connection(timeout=TIMEOUT)
    assert motor.egu == "mm"
    dmov = queue.Queue()
    motor.motor_done_move.subscribe(lambda value=None, **kw: dmov.put(value), run=False)
    for target in (2.0, -1.5):
        status = motor.move(target, wait=True, timeout=TIMEOUT)
        assert status.success and status.done
        assert motor.position == pytest.approx(target, abs=1e-3)
        assert motor.user_readback.get(use_monitor=False) == pytest.approx(target, abs=1e-3)
        assert motor.motor_done_move.get(use_monitor=False) == 1
        # the move was seen: DMOV went 0, then back to 1
        assert dmov.get(timeout=TIMEOUT) == 0
        assert dmov.get(timeout=TIMEOUT) == 1
    # not waiting: the status finishes when DMOV returns to 1
    status = motor.move(0.0, wait=False)
    assert not status.done
    status.wait(TIMEOUT)
    assert motor.position == pytest.approx(0.0, abs=1e-3)
    motor.destroy()


@pytest.fixture
def forget_util_channels():
    yield
    util.clear_cache()  # no cached channel to the reconnect IOC once it is stopped


def test_signal_disconnect_and_reconnect(cl, reconnect_ioc, forget_util_channels):
    """One IOC kill and restart: the signal and a plain PV see both transitions."""
    from ophyd import EpicsSignal
    sig = EpicsSignal("rc:ao", name="rc")
    sig.wait_for_connection(timeout=TIMEOUT)
    assert sig.get() == 1.0
    meta = queue.Queue()
    sig.subscribe(lambda connected=None, **kw: meta.put(connected), event_type=sig.SUB_META, run=False)
    states = queue.Queue()
    pv = PV("rc:ao", connection_callback=lambda pvname=None, conn=None, **kw: states.put(conn))
    assert pv.wait_for_connection(TIMEOUT)
    assert states.get(timeout=TIMEOUT) is True

    assert util.caget(["rc:ao", "catest"], timeout=TIMEOUT)[0] == 1.0  # cached by util

    reconnect_ioc.kill()
    assert states.get(timeout=TIMEOUT) is False
    while meta.get(timeout=TIMEOUT) is not False:
        pass
    assert not sig.connected
    assert pv.get(timeout=0.2) is None
    # util's cached channel is disconnected: named as such, the other read still done
    with pytest.raises(CaChannelException) as info:
        util.caget(["catest", "rc:ao"], timeout=1)
    assert list(info.value.failures) == ["rc:ao"]
    assert info.value.failures["rc:ao"].status == ca.ECA_DISCONN

    reconnect_ioc.start()
    # libca searches again after a beacon anomaly; allow for its back-off
    assert states.get(timeout=40) is True
    while meta.get(timeout=40) is not True:
        pass
    assert sig.connected
    assert sig.get() == 1.0  # the restarted IOC's initial value
    sig.put(2.5, wait=True)
    assert sig.get() == 2.5
    assert pv.get(use_monitor=False) == 2.5
    assert util.caget(["rc:ao"], timeout=TIMEOUT) == [2.5]
    sig.destroy()
    # util still caches rc:ao; with its IOC gone, other searches must not wait for it
    # (libca's pend_io counts disconnected channels that have no connection callback)
    reconnect_ioc.kill()
    assert states.get(timeout=TIMEOUT) is False
    chan = CaChannel("cabo")
    start = time.monotonic()
    chan.searchw()  # pend_io: raises on timeout (3 s)
    assert time.monotonic() - start < 2.5
    chan.clear_channel()
