"""The PV examples of the pyepics slides (seeds/001), ported to ``from CaChannel import PV``.

The slides use a motor (``XXX:m1.VAL``/``.DIR``), a DMM calc, a scan
waveform, a char waveform "directory" and two ao's for the thread example;
here they become the test IOC's ``catest`` (ao, PREC 4, EGU mm), ``cabo``
(bo Done/Busy), ``cacalc`` (counts every 0.1 s), ``cawave`` (DOUBLE[20]),
``cawavec`` (CHAR[5]) and ``catest``/``ca:limits``. Sleeps of the slides
(watching for a minute) become bounded waits on the callbacks.
"""
from __future__ import annotations

import queue
import threading
import time

import numpy

from CaChannel import PV

TIMEOUT = 10.0


def test_creating_a_pv_and_get(softioc):
    # pv1 = PV('XXX:m1.VAL'); print pv1; print pv1.count, pv1.type, pv1.host, pv1.upper_ctrl_limit
    pv1 = PV("ca:limits")
    pv1.put(-2.34, wait=True)
    assert pv1.wait_for_connection()
    assert str(pv1) == "<PV 'ca:limits', count=1, type=time_double, access=read/write>"
    assert (pv1.count, pv1.type, pv1.host, pv1.upper_ctrl_limit) == \
        (1, "time_double", "localhost:%d" % softioc.port, 90.0)
    assert pv1.get() == -2.34
    assert pv1.value == -2.34
    # get values as strings
    assert pv1.get(as_string=True) == "-2.34"  # PREC 2


def test_enum_pv(softioc):
    # pv2 = PV('XXX:m1.DIR'); print pv2.count, pv2.type, pv2.enum_strs; pv2.get(), pv2.get(as_string=True)
    pv2 = PV("cabo")
    pv2.put(0, wait=True)
    assert str(pv2) == "<PV 'cabo', count=1, type=time_enum, access=read/write>"
    assert (pv2.count, pv2.type, pv2.enum_strs) == (1, "time_enum", ("Done", "Busy"))
    assert (pv2.get(), pv2.get(as_string=True)) == (0, "Done")


def test_put(softioc):
    pv1 = PV("catest")
    assert pv1.wait_for_connection()
    updates = queue.Queue()
    pv1.add_callback(lambda value=None, **kw: updates.put(value))
    pv1.put(2.0)  # returns immediately
    pv1.put(3.0)
    while updates.get(timeout=TIMEOUT) != 3.0:  # the monitor brings the value in
        pass
    assert pv1.value == 3.0
    assert pv1.put(1.0, wait=True) == 1  # waits for completion
    assert pv1.value == 1.0


def test_simple_event_callback(softioc):
    changes = queue.Queue()

    def onChanges(pvname=None, value=None, char_value=None, **kws):
        changes.put((pvname, value, char_value, time.ctime()))

    mypv = PV("cacalc")
    mypv.add_callback(onChanges)
    # "Now watch for changes" - a few updates instead of a minute
    got = [changes.get(timeout=TIMEOUT) for _ in range(3)]
    assert [g[0] for g in got] == ["cacalc"] * 3
    assert got[1][1] > got[0][1]
    # char_value is formatted with the PV's precision (PREC 3) from the first update on
    assert all(isinstance(g[2], str) and g[2] == "%.3f" % g[1] for g in got), got
    mypv.clear_callbacks()
    assert mypv.callbacks == {}


def test_waveforms(softioc):
    # scan_p1 = PV('XXX:scan1.P1PA'); scan_p1.put(numpy.linspace(3, 4, 101)); scan_p1.get()
    p1vals = numpy.linspace(3, 4, 20)
    scan_p1 = PV("cawave")
    assert scan_p1.put(p1vals, wait=True) == 1
    assert numpy.allclose(scan_p1.get(use_monitor=False), p1vals)
    # character waveform: folder.get() -> array of bytes, folder.get(as_string=True) -> text
    folder = PV("cawavec")
    assert folder.put("T:xa", wait=True) == 1
    assert folder.get(use_monitor=False).tolist() == [84, 58, 120, 97, 0]
    assert folder.get(as_string=True) == "T:xa"
    assert str(folder) == "<PV 'cawavec', count=5/5, type=time_char, access=read/write>"


def test_two_threads_monitoring(softioc):
    # each thread creates and monitors its PV for a while, then clears its callbacks
    seen = queue.Queue()
    ready = {"A": threading.Event(), "B": threading.Event()}

    def monitor(pvname, updates, tname):
        got = threading.Event()
        count = [0]

        def onChanges(pvname=None, char_value=None, **kw):
            seen.put((pvname, char_value, tname))
            count[0] += 1
            ready[tname].set()  # the first (initial) update arrived: monitoring
            if count[0] >= updates:
                got.set()

        pv = PV(pvname, callback=onChanges)
        assert got.wait(TIMEOUT), "thread %s saw no updates of %s" % (tname, pvname)
        pv.clear_callbacks()

    writer = PV("ca:limits")
    th1 = threading.Thread(target=monitor, args=("catest", 2, "A"))
    th2 = threading.Thread(target=monitor, args=("ca:limits", 2, "B"))
    th1.start()
    th2.start()
    assert ready["A"].wait(TIMEOUT) and ready["B"].wait(TIMEOUT)
    for value in (1.0, 2.0, 3.0):
        writer.put(value, wait=True)
        PV("catest").put(value, wait=True)
    th1.join(TIMEOUT)
    th2.join(TIMEOUT)
    names = {(item[0], item[2]) for item in list(seen.queue)}
    assert names == {("catest", "A"), ("ca:limits", "B")}
