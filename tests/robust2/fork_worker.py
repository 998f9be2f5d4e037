"""Worker of test_fork.py: CA in processes made by fork (and the spawn and
forkserver controls), against the session IOC (environment inherited).

The worker first uses CA itself (a preemptive context, util's cache, a
CaChannel with a monitor, a low-level channel), so that every child inherits
live CA state; each case then checks the children and that the worker (the
parent) still reads afterwards."""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import time

from r2cases import main

from CaChannel import CaChannel, CaChannelException, ca, core, util

PV = "catest"
WAIT = 15.0   # bound on a child's life


def pool_work(name):
    chan = CaChannel(name)
    chan.searchw()
    return [os.getpid(), type(util.caget(name)).__name__, type(chan.getw()).__name__]


def parent_state():
    """CA state of the parent, inherited by every child."""
    util.caget(PV)
    chan = CaChannel(PV)
    chan.searchw()
    events = []
    chan.add_masked_array_event(None, None, None, lambda args, _: events.append(1))
    assert ca.create_context(True) == ca.ECA_NORMAL   # the thread's (CaChannel's) context
    st, chid = ca.create_channel(PV)
    assert ca.pend_io(5) == ca.ECA_NORMAL
    return chan, chid, ca.current_context(), events


STATE = None


def state():
    global STATE
    if STATE is None:
        STATE = parent_state()
    return STATE


def parent_reads():
    chan, chid, _, _ = state()
    st, v = ca.get(chid)
    return [int(ca.pend_io(5)), type(v.get()).__name__, type(chan.getw()).__name__,
            type(util.caget(PV)).__name__]


def pool(method):
    state()
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as p:
        out = p.map_async(pool_work, [PV, "cabo", PV, "cawave"], chunksize=1).get(WAIT * 2)
    return {"children": [r[1:] for r in out], "parent": parent_reads()}


def wait_child(pid):
    """Exit code of the child, or 'hung' (then it is killed)."""
    end = time.monotonic() + WAIT
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"


def in_child(body, exit_with="os._exit"):
    """Run body() in a forked child; its JSON result comes back by a pipe."""
    state()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            try:
                res = {"ret": body()}
            except BaseException as exc:
                res = {"exc": type(exc).__name__, "msg": str(exc)}
            os.write(w, json.dumps(res, default=repr).encode())
            os.close(w)
        finally:
            if exit_with == "os._exit":
                os._exit(0)
        sys.exit(0)   # a normal interpreter exit: atexit hooks, libca's exit handlers
    os.close(w)
    code = wait_child(pid)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    child = json.loads(data) if data else None
    return {"code": code, "child": child, "parent": parent_reads()}


def child_reads():
    """What a child script does: util and CaChannel (the first CA call makes
    a new preemptive context), then the low-level API in that context."""
    first = type(util.caget(PV)).__name__
    chan = CaChannel("cabo")
    chan.searchw()
    st, chid = ca.create_channel(PV)
    pend = int(ca.pend_io(5))
    st2, v = ca.get(chid)
    pend2 = int(ca.pend_io(5))
    return [first, type(chan.getw()).__name__, pend, pend2, type(v.get()).__name__]


def child_reads_lowlevel():
    """Only the low-level API, without create_context: libca makes a
    (non-preemptive) context on the first call, as in any process."""
    st, chid = ca.create_channel(PV)
    pend = int(ca.pend_io(5))
    st2, v = ca.get(chid)
    pend2 = int(ca.pend_io(5))
    return [int(st), pend, int(st2), pend2, type(v.get()).__name__]


def errors(func):
    try:
        return ["ok", repr(func())]
    except (ValueError, CaChannelException) as exc:
        return [type(exc).__name__, str(exc)]


def inherited():
    """Every inherited handle is dead in the child, with an error naming fork."""
    chan, chid, ctx, _ = state()
    return {
        "getw": errors(chan.getw),
        "putw": errors(lambda: chan.putw(1.0)),
        "name": errors(lambda: ca.name(chid)),
        "field_type": errors(lambda: ca.field_type(chid)),
        "attach_context": errors(lambda: ca.attach_context(ctx)),
        "show_context": errors(lambda: ca.show_context(ctx)),
        "get": int(ca.get(chid)[0]),
        "put": int(ca.put(chid, 1.0)),
        "clear_channel": int(ca.clear_channel(chid)),
        "current_context": ca.current_context() is None,
        "util_cache": len(core.channels()),
        # searching the inherited object again works in the child
        "searchw_again": (chan.searchw(), type(chan.getw()).__name__)[1],
    }


def busy_parent_forks(n):
    """Forks while the parent's CA threads are busy (monitor updates from a
    writer thread): each child still reads."""
    chan, chid, _, events = state()
    stop = threading.Event()

    def writer():
        w = CaChannel(PV)
        w.searchw()
        i = 0
        while not stop.is_set():
            w.putw(i % 10)
            i += 1

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        codes = [in_child(child_reads) for _ in range(n)]
    finally:
        stop.set()
        t.join(10)
    bad = [c for c in codes if c["code"] != 0 or "ret" not in (c["child"] or {})]
    return {"forks": n, "bad": bad, "events": len(events) > 0, "parent": parent_reads()}


CASES = {
    "pool_fork": lambda: pool("fork"),
    "pool_spawn": lambda: pool("spawn"),
    "pool_forkserver": lambda: pool("forkserver"),
    "fork_child": lambda: in_child(child_reads),
    "fork_child_sys_exit": lambda: in_child(child_reads, exit_with="sys.exit"),
    "fork_child_lowlevel": lambda: in_child(child_reads_lowlevel),
    "fork_inherited": lambda: in_child(inherited),
    "fork_busy": lambda: busy_parent_forks(3),
    "fork_busy_stress": lambda: busy_parent_forks(200),
}

if __name__ == "__main__":
    main(CASES, sys.argv[1:])
