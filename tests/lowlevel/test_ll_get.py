"""Reading: every DBR request type from a scalar and a waveform, numpy, counts, out=."""
import time

import numpy as np
import pytest

from CaChannel import ca
from lltools import Collector, TIMEOUT, connect, read, write

PLAIN_KINDS = ["STRING", "SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE"]


@pytest.fixture(scope="module")
def catest():
    chid = connect("catest")
    yield chid
    ca.clear_channel(chid)


@pytest.fixture(scope="module")
def wave():
    chid = connect("ca:wave:DOUBLE")
    write(chid, [1.5, 2.5, 3.5])        # processed once: a real timestamp, no UDF
    yield chid
    ca.clear_channel(chid)


def _expected_scalar(kind, value=3.0):
    return {"STRING": "3.0000", "SHORT": 3, "FLOAT": 3.0, "ENUM": 3, "CHAR": 3, "LONG": 3,
            "DOUBLE": 3.0}[kind]


LIMITS = {"upper_disp_limit": 20, "lower_disp_limit": -20, "upper_alarm_limit": 20,
          "upper_warning_limit": 10, "lower_warning_limit": -10, "lower_alarm_limit": -20}


def _check_meta(kind, family, d, now):
    assert d["status"] == ca.AlarmCondition.No and isinstance(d["status"], ca.AlarmCondition)
    assert d["severity"] == ca.AlarmSeverity.No and isinstance(d["severity"], ca.AlarmSeverity)
    keys = {"value", "status", "severity"}
    if family == "TIME":
        keys.add("stamp")
        stamp = d["stamp"]
        assert set(stamp) == {"seconds", "nanoseconds", "timestamp"}
        assert abs(stamp["timestamp"] - now) < 60, stamp
        assert stamp["timestamp"] == stamp["seconds"] + stamp["nanoseconds"] * 1e-9
        assert 0 <= stamp["nanoseconds"] < 1_000_000_000
    if family in ("GR", "CTRL") and kind not in ("STRING", "ENUM"):
        keys |= {"units"} | set(LIMITS)
        assert d["units"] == "mm"
        for k, v in LIMITS.items():
            if kind == "CHAR":
                v &= 0xFF               # DBR_GR_CHAR limits are unsigned bytes
            assert d[k] == v, (k, d[k])
            assert isinstance(d[k], float if kind in ("FLOAT", "DOUBLE") else int)
        if kind in ("FLOAT", "DOUBLE"):
            keys.add("precision")
            assert d["precision"] == 4
        if family == "CTRL":
            keys |= {"upper_ctrl_limit", "lower_ctrl_limit"}
            assert d["upper_ctrl_limit"] == 0 and d["lower_ctrl_limit"] == 0
    if family in ("GR", "CTRL") and kind == "ENUM":
        keys |= {"no_str", "strs"}
        assert d["no_str"] == 0 and d["strs"] == ()
    assert set(d) == keys


@pytest.mark.parametrize("family", ["", "STS", "TIME", "GR", "CTRL"])
@pytest.mark.parametrize("kind", PLAIN_KINDS)
def test_every_request_type_scalar(catest, family, kind):
    write(catest, 3.0)
    t = getattr(ca, "DBR_" + (family + "_" if family else "") + kind)
    value = read(catest, t)
    expected = _expected_scalar(kind)
    if not family:
        assert value == expected and type(value) is type(expected)
        return
    assert value["value"] == expected and type(value["value"]) is type(expected)
    _check_meta(kind, family, value, time.time())


WAVE = [1.5, 2.5, 3.5, 0, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("family", ["", "STS", "TIME", "GR", "CTRL"])
@pytest.mark.parametrize("kind", PLAIN_KINDS)
def test_every_request_type_waveform(wave, family, kind):
    t = getattr(ca, "DBR_" + (family + "_" if family else "") + kind)
    value = read(wave, t)
    if family:
        assert value["status"] == ca.AlarmCondition.No
        if family == "TIME":
            assert value["stamp"]["seconds"] > 1e9
        if family in ("GR", "CTRL") and kind == "ENUM":
            assert value["strs"] == ()
        value = value["value"]
    assert isinstance(value, list) and len(value) == 10
    if kind == "STRING":
        assert all(isinstance(v, str) for v in value)
        assert [float(v) for v in value[:3]] == pytest.approx([1.5, 2.5, 3.5], abs=0.51)
    elif kind in ("FLOAT", "DOUBLE"):
        assert value == WAVE
        assert all(isinstance(v, float) for v in value)
    else:
        # the server converts by C cast (truncation)
        assert value == [int(v) for v in WAVE]
        assert all(isinstance(v, int) for v in value)


def test_stsack_string(catest):
    write(catest, 3.0)
    # acknowledge whatever alarms earlier tests left unacknowledged
    write(catest, ca.INVALID_ALARM, ca.DBR_PUT_ACKS)
    d = read(catest, ca.DBR_STSACK_STRING)
    assert set(d) == {"value", "status", "severity", "ackt", "acks"}
    assert d["value"] == "3.0000"
    assert d["acks"] == ca.AlarmSeverity.No and isinstance(d["acks"], ca.AlarmSeverity)
    assert d["ackt"] in (0, 1, True, False)


def test_class_name(catest, wave):
    assert read(catest, ca.DBR_CLASS_NAME) == "ao"
    # the record type is one string, also for an array channel
    assert read(wave, ca.DBR_CLASS_NAME) == "waveform"
    bo = connect("cabo")
    assert read(bo, ca.DBR_CLASS_NAME) == "bo"
    ca.clear_channel(bo)


def test_put_ack_types_are_not_readable(catest):
    # PUT_ACKT/PUT_ACKS are write-only request types: the server refuses a read
    got = Collector()
    status, _ = ca.get(catest, ca.DBR_PUT_ACKT, callback=got)
    assert status == ca.ECA_NORMAL
    ca.flush_io()
    d = got.wait_one()
    assert d["status"] != ca.ECA_NORMAL and d["value"] is None


def test_default_type_is_native(catest, wave):
    write(catest, 3.0)
    assert read(catest) == 3.0
    assert read(wave) == WAVE


def test_enum_reads():
    bo = connect("cabo")
    write(bo, 1)
    assert read(bo) == 1
    assert read(bo, ca.DBR_STRING) == "Busy"
    d = read(bo, ca.DBR_CTRL_ENUM)
    assert d["value"] == 1 and d["no_str"] == 2 and d["strs"] == ("Done", "Busy")
    assert d["status"] == ca.AlarmCondition.State and d["severity"] == ca.AlarmSeverity.Minor
    d = read(bo, ca.DBR_GR_ENUM)
    assert d["strs"] == ("Done", "Busy")
    mbbo = connect("ca:scalar:MBBO")
    write(mbbo, 3)
    d = read(mbbo, ca.DBR_CTRL_ENUM)
    assert d["strs"] == ("Zero", "One", "Two", "Three") and d["value"] == 3
    assert d["severity"] == ca.AlarmSeverity.Major
    write(mbbo, 1)
    ca.clear_channel(bo)
    ca.clear_channel(mbbo)


FIELD_TYPES = [
    # name, DBF reported over CA, native count, value written and read back
    ("ca:scalar:STRING", ca.DBF_STRING, 1, "hello"),
    ("ca:scalar:CHAR", ca.DBF_CHAR, 1, 251),          # -5 as an unsigned CA char
    ("ca:scalar:UCHAR", ca.DBF_CHAR, 1, 200),
    ("ca:scalar:SHORT", ca.DBF_SHORT, 1, -1234),
    ("ca:scalar:USHORT", ca.DBF_LONG, 1, 54321),       # CA has no unsigned short
    ("ca:scalar:LONG", ca.DBF_LONG, 1, -123456),
    ("ca:scalar:ULONG", ca.DBF_DOUBLE, 1, 3000000000.0),
    ("ca:scalar:INT64", ca.DBF_DOUBLE, 1, 1234567890123.0),
    ("ca:scalar:FLOAT", ca.DBF_FLOAT, 1, 1.5),
    ("ca:scalar:DOUBLE", ca.DBF_DOUBLE, 1, 3.25),
    ("ca:scalar:ENUM", ca.DBF_ENUM, 1, 1),
    ("ca:scalar:MBBO", ca.DBF_ENUM, 1, None),
]


@pytest.mark.parametrize("name,dbf,count,expected", FIELD_TYPES)
def test_field_types(name, dbf, count, expected):
    chid = connect(name)
    assert ca.field_type(chid) == dbf and isinstance(ca.field_type(chid), ca.DBF)
    assert ca.element_count(chid) == count
    if expected is not None:
        # other tests share the IOC: write the value, then check what comes back
        assert write(chid, expected)["status"] == ca.ECA_NORMAL
        assert read(chid) == expected
    # every family reads from every field type (a text field only as text:
    # the server cannot turn 'hello' into a number)
    for t in range(35) if dbf != ca.DBF_STRING else range(0, 35, 7):
        status, value = ca.get(chid, t)
        assert status == ca.ECA_NORMAL
        assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL, ca.dbr_text(t)
        value.get()
    ca.clear_channel(chid)


WAVE_TYPES = [
    ("ca:wave:STRING", ca.DBF_STRING, ["a", "bc", "def"] + [""] * 7),
    ("ca:wave:CHAR", ca.DBF_CHAR, [1, 2, 3] + [0] * 7),
    ("ca:wave:UCHAR", ca.DBF_CHAR, [1, 2, 3] + [0] * 7),
    ("ca:wave:SHORT", ca.DBF_SHORT, [1, 2, 3] + [0] * 7),
    ("ca:wave:USHORT", ca.DBF_LONG, [1, 2, 3] + [0] * 7),
    ("ca:wave:LONG", ca.DBF_LONG, [1, 2, 3] + [0] * 7),
    ("ca:wave:ULONG", ca.DBF_DOUBLE, [1.0, 2.0, 3.0] + [0.0] * 7),
    ("ca:wave:INT64", ca.DBF_DOUBLE, [1.0, 2.0, 3.0] + [0.0] * 7),
    ("ca:wave:FLOAT", ca.DBF_FLOAT, [1.5, 2.5, 3.5] + [0.0] * 7),
    ("ca:wave:DOUBLE", ca.DBF_DOUBLE, [1.5, 2.5, 3.5] + [0.0] * 7),
    ("ca:wave:ENUM", ca.DBF_ENUM, [0, 1, 2] + [0] * 7),
]

NUMPY_DTYPES = {ca.DBR_SHORT: np.int16, ca.DBR_FLOAT: np.float32, ca.DBR_ENUM: np.uint16,
                ca.DBR_CHAR: np.uint8, ca.DBR_LONG: np.int32, ca.DBR_DOUBLE: np.float64}


@pytest.mark.parametrize("name,dbf,expected", WAVE_TYPES)
def test_waveform_types(name, dbf, expected):
    chid = connect(name)
    assert ca.field_type(chid) == dbf
    assert ca.element_count(chid) == 10
    assert read(chid) == expected
    if dbf != ca.DBF_STRING:
        arr = read(chid, use_numpy=True)
        assert isinstance(arr, np.ndarray) and arr.dtype == NUMPY_DTYPES[dbf]
        assert arr.tolist() == expected and arr.flags.owndata or arr.base is not None
        for t, dtype in NUMPY_DTYPES.items():
            got = read(chid, t, use_numpy=True)
            assert got.dtype == dtype and len(got) == 10
    else:
        # strings are never numpy
        assert read(chid, use_numpy=True) == expected
    assert read(chid, count=1) == expected[0]          # one element is a scalar
    assert read(chid, count=2) == expected[:2]
    ca.clear_channel(chid)


def test_count_rules(wave):
    assert read(wave, count=None) == WAVE
    assert read(wave, count=1000) == WAVE                  # clamped to native
    assert read(wave, count=0) == WAVE                     # no callback: native
    assert read(wave, count=-3) == WAVE
    assert read(wave, count=np.int64(2)) == WAVE[:2]       # numpy ints are counts
    for bad in (1.5, "3", [2]):
        with pytest.raises(TypeError):
            ca.get(wave, count=bad)
    with pytest.raises(TypeError):
        ca.get(wave, chtype=6.0)
    with pytest.raises(TypeError):
        ca.get(wave, chtype="DBR_DOUBLE")
    status, value = ca.get(wave, chtype=99)
    assert status == ca.ECA_BADTYPE and value is None


def test_get_callback_dict(catest):
    write(catest, 3.0)
    got = Collector()
    status, value = ca.get(catest, ca.DBR_TIME_DOUBLE, callback=got)
    assert status == ca.ECA_NORMAL and value is None
    ca.flush_io()
    d = got.wait_one()
    assert set(d) == {"chid", "type", "count", "status", "value"}
    assert d["chid"] == catest and hash(d["chid"]) == hash(catest)
    assert d["type"] == ca.DBR.TIME_DOUBLE and isinstance(d["type"], ca.DBR)
    assert d["count"] == 1 and d["status"] == ca.ECA.NORMAL
    assert isinstance(d["status"], ca.ECA)
    assert d["value"]["value"] == 3.0


def test_get_callback_count_zero_follows_server_length():
    chid = connect("ca:varwave")
    assert ca.element_count(chid) == 100
    write(chid, [1.0, 2.0, 3.0, 4.0])
    got = Collector()
    ca.get(chid, ca.DBR_DOUBLE, count=0, callback=got, use_numpy=True)
    ca.flush_io()
    d = got.wait_one()
    assert d["count"] == 4
    assert d["value"].tolist() == [1.0, 2.0, 3.0, 4.0]
    write(chid, [7.0])
    got = Collector()
    ca.get(chid, count=0, callback=got)
    ca.flush_io()
    d = got.wait_one()
    assert d["count"] == 1 and d["value"] == 7.0           # one element: a scalar
    ca.clear_channel(chid)


def test_big_waveform_numpy():
    chid = connect("ca:bigwave")
    n = ca.element_count(chid)
    assert n == 4_000_000
    data = np.arange(n, dtype=np.float64)
    write(chid, data)
    arr = read(chid, use_numpy=True)
    assert arr.dtype == np.float64 and arr.shape == (n,)
    assert np.array_equal(arr, data)
    # out=: libca writes straight into a caller's array
    out = np.zeros(n)
    status, value = ca.get(chid, out=out)
    assert status == ca.ECA_NORMAL
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL
    assert value.get() is out
    assert np.array_equal(out, data)
    ca.clear_channel(chid)


def test_out_parameter(wave):
    out = np.zeros(10)
    status, value = ca.get(wave, out=out)
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL
    assert value.get() is out and out.tolist() == WAVE
    small = np.zeros(4, dtype=np.float32)                  # type chosen from the dtype
    status, value = ca.get(wave, out=small)
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL
    assert value.dbrtype == ca.DBR_FLOAT and value.count == 4
    assert small.tolist() == WAVE[:4]
    one = np.zeros(10, dtype=np.int32)
    status, value = ca.get(wave, ca.DBR_LONG, count=1, out=one)
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL
    got = value.get()
    assert isinstance(got, np.ndarray) and got.tolist() == [1]   # out= always gives an array
    with pytest.raises(TypeError):
        ca.get(wave, out=np.zeros(10, dtype=np.complex128))
    with pytest.raises(TypeError):
        ca.get(wave, ca.DBR_LONG, out=np.zeros(10))              # dtype/type mismatch
    with pytest.raises(ValueError):
        ca.get(wave, out=np.zeros(20)[::2])                      # not contiguous
    ro = np.zeros(10)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        ca.get(wave, out=ro)
    with pytest.raises(ValueError):
        ca.get(wave, count=8, out=np.zeros(4))                   # count > out.size
    with pytest.raises(ValueError):
        ca.get(wave, out=np.zeros(10), callback=lambda d: None)
    with pytest.raises(TypeError):
        ca.get(wave, out=[0.0] * 10)


def test_dbrvalue_attributes(wave):
    status, value = ca.get(wave, ca.DBR_DOUBLE, count=3)
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL
    assert value.dbrtype == ca.DBR_DOUBLE and value.count == 3
    assert value.use_numpy is False
    assert value.get() == WAVE[:3]
    value.use_numpy = True
    assert isinstance(value.get(), np.ndarray)


def test_non_utf8_string_comes_back_as_bytes():
    chid = connect("ca:scalar:STRING")
    write(chid, b"\xff\xfeabc")
    assert read(chid) == b"\xff\xfeabc"
    write(chid, "h\u00e9llo \u2713")                        # non-ASCII str round-trips
    assert read(chid) == "h\u00e9llo \u2713"
    write(chid, "hello")
    ca.clear_channel(chid)


def test_char_array_string_conversions():
    chid = connect("cawavec")
    write(chid, "1.23")
    assert read(chid, count=4) == [49, 46, 50, 51]
    write(chid, "123", ca.DBR_CHAR, 10)
    assert read(chid, count=5) == [49, 50, 51, 0, 0]
    write(chid, "1234", count=3)                           # count cuts the terminator
    assert read(chid, count=4) == [49, 50, 51, 0]
    ca.clear_channel(chid)
