"""notify_disconnect across an IOC kill and restart; prints ``RESULT <json>``.

Run as a script (its own libca context, pointed at its own IOC):
``python aio_restart_worker.py``. test_aio_restart.py checks the figures. libca
waits ~10 s (its disconnect governor) before it searches the lost channels.
"""
import asyncio
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reliability"))
from restart_worker import start_repeater  # noqa: E402


async def scenario(ioc) -> dict:
    from CaChannel import aio
    out = {}
    events = asyncio.Queue()
    sub = aio.camonitor("ar:ao", events.put_nowait, notify_disconnect=True)
    plain = asyncio.Queue()
    sub2 = aio.camonitor("ar:ao", plain.put_nowait)  # no notify_disconnect
    t0 = time.monotonic()
    try:
        # generous: a search lost under load is repeated by libca with backoff
        first = await asyncio.wait_for(events.get(), 60)
        await asyncio.wait_for(plain.get(), 20)
    except asyncio.TimeoutError:
        from CaChannel import ca
        raise SystemExit("no first value after %.1f s: %r %r channel %r core %r libca state %r "
                         "waiters %d, queued %d/%d, dispatcher queue %d pending %r"
                         % (time.monotonic() - t0, sub, sub2, sub.channel, sub.channel.core,
                            ca.state(sub.channel.chid), sub.channel.waiter_count(),
                            len(sub._queue), len(sub2._queue), len(sub._disp._queue),
                            sub._disp._pending)) from None
    out["first_s"] = round(time.monotonic() - t0, 1)
    out["first"] = [float(first), bool(first.ok)]
    pending = asyncio.ensure_future(aio.caput("ar:slow.A", 1, wait=True, throw=False))
    await asyncio.sleep(0.2)  # the put is in the IOC, waiting for its output delay
    ioc.kill()
    down = await asyncio.wait_for(events.get(), 20)
    out["down"] = [type(down).__name__, bool(down), down.errorcode, down.name]
    out["pending_put"] = (await asyncio.wait_for(pending, 20)).errorcode
    r = await aio.caget("ar:ao", timeout=0.3, throw=False)  # waits for a connection
    out["get_while_down"] = r.errorcode
    later = asyncio.ensure_future(aio.caget("ar:ao", timeout=60))
    t0 = time.monotonic()
    ioc.start()
    up = await asyncio.wait_for(events.get(), 60)
    out["up"] = [float(up), bool(up.ok)]
    out["reconnect_s"] = round(time.monotonic() - t0, 1)
    out["later_get"] = float(await later)
    out["plain"] = [type(await asyncio.wait_for(plain.get(), 20)).__name__, plain.qsize()]
    out["states"] = [sub.state, sub2.state]
    sub.close()
    sub2.close()
    return out


def main() -> dict:
    from CaChannel.testing import IOC, free_port
    rport = free_port()
    os.environ["EPICS_CA_REPEATER_PORT"] = str(rport)
    rep = start_repeater(rport)
    db = tempfile.NamedTemporaryFile("w", suffix=".db", delete=False)
    db.write('record(ao, "ar:ao") { field(VAL, "3") field(PINI, "YES") }\n'
             'record(calcout, "ar:slow") { field(CALC, "A") field(ODLY, "30") }\n')
    db.close()
    ioc = IOC([db.name], ready_pv="ar:ao", env={"EPICS_CA_REPEATER_PORT": str(rport)})
    ioc.start()
    try:
        os.environ.update(ioc.client_env())
        return asyncio.run(asyncio.wait_for(scenario(ioc), 120))
    finally:
        ioc.stop()
        os.unlink(db.name)
        rep.kill()
        rep.wait(10)


if __name__ == "__main__":
    result = main()
    print("RESULT " + json.dumps(result), flush=True)
