"""A CA server subprocess (tests/servers/*.py) on a port of its own, for the
conftests that serve what base records cannot (tests/hl, tests/ophyd)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from CaChannel.testing import ca_search, free_port

SERVERS_DIR = Path(__file__).resolve().parent / "servers"
LOOPBACK = "127.0.0.1"


class Server:
    """One server subprocess on its own port."""

    def __init__(self, name: str, script: str, probe: str, args=()):
        self.name = name
        self.script = SERVERS_DIR / script
        self.probe = probe
        self.args = list(args)
        self.port = free_port()
        self.proc = None
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / ("cachannel-%s-%d.log" % (name, self.port))

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EPICS_CA_", "EPICS_CAS_"))}
        env.update({
            "EPICS_CA_SERVER_PORT": str(self.port),
            "EPICS_CAS_SERVER_PORT": str(self.port),
            "EPICS_CAS_INTF_ADDR_LIST": LOOPBACK,
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_CAS_BEACON_ADDR_LIST": LOOPBACK,
            "EPICS_CA_ADDR_LIST": LOOPBACK,
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "PYTHONUNBUFFERED": "1",
        })
        self._logfile = open(self.log, "wb")
        self.proc = subprocess.Popen([sys.executable, str(self.script)] + self.args, env=env,
                                     stdout=self._logfile, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s server exited (%s); log %s:\n%s"
                                   % (self.name, self.proc.returncode, self.log, self.log.read_text()[-2000:]))
            if ca_search(self.probe, self.port, timeout=0.3) is not None:
                return
        raise RuntimeError("%s server did not answer a search for %r on port %d within %.0f s; log %s"
                           % (self.name, self.probe, self.port, timeout, self.log))

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass
        finally:
            self._logfile.close()

    @property
    def address(self) -> str:
        return "%s:%d" % (LOOPBACK, self.port)
