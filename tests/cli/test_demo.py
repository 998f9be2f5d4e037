"""python -m CaChannel demo: runs on both backends, exits 0, leaves no process behind."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return " Z " not in f.read()     # a zombie is not a live process
    except OSError:
        return True


ACTIVE = "caffi" if os.environ.get("CACHANNEL_BACKEND", "").strip().lower() == "caffi" else "cext"


@pytest.mark.parametrize("backend", [ACTIVE])     # the suite runs once per backend
def test_demo_runs_and_cleans_up(backend):
    env = dict(os.environ)
    env.pop("CACHANNEL_BACKEND", None)
    env["PYTHONFAULTHANDLER"] = "1"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "CaChannel", "demo", "--seconds", "6",
                           "--backend", backend],
                          env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    out = proc.stdout
    assert proc.returncode == 0, "demo failed:\n%s\n%s" % (out, proc.stderr)
    head = re.search(r"soft IOC pid (\d+) on 127\.0\.0\.1:(\d+), CA repeater pid (\d+), "
                     r"backend '(\w+)'", out)
    assert head, out
    assert head.group(4) == backend
    for title in ("== cainfo ==", "== caget with units and alarm state",
                  "== caput with wait, then the readback ==", "== camonitor demo:ring:current",
                  "== image monitor demo:det:image"):
        assert title in out, title
    assert "Enumerates:     ('Closed', 'Open')" in out                  # cainfo
    assert re.search(r"demo:ring:current +\d+\.\d{3} mA", out)          # caget with units
    assert "caget(as_string=True) -> 'Open'" in out                    # caput + readback
    assert "readback reached 12.500 mm" in out
    assert re.search(r"demo:sample:temp +\d+\.\d\d degC +HIGH MINOR", out)
    assert re.search(r"^demo:ring:current \S+ \S+ \d+\.\d+$", out, re.M)  # camonitor lines
    rates = re.findall(r"frames +(\d+) +([\d.]+) frames/s +([\d.]+) MB/s", out)
    assert rates and int(rates[-1][0]) > 0 and float(rates[-1][2]) > 0
    assert "ca.get(chid, out=frame): shape (1024, 1024), dtype uint16" in out
    images = re.findall(r"images +(\d+) +[\d.]+ images/s +([\d.]+) MB/s +dropped \d+ +lost \d+", out)
    assert images and int(images[-1][0]) > 0, "ImageReader section"
    assert "last image: shape (480, 640), UInt16, Mono" in out
    assert "demo IOC and CA repeater stopped" in out
    assert "Virtual circuit disconnect" not in proc.stderr
    assert elapsed < 60
    for pid in (int(head.group(1)), int(head.group(3))):
        assert not _alive(pid), "process %d left behind" % pid


def test_demo_ctrl_c_stops_everything():
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen([sys.executable, "-m", "CaChannel", "demo", "--seconds", "60"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        head = proc.stdout.readline()
        m = re.search(r"soft IOC pid (\d+) .* CA repeater pid (\d+)", head)
        assert m, head
        for line in proc.stdout:               # wait until the tour is under way
            if line.startswith("== cainfo =="):
                break
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130, err
    assert "demo IOC and CA repeater stopped" in out
    for pid in (int(m.group(1)), int(m.group(2))):
        assert not _alive(pid), "process %d left behind" % pid
