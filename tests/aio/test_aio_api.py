"""CaChannel.aio: caget/caput/connect/cainfo, values, formats, lists, errors, timeouts, cancellation."""
import asyncio
import datetime
import time

import numpy as np
import pytest
from epicscorelibs.ca import cadef

from aiotools import arun, until
from CaChannel import aio, ca
from CaChannel.aio import CANothing, _ops

MANY = ["aio:many:%d" % i for i in range(10)]


def test_every_aioca_name_is_there():
    names = """Subscription caput caget camonitor connect cainfo CAInfo CANothing ChannelInfo
    get_channel_infos purge_channel_caches run FORMAT_RAW FORMAT_TIME FORMAT_CTRL
    DBR_STRING DBR_SHORT DBR_FLOAT DBR_ENUM DBR_CHAR DBR_LONG DBR_DOUBLE DBR_CHAR_STR
    DBR_CHAR_BYTES DBR_CHAR_UNICODE DBR_ENUM_STR DBR_STSACK_STRING DBR_CLASS_NAME
    DBR_PUT_ACKT DBR_PUT_ACKS DBE_VALUE DBE_LOG DBE_ALARM DBE_PROPERTY ca_extra_fields""".split()
    for name in names:
        assert name in aio.__all__, name
        assert hasattr(aio, name), name
    assert (aio.FORMAT_RAW, aio.FORMAT_TIME, aio.FORMAT_CTRL) == (0, 1, 2)
    assert (aio.DBR_ENUM_STR, aio.DBR_CHAR_BYTES, aio.DBR_CHAR_UNICODE, aio.DBR_CHAR_STR) == \
        (996, 997, 998, 999)
    assert (aio.DBR_PUT_ACKT, aio.DBR_PUT_ACKS, aio.DBR_STSACK_STRING, aio.DBR_CLASS_NAME) == \
        (35, 36, 37, 38)
    assert (aio.DBE_VALUE, aio.DBE_LOG, aio.DBE_ALARM, aio.DBE_PROPERTY) == (1, 2, 4, 8)
    for fn in (aio.caget, aio.caput, aio.connect, aio.cainfo):
        assert asyncio.iscoroutinefunction(fn)


def test_canothing():
    ok = CANothing("x")
    bad = CANothing("x", ca.ECA_TIMEOUT)
    assert ok and not bad
    assert (ok.name, ok.ok, ok.errorcode) == ("x", True, ca.ECA_NORMAL)
    assert (bad.ok, bad.errorcode) == (False, ca.ECA_TIMEOUT)
    assert repr(bad) == "CANothing('x', 80)"
    assert str(bad) == "x: " + ca.message(ca.ECA_TIMEOUT)
    assert isinstance(bad, Exception)


def test_caget_raw_scalars():
    async def main():
        await aio.caput("aio:ao", 1.25, wait=True)
        v = await aio.caget("aio:ao")
        assert type(v) is aio._values.ca_float and v == 1.25
        assert (v.name, v.ok, v.datatype, v.element_count) == ("aio:ao", True, aio.DBR_DOUBLE, 1)
        assert not hasattr(v, "timestamp")
        n = await aio.caget("aio:long")
        assert isinstance(n, int) and n == 42 and n.datatype == aio.DBR_LONG
        s = await aio.caget("aio:text")
        assert isinstance(s, str) and s == "hello" and s.datatype == aio.DBR_STRING
        e = await aio.caget("aio:enum")
        assert e == 1 and e.datatype == aio.DBR_ENUM
        assert await aio.caget("aio:enum", datatype=aio.DBR_ENUM_STR) == "One"
        assert await aio.caget("aio:ao", datatype=aio.DBR_ENUM_STR) == 1.25  # not an enum: native
        assert await aio.caget("aio:ao", datatype=str) == "1.250"
        i = await aio.caget("aio:ao", datatype=int)
        assert isinstance(i, int) and i == 1 and i.datatype == aio.DBR_LONG
        assert (await aio.caget("aio:long", datatype=np.float32)).datatype == aio.DBR_FLOAT
        assert await aio.caget("aio:ao", datatype=aio.DBR_CLASS_NAME) == "ao"
        with pytest.raises(ValueError):
            await aio.caget("aio:ao", datatype=complex)
        with pytest.raises(ValueError):
            await aio.caget("aio:ao", format=7)
    arun(main())


def test_caget_time_and_ctrl():
    async def main():
        await aio.caput("aio:ao", 6, wait=True)  # HIGH: MINOR alarm
        t = await aio.caget("aio:ao", format=aio.FORMAT_TIME)
        assert t == 6.0
        assert (t.severity, t.status) == (ca.MINOR_ALARM, ca.HIGH_ALARM)
        assert abs(t.timestamp - time.time()) < 60
        secs, nsec = t.raw_stamp
        assert abs(secs + nsec * 1e-9 - t.timestamp) < 1e-5
        assert isinstance(t.datetime, datetime.datetime)
        c = await aio.caget("aio:ao", format=aio.FORMAT_CTRL)
        assert (c.units, c.precision) == ("V", 3)
        assert (c.upper_disp_limit, c.lower_disp_limit) == (10.0, -10.0)
        assert (c.upper_alarm_limit, c.lower_alarm_limit) == (8.0, -8.0)
        assert (c.upper_warning_limit, c.lower_warning_limit) == (5.0, -5.0)
        assert (c.upper_ctrl_limit, c.lower_ctrl_limit) == (9.0, -9.0)
        assert c.severity == ca.MINOR_ALARM and not hasattr(c, "timestamp")
        await aio.caput("aio:ao", 1, wait=True)
        en = await aio.caget("aio:enum", format=aio.FORMAT_CTRL)
        assert en == 1 and en.enums == ["Zero", "One", "Two"]
        lg = await aio.caget("aio:long", format=aio.FORMAT_CTRL)
        assert lg.units == "cts" and not hasattr(lg, "precision")
        st = await aio.caget("aio:text", format=aio.FORMAT_CTRL)  # strings: TIME fields
        assert st == "hello" and hasattr(st, "timestamp") and not hasattr(st, "units")
        ack = await aio.caget("aio:ao", datatype=aio.DBR_STSACK_STRING)
        assert ack == "1.000" and ack.datatype == aio.DBR_STSACK_STRING
        assert hasattr(ack, "ackt") and hasattr(ack, "acks")
        for field in ("name", "ok", "datatype", "element_count", "severity", "status",
                      "raw_stamp", "timestamp", "datetime"):
            assert field in aio.ca_extra_fields and hasattr(t, field), field
    arun(main())


def test_arrays_and_counts():
    async def main():
        await aio.caput("aio:wave", [1, 2, 3, 4], wait=True)
        w = await aio.caget("aio:wave")  # count 0: as many as the server holds
        assert isinstance(w, np.ndarray) and w.dtype == np.float64
        assert w.tolist() == [1, 2, 3, 4] and w.element_count == 10
        assert len(await aio.caget("aio:wave", count=-1)) == 10
        two = await aio.caget("aio:wave", count=2)
        assert two.tolist() == [1, 2] and two.name == "aio:wave"
        one = await aio.caget("aio:wave", count=1)  # an array channel gives an array
        assert isinstance(one, np.ndarray) and one.tolist() == [1.0]
        assert isinstance(+w, np.ndarray) and type(+w) is np.ndarray
        out = np.zeros(10)
        got = await aio.caget("aio:wave", count=-1, out=out)
        assert out[:4].tolist() == [1, 2, 3, 4] and got.name == "aio:wave"
        assert np.shares_memory(got, out)
        await aio.caput("aio:strs", ["a", "bc", "def"], wait=True)
        s = await aio.caget("aio:strs")
        assert s.tolist() == ["a", "bc", "def"] and s.dtype.kind == "U"
        ts = await aio.caget("aio:wave", format=aio.FORMAT_TIME)
        assert ts.tolist() == [1, 2, 3, 4] and hasattr(ts, "timestamp")
    arun(main())


def test_char_arrays_as_text():
    async def main():
        await aio.caput("aio:chars", "long text, longer than forty characters: ok",
                        datatype=aio.DBR_CHAR_STR, wait=True)
        s = await aio.caget("aio:chars", datatype=aio.DBR_CHAR_STR)
        assert s == "long text, longer than forty characters: ok" and isinstance(s, str)
        assert s.datatype == aio.DBR_CHAR
        b = await aio.caget("aio:chars", datatype=aio.DBR_CHAR_BYTES)
        assert b == b"long text, longer than forty characters: ok" and isinstance(b, bytes)
        await aio.caput("aio:chars", "h\u00e9", datatype=aio.DBR_CHAR_UNICODE, wait=True)
        assert await aio.caget("aio:chars", datatype=aio.DBR_CHAR_UNICODE) == "h\u00e9"
        raw = await aio.caget("aio:chars")
        assert raw.dtype == np.uint8 and bytes(raw[:3]) == "h\u00e9".encode()
        # a name ending in '$' (the long-string field modifier) reads and writes str
        await aio.caput("aio:text.VAL$", "dollar", wait=True)
        assert await aio.caget("aio:text.VAL$") == "dollar"
        assert await aio.caget("aio:text") == "dollar"
        await aio.caput("aio:text", "hello", wait=True)
    arun(main())


def test_caput_forms():
    async def main():
        r = await aio.caput("aio:ao", 2, wait=True)
        assert isinstance(r, CANothing) and r.ok and r.name == "aio:ao"
        assert await aio.caget("aio:ao") == 2.0
        assert (await aio.caput("aio:ao", 3)).ok  # no wait
        await aio.caput("aio:enum", "Two", wait=True)  # str -> DBR_STRING: state by name
        assert await aio.caget("aio:enum") == 2
        await aio.caput("aio:ao", "4.5", wait=True)  # the server converts
        assert await aio.caget("aio:ao") == 4.5
        await aio.caput("aio:ao", 1.75, datatype=aio.DBR_STRING, wait=True)
        assert await aio.caget("aio:ao") == 1.75
        await aio.caput("aio:ao", 1, wait=True)
        assert (await aio.caput("aio:ao", 0, datatype=aio.DBR_PUT_ACKT, wait=True)).ok
        assert (await aio.caput("aio:ao", 0, datatype=aio.DBR_PUT_ACKS, wait=True)).ok
        done = []
        r = await aio.caput("aio:slow.A", 3, callback=done.append)  # returns once sent
        assert r.ok and done == []
        await until(lambda: done, 5, "the put callback")
        assert done[0].ok and done[0].name == "aio:slow.A"

        async def acb(result):
            done.append(("async", result.ok))
        await aio.caput("aio:ao", 1, wait=True, callback=acb)
        await until(lambda: ("async", True) in done, 5, "the coroutine put callback")
    arun(main())


def test_caput_failures_and_throw():
    async def main():
        # refused by libca at once: aioca's CAException (throw=False: a false CANothing)
        for wait in (True, False):
            with pytest.raises(cadef.CAException) as info:
                await aio.caput("ca:readonly", 1, wait=wait)
            assert info.value.status == ca.ECA_NOWTACCESS
            assert str(info.value).startswith("Write access denied calling ca_array_put")
            r = await aio.caput("ca:readonly", 1, wait=wait, throw=False)
            assert type(r) is CANothing and not r and r.errorcode == ca.ECA_NOWTACCESS
        r = await aio.caput("aio:enum", "Nope", wait=True, throw=False)  # refused by the server
        assert not r and r.errorcode != ca.ECA_NORMAL
        r = await aio.caput("no:such:pv", 1, timeout=0.2, throw=False)
        assert r.errorcode == ca.ECA_TIMEOUT
        with pytest.raises((TypeError, ValueError)):
            await aio.caput("aio:ao", object(), wait=True)
    arun(main())


def test_lists_in_order_with_failures():
    async def main():
        await aio.caput(MANY, list(range(10)), wait=True)
        values = await aio.caget(MANY)
        assert values == list(range(10)) and [v.name for v in values] == MANY
        await aio.caput(MANY, 7, wait=True)  # a scalar goes to every PV
        assert await aio.caget(MANY) == [7] * 10
        await aio.caput(MANY[:2], [1, 2], repeat_value=True, wait=True)
        assert await aio.caget(MANY[:2]) == [1, 1]  # [1, 2] to each scalar: its first item
        # aioca's positional forms: (pvs, values, repeat_value, datatype, wait), (pv, value,
        # datatype, wait)
        await aio.caput(MANY[:2], [3, 4], True, aio.DBR_LONG, True)
        assert await aio.caget(MANY[:2]) == [3, 3]
        await aio.caput(MANY[0], "5.5", aio.DBR_STRING, True)
        assert await aio.caget(MANY[0]) == 5.5
        with pytest.raises(TypeError):
            await aio.caput(MANY[0], 1, None, True, 3)
        await aio.caput(MANY, list(range(10)), wait=True)
        with pytest.raises(ValueError):
            await aio.caput(MANY, [1, 2], wait=True)
        mixed = await aio.caget(["aio:many:1", "no:such:pv", "aio:many:2"], timeout=0.3,
                                throw=False)
        assert mixed[0] == 1 and mixed[2] == 2
        assert isinstance(mixed[1], CANothing) and mixed[1].errorcode == ca.ECA_TIMEOUT
        assert mixed[1].name == "no:such:pv"
        with pytest.raises(CANothing) as info:
            await aio.caget(["aio:many:1", "no:such:pv"], timeout=0.3)
        assert info.value.errorcode == ca.ECA_TIMEOUT
        puts = await aio.caput(["aio:many:1", "ca:readonly"], [1, 2], wait=True, throw=False)
        assert puts[0].ok and puts[1].errorcode == ca.ECA_NOWTACCESS
        assert await aio.caget((), timeout=1) == []
        fmt = await aio.caget(MANY[:3], format=aio.FORMAT_TIME)
        assert all(hasattr(v, "timestamp") for v in fmt)
    arun(main())


def test_connect_and_cainfo():
    async def main():
        r = await aio.connect("aio:ao")
        assert isinstance(r, CANothing) and r.ok
        assert [x.ok for x in await aio.connect(MANY[:3])] == [True] * 3
        assert (await aio.connect("aio:long", wait=False)).ok
        info = await aio.cainfo("aio:ao")
        assert isinstance(info, aio.CAInfo) and info.ok
        assert (info.name, info.state, info.count, info.datatype) == ("aio:ao", 2, 1, 6)
        assert info.read and info.write and ":" in info.host
        assert info.state_strings[info.state] == "connected"
        assert "Data type: double" in str(info)
        ro = await aio.connect("ca:readonly", cainfo=True)
        assert isinstance(ro, aio.CAInfo) and ro.read and not ro.write
        infos = await aio.cainfo(["aio:ao", "aio:enum"])
        assert [i.datatype_strings[i.datatype] for i in infos] == ["double", "enum"]
        with pytest.raises(CANothing) as exc:
            await aio.connect("no:such:pv", timeout=0.2)
        assert exc.value.errorcode == ca.ECA_TIMEOUT
        nc = await aio.cainfo("no:such:pv", wait=False)
        assert nc.state in (0, 1) and nc.datatype == 7 and nc.count == 0
        r = await aio.connect(["aio:ao", "no:such:pv"], timeout=0.2, throw=False)
        assert r[0].ok and r[1].errorcode == ca.ECA_TIMEOUT
    arun(main())


def test_timeouts():
    async def main():
        t0 = time.monotonic()
        with pytest.raises(CANothing) as info:
            await aio.caget("no:such:pv", timeout=0.3)
        assert info.value.errorcode == ca.ECA_TIMEOUT and info.value.name == "no:such:pv"
        assert 0.25 < time.monotonic() - t0 < 3
        r = await aio.caget("no:such:pv", timeout=(time.time() + 0.2,), throw=False)
        assert r.errorcode == ca.ECA_TIMEOUT
        assert await aio.caget("aio:long", timeout=None) == 42
        # a write waiting longer than its timeout
        with pytest.raises(CANothing) as info:
            await aio.caput("aio:slow.A", 1, wait=True, timeout=0.2)
        assert info.value.errorcode == ca.ECA_TIMEOUT
        chan = aio._channels.get_channel("no:such:pv")
        assert chan.waiter_count() == 0  # timed-out waiters are gone
        await until(lambda: not _ops._outstanding, 5, "the late put callback")
    arun(main())


def test_cancellation_leaves_nothing_behind():
    errors = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        chan = aio._channels.get_channel("no:such:pv")
        for coro in (aio.caget("no:such:pv"), aio.connect("no:such:pv"),
                     aio.caput("no:such:pv", 1, wait=True),
                     aio.caget(["no:such:pv", "aio:ao"])):
            task = asyncio.ensure_future(coro)
            await until(lambda: chan.waiter_count() > 0, 5, "the connection waiter")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)
            assert chan.waiter_count() == 0
        # a put whose callback is pending in libca when it is cancelled
        task = asyncio.ensure_future(aio.caput("aio:slow.A", 2, wait=True))
        await until(lambda: _ops._outstanding, 5, "the put request")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: not _ops._outstanding, 5, "the late put callback")
        assert await aio.caget("aio:slow.A") == 2
    arun(main())
    assert errors == []


def test_run_and_infos_and_purge():
    assert aio.run(aio.caget("aio:long")) == 42

    async def stopper():
        await aio.caput("aio:long", 43, wait=True)
        asyncio.get_running_loop().stop()
    assert aio.run(stopper(), forever=True) is None
    assert aio.run(aio.caget("aio:long")) == 43
    aio.run(aio.caput("aio:long", 42, wait=True))

    async def main():
        got = asyncio.Queue()
        sub = aio.camonitor("aio:long", got.put_nowait)
        await got.get()
        infos = {i.name: i for i in aio.get_channel_infos()}
        assert infos["aio:long"].connected and infos["aio:long"].subscriber_count == 1
        assert isinstance(infos["aio:long"], aio.ChannelInfo)
        aio.purge_channel_caches()
        assert sub.state == sub.CLOSED
        assert "aio:long" not in {i.name for i in aio.get_channel_infos()}
        assert await aio.caget("aio:long") == 42  # a new channel
    arun(main())


def test_bad_name_in_a_list_sends_nothing():
    # the good names ahead of the bad one must not send requests whose
    # replies outlive the call (and, after asyncio.run, the loop)
    async def main():
        await aio.connect("aio:ao")
        before = set(_ops._outstanding)
        for op in (lambda: aio.caget(["aio:ao", 5]), lambda: aio.caput(["aio:ao", None], [1, 2])):
            with pytest.raises(TypeError, match="PV name must be"):
                await op()
            assert _ops._outstanding == before, "a request went out before the bad name"
    arun(main())


def test_nothing_accumulates_over_many_operations():
    async def main():
        disp = aio._dispatch.dispatcher()
        for i in range(300):
            await aio.caget("aio:long")
            await aio.caput("aio:mon", i, wait=True)
        await aio.caget(MANY)
        got = asyncio.Queue()
        subs = [aio.camonitor("aio:mon", got.put_nowait) for _ in range(20)]
        for _ in subs:
            await got.get()
        for s in subs:
            s.close()
        chan = aio._channels.get_channel("aio:mon")
        assert not _ops._outstanding and not disp._queue
        assert chan.waiter_count() == 0 and chan.subscriptions() == []
    arun(main())


def test_star_import():
    ns = {}
    exec("from CaChannel.aio import *", ns)
    assert {"caget", "caput", "camonitor", "connect", "cainfo", "CANothing",
            "Subscription", "FORMAT_CTRL", "DBR_CHAR_STR"} <= set(ns)
