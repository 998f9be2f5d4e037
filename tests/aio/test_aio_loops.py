"""CaChannel.aio with several loops and threads, uvloop, the sync API, and a closed loop."""
import asyncio
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from aiotools import arun
from CaChannel import aio, core, util

HERE = os.path.dirname(os.path.abspath(__file__))


async def _workout(index: int) -> list:
    name = "aio:many:%d" % index
    await aio.caput(name, index * 10, wait=True)
    got = asyncio.Queue()
    sub = aio.camonitor(name, got.put_nowait)
    first = await got.get()
    await aio.caput(name, index * 10 + 1)
    second = await got.get()
    sub.close()
    values = await aio.caget(["aio:many:%d" % i for i in range(10)])
    await aio.caput(name, index, wait=True)
    # every loop also follows one common PV (one channel, one subscription per loop)
    ticks = asyncio.Queue()
    tick = aio.camonitor("aio:tick", ticks.put_nowait)
    a, b = await ticks.get(), await ticks.get()
    tick.close()
    assert b > a
    return [float(first), float(second), len(values)]


def test_loops_in_threads():
    results, errors = {}, []

    def worker(i):
        try:
            results[i] = asyncio.run(asyncio.wait_for(_workout(i), 20))
        except BaseException as exc:  # reported below
            errors.append(repr(exc))
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == {i: [i * 10.0, i * 10.0 + 1, 10] for i in range(4)}
    # one channel per PV for all loops
    names = [i.name for i in aio.get_channel_infos()]
    assert len(names) == len(set(names))


def test_a_new_thread_uses_a_channel_another_thread_opened():
    assert arun(aio.caget("aio:many:2")) == 2  # the channel exists now
    result = []

    def worker():
        async def main():
            await aio.caput("aio:many:2", 12, wait=True, timeout=5)
            result.append(float(await aio.caget("aio:many:2", timeout=5)))
            await aio.caput("aio:many:2", 2, wait=True, timeout=5)
        try:
            asyncio.run(main())
        except BaseException as exc:
            result.append(repr(exc))
    t = threading.Thread(target=worker)
    t.start()
    t.join(30)
    assert result == [12.0]


def test_uvloop():
    uvloop = pytest.importorskip("uvloop")
    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(asyncio.wait_for(_workout(5), 20)) == [50.0, 51.0, 10]
    finally:
        loop.close()


def test_sync_and_async_share_one_channel():
    # async first, then sync: one shared channel (CaChannel.core) serves both
    assert arun(aio.caget("aio:many:8")) == 8
    chan = aio._channels.get_channel("aio:many:8")
    assert util.caget("aio:many:8") == 8
    assert [ch for ch in core.channels() if ch.name == "aio:many:8"] == [chan.core]
    # sync first, then async
    assert util.caget("aio:many:9") == 9
    (sync_chan,) = [ch for ch in core.channels() if ch.name == "aio:many:9"]
    assert arun(aio.caget("aio:many:9")) == 9
    achan = aio._channels.get_channel("aio:many:9")
    assert achan.core is sync_chan and achan.chid is sync_chan.chid

    # both in use at once: a sync write is seen by an async monitor and read
    async def main():
        got = asyncio.Queue()
        sub = aio.camonitor("aio:many:9", got.put_nowait)
        assert await got.get() == 9
        await asyncio.get_running_loop().run_in_executor(None, util.caput, "aio:many:9", 19, True)
        assert await got.get() == 19
        sub.close()
        await aio.caput("aio:many:9", 9, wait=True)
    arun(main())
    assert util.caget("aio:many:9") == 9


def test_sync_side_closing_a_shared_channel_keeps_it_for_aio():
    """util emptying its cache (util.clear_cache) must not close aio's channels."""
    async def main():
        got = asyncio.Queue()
        sub = aio.camonitor("aio:many:7", got.put_nowait)
        await got.get()
        # both directions: aio:many:7 was opened by aio, aio:many:6 by util
        assert util.caget("aio:many:6") == 6
        assert await aio.caget("aio:many:6") == 6
        util.clear_cache()  # closes the idle channels only: both are aio's
        for name in ("aio:many:7", "aio:many:6"):
            chan = aio._channels.get_channel(name).core
            assert chan.alive and chan.connected and chan.users >= 1
        await aio.caput("aio:many:7", 17, wait=True)
        assert await got.get() == 17
        assert await aio.caget("aio:many:6") == 6
        sub.close()
        await aio.caput("aio:many:7", 7, wait=True)
    arun(main())
    assert util.caget("aio:many:7") == 7  # util opens a channel of its own again


CLOSED_LOOP_SCRIPT = textwrap.dedent("""
    import asyncio, sys, time
    from CaChannel import aio, util

    async def main():
        got = asyncio.Queue()
        subs = [aio.camonitor("aio:tick", got.put_nowait),
                aio.camonitor("aio:mon", got.put_nowait, all_updates=True),
                aio.camonitor("aio:mon", lambda v: asyncio.sleep(0), all_updates=True)]
        await got.get()
        await got.get()

    asyncio.run(main())      # the loop is closed with three live subscriptions
    for i in range(3000):          # events keep coming: aio:tick scans, we write aio:mon
        util.caput("aio:mon", i)
    util.caget("aio:mon")
    time.sleep(0.3)
    subs = [s for c in aio._channels._cache.values() for s in c.subscriptions()]
    # undeliverable values do not pile up
    assert len(subs) == 3 and all(len(s._queue) < 1024 for s in subs), subs
    print("CLOSED-OK", flush=True)
    if sys.argv[1:] == ["exit-now"]:
        import os
        util.caput("aio:mon", 99)
        sys.exit(0)             # interpreter exit with the subscriptions still live
""")


@pytest.mark.parametrize("mode", ["sleep", "exit-now"])
def test_closed_loop_with_live_subscriptions(tmp_path, mode):
    script = tmp_path / "closed_loop.py"
    script.write_text(CLOSED_LOOP_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CLOSED-OK" in proc.stdout
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


def test_closed_loops_are_not_kept_alive():
    import gc
    import weakref
    refs = []

    async def main():
        refs.append(weakref.ref(asyncio.get_running_loop()))
        return await aio.caget("aio:long")
    for _ in range(3):
        assert asyncio.run(main()) == 42
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
