"""Shared fuzz targets for CaChannel (used by fuzz/fuzz_ca.py (atheris) and
tests/reliability/test_fuzz.py (hypothesis)).

* :func:`check_decode` feeds random bytes to the shared DBR decoder
  ``CaChannel._common.decode`` (the cffi backend's decoder) for every DBR type.
* :class:`PutTarget` runs a soft IOC with one record per field type
  (scalars and waveforms) and checks that any Python value x any DBR request
  type either raises a clean exception (TypeError/ValueError/OverflowError),
  returns an ECA status, or is written and reads back through the backend's
  DBR decoder (the C decoder with the C backend) for several DBR types.
"""
from __future__ import annotations

import math
import os
import struct
import tempfile
import threading
import time

CLEAN = (TypeError, ValueError, OverflowError)

FIELD_TYPES = ["STRING", "CHAR", "UCHAR", "SHORT", "USHORT", "LONG", "ULONG", "FLOAT",
               "DOUBLE", "ENUM"]


def check_decode(data: bytes) -> None:
    """Decode ``data`` as a DBR buffer of a type/count chosen from its first bytes."""
    from CaChannel import _common
    if len(data) < 3:
        return
    t = data[0] % 39
    count = 1 + (data[1] | (data[2] & 0x3F) << 8) % 300
    use_numpy = bool(data[2] & 0x80)
    need = _common.dbr_size_n(t, count)
    body = data[3:]
    buf = (body * (need // max(len(body), 1) + 1))[:need] if body else bytes(need)
    value = _common.decode(t, count, buf, use_numpy)
    if t == 38 or (t % 7 == 0 and t != 35 and t != 36):
        return
    # the value part decodes to count elements
    v = value["value"] if isinstance(value, dict) else value
    if count > 1 and not isinstance(v, (str, bytes)):
        assert len(v) == count, (t, count, len(v))
    # too short a buffer: a clean error, never a read past the end
    if need > 1:
        try:
            _common.decode(t, count, buf[:need // 2], use_numpy)
        except (struct.error, ValueError, TypeError, IndexError):
            pass


def _db_text() -> str:
    lines = []
    for t in FIELD_TYPES:
        if t == "ENUM":
            lines.append('record(mbbo, "fz:s:ENUM") { field(ZRST, "zero") field(ONST, "one") '
                         'field(TWST, "two") }')
        elif t == "STRING":
            lines.append('record(stringout, "fz:s:STRING") {}')
        else:
            lines.append('record(waveform, "fz:s:%s") { field(FTVL, "%s") field(NELM, "1") }'
                         % (t, t))
        lines.append('record(waveform, "fz:w:%s") { field(FTVL, "%s") field(NELM, "8") }' % (t, t))
    return "\n".join(lines) + "\n"


PV_NAMES = ["fz:s:%s" % t for t in FIELD_TYPES] + ["fz:w:%s" % t for t in FIELD_TYPES]


class PutTarget:
    """A soft IOC with fz:* records and connected channels to all of them.

    Create it before any other CA use in the process (libca reads the
    address list once).
    """

    def __init__(self):
        from CaChannel.testing import IOC
        fd, self.db = tempfile.mkstemp(suffix=".db")
        with os.fdopen(fd, "w") as f:
            f.write(_db_text())
        self.ioc = IOC([self.db], ready_pv="fz:s:STRING")
        self.ioc.start()
        os.environ.update(self.ioc.client_env())
        from CaChannel import ca
        self.ca = ca
        st = ca.create_context(True)
        assert st == ca.ECA_NORMAL, st
        self.chids = {}
        for n in PV_NAMES:
            st, self.chids[n] = ca.create_channel(n)
        assert ca.pend_io(10) == ca.ECA_NORMAL, "fuzz channels did not connect"
        self.stats = {"executions": 0, "raised": 0, "status": 0, "written": 0}

    def close(self):
        for chid in self.chids.values():
            self.ca.clear_channel(chid)
        self.ca.flush_io()
        self.ioc.stop()
        os.unlink(self.db)

    def _wait(self, box, timeout=5.0):
        if not box["ev"].wait(timeout):
            raise AssertionError("put callback did not arrive within %s s" % timeout)

    def check_put(self, pv: str, value, chtype, count=None) -> None:
        ca = self.ca
        chid = self.chids[pv]
        self.stats["executions"] += 1
        box = {"ev": threading.Event(), "n": 0}

        def done(d):
            box["n"] += 1
            box["status"] = d["status"]
            box["ev"].set()

        try:
            st = ca.put(chid, value, chtype, count, callback=done)
        except CLEAN:
            self.stats["raised"] += 1
            return
        assert isinstance(st, int), st
        if st != ca.ECA_NORMAL:
            self.stats["status"] += 1
            assert not box["ev"].is_set()
            return
        ca.flush_io()
        self._wait(box)
        assert box["n"] == 1
        self.stats["written"] += 1
        # read back through the backend's decoder, in several DBR types (the
        # server may refuse a conversion, e.g. text to DBR_DOUBLE: a status)
        native = ca.field_type(chid)
        for t in (None, ca.DBR_STRING, ca.dbf_type_to_DBR_TIME(native),
                  ca.dbf_type_to_DBR_CTRL(native), ca.DBR_DOUBLE):
            got = {"ev": threading.Event()}

            def on_get(d, got=got):
                got["d"] = d
                got["ev"].set()

            st, _ = ca.get(chid, t, callback=on_get)
            assert st == ca.ECA_NORMAL, (pv, t, st)
            ca.flush_io()
            if not got["ev"].wait(5):
                raise AssertionError("get callback did not arrive: %r" % ((pv, t),))
            d = got["d"]
            assert (d["value"] is None) == (d["status"] != ca.ECA_NORMAL), (pv, t, d)
        self._roundtrip(pv, value, chtype, chid)

    def _roundtrip(self, pv, value, chtype, chid):
        """Exact round trip for plain finite numbers written to DOUBLE records."""
        ca = self.ca
        if not pv.endswith("DOUBLE") or chtype not in (None, ca.DBR_DOUBLE):
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if not math.isfinite(value):
            return
        st, dv = ca.get(chid, ca.DBR_DOUBLE, 1)
        assert ca.pend_io(5) == ca.ECA_NORMAL
        got = dv.get()
        assert got == float(value), (pv, value, got)
