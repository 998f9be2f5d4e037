"""Servers of the ophyd tests: the motor simulator and a restartable IOC.

libca reads ``EPICS_CA_ADDR_LIST`` when the first CA context is made, so
both addresses are appended in ``pytest_collection_finish``, before any test
runs (as tests/hl/conftest.py does for its servers). The motor simulator
serves ``ophyd:m1`` (its own prefix, so it never clashes with the hl
tests' ``13BMD:`` simulator in the same session); the reconnect IOC
(``rc:ao``) is only started by the ``reconnect_ioc`` fixture, which the
disconnect/reconnect test kills and restarts on the same port.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from CaChannel.testing import IOC
from server_proc import LOOPBACK, Server

HERE = Path(__file__).resolve().parent
MOTOR = "ophyd:m1"

_state = {}


def _start() -> None:
    if _state:
        return
    motor = Server("ophyd-motor", "motor_sim.py", MOTOR + ".VAL",
                   ["--prefix", "ophyd:", "--motors", "m1", "--interfaces", LOOPBACK])
    motor.start()
    motor.wait_ready()
    _state["motor"] = motor
    _state["reconnect"] = IOC([HERE / "reconnect.db"], ready_pv="rc:ao")  # port chosen now, started later
    addrs = os.environ.get("EPICS_CA_ADDR_LIST", "").split()
    addrs += ["%s:%d" % (LOOPBACK, motor.port), "%s:%d" % (LOOPBACK, _state["reconnect"].port)]
    os.environ["EPICS_CA_ADDR_LIST"] = " ".join(addrs)
    os.environ["EPICS_CA_AUTO_ADDR_LIST"] = "NO"


def pytest_collection_finish(session):
    if any(Path(str(item.fspath)).resolve().parent == HERE for item in session.items):
        _start()


def pytest_sessionfinish(session, exitstatus):
    if "motor" in _state:
        _state["motor"].stop()
    if "reconnect" in _state:
        _state["reconnect"].stop()
    _state.clear()


@pytest.fixture(scope="session")
def motor_sim():
    """The motor simulator (serves ``ophyd:m1``)."""
    if "motor" not in _state:
        pytest.skip("motor simulator not started (CA context made before collection finished)")
    return _state["motor"]


@pytest.fixture(scope="session")
def cl():
    """CaChannel installed as ophyd's control layer."""
    import CaChannel.ophyd
    return CaChannel.ophyd.use()


@pytest.fixture
def reconnect_ioc():
    """The restartable IOC serving ``rc:ao`` (stopped after the test)."""
    ioc = _state.get("reconnect")
    if ioc is None:
        pytest.skip("reconnect IOC not configured")
    ioc.start()
    try:
        yield ioc
    finally:
        ioc.stop()
