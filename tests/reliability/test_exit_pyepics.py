"""Exit with pyepics in the same process, on the same libca.

ophyd points pyepics at epicscorelibs' libca (``epicscorelibs.path.pyepics``), so
pyepics and CaChannel share one libca and the thread's context. pyepics' atexit
hook destroys the thread's current context whoever created it; the cffi
backend then destroyed it again (a double free: SIGSEGV or "double free or
corruption" at the end of every caffi test run that had imported ophyd).
The script runs as users run theirs: a subprocess with piped stdio.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("epics")
pytest.importorskip("epicscorelibs.path.pyepics")

SCRIPT = textwrap.dedent("""
    import sys
    first = sys.argv[1]
    if first == "pyepics":
        import epicscorelibs.path.pyepics
        import epics
        assert epics.caget("catest", timeout=5) is not None
    from CaChannel import CaChannel, PV, ca
    from CaChannel.monitor import Monitor
    pv = PV("catest", callback=lambda **kw: None)
    assert pv.wait_for_connection(5)
    mon = Monitor("catest", lambda args, user: None)
    chan = CaChannel("catest")
    chan.searchw()
    chan.add_masked_array_event(None, None, None, lambda args, user: None)
    chan.flush_io()
    if first == "cachannel":
        import epicscorelibs.path.pyepics
        import epics
        assert epics.caget("catest", timeout=5) is not None
    print("READY", ca.backend, flush=True)
""")


@pytest.mark.parametrize("first", ["cachannel", "pyepics"])
def test_exit_with_pyepics_on_the_same_libca(first):
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", SCRIPT, first],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "READY" in proc.stdout, (
        "rc=%s\nstdout: %s\nstderr: %s" % (proc.returncode, proc.stdout, proc.stderr[-3000:]))
    assert "Fatal Python error" not in proc.stderr and "double free" not in proc.stderr, \
        proc.stderr[-3000:]
