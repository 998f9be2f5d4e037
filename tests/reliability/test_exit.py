"""Exit: scripts that end (normally, sys.exit, unhandled exception, exit in a
callback) with live monitors, pending put callbacks and a freshly killed IOC
never crash, never hang, and leave no process behind."""
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from CaChannel.testing import IOC, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from exit_script import EXPECTED_RC  # noqa: E402
from restart_worker import start_repeater  # noqa: E402

EXIT_BOUND = 10.0  # seconds from the kill of the script's IOC to its exit
MODES = list(EXPECTED_RC)


@pytest.fixture(scope="module")
def alive_ioc():
    """The IOC that stays up (al:*), and a private caRepeater for everyone."""
    rport = free_port()
    saved = os.environ.get("EPICS_CA_REPEATER_PORT")
    os.environ["EPICS_CA_REPEATER_PORT"] = str(rport)
    try:
        rep = start_repeater(rport)
    finally:
        if saved is None:
            del os.environ["EPICS_CA_REPEATER_PORT"]
        else:
            os.environ["EPICS_CA_REPEATER_PORT"] = saved
    fd, db = tempfile.mkstemp(suffix=".db")
    with os.fdopen(fd, "w") as f:
        for i in range(10):
            f.write('record(ao, "al:%d") { field(VAL, "%d") field(PINI, "YES") }\n' % (i, i))
        f.write('record(calc, "al:tick") { field(SCAN, ".1 second") field(CALC, "A+1") '
                'field(INPA, "al:tick NPP") }\n')
        f.write('record(seq, "al:slow") { field(DLY0, "30") field(DOL0, "1") '
                'field(LNK0, "al:sink PP") }\nrecord(ao, "al:sink") {}\n')
    ioc = IOC([db], ready_pv="al:0", env={"EPICS_CA_REPEATER_PORT": str(rport)})
    ioc.start()
    try:
        yield ioc, rport
    finally:
        ioc.stop()
        os.unlink(db)
        rep.kill()
        rep.wait(10)


def marked_pids(marker):
    """PIDs of live processes whose environment carries ``marker``."""
    pids = []
    needle = ("CACHANNEL_EXIT_RUN=%s" % marker).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open("/proc/%s/stat" % entry) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # a zombie is dead (its parent reaps it)
        except OSError:
            continue
        pids.append(int(entry))
    return pids


def run_one(mode, alive, rport):
    marker = uuid.uuid4().hex
    env = dict(os.environ, CACHANNEL_EXIT_RUN=marker, EPICS_CA_REPEATER_PORT=str(rport),
               PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "exit_script.py"), mode,
                             "127.0.0.1:%d" % alive.port], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killed_at = None
    hung = False
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        hung = True
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    end = time.time()
    for line in out.splitlines():
        if line.startswith("KILLED "):
            killed_at = float(line.split()[1])
    leftovers = []
    deadline = time.monotonic() + 5
    while True:
        leftovers = marked_pids(marker)
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    return {"mode": mode, "rc": proc.returncode, "hung": hung, "out": out, "err": err,
            "killed": killed_at is not None, "leftovers": leftovers,
            "exit_seconds": (end - killed_at) if killed_at else None}


def run_many(n, alive_ioc):
    ioc, rport = alive_ioc
    results = []
    for mode in itertools.islice(itertools.cycle(MODES), n):
        results.append(run_one(mode, ioc, rport))
    bad = []
    for r in results:
        expected = EXPECTED_RC[r["mode"]]
        if r["hung"] or r["rc"] != expected or not r["killed"] or r["leftovers"]:
            bad.append("%s: rc=%s (expected %s) hung=%s killed=%s leftovers=%s\n%s\n%s" % (
                r["mode"], r["rc"], expected, r["hung"], r["killed"], r["leftovers"],
                r["out"][-800:], r["err"][-2500:]))
        if r["mode"] == "sys_exit_callback":
            if "SystemExit: 3" not in r["err"]:
                bad.append("sys_exit_callback: no SystemExit report\n" + r["err"][-2000:])
        if "Fatal Python error" in r["err"] or "Segmentation" in r["err"]:
            bad.append("%s: fatal error\n%s" % (r["mode"], r["err"][-3000:]))
    assert not bad, "\n\n".join(bad[:5])
    return results


def check_exit_time(results):
    # the exit phase (from the kill of the script's IOC to the end of the
    # process) is bounded; the time before it is IOC start-up and connection
    slow = [r for r in results if r["exit_seconds"] > EXIT_BOUND]
    assert not slow, [(r["mode"], r["exit_seconds"]) for r in slow]


def test_exit_fast(alive_ioc):
    results = run_many(10, alive_ioc)
    check_exit_time(results)
    print("exit runs:", len(results), "rcs:", sorted({(r["mode"], r["rc"]) for r in results}))


@pytest.mark.stress
def test_exit_200(alive_ioc):
    results = run_many(200, alive_ioc)
    check_exit_time(results)
    print("exit runs:", len(results))
