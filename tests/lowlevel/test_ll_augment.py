"""create_subscription(augment=(cls, attrs)): scalar events made into
epicscorelibs.ca.dbr augmented values by the backend (cext/augment.c and
_common.augment), equal to what the dict of the same event gives."""
import pytest

from CaChannel import ca
from lltools import Collector, connect, write

dbr = pytest.importorskip("epicscorelibs.ca.dbr")

ATTRS = {"name": "x", "ok": True, "datatype": 6, "element_count": 1}


def _pair(chid, chtype, cls):
    """Two subscriptions of the same channel and type, one augmented: their
    first events describe the same update."""
    plain, aug = Collector(), Collector()
    s1, e1 = ca.create_subscription(chid, plain, chtype)
    s2, e2 = ca.create_subscription(chid, aug, chtype, augment=(cls, ATTRS))
    assert s1 == s2 == ca.ECA_NORMAL
    ca.flush_io()
    return plain, aug, (e1, e2)


@pytest.mark.parametrize("value", [1.0, 25.5, -3.25])
def test_time_double_equals_the_dict_of_the_same_event(value):
    chid = connect("catest")
    write(chid, value)
    plain, aug, evids = _pair(chid, ca.DBR_TIME_DOUBLE, dbr.ca_float)
    d = plain.wait_one()["value"]
    v = aug.wait_one()
    assert type(v) is dbr.ca_float and v == value == d["value"]
    stamp = d["stamp"]
    assert v.raw_stamp == (stamp["seconds"], stamp["nanoseconds"])
    # aioca's rule, as epicscorelibs.ca.dbr computes it
    assert v.timestamp == round(stamp["seconds"] + stamp["nanoseconds"] * 1e-9, 6)
    assert (v.status, v.severity) == (int(d["status"]), int(d["severity"]))
    assert type(v.status) is int and type(v.severity) is int
    for key, item in ATTRS.items():
        assert getattr(v, key) == item
    for e in evids:
        ca.clear_subscription(e)
    ca.clear_channel(chid)


def test_plain_types_string_and_enum():
    chid = connect("catest")
    write(chid, 2.5)
    _, aug, evids = _pair(chid, ca.DBR_DOUBLE, dbr.ca_float)
    v = aug.wait_one()
    assert type(v) is dbr.ca_float and v == 2.5 and v.name == "x"
    assert not hasattr(v, "timestamp")          # plain type: no TIME fields
    for e in evids:
        ca.clear_subscription(e)
    # a string as ca_str; an enum's index as ca_int
    for name, chtype, cls, check in (("ca:scalar:STRING", ca.DBR_TIME_STRING, dbr.ca_str, str),
                                     ("cabo", ca.DBR_TIME_ENUM, dbr.ca_int, int)):
        ch = connect(name)
        _, aug, evids = _pair(ch, chtype, cls)
        v = aug.wait_one()
        assert type(v) is cls and isinstance(+v, check) and v.timestamp > 1e9, (name, v)
        for e in evids:
            ca.clear_subscription(e)
        ca.clear_channel(ch)
    ca.clear_channel(chid)


def test_arrays_and_ctrl_still_get_the_dict():
    wave = connect("cawave")
    write(wave, [1, 2, 3])
    got = Collector()
    _, e = ca.create_subscription(wave, got, ca.DBR_TIME_DOUBLE, augment=(dbr.ca_float, ATTRS))
    ca.flush_io()
    assert type(got.wait_one()) is dict           # more than one element
    ca.clear_subscription(e)
    chid = connect("catest")
    got = Collector()
    _, e = ca.create_subscription(chid, got, ca.DBR_CTRL_DOUBLE, augment=(dbr.ca_float, ATTRS))
    ca.flush_io()
    assert type(got.wait_one()) is dict           # CTRL: not augmented here
    ca.clear_subscription(e)
    ca.clear_channel(wave)
    ca.clear_channel(chid)


@pytest.mark.parametrize("augment", [
    [dbr.ca_float, {}],            # a list, not a tuple
    (dbr.ca_float,),               # one item
    (1.0, {}),                     # not a type
    (dbr.ca_float, [("a", 1)]),    # attrs not a dict
    (float, {}),                   # no __dict__ for the attributes
])
def test_bad_augment_is_a_type_error(augment):
    chid = connect("catest")
    with pytest.raises(TypeError, match="augment"):
        ca.create_subscription(chid, lambda a: None, ca.DBR_TIME_DOUBLE, augment=augment)
    ca.clear_channel(chid)
