"""Bad input, table driven: every case raises its exact exception (type and
message) or returns its exact ECA status; nothing crashes. Runs on the
session IOC in-process (both backends: CACHANNEL_BACKEND selects), plus a
worker subprocess for arrays larger than the server's EPICS_CA_MAX_ARRAY_BYTES.
"""
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from CaChannel import CaChannel, CaChannelException, ca, util
from CaChannel.testing import IOC

HERE = os.path.dirname(os.path.abspath(__file__))
WAIT = 5.0
NAMES = ["catest", "cabo", "cawave", "ca:scalar:LONG", "ca:scalar:SHORT",
         "ca:scalar:UCHAR", "ca:scalar:STRING"]


class Env:
    """Connected chids, a cleared chid, a sync group; CaChannel helpers."""

    def __init__(self):
        self.c = {}
        for n in NAMES:
            status, chid = ca.create_channel(n)
            assert status == ca.ECA_NORMAL
            self.c[n] = chid
        assert ca.pend_io(WAIT) == ca.ECA_NORMAL
        status, self.dead = ca.create_channel("catest")
        assert ca.pend_io(WAIT) == ca.ECA_NORMAL
        assert ca.clear_channel(self.dead) == ca.ECA_NORMAL
        status, self.gid = ca.sg_create()
        assert status == ca.ECA_NORMAL
        status, self.evid = ca.create_subscription(self.c["catest"], lambda d: None)
        assert status == ca.ECA_NORMAL
        assert ca.clear_subscription(self.evid) == ca.ECA_NORMAL

    def chan(self, name):
        chan = CaChannel(name)
        chan.searchw()
        return chan

    def cleared(self):
        chan = self.chan("catest")
        chan.clear_channel()
        return chan

    def close(self):
        ca.sg_delete(self.gid)
        for chid in self.c.values():
            ca.clear_channel(chid)
        ca.flush_io()


def R(exc, pattern):
    return ("raises", exc, pattern)


def S(status):
    return ("status", status)


NOT_CALLABLE = "callback must be callable"
OUT_OF_RANGE = r"value .* out of range"
NAN_TO_INT = r"cannot put (nan|inf|-inf) to an integer DBR"
NO_CHID = "expected a chid from create_channel, not str"

# (id, call(env), expected)
CASES = [
    # --- ca: channel creation
    ("create_channel int name", lambda e: ca.create_channel(123), R(TypeError, "channel name must be str or bytes, not int")),
    ("create_channel None name", lambda e: ca.create_channel(None), R(TypeError, "channel name must be str or bytes, not NoneType")),
    ("create_channel empty name", lambda e: ca.create_channel(""), S(ca.ECA_BADSTR)),
    ("create_channel 5000-char name", lambda e: ca.create_channel("a" * 5000), S(ca.ECA_BADSTR)),
    ("create_channel NUL in name", lambda e: ca.create_channel("a\0b"), S(ca.ECA_BADSTR)),
    ("create_channel priority 100", lambda e: ca.create_channel("x", priority=100), S(ca.ECA_BADPRIORITY)),
    ("create_channel priority -1", lambda e: ca.create_channel("x", priority=-1), S(ca.ECA_BADPRIORITY)),
    ("create_channel priority str", lambda e: ca.create_channel("x", priority="a"), R(TypeError, "priority must be an integer")),
    ("create_channel callback 5", lambda e: ca.create_channel("x", callback=5), R(TypeError, "callback must be callable or None, not int")),
    # --- ca: cleared / wrong handles
    ("clear_channel str", lambda e: ca.clear_channel("abc"), R(TypeError, NO_CHID)),
    ("clear_channel twice", lambda e: ca.clear_channel(e.dead), S(ca.ECA_BADCHID)),
    ("get cleared", lambda e: ca.get(e.dead), S(ca.ECA_BADCHID)),
    ("put cleared", lambda e: ca.put(e.dead, 1), S(ca.ECA_BADCHID)),
    ("subscribe cleared", lambda e: ca.create_subscription(e.dead, print), S(ca.ECA_BADCHID)),
    ("access event cleared", lambda e: ca.replace_access_rights_event(e.dead, print), S(ca.ECA_BADCHID)),
    ("connection event cleared", lambda e: ca.change_connection_event(e.dead, print), S(ca.ECA_BADCHID)),
    ("element_count cleared", lambda e: ca.element_count(e.dead), R(ValueError, "the channel has been cleared")),
    ("name None", lambda e: ca.name(None), R(ValueError, "the channel is None")),
    ("field_type str", lambda e: ca.field_type("x"), R(TypeError, NO_CHID)),
    ("clear_subscription str", lambda e: ca.clear_subscription("x"), R(TypeError, "expected an evid from create_subscription, not str")),
    ("clear_subscription twice", lambda e: ca.clear_subscription(e.evid), ("status_in", (ca.ECA_BADMONID, ca.ECA_BADCHID))),
    ("attach_context str", lambda e: ca.attach_context("x"), R(TypeError, r"expected a context from current_context\(\), not str")),
    ("show_context str", lambda e: ca.show_context("x"), R(TypeError, "expected a context or None, not str")),
    # --- ca: get arguments
    ("get chtype 99", lambda e: ca.get(e.c["catest"], 99), S(ca.ECA_BADTYPE)),
    ("get chtype -5", lambda e: ca.get(e.c["catest"], -5), S(ca.ECA_BADTYPE)),
    ("get chtype str", lambda e: ca.get(e.c["catest"], "x"), R(TypeError, r"chtype must be (an integer or None|a DBR type \(int\)), not str")),
    ("get count str", lambda e: ca.get(e.c["catest"], None, "x"), R(TypeError, "count must be an integer or None, not str")),
    ("get count float", lambda e: ca.get(e.c["catest"], None, 1.5), R(TypeError, "count must be an integer or None, not float")),
    ("get callback 5", lambda e: ca.get(e.c["catest"], callback=5), R(TypeError, "callback must be callable or None, not int")),
    # --- ca: put values (conversion rules)
    ("put None", lambda e: ca.put(e.c["catest"], None), R(ValueError, "cannot put None")),
    ("put dict", lambda e: ca.put(e.c["catest"], {}), R(ValueError, r"cannot put \{\}")),
    ("put object", lambda e: ca.put(e.c["catest"], object()), R(ValueError, "cannot put a value of type object as a number")),
    ("put complex", lambda e: ca.put(e.c["catest"], 1 + 2j), R(ValueError, "cannot put a value of type complex as a number")),
    ("put non-numeric text to DOUBLE", lambda e: ca.put(e.c["catest"], "abc"), R(ValueError, "cannot convert 'abc' to a number")),
    ("put NaN to LONG", lambda e: ca.put(e.c["ca:scalar:LONG"], float("nan")), R(ValueError, NAN_TO_INT)),
    ("put inf to LONG", lambda e: ca.put(e.c["ca:scalar:LONG"], float("inf")), R(ValueError, NAN_TO_INT)),
    ("put -inf to SHORT", lambda e: ca.put(e.c["ca:scalar:SHORT"], float("-inf")), R(ValueError, NAN_TO_INT)),
    ("put NaN as DBR_LONG to DOUBLE PV", lambda e: ca.put(e.c["catest"], math.nan, ca.DBR_LONG), R(ValueError, NAN_TO_INT)),
    ("put [1, NaN] as DBR_LONG", lambda e: ca.put(e.c["cawave"], [1, math.nan], ca.DBR_LONG), R(ValueError, "cannot put NaN or infinity to an integer DBR_LONG")),
    ("put 2**31 to LONG", lambda e: ca.put(e.c["ca:scalar:LONG"], 2 ** 31), R(OverflowError, OUT_OF_RANGE)),
    ("put 1e20 to LONG", lambda e: ca.put(e.c["ca:scalar:LONG"], 1e20), R(OverflowError, OUT_OF_RANGE)),
    ("put 40000 to SHORT", lambda e: ca.put(e.c["ca:scalar:SHORT"], 40000), R(OverflowError, OUT_OF_RANGE)),
    ("put -1 to UCHAR", lambda e: ca.put(e.c["ca:scalar:UCHAR"], -1), R(OverflowError, OUT_OF_RANGE)),
    ("put 70000 as PUT_ACKT", lambda e: ca.put(e.c["catest"], 70000, ca.DBR_PUT_ACKT), R(OverflowError, OUT_OF_RANGE)),
    ("put 2-D numpy array", lambda e: ca.put(e.c["cawave"], np.zeros((2, 3))), R(ValueError, "cannot put a 2-dimensional array")),
    ("put numpy string array to DOUBLE", lambda e: ca.put(e.c["cawave"], np.array(["a", "b"])), R(ValueError, "cannot convert 'a' to a number")),
    ("put object numpy array", lambda e: ca.put(e.c["cawave"], np.array([object(), 1], dtype=object)), R(TypeError, "cannot put a value of type object as a number")),
    ("put list of None", lambda e: ca.put(e.c["cawave"], [None, None]), R(TypeError, "cannot put a value of type NoneType as a number")),
    # a 0-d array is a scalar (it raised TypeError from len() before)
    ("put 0-d numpy array", lambda e: ca.put(e.c["cawave"], np.array(5.0)), S(ca.ECA_NORMAL)),
    ("put chtype STS_DOUBLE", lambda e: ca.put(e.c["catest"], 1, ca.DBR_STS_DOUBLE), S(ca.ECA_BADTYPE)),
    ("put chtype 99", lambda e: ca.put(e.c["catest"], 1, 99), S(ca.ECA_BADTYPE)),
    ("put count str", lambda e: ca.put(e.c["catest"], 1, None, "x"), R(TypeError, "count must be an integer or None, not str")),
    ("put callback 5", lambda e: ca.put(e.c["catest"], 1, callback=5), R(TypeError, "callback must be callable or None, not int")),
    # --- ca: subscriptions, execution, groups, helpers
    ("subscribe callback None", lambda e: ca.create_subscription(e.c["catest"], None), R(TypeError, "callback must be callable, not NoneType")),
    ("subscribe callback 5", lambda e: ca.create_subscription(e.c["catest"], 5), R(TypeError, "callback must be callable, not int")),
    ("subscribe mask 0", lambda e: ca.create_subscription(e.c["catest"], print, mask=0), S(ca.ECA_BADMASK)),
    ("subscribe mask str", lambda e: ca.create_subscription(e.c["catest"], print, mask="x"), R(TypeError, "mask must be an integer")),
    ("pend_io str", lambda e: ca.pend_io("x"), R(TypeError, "timeout must be a number, not str")),
    ("pend_event None", lambda e: ca.pend_event(None), R(TypeError, "timeout must be a number, not NoneType")),
    ("pend_io NaN", lambda e: ca.pend_io(float("nan")), R(ValueError, "timeout must be >= 0, not nan")),
    ("pend_io -1", lambda e: ca.pend_io(-1), R(ValueError, "timeout must be >= 0, not -1")),
    ("sg_delete unknown gid", lambda e: ca.sg_delete(12345), S(ca.ECA_BADSYNCGRP)),
    ("sg_block unknown gid", lambda e: ca.sg_block(12345, 0.1), S(ca.ECA_BADSYNCGRP)),
    ("sg_delete str", lambda e: ca.sg_delete("x"), R(TypeError, "gid must be an integer, not str")),
    ("sg_get str chid", lambda e: ca.sg_get(e.gid, "x"), R(TypeError, NO_CHID)),
    ("sg_put None value", lambda e: ca.sg_put(e.gid, e.c["catest"], None), R(ValueError, "cannot put None")),
    ("message str", lambda e: ca.message("abc"), R(ValueError, "invalid literal for int")),
    ("alarmSeverityString 7", lambda e: ca.alarmSeverityString(7), R(IndexError, "out of range")),
    ("alarmStatusString -1", lambda e: ca.alarmStatusString(-1), R(IndexError, "alarm status out of range: -1")),
    ("dbr_size_n type 99", lambda e: ca.dbr_size_n(99, 1), R(ValueError, "invalid DBR type 99")),
    # --- CaChannel
    ("CaChannel searchw without name", lambda e: CaChannel().searchw(), R(ValueError, "no PV name given")),
    ("CaChannel int name", lambda e: CaChannel(123).searchw(), R(TypeError, "pvName must be str or bytes, not int")),
    ("CaChannel getw never searched", lambda e: CaChannel("catest").getw(), ("ca_exc", ca.ECA_BADCHID, "channel 'catest' was never searched")),
    ("CaChannel getw after clear_channel", lambda e: e.cleared().getw(), ("ca_exc", ca.ECA_BADCHID, "'catest'")),
    ("CaChannel setTimeout str", lambda e: CaChannel().setTimeout("x"), R(TypeError, "timeout must be a number or None, not str")),
    ("CaChannel setTimeout -1", lambda e: CaChannel().setTimeout(-1), R(ValueError, r"timeout must be (a number )?>= 0( \(or inf\))?, (got|not) -1")),
    ("CaChannel search_and_connect callback 5", lambda e: CaChannel().search_and_connect("catest", 5), R(TypeError, NOT_CALLABLE)),
    ("CaChannel array_put_callback callback 5", lambda e: e.chan("catest").array_put_callback(1, None, None, 5), R(TypeError, NOT_CALLABLE)),
    ("CaChannel add_masked_array_event callback 5", lambda e: e.chan("catest").add_masked_array_event(None, None, ca.DBE_VALUE, 5), R(TypeError, NOT_CALLABLE)),
    ("CaChannel putw 50-byte string", lambda e: e.chan("ca:scalar:STRING").putw("x" * 50), ("ca_exc", ca.ECA_STRTOBIG, "has 50 bytes, more than the 39")),
    ("CaChannel putw unknown enum state", lambda e: e.chan("cabo").putw("Nope"), ("ca_exc", ca.ECA_BADSTR, r"'Nope' is not a state of 'cabo'")),
    ("CaChannel putw None", lambda e: e.chan("catest").putw(None), R(ValueError, "cannot write None to 'catest': cannot put None")),
    ("CaChannel putw NaN to LONG", lambda e: e.chan("ca:scalar:LONG").putw(math.nan), R(ValueError, "cannot write nan to 'ca:scalar:LONG': " + NAN_TO_INT)),
    ("CaChannel putw non-UTF-8 bytes to enum", lambda e: e.chan("cabo").putw(b"\xff\xfe"), ("ca_exc", ca.ECA_BADSTR, "is not a state of 'cabo'")),
    ("CaChannel getw req_type 99", lambda e: e.chan("catest").getw(req_type=99), ("ca_exc", ca.ECA_BADTYPE, "read of 'catest'")),
    ("CaChannel getw count str", lambda e: e.chan("catest").getw(count="x"), R(TypeError, "count must be an int(eger)? or None, not str")),
    ("CaChannel searchw unknown PV", lambda e: _search_unknown(), ("ca_exc", ca.ECA_TIMEOUT, "timeout")),
    # --- util
    ("util.caget int name", lambda e: util.caget(123), R(TypeError, "PV name must be (a )?str( or bytes)?, not int")),
    ("util.caput None name", lambda e: util.caput(None, 1), R(TypeError, "PV name must be (a )?str( or bytes)?, not NoneType")),
    ("util.caput None value", lambda e: util.caput("catest", None), R(ValueError, "cannot write None to 'catest': cannot put None")),
    ("util.caput NaN to LONG", lambda e: util.caput("ca:scalar:LONG", math.nan), R(ValueError, NAN_TO_INT)),
    ("util.caput 41-byte string", lambda e: util.caput("ca:scalar:STRING", "y" * 41), ("ca_exc", ca.ECA_STRTOBIG, "has 41 bytes")),
    ("util.caput wait unknown enum state", lambda e: util.caput("cabo", "Nope", wait=True, timeout=WAIT), ("ca_exc", ca.ECA_BADSTR, "'Nope' is not a state of 'cabo'")),
]


def _search_unknown():
    chan = CaChannel("no:such:pv:reliability")
    chan.setTimeout(0.3)
    chan.searchw()


@pytest.fixture(scope="module")
def env():
    e = Env()
    yield e
    e.close()


def test_enough_cases():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(env, case):
    name, call, expected = case
    kind = expected[0]
    if kind == "raises":
        with pytest.raises(expected[1]) as info:
            call(env)
        assert type(info.value) is expected[1], (name, type(info.value), info.value)
        assert re.search(expected[2], str(info.value)), (name, str(info.value))
    elif kind == "ca_exc":
        with pytest.raises(CaChannelException) as info:
            call(env)
        assert info.value.status == expected[1], (name, info.value.status, str(info.value))
        assert ca.message(expected[1]) in str(info.value), str(info.value)
        assert re.search(expected[2], str(info.value), re.I), (name, str(info.value))
    else:
        result = call(env)
        status = result[0] if isinstance(result, tuple) else result
        if isinstance(result, tuple):
            assert result[1] is None, (name, result)
        allowed = expected[1] if kind == "status_in" else (expected[1],)
        assert status in allowed, (name, status, ca.message(status))
        assert isinstance(status, ca.ECA), (name, type(status))


BIG_SCRIPT = r"""
import json, os
from CaChannel import ca
assert ca.create_context(True) == ca.ECA_NORMAL
status, chid = ca.create_channel("ca:bigwave")
assert ca.pend_io(10) == ca.ECA_NORMAL
out = {"count": ca.element_count(chid)}
status, value = ca.get(chid)
out["sync_get"] = [int(status), int(ca.pend_io(2))]
got, ev = [], []
ca.get(chid, callback=got.append)
status, evid = ca.create_subscription(chid, ev.append)
ca.flush_io()
import time
deadline = time.monotonic() + 10
while (not got or not ev) and time.monotonic() < deadline:
    ca.pend_event(0.05)
out["cb_get"] = [(int(d["status"]), d["value"] is None) for d in got]
out["event"] = [(int(d["status"]), d["value"] is None) for d in ev[:1]]
status, value = ca.get(chid, count=100)
out["small_get"] = [int(status), int(ca.pend_io(5)), len(value.get())]
print("RESULT " + json.dumps(out), flush=True)
os._exit(0)
"""


def test_array_larger_than_max_array_bytes(tmp_path):
    """A server limited to 16 kB refuses the 32 MB ca:bigwave: the
    callback get and the subscription report ECA_TOLARGE with value None,
    a callback-less get times out, a 100-element read still works."""
    db = os.path.join(os.path.dirname(HERE), "test.db")
    ioc = IOC([db], ready_pv="catest", max_array_bytes=16384,
              env={"EPICS_CA_AUTO_ARRAY_BYTES": "NO"})
    ioc.start()
    try:
        script = tmp_path / "big.py"
        script.write_text(BIG_SCRIPT)
        penv = dict(os.environ, **ioc.client_env())
        penv["EPICS_CA_MAX_ARRAY_BYTES"] = "16384"
        proc = subprocess.run([sys.executable, str(script)], env=penv, capture_output=True,
                              text=True, timeout=60)
    finally:
        ioc.stop()
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    import json
    out = json.loads(lines[-1][7:])
    assert out["count"] == 4000000
    assert out["sync_get"] == [ca.ECA_NORMAL, ca.ECA_TIMEOUT], out
    assert out["cb_get"] == [[ca.ECA_TOLARGE, True]], out
    assert out["event"] == [[ca.ECA_TOLARGE, True]], out
    assert out["small_get"] == [ca.ECA_NORMAL, ca.ECA_NORMAL, 100], out
    assert "EPICS_CA_MAX_ARRAY_BYTES" in proc.stderr  # libca's exception report
