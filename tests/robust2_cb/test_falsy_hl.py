"""High level: CaChannel methods, util and epicsPV call falsy callables, pass
falsy user arguments through unchanged and write falsy values (issue 10, item 4)."""
from __future__ import annotations

import numpy as np
import pytest

from CaChannel import CaChannel, ca, epicsPV, util
from falsy import make


@pytest.fixture
def chan():
    c = CaChannel("catest")
    c.searchw()
    yield c
    c.clear_channel()


def test_search_and_connect_calls_falsy_callback(recorder_cls):
    rec = make(recorder_cls)
    c = CaChannel()
    try:
        c.search_and_connect("cabo", rec, 0, "")
        c.flush_io()
        ((chid, op), user_args), = rec.wait(what="search_and_connect callback")
        assert op == ca.CA_OP_CONN_UP and ca.name(chid) == "cabo"
        assert user_args == (0, "")
    finally:
        c.clear_channel()


def test_array_put_callback_calls_falsy_callback_with_falsy_value(recorder_cls, chan):
    for value in (3.0, 0):
        rec = make(recorder_cls)
        chan.array_put_callback(value, None, None, rec, 0)
        chan.flush_io()
        (epics_args, user_args), = rec.wait(what="array_put_callback callback")
        assert epics_args["status"] == ca.ECA_NORMAL and user_args == (0,)
    assert chan.getw() == 0.0


def test_array_get_callback_calls_falsy_callback(recorder_cls, chan):
    chan.putw(0.0)
    rec = make(recorder_cls)
    chan.array_get_callback(None, None, rec, False)
    chan.flush_io()
    (epics_args, user_args), = rec.wait(what="array_get_callback callback")
    assert epics_args["pv_value"] == 0.0 and user_args == (False,)


def test_add_masked_array_event_calls_falsy_callback(recorder_cls, chan):
    rec = make(recorder_cls)
    chan.add_masked_array_event(None, None, None, rec, ())
    try:
        chan.flush_io()
        calls = rec.wait(what="add_masked_array_event callback")
        epics_args, user_args = calls[0]
        assert epics_args["status"] == ca.ECA_NORMAL and user_args == ((),)
    finally:
        chan.clear_event()


def test_replace_access_rights_event_calls_falsy_callback(recorder_cls, chan):
    rec = make(recorder_cls)
    chan.replace_access_rights_event(rec, 0)
    try:
        # called at once: the channel is connected; user_args passed as given
        (epics_args, user_args), = rec.calls
        assert epics_args["write_access"] is True and user_args == 0
    finally:
        chan.replace_access_rights_event()


def _server_refused_put(c: CaChannel) -> None:
    # CaChannel refuses this write itself; the low level sends it
    assert ca.put(c._chid, "Nonsense") == ca.ECA_NORMAL
    c.flush_io()


def test_add_exception_event_calls_falsy_callback(recorder_cls):
    c = CaChannel("cabo")
    c.searchw()
    rec = make(recorder_cls)
    CaChannel.add_exception_event(rec, "")
    try:
        _server_refused_put(c)
        (epics_args, user_args), = rec.wait(what="add_exception_event callback")
        assert epics_args["op"] == ca.CA_OP.PUT and user_args == ""
    finally:
        CaChannel.add_exception_event()
        c.clear_channel()


def test_replace_printf_handler_calls_falsy_callback(recorder_cls):
    c = CaChannel("cabo")
    c.searchw()
    rec = make(recorder_cls)
    CaChannel.replace_printf_handler(rec, 0)
    try:
        CaChannel.add_exception_event()  # libca's default handler prints
        _server_refused_put(c)
        calls = rec.wait_for(lambda calls: any("CA.Client.Exception" in m for m, _ in calls),
                             what="replace_printf_handler callback")
        assert all(u == 0 for _, u in calls)
    finally:
        CaChannel.replace_printf_handler()
        c.clear_channel()


@pytest.mark.parametrize("name,before,value", [
    ("catest", 4.0, 0), ("catest", 4.0, 0.0), ("catest", 4.0, np.float64(0)),
    ("ca:scalar:STRING", "x", ""), ("cabo", 1, 0),
])
def test_putw_writes_falsy_values(name, before, value):
    c = CaChannel(name)
    c.searchw()
    try:
        c.putw(before)
        assert c.getw() == before
        c.putw(value)
        assert c.getw() == value
    finally:
        c.clear_channel()


def test_util_camonitor_calls_falsy_callback(recorder_cls):
    rec = make(recorder_cls)
    util.caput("catest", 0, wait=True)
    util.camonitor("catest", callback=rec)
    try:
        epics_args, _ = rec.wait(what="util.camonitor callback")[0]
        assert epics_args["pv_value"] == 0.0
        util.caput("catest", 2.5, wait=True)
        rec.wait_for(lambda calls: calls[-1][0]["pv_value"] == 2.5, what="monitor update 2.5")
        util.caput("catest", 0.0, wait=True)
        rec.wait_for(lambda calls: calls[-1][0]["pv_value"] == 0.0, what="monitor update 0.0")
    finally:
        util.camonitor("catest", callback=())


@pytest.mark.parametrize("name,before,value", [
    ("catest", 4.0, 0), ("ca:scalar:STRING", "x", ""), ("cabo", 1, 0),
])
def test_util_caput_writes_falsy_values(name, before, value):
    for wait in (False, True):
        util.caput(name, before, wait=True)
        util.caput(name, value, wait=wait)
        assert util.caget(name) == value


class FalsyCallBack(epicsPV.callBack):
    """An epicsPV.callBack that tests false (a user subclass, say)."""

    def __len__(self) -> int:
        return 0


def test_epicspv_with_a_falsy_callback_object():
    pv = epicsPV.epicsPV("catest")
    pv.callBack = FalsyCallBack()
    assert not pv.callBack
    try:
        pv.putWait(3.0, timeout=10)
        pv.putWait(0, timeout=10)
        assert pv.callBack.putComplete == 1 and pv.getw() == 0.0
        pv.setMonitor()
        pv.flush_io()
        # the monitor's first update lands on the falsy callBack
        for _ in range(200):
            if pv.callBack.monitorState == 2:
                break
            pv.pend_event(0.05)
        assert pv.callBack.monitorState == 2 and pv.getw() == 0.0
        pv.clearMonitor()
        # getCallback as a callback of the user's own, with a falsy user object
        other = FalsyCallBack()
        pv.array_get_callback(None, None, epicsPV.getCallback, other)
        pv.flush_io()
        for _ in range(200):
            if other.newMonitor:
                break
            pv.pend_event(0.05)
        assert other.newMonitor == 1 and other.pv_value == 0.0
    finally:
        pv.clear_channel()


def test_epicspv_getcontrol_request_type_zero_is_not_default():
    pv = epicsPV.epicsPV("catest")
    try:
        pv.getControl(ca.DBF_STRING)   # 0: DBR_CTRL_STRING, not the field type's CTRL
        assert pv.callBack.type == ca.DBR_CTRL_STRING
        pv.getControl()
        assert pv.callBack.type == ca.DBR_CTRL_DOUBLE
    finally:
        pv.clear_channel()
