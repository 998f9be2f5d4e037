"""Writing: the conversion rules of ca-api.md 2.10 against the IOC, put callbacks."""
import math

import numpy as np
import pytest

from CaChannel import ca
from lltools import Collector, connect, read, write


@pytest.fixture(scope="module")
def chans():
    names = ["catest", "cabo", "cawave", "cawavec", "cawaves", "ca:scalar:LONG",
             "ca:scalar:SHORT", "ca:scalar:STRING", "ca:wave:LONG", "ca:scalar:FLOAT",
             "ca:wave:SHORT", "ca:scalar:MBBO"]
    chids = {n: connect(n) for n in names}
    yield chids
    for chid in chids.values():
        ca.clear_channel(chid)


# (record, value, put kwargs, read count, expected) — ca-api.md 2.10 examples
EXAMPLES = [
    ("cawave", 1, {}, 4, [1.0, 0, 0, 0]),
    ("cawave", "1.23", {}, 4, [1.23, 0, 0, 0]),
    ("cawave", [1, 2, 3], {}, 4, [1.0, 2.0, 3.0, 0]),
    ("cawave", range(4), {}, 4, [0.0, 1.0, 2.0, 3.0]),
    ("cawave", (5, 6), {}, 3, [5.0, 6.0, 0]),
    ("cawave", np.array([1.5, 2.5]), {}, 3, [1.5, 2.5, 0]),
    ("cawave", np.array([1, 2, 3], dtype=np.int8), {}, 3, [1.0, 2.0, 3.0]),
    ("cawaves", ["1", "2", "3", "4"], {}, 3, ["1", "2", "3"]),
    ("cawaves", "1", {}, 3, ["1", "", ""]),
    ("cawaves", [b"x", 2, 3.5], {}, 3, ["x", "2", "3.5"]),
    ("cabo", "Done", {}, None, 0),
    ("cabo", "Busy", {}, None, 1),
    ("cabo", [0, 2, 3, 4], {}, None, 0),
    ("cabo", ["Busy"], {}, None, 1),
    ("cabo", True, {}, None, 1),
    ("catest", "1.23", {}, None, 1.23),
    ("catest", [1, 2, 3, 4], {}, None, 1.0),
    ("catest", np.float32(2.5), {}, None, 2.5),
    ("catest", np.int64(7), {}, None, 7.0),
    ("cawavec", "1.23", {}, 4, [49, 46, 50, 51]),
    ("cawavec", b"AB", {}, 3, [65, 66, 0]),
    ("cawavec", "123", {"chtype": ca.DBR_CHAR, "count": 10}, 5, [49, 50, 51, 0, 0]),
    ("cawavec", [1, 2, 3], {}, 5, [1, 2, 3, 0, 0]),
    ("ca:scalar:LONG", 2147483647, {}, None, 2147483647),
    ("ca:scalar:LONG", -2147483648, {}, None, -2147483648),
    ("ca:scalar:LONG", 12.7, {}, None, 12),               # truncated like a C cast
    ("ca:scalar:LONG", "42", {}, None, 42),
    ("ca:scalar:SHORT", -32768, {}, None, -32768),
    ("ca:wave:LONG", np.arange(10, dtype=np.int32), {}, 10, list(range(10))),
    ("ca:wave:LONG", np.arange(4, dtype=np.float64), {}, 4, [0, 1, 2, 3]),
    ("ca:wave:SHORT", np.array([1, -1], dtype=np.int64), {}, 2, [1, -1]),
    ("ca:scalar:FLOAT", 0.25, {}, None, 0.25),
    ("ca:scalar:MBBO", "Two", {}, None, 2),
    ("ca:scalar:MBBO", 1, {"chtype": ca.DBR_ENUM}, None, 1),
]


@pytest.mark.parametrize("name,value,kwargs,count,expected", EXAMPLES,
                         ids=["%s=%r" % (e[0], e[1]) for e in EXAMPLES])
def test_put_conversions(chans, name, value, kwargs, count, expected):
    chid = chans[name]
    d = write(chid, value, kwargs.get("chtype"), kwargs.get("count"))
    assert d["status"] == ca.ECA_NORMAL
    got = read(chid, count=count)
    if isinstance(expected, float):
        assert got == pytest.approx(expected)
    elif isinstance(expected, list) and expected and isinstance(expected[0], float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected


def test_put_as_string_request_type(chans):
    chid = chans["catest"]
    assert write(chid, "12.3000", ca.DBR_STRING)["status"] == ca.ECA_NORMAL
    assert read(chid, ca.DBR_STRING) == "12.3000"
    assert read(chid) == 12.3


def test_put_callback_dict(chans):
    chid = chans["catest"]
    d = write(chid, 4.5)
    assert set(d) == {"chid", "type", "count", "status"}
    assert d["chid"] == chid and d["status"] == ca.ECA.NORMAL
    assert isinstance(d["type"], ca.DBR) and isinstance(d["count"], int)


def test_put_without_callback_then_read(chans):
    chid = chans["catest"]
    assert ca.put(chid, 6.5) == ca.ECA_NORMAL
    assert ca.flush_io() == ca.ECA_NORMAL
    assert read(chid) == 6.5       # a get is ordered after the put on one circuit


def test_long_strings_are_truncated(chans):
    chid = chans["ca:scalar:STRING"]
    write(chid, "x" * 100)
    assert read(chid) == "x" * 39
    write(chid, "\u00e9" * 30)                      # 60 bytes of UTF-8: cut on a char boundary
    assert read(chid) == "\u00e9" * 19
    write(chid, "hello")


def test_enum_bad_state_is_refused_by_the_server(chans):
    d = write(chans["cabo"], "Nonsense")
    assert d["status"] != ca.ECA_NORMAL


@pytest.mark.parametrize("value,exc", [
    (None, ValueError),
    ({"a": 1}, ValueError),
    (object(), ValueError),
    ([], ValueError),
    ([[1, 2], [3, 4]], ValueError),                  # nested list
    (np.zeros((2, 2)), ValueError),                  # wrong shape
    (np.array([1 + 2j, 3j]), TypeError),            # wrong dtype
    ("abc", ValueError),                            # text that is no number
    (complex(1, 2), ValueError),
])
def test_put_bad_values_double(chans, value, exc):
    with pytest.raises(exc):
        ca.put(chans["cawave"], value)


@pytest.mark.parametrize("value,exc", [
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    ([1.0, float("nan")], ValueError),
    (np.array([1.0, np.inf]), ValueError),
    (2 ** 31, OverflowError),
    (-(2 ** 31) - 1, OverflowError),
    ([1, 2 ** 40], OverflowError),
    (np.array([2 ** 33], dtype=np.int64), OverflowError),
])
def test_put_bad_values_long(chans, value, exc):
    chid = chans["ca:wave:LONG"] if isinstance(value, (list, np.ndarray)) else chans["ca:scalar:LONG"]
    with pytest.raises(exc):
        ca.put(chid, value)


def test_put_out_of_range_short_and_char(chans):
    with pytest.raises(OverflowError):
        ca.put(chans["ca:scalar:SHORT"], 40000)
    with pytest.raises(OverflowError):
        ca.put(chans["cawavec"], [1, 256])
    with pytest.raises(OverflowError):
        ca.put(chans["cawavec"], -1, ca.DBR_CHAR)
    with pytest.raises(OverflowError):
        ca.put(chans["ca:scalar:FLOAT"], 1e300)


def test_put_to_structured_type_is_badtype(chans):
    assert ca.put(chans["catest"], 1.0, ca.DBR_STS_DOUBLE) == ca.ECA_BADTYPE
    assert ca.put(chans["catest"], 1.0, ca.DBR_CTRL_DOUBLE) == ca.ECA_BADTYPE
    assert ca.put(chans["catest"], 1.0, 99) == ca.ECA_BADTYPE
    with pytest.raises(TypeError):
        ca.put(chans["catest"], 1.0, "DBR_DOUBLE")
    with pytest.raises(TypeError):
        ca.put(chans["catest"], 1.0, count=1.5)


def test_put_ack_types(chans):
    # acknowledge the alarm of cabo (a real PUT_ACKS round trip)
    chid = chans["cabo"]
    write(chid, 1)
    d = write(chid, ca.MINOR_ALARM, ca.DBR_PUT_ACKS)
    assert d["status"] == ca.ECA_NORMAL
    d = write(chid, 1, ca.DBR_PUT_ACKT)
    assert d["status"] == ca.ECA_NORMAL
    assert read(chid, ca.DBR_STSACK_STRING)["ackt"] in (1, True)


def test_put_to_readonly_pv():
    chid = connect("ca:readonly")
    assert ca.read_access(chid) is True
    assert ca.write_access(chid) is False
    assert ca.put(chid, 1.0) == ca.ECA_NOWTACCESS
    assert ca.put(chid, 1.0, callback=lambda d: None) == ca.ECA_NOWTACCESS
    assert read(chid) == 7.0
    ca.clear_channel(chid)


def test_callback_must_be_callable(chans):
    with pytest.raises(TypeError):
        ca.put(chans["catest"], 1.0, callback=42)
    with pytest.raises(TypeError):
        ca.get(chans["catest"], callback="no")
    with pytest.raises(TypeError):
        ca.create_channel("catest", callback=3)


def test_zero_dimensional_array_is_a_scalar(chans):
    assert write(chans["catest"], np.array(5.5))["status"] == ca.ECA_NORMAL
    assert read(chans["catest"]) == 5.5
    assert write(chans["cawave"], np.array(2, dtype=np.int32))["status"] == ca.ECA_NORMAL
    assert read(chans["cawave"], count=2) == [2.0, 0.0]
    assert write(chans["ca:scalar:STRING"], np.array("abc"))["status"] == ca.ECA_NORMAL
    assert read(chans["ca:scalar:STRING"]) == "abc"
    write(chans["ca:scalar:STRING"], "hello")
