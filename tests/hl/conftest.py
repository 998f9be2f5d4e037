"""Extra CA servers for the high-level tests: motor simulator, caproto, pcaspy.

libca reads ``EPICS_CA_ADDR_LIST`` once, when the first CA context is made,
so the servers must run and their ``127.0.0.1:PORT`` be appended to the list
before any test creates a context. The harness plugin exports the session
IOC's environment in ``pytest_sessionstart``; this conftest is loaded during
collection, so the servers are started in ``pytest_collection_finish`` (before
the first test of any directory runs) and the addresses appended then. The
session-scoped autouse fixture ``hl_servers`` hands them to tests; all are
stopped by PID at session end.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

import pytest

from anchors import channels_held_open
from CaChannel.testing import ca_search, free_port

SERVERS_DIR = Path(__file__).resolve().parent.parent / "servers"
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


_SERVERS: Dict[str, Server] = {}


def _start_servers() -> None:
    if _SERVERS:
        return
    servers = [
        Server("motor", "motor_sim.py", "13BMD:m38.VAL", ["--interfaces", LOOPBACK]),
        Server("caproto", "caproto_server.py", "cap:catest", ["--interfaces", LOOPBACK]),
    ]
    try:
        import pcaspy  # noqa: F401
        servers.append(Server("pcaspy", "pcas_server.py", "pcas:catest"))
    except ImportError:
        pass
    for server in servers:
        server.start()
        _SERVERS[server.name] = server
    for server in servers:
        server.wait_ready()
    addrs = os.environ.get("EPICS_CA_ADDR_LIST", "").split()
    addrs += [s.address for s in servers]
    os.environ["EPICS_CA_ADDR_LIST"] = " ".join(addrs)
    os.environ["EPICS_CA_AUTO_ADDR_LIST"] = "NO"


def pytest_collection_finish(session):
    _start_servers()


def pytest_sessionfinish(session, exitstatus):
    for server in list(_SERVERS.values()):
        server.stop()
    _SERVERS.clear()


@pytest.fixture(scope="session", autouse=True)
def hl_servers(softioc):
    """The extra servers by name ('motor', 'caproto', 'pcaspy' when pcaspy is installed).

    One channel to each stays open for the session, so that libca never
    closes their circuits between tests (see ``circuit_anchor`` in
    tests/conftest.py for the libca race this avoids).
    """
    _start_servers()
    with channels_held_open(server.probe for server in _SERVERS.values()):
        yield dict(_SERVERS)


@pytest.fixture(scope="session")
def pcas_server(hl_servers):
    if "pcaspy" not in hl_servers:
        pytest.skip("pcaspy is not installed")
    return hl_servers["pcaspy"]
