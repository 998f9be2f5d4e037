"""IOC restart: kill -9 and restart on the same port with 100 monitored channels."""
import json
import os
import subprocess
import sys
import sysconfig

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def run_cycles(cycles, channels=100, timeout=600):
    env = dict(os.environ)
    # libca spawns the caRepeater script so that beacons speed up reconnection
    env["PATH"] = sysconfig.get_path("scripts") + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "restart_worker.py"),
                           str(cycles), str(channels)], env=env, capture_output=True,
                          text=True, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def check(figures, cycles):
    from CaChannel import ca
    assert len(figures["cycles"]) == cycles
    for c in figures["cycles"]:
        assert c["extra_down"] == 0 and c["extra_up"] == 0, c
    for p in figures["pending"]:
        # a put/get with callback pending at the kill completes with an error
        assert p["put"] and p["put"][0] != ca.ECA_NORMAL, p
        assert len(p["put"]) == 1 and len(p["get"]) <= 1, p
    first = figures["cycles"][0]
    last = figures["cycles"][-1]
    assert last["fds"] == first["fds"], figures["cycles"]
    assert last["rss_kb"] - first["rss_kb"] < 5 * 1024, figures["cycles"]


def test_ioc_restart_fast():
    # each cycle takes ~10 s: libca searches for the lost channels with backoff
    check(run_cycles(3), 3)


@pytest.mark.stress
def test_ioc_restart_50_cycles():
    figures = run_cycles(50, timeout=1800)
    check(figures, 50)
    print("restart figures:", figures["cycles"][0], figures["cycles"][-1])
