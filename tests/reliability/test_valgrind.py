"""Memory safety of the C extension: the low-level subset under valgrind
memcheck (slow: ~15-30 min; stress only). See valgrind_check.py."""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.stress
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
@pytest.mark.skipif(os.environ.get("CACHANNEL_BACKEND") == "caffi", reason="C extension run")
def test_lowlevel_under_valgrind():
    root = os.path.dirname(os.path.dirname(HERE))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "valgrind_check.py"),
                           "tests/lowlevel/test_ll_get.py", "tests/lowlevel/test_ll_put.py"],
                          cwd=root, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-6000:]
