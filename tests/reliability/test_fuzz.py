"""Bounded fuzzing in the default run (hypothesis); fuzz/fuzz_ca.py (atheris)
runs longer. Any Python value x any DBR type: clean exception, a status, or
written and read back; random bytes through the DBR decoder."""
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "fuzz"))
import ca_fuzz  # noqa: E402


@settings(max_examples=500, deadline=None, database=None)
@given(st.binary(min_size=3, max_size=4000))
def test_decode_random_bytes(data):
    ca_fuzz.check_decode(data)


def run_put(examples, timeout):
    proc = subprocess.run([sys.executable, os.path.join(HERE, "fuzz_worker.py"), str(examples)],
                          capture_output=True, text=True, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    stats = json.loads(lines[-1][len("RESULT "):])
    assert stats["executions"] >= examples // 2, stats
    assert stats["written"] > 0 and stats["raised"] > 0, stats
    return stats


def test_put_values_fuzz():
    print("put fuzz:", run_put(200, 600))


@pytest.mark.stress
def test_put_values_fuzz_long():
    print("put fuzz:", run_put(3000, 3000))
