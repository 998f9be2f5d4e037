"""Bad input to every face, table driven (issue 21): wrong types and values
for the public arguments of util (single and list forms), PV/get_pv and PV
methods, subscribe/Monitor/ArrayMonitor, the ophyd layer, the 3.x
CaChannel/epicsPV methods test_bad_input.py does not cover.

Each case runs in-process on the session IOC inside a watchdog thread
(a hang is a verdict, not a stuck run) and gets a verdict from
``faces_verdict`` (ok / hang / unclear-error / wrong); every case must be
``ok``. Cases that can crash or wedge the process (lifecycle misuse,
re-entering callbacks, IOC kills, exit) run one subprocess each in
test_faces_faults.py. The table is printed at the end of the module.

Timeouts follow ``CaChannel.core.checks.timeout`` everywhere: ``None`` the
face's default, NaN/negative -> ValueError, bool/non-number -> TypeError,
``inf`` no limit.
"""
from __future__ import annotations

import math
import os
import sys

import pytest

from CaChannel import CaChannel, CaChannelException, ca, core, util
from CaChannel import aio
from CaChannel import ophyd as cl
from CaChannel.epicsPV import epicsPV
from CaChannel.monitor import ArrayMonitor, Monitor, subscribe
from CaChannel.pv import PV, get_pv

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from faces_verdict import Table, judge, raises, returns, run_bounded  # noqa: E402

NAN, INF = float("nan"), float("inf")
BOUND = 20.0  # seconds any single case may take before it is a hang (loaded machines)

T_NAN = r"timeout must be a number >= 0 \(or inf\), not nan"
T_NEG = r"timeout must be a number >= 0 \(or inf\), not -1"
T_STR = r"timeout must be a number or None, not str"
T_BOOL = r"timeout must be a number or None, not bool"
COUNT_STR = r"count must be an int or None, not str"
COUNT_NEG = r"count must be >= 0, not -1"
NAME_INT = r"PV name must be (a )?str( or bytes)?, not int"
NAME_NONE = r"PV name must be (a )?str( or bytes)?, not NoneType"
NOT_CALLABLE = r"callback must be callable"
MASK = r"mask must be"


class Env:
    """Objects the cases work on (made once, connected)."""

    def __init__(self):
        self.pv = PV("catest")
        assert self.pv.wait_for_connection(5)
        self.chan = CaChannel("catest")
        self.chan.searchw()
        self.mon = Monitor("catest")
        self.amon = ArrayMonitor("cawave", buffers=2, priority=0)
        self.epv = epicsPV("catest")
        status, self.chid = ca.create_channel("catest")
        assert ca.pend_io(5) == ca.ECA_NORMAL

    def close(self):
        self.mon.close()
        self.amon.close()
        self.chan.clear_channel()
        self.epv.clear_channel()
        self.pv.disconnect()
        ca.clear_channel(self.chid)
        ca.flush_io()


def is_none(v):
    return v is None


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# (case id, face, call(env), expected)
CASES = [
    # --------------- fixed on main since 3c485a3 (hung, crashed or were accepted there)
    ("fixed: PV unknown wait_for_connection nan", "PV", lambda e: PV("no:such:pv").wait_for_connection(NAN), raises(ValueError, T_NAN)),
    ("fixed: PV unknown get timeout nan", "PV", lambda e: PV("no:such:pv").get(timeout=NAN), raises(ValueError, T_NAN)),
    ("fixed: ophyd caget unknown connection_timeout nan", "ophyd", lambda e: cl.caget("no:such:pv", connection_timeout=NAN), raises(ValueError, "connection_timeout must be a number >= 0")),
    ("fixed: caput list wait unknown timeout nan", "util.caput", lambda e: util.caput(["catest", "no:such:pv"], [1, 2], wait=True, timeout=NAN, throw=False), raises(ValueError, T_NAN)),
    ("fixed: PV.wait_for_connection inf", "PV", lambda e: PV("catest").wait_for_connection(INF), returns(lambda v: v is True, "True")),
    ("fixed: PV count str", "PV", lambda e: PV("cawave", count="x"), raises(TypeError, COUNT_STR)),
    ("fixed: get_with_metadata form bogus", "PV", lambda e: e.pv.get_with_metadata(form="bogus"), raises(ValueError, "form must be 'time', 'ctrl' or 'native', not 'bogus'")),
    ("fixed: PV.put callback 5 writes nothing", "PV", lambda e: _put_refused(e), returns(lambda v: v == "refused, not written", "refused, not written")),
    ("fixed: caput bad value throw=False", "util.caput", lambda e: util.caput("catest", "abc", throw=False), returns(is_none, "None")),
    # ------------------------------------------------------------- util.caget
    ("caget list int name", "util.caget", lambda e: util.caget(["catest", 123]), raises(TypeError, NAME_INT)),
    ("caget list None name", "util.caget", lambda e: util.caget([None]), raises(TypeError, NAME_NONE)),
    ("caget empty name", "util.caget", lambda e: util.caget(""), raises(ValueError, "PV name must not be empty")),
    ("caget list empty name", "util.caget", lambda e: util.caget(["catest", ""]), raises(ValueError, "PV name must not be empty")),
    ("caget count str", "util.caget", lambda e: util.caget("catest", count="x"), raises(TypeError, COUNT_STR)),
    ("caget list count str", "util.caget", lambda e: util.caget(["catest"], count="x"), raises(TypeError, COUNT_STR)),
    ("caget list count str throw=False", "util.caget", lambda e: util.caget(["catest"], count="x", throw=False), raises(TypeError, COUNT_STR)),
    ("caget count -1", "util.caget", lambda e: util.caget("catest", count=-1), raises(ValueError, COUNT_NEG)),
    ("caget list count -1", "util.caget", lambda e: util.caget(["catest"], count=-1), raises(ValueError, COUNT_NEG)),
    ("caget count 1.5", "util.caget", lambda e: util.caget("cawave", count=1.5), raises(TypeError, "count must be an int or None, not float")),
    ("caget timeout str", "util.caget", lambda e: util.caget("catest", timeout="1"), raises(TypeError, T_STR)),
    ("caget timeout bool", "util.caget", lambda e: util.caget("catest", timeout=True), raises(TypeError, T_BOOL)),
    ("caget timeout -1", "util.caget", lambda e: util.caget("catest", timeout=-1), raises(ValueError, T_NEG)),
    ("caget timeout nan", "util.caget", lambda e: util.caget("catest", timeout=NAN), raises(ValueError, T_NAN)),
    ("caget timeout nan throw=False", "util.caget", lambda e: util.caget("no:such:pv", timeout=NAN, throw=False), raises(ValueError, T_NAN)),
    ("caget list timeout nan throw=False", "util.caget", lambda e: util.caget(["catest", "no:such:pv"], timeout=NAN, throw=False), raises(ValueError, T_NAN)),
    ("caget timeout inf", "util.caget", lambda e: util.caget("catest", timeout=INF), returns(is_number, "the value")),
    ("caget list timeout inf", "util.caget", lambda e: util.caget(["catest", "cabo"], timeout=INF), returns(lambda v: len(v) == 2, "two values")),
    ("caget unknown timeout 0", "util.caget", lambda e: util.caget("no:such:pv", timeout=0), raises(CaChannelException, "did not connect within 0 s")),
    ("caget list unknown throw=False", "util.caget", lambda e: util.caget(["no:such:pv", "catest"], timeout=0.2, throw=False), returns(lambda v: v[0] is None and is_number(v[1]), "[None, value]")),
    ("caget empty list", "util.caget", lambda e: util.caget([]), returns(lambda v: v == [], "[]")),
    ("caget bytes name", "util.caget", lambda e: util.caget(b"catest"), returns(is_number, "the value")),
    # ------------------------------------------------------------- util.caput
    ("caput timeout str no wait", "util.caput", lambda e: util.caput("catest", 1, timeout="x"), raises(TypeError, T_STR)),
    ("caput wait timeout nan", "util.caput", lambda e: util.caput("catest", 1, wait=True, timeout=NAN), raises(ValueError, T_NAN)),
    ("caput wait timeout nan throw=False", "util.caput", lambda e: util.caput("catest", 1, wait=True, timeout=NAN, throw=False), raises(ValueError, T_NAN)),
    ("caput wait timeout -1", "util.caput", lambda e: util.caput("catest", 1, wait=True, timeout=-1), raises(ValueError, T_NEG)),
    ("caput wait timeout bool", "util.caput", lambda e: util.caput("catest", 1, wait=True, timeout=False), raises(TypeError, T_BOOL)),
    ("caput wait timeout inf", "util.caput", lambda e: util.caput("catest", 1, wait=True, timeout=INF), returns(is_none, "None")),
    ("caput list wait timeout -1", "util.caput", lambda e: util.caput(["catest"], [1], wait=True, timeout=-1), raises(ValueError, T_NEG)),
    ("caput list wait timeout nan", "util.caput", lambda e: util.caput(["catest"], [1], wait=True, timeout=NAN), raises(ValueError, T_NAN)),
    ("caput list wait timeout inf", "util.caput", lambda e: util.caput(["catest"], [1], wait=True, timeout=INF), returns(is_none, "None")),
    ("caput list too few values", "util.caput", lambda e: util.caput(["catest", "cabo"], [1]), raises(ValueError, "caput got 2 names but 1 values")),
    ("caput list scalar value", "util.caput", lambda e: util.caput(["catest"], 5), raises(TypeError, "needs a list of values")),
    ("caput list str value", "util.caput", lambda e: util.caput(["catest"], "5"), raises(TypeError, "needs a list of values")),
    ("caput list int name", "util.caput", lambda e: util.caput([1], [1]), raises(TypeError, NAME_INT)),
    ("caput list None value", "util.caput", lambda e: util.caput(["catest"], [None]), raises(CaChannelException, "'catest'.*cannot put None")),
    ("caput list None value throw=False", "util.caput", lambda e: util.caput(["catest"], [None], throw=False), returns(lambda v: v == [None], "[None]")),
    ("caput None value throw=False", "util.caput", lambda e: util.caput("catest", None, throw=False), returns(is_none, "None")),
    ("caput int name throw=False", "util.caput", lambda e: util.caput(123, 1, throw=False), raises(TypeError, NAME_INT)),
    ("caput 3 values to a scalar", "util.caput", lambda e: (util.caput("catest", [4, 5, 6], wait=True), util.caget("catest"))[1], returns(lambda v: v == 4, "the first value written")),
    ("caput readonly", "util.caput", lambda e: util.caput("ca:readonly", 1), raises(CaChannelException, "ca:readonly' is read-only")),
    ("caput list readonly throw=False", "util.caput", lambda e: util.caput(["ca:readonly", "catest"], [1, 1], throw=False), returns(lambda v: v == [None, True], "[None, True]")),
    ("caput list bad enum", "util.caput", lambda e: util.caput(["cabo"], ["Nope"]), raises(CaChannelException, "'Nope' is not a state of 'cabo'")),
    # --------------------------------------------------------- util.camonitor
    ("camonitor int name", "util.camonitor", lambda e: util.camonitor(123), raises(TypeError, r"(pvName|PV name) must be")),
    ("camonitor empty name", "util.camonitor", lambda e: util.camonitor(""), raises(ValueError, "PV name must not be empty")),
    ("camonitor count str", "util.camonitor", lambda e: util.camonitor("catest", count="x", callback=lambda *a: None), raises(TypeError, COUNT_STR)),
    ("camonitor count -1", "util.camonitor", lambda e: util.camonitor("catest", count=-1, callback=lambda *a: None), raises(ValueError, COUNT_NEG)),
    ("camonitor remove unknown", "util.camonitor", lambda e: util.camonitor("never:monitored", callback=()), returns(is_none, "None")),
    # ------------------------------------------------------------ util.cainfo
    ("cainfo int name", "util.cainfo", lambda e: util.cainfo(123), raises(TypeError, r"(pvName|PV name) must be")),
    ("cainfo list int name", "util.cainfo", lambda e: util.cainfo(["catest", 5]), raises(TypeError, NAME_INT)),
    ("cainfo timeout nan", "util.cainfo", lambda e: util.cainfo("catest", timeout=NAN), raises(ValueError, T_NAN)),
    ("cainfo list timeout nan", "util.cainfo", lambda e: util.cainfo(["catest"], timeout=NAN), raises(ValueError, T_NAN)),
    ("cainfo timeout str", "util.cainfo", lambda e: util.cainfo("catest", timeout="x"), raises(TypeError, T_STR)),
    ("cainfo list unknown", "util.cainfo", lambda e: util.cainfo(["no:such:pv"], timeout=0.1), raises(CaChannelException, "no:such:pv")),
    ("cainfo list unknown throw=False", "util.cainfo", lambda e: util.cainfo(["no:such:pv"], timeout=0.1, throw=False), returns(is_none, "None")),
    # -------------------------------------------------------------- PV/get_pv
    ("PV int name", "PV", lambda e: PV(123), raises(TypeError, NAME_INT)),
    ("PV empty name", "PV", lambda e: PV(""), raises(ValueError, "PV name must not be empty")),
    ("PV form bogus", "PV", lambda e: PV("catest", form="bogus"), raises(ValueError, "form must be 'time', 'ctrl' or 'native'")),
    ("PV count -1", "PV", lambda e: PV("cawave", count=-1), raises(ValueError, COUNT_NEG)),
    ("PV count float", "PV", lambda e: PV("cawave", count=2.0), raises(TypeError, "count must be an int or None, not float")),
    ("PV connection_timeout nan", "PV", lambda e: PV("catest", connection_timeout=NAN), raises(ValueError, "connection_timeout must be a number >= 0")),
    ("PV connection_timeout str", "PV", lambda e: PV("catest", connection_timeout="2"), raises(TypeError, "connection_timeout must be a number or None, not str")),
    ("PV delivery bogus", "PV", lambda e: PV("catest", delivery="some"), raises(ValueError, "delivery must be None, 'latest' or 'all'")),
    ("PV callback 5", "PV", lambda e: PV("catest", callback=5), raises(TypeError, NOT_CALLABLE)),
    ("PV callback list with 5", "PV", lambda e: PV("catest", callback=[print, 5]), raises(TypeError, NOT_CALLABLE)),
    ("PV connection_callback 5", "PV", lambda e: PV("catest", connection_callback=5), raises(TypeError, "connection_callback must be callable")),
    ("PV access_callback 'x'", "PV", lambda e: PV("catest", access_callback="x"), raises(TypeError, "access_callback must be callable")),
    ("PV auto_monitor str", "PV", lambda e: PV("catest", auto_monitor="yes"), raises(TypeError, "auto_monitor must be a DBE mask")),
    ("PV auto_monitor mask 0x100", "PV", lambda e: PV("catest", auto_monitor=0x100), raises(ValueError, "auto_monitor must be a DBE mask in 1..15")),
    ("PV auto_monitor -1", "PV", lambda e: PV("catest", auto_monitor=-1), raises(ValueError, "auto_monitor must be a DBE mask in 1..15")),
    ("PV.auto_monitor = 'x'", "PV", lambda e: setattr(e.pv, "auto_monitor", "x"), raises(TypeError, "auto_monitor must be")),
    ("PV.wait_for_connection str", "PV", lambda e: e.pv.wait_for_connection("1"), raises(TypeError, T_STR)),
    ("PV.wait_for_connection -1", "PV", lambda e: e.pv.wait_for_connection(-1), raises(ValueError, T_NEG)),
    ("PV.get timeout nan", "PV", lambda e: e.pv.get(timeout=NAN), raises(ValueError, T_NAN)),
    ("PV.get timeout bool", "PV", lambda e: e.pv.get(timeout=True), raises(TypeError, T_BOOL)),
    ("PV.get timeout inf", "PV", lambda e: e.pv.get(timeout=INF, use_monitor=False), returns(is_number, "the value")),
    ("PV.get count str", "PV", lambda e: e.pv.get(count="x"), raises(TypeError, COUNT_STR)),
    ("PV.get_with_metadata form 5", "PV", lambda e: e.pv.get_with_metadata(form=5), raises(ValueError, "form must be")),
    ("PV.get_ctrlvars timeout nan", "PV", lambda e: e.pv.get_ctrlvars(timeout=NAN), raises(ValueError, T_NAN)),
    ("PV.get_timevars timeout str", "PV", lambda e: e.pv.get_timevars(timeout="x"), raises(TypeError, T_STR)),
    ("PV.put callback 'x'", "PV", lambda e: e.pv.put(1, callback="x"), raises(TypeError, NOT_CALLABLE)),
    ("PV.put wait timeout nan", "PV", lambda e: e.pv.put(1, wait=True, timeout=NAN), raises(ValueError, T_NAN)),
    ("PV.put wait timeout -1", "PV", lambda e: e.pv.put(1, wait=True, timeout=-1), raises(ValueError, T_NEG)),
    ("PV.put wait timeout inf", "PV", lambda e: e.pv.put(1, wait=True, timeout=INF), returns(lambda v: v == 1, "1")),
    ("PV.put None", "PV", lambda e: e.pv.put(None), raises(ValueError, "cannot put None")),
    ("PV.put text to DOUBLE", "PV", lambda e: e.pv.put("abc"), raises(ValueError, "cannot convert 'abc' to a number")),
    ("PV.put readonly", "PV", lambda e: PV("ca:readonly").put(1), raises(CaChannelException, "read-only")),
    ("PV.auto_monitor = 0x40", "PV", lambda e: setattr(get_pv("catest"), "auto_monitor", 0x40), raises(ValueError, "auto_monitor must be a DBE mask")),
    ("PV.add_callback 5", "PV", lambda e: e.pv.add_callback(5), raises(TypeError, NOT_CALLABLE)),
    ("get_pv None", "get_pv", lambda e: get_pv(None), raises(TypeError, NAME_NONE)),
    ("get_pv form bogus", "get_pv", lambda e: get_pv("catest", form="bogus"), raises(ValueError, "form must be")),
    ("get_pv timeout nan no connect", "get_pv", lambda e: get_pv("catest", timeout=NAN), raises(ValueError, T_NAN)),
    ("get_pv connect timeout nan", "get_pv", lambda e: get_pv("no:such:pv", connect=True, timeout=NAN), raises(ValueError, T_NAN)),
    ("get_pv connect timeout str", "get_pv", lambda e: get_pv("catest", connect=True, timeout="x"), raises(TypeError, T_STR)),
    ("get_pv cached callback 5", "get_pv", lambda e: (get_pv("catest"), get_pv("catest", callback=5)), raises(TypeError, NOT_CALLABLE)),
    ("get_pv cached connection_callback 5", "get_pv", lambda e: (get_pv("catest"), get_pv("catest", connection_callback=5)), raises(TypeError, "connection_callback must be callable")),
    # --------------------------------------------------------------- subscribe
    ("subscribe callback 5", "subscribe", lambda e: subscribe(e.chid, 5), raises(TypeError, NOT_CALLABLE)),
    ("subscribe str chid", "subscribe", lambda e: subscribe("catest", print), raises(TypeError, "expected a chid")),
    ("subscribe policy bogus", "subscribe", lambda e: subscribe(e.chid, print, policy="newest"), raises(ValueError, "policy must be one of")),
    ("subscribe maxlen 0", "subscribe", lambda e: subscribe(e.chid, print, policy="all", maxlen=0), raises(ValueError, "maxlen must be an int >= 1")),
    ("subscribe mask 0", "subscribe", lambda e: subscribe(e.chid, print, mask=0), raises(ValueError, MASK)),
    ("Subscription.get timeout nan", "subscribe", lambda e: _sub_get(e, NAN), raises(ValueError, T_NAN)),
    ("Subscription.get timeout -1", "subscribe", lambda e: _sub_get(e, -1), raises(ValueError, T_NEG)),
    ("Subscription.get timeout str", "subscribe", lambda e: _sub_get(e, "1"), raises(TypeError, T_STR)),
    ("Subscription.get timeout inf", "subscribe", lambda e: _sub_get(e, INF), returns(lambda v: isinstance(v, dict), "the first event")),
    # ----------------------------------------------------------------- Monitor
    ("Monitor int source", "Monitor", lambda e: Monitor(123), raises(TypeError, "source must be a searched CaChannel or a PV name")),
    ("Monitor unsearched CaChannel", "Monitor", lambda e: Monitor(CaChannel("catest")), raises(TypeError, "source must be a searched CaChannel")),
    ("Monitor callback 5", "Monitor", lambda e: Monitor("catest", 5), raises(TypeError, NOT_CALLABLE)),
    ("Monitor policy bogus", "Monitor", lambda e: Monitor("catest", policy="x"), raises(ValueError, "policy must be one of")),
    ("Monitor maxlen True", "Monitor", lambda e: Monitor("catest", policy="all", maxlen=True), raises(TypeError, "maxlen must be an int, not bool")),
    ("Monitor req_type 99", "Monitor", lambda e: Monitor("catest", req_type=99), raises(ValueError, "request type 99 is not a valid DBR type")),
    ("Monitor req_type str", "Monitor", lambda e: Monitor("catest", req_type="DBR_DOUBLE"), raises(TypeError, "request type must be")),
    ("Monitor count -1", "Monitor", lambda e: Monitor("catest", count=-1), raises(ValueError, COUNT_NEG)),
    ("Monitor mask 0", "Monitor", lambda e: Monitor("catest", mask=0), raises(ValueError, MASK)),
    ("Monitor mask 16", "Monitor", lambda e: Monitor("catest", mask=16), raises(ValueError, MASK)),
    ("Monitor mask str", "Monitor", lambda e: Monitor("catest", mask="value"), raises(TypeError, MASK)),
    ("Monitor timeout nan", "Monitor", lambda e: Monitor("no:such:pv", timeout=NAN), raises(ValueError, T_NAN)),
    ("Monitor timeout -1", "Monitor", lambda e: Monitor("catest", timeout=-1), raises(ValueError, T_NEG)),
    ("Monitor CaChannel timeout nan", "Monitor", lambda e: Monitor(e.chan, timeout=NAN), raises(ValueError, T_NAN)),
    ("Monitor unknown timeout 0", "Monitor", lambda e: Monitor("no:such:pv", timeout=0), raises(CaChannelException, "did not connect within 0 s")),
    ("Monitor.get timeout nan", "Monitor", lambda e: e.mon.get(timeout=NAN), raises(ValueError, T_NAN)),
    ("Monitor.get timeout -1", "Monitor", lambda e: e.mon.get(timeout=-1), raises(ValueError, T_NEG)),
    ("Monitor.get timeout str", "Monitor", lambda e: e.mon.get(timeout="x"), raises(TypeError, T_STR)),
    ("Monitor.get timeout bool", "Monitor", lambda e: e.mon.get(timeout=False), raises(TypeError, T_BOOL)),
    ("Monitor.get timeout inf", "Monitor", lambda e: e.mon.get(timeout=INF), returns(lambda v: "pv_value" in v, "an update")),
    # ------------------------------------------------------------ ArrayMonitor
    ("ArrayMonitor int name", "ArrayMonitor", lambda e: ArrayMonitor(123), raises(TypeError, NAME_INT)),
    ("ArrayMonitor buffers 1", "ArrayMonitor", lambda e: ArrayMonitor("cawave", buffers=1), raises(ValueError, "buffers must be an int >= 2")),
    ("ArrayMonitor buffers str", "ArrayMonitor", lambda e: ArrayMonitor("cawave", buffers="4"), raises(TypeError, "buffers must be an int")),
    ("ArrayMonitor count 0", "ArrayMonitor", lambda e: ArrayMonitor("cawave", count=0), raises(ValueError, "count must be >= 1, not 0")),
    ("ArrayMonitor count str", "ArrayMonitor", lambda e: ArrayMonitor("cawave", count="5"), raises(TypeError, COUNT_STR)),
    ("ArrayMonitor policy bogus", "ArrayMonitor", lambda e: ArrayMonitor("cawave", policy="x"), raises(ValueError, "policy must be one of")),
    ("ArrayMonitor timeout nan", "ArrayMonitor", lambda e: ArrayMonitor("no:such:pv", timeout=NAN), raises(ValueError, T_NAN)),
    ("ArrayMonitor timeout str", "ArrayMonitor", lambda e: ArrayMonitor("cawave", timeout="1"), raises(TypeError, T_STR)),
    ("ArrayMonitor dtype complex", "ArrayMonitor", lambda e: ArrayMonitor("cawave", dtype="complex128"), raises(ValueError, "dtype complex128 is not supported")),
    ("ArrayMonitor string PV", "ArrayMonitor", lambda e: ArrayMonitor("ca:scalar:STRING"), raises(ValueError, "has no numeric array dtype")),
    ("ArrayMonitor mask 0x20", "ArrayMonitor", lambda e: ArrayMonitor("cawave", mask=0x20), raises(ValueError, MASK)),
    ("ArrayMonitor mask 0", "ArrayMonitor", lambda e: ArrayMonitor("cawave", mask=0), raises(ValueError, MASK)),
    ("ArrayMonitor priority 100", "ArrayMonitor", lambda e: ArrayMonitor("cawave", priority=100), raises(ValueError, "priority must be in 0..99")),
    ("ArrayMonitor unknown timeout 0", "ArrayMonitor", lambda e: ArrayMonitor("no:such:pv", timeout=0), raises(TimeoutError, "did not connect within 0 s")),
    ("ArrayMonitor.get timeout nan", "ArrayMonitor", lambda e: e.amon.get(timeout=NAN), raises(ValueError, T_NAN)),
    ("ArrayMonitor.get timeout -1", "ArrayMonitor", lambda e: e.amon.get(timeout=-1), raises(ValueError, T_NEG)),
    ("ArrayMonitor.get timeout str", "ArrayMonitor", lambda e: e.amon.get(timeout="x"), raises(TypeError, T_STR)),
    ("ArrayMonitor.get timeout bool", "ArrayMonitor", lambda e: e.amon.get(timeout=True), raises(TypeError, T_BOOL)),
    ("ArrayMonitor.get timeout inf", "ArrayMonitor", lambda e: _amon_first(e), returns(lambda v: v is not None, "a frame")),
    # ------------------------------------------------------------- ImageReader
    ("ImageReader int prefix", "ImageReader", lambda e: _reader(123), raises(TypeError, r"prefix must be a str, not int")),
    ("ImageReader timeout nan", "ImageReader", lambda e: _reader("no:det:", timeout=NAN), raises(ValueError, T_NAN)),
    ("ImageReader timeout -1", "ImageReader", lambda e: _reader("no:det:", timeout=-1), raises(ValueError, T_NEG)),
    ("ImageReader buffers 1", "ImageReader", lambda e: _reader("no:det:", buffers=1, timeout=0), raises(ValueError, "buffers must be an int >= 2")),
    ("ImageReader policy bogus", "ImageReader", lambda e: _reader("no:det:", policy="x", timeout=0), raises(ValueError, "policy must be one of")),
    ("ImageReader priority -1", "ImageReader", lambda e: _reader("no:det:", priority=-1), raises(ValueError, "priority must be in 0..99")),
    ("ImageReader missing plugin", "ImageReader", lambda e: _reader("no:det:", timeout=0.2), raises(TimeoutError, "no:det:: no value within 0.2 s")),
    # ------------------------------------------------------------ ophyd layer
    ("ophyd caget None", "ophyd", lambda e: cl.caget(None), raises(TypeError, NAME_NONE)),
    ("ophyd caget timeout nan", "ophyd", lambda e: cl.caget("catest", timeout=NAN), raises(ValueError, T_NAN)),
    ("ophyd caget connection_timeout -1", "ophyd", lambda e: cl.caget("catest", connection_timeout=-1), raises(ValueError, "connection_timeout must be a number >= 0")),
    ("ophyd caget count str", "ophyd", lambda e: cl.caget("catest", count="x"), raises(TypeError, COUNT_STR)),
    ("ophyd caget unknown", "ophyd", lambda e: cl.caget("no:such:pv", connection_timeout=0.1), returns(is_none, "None")),
    ("ophyd caput wait timeout nan", "ophyd", lambda e: cl.caput("catest", 1, wait=True, timeout=NAN), raises(ValueError, T_NAN)),
    ("ophyd caput timeout str", "ophyd", lambda e: cl.caput("catest", 1, timeout="x"), raises(TypeError, T_STR)),
    ("ophyd caput None name", "ophyd", lambda e: cl.caput(None, 1), raises(TypeError, NAME_NONE)),
    ("ophyd caput unknown", "ophyd", lambda e: cl.caput("no:such:pv", 1, connection_timeout=0.1), returns(is_none, "None")),
    ("ophyd get_pv context", "ophyd", lambda e: cl.get_pv("catest", context=object()), raises(ValueError, "context must be None")),
    ("ophyd get_pv None", "ophyd", lambda e: cl.get_pv(None), raises(TypeError, NAME_NONE)),
    ("ophyd get_pv connect timeout nan", "ophyd", lambda e: cl.get_pv("catest", connect=True, timeout=NAN), raises(ValueError, T_NAN)),
    ("ophyd get_pv timeout str", "ophyd", lambda e: cl.get_pv("catest", timeout="x"), raises(TypeError, T_STR)),
    # -------------------------------------- aio: aioca's timeout rule (seconds or a
    # (deadline,) tuple; a deadline already past times out at once, as in aioca)
    ("aio caget timeout nan", "aio", lambda e: _aio("caget", "catest", timeout=NAN), raises(ValueError, "timeout must not be NaN")),
    ("aio caget timeout -1", "aio", lambda e: _aio("caget", "catest", timeout=-1), raises(aio.CANothing, "User specified timeout on IO operation expired")),
    ("aio caget timeout str", "aio", lambda e: _aio("caget", "catest", timeout="1"), raises(TypeError, r"timeout must be None, seconds \(a number\) or \(deadline,\)")),
    ("aio caget timeout inf", "aio", lambda e: _aio("caget", "catest", timeout=INF), returns(is_number, "the value")),
    ("aio caget None name", "aio", lambda e: _aio("caget", None), raises(TypeError, NAME_NONE)),
    ("aio caget list int name", "aio", lambda e: _aio("caget", ["catest", 5]), raises(TypeError, NAME_INT)),
    ("aio caput timeout nan", "aio", lambda e: _aio("caput", "catest", 1, wait=True, timeout=NAN), raises(ValueError, "timeout must not be NaN")),
    ("aio connect timeout nan", "aio", lambda e: _aio("connect", "no:such:pv", timeout=NAN), raises(ValueError, "timeout must not be NaN")),
    ("aio camonitor callback 5", "aio", lambda e: _aio_monitor(5), raises(TypeError, NOT_CALLABLE)),
    # ----------------------------------------------------- CaChannel 3.x, epicsPV
    ("CaChannel setTimeout nan", "CaChannel", lambda e: CaChannel().setTimeout(NAN), raises(ValueError, T_NAN)),
    ("CaChannel setTimeout bool", "CaChannel", lambda e: CaChannel().setTimeout(True), raises(TypeError, T_BOOL)),
    ("CaChannel setTimeout inf", "CaChannel", lambda e: _set_get_timeout(INF), returns(lambda v: v == INF, "inf")),
    ("CaChannel pend_io nan", "CaChannel", lambda e: e.chan.pend_io(NAN), raises(ValueError, T_NAN)),
    ("CaChannel pend_io str", "CaChannel", lambda e: e.chan.pend_io("1"), raises(TypeError, T_STR)),
    ("CaChannel pend_event str", "CaChannel", lambda e: e.chan.pend_event("1"), raises(TypeError, T_STR)),
    ("CaChannel pend_event nan", "CaChannel", lambda e: e.chan.pend_event(NAN), raises(ValueError, T_NAN)),
    ("CaChannel pend_event 0 polls", "CaChannel", lambda e: e.chan.pend_event(0), returns(lambda v: v in (ca.ECA_TIMEOUT, ca.ECA_NORMAL), "at once")),
    ("CaChannel pend_event -1", "CaChannel", lambda e: e.chan.pend_event(-1), raises(ValueError, T_NEG)),
    ("CaChannel getw count -1", "CaChannel", lambda e: e.chan.getw(count=-1), raises(ValueError, COUNT_NEG)),
    ("CaChannel array_get req_type str", "CaChannel", lambda e: e.chan.array_get(req_type="x"), raises(TypeError, r"chtype must be (an integer or None|a DBR type \(int\)), not str")),
    ("CaChannel array_get_callback req_type 99", "CaChannel", lambda e: e.chan.array_get_callback(99, None, print), raises(CaChannelException, "The data type specified is invalid: read of 'catest'")),
    ("CaChannel add_masked_array_event mask 0", "CaChannel", lambda e: _chan("catest").add_masked_array_event(None, None, 0, print), raises(CaChannelException, "Invalid event selection mask: subscription to 'catest': mask must be")),
    ("CaChannel add_masked_array_event mask 0x10", "CaChannel", lambda e: _chan("catest").add_masked_array_event(None, None, 0x10, print), raises(CaChannelException, "Invalid event selection mask: .*not 16")),
    ("CaChannel add_masked_array_event count str", "CaChannel", lambda e: _chan("catest").add_masked_array_event(None, "x", None, print), raises(TypeError, COUNT_STR)),
    ("CaChannel search_and_connect int name", "CaChannel", lambda e: CaChannel().search_and_connect(123, print), raises(TypeError, "pvName must be str or bytes, not int")),
    ("CaChannel replace_access_rights_event never searched", "CaChannel", lambda e: CaChannel("catest").replace_access_rights_event(print), raises(CaChannelException, "never searched")),
    ("CaChannel field_type after clear", "CaChannel", lambda e: _cleared().field_type(), raises(CaChannelException, "never searched")),
    ("CaChannel clear_channel twice", "CaChannel", lambda e: _cleared().clear_channel(), returns(is_none, "None")),
    ("CaChannel clear_event twice", "CaChannel", lambda e: (e.chan.clear_event(), e.chan.clear_event())[1], returns(is_none, "None")),
    ("epicsPV putWait timeout nan", "epicsPV", lambda e: epicsPV("pv:slowput.A").putWait(1, timeout=NAN), raises(ValueError, T_NAN)),
    ("epicsPV putWait timeout -1", "epicsPV", lambda e: epicsPV("pv:slowput.A").putWait(1, timeout=-1), raises(ValueError, T_NEG)),
    ("epicsPV putWait timeout str", "epicsPV", lambda e: e.epv.putWait(1, timeout="x"), raises(TypeError, T_STR)),
    ("epicsPV putWait poll nan", "epicsPV", lambda e: e.epv.putWait(1, poll=NAN), raises(ValueError, r"poll must be a number >= 0 \(or inf\), not nan")),
    ("epicsPV getControl poll -1", "epicsPV", lambda e: e.epv.getControl(poll=-1), raises(ValueError, "poll must be a number >= 0")),
    ("epicsPV putWait slow timeout 0.1", "epicsPV", lambda e: epicsPV("pv:slowput.A").putWait(2, timeout=0.1), raises(CaChannelException, "no reply for write to 'pv:slowput.A'")),
]


def _aio(fn, *args, **kw):
    import asyncio
    from CaChannel import aio

    async def run():
        return await getattr(aio, fn)(*args, **kw)
    return asyncio.run(run())


def _aio_monitor(callback):
    import asyncio
    from CaChannel import aio

    async def run():
        sub = aio.camonitor("catest", callback)
        sub.close()
    return asyncio.run(run())


def _put_refused(e):
    util.caput("catest", 1.0, wait=True)
    try:
        e.pv.put(-3.25, callback=5)
    except TypeError:
        pass
    else:
        return "accepted"
    return "refused, not written" if util.caget("catest") == 1.0 else "refused but written"


def _chan(name):
    chan = CaChannel(name)
    chan.searchw()
    return chan


def _cleared():
    chan = _chan("catest")
    chan.clear_channel()
    return chan


def _set_get_timeout(value):
    chan = CaChannel()
    chan.setTimeout(value)
    return chan.getTimeout()


def _sub_get(e, timeout):
    core.context.attach()  # subscribe() is ca-level: the caller's thread must be in the context
    status, sub = subscribe(e.chid, None)
    assert status == ca.ECA_NORMAL
    ca.flush_io()
    try:
        return sub.get(timeout)
    finally:
        sub.close()


def _amon_first(e):
    with ArrayMonitor("cawave", buffers=2, priority=0) as mon:
        frame = mon.get(timeout=INF)   # the subscription's first update
        return frame


def _reader(prefix, **kw):
    from CaChannel.areadetector import ImageReader
    reader = ImageReader(prefix, **kw)
    reader.close()
    return reader


TABLE = Table("faces bad input (in-process)")


@pytest.fixture(scope="module")
def env(request):
    e = Env()
    yield e
    e.close()
    TABLE.emit(request.config)


def test_enough_cases():
    assert len(CASES) >= 150
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_face_bad_input(env, case):
    name, face, call, expected = case
    outcome = run_bounded(lambda: call(env), BOUND)
    verdict, detail = judge(expected, outcome)
    TABLE.add(name, face, verdict, detail)
    assert verdict == "ok", "%s [%s]: %s -- %s" % (name, face, verdict, detail)
