"""An ophyd-async device on CaChannel.aio across an IOC kill and restart; prints ``RESULT <json>``.

Run as a script by test_ophyd_async.py (its own libca context, IOC and
repeater). libca waits ~10 s (its disconnect governor) before it searches
the lost channels again.
"""
import asyncio
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reliability"))
from restart_worker import start_repeater  # noqa: E402


async def scenario(ioc) -> dict:
    from ophyd_async.core import Device, init_devices
    from ophyd_async.epics.core import epics_signal_rw

    class Box(Device):
        def __init__(self, name: str = "") -> None:
            self.value = epics_signal_rw(float, "oa:ao")
            self.label = epics_signal_rw(str, "oa:text")
            super().__init__(name=name)

    out = {}
    async with init_devices(timeout=30):
        box = Box()
    readings = asyncio.Queue()
    box.value.subscribe_reading(lambda r: readings.put_nowait(r["box-value"]["value"]))
    out["first"] = await asyncio.wait_for(readings.get(), 20)
    await box.label.set("before")
    out["label"] = await box.label.get_value()
    ioc.kill()
    await asyncio.sleep(1.0)
    pending = asyncio.ensure_future(box.value.get_value(cached=False))
    await asyncio.sleep(0.5)
    out["read_while_down"] = "done" if pending.done() else "pending"
    ioc.start()
    out["read_after_restart"] = await asyncio.wait_for(pending, 60)
    while not readings.empty():  # the value the restarted IOC sent on reconnection
        readings.get_nowait()
    await asyncio.wait_for(box.value.set(8.5), 30)
    out["set_after_restart"] = await box.value.get_value(cached=False)
    value = await asyncio.wait_for(readings.get(), 20)
    while value != 8.5:
        value = await asyncio.wait_for(readings.get(), 20)
    out["monitor_after_restart"] = value
    await box.label.set("after")
    out["label_after"] = await box.label.get_value()
    return out


def main() -> dict:
    from CaChannel import aio
    aio.use()
    from CaChannel.testing import IOC, free_port
    rport = free_port()
    os.environ["EPICS_CA_REPEATER_PORT"] = str(rport)
    rep = start_repeater(rport)
    db = tempfile.NamedTemporaryFile("w", suffix=".db", delete=False)
    db.write('record(ao, "oa:ao") { field(VAL, "3") field(PINI, "YES") }\n'
             'record(stringout, "oa:text") { field(VAL, "x") field(PINI, "YES") }\n')
    db.close()
    ioc = IOC([db.name], ready_pv="oa:ao", env={"EPICS_CA_REPEATER_PORT": str(rport)})
    ioc.start()
    try:
        os.environ.update(ioc.client_env())
        return asyncio.run(asyncio.wait_for(scenario(ioc), 180))
    finally:
        ioc.stop()
        os.unlink(db.name)
        rep.kill()
        rep.wait(10)


if __name__ == "__main__":
    result = main()
    print("RESULT " + json.dumps(result), flush=True)
