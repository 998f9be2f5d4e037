"""Handles that are None, cleared or of the wrong type; callbacks that raise;
interpreter exit with live monitors. None of it may crash."""
import os
import subprocess
import sys
import textwrap

import pytest

from cexttools import Collector, connect, read, write


def test_cleared_and_none_handles(ca):
    ch = connect(ca, "catest")
    assert ca.clear_channel(ch) == ca.ECA.NORMAL
    for h in (None, ch):
        assert ca.get(h) == (ca.ECA.BADCHID, None)
        assert ca.get(h, callback=print) == (ca.ECA.BADCHID, None)
        assert ca.put(h, 1) == ca.ECA.BADCHID
        assert ca.create_subscription(h, print) == (ca.ECA.BADCHID, None)
        assert ca.clear_channel(h) == ca.ECA.BADCHID
        assert ca.change_connection_event(h, print) == ca.ECA.BADCHID
        assert ca.replace_access_rights_event(h, print) == ca.ECA.BADCHID
        for info in (ca.field_type, ca.element_count, ca.name, ca.host_name,
                     ca.read_access, ca.write_access):
            with pytest.raises(ValueError):
                info(h)
    assert ca.state(None) == ca.ChannelState.NEVER_SEARCH
    assert ca.state(ch) == ca.ChannelState.CLOSED


def test_wrong_types(ca, chan):
    ch = chan("catest")
    for bad in (1, "catest", object()):
        with pytest.raises(TypeError):
            ca.get(bad)
        with pytest.raises(TypeError):
            ca.put(bad, 1)
        with pytest.raises(TypeError):
            ca.field_type(bad)
        with pytest.raises(TypeError):
            ca.clear_subscription(bad)
    with pytest.raises(TypeError):
        ca.get(ch, 1.0)
    with pytest.raises(TypeError):
        ca.get(ch, count="3")
    with pytest.raises(TypeError):
        ca.get(ch, callback=3)
    with pytest.raises(TypeError):
        ca.create_channel(3)
    assert ca.get(ch, 39)[0] == ca.ECA.BADTYPE
    assert ca.put(ch, 1, ca.DBR_STS_DOUBLE) == ca.ECA.BADTYPE
    assert ca.create_channel("x", priority=100) == (ca.ECA.BADPRIORITY, None)
    import numpy as np
    assert ca.get(ch, np.int16(6))[0] == ca.ECA.NORMAL
    ca.pend_io(5)


def test_put_conversion_errors_match_encode(ca, chan):
    from CaChannel import _common
    ch = chan("ca:scalar:SHORT")
    for value, t in ((70000, 1), (-1, 4), (float("nan"), 5), (1e39, 2), (None, 6), ({}, 6),
                     ("abc", 6), (2 ** 70, 6)):
        try:
            _common.encode(value, t, 1)
        except Exception as exc:
            expected = type(exc)
        else:
            expected = None
        if expected is None:
            assert ca.put(ch, value, t) == ca.ECA.NORMAL
        else:
            with pytest.raises(expected):
                ca.put(ch, value, t)


def test_subscription_handles(ca):
    ch = connect(ca, "catest")
    got = Collector()
    status, ev = ca.create_subscription(ch, got)
    assert status == ca.ECA.NORMAL
    ca.flush_io()
    got.wait(1)
    assert ca.clear_subscription(ev) == ca.ECA.NORMAL
    assert ca.clear_subscription(ev) == ca.ECA.BADMONID
    assert ca.clear_subscription(None) == ca.ECA.BADMONID
    status, ev2 = ca.create_subscription(ch, got)
    ca.clear_channel(ch)
    assert ca.clear_subscription(ev2) == ca.ECA.BADMONID


def test_callback_identity_and_raising_callbacks(ca, capfd):
    seen = []

    def conn(args):
        seen.append(args["chid"])
        raise RuntimeError("boom in connection callback")

    status, ch = ca.create_channel("catest", conn)
    ca.flush_io()
    import time
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        ca.pend_event(0.05)
    assert seen and seen[0] is ch and seen[0] == ch and hash(seen[0]) == hash(ch)

    def bad_event(args):
        raise ValueError("boom in event callback")
    status, ev = ca.create_subscription(ch, bad_event)
    ca.flush_io()
    ca.pend_event(0.3)
    # CA still works after the exceptions
    assert read(ca, ch) is not None
    assert write(ca, ch, 3.0)["status"] == ca.ECA.NORMAL
    ca.clear_channel(ch)
    err = capfd.readouterr().err
    assert "boom in connection callback" in err and "boom in event callback" in err


def test_access_rights_fires_inside_call(ca, chan):
    ch = chan("catest")
    got = []
    assert ca.replace_access_rights_event(ch, got.append) == ca.ECA.NORMAL
    assert got and got[0]["chid"] is ch
    assert got[0]["read_access"] is True and got[0]["write_access"] is True
    assert ca.replace_access_rights_event(ch, None) == ca.ECA.NORMAL


def test_callbacks_call_back_into_ca(ca, chan):
    ch = chan("catest")
    results = []

    def on_event(args):
        # blocking calls are refused, the rest works from a CA thread
        results.append((ca.pend_io(0.1), ca.field_type(args["chid"]),
                        ca.get(args["chid"], callback=results.append)[0]))
    status, ev = ca.create_subscription(ch, on_event)
    ca.flush_io()
    import time
    deadline = time.monotonic() + 5
    while len(results) < 2 and time.monotonic() < deadline:
        ca.pend_event(0.05)
    assert results[0][0] == ca.ECA.EVDISALLOW
    assert results[0][1] == ca.DBF.DOUBLE and results[0][2] == ca.ECA.NORMAL
    ca.clear_subscription(ev)


def _run(code, env_extra=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_exit_with_live_monitors(ca):
    # monitors on a 1 kHz-ish stream plus a callback that sleeps: the
    # interpreter must shut down cleanly while libca keeps delivering
    r = _run("""
        import time
        from CaChannel import _ca as ca
        ca.create_context(True)
        chans = []
        for name in ("catest", "cawave", "cacalc", "ca:wave:DOUBLE"):
            s, ch = ca.create_channel(name)
            chans.append(ch)
        assert ca.pend_io(5) == ca.ECA_NORMAL
        def cb(args):
            time.sleep(0.001)
        for ch in chans:
            for i in range(20):
                ca.create_subscription(ch, cb, mask=7)
        def flood():
            while True:
                ca.put(chans[0], time.time() % 100)
                ca.flush_io()
        import threading
        threading.Thread(target=flood, daemon=True).start()
        time.sleep(0.5)
        print("exiting")
    """)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "exiting" in r.stdout


def test_exit_without_clearing_nonpreemptive(ca):
    r = _run("""
        from CaChannel import _ca as ca
        s, ch = ca.create_channel("catest", lambda a: None)
        ca.create_subscription(ch, lambda a: None) if False else None
        ca.pend_event(0.5)
        s, ev = ca.create_subscription(ch, lambda a: None)
        ca.pend_event(0.2)
    """)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])


def test_exception_and_printf_handlers(ca, chan):
    ch = chan("ca:scalar:STRING")
    got = Collector()
    assert ca.add_exception_event(got) == ca.ECA.NORMAL
    try:
        # the server cannot convert this text to a number: the read fails
        ca.put(ch, "not a number")
        assert ca.get(ch, ca.DBR_SHORT)[0] == ca.ECA.NORMAL
        ca.pend_io(0.5)
        args = got.wait(1)[0]
    finally:
        ca.add_exception_event(None)
    assert set(args) >= {"chid", "type", "count", "state", "stat", "op", "ctx", "file", "lineNo"}
    assert args["chid"] is ch and args["op"] == ca.CA_OP.GET
    assert args["type"] == ca.DBR.SHORT and args["state"] == args["stat"]
    assert isinstance(args["file"], str) and isinstance(args["lineNo"], int)

    lines = Collector()
    assert ca.replace_printf_handler(lines) == ca.ECA.NORMAL
    try:
        assert ca.get(ch, ca.DBR_SHORT)[0] == ca.ECA.NORMAL
        ca.pend_io(0.5)
        text = "".join(lines.wait(1))
    finally:
        ca.replace_printf_handler(None)
    assert isinstance(text, str) and "CA.Client.Exception" in text
