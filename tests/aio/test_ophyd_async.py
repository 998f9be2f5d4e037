"""ophyd-async's Channel Access signals on CaChannel.aio (installed as ``aioca`` by use()).

Every CA datatype ophyd-async maps (int, float, str, bool, enum as
StrictEnum, numpy arrays, a sequence of strings, a char waveform as str):
connect, read, describe, set with wait, subscribe; a Device through
init_devices; and (test_ophyd_async_restart) a device whose IOC is killed and
restarted. Skipped when ophyd-async is not installed. The records are the
``oa:*`` ones of tests/test.db, which no other test uses.
"""
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from typing import Sequence

import numpy as np
import pytest

if importlib.util.find_spec("ophyd_async") is None:
    pytest.skip("ophyd-async is not installed (test extra, Python >= 3.11)",
                allow_module_level=True)

from CaChannel import aio  # noqa: E402

aio.use()  # before ophyd_async.epics imports aioca

from ophyd_async.core import Array1D, Device, StrictEnum, init_devices  # noqa: E402
from ophyd_async.epics.core import epics_signal_r, epics_signal_rw  # noqa: E402

from aiotools import arun  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class Choice(StrictEnum):
    ZERO = "Zero"
    ONE = "One"
    TWO = "Two"
    THREE = "Three"


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


#: (id, datatype, PV, first value, second value, plain type of a read value)
CASES = [
    ("int", int, "oa:long", 7, -12, int),
    ("float", float, "oa:ao", 2.5, -1.25, float),
    ("str", str, "oa:text", "ophyd", "async", str),
    ("bool", bool, "oa:bool", False, True, bool),
    ("enum", Choice, "oa:mbbo", Choice.TWO, Choice.ZERO, Choice),
    ("float64 array", Array1D[np.float64], "oa:wave:DOUBLE", np.array([1.0, 2.0, 3.0]),
     np.array([4.5, 5.5]), np.ndarray),
    ("int16 array", Array1D[np.int16], "oa:wave:SHORT", np.array([1, 2, 3], dtype=np.int16),
     np.array([-7], dtype=np.int16), np.ndarray),
    ("float32 array", Array1D[np.float32], "oa:wave:FLOAT",
     np.array([1.5, 2.5], dtype=np.float32), np.array([0.25], dtype=np.float32), np.ndarray),
    ("str sequence", Sequence[str], "oa:strs", ["a", "bc"], ["xyz"], list),
    ("char waveform as str", str, "oa:chars", "hello ophyd", "long string " * 4, str),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_signal_datatypes(case):
    _, datatype, pv, first, second, plain = case

    async def main():
        rw = epics_signal_rw(datatype, pv, name="rw")
        ro = epics_signal_r(datatype, pv, name="ro")
        await asyncio.gather(rw.connect(timeout=10), ro.connect(timeout=10))
        await rw.set(first)  # epics_signal_rw waits for completion (caput wait=True)
        reading = (await ro.read())["ro"]
        assert _same(reading["value"], first), reading
        assert type(reading["value"]) is plain, type(reading["value"])
        assert reading["alarm_severity"] in (0, 1, 2) and reading["timestamp"] > 1e9
        value = await rw.get_value()
        assert _same(value, first) and type(value) is plain
        desc = (await ro.describe())["ro"]
        assert desc["source"] == "ca://" + pv and desc["dtype"] in ("integer", "number",
                                                                   "string", "boolean", "array")

        readings: asyncio.Queue = asyncio.Queue()
        ro.subscribe_reading(readings.put_nowait)
        got = await asyncio.wait_for(readings.get(), 10)
        assert _same(got["ro"]["value"], first)
        await rw.set(second)
        got = await asyncio.wait_for(readings.get(), 10)
        assert _same(got["ro"]["value"], second), got
        assert type(got["ro"]["value"]) is plain
        ro.clear_sub(readings.put_nowait)
    arun(main())


def test_enum_describe_has_the_choices_and_bad_choice_is_refused():
    async def main():
        sig = epics_signal_rw(Choice, "oa:mbbo", name="sig")
        await sig.connect(timeout=10)
        desc = (await sig.describe())["sig"]
        assert desc["choices"] == ["Zero", "One", "Two", "Three"]
        with pytest.raises(TypeError):  # not a StrictEnum of the record's states
            class Wrong(StrictEnum):
                A = "A"
            await epics_signal_rw(Wrong, "oa:mbbo").connect(timeout=10)
    arun(main())


def test_ctrl_metadata_reaches_describe():
    async def main():
        sig = epics_signal_rw(float, "oa:ao", name="sig")
        await sig.connect(timeout=10)
        desc = (await sig.describe())["sig"]
        assert desc["units"] == "V" and desc["precision"] == 3
        assert desc["limits"]["control"] == {"low": -9.0, "high": 9.0}
        assert desc["limits"]["display"] == {"low": -10.0, "high": 10.0}
    arun(main())


class Stage(Device):
    def __init__(self, name: str = "") -> None:
        self.position = epics_signal_rw(float, "oa:ao")
        self.counts = epics_signal_r(int, "oa:long")
        self.label = epics_signal_rw(str, "oa:text")
        self.mode = epics_signal_rw(Choice, "oa:mbbo")
        self.profile = epics_signal_rw(Array1D[np.float64], "oa:wave:DOUBLE")
        super().__init__(name=name)


def test_init_devices_names_and_connects():
    async def main():
        async with init_devices(timeout=20):
            stage = Stage()
        assert stage.name == "stage" and stage.position.name == "stage-position"
        await stage.position.set(1.5)
        await stage.mode.set(Choice.THREE)
        reading = await stage.position.read()
        assert reading["stage-position"]["value"] == 1.5
        assert await stage.mode.get_value() == Choice.THREE
        assert await stage.counts.get_value() == await aio.caget("oa:long")
        with pytest.raises(Exception):  # a PV that does not exist: NotConnectedError
            async with init_devices(timeout=1):
                broken = epics_signal_r(float, "no:such:pv")  # noqa: F841
    arun(main(), timeout=60)


def test_ophyd_async_restart():
    """Kill the IOC under a device and restart it (subprocess: own IOC, repeater, context)."""
    env = dict(os.environ)
    env["PATH"] = sysconfig.get_path("scripts") + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "ophyd_async_restart_worker.py")],
                          env=env, capture_output=True, text=True, timeout=240)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT "):])
    assert r["first"] == 3.0 and r["label"] == "before"
    # while the IOC is down a read waits (ophyd-async reads with timeout=None)...
    assert r["read_while_down"] == "pending"
    # ...and completes once it is back, with the restarted IOC's value
    assert r["read_after_restart"] == 3.0
    # the subscription carries on after the restart, and set(wait) works again
    assert r["monitor_after_restart"] == 8.5
    assert r["set_after_restart"] == 8.5 and r["label_after"] == "after"
