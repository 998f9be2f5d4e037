"""Issue 10 item 3: CA in processes made by fork().

In a worker subprocess that uses CA first (a preemptive context, util's
cache, a CaChannel with a monitor, a low-level channel): a
``multiprocessing`` pool of 2 workers with the ``fork`` start method (and
``spawn``/``forkserver`` as controls) reads with ``util.caget`` and
``CaChannel.getw``; plain ``os.fork()`` children read and exit 0 (by
``os._exit`` and by a normal interpreter exit), every inherited handle is
dead in the child with an error naming fork, and the parent still reads
afterwards. Both backends (whichever ``CaChannel.ca`` selected).
"""
from __future__ import annotations

import pytest

from r2cases import run_cases

from CaChannel import ca

NORMAL, BADCHID = int(ca.ECA_NORMAL), int(ca.ECA_BADCHID)
PARENT = [NORMAL, "float", "float", "float"]   # the parent reads afterwards
POOL = {"children": [["float", "float"], ["int", "int"], ["float", "float"], ["list", "list"]],
        "parent": PARENT}
CHILD = {"code": 0, "child": {"ret": ["float", "int", NORMAL, NORMAL, "float"]}, "parent": PARENT}
CASES = ["pool_fork", "pool_spawn", "pool_forkserver", "fork_child", "fork_child_sys_exit",
         "fork_child_lowlevel", "fork_inherited", "fork_busy"]


@pytest.fixture(scope="module")
def results(softioc):
    return run_cases("fork_worker.py", CASES, timeout=120, alone_timeout=60)


def ok(results, case):
    got = results[case]
    assert "died" not in got, "the worker died at %s (%s):\n%s" % (case, got["died"], got["stderr"])
    assert "exc" not in got, got
    return got["ret"]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_caget(results, method):
    assert ok(results, "pool_" + method) == POOL


@pytest.mark.parametrize("case", ["fork_child", "fork_child_sys_exit"])
def test_fork_child_reads_and_exits(results, case):
    assert ok(results, case) == CHILD


def test_fork_child_lowlevel_only(results):
    got = ok(results, "fork_child_lowlevel")
    assert got["code"] == 0 and got["parent"] == PARENT, got
    assert got["child"] == {"ret": [NORMAL, NORMAL, NORMAL, NORMAL, "float"]}, got


def test_inherited_handles_dead_naming_fork(results):
    got = ok(results, "fork_inherited")
    assert got["code"] == 0 and got["parent"] == PARENT, got
    child = got["child"]["ret"]
    for key in ("getw", "putw", "name", "field_type", "attach_context", "show_context"):
        kind, text = child[key]
        assert kind in ("ValueError", "CaChannelException") and "fork" in text, (key, child[key])
    assert child["getw"][0] == child["putw"][0] == "CaChannelException"
    assert child["attach_context"][0] == child["show_context"][0] == "ValueError"
    assert (child["get"], child["put"], child["clear_channel"]) == (BADCHID,) * 3
    # the inherited context is abandoned: no current context until first use
    assert child["current_context"] is True
    assert child["util_cache"] == 0
    assert child["searchw_again"] == "float"


def test_fork_while_parent_busy(results):
    got = ok(results, "fork_busy")
    assert got["bad"] == [] and got["events"] and got["parent"] == PARENT, got


def test_no_epicsthread_fork_warning(results):
    # libCom warns on the first epicsThread use in a child; the hook spends it quietly
    assert "Undefined Behavior" not in results["__stderr__"]["text"]


@pytest.mark.stress
def test_fork_while_parent_busy_stress(softioc):
    got = run_cases("fork_worker.py", ["fork_busy_stress"], timeout=600, alone_timeout=600)
    res = ok(got, "fork_busy_stress")
    assert res["bad"] == [] and res["parent"] == PARENT, res
