"""CaChannel.aio as an aioca drop-in: value classes, exceptions, subscription rules, run, use().

Each test here failed before CaChannel.aio followed aioca on that point (or
refused the bad argument at once); aioca's own suite runs in
test_aioca_suite.py.
"""
import asyncio
import os
import subprocess
import sys
import threading
import time
import typing

import numpy as np
import pytest
from epicscorelibs.ca import cadef, dbr

from aiotools import arun, until
from CaChannel import aio, ca
from CaChannel.aio import CANothing


# ------------------------------------------------------------------ values
def test_values_are_epicscorelibs_augmented_classes():
    """caget gives dbr's classes and +value gives the plain type, for every kind of value."""
    async def main():
        await aio.caput("aio:chars", "abc", datatype=aio.DBR_CHAR_STR, wait=True)
        await aio.caput("aio:wave", [1.5, 2.5], wait=True)
        await aio.caput("aio:strs", ["x", "yz"], wait=True)
        await aio.caput("aio:text", "hello", wait=True)
        cases = [
            (("aio:ao",), dbr.ca_float, float),
            (("aio:long",), dbr.ca_int, int),
            (("aio:enum",), dbr.ca_int, int),
            (("aio:text",), dbr.ca_str, str),
            (("aio:enum", aio.DBR_ENUM_STR), dbr.ca_str, str),
            (("aio:chars", aio.DBR_CHAR_STR), dbr.ca_str, str),
            (("aio:chars", aio.DBR_CHAR_UNICODE), dbr.ca_str, str),
            (("aio:chars", aio.DBR_CHAR_BYTES), dbr.ca_bytes, bytes),
            (("aio:text", bytes), dbr.ca_bytes, bytes),
            (("aio:wave",), dbr.ca_array, np.ndarray),
            (("aio:strs",), dbr.ca_array, np.ndarray),
            (("aio:chars",), dbr.ca_array, np.ndarray),
        ]
        for fmt in (aio.FORMAT_RAW, aio.FORMAT_TIME, aio.FORMAT_CTRL):
            for args, cls, plain in cases:
                v = await aio.caget(*args, format=fmt)
                assert type(v) is cls, (args, fmt, type(v))
                p = +v
                assert type(p) is plain, (args, fmt, type(p))
                assert p == v if plain is not np.ndarray else np.array_equal(p, v)
                assert v.ok and v.name == args[0]
        assert +(await aio.caget("aio:chars", aio.DBR_CHAR_STR)) == "abc"
        assert +(await aio.caget("aio:chars", aio.DBR_CHAR_BYTES)) == b"abc"
        strs = await aio.caget("aio:strs")
        assert strs.dtype.kind == "U" and list(+strs) == ["x", "yz"]
        assert (await aio.caget("aio:text", bytes)) == b"hello"

        got = asyncio.Queue()
        sub = aio.camonitor("aio:text", got.put_nowait, format=aio.FORMAT_TIME)
        v = await asyncio.wait_for(got.get(), 10)
        sub.close()
        assert type(v) is dbr.ca_str and type(+v) is str and v.severity == 0
    arun(main())


def test_constants_are_epicscorelibs_objects():
    assert aio.ca_extra_fields is dbr.ca_extra_fields
    for name in ("DBR_STRING", "DBR_DOUBLE", "DBR_CHAR_STR", "DBR_ENUM_STR", "DBR_CLASS_NAME",
                 "FORMAT_RAW", "FORMAT_TIME", "FORMAT_CTRL"):
        assert getattr(aio, name) == getattr(dbr, name), name
    for name in ("DBE_VALUE", "DBE_LOG", "DBE_ALARM", "DBE_PROPERTY"):
        assert getattr(aio, name) == getattr(cadef, name), name


def test_invalid_datatype_is_aiocas_and_a_value_error():
    async def main():
        for bad in (complex, 7, aio.DBR_PUT_ACKT):
            with pytest.raises(dbr.InvalidDatatype):
                await aio.caget("aio:ao", datatype=bad)
        with pytest.raises(ValueError):
            await aio.caget("aio:ao", format=5)
    arun(main())


def test_put_refused_by_libca_raises_caexception():
    """A write libca refuses at once is aioca's CAException; throw=False gives a CANothing."""
    async def main():
        r = await aio.caput("ca:readonly", 1, throw=False)
        assert type(r) is CANothing and r.errorcode == ca.ECA_NOWTACCESS
        assert str(r).endswith("Write access denied")
        with pytest.raises(cadef.CAException) as info:
            await aio.caput(["aio:many:1", "ca:readonly"], [1, 2])
        assert info.value.status == ca.ECA_NOWTACCESS
    arun(main())


# ------------------------------------------------------ subscription rules
def test_raising_callback_closes_the_subscription(capsys):
    """Plain function, coroutine function, value conversion: printed, CLOSED, no more calls."""
    async def main():
        await aio.caput("aio:mon", 0, wait=True)
        watcher = asyncio.Queue()
        watch = aio.camonitor("aio:mon", watcher.put_nowait)  # sees every value too
        await asyncio.wait_for(watcher.get(), 10)
        calls = {"plain": [], "async": [], "convert": []}

        def plain(v):
            calls["plain"].append(v)
            if v == 1:
                raise ValueError("plain boom")

        async def coro(v):
            calls["async"].append(v)
            await asyncio.sleep(0)
            if v == 1:
                raise ValueError("async boom")

        subs = {"plain": aio.camonitor("aio:mon", plain),
                "async": aio.camonitor("aio:mon", coro),
                # FORMAT_CTRL: its values are converted in Python by dbr_to_value (a
                # scalar of FORMAT_RAW/TIME is made by the backend, without it)
                "convert": aio.camonitor("aio:mon", calls["convert"].append,
                                         format=aio.FORMAT_CTRL)}
        await until(lambda: all(calls[k] == [0] for k in calls), 10, "the first values")

        def boom(*args):
            raise ValueError("convert boom")
        subs["convert"].dbr_to_value = boom
        for value in (1, 2, 3):
            await aio.caput("aio:mon", value, wait=True)
            assert await asyncio.wait_for(watcher.get(), 10) == value
        await until(lambda: all(s.state == s.CLOSED for s in subs.values()), 10,
                    "the subscriptions to close")
        await asyncio.sleep(0.1)
        watch.close()
        return calls, subs

    calls, subs = arun(main())
    assert calls == {"plain": [0, 1], "async": [0, 1], "convert": [0]}
    err = capsys.readouterr().err
    assert err.count("Subscription aio:mon callback raised exception") == 3
    assert err.count("Subscription aio:mon closed") == 3
    for text in ("ValueError: plain boom", "ValueError: async boom", "ValueError: convert boom"):
        assert text in err


def test_connect_timeout_as_deadline_or_seconds():
    async def main():
        got = {"abs": [], "rel": [], "none": []}
        subs = [aio.camonitor("no:such:pv", got["abs"].append,
                              connect_timeout=(time.time() + 0.3,)),
                aio.camonitor("no:such:pv", got["rel"].append, connect_timeout=0.3),
                aio.camonitor("no:such:pv", got["none"].append)]
        assert all(s.state == s.OPENING for s in subs)
        await until(lambda: got["abs"] and got["rel"], 5, "the connect timeouts")
        await asyncio.sleep(0.3)
        for key in ("abs", "rel"):
            assert len(got[key]) == 1, got
            v = got[key][0]
            assert type(v) is CANothing and v.errorcode == ca.ECA_TIMEOUT and not v
        assert got["none"] == []
        assert all(s.state == s.OPENING for s in subs)  # still waiting for the PV
        for s in subs:
            s.close()
        for bad in ((), (1.0, 2.0), "1", [time.time() + 1]):
            with pytest.raises(TypeError):
                aio.camonitor("no:such:pv", print, connect_timeout=bad)
        with pytest.raises(ValueError):
            aio.camonitor("no:such:pv", print, connect_timeout=float("nan"))
    arun(main())


def test_state_opening_open_closed():
    async def main():
        got = asyncio.Queue()
        fresh = "aio:many:9"
        aio.purge_channel_caches()
        s = aio.camonitor(fresh, got.put_nowait)
        assert s.state == s.OPENING  # the channel is still searched
        await asyncio.wait_for(got.get(), 10)
        assert s.state == s.OPEN
        s2 = aio.camonitor(fresh, got.put_nowait)  # connected: subscribed at once
        assert s2.state == s2.OPEN
        s.close()
        s2.close()
        assert (s.state, s2.state) == (s.CLOSED, s2.CLOSED)
    arun(main())


def test_dropped_callbacks_counted_as_aioca_does():
    """One value waits while a coroutine callback runs; each newer one replaces it and counts."""
    async def main():
        await aio.caput("aio:mon", 0, wait=True)
        release = asyncio.Event()
        seen = []
        arrived = []

        async def slow(v):
            seen.append(+v)
            await release.wait()

        counter = aio.camonitor("aio:mon", arrived.append, all_updates=True)
        merged = aio.camonitor("aio:mon", slow)
        every = aio.camonitor("aio:mon", slow, all_updates=True)
        await until(lambda: seen == [0, 0] and arrived, 10, "the first values")
        for value in (1, 2, 3):
            await aio.caput("aio:mon", value, wait=True)
        await until(lambda: len(arrived) == 4, 10, "the three updates")
        await asyncio.sleep(0.05)
        assert merged.dropped_callbacks == 2  # 1 replaced by 2, 2 by 3
        assert every.dropped_callbacks == 0
        release.set()
        await until(lambda: len(seen) == 2 + 1 + 3, 10, "the callbacks after release")
        assert sorted(seen) == [0, 0, 1, 2, 3, 3]
        for s in (counter, merged, every):
            s.close()
    arun(main())


def test_run_forever_returns_when_the_coroutine_stops_the_loop():
    result = {}

    def body():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        async def stop_soon():
            while True:
                await asyncio.sleep(0.1)
                loop.stop()
        t0 = time.monotonic()
        aio.run(stop_soon(), forever=True)
        result["elapsed"] = time.monotonic() - t0
        result["closed"] = loop.is_closed()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "run(forever=True) did not return after loop.stop()"
    assert 0.05 < result["elapsed"] < 5 and result["closed"]


# ---------------------------------------------- bad arguments, refused at once
def test_caget_out_refused_at_once_with_the_reason():
    async def main():
        await aio.caput("aio:wave", [1.0, 2.0, 3.0], wait=True)
        ro = np.zeros(10)
        ro.flags.writeable = False
        bad = [
            (ro, "aio:wave", ValueError, "writable"),
            ([0.0] * 10, "aio:wave", TypeError, "numpy array"),
            (np.zeros(20)[::2], "aio:wave", ValueError, "C-contiguous"),
            (np.zeros(10, dtype="U5"), "aio:wave", TypeError, "numeric"),
            (np.zeros(10), "aio:text", TypeError, "DBR_STRING"),
            (np.zeros(10, dtype=np.int32), "aio:wave", TypeError, "do not fit"),
        ]
        for out, pv, exc, words in bad:
            with pytest.raises(exc, match=words):
                await asyncio.wait_for(aio.caget(pv, out=out), 5)
        with pytest.raises(TypeError, match="text"):
            await asyncio.wait_for(aio.caget("aio:chars", aio.DBR_CHAR_STR, out=np.zeros(64)), 5)
        good = np.zeros(10)
        v = await aio.caget("aio:wave", out=good)
        assert list(good[:3]) == [1.0, 2.0, 3.0] and v.name == "aio:wave"
        wide = np.zeros(10, dtype=np.float64)
        await aio.caget("aio:wave", datatype=np.float32, out=wide)  # float32 fits float64
        assert list(wide[:3]) == [1.0, 2.0, 3.0]
    arun(main())


def test_bad_timeouts_refused():
    async def main():
        for bad in ((), (1.0, 2.0), "5", [time.time() + 1], True):
            with pytest.raises(TypeError, match="timeout"):
                await aio.caget("catest", timeout=bad)
            with pytest.raises(TypeError, match="timeout"):
                await aio.caput("catest", 1, timeout=bad)
            with pytest.raises(TypeError, match="timeout"):
                await aio.connect("catest", timeout=bad)
        with pytest.raises(ValueError):
            await aio.caget("catest", timeout=float("nan"))
        assert await aio.caget("catest", timeout=(time.time() + 5,)) is not None
    arun(main())


def test_caput_noncallable_callback_refused_before_writing():
    async def main():
        await aio.caput("aio:ao", 2.0, wait=True)
        with pytest.raises(TypeError, match="callable"):
            await aio.caput("aio:ao", 3.0, callback=5)
        with pytest.raises(TypeError, match="callable"):
            await aio.caput(["aio:ao"], [3.0], callback="no")
        await asyncio.sleep(0.2)
        assert await aio.caget("aio:ao") == 2.0  # nothing was written
    arun(main())


# ------------------------------------------------------- types and use()
def test_types_module():
    from CaChannel.aio import types
    assert typing.get_args(types.Format) == (0, 1, 2)
    assert 999 in typing.get_args(types.Dbr) and 38 in typing.get_args(types.Dbr)
    assert "timestamp" in types.AugmentedValue.__annotations__


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))


def test_use_installs_cachannel_aio_as_aioca():
    proc = _python(
        "import sys\n"
        "import CaChannel.aio as ours\n"
        "ours.use(); ours.use()\n"
        "import aioca, aioca.types\n"
        "from aioca import caget, CANothing, FORMAT_CTRL\n"
        "from aioca.types import AugmentedValue, Dbr, Format\n"
        "assert aioca is ours and aioca.types is ours.types and caget is ours.caget\n"
        "print('ok')\n")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_use_refuses_after_the_real_aioca():
    # in a subprocess: this process may have run use() already (test_ophyd_async.py)
    proc = _python(
        "try:\n"
        "    import aioca\n"
        "except ImportError:\n"
        "    raise SystemExit('absent')\n"
        "import CaChannel.aio\n"
        "try:\n"
        "    CaChannel.aio.use()\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', exc)\n")
    if proc.returncode != 0 and "absent" in proc.stderr:
        pytest.skip("the real aioca is not installed")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused:") and "already imported" in proc.stdout
