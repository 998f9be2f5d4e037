"""Tests of the real-IOC harness (CaChannel.testing) that do not use our CA client.

Reads/writes go through caproto's threading client pointed at the IOC, or
through raw CA UDP searches (CaChannel.testing.ca_search).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from CaChannel.testing import IOC, ca_search, free_port

# backend independent: the default pass runs it, the caffi pass skips it
pytestmark = pytest.mark.once

HERE = Path(__file__).resolve().parent
TEST_DB = HERE / "test.db"
TEST_ACF = HERE / "test.acf"


def wait_until(predicate, timeout=10.0, interval=0.05, message="condition"):
    """Poll ``predicate`` until true; fail with ``message`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # still exists: maybe a zombie not yet reaped by us (we reap in stop/kill)
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture(scope="module")
def ioc():
    with IOC([TEST_DB], acf=TEST_ACF) as running:
        yield running


class _Client:
    """caproto threading client that searches only one IOC.

    caproto reads EPICS_CA_ADDR_LIST when it sends a search, so the IOC's
    client env is put into os.environ only while connecting (the session IOC
    of the plugin, if any, keeps its env for everyone else).
    """

    def __init__(self, ioc, context):
        self.ioc = ioc
        self.context = context

    def pv(self, name, timeout=5.0):
        saved = {k: os.environ.get(k) for k in self.ioc.client_env()}
        os.environ.update(self.ioc.client_env())
        try:
            (pv,) = self.context.get_pvs(name, timeout=timeout)
            pv.wait_for_connection(timeout=timeout)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return pv


@pytest.fixture(scope="module")
def ctx(ioc):
    caproto_client = pytest.importorskip("caproto.threading.client")
    context = caproto_client.Context()
    try:
        yield _Client(ioc, context)
    finally:
        context.disconnect()


def read(ctx, name, **kw):
    pv = ctx.pv(name)
    return pv, pv.read(timeout=10, **kw)


# --------------------------------------------------------------- free_port --
def test_free_port_is_free_for_tcp_and_udp():
    port = free_port()
    assert 1024 <= port <= 65535 and port not in (5064, 5065, 5075, 5076)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tcp.bind(("127.0.0.1", port))
        udp.bind(("127.0.0.1", port))
    finally:
        tcp.close()
        udp.close()


# ------------------------------------------------------------- start/search --
def test_ioc_answers_search(ioc):
    assert ioc.running and ioc.pid
    assert ioc.ready_pv == "catest"
    assert isinstance(ca_search("catest", ioc.port, timeout=2), int)
    assert isinstance(ca_search("ca:wave:DOUBLE", ioc.port, timeout=2), int)
    assert ca_search("no:such:pv", ioc.port, timeout=0.3) is None


def test_client_env(ioc):
    env = ioc.client_env()
    assert env["EPICS_CA_ADDR_LIST"] == f"127.0.0.1:{ioc.port}"
    assert env["EPICS_CA_AUTO_ADDR_LIST"] == "NO"
    assert int(env["EPICS_CA_MAX_ARRAY_BYTES"]) >= 4_000_000 * 8 + 1024


def test_pva_confined_to_loopback_and_own_ports(ioc):
    env = ioc.server_env()
    assert env["EPICS_PVAS_INTF_ADDR_LIST"] == "127.0.0.1"
    assert env["EPICS_CAS_INTF_ADDR_LIST"] == "127.0.0.1"
    assert int(env["EPICS_PVAS_SERVER_PORT"]) not in (5075, ioc.port)
    assert int(env["EPICS_PVAS_BROADCAST_PORT"]) not in (5076, ioc.port)


def test_shell_dbpf_dbgf(ioc, ctx):
    out = ioc.shell("dbpf ca:scalar:DOUBLE 6.5")
    assert "6.5" in out and ioc.last_status == 0
    assert "6.5" in ioc.shell("dbgf ca:scalar:DOUBLE")
    _, r = read(ctx, "ca:scalar:DOUBLE")
    assert float(r.data[0]) == 6.5
    ioc.shell("dbpf ca:scalar:DOUBLE 3.25")


def test_shell_quotes_and_strings(ioc, ctx):
    ioc.shell('dbpf ca:scalar:STRING "two words"')
    _, r = read(ctx, "ca:scalar:STRING")
    assert r.data[0] == b"two words"
    ioc.shell("dbpf ca:scalar:STRING hello")


# ------------------------------------------------------------ the database --
SCALARS = {
    # name: (caproto native ChannelType value, initial value)
    "ca:scalar:STRING": (0, b"hello"),
    "ca:scalar:SHORT": (1, -1234),
    "ca:scalar:FLOAT": (2, 1.5),
    "ca:scalar:ENUM": (3, 1),
    "ca:scalar:MBBO": (3, 1),
    "ca:scalar:CHAR": (4, 251),   # -5 as CA's unsigned DBR_CHAR
    "ca:scalar:UCHAR": (4, 200),
    "ca:scalar:USHORT": (5, 54321),  # DBF_USHORT is served as DBR_LONG
    "ca:scalar:LONG": (5, -123456),
    "ca:scalar:ULONG": (6, 3000000000.0),  # DBF_ULONG/INT64 served as DBR_DOUBLE
    "ca:scalar:INT64": (6, 1234567890123.0),
    "ca:scalar:DOUBLE": (6, 3.25),
    "ca:limits": (6, 5.0),
    "ca:readonly": (6, 7.0),
}
WAVES = {
    "ca:wave:STRING": (0, [b"a", b"bc", b"def"]),
    "ca:wave:SHORT": (1, [1, 2, 3]),
    "ca:wave:FLOAT": (2, [1.5, 2.5, 3.5]),
    "ca:wave:ENUM": (3, [0, 1, 2]),
    "ca:wave:CHAR": (4, [1, 2, 3]),
    "ca:wave:UCHAR": (4, [1, 2, 3]),
    "ca:wave:USHORT": (5, [1, 2, 3]),
    "ca:wave:LONG": (5, [1, 2, 3]),
    "ca:wave:ULONG": (6, [1, 2, 3]),
    "ca:wave:INT64": (6, [1, 2, 3]),
    "ca:wave:DOUBLE": (6, [1.5, 2.5, 3.5]),
}
COUNTS = {"cawave": (6, 20), "cawavec": (4, 5), "cawaves": (0, 3), "ca:varwave": (6, 100),
          "ca:bigwave": (6, 4_000_000), "ca:image": (5, 1_048_576)}


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_db_scalars(ctx, name):
    pv, r = read(ctx, name)
    ftype, initial = SCALARS[name]
    assert int(pv.channel.native_data_type) == ftype
    assert pv.channel.native_data_count == 1
    assert r.data[0] == initial


@pytest.mark.parametrize("name", sorted(WAVES))
def test_db_waveforms(ctx, name):
    pv, r = read(ctx, name)
    ftype, initial = WAVES[name]
    assert int(pv.channel.native_data_type) == ftype
    assert pv.channel.native_data_count == 10
    assert list(r.data) == initial  # count 0 read returns the NORD=3 elements


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_db_array_sizes(ctx, name):
    pv = ctx.pv(name)
    assert (int(pv.channel.native_data_type), pv.channel.native_data_count) == COUNTS[name]


def test_db_catest_ctrl(ctx):
    _, r = read(ctx, "catest", data_type="control")
    md = r.metadata
    assert r.data[0] == 1.0
    assert (int(md.status), int(md.severity)) == (0, 0)
    assert md.units == b"mm" and md.precision == 4
    assert (md.upper_disp_limit, md.lower_disp_limit) == (20, -20)
    assert (md.upper_alarm_limit, md.lower_alarm_limit) == (20, -20)
    assert (md.upper_warning_limit, md.lower_warning_limit) == (10, -10)
    assert (md.upper_ctrl_limit, md.lower_ctrl_limit) == (0, 0)


def test_db_catest_hihi_alarm(ioc, ctx):
    ioc.shell("dbpf catest 145")
    try:
        _, r = read(ctx, "catest", data_type="control")
        assert (int(r.metadata.status), int(r.metadata.severity)) == (3, 2)  # HIHI, MAJOR
    finally:
        ioc.shell("dbpf catest 1")


def test_db_limits_ctrl(ctx):
    _, r = read(ctx, "ca:limits", data_type="control")
    assert (r.metadata.upper_ctrl_limit, r.metadata.lower_ctrl_limit) == (90, -90)
    assert r.metadata.units == b"deg" and r.metadata.precision == 2


def test_db_cabo_states(ioc, ctx):
    _, r = read(ctx, "cabo", data_type="control")
    assert r.metadata.enum_strings == (b"Done", b"Busy")
    ioc.shell("dbpf cabo 1")
    try:
        _, r = read(ctx, "cabo", data_type="control")
        assert r.data[0] == 1
        assert (int(r.metadata.status), int(r.metadata.severity)) == (7, 1)  # STATE, MINOR
    finally:
        ioc.shell("dbpf cabo 0")


def test_db_mbbo_states(ioc, ctx):
    _, r = read(ctx, "ca:scalar:MBBO", data_type="control")
    assert r.metadata.enum_strings == (b"Zero", b"One", b"Two", b"Three")
    ioc.shell("dbpf ca:scalar:MBBO 3")
    try:
        _, r = read(ctx, "ca:scalar:MBBO", data_type="control")
        assert int(r.metadata.severity) == 2
    finally:
        ioc.shell("dbpf ca:scalar:MBBO 1")


def test_db_cacalc_changes(ctx):
    pv = ctx.pv("cacalc")
    first = pv.read(timeout=5).data[0]
    wait_until(lambda: pv.read(timeout=5).data[0] != first, timeout=5, message="cacalc to change")
    _, r = read(ctx, "cacalc", data_type="control")
    assert int(r.metadata.severity) == 0


@pytest.mark.parametrize("name,count", [("ca:image", 1024 * 1024), ("ca:bigwave", 4_000_000)])
def test_db_big_arrays_served(ctx, name, count):
    """The IOC's EPICS_CA_MAX_ARRAY_BYTES lets it send the full arrays."""
    pv = ctx.pv(name)
    r = pv.read(data_count=count, timeout=30)
    assert len(r.data) == count


# ---------------------------------------------------------- access security --
def test_acf_readonly(ioc, ctx):
    from caproto import AccessRights
    pv = ctx.pv("ca:readonly")
    rights = pv.channel.access_rights
    assert rights & AccessRights.READ and not rights & AccessRights.WRITE
    assert "put No" in ioc.shell("astac ca:readonly user localhost")
    rw = ctx.pv("catest")
    assert rw.channel.access_rights & AccessRights.WRITE


def test_acf_guarded_switch(ioc, ctx):
    from caproto import AccessRights
    pv = ctx.pv("ca:guarded")
    assert not pv.channel.access_rights & AccessRights.WRITE
    ioc.shell("dbpf ca:guard 1")
    try:
        wait_until(lambda: pv.channel.access_rights & AccessRights.WRITE, timeout=10,
                   message="ca:guarded to become writable after ca:guard=1")
    finally:
        ioc.shell("dbpf ca:guard 0")
    wait_until(lambda: not pv.channel.access_rights & AccessRights.WRITE, timeout=10,
               message="ca:guarded to become read-only after ca:guard=0")


def test_console_asinit_after_iocinit_does_not_enable_as():
    """Documents why the ACF is set through the _iocmain launcher."""
    with IOC([TEST_DB]) as plain:
        out = plain.shell(f"asSetFilename {TEST_ACF}") + plain.shell("asInit")
        assert "NOT enabled" in out
        assert "ASG(" not in plain.shell("asprules")


# ------------------------------------------------------- lifecycle / faults --
def test_kill_and_restart_same_port():
    port = free_port()
    runner = IOC([TEST_DB], port=port)
    runner.start()
    try:
        first_pid = runner.pid
        runner.shell("dbpf catest 9")
        runner.kill()
        assert not runner.running and pid_gone(first_pid)
        assert ca_search("catest", port, timeout=0.3) is None
        runner.start()
        assert runner.port == port and runner.pid != first_pid
        assert isinstance(ca_search("catest", port, timeout=2), int)
        assert "DBF_DOUBLE:         1" in runner.shell("dbgf catest")  # fresh IOC
    finally:
        runner.stop()
    assert pid_gone(runner.pid)


def test_stop_leaves_no_process():
    with IOC([TEST_DB]) as runner:
        pid, port = runner.pid, runner.port
        assert not pid_gone(pid)
    assert not runner.running
    assert pid_gone(pid)
    assert ca_search("catest", port, timeout=0.3) is None
    runner.stop()  # idempotent


def test_start_failure_reports_output(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text('record(ao, "x") {\n  field(NOSUCHFIELD, "1")\n}\n')
    runner = IOC([bad])
    with pytest.raises(RuntimeError) as info:
        runner.start(timeout=20)
    assert "NOSUCHFIELD" in str(info.value) or "Error" in str(info.value)
    assert not runner.running


def test_start_timeout_when_pv_never_answers():
    runner = IOC([TEST_DB], ready_pv="no:such:pv")
    with pytest.raises(RuntimeError, match="did not answer"):
        runner.start(timeout=2)
    assert not runner.running and pid_gone(runner.pid)


def test_macros_and_ready_pv(tmp_path):
    db = tmp_path / "m.db"
    db.write_text('record(ai, "$(P)value") {\n  field(VAL, "$(V=2)")\n}\n')
    with IOC([db], macros="P=mac:") as runner:
        assert runner.ready_pv == "mac:value"
        assert "2" in runner.shell("dbgf mac:value")


# ----------------------------------------------------------------- plugin --
def test_session_plugin_env(softioc):
    """With -o cachannel_ioc_db=tests/test.db the session IOC is exported."""
    if softioc is None:
        pytest.skip("session IOC not configured (use -o cachannel_ioc_db=tests/test.db)")
    for key, value in softioc.client_env().items():
        if key == "EPICS_CA_ADDR_LIST":
            # other conftests may append their own servers after the IOC
            assert os.environ[key].split()[0] == value
        else:
            assert os.environ[key] == value
    assert isinstance(ca_search("catest", softioc.port, timeout=2), int)


SITE_TEST = '''
import os
from CaChannel.testing import ca_search

def test_env(softioc):
    assert softioc is not None
    assert os.environ["EPICS_CA_ADDR_LIST"] == "127.0.0.1:%d" % softioc.port
    assert ca_search("site:value", softioc.port, timeout=2) is not None
    assert "42" in softioc.shell("dbgf site:value")


def test_own_fixture(extra_ioc):
    assert extra_ioc.port != int(os.environ["EPICS_CA_ADDR_LIST"].rsplit(":", 1)[1])
    assert ca_search("extra:value", extra_ioc.port, timeout=2) is not None
'''

SITE_CONFTEST = '''
from pathlib import Path
from CaChannel.testing import ioc_fixture

extra_ioc = ioc_fixture([Path(__file__).parent / "db" / "site.db"], macros="P=extra:",
                        export_env=False, scope="module")
'''

SITE_DOCTEST = '''
"""
>>> import os
>>> os.environ["EPICS_CA_AUTO_ADDR_LIST"]
'NO'
"""
'''


def _run_pytest(where, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPICS_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=str(where), env=env, capture_output=True, text=True, timeout=120)


def test_plugin_in_a_site_project(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "site.db").write_text(
        'record(longout, "$(P)value") {\n  field(VAL, "42")\n}\n')
    (tmp_path / "pytest.ini").write_text(textwrap.dedent("""\
        [pytest]
        cachannel_ioc_db =
            db/site.db
        cachannel_ioc_macros = P=site:
        """))
    (tmp_path / "test_site.py").write_text(SITE_TEST)
    (tmp_path / "mod_doc.py").write_text(SITE_DOCTEST)
    (tmp_path / "conftest.py").write_text(SITE_CONFTEST)
    res = _run_pytest(tmp_path, "--doctest-modules")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 passed" in res.stdout, res.stdout


def test_plugin_inactive_without_ini(tmp_path):
    (tmp_path / "test_none.py").write_text(
        "import os\n"
        "def test_none(softioc):\n"
        "    assert softioc is None\n"
        "    assert 'EPICS_CA_ADDR_LIST' not in os.environ\n")
    res = _run_pytest(tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


def test_plugin_reports_start_failure(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\ncachannel_ioc_db = missing.db\n")
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    res = _run_pytest(tmp_path)
    assert res.returncode != 0
    assert "could not start the test IOC" in res.stdout + res.stderr
