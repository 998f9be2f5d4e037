"""List operations of CaChannel.util: caget/caput/cainfo with lists of names."""
from __future__ import annotations

import gc
import subprocess
import sys
import time

import pytest

from CaChannel import CaChannelException, ca, core, util

MISSING = ["no:such:pv:1", "no:such:pv:2"]


@pytest.fixture(autouse=True)
def values(softioc):
    util.caput(["catest", "cabo", "cawavec", "ca:limits"], [1.5, 1, "hey", 5], wait=True, timeout=10)
    yield


def test_caget_list_in_order_with_duplicates():
    names = ["cabo", "catest", "cabo", "ca:scalar:STRING", "cawave"]
    got = util.caget(names, timeout=10)
    assert got[:3] == [1, 1.5, 1]
    assert isinstance(got[3], str)
    assert isinstance(got[4], list) and len(got[4]) == 20
    assert util.caget(["cabo", "cawavec", "catest"], as_string=True, timeout=10) == ["Busy", "hey", 1.5]
    assert util.caget(["cawave", "cawavec"], count=2) == [got[4][:2], [104, 101]]


def test_single_names_unchanged():
    assert util.caget("catest") == 1.5
    assert util.caget("cabo", as_string=True) == "Busy"
    assert util.caput("catest", 2.5) is None
    assert util.caput("catest", 3.5, wait=True) is None
    assert util.caget("catest") == 3.5
    with pytest.raises(CaChannelException) as info:
        util.caget("no:such:pv:single", timeout=0.3)
    assert info.value.status == ca.ECA_TIMEOUT
    assert "no:such:pv:single" in str(info.value)
    assert util.caget("no:such:pv:single", timeout=0.3, throw=False) is None
    assert util.caget("catest", timeout=5, throw=False) == 3.5
    assert util.caput("catest", 3.5, throw=False) is True
    assert util.caput("ca:readonly", 1, throw=False) is None


def test_caget_failures_named_after_all_others_finished():
    names = ["catest", MISSING[0], "cabo", MISSING[1]]
    start = time.monotonic()
    with pytest.raises(CaChannelException) as info:
        util.caget(names, timeout=0.5)
    elapsed = time.monotonic() - start
    exc = info.value
    assert exc.status == ca.ECA_TIMEOUT
    assert list(exc.failures) == MISSING
    for name in MISSING:
        assert name in str(exc)
    assert "catest" not in str(exc)
    # one timeout for the whole call, not one per name
    assert elapsed < 0.5 + 2.0, elapsed
    start = time.monotonic()
    assert util.caget(names, timeout=0.5, throw=False) == [1.5, None, 1, None]
    assert time.monotonic() - start < 0.5 + 2.0
    # failed names are not cached, connected ones are
    cached = {ch.name for ch in core.channels()}
    assert "catest" in cached and MISSING[0] not in cached


def test_caput_list():
    assert util.caput(["catest", "cabo", "cawaves"], [4.25, "Done", ["a", "b"]], wait=True, timeout=10) is None
    assert util.caget(["catest", "cabo", "cawaves"]) == [4.25, 0, ["a", "b", ""]]
    assert util.caput(["catest", "cabo"], [1.25, 1]) is None  # no wait: sent, flushed
    assert util.caget(["catest", "cabo"], timeout=5) in ([1.25, 1], [4.25, 0], [1.25, 0], [4.25, 1])
    util.caput(["catest"], [1.75], wait=True)
    assert util.caget("catest") == 1.75


def test_caput_list_failures():
    names = ["catest", "ca:readonly", MISSING[0], "cabo"]
    with pytest.raises(CaChannelException) as info:
        util.caput(names, [5.5, 1, 2, "Nonsense"], wait=True, timeout=1)
    failures = info.value.failures
    assert list(failures) == ["ca:readonly", MISSING[0], "cabo"]
    assert failures["ca:readonly"].status == ca.ECA_NOWTACCESS
    assert failures[MISSING[0]].status == ca.ECA_TIMEOUT
    assert util.caget("catest") == 5.5  # the good write went through
    assert util.caput(names, [6.5, 1, 2, 0], wait=True, timeout=1, throw=False) == [True, None, None, True]
    assert util.caget(["catest", "cabo"]) == [6.5, 0]


def test_caput_list_bad_arguments():
    with pytest.raises(ValueError):
        util.caput(["catest", "cabo"], [1])
    with pytest.raises(TypeError):
        util.caput(["catest", "cabo"], 1)
    with pytest.raises(TypeError):
        util.caget(["catest", 5])
    with pytest.raises(ValueError):
        util.caget(["catest"], timeout=-1)
    assert util.caget([]) == []


def test_cainfo_list(capsys):
    util.cainfo(["catest", "cabo"])
    out = capsys.readouterr().out
    assert out.startswith("catest\n")
    assert "\ncabo\n" in out and "DBF_ENUM" in out and "DBF_DOUBLE" in out
    with pytest.raises(CaChannelException) as info:
        util.cainfo(["cabo", MISSING[0]], timeout=0.3)
    assert list(info.value.failures) == [MISSING[0]]
    out = capsys.readouterr().out
    assert "Enumerates:" in out and MISSING[0] + "\n    State:          Not connected" in out
    util.cainfo([MISSING[1]], timeout=0.2, throw=False)
    assert "Not connected" in capsys.readouterr().out


def test_clear_cache():
    # names no CaChannel.aio test uses: a channel aio still shares stays open
    # for aio when util lets go of it (tests/aio covers that case)
    util.caget(["ca:limits", "cabo"])
    chans = [ch for ch in core.channels() if ch.name in ("ca:limits", "cabo")]
    assert {ch.name for ch in chans} == {"ca:limits", "cabo"}
    gc.collect()  # PV objects earlier tests dropped release their uses
    util.clear_cache()
    # util holds none of them: every one nobody else uses is closed
    unused = [chan for chan in chans if chan.users == 0]
    assert unused and all(chan.state() == ca.cs_closed for chan in unused), chans
    assert not {chan.name for chan in unused} & {ch.name for ch in core.channels()}
    assert util.caget(["ca:limits", "cabo"]) == [5, 1]
    assert util.caget("ca:limits") == 5


def test_many_names_at_once(softioc):
    # the same 40 names in one call, connecting together
    names = ["ca:scalar:%s" % t for t in ("STRING", "SHORT", "LONG", "FLOAT", "DOUBLE", "ENUM", "MBBO")] * 6
    util.clear_cache()
    got = util.caget(names, timeout=10)
    assert got[:7] == got[7:14]
    assert len(got) == len(names)


_SIGINT_ELSEWHERE = r"""
import os, signal, sys, threading, time
from CaChannel import CaChannel, util
CaChannel.ca_timeout = 0.5                         # the default wait while connecting

def interrupt():
    started.wait(10)
    time.sleep(1.5)                    # past the connect wait: blocked for the write alone
    os.kill(os.getpid(), signal.SIGINT)

started = threading.Event()
threading.Thread(target=interrupt, daemon=True).start()
util.caget(["util:slowput.A"], timeout=10)          # the channel is up: only the write waits
# the kernel hands the process's SIGINT to a thread that does not block it: not this one
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
started.set()
t0 = time.monotonic()
try:
    util.caput(["util:slowput.A"], [1], wait=True, timeout=None)
except KeyboardInterrupt:
    print("interrupted after %.1f s" % (time.monotonic() - t0))
    sys.exit(0)
print("not interrupted: the write completed after %.1f s" % (time.monotonic() - t0))
sys.exit(1)
"""


def test_caput_list_wait_stops_on_sigint_to_another_thread():
    """A list write waiting without limit (``timeout=None``) for a 20 s completion
    raises KeyboardInterrupt soon after a SIGINT that went to another thread."""
    proc = subprocess.run([sys.executable, "-c", _SIGINT_ELSEWHERE], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seconds = float(proc.stdout.split()[2])
    assert seconds < 10, proc.stdout
