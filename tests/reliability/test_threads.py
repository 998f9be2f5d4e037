"""Threads: mixed get/put/subscribe/clear from 8 threads attached to one
preemptive context, re-entrant callbacks, under faulthandler's watchdog."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def run(seconds, threads=8):
    # a subprocess: its own preemptive context on the session IOC, and a
    # deadlock ends in faulthandler's dump of every thread instead of a hang
    proc = subprocess.run([sys.executable, os.path.join(HERE, "thread_worker.py"),
                           str(seconds), str(threads)], capture_output=True, text=True,
                          timeout=seconds + 120)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, \
        "rc=%s\n%s\n%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-6000:])
    res = json.loads(lines[-1][len("RESULT "):])
    assert res["n_errors"] == 0, res["errors"]
    assert res["puts"] > 0 and res["get_cb"] > 0 and res["events"] > 0 and res["chan_churn"] > 0, res
    assert res["missing"] == 0 and res["duplicated"] == 0 and res["unknown"] == 0, res
    assert res["put_callbacks"] == res["puts"], res
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    return res


def test_threads_fast():
    print(run(3))


@pytest.mark.stress
def test_threads_30s():
    print(run(30))
