"""A script exits normally with CaChannel objects, callbacks and monitors alive."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "exit_hl_script.py"


def test_exit_with_high_level_objects_alive(softioc):
    proc = subprocess.run([sys.executable, str(SCRIPT)], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60)
    detail = "rc %s\nstdout:\n%s\nstderr:\n%s" % (proc.returncode, proc.stdout, proc.stderr[-3000:])
    assert proc.returncode == 0, detail
    assert "READY" in proc.stdout, detail
    for fatal in ("terminate called", "Fatal Python error", "Segmentation fault", "Traceback"):
        assert fatal not in proc.stderr, detail
