"""CaChannel.PV: pyepics' PV API against the test IOC."""
from __future__ import annotations

import doctest
import gc
import queue
import subprocess
import sys
import threading
import time

import pytest

import CaChannel
from CaChannel import CaChannelException, PV, ca, core, get_pv
import CaChannel.pv as pvmod

TIMEOUT = 10.0


def _drain_until(q, predicate, timeout=TIMEOUT):
    """Items of ``q`` until one satisfies ``predicate`` (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        item = q.get(timeout=max(deadline - time.monotonic(), 0.01))
        if predicate(item):
            return item


def test_lazy_export_keeps_import_light():
    code = ("import sys, CaChannel; assert 'CaChannel.pv' not in sys.modules; "
            "from CaChannel import PV, get_pv; assert 'CaChannel.pv' in sys.modules; "
            "assert PV is CaChannel.pv.PV and get_pv is CaChannel.pv.get_pv")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with pytest.raises(AttributeError):
        CaChannel.no_such_attribute


def test_module_doctests(softioc):
    globs = {"PV": PV, "get_pv": get_pv, "ca": ca}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = doctest.DocTestFinder(exclude_empty=True).find(pvmod, pvmod.__name__, globs=globs)
    assert len(tests) > 5
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_attributes_and_metadata(softioc):
    pv = PV("catest")
    assert pv.wait_for_connection(TIMEOUT)
    assert pv.put(1.0, wait=True) == 1
    assert pv.connected and pv.pvname == "catest"
    assert (pv.count, pv.nelm, pv.type, pv.ftype) == (1, 1, "time_double", ca.DBR_TIME_DOUBLE)
    assert pv.host.endswith(":%d" % softioc.port)
    assert (pv.access, pv.read_access, pv.write_access) == ("read/write", True, True)
    assert (pv.units, pv.precision) == ("mm", 4)
    assert (pv.upper_disp_limit, pv.lower_disp_limit) == (20.0, -20.0)
    assert (pv.upper_alarm_limit, pv.lower_alarm_limit) == (20.0, -20.0)
    assert (pv.upper_warning_limit, pv.lower_warning_limit) == (10.0, -10.0)
    assert (pv.upper_ctrl_limit, pv.lower_ctrl_limit) == (0.0, 0.0)
    assert (pv.status, pv.severity) == (0, 0)
    assert abs(pv.timestamp - time.time()) < 60
    assert pv.posixseconds == int(pv.timestamp)
    assert 0 <= pv.nanoseconds < 1e9
    assert pv.char_value == "1.0000"
    assert repr(pv) == "<PV 'catest', count=1, type=time_double, access=read/write>"
    info = pv.info
    assert info.startswith("== catest (time_double) ==") and "units      = mm" in info
    assert pv.get_timevars()["severity"] == 0
    ctrl = pv.get_ctrlvars()
    assert ctrl["units"] == "mm" and "value" not in ctrl
    md = pv.get_with_metadata(form="ctrl")
    assert md["value"] == 1.0 and md["precision"] == 4
    ro = PV("ca:readonly")
    assert ro.wait_for_connection(TIMEOUT)
    assert (ro.access, ro.write_access) == ("read-only", False)


def test_forms(softioc):
    ctrl = PV("ca:limits", form="ctrl")
    native = PV("ca:limits", form="native")
    assert ctrl.wait_for_connection(TIMEOUT) and native.wait_for_connection(TIMEOUT)
    assert ctrl.type == "ctrl_double" and native.type == "double"
    md = ctrl.get_with_metadata()
    assert (md["upper_ctrl_limit"], md["lower_ctrl_limit"], md["units"]) == (90.0, -90.0, "deg")
    assert native.get() == ctrl.get()
    with pytest.raises(ValueError):
        PV("catest", form="bogus")
    with pytest.raises(TypeError):
        PV(42)


def test_get_variants(softioc):
    pv = PV("cawave")
    assert pv.put(list(range(5)), wait=True) == 1
    arr = pv.get()
    assert type(arr).__name__ == "ndarray" and arr.tolist()[:5] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert pv.get(as_numpy=False, count=3) == [0.0, 1.0, 2.0]
    assert pv.get(use_monitor=False, count=2).tolist() == [0.0, 1.0]
    assert pv.char_value.startswith("<array size=")
    var = PV("ca:varwave")  # NELM 100, NORD follows the writes
    assert var.put([7.0], wait=True) == 1
    assert var.get(use_monitor=False).tolist() == [7.0]
    assert var.get(as_numpy=False) == [7.0]
    assert var.put([1.0, 2.0, 3.0], wait=True) == 1
    assert var.get().tolist() == [1.0, 2.0, 3.0] and var.count == 3 and var.nelm == 100
    nomon = PV("catest", auto_monitor=False)
    assert nomon.wait_for_connection(TIMEOUT)
    assert nomon.auto_monitor is False and nomon.auto_monitor_mask is None
    nomon.put(2.0, wait=True)
    assert nomon.get() == 2.0
    md = PV("catest", auto_monitor=False).get_with_metadata(with_ctrlvars=True, timeout=TIMEOUT)
    assert (md["value"], md["units"], md["upper_disp_limit"]) == (2.0, "mm", 20.0)
    assert PV("catest").get(with_ctrlvars=True, as_string=True, timeout=TIMEOUT) == "2.0000"
    # string and enum
    s = PV("ca:scalar:STRING")
    s.put("hello", wait=True)
    assert s.get() == "hello" and s.char_value == "hello"
    e = PV("cabo")
    e.put(1, wait=True)
    assert e.get(as_string=True) == "Busy" and e.char_value == "Busy"


def test_auto_monitor_threshold_and_mask(softioc):
    big = PV("ca:bigwave")
    small = PV("cawave")
    assert big.wait_for_connection(TIMEOUT) and small.wait_for_connection(TIMEOUT)
    assert pvmod.AUTOMONITOR_MAXLENGTH == 65536
    assert big.nelm == 4000000 and big.auto_monitor is False and big.auto_monitor_mask is None
    assert small.auto_monitor is True
    assert small.auto_monitor_mask == ca.DBE_VALUE | ca.DBE_ALARM
    # a DBE mask: alarm changes only
    writer = PV("ca:limits")
    assert writer.wait_for_connection(TIMEOUT)
    writer.put(5.0, wait=True)
    alarms = queue.Queue()
    pv = PV("ca:limits", auto_monitor=ca.DBE_ALARM,
            callback=lambda value=None, severity=None, **kw: alarms.put((value, severity)))
    assert pv.wait_for_connection(TIMEOUT)
    assert pv.auto_monitor_mask == ca.DBE_ALARM
    assert alarms.get(timeout=TIMEOUT) == (5.0, 0)  # the initial update
    writer.put(6.0, wait=True)  # value change without alarm change: no update
    writer.put(60.0, wait=True)  # HIGH (50): minor alarm
    assert alarms.get(timeout=TIMEOUT) == (60.0, 1)
    writer.put(5.0, wait=True)
    assert alarms.get(timeout=TIMEOUT) == (5.0, 0)


def test_callbacks_share_one_subscription_and_survive_errors(softioc, capfd):
    pv = PV("catest")
    assert pv.wait_for_connection(TIMEOUT)
    first, second = queue.Queue(), queue.Queue()

    def broken(**kw):
        raise RuntimeError("callback failure for the test")

    i1 = pv.add_callback(lambda value=None, cb_info=None, **kw: first.put((value, cb_info)))
    i2 = pv.add_callback(broken)
    i3 = pv.add_callback(lambda value=None, tag=None, **kw: second.put((value, tag)), tag="extra")
    assert (i1, i2, i3) == (1, 2, 3)
    evid = pv._evid
    pv.put(7.0, wait=True)
    value, cb_info = _drain_until(first, lambda item: item[0] == 7.0)
    assert cb_info == (1, pv)
    assert _drain_until(second, lambda item: item[0] == 7.0) == (7.0, "extra")
    assert pv._evid is evid  # still the one subscription
    assert "callback failure for the test" in capfd.readouterr().err
    pv.remove_callback(i1)
    pv.remove_callback(i2)
    pv.put(8.0, wait=True)
    assert _drain_until(second, lambda item: item[0] == 8.0) == (8.0, "extra")
    assert all(item[0] != 8.0 for item in list(first.queue))
    # keywords a callback receives (pyepics' names)
    keys = queue.Queue()
    pv.add_callback(lambda **kw: keys.put(kw), index=10, run_now=True)
    kw = keys.get(timeout=TIMEOUT)
    for key in ("pvname", "value", "char_value", "status", "severity", "timestamp", "count", "type",
                "ftype", "units", "precision", "enum_strs", "cb_info", "host", "access"):
        assert key in kw, key
    assert kw["cb_info"][0] == 10 and kw["pvname"] == "catest"
    pv.run_callbacks()
    assert keys.get(timeout=TIMEOUT)["value"] == 8.0
    pv.clear_callbacks()
    assert pv.callbacks == {}


def test_add_callback_turns_monitor_on(softioc):
    pv = PV("catest", auto_monitor=False)
    assert pv.wait_for_connection(TIMEOUT)
    seen = queue.Queue()
    pv.add_callback(lambda value=None, **kw: seen.put(value), with_ctrlvars=True)
    assert pv.auto_monitor is True and pv._args["units"] == "mm"
    pv.put(9.0, wait=True)
    _drain_until(seen, lambda v: v == 9.0)


def test_connection_and_access_callbacks(softioc):
    conns, rights = queue.Queue(), queue.Queue()
    guard = PV("ca:guard")
    assert guard.wait_for_connection(TIMEOUT)
    guard.put(0, wait=True)
    pv = PV("ca:guarded", connection_callback=lambda pvname=None, conn=None, pv=None: conns.put((pvname, conn, pv)),
            access_callback=lambda read, write, pv=None: rights.put((read, write)))
    assert conns.get(timeout=TIMEOUT) == ("ca:guarded", True, pv)
    # ca:guard was just set to 0: the IOC's access security follows it (a CA link, async)
    assert _drain_until(rights, lambda r: r == (True, False)) == (True, False)
    with pytest.raises(CaChannelException) as info:
        pv.put(1.0)
    assert info.value.status == ca.ECA_NOWTACCESS
    guard.put(1, wait=True)
    assert _drain_until(rights, lambda r: r[1]) == (True, True)
    assert pv.access == "read/write"
    assert pv.put(3.0, wait=True) == 1
    guard.put(0, wait=True)
    assert _drain_until(rights, lambda r: not r[1]) == (True, False)
    # client-side disconnect / reconnect
    pv.disconnect()
    assert conns.get(timeout=TIMEOUT)[1] is False
    assert not pv.connected and pv.chid is None
    assert pv.reconnect(TIMEOUT)
    assert conns.get(timeout=TIMEOUT)[1] is True
    assert pv.get(use_monitor=False) == 3.0


def test_put_completion(softioc):
    pv = PV("pv:slowput.A")
    assert pv.wait_for_connection(TIMEOUT)
    done = queue.Queue()
    assert pv.put(1, use_complete=True, callback=lambda **kw: done.put(kw), callback_data="mine") == 1
    assert pv.put_complete is False  # the record completes 0.5 s later
    kw = done.get(timeout=TIMEOUT)
    assert kw["pvname"] == "pv:slowput.A" and kw["data"] == "mine" and kw["status"] == ca.ECA_NORMAL
    assert pv.put_complete is True
    start = time.monotonic()
    assert pv.put(2, wait=True, timeout=TIMEOUT) == 1
    assert time.monotonic() - start >= 0.4
    late = threading.Event()
    assert pv.put(3, wait=True, timeout=0.05, callback=lambda **kw: late.set()) == -1  # not completed in time
    assert late.wait(TIMEOUT) and pv.put_complete is True
    assert PV("pv:slowput").get(use_monitor=False) == 3


def test_bad_writes_raise(softioc):
    e = PV("cabo")
    assert e.wait_for_connection(TIMEOUT)
    with pytest.raises(CaChannelException) as info:
        e.put("Nonsense")
    assert info.value.status == ca.ECA_BADSTR and "cabo" in str(info.value)
    assert e.put("Busy", wait=True) == 1 and e.get() == 1
    with pytest.raises((TypeError, ValueError)):
        PV("catest").put(object())


def test_missing_pv(softioc):
    pv = PV("no:such:pv:for:PV", connection_timeout=0.2)
    start = time.monotonic()
    assert pv.wait_for_connection() is False
    assert pv.get() is None
    assert pv.put(1) is None
    assert pv.get_ctrlvars(timeout=0.1, warn=False) is None
    assert time.monotonic() - start < 5
    assert repr(pv) == "<PV 'no:such:pv:for:PV': not connected>"
    assert pv.value is None and pv.status is None


def test_get_pv_cache(softioc):
    a = get_pv("catest")
    assert get_pv("catest") is a
    assert get_pv("catest", form="ctrl") is not a
    conns = queue.Queue()
    assert get_pv("catest", connect=True, connection_callback=lambda **kw: conns.put(kw["conn"])) is a
    assert conns.get(timeout=TIMEOUT) is True
    a.disconnect()
    b = get_pv("catest", connect=True)
    assert b is not a and b.connected
    pvmod.clear_pvcache()
    assert pvmod._PVcache_ == {}


def test_unreferenced_pv_is_released(softioc):
    pv = PV("catest")
    assert pv.wait_for_connection(TIMEOUT)
    chid = pv.chid
    channel = next(ch for ch in core.channels() if ch.chid is chid)
    users = channel.users
    del pv
    gc.collect()  # the PV's __del__ released its use of the shared channel
    assert [ch.users for ch in core.channels() if ch is channel] in ([users - 1], [])
    if channel.users == 0:  # nobody else uses it: closing idle channels clears it
        core.close_idle()
        with pytest.raises((ValueError, TypeError)):
            ca.field_type(chid)


def test_value_attribute_and_threads(softioc):
    pv = PV("catest")
    updates = queue.Queue()
    pv.add_callback(lambda value=None, **kw: updates.put(value))
    pv.value = 11.0  # a put without wait
    _drain_until(updates, lambda v: v == 11.0)
    assert pv.value == 11.0
    results = []

    def worker():
        results.append(PV("cabo").get(timeout=TIMEOUT) in (0, 1))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert results == [True] * 4
