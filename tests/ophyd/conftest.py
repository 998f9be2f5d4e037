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
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from CaChannel.testing import IOC, ca_search, free_port

HERE = Path(__file__).resolve().parent
SERVERS_DIR = HERE.parent / "servers"
LOOPBACK = "127.0.0.1"
MOTOR = "ophyd:m1"

_state = {}


class MotorSim:
    """tests/servers/motor_sim.py on its own port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / ("cachannel-ophyd-motor-%d.log" % self.port)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EPICS_CA_", "EPICS_CAS_"))}
        env.update({
            "EPICS_CA_SERVER_PORT": str(self.port), "EPICS_CAS_SERVER_PORT": str(self.port),
            "EPICS_CAS_INTF_ADDR_LIST": LOOPBACK, "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_CAS_BEACON_ADDR_LIST": LOOPBACK, "EPICS_CA_ADDR_LIST": LOOPBACK,
            "EPICS_CA_AUTO_ADDR_LIST": "NO", "PYTHONUNBUFFERED": "1",
        })
        self._logfile = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVERS_DIR / "motor_sim.py"), "--prefix", "ophyd:", "--motors", "m1",
             "--interfaces", LOOPBACK],
            env=env, stdout=self._logfile, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("motor simulator exited; log %s:\n%s" % (self.log, self.log.read_text()[-2000:]))
            if ca_search(MOTOR + ".VAL", self.port, timeout=0.3) is not None:
                return
        raise RuntimeError("motor simulator did not answer within 30 s; log %s" % self.log)

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


def _start() -> None:
    if _state:
        return
    motor = MotorSim()
    motor.start()
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
