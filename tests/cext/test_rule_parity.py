"""One definition of every rule (issue 11, item 1): the request type, count
clamping, put encoding, DBR decoding and timestamp rules live in
CaChannel._common as plain functions. This table runs every combination
through the reference (_common), the C extension (CaChannel._ca, fast paths
included) and the cffi backend (CaChannel._cffi), which share one libca and
one context in this process, and requires identical results and identical
exception types.

- encoding: value kind x put type x element limit, through ``_ca._encode``
  (the C put conversion with its fast paths) and ``_common.encode``;
- decoding: every DBR type x count x use_numpy on random and crafted buffers,
  through ``_ca._decode`` and ``_common.decode`` (the cffi DBRValue decodes
  with ``_common.decode`` itself);
- requests on the IOC: every record of tests/test.db's ``ca:scalar:*`` /
  ``ca:wave:*`` families x request type x count, connected or not, for get,
  put and subscriptions, through both backends, against ``_common``'s
  ``resolve_request_type``/``get_count``/``put_count``/``subscription_count``;
- sync-group ids and the epoch constant.

The full matrix of puts on the IOC runs under ``-m stress``; the default pass
samples it.
"""
from __future__ import annotations

import pathlib
import random
import threading
from fractions import Fraction

import numpy as np
import pytest

from cexttools import TIMEOUT, Collector, channel_pairs, same

from CaChannel import _common

cffi = pytest.importorskip("CaChannel._cffi")

TYPES = ["STRING", "CHAR", "UCHAR", "SHORT", "USHORT", "LONG", "ULONG", "INT64",
         "FLOAT", "DOUBLE", "ENUM"]
PVS = (["ca:scalar:%s" % t for t in TYPES] + ["ca:scalar:MBBO"]
       + ["ca:wave:%s" % t for t in TYPES] + ["ca:varwave"])
#: every request type a get or subscription can ask for
GET_TYPES = list(range(0, 35)) + [37, 38]
#: request types tried on puts: the put types and some that are not
PUT_TRY = sorted(_common.PUT_TYPES) + [7, 20, 34, 37, 38, 39, -1]


def outcome(func, *args):
    """``('ok', result)`` or ``('raise', exception type)``."""
    try:
        return "ok", func(*args)
    except Exception as exc:   # the type is what is compared
        return "raise", type(exc)


# ---------------------------------------------------------------------------
# Encoding: value kind x put type x element limit


class Floaty:
    def __float__(self):
        return 2.5


VALUES = [
    0, 1, -1, 7, 255, 256, -32769, 65535, 65536, 2 ** 31, -2 ** 31 - 1, 2 ** 63, 2 ** 70,
    1.5, -2.7, 1e39, -1e39, 3.4e38, float("nan"), float("inf"), -0.0,
    True, False, None, {}, object(), 1 + 2j, Fraction(1, 2), Floaty(),
    "", "3", "-4.5", "abc", "é" * 30, "x" * 50, b"", b"xyz", b"\xff\xfe", b"7",
    [], [1], [1, 2, 3], [1.5, -2.5, 1e10], ["a", "bc"], ["1", "2"], [[1, 2]], [None],
    [True, False], (4, 5, 6), range(4), [70000, 1], [1, "x"],
    np.float64(2.5), np.float32(-1.25), np.int32(5), np.uint8(200), np.int64(2 ** 40),
    np.bool_(True), np.str_("npstr"), np.bytes_(b"npb"), np.array(3.5), np.array([[1, 2]]),
    np.array([], dtype=float), np.array(["a", "b"]), np.array([b"a", b"b"]),
    np.array([1, None], dtype=object), np.array([1 + 1j, 2]),
]
for _dt in ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8", ">f8", ">i4", "?"):
    VALUES.append(np.arange(6).astype(_dt))
VALUES.append(np.arange(12.0)[::2])                        # not contiguous
VALUES.append(np.array([1e300, 2.0]))                       # too big for float32
VALUES.append(np.array([np.nan, 1.0]))
VALUES.append(np.array([-1, 70000], dtype="i4"))            # out of range for shorts


def encoded(func, value, t, n):
    kind, r = outcome(func, value, t, n)
    if kind == "raise":
        return kind, r
    rt, rn, data = r
    return kind, (int(rt), int(rn), bytes(np.ascontiguousarray(data).view(np.uint8))
                  if isinstance(data, np.ndarray) else bytes(data))


@pytest.mark.parametrize("t", sorted(_common.PUT_TYPES))
def test_encode_parity(ca, t):
    checked = 0
    for i, value in enumerate(VALUES):
        for n in (1, 2, 3, 20):
            ref = encoded(_common.encode, value, t, n)
            got = encoded(ca._encode, value, t, n)
            assert got == ref, (i, repr(value), t, n, got, ref)
            checked += 1
    assert checked == len(VALUES) * 4


# ---------------------------------------------------------------------------
# Decoding: DBR type x count x use_numpy on random and crafted buffers


def buffers(t, n):
    size = _common.dbr_size_n(t, n)
    rng = random.Random(t * 100 + n)
    out = [bytes(rng.getrandbits(8) for _ in range(size)) for _ in range(3)]
    # in-range status/severity (enum members), small no_str, text values
    crafted = bytearray(out[0])
    crafted[0:4] = np.array([3, 2], "=i2").tobytes()
    if t in (24, 31):
        crafted[4:6] = np.array([5], "=i2").tobytes()
        for k in range(16):
            text = ("state%d" % k).encode() if k != 2 else b"\xe9t\xe9"
            crafted[6 + 26 * k:6 + 26 * k + len(text) + 1] = text + b"\0"
    off = _common.DBR_VALUE_OFFSET[t]
    if t % 7 == 0 or t in (37, 38):
        for k in range(n):
            crafted[off + 40 * k:off + 40 * k + 6] = b"txt%d\0\0" % (k % 10)
    out.append(bytes(crafted))
    out.append(bytes(size))
    return out


@pytest.mark.parametrize("t", GET_TYPES)
def test_decode_parity(ca, t):
    for n in (1, 2, 5):
        for buf in buffers(t, n):
            for use_numpy in (False, True):
                ref = outcome(_common.decode, t, n, buf, use_numpy)
                got = outcome(ca._decode, t, n, buf, use_numpy)
                assert got[0] == ref[0], (t, n, got, ref)
                same(got[1], ref[1], "dbr%d[%d]" % (t, n))


def test_decode_stamp_uses_the_one_epoch(ca):
    # secPastEpoch 0 decodes to the POSIX time of the EPICS epoch, in both
    buf = bytes(_common.dbr_size_n(20, 1))
    for decode in (ca._decode, lambda *a: _common.decode(*a)):
        stamp = decode(20, 1, buf, False)["stamp"]
        assert stamp["seconds"] == _common.POSIX_TIME_AT_EPICS_EPOCH
        assert stamp["timestamp"] == float(_common.POSIX_TIME_AT_EPICS_EPOCH)


def test_epoch_constant_is_written_once():
    root = pathlib.Path(__file__).resolve().parents[2]
    hits = []
    for sub, pattern in (("src", "*.py"), ("cext", "*.[ch]"), ("cffi_backend", "*.py")):
        for f in (root / sub).rglob(pattern):
            if "631152000" in f.read_text(errors="replace"):
                hits.append(f.relative_to(root).as_posix())
    assert hits == ["src/CaChannel/_common.py"], hits


# ---------------------------------------------------------------------------
# Requests on the IOC, connected


@pytest.fixture(scope="module")
def pairs(ca):
    yield from channel_pairs(ca, cffi, PVS)


def server_converts(ca, ch, t):
    """Whether the IOC answers a get of type ``t`` (a server matter, not a
    client rule): a callback get reports a failed conversion at once."""
    done = Collector()
    assert ca.get(ch, t, callback=done)[0] == ca.ECA.NORMAL
    ca.flush_io()
    return done.wait(1)[0]["status"] == ca.ECA.NORMAL


def counts_for(native):
    return (None, 0, 1, native, native + 3, -1)


@pytest.mark.parametrize("name", PVS)
def test_get_parity(ca, pairs, name):
    """Every request type x count: same status, element count (the
    _common.get_count rule) and value from both backends."""
    chc, chf = pairs[name]
    native = ca.element_count(chc)
    ft = ca.field_type(chc)
    assert (native, ft) == (cffi.element_count(chf), cffi.field_type(chf))
    reads = []
    for t in [None] + GET_TYPES + [39, -2]:
        rt = _common.resolve_request_type(t, ft)
        if rt is not None and not server_converts(ca, chc, rt):
            continue    # the server cannot convert the value (text to a number)
        for count in counts_for(native):
            for use_numpy in (False, True):
                rc = outcome(ca.get, chc, t, count, None, use_numpy)
                rf = outcome(cffi.get, chf, t, count, None, use_numpy)
                assert rc[0] == rf[0] == "ok", (t, count, rc, rf)
                (sc, vc), (sf, vf) = rc[1], rf[1]
                assert sc == sf, (t, count, sc, sf)
                if rt is None:
                    assert sc == ca.ECA.BADTYPE and vc is None and vf is None
                    continue
                assert sc == ca.ECA.NORMAL, (t, count, sc)
                expect_n = _common.get_count(count, native, False, rt)
                assert vc.count == vf.count == expect_n, (t, count, vc.count, vf.count)
                assert vc.dbrtype == vf.dbrtype == rt
                reads.append((t, count, vc, vf))
    assert ca.pend_io(TIMEOUT) == ca.ECA.NORMAL
    for t, count, vc, vf in reads:
        a, b = vc.get(), vf.get()
        if isinstance(a, dict) and "stamp" in a:
            # two reads, two stamps (a periodic record may process between)
            a, b = dict(a), dict(b)
            a.pop("stamp"), b.pop("stamp")
        same(a, b, "%s dbr%s count %s" % (name, t, count))


@pytest.mark.parametrize("name", ["ca:wave:DOUBLE", "ca:scalar:LONG", "ca:wave:STRING"])
def test_get_callback_count_parity(ca, pairs, name):
    """A get with callback keeps count 0 (the server's current length)."""
    chc, chf = pairs[name]
    native = ca.element_count(chc)
    for count in counts_for(native):
        got = []
        for mod, ch in ((ca, chc), (cffi, chf)):
            done = Collector()
            assert mod.get(ch, None, count, callback=done)[0] == mod.ECA.NORMAL
            mod.flush_io()
            args = done.wait(1)[0]
            assert args["status"] == mod.ECA.NORMAL, args
            got.append(args["count"])
        expect = _common.get_count(count, native, True, ca.field_type(chc))
        if expect == 0:     # the record's current length
            assert got[0] == got[1], (count, got)
        else:
            assert got == [expect, expect], (count, got)


def put_outcome(mod, ch, value, t, count):
    kind, r = outcome(mod.put, ch, value, t, count)
    return kind, (int(r) if kind == "ok" else r)


def put_reference(value, t, ft, native, count, connected):
    """What a put returns by _common's rules: ECA code or exception type."""
    if count is not None:
        try:
            _common.index_count(count)
        except TypeError:
            return "raise", TypeError
    kind, rt = outcome(_common.resolve_request_type, t, ft)
    if kind == "raise":
        return kind, rt
    if rt is None or rt not in _common.PUT_TYPES:
        return "ok", int(_common.ECA.BADTYPE)
    if not connected:
        return "ok", int(_common.ECA.DISCONN)
    kind, r = outcome(_common.encode, value, rt, _common.put_count(count, max(native, 1)))
    return (kind, r) if kind == "raise" else ("ok", int(_common.ECA.NORMAL))


PUT_PVS = ["ca:scalar:DOUBLE", "ca:scalar:LONG", "ca:scalar:ENUM", "ca:scalar:STRING",
           "ca:wave:DOUBLE", "ca:wave:SHORT", "ca:wave:CHAR", "ca:wave:STRING"]
assert {"ca:wave:DOUBLE", "ca:wave:STRING", "ca:scalar:LONG", "ca:wave:CHAR"} <= set(PUT_PVS)


@pytest.fixture(scope="module")
def restore_records(ca, pairs):
    """The put tests write to records other tests read: put back the value
    and length (NORD) each had, with zeros behind as at IOC start."""
    saved = {}
    for name in PUT_PVS:
        ch = pairs[name][0]
        native = ca.element_count(ch)
        done = Collector()
        assert ca.get(ch, None, 0, callback=done)[0] == ca.ECA.NORMAL
        ca.flush_io()
        now = done.wait(1)[0]
        saved[name] = (native, now["count"], now["value"])
    yield
    for name, (native, nord, value) in saved.items():
        ch = pairs[name][0]
        if native > 1:
            blank = [""] * native if ca.field_type(ch) == ca.DBF_STRING else [0] * native
            assert ca.put(ch, blank, count=native) == ca.ECA.NORMAL
        if nord:
            assert ca.put(ch, value, count=nord) == ca.ECA.NORMAL
        assert ca.get(ch, None, 0, callback=Collector())[0] == ca.ECA.NORMAL
    assert ca.pend_event(0.1) in (ca.ECA.TIMEOUT, ca.ECA.NORMAL)
    for name, (native, nord, value) in saved.items():
        done = Collector()
        assert ca.get(pairs[name][0], None, 0, callback=done)[0] == ca.ECA.NORMAL
        ca.flush_io()
        got = done.wait(1)[0]
        assert (got["count"], got["value"]) == (nord, value), name


def put_matrix(ca, pairs, names, sample):
    rng = random.Random(11)
    combos = [(name, i, t, count) for name in names for i in range(len(VALUES))
              for t in [None] + PUT_TRY for count in (None, 0, 1, 3, 50, 2.0)]
    if sample:
        combos = rng.sample(combos, sample)
    for name, i, t, count in combos:
        chc, chf = pairs[name]
        value = VALUES[i]
        native, ft = ca.element_count(chc), ca.field_type(chc)
        rc = put_outcome(ca, chc, value, t, count)
        rf = put_outcome(cffi, chf, value, t, count)
        ref = put_reference(value, t, ft, native, count, True)
        assert rc == rf == ref, (name, repr(value), t, count, rc, rf, ref)
    ca.flush_io()
    cffi.flush_io()


def test_put_parity_sample(ca, pairs, restore_records):
    put_matrix(ca, pairs, PUT_PVS, 3000)


@pytest.mark.stress
def test_put_parity_full(ca, pairs, restore_records):
    put_matrix(ca, pairs, PUT_PVS, 0)


@pytest.mark.parametrize("name", ["ca:wave:DOUBLE", "ca:wave:STRING", "ca:scalar:LONG",
                                  "ca:wave:CHAR"])
def test_put_readback_parity(ca, pairs, restore_records, name):
    """What arrives in the record is the same from both backends."""
    chc, chf = pairs[name]
    native = ca.element_count(chc)
    for value in ([1, 2, 3], np.arange(5, dtype="i2"), np.arange(4.0) + 0.5, "12", b"ab",
                  7, 2.5, ["4", "5"], np.array([9, 8], dtype=">f8")):
        for count in (None, 2, native + 1):
            got = []
            for mod, ch in ((ca, chc), (cffi, chf)):
                # a known state first, so each backend's put is seen on its own
                assert ca.put(chc, 0 if name != "ca:wave:STRING" else "-", count=native) \
                    == ca.ECA.NORMAL
                done = Collector()
                r = outcome(mod.put, ch, value, None, count, done)
                if r[0] == "ok" and r[1] == mod.ECA.NORMAL:
                    mod.flush_io()
                    done.wait(1)
                st, v = ca.get(chc, count=native)
                assert ca.pend_io(TIMEOUT) == ca.ECA.NORMAL
                got.append((r if r[0] == "raise" else ("ok", int(r[1])), v.get()))
            assert got[0][0] == got[1][0], (value, count, got)
            same(got[0][1], got[1][1], "%s %r count %s" % (name, value, count))


def out_arrays():
    yield np.zeros(10, "=f8")
    yield np.zeros(4, "=f8")
    yield np.zeros(20, "=f8")
    for dt in ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "f4", ">f8", ">i2", "?", "c16"):
        yield np.zeros(10, dt)
    yield np.zeros(20)[::2]                      # not contiguous
    ro = np.zeros(10)
    ro.flags.writeable = False
    yield ro
    yield [0.0] * 10
    yield np.zeros((2, 5))


@pytest.mark.parametrize("name", ["ca:wave:DOUBLE", "ca:wave:SHORT", "ca:scalar:LONG"])
def test_get_out_parity(ca, pairs, name):
    """get(out=...): the type/count rule is _common.out_request in both."""
    chc, chf = pairs[name]
    native = ca.element_count(chc)
    checks = []
    for i, proto in enumerate(out_arrays()):
        for t in (None, 0, 1, 2, 4, 5, 6, 20):
            for count in (None, 0, 2, 10, 25, -1):
                fresh = [proto.copy() if isinstance(proto, np.ndarray) else list(proto)
                         for _ in range(2)]
                if isinstance(proto, np.ndarray) and not proto.flags.writeable:
                    for a in fresh:
                        a.flags.writeable = False
                if isinstance(proto, np.ndarray) and not proto.flags.c_contiguous:
                    fresh = [np.zeros(20)[::2] for _ in range(2)]
                ref = outcome(_common.out_request, fresh[0], t, count, native)
                rc = outcome(ca.get, chc, t, count, None, False, fresh[0])
                rf = outcome(cffi.get, chf, t, count, None, False, fresh[1])
                if ref[0] == "raise":
                    assert rc == rf == ref, (i, t, count, rc, rf, ref)
                    continue
                assert rc[0] == rf[0] == "ok", (i, t, count, rc, rf)
                assert rc[1][0] == rf[1][0] == ca.ECA.NORMAL
                assert rc[1][1].count == rf[1][1].count == ref[1][1], (i, t, count)
                assert rc[1][1].dbrtype == rf[1][1].dbrtype == ref[1][0]
                checks.append((rc[1][1], rf[1][1]))
    assert ca.pend_io(TIMEOUT) == ca.ECA.NORMAL
    assert checks
    for vc, vf in checks:
        same(vc.get(), vf.get())


# ---------------------------------------------------------------------------
# Requests on a channel that is not connected


@pytest.fixture(scope="module")
def unconnected(ca):
    name = "ca:rule-parity:no-such-pv"
    st, chc = ca.create_channel(name)
    assert st == ca.ECA.NORMAL
    st, chf = cffi.create_channel(name)
    assert st == cffi.ECA.NORMAL
    yield chc, chf
    ca.clear_channel(chc)
    cffi.clear_channel(chf)


def test_unconnected_get_put_parity(ca, unconnected):
    chc, chf = unconnected
    assert ca.state(chc) == cffi.state(chf) == ca.cs_never_conn
    ft, native = ca.field_type(chc), ca.element_count(chc)
    assert (ft, native) == (cffi.field_type(chf), cffi.element_count(chf)) == (-1, 0)
    for t in [None] + GET_TYPES + [35, 36, 39, -1]:
        for count in (None, 0, 1, 5, -1):
            rt = _common.resolve_request_type(t, ft)
            expect = ca.ECA.BADTYPE if rt is None else ca.ECA.DISCONN
            assert ca.get(chc, t, count) == cffi.get(chf, t, count) == (expect, None), (t, count)
            for value in (1, [1, 2], "x", None, object()):
                rc = put_outcome(ca, chc, value, t, count)
                rf = put_outcome(cffi, chf, value, t, count)
                ref = put_reference(value, t, ft, native, count, False)
                assert rc == rf == ref, (t, count, repr(value), rc, rf, ref)
    for bad in ("1", 1.0):
        for mod, ch in ((ca, chc), (cffi, chf)):
            with pytest.raises(TypeError):
                mod.get(ch, None, bad)
            with pytest.raises(TypeError):
                mod.put(ch, 1, bad)
            with pytest.raises(TypeError):
                mod.get(ch, bad)


@pytest.mark.parametrize("count", [None, 0, 3, 20, -1])
def test_subscription_count_before_connection(ca, count):
    """A subscription made before the channel connects keeps its count
    (_common.subscription_count with native 0); libca clamps it to the
    native count when the channel connects. Both backends alike."""
    name = "ca:wave:DOUBLE"     # NELM 10
    native = 10
    assert _common.subscription_count(count, 0) == (0 if count in (None, -1) else count)
    got = []
    for mod in (ca, cffi):
        st, ch = mod.create_channel(name)
        assert st == mod.ECA.NORMAL
        events = Collector()
        was = mod.state(ch)
        st, ev = mod.create_subscription(ch, events, mod.DBR_DOUBLE, count)
        assert st == mod.ECA.NORMAL
        assert was == mod.cs_never_conn, "connected before the subscription"
        mod.flush_io()
        first = events.wait(1)[0]
        got.append(first["count"])
        mod.clear_subscription(ev)
        mod.clear_channel(ch)
    asked = _common.subscription_count(count, 0)
    if asked == 0:
        # the server's current length (the record's NORD)
        assert got[0] == got[1] <= native, (count, got)
    else:
        # libca clamps a kept count when the channel connects
        assert got == [min(asked, native)] * 2, (count, got)


@pytest.mark.parametrize("count", [None, 0, 3, 20, -1])
def test_subscription_count_connected(ca, pairs, count):
    chc, chf = pairs["ca:wave:DOUBLE"]
    native = ca.element_count(chc)
    got = []
    for mod, ch in ((ca, chc), (cffi, chf)):
        events = Collector()
        st, ev = mod.create_subscription(ch, events, mod.DBR_DOUBLE, count)
        assert st == mod.ECA.NORMAL
        mod.flush_io()
        got.append(events.wait(1)[0]["count"])
        mod.clear_subscription(ev)
    asked = _common.subscription_count(count, native)
    if asked == 0:
        assert got[0] == got[1] <= native, (count, got)
    else:
        assert got == [asked] * 2, (count, got)


# ---------------------------------------------------------------------------
# Sync-group ids


@pytest.mark.parametrize("gid", [-1, 2 ** 32, 2 ** 40, 123457])
def test_sync_group_id_parity(ca, pairs, gid):
    chc, chf = pairs["ca:scalar:DOUBLE"]
    assert _common.sync_group_id(gid) == (None if gid != 123457 else gid)
    bad = ca.ECA.BADSYNCGRP
    for mod, ch in ((ca, chc), (cffi, chf)):
        assert mod.sg_delete(gid) == bad
        assert mod.sg_reset(gid) == bad
        assert mod.sg_test(gid) == bad
        assert mod.sg_block(gid, 0.01) == bad
        assert mod.sg_put(gid, ch, 1.0) == bad
        assert mod.sg_get(gid, ch) == (bad, None)


def test_sync_group_id_type_error(ca, pairs):
    chc, chf = pairs["ca:scalar:DOUBLE"]
    for mod, ch in ((ca, chc), (cffi, chf)):
        for call in (lambda: mod.sg_delete("1"), lambda: mod.sg_test(1.0),
                     lambda: mod.sg_get(None, ch), lambda: mod.sg_put("x", ch, 1)):
            with pytest.raises(TypeError):
                call()
    with pytest.raises(TypeError):
        _common.sync_group_id(1.5)


# ---------------------------------------------------------------------------
# The printf callback is process-wide in both backends


class _Printer:
    def __call__(self, text):
        pass


@pytest.mark.parametrize("backend", ["cext", "cffi"])
def test_destroy_context_keeps_the_printf_callback(ca, backend):
    """destroy_context ends the thread's context, not the process-wide
    printf callback: it stays installed until replace_printf_handler(None)."""
    import gc
    import weakref
    mod = ca if backend == "cext" else cffi
    box = {}

    def run():
        try:
            assert mod.create_context(False) == mod.ECA.NORMAL
            cb = _Printer()
            box["ref"] = weakref.ref(cb)
            assert mod.replace_printf_handler(cb) == mod.ECA.NORMAL
            del cb
            mod.destroy_context()
            gc.collect()
            box["after_destroy"] = box["ref"]() is not None
            assert mod.create_context(False) == mod.ECA.NORMAL
            assert mod.replace_printf_handler(None) == mod.ECA.NORMAL
            mod.destroy_context()
            gc.collect()
            box["after_reset"] = box["ref"]() is not None
        except BaseException as exc:   # reported below
            box["error"] = exc

    th = threading.Thread(target=run)
    th.start()
    th.join(TIMEOUT)
    assert not th.is_alive()
    assert "error" not in box, box.get("error")
    assert box["after_destroy"] is True
    assert box["after_reset"] is False
