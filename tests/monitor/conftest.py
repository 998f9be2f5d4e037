"""A second soft IOC for tests/monitor: test waveforms and the simulated NDStdArrays plugin.

libca reads ``EPICS_CA_ADDR_LIST`` when the first CA context is made, so the
IOC is started in ``pytest_collection_finish`` (before any test makes a
context) and its address is appended to the list then (as tests/hl does for
its servers). Its port is its own, so restarting it does not disturb the
session IOC. It is stopped by PID at session end.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from anchors import channels_held_open
from CaChannel import ca
from CaChannel.demo.adsim import DATABASE as ADSIM_DB
from CaChannel.testing import IOC

HERE = Path(__file__).resolve().parent
MONITOR_DB = HERE / "monitor.db"
_IOCS = {}


def _start() -> IOC:
    if "mon" not in _IOCS:
        ioc = IOC([MONITOR_DB, ADSIM_DB], macros="PLUGIN=sim:")
        ioc.start()
        _IOCS["mon"] = ioc
        addrs = os.environ.get("EPICS_CA_ADDR_LIST", "").split()
        addrs.append("127.0.0.1:%d" % ioc.port)
        os.environ["EPICS_CA_ADDR_LIST"] = " ".join(addrs)
        os.environ["EPICS_CA_AUTO_ADDR_LIST"] = "NO"
    return _IOCS["mon"]


def _start_restart_ioc() -> IOC:
    if "restart" not in _IOCS:
        ioc = IOC([HERE / "restart.db", ADSIM_DB], macros="PLUGIN=rst:image1:")
        ioc.start()
        _IOCS["restart"] = ioc
        os.environ["EPICS_CA_ADDR_LIST"] = " ".join(
            os.environ.get("EPICS_CA_ADDR_LIST", "").split() + ["127.0.0.1:%d" % ioc.port])
    return _IOCS["restart"]


def pytest_collection_finish(session):
    _start()
    if any(item.name.startswith("test_ioc_restart") for item in session.items):
        _start_restart_ioc()


def pytest_sessionfinish(session, exitstatus):
    for key in ("mon", "restart"):
        ioc = _IOCS.pop(key, None)
        if ioc is not None:
            ioc.stop()


@pytest.fixture(scope="session")
def mon_ioc(softioc):
    """The monitor tests' IOC; one channel to it stays open (see ``circuit_anchor``)."""
    ioc = _start()
    with channels_held_open(["mon:counter"]):
        yield ioc


@pytest.fixture
def wf(mon_ioc):
    """A channel to ``mon:wf`` (LONG waveform, 1000 elements) for writing frames."""
    status, chid = ca.create_channel("mon:wf")
    assert status == ca.ECA_NORMAL and ca.pend_io(5) == ca.ECA_NORMAL
    yield chid
    ca.clear_channel(chid)
    ca.flush_io()


@pytest.fixture
def restart_ioc(mon_ioc):
    """An IOC of its own (tests/monitor/restart.db and a simulated plugin
    ``rst:image1:``) that a test may kill and restart."""
    if "restart" not in _IOCS:
        pytest.skip("the restart IOC starts only when a test_ioc_restart* test is collected")
    return _IOCS["restart"]
