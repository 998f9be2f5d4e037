"""Falsy connection and access-rights callbacks see a disconnect (both layers).

A worker process with its own IOC (killed in the middle): libca reads the
address list once per context, so the session's context cannot reach it.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_falsy_callbacks_see_the_server_go_away():
    proc = subprocess.run([sys.executable, os.path.join(HERE, "disconnect_worker.py")],
                          capture_output=True, text=True, timeout=120, cwd=HERE)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), \
        (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
