"""Helpers of tests/core: the server-side channel counts (``casr 2``) of a
private IOC must see only the client under test, which runs in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from CaChannel.testing import IOC

TEST_DB = Path(__file__).resolve().parent.parent / "test.db"


def server_channels(ioc: IOC, name: str) -> int:
    """How many channels named ``name`` the IOC's CA server has open (``casr 2``)."""
    report = ioc.shell("casr 2")
    return sum(1 for line in report.splitlines() if line.strip() == "Channel: '%s'" % name)


def wait_server_channels(ioc: IOC, name: str, expect: int, timeout: float = 10.0) -> int:
    """:func:`server_channels` until it is ``expect`` or ``timeout`` s passed;
    returns the last count. The server handles a channel's clear some time
    after the client sent it: a report made at once may still list it."""
    end = time.monotonic() + timeout
    while True:
        n = server_channels(ioc, name)
        if n == expect or time.monotonic() > end:
            return n
        time.sleep(0.1)  # the server's state: no event to wait on


class Client:
    """A client script in a subprocess (through pipes, as users run it) that
    stops at each ``pause()`` until told to go on; the parent reads the
    server's channel counts meanwhile."""

    def __init__(self, ioc: IOC, script: str) -> None:
        env = dict(os.environ)
        env.update(ioc.client_env())
        prelude = textwrap.dedent("""
            import sys
            def pause(tag):
                print("PAUSE", tag, flush=True)
                assert sys.stdin.readline().strip() == "go", "parent stopped"
        """)
        self.proc = subprocess.Popen([sys.executable, "-c", prelude + textwrap.dedent(script)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)

    def wait_pause(self, tag: str, timeout: float = 60.0) -> None:
        line = self._readline(timeout)
        assert line.strip() == "PAUSE " + tag, "expected pause %r, got %r\n%s" % (
            tag, line, self._stderr())

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60.0) -> str:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("client did not exit within %s s:\n%s\n%s" % (timeout, out, err))
        assert self.proc.returncode == 0, "client exited %s:\n%s\n%s" % (self.proc.returncode, out, err)
        return out

    def _readline(self, timeout: float) -> str:
        import selectors
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            self.proc.kill()
            raise AssertionError("client said nothing within %s s:\n%s" % (timeout, self._stderr()))
        return self.proc.stdout.readline()

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()
