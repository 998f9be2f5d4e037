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

import importlib.util
import os
from typing import Dict

import pytest

from anchors import channels_held_open
from server_proc import LOOPBACK, Server

_SERVERS: Dict[str, Server] = {}


def _start_servers() -> None:
    if _SERVERS:
        return
    servers = [
        Server("motor", "motor_sim.py", "13BMD:m38.VAL", ["--interfaces", LOOPBACK]),
        Server("caproto", "caproto_server.py", "cap:catest", ["--interfaces", LOOPBACK]),
    ]
    # only looked up, not imported: pcaspy brings an EPICS base of its own,
    # and two in one process (with epicscorelibs.ca.dbr's, which CaChannel.aio
    # uses) crash at exit; the server runs in its own process anyway
    if importlib.util.find_spec("pcaspy") is not None:
        servers.append(Server("pcaspy", "pcas_server.py", "pcas:catest"))
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
