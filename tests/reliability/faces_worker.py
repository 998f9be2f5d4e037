"""One faces-battery case per process: ``python faces_worker.py CASE``.

Cases that could crash or wedge the process: lifecycle misuse, callbacks
that raise or re-enter, a kill -9 of the IOC in the middle of a call, and
interpreter exit while daemon threads are inside calls. The case runs in a
watchdog thread (``faces_verdict.run_bounded``); the worker prints
``RESULT <json outcome>`` and then exits normally (so the exit path is
exercised too). ``test_faces_faults.py`` runs it and judges the outcome, the
exit code and the time.

The session IOC's client environment is inherited. ``kill:*`` and
``exit:image*`` cases start a private IOC (``FK_DB`` below plus the simulated
areaDetector plugin) before the first CA call and SIGKILL it by PID.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from faces_verdict import run_bounded  # noqa: E402

FK_DB = """
record(ao, "$(P)a") { field(VAL, "1") field(PINI, "YES") }
record(ao, "$(P)b") { field(VAL, "2") field(PINI, "YES") }
record(calcout, "$(P)slow") { field(CALC, "A") field(ODLY, "20") }
record(waveform, "$(P)wave") { field(FTVL, "DOUBLE") field(NELM, "16") }
"""

#: record prefix of the private IOC, unique per worker: workers run in parallel
#: and two IOCs may end up on one UDP port, so names must not collide
P = "fk%d:" % os.getpid()
#: what a call may take beyond its own timeout (or the kill) on a loaded machine
SLACK = 4.0
CASES = {}
IOC_CASES = set()
ioc = None  # the private IOC of kill/exit-image cases


def case(name, private_ioc=False):
    def deco(fn):
        CASES[name] = fn
        if private_ioc:
            IOC_CASES.add(name)
        return fn
    return deco


def start_private_ioc():
    global ioc
    from CaChannel.demo.adsim import DATABASE as ADSIM_DB
    from CaChannel.testing import IOC
    fd, db = tempfile.mkstemp(suffix=".db")
    with os.fdopen(fd, "w") as f:
        f.write(FK_DB)
    ioc = IOC([db, ADSIM_DB], macros="P=%s,PLUGIN=%simage1:,NELM=1024" % (P, P), ready_pv=P + "a")
    ioc.start()
    os.unlink(db)
    addrs = os.environ.get("EPICS_CA_ADDR_LIST", "").split() + ["127.0.0.1:%d" % ioc.port]
    os.environ["EPICS_CA_ADDR_LIST"] = " ".join(addrs)
    os.environ["EPICS_CA_AUTO_ADDR_LIST"] = "NO"


def kill_later(delay, stop_first=False):
    """SIGKILL the private IOC after ``delay`` s (SIGSTOP it now with ``stop_first``,
    so that requests sent meanwhile stay unanswered)."""
    pid = ioc.pid
    if stop_first:
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: _proc_state(pid) == "T")  # every thread of it stopped

    def kill():
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
    threading.Thread(target=kill, daemon=True).start()


def _proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def timed(fn):
    """``(result, seconds)`` of ``fn()``."""
    start = time.monotonic()
    value = fn()
    return value, round(time.monotonic() - start, 2)


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached within %s s" % timeout)
        time.sleep(0.01)


# ----------------------------------------------------------- lifecycle misuse
@case("pv:disconnect twice then get")
def _():
    from CaChannel import PV
    pv = PV("catest")
    assert pv.wait_for_connection(5)
    pv.disconnect()
    pv.disconnect()
    return pv.get(timeout=5)


@case("pv:methods after clear_pvcache")
def _():
    from CaChannel.pv import clear_pvcache, get_pv
    pv = get_pv("catest", connect=True)
    clear_pvcache()
    clear_pvcache()
    return [pv.get(timeout=5) is not None, pv.put(1.5, wait=True, timeout=5), pv.connected]


@case("util:caget after clear_cache")
def _():
    from CaChannel import util
    util.caget(["catest", "cabo"])
    util.clear_cache()
    util.clear_cache()
    return util.caget(["catest", "cabo"], timeout=5)


@case("CaChannel:methods after clear_channel")
def _():
    from CaChannel import CaChannel, CaChannelException, ca
    chan = CaChannel("catest")
    chan.searchw()
    chan.add_masked_array_event(None, None, None, lambda *a: None)
    chan.clear_channel()
    chan.clear_channel()
    chan.clear_event()
    out = [str(chan.state())]
    for call in (chan.getw, lambda: chan.putw(1), chan.field_type,
                 lambda: chan.add_masked_array_event(None, None, None, print)):
        try:
            call()
            out.append("no error")
        except CaChannelException as exc:
            out.append(int(exc.status) == ca.ECA_BADCHID)
    return out


@case("Monitor:close twice, get/iterate after close")
def _():
    from CaChannel.monitor import Monitor
    mon = Monitor("catest")
    first = mon.get(5)
    mon.close()
    mon.close()
    return [first is not None, mon.get(0.1), list(mon), mon.stats.pending]


@case("ArrayMonitor:close twice, frame after close")
def _():
    from CaChannel.monitor import ArrayMonitor
    mon = ArrayMonitor("ca:wave:SHORT", buffers=2, priority=0)
    frame = mon.get(5)
    mon.close()
    mon.close()
    held = len(frame.array) == frame.count > 0  # a held frame stays readable after close
    frame.release()
    frame.release()
    return [held, mon.get(0.1), list(mon), mon.stats.pending]


@case("ImageReader:close twice, get after close", private_ioc=True)
def _():
    from CaChannel.areadetector import ImageReader
    reader = ImageReader(P + "image1:", timeout=10)
    reader.close()
    reader.close()
    return [reader.get(0.1), list(reader)]


# ----------------------------------------------- callbacks that raise/re-enter
@case("pv:value callback raises, others still run")
def _():
    from CaChannel import PV
    seen = threading.Event()
    pv = PV("catest")

    def bad(**kw):
        raise RuntimeError("raised by a test callback (expected)")

    pv.add_callback(bad)
    pv.add_callback(lambda **kw: seen.set())
    assert pv.wait_for_connection(5)
    pv.put(2.0, wait=True, timeout=5)
    return [seen.wait(5), pv.get(use_monitor=False, timeout=5)]


@case("pv:value callback calls get(use_monitor=False)")
def _():
    from CaChannel import PV
    pv = PV("catest")
    got = []
    done = threading.Event()

    def cb(**kw):
        if not done.is_set():
            got.append(timed(lambda: pv.get(use_monitor=False, timeout=1.0)))
            done.set()

    pv.add_callback(cb)
    assert pv.wait_for_connection(5)
    assert done.wait(6), "the callback never returned"
    value, seconds = got[0]
    # on libca's thread the answer can only come after the callback: None in ~1 s, or a value
    return ["bounded" if seconds < 1 + SLACK else "slow %s" % seconds, pv.get(timeout=5) is not None]


@case("pv:value callback calls put and put(wait)")
def _():
    from CaChannel import PV
    pv = PV("catest")
    results = []
    done = threading.Event()

    def cb(value=None, **kw):
        if len(results) == 0:
            results.append(pv.put(3.0))
            results.append(timed(lambda: pv.put(4.0, wait=True, timeout=1.0)))
            done.set()

    pv.add_callback(cb)
    assert pv.wait_for_connection(5)
    assert done.wait(6), "the callback never returned"
    (wait_result, seconds) = results[1]
    return [results[0], wait_result in (1, -1), seconds < 1 + SLACK, pv.put(5.0, wait=True, timeout=5)]


@case("pv:value callback disconnects its PV")
def _():
    from CaChannel import PV
    pv = PV("catest")
    done = threading.Event()

    def cb(**kw):
        pv.disconnect()
        done.set()

    pv.add_callback(cb)
    assert done.wait(5)
    return [pv.connected, pv.get(timeout=5) is not None]


@case("pv:connection callback disconnects its PV")
def _():
    from CaChannel import PV
    done = threading.Event()
    holder = []

    def on_conn(pvname=None, conn=None, pv=None):
        if conn and not holder[1:]:  # once: the PV reconnects on the next get
            holder.append("disconnecting")
            pv.disconnect()
            done.set()

    holder.append(PV("cabo", connection_callback=on_conn))
    assert done.wait(5)
    return [holder[0].connected, holder[0].get(timeout=5) in (0, 1)]


@case("CaChannel:connection callback clears the channel, other threads searching")
def _():
    from CaChannel import CaChannel, util
    cleared = threading.Event()
    stop = threading.Event()
    chans = []

    def conn_cb(epics_args, user_args):
        user_args[0].clear_channel()   # on libca's thread
        cleared.set()

    def searcher():  # the cache lock taken by another thread meanwhile
        i = 0
        while not stop.is_set():
            util.caget(["catest", "no:such:%d" % i], timeout=0.05, throw=False)
            i += 1

    threads = [threading.Thread(target=searcher, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(20):
        chan = CaChannel("cabo")
        chans.append(chan)
        cleared.clear()
        chan.search_and_connect(None, conn_cb, chan)
        chan.flush_io()
        assert cleared.wait(5), "connection callback did not run"
    stop.set()
    for t in threads:
        t.join(5)
    return [all(c.core_channel is None for c in chans), util.caget("cabo", timeout=5) in (0, 1)]


@case("Monitor:callback closes its monitor")
def _():
    from CaChannel.monitor import Monitor
    done = threading.Event()
    made = threading.Event()
    box = []

    def cb(epics_args, user_args):
        made.wait(5)  # the first update may come before Monitor() returned
        box[0].close()
        done.set()

    box.append(Monitor("catest", cb))
    made.set()
    assert done.wait(5)
    wait_for(lambda: box[0].closed)
    return [box[0].closed, box[0].stats.pending]


@case("subscribe:callback closes its subscription")
def _():
    from CaChannel import ca, core
    from CaChannel.monitor import subscribe
    done = threading.Event()
    box = []

    made = threading.Event()

    def cb(event):
        made.wait(5)
        box[0].close()
        done.set()

    ch = core.acquire("catest")
    assert ch.wait_connected(5)
    status, sub = subscribe(ch.chid, cb)
    box.append(sub)
    made.set()
    ca.flush_io()
    assert done.wait(5)
    return [sub.closed, int(status)]


@case("Monitor:callback raises, delivery goes on")
def _():
    from CaChannel import util
    from CaChannel.monitor import Monitor
    n = []
    done = threading.Event()

    def cb(epics_args, user_args):
        n.append(epics_args["pv_value"])
        if len(n) >= 3:
            done.set()
        raise ValueError("raised by a test callback (expected)")

    with Monitor("catest", cb, policy="all") as mon:
        for v in (11.0, 12.0):
            util.caput("catest", v, wait=True)
        ok = done.wait(5)
        return [ok, mon.stats.received >= 3]


@case("camonitor:callback removes its monitor and clears the cache")
def _():
    from CaChannel import util
    done = threading.Event()

    def cb(epics_args, user_args):
        util.camonitor("catest", callback=())
        util.clear_cache()
        done.set()

    util.camonitor("catest", callback=cb)
    assert done.wait(5)
    return util.caget("catest", timeout=5) is not None


# -------------------------------------------------- kill -9 of the IOC mid-call
@case("kill:list caget, IOC stopped then killed", private_ioc=True)
def _():
    from CaChannel import util
    assert util.caget([P + "a", P + "b"], timeout=5) == [1.0, 2.0]
    kill_later(0.5, stop_first=True)
    values, seconds = timed(lambda: util.caget([P + "a", P + "b"], timeout=3, throw=False))
    return [values, seconds < 3 + SLACK]


@case("kill:list caput wait timeout 3", private_ioc=True)
def _():
    from CaChannel import util
    util.caget([P + "slow.A", P + "a"], timeout=5)
    kill_later(0.5)
    result, seconds = timed(lambda: util.caput([P + "slow.A", P + "a"], [1, 5], wait=True, timeout=3,
                                               throw=False))
    return [result, seconds < 3 + SLACK]


@case("kill:list caput wait timeout None", private_ioc=True)
def _():
    from CaChannel import util
    util.caget([P + "slow.A"], timeout=5)
    kill_later(0.5)
    result, seconds = timed(lambda: util.caput([P + "slow.A"], [1], wait=True, timeout=None,
                                               throw=False))
    return [result, seconds < 0.5 + SLACK]


@case("kill:caput wait timeout None", private_ioc=True)
def _():
    from CaChannel import CaChannelException, util
    util.caget(P + "slow.A", timeout=5)
    kill_later(0.5)
    start = time.monotonic()
    try:
        util.caput(P + "slow.A", 1, wait=True, timeout=None)
        out = "returned"
    except CaChannelException as exc:
        out = "raised %s" % exc.status
    return [out, time.monotonic() - start < 0.5 + SLACK]


@case("kill:PV.get, IOC stopped then killed", private_ioc=True)
def _():
    from CaChannel import PV
    pv = PV(P + "a")
    assert pv.wait_for_connection(5)
    kill_later(0.5, stop_first=True)
    value, seconds = timed(lambda: pv.get(use_monitor=False, timeout=3))
    return [value, seconds < 3 + SLACK]


@case("kill:PV.put wait timeout 3", private_ioc=True)
def _():
    from CaChannel import CaChannelException, PV
    pv = PV(P + "slow.A")
    assert pv.wait_for_connection(5)
    kill_later(0.5)
    start = time.monotonic()
    try:
        out = pv.put(1, wait=True, timeout=3)
    except CaChannelException as exc:
        out = "raised %s" % exc.status
    return [out, time.monotonic() - start < 3 + SLACK]


@case("kill:PV.put wait timeout None", private_ioc=True)
def _():
    from CaChannel import CaChannelException, PV
    pv = PV(P + "slow.A")
    assert pv.wait_for_connection(5)
    kill_later(0.5)
    start = time.monotonic()
    try:
        out = pv.put(1, wait=True, timeout=None)
    except CaChannelException as exc:
        out = "raised %s" % exc.status
    return [out, time.monotonic() - start < 0.5 + SLACK]


# --------------------------------- exit with daemon threads inside calls
def exit_with(*calls, settle=0.5):
    """Start each call in a daemon thread, let them block, return (exit follows)."""
    for call in calls:
        threading.Thread(target=call, daemon=True).start()
    time.sleep(settle)  # let them get inside their waits (nothing to await: they block)
    return "exiting"


@case("exit:util list caget and caput(wait)")
def _():
    from CaChannel import util
    util.caget("pv:slowput", timeout=5)
    return exit_with(lambda: util.caget(["catest", "no:such:pv"], timeout=60),
                     lambda: util.caput(["pv:slowput.A", "no:such:pv"], [1, 2], wait=True,
                                        timeout=60),
                     lambda: util.caput("aio:slow.A", 1, wait=True))


@case("exit:PV.get and PV.put(wait)")
def _():
    from CaChannel import PV
    slow = PV("aio:slow.A")
    assert slow.wait_for_connection(5)
    return exit_with(lambda: PV("no:such:pv").get(timeout=60),
                     lambda: slow.put(1, wait=True, timeout=None))


@case("exit:Monitor.get and a Monitor callback running")
def _():
    from CaChannel.monitor import Monitor
    mon = Monitor("ca:scalar:STRING")
    mon.get(5)  # its first update: the next get blocks
    busy = threading.Event()

    def slow_cb(epics_args, user_args):
        busy.set()
        time.sleep(30)

    Monitor("catest", slow_cb)
    assert busy.wait(5)
    return exit_with(lambda: mon.get())


@case("exit:ArrayMonitor.get")
def _():
    from CaChannel.monitor import ArrayMonitor
    mon = ArrayMonitor("ca:wave:SHORT", buffers=2, priority=0)
    mon.get(5)  # the first update: the next get blocks
    return exit_with(lambda: mon.get(), lambda: mon.get(60))


@case("exit:ImageReader.get", private_ioc=True)
def _():
    from CaChannel.areadetector import ImageReader
    reader = ImageReader(P + "image1:", timeout=10)
    return exit_with(lambda: reader.get(), lambda: reader.get(60))


def main(name):
    if name in IOC_CASES:
        start_private_ioc()
    bound = float(os.environ.get("FACES_CASE_BOUND", "20"))
    outcome = run_bounded(CASES[name], bound)
    if "value" in outcome:
        outcome["value"] = json.loads(json.dumps(outcome["value"], default=repr))
    outcome["at"] = time.time()  # the parent measures the exit from here
    print("RESULT " + json.dumps(outcome), flush=True)
    if ioc is not None and ioc.running:
        try:
            os.kill(ioc.pid, signal.SIGCONT)
        except OSError:
            pass
        ioc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
