"""Issue 10 item 5: windows where a call could use a freed chid, and read
buffers freed while libca may still fill them.

Each case runs in a worker subprocess (an abort or a hang fails that case):

* ``put``, ``sg_put``, ``get``, ``sg_get`` and ``create_subscription`` run
  Python code between their channel check and their libca call (``__index__``
  of count/chtype, ``__float__``, a sequence's ``__getitem__``, a numpy
  conversion of objects, a gc finalizer). That code clears the channel and a
  new channel to another PV takes over the freed chid memory (libca reuses
  it at once). The call must return ``ECA_BADCHID`` and the other PV must be
  untouched (on the previous C extension it was written or read instead;
  on the cffi backend the same-thread clear deadlocked).
* A handler libca runs inside ``replace_access_rights_event`` clears its
  channel: no deadlock, the channel is dead afterwards.
* A callback-less read pending in one context (or sync group) keeps its
  buffer through the settle point (``pend_io``/``sg_reset``/
  ``destroy_context``) of another context (or group), and through a
  ``pend_io`` made inside a callback (``ECA_EVDISALLOW``, which settles
  nothing); a freed buffer would be reused by the probe objects allocated
  next and then written by libca.
* ``destroy_context`` waits for a libca call on one of its channels while
  another thread frees the channel registered after it: the registry walk
  must not resume from that freed channel.
"""
from __future__ import annotations

import pytest

from r2cases import run_cases

from CaChannel import ca

NORMAL, BADCHID = int(ca.ECA_NORMAL), int(ca.ECA_BADCHID)
CLOSED = int(ca.ChannelState.CLOSED)

PUT_CASES = ["put_count", "put_chtype", "put_float", "put_sequence", "put_numpy_conversion",
             "put_callback_count", "put_gc_finalizer", "sg_put_count", "sg_put_float"]
READ_CASES = {"get_count": [BADCHID, True], "get_callback_count": [BADCHID, 0],
              "sg_get_count": [BADCHID, True], "subscription_count": [BADCHID, True, 0]}
OTHER = {"access_rights_inline_clear": [NORMAL, [NORMAL], BADCHID, CLOSED],
         "buffer_other_context": [NORMAL, True],
         "buffer_other_context_destroyed": [NORMAL, True],
         "buffer_other_group": [NORMAL, True],
         "buffer_evdisallow": [True, [int(ca.ECA_EVDISALLOW)], NORMAL, True],
         "buffer_stress": [0, 200],
         "registry_walk": [NORMAL, CLOSED, True, True]}
ALL = PUT_CASES + list(READ_CASES) + list(OTHER)


@pytest.fixture(scope="module")
def results(softioc):
    return run_cases("windows_worker.py", ALL, timeout=120, alone_timeout=30)


def ok(results, case):
    got = results[case]
    assert "died" not in got, "the worker died at %s (%s):\n%s" % (case, got["died"], got["stderr"])
    assert "exc" not in got, got
    return got["ret"]


@pytest.mark.parametrize("case", PUT_CASES)
def test_put_cleared_mid_call(results, case):
    got = ok(results, case)
    assert got["struck"], "the conversion did not run the clearing code: %r" % got
    assert got["victim_unchanged"], "the put reached the PV that took over the freed chid"
    assert got["result"] == BADCHID and got["ch_state"] == CLOSED, got
    assert got.get("callbacks", 0) == 0


@pytest.mark.parametrize("case", list(READ_CASES))
def test_read_cleared_mid_call(results, case):
    got = ok(results, case)
    assert got["struck"], got
    assert got["result"] == READ_CASES[case], got
    assert got["victim_unchanged"] and got["ch_state"] == CLOSED, got


@pytest.mark.parametrize("case", list(OTHER))
def test_other_windows(results, case):
    assert ok(results, case) == OTHER[case]


@pytest.mark.stress
def test_buffer_stress_long(softioc):
    got = run_cases("windows_worker.py", ["buffer_stress_long"], timeout=600, alone_timeout=600)
    assert ok(got, "buffer_stress_long") == [0, 20000]


@pytest.mark.stress
def test_registry_walk_stress(softioc):
    got = run_cases("windows_worker.py", ["registry_walk_stress"], timeout=600, alone_timeout=600)
    assert ok(got, "registry_walk_stress") == [OTHER["registry_walk"]] * 50
