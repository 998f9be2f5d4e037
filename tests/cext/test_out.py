"""get(out=...) and the zero-copy numpy path of callback-less gets."""
import numpy as np
import pytest

from cexttools import read, write


def test_out_fills_caller_array(ca, chan):
    ch = chan("cawave")
    write(ca, ch, list(range(20)))
    out = np.zeros(20, np.float64)
    status, value = ca.get(ch, out=out)
    assert status == ca.ECA_NORMAL
    assert ca.pend_io(5) == ca.ECA_NORMAL
    res = value.get()
    assert res is out
    assert np.array_equal(out, np.arange(20.0))


def test_out_partial_count_returns_view(ca, chan):
    ch = chan("cawave")
    write(ca, ch, list(range(20)))
    out = np.full(30, -1.0)
    status, value = ca.get(ch, out=out)     # count None -> min(native, size) = 20
    assert ca.pend_io(5) == ca.ECA_NORMAL
    res = value.get()
    assert res.shape == (20,) and np.shares_memory(res, out)
    assert np.array_equal(res, np.arange(20.0)) and out[20] == -1.0
    status, value = ca.get(ch, count=1, out=out)
    assert ca.pend_io(5) == ca.ECA_NORMAL
    assert isinstance(value.get(), np.ndarray) and value.get().shape == (1,)


def test_out_dtype_picks_type(ca, chan):
    ch = chan("cawave")
    write(ca, ch, [1.5, 2.5, 3.5])
    out = np.zeros(3, np.int32)
    status, value = ca.get(ch, out=out)
    assert ca.pend_io(5) == ca.ECA_NORMAL
    assert value.dbrtype == ca.DBR_LONG
    assert out.tolist() == [1, 2, 3] or out.tolist() == [2, 2, 4]   # server rounding
    assert out.dtype == np.int32


def test_out_errors(ca, chan):
    ch = chan("cawave")
    with pytest.raises(TypeError):
        ca.get(ch, out=np.zeros(20, np.int64))            # no DBR type for int64
    with pytest.raises(TypeError):
        ca.get(ch, ca.DBR_DOUBLE, out=np.zeros(20, np.float32))
    with pytest.raises(TypeError):
        ca.get(ch, out=[0.0] * 20)
    with pytest.raises(ValueError):
        ca.get(ch, count=10, out=np.zeros(5))             # too small
    with pytest.raises(ValueError):
        ca.get(ch, out=np.zeros(40)[::2])                 # not contiguous
    ro = np.zeros(20)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        ca.get(ch, out=ro)
    with pytest.raises(ValueError):
        ca.get(ch, callback=lambda a: None, out=np.zeros(20))


def test_zero_copy_numpy_get(ca, chan):
    ch = chan("cawave")
    write(ca, ch, list(range(20)))
    status, value = ca.get(ch, use_numpy=True)
    assert ca.pend_io(5) == ca.ECA_NORMAL
    arr = value.get()
    # libca wrote straight into this array: it owns its memory, and get()
    # hands out that same array instead of a copy
    assert isinstance(arr, np.ndarray) and arr.flags.owndata and arr.base is None
    assert value.get() is arr
    assert arr.dtype == np.float64 and np.array_equal(arr, np.arange(20.0))
    value.use_numpy = False
    assert value.get() == [float(i) for i in range(20)]


def test_numpy_get_all_plain_types(ca, chan):
    ch = chan("ca:wave:SHORT")
    for t, dt in ((1, "int16"), (2, "float32"), (3, "uint16"), (4, "uint8"),
                  (5, "int32"), (6, "float64")):
        arr = read(ca, ch, t, use_numpy=True)
        assert arr.dtype == np.dtype(dt)
