"""Constants, enums and pure helpers of ca-api.md sections 2.13 and 3."""
import pytest

from CaChannel import ca
from CaChannel import _common

ECA_CODES = {
    "NORMAL": 1, "MAXIOC": 10, "UKNHOST": 18, "UKNSERV": 26, "SOCK": 34, "CONN": 40,
    "ALLOCMEM": 48, "UKNCHAN": 56, "UKNFIELD": 64, "TOLARGE": 72, "TIMEOUT": 80,
    "NOSUPPORT": 88, "STRTOBIG": 96, "DISCONNCHID": 106, "BADTYPE": 114, "CHIDNOTFND": 123,
    "CHIDRETRY": 131, "INTERNAL": 142, "DBLCLFAIL": 144, "GETFAIL": 152, "PUTFAIL": 160,
    "ADDFAIL": 168, "BADCOUNT": 176, "BADSTR": 186, "DISCONN": 192, "DBLCHNL": 200,
    "EVDISALLOW": 210, "BUILDGET": 216, "NEEDSFP": 224, "OVEVFAIL": 232, "BADMONID": 242,
    "NEWADDR": 248, "NEWCONN": 259, "NOCACTX": 264, "DEFUNCT": 278, "EMPTYSTR": 280,
    "NOREPEATER": 288, "NOCHANMSG": 296, "DLCKREST": 304, "SERVBEHIND": 312, "NOCAST": 320,
    "BADMASK": 330, "IODONE": 339, "IOINPROGRESS": 347, "BADSYNCGRP": 354, "PUTCBINPROG": 362,
    "NORDACCESS": 368, "NOWTACCESS": 376, "ANACHRONISM": 386, "NOSEARCHADDR": 392,
    "NOCONVERT": 400, "BADCHID": 410, "BADFUNCPTR": 418, "ISATTACHED": 424,
    "UNAVAILINSERV": 432, "CHANDESTROY": 440, "BADPRIORITY": 450, "NOTTHREADED": 458,
    "ARRAY16KCLIENT": 464, "CONNSEQTMO": 472, "UNRESPTMO": 480,
}


@pytest.mark.parametrize("name,code", sorted(ECA_CODES.items()))
def test_eca_codes(name, code):
    assert ca.ECA[name] == code
    assert getattr(ca, "ECA_" + name) == code


def test_eca_aliases_and_messages():
    assert ca.ECA.CHIDNOTFOUND is ca.ECA.CHIDNOTFND
    assert ca.ECA_CHIDNOTFOUND == ca.ECA_CHIDNOTFND == 123
    assert ca.ECA_16KARRAYCLIENT == 464
    assert ca.ECA.TIMEOUT.message() == "User specified timeout on IO operation expired"
    assert ca.ECA.NORMAL.severity() == ca.CA_K.SUCCESS
    assert ca.ECA.TIMEOUT.severity() == ca.CA_K.WARNING
    assert ca.ECA.BADCHID.severity() == ca.CA_K.ERROR


def test_ca_k_and_masks():
    assert [ca.CA_K_WARNING, ca.CA_K_SUCCESS, ca.CA_K_ERROR, ca.CA_K_INFO, ca.CA_K_SEVERE,
            ca.CA_K_FATAL] == [0, 1, 2, 3, 4, 6]
    assert (ca.CA_M_MSG_NO, ca.CA_M_SEVERITY, ca.CA_M_LEVEL, ca.CA_M_SUCCESS, ca.CA_M_ERROR,
            ca.CA_M_SEVERE) == (0xFFF8, 7, 3, 1, 2, 4)
    assert (ca.CA_V_MSG_NO, ca.CA_V_SEVERITY, ca.CA_V_SUCCESS) == (3, 0, 0)
    assert ca.CA_EXTRACT_MSG_NO(ca.ECA_TIMEOUT) == 10
    assert ca.CA_EXTRACT_MSG_SEVERITY(ca.ECA_BADCHID) == ca.CA_K_ERROR


def test_dbf():
    assert [ca.DBF_STRING, ca.DBF_SHORT, ca.DBF_INT, ca.DBF_FLOAT, ca.DBF_ENUM, ca.DBF_CHAR,
            ca.DBF_LONG, ca.DBF_DOUBLE] == [0, 1, 1, 2, 3, 4, 5, 6]
    assert (ca.DBF_NO_ACCESS, ca.LAST_TYPE, ca.TYPENOTCONN) == (7, 6, -1)
    assert ca.DBF(-1).name == "NOTCONN" and ca.DBF.INVALID is ca.DBF.NOTCONN
    assert ca.DBF(1).name == "SHORT" and ca.DBF.INT is ca.DBF.SHORT
    assert repr(ca.DBF.DOUBLE) == "<DBF.DOUBLE: 6>"
    assert ca.DBF.DOUBLE.toSTS() == ca.DBR.STS_DOUBLE
    assert ca.DBF.DOUBLE.toTIME() == ca.DBR.TIME_DOUBLE
    assert ca.DBF.ENUM.toGR() == ca.DBR.GR_ENUM
    assert ca.DBF.CHAR.toCTRL() == ca.DBR.CTRL_CHAR     # caffi returned GR here


DBR_NAMES = ["STRING", "SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE"]


@pytest.mark.parametrize("family,base", [("", 0), ("STS_", 7), ("TIME_", 14), ("GR_", 21),
                                         ("CTRL_", 28)])
def test_dbr_families(family, base):
    for i, n in enumerate(DBR_NAMES):
        assert getattr(ca, "DBR_" + family + n) == base + i
        assert ca.DBR[family + n] == base + i
    assert getattr(ca, "DBR_" + family + "INT") == base + 1
    assert ca.DBR[family + "INT"] is ca.DBR[family + "SHORT"]


def test_dbr_specials():
    assert (ca.DBR_PUT_ACKT, ca.DBR_PUT_ACKS, ca.DBR_STSACK_STRING, ca.DBR_CLASS_NAME) == \
        (35, 36, 37, 38)
    assert ca.LAST_BUFFER_TYPE == 38 and ca.DBR.LAST_BUFFER_TYPE == 38
    assert ca.DBR.INVALID == -1


def test_printing():
    # the manual prints enum members as Class.MEMBER (Python 3.11 prints numbers)
    assert str(ca.DBR.TIME_DOUBLE) == "DBR.TIME_DOUBLE"
    assert "%s" % ca.ECA.NORMAL == "ECA.NORMAL"
    assert f"{ca.AlarmSeverity.No}" == "AlarmSeverity.No"
    assert "{:d}".format(ca.ECA.TIMEOUT) == "80"
    assert repr(ca.ChannelState.CONN) == "<ChannelState.CONN: 2>"


def test_other_enums():
    assert [ca.DBE_VALUE, ca.DBE_ARCHIVE, ca.DBE_LOG, ca.DBE_ALARM, ca.DBE_PROPERTY] == \
        [1, 2, 2, 4, 8]
    assert [ca.CA_OP_GET, ca.CA_OP_PUT, ca.CA_OP_CREATE_CHANNEL, ca.CA_OP_ADD_EVENT,
            ca.CA_OP_CLEAR_EVENT, ca.CA_OP_OTHER, ca.CA_OP_CONN_UP, ca.CA_OP_CONN_DOWN] == \
        list(range(8))
    assert ca.CA_OP_SEARCH == 2
    assert [ca.cs_never_conn, ca.cs_prev_conn, ca.cs_conn, ca.cs_closed, ca.cs_never_search] == \
        list(range(5))
    assert (ca.CA_PRIORITY_MIN, ca.CA_PRIORITY_DEFAULT, ca.CA_PRIORITY_OPI,
            ca.CA_PRIORITY_ARCHIVE, ca.CA_PRIORITY_DB_LINKS, ca.CA_PRIORITY_MAX) == \
        (0, 0, 0, 20, 80, 99)
    assert [ca.NO_ALARM, ca.MINOR_ALARM, ca.MAJOR_ALARM, ca.INVALID_ALARM] == [0, 1, 2, 3]
    assert ca.AlarmSeverity(2).name == "Major"
    assert ca.AlarmCondition(5).name == "LoLo" and ca.AlarmCondition.Lolo is ca.AlarmCondition.LoLo
    assert ca.AlarmCondition(13).name == "Scan" and ca.AlarmCondition.Scam is ca.AlarmCondition.Scan
    names = ["READ", "WRITE", "HIHI", "HIGH", "LOLO", "LOW", "STATE", "COS", "COMM", "TIMEOUT",
             "HW_LIMIT", "CALC", "SCAN", "LINK", "SOFT", "BAD_SUB", "UDF", "DISABLE", "SIMM",
             "READ_ACCESS", "WRITE_ACCESS"]
    for i, n in enumerate(names, 1):
        assert getattr(ca, n + "_ALARM") == i
    assert ca.POSIX_TIME_AT_EPICS_EPOCH == 631152000


def test_type_predicates():
    assert ca.dbf_type_is_valid(0) and ca.dbf_type_is_valid(6)
    assert not ca.dbf_type_is_valid(7) and not ca.dbf_type_is_valid(-1)
    assert ca.dbr_type_is_valid(38) and not ca.dbr_type_is_valid(39)
    for t in range(39):
        assert ca.dbr_type_is_plain(t) == (t <= 6)
        assert ca.dbr_type_is_STS(t) == (7 <= t <= 13)
        assert ca.dbr_type_is_TIME(t) == (14 <= t <= 20)
        assert ca.dbr_type_is_GR(t) == (21 <= t <= 27)
        assert ca.dbr_type_is_CTRL(t) == (28 <= t <= 34)
        for k, n in enumerate(DBR_NAMES):
            assert getattr(ca, "dbr_type_is_" + n)(t) == (t % 7 == k)
            assert getattr(ca.DBR(t), "is" + n)() == (t % 7 == k)
    assert ca.dbr_type_is_STRING(ca.DBR_PUT_ACKT)   # 35 % 7 == 0, as in C
    assert not ca.dbr_type_is_STRING(-1)
    assert ca.DBR.CTRL_DOUBLE.isCTRL() and ca.DBR.DOUBLE.isPlain() and ca.DBR.STS_LONG.isSTS()
    assert ca.DBR.TIME_ENUM.isTIME() and ca.DBR.GR_CHAR.isGR()


def test_type_conversions():
    for t in range(7):
        assert ca.dbf_type_to_DBR(t) == t
        assert ca.dbf_type_to_DBR_STS(t) == t + 7
        assert ca.dbf_type_to_DBR_TIME(t) == t + 14
        assert ca.dbf_type_to_DBR_GR(t) == t + 21
        assert ca.dbf_type_to_DBR_CTRL(t) == t + 28
        assert isinstance(ca.dbf_type_to_DBR_CTRL(t), ca.DBR)
    assert ca.dbf_type_to_DBR(-1) == -1 and ca.dbf_type_to_DBR_TIME(7) == -1


def test_texts():
    assert ca.dbf_type_to_text(-1) == "TYPENOTCONN"
    assert ca.dbf_text(1) == "DBF_SHORT" and ca.dbf_text(6) == "DBF_DOUBLE"
    assert ca.dbf_text(7) == "DBF_invalid"
    assert ca.dbf_text_to_type("DBF_ENUM") == ca.DBF.ENUM
    assert ca.dbf_text_to_type("nonsense") == -1
    assert ca.dbr_type_to_text(34) == "DBR_CTRL_DOUBLE"
    assert [ca.dbr_text(t) for t in (35, 36, 37, 38)] == [
        "DBR_PUT_ACKT", "DBR_PUT_ACKS", "DBR_STSACK_STRING", "DBR_CLASS_NAME"]
    assert ca.dbr_text(39) == "DBR_invalid" and ca.dbr_text(-1) == "DBR_invalid"
    for t in range(39):
        assert ca.dbr_text_to_type(ca.dbr_text(t)) == t
    assert ca.dbr_text_to_type("DBR_NOPE") == -1


def test_alarm_strings():
    assert [ca.alarmSeverityString(i) for i in range(4)] == ["NO_ALARM", "MINOR", "MAJOR",
                                                             "INVALID"]
    assert ca.alarmStatusString(3) == "HIHI" and ca.alarmStatusString(21) == "WRITE_ACCESS"
    assert len(ca.epicsAlarmConditionStrings) == 22
    assert ca.epicsAlarmSeverityStrings[2] == "MAJOR"
    with pytest.raises(IndexError):
        ca.alarmSeverityString(4)
    with pytest.raises(IndexError):
        ca.alarmStatusString(22)
    with pytest.raises(IndexError):
        ca.alarmStatusString(-1)


def test_dbr_size_n_matches_libca():
    # dbr_size_n is the C macro: sizeof(struct) + (count-1) * element size
    assert ca.dbr_size_n(ca.DBR_DOUBLE, 1) == 8
    assert ca.dbr_size_n(ca.DBR_DOUBLE, 10) == 80
    assert ca.dbr_size_n(ca.DBR_STRING, 3) == 120
    assert ca.dbr_size_n(ca.DBR_CTRL_DOUBLE, 1) == 88
    assert ca.dbr_size_n(ca.DBR_TIME_CHAR, 4) == 16 + 3


def test_layout_tables_match_libca():
    """The shared DBR tables equal libca's own dbr_size/dbr_value_size/dbr_value_offset."""
    import ctypes
    from CaChannel import _libca
    lib = ctypes.CDLL(_libca.load())
    for cname, table in (("dbr_size", _common.DBR_SIZE),
                         ("dbr_value_size", _common.DBR_VALUE_SIZE),
                         ("dbr_value_offset", _common.DBR_VALUE_OFFSET)):
        arr = (ctypes.c_ushort * 39).in_dll(lib, cname)
        assert [arr[i] for i in range(39)] == [table[i] for i in range(39)], cname


# A fresh interpreter breaks one entry of _common's tables, then imports a
# backend: the import itself must fail with a message naming the entry.
_BREAK_AND_IMPORT = r"""
import importlib, sys
from CaChannel import _common
_common.DBR_VALUE_OFFSET[20] += 1          # DBR_TIME_DOUBLE
try:
    if sys.argv[1] == "caffi":
        import CaChannel._cffi             # not imported yet: the C extension is active
    else:
        import CaChannel.ca
        importlib.reload(CaChannel.ca)     # selects the C extension again
except ImportError as exc:
    print("ImportError:", exc)
else:
    print("imported")
"""


@pytest.mark.parametrize("which", ["caffi", "cext"])
def test_broken_layout_table_fails_the_import(which):
    """The import-time check (cffi through its ffi, C extension through
    ctypes in ca.py) rejects a table that disagrees with libca."""
    import os
    import subprocess
    import sys
    try:
        import CaChannel._ca  # noqa: F401
    except ImportError:
        pytest.skip("needs the C extension (the other backend must be importable first)")
    # the C extension is active (it passed its check) when _common is patched
    env = dict(os.environ, CACHANNEL_BACKEND="")
    proc = subprocess.run([sys.executable, "-c", _BREAK_AND_IMPORT, which], env=env,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert "ImportError: CaChannel: the DBR struct layouts" in out, out
    assert "dbr_value_offset[DBR_TIME_DOUBLE] is 16 in libca, 17 in CaChannel._common" in out, out
    assert ("cffi" if which == "caffi" else "C extension") in out, out


def test_layout_check_accepts_libca_and_names_every_wrong_entry():
    from CaChannel import _libca
    arrays = _libca.dbr_layout_arrays()
    _common.check_dbr_layouts(*arrays, source="test")     # the real tables pass
    size, vsize, voffset = (list(a) for a in arrays)
    size[6] += 8
    voffset[34] -= 1
    with pytest.raises(ImportError) as info:
        _common.check_dbr_layouts(size, vsize, voffset, source="test")
    text = str(info.value)
    assert "dbr_size[DBR_DOUBLE] is 16 in libca, 8 in CaChannel._common" in text
    assert "dbr_value_offset[DBR_CTRL_DOUBLE]" in text
    assert "dbr_value_size" not in text


def test_misc_module_attributes():
    assert ca.HAS_NUMPY
    assert ca.backend in ("cext", "caffi")
    assert ca.message(1) == "Normal successful completion"
    assert ca.message(80) == "User specified timeout on IO operation expired"
    assert ca.message(ca.ECA.BADCHID) == ca.ECA.BADCHID.message()
    assert isinstance(ca.version(), str) and ca.version()[0].isdigit()


def test_top_level_ca_module():
    import ca as top
    assert top.create_channel is ca.create_channel
    assert set(top.__all__) == set(ca.__all__)


def test_both_backends_export_the_same_names():
    import importlib
    names = set(importlib.import_module("CaChannel._cffi").__all__)
    assert names == set(ca.__all__)
    try:
        cext = importlib.import_module("CaChannel._ca")
    except ImportError:
        pytest.skip("the C extension is not built")
    assert set(cext.__all__) == names


def test_enum_classes_and_buffer_limits():
    assert ca.CA_PRIORITY.MAX == 99 and ca.CA_PRIORITY.DEFAULT is ca.CA_PRIORITY.MIN
    assert ca.DBE.LOG is ca.DBE.ARCHIVE and ca.DBE.VALUE | ca.DBE.ALARM == 5
    assert (ca.MAX_STRING_SIZE, ca.MAX_UNITS_SIZE, ca.MAX_ENUM_STRING_SIZE,
            ca.MAX_ENUM_STATES) == (40, 8, 26, 16)
    assert ca.dbr_type_is_SHORT(ca.DBR_TIME_SHORT) and ca.dbr_type_is_FLOAT(ca.DBR_GR_FLOAT)
    assert ca.dbr_type_is_ENUM(ca.DBR_CTRL_ENUM) and ca.dbr_type_is_CHAR(ca.DBR_STS_CHAR)
    assert ca.dbr_type_is_LONG(ca.DBR_LONG) and ca.dbr_type_is_DOUBLE(ca.DBR_CTRL_DOUBLE)
    assert not ca.dbr_type_is_DOUBLE(ca.DBR_CTRL_LONG)
    assert isinstance(ca.DBRValue, type)


def test_no_type_reads_as_invalid():
    # libca reports "no type" as -1, or as 0xFFFFFFFF after a failed put
    from CaChannel._common import to_dbr
    assert to_dbr(-1) is ca.DBR.INVALID and to_dbr(0xFFFFFFFF) is ca.DBR.INVALID
    assert to_dbr(6) is ca.DBR.DOUBLE and to_dbr(77) == 77
