"""The command-line tools (python -m CaChannel get/put/monitor/info) as subprocesses.

They run against the session IOC (its client environment is in os.environ)
on the backend of this test run (the suite runs once per backend);
CACHANNEL_BACKEND is set in each subprocess's environment.
"""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

BACKENDS = ["cext", "caffi"]
# the backend this pass of the suite exercises
ACTIVE = "caffi" if os.environ.get("CACHANNEL_BACKEND", "").strip().lower() == "caffi" else "cext"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"
MISSING = "cli:does:not:exist"


@pytest.fixture(scope="module", autouse=True)
def restore_scalars(softioc):
    """Leave the scalars this module writes at their database values."""
    yield
    if softioc is not None:
        for name, value in (("catest", "1"), ("cabo", "0"), ("ca:scalar:MBBO", "1")):
            softioc.shell("dbpf %s %s" % (name, value))


@pytest.fixture(params=[ACTIVE])
def backend(request):
    return request.param


def env_for(backend):
    env = dict(os.environ)
    env["CACHANNEL_BACKEND"] = backend
    env.pop("_CACHANNEL_BACKEND_REEXEC", None)
    env["PYTHONWARNINGS"] = "error::RuntimeWarning"  # a silent fallback would fail here
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT on a hang dumps the Python stacks
    return env


def cli(backend, *args, timeout=60, check=None):
    """Run ``python -m CaChannel ARGS``; returns the CompletedProcess."""
    cmd = [sys.executable, "-m", "CaChannel", *args]
    with subprocess.Popen(cmd, env=env_for(backend), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as p:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGABRT)  # by PID; faulthandler prints the stacks
            out, err = p.communicate(timeout=30)
            pytest.fail("%s did not finish within %s s\nstdout:\n%s\nstderr:\n%s"
                        % (" ".join(args), timeout, out, err))
    proc = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    if check is not None:
        assert proc.returncode == check, (
            "exit %d, expected %d\nstdout:\n%s\nstderr:\n%s"
            % (proc.returncode, check, proc.stdout, proc.stderr))
    return proc


def fields(line):
    return line.split()


# --------------------------------------------------------------------- get
def test_version_names_the_backend(backend):
    out = cli(backend, "version", check=0).stdout
    assert "backend %s" % backend in out


@pytest.mark.parametrize("target", BACKENDS)
def test_backend_option_switches_backend(target):
    other = "caffi" if target == "cext" else "cext"
    out = cli(other, "version", "--backend", target, check=0).stdout
    assert "backend %s" % target in out


def test_get_scalar_and_enum(backend):
    cli(backend, "put", "-w", "5", "catest", "3.5", check=0)
    cli(backend, "put", "-w", "5", "cabo", "Busy", check=0)
    out = cli(backend, "get", "-w", "5", "catest", "cabo", check=0).stdout.splitlines()
    assert fields(out[0]) == ["catest", "3.5"]
    assert fields(out[1]) == ["cabo", "Busy"]
    assert re.match(r"^catest {24} 3\.5$", out[0])  # name left-justified in 30 columns
    out = cli(backend, "get", "-w", "5", "-n", "cabo", check=0).stdout
    assert fields(out) == ["cabo", "1"]
    out = cli(backend, "get", "-w", "5", "-t", "catest", check=0).stdout
    assert out == "3.5\n"


def test_get_wide_has_timestamp_and_alarm(backend):
    cli(backend, "put", "-w", "5", "catest", "15", check=0)     # HIGH / MINOR
    out = cli(backend, "get", "-w", "5", "-a", "catest", check=0).stdout.strip()
    assert re.match(r"^catest +%s 15 HIGH MINOR$" % STAMP, out), out
    cli(backend, "put", "-w", "5", "catest", "1", check=0)
    out = cli(backend, "get", "-w", "5", "-a", "catest", check=0).stdout.strip()
    assert re.match(r"^catest +%s 1$" % STAMP, out), out


def test_get_structured_request_prints_block(backend):
    cli(backend, "put", "-w", "5", "catest", "1", check=0)
    out = cli(backend, "get", "-w", "5", "-d", "DBR_CTRL_DOUBLE", "catest", check=0).stdout
    lines = [ln.strip() for ln in out.splitlines()]
    assert lines[0] == "catest"
    assert "Request type:     DBR_CTRL_DOUBLE" in lines
    assert "Units:            mm" in lines
    assert "Precision:        4" in lines
    assert "Hi alarm limit:   20" in lines
    out = cli(backend, "get", "-w", "5", "-d", "ctrl_enum", "cabo", check=0).stdout
    assert "[ 1] Busy" in out and "Request type:     DBR_CTRL_ENUM" in out
    out = cli(backend, "get", "-w", "5", "-d", "TIME_DOUBLE", "catest", check=0).stdout
    assert re.search(r"Timestamp: +%s" % STAMP, out)


def test_get_request_type_plain_and_invalid(backend):
    out = cli(backend, "get", "-w", "5", "-d", "DBR_STRING", "catest", check=0).stdout
    assert fields(out) == ["catest", "1.0000"]          # server's PREC 4 conversion
    proc = cli(backend, "get", "-d", "DBR_NOPE", "catest", check=2)
    assert "unknown request type 'DBR_NOPE'" in proc.stderr


def test_get_arrays_count_and_char_string(backend):
    cli(backend, "put", "-w", "5", "-a", "ca:varwave", "4", "1.5", "2", "3", "4", check=0)
    out = cli(backend, "get", "-w", "5", "ca:varwave", check=0).stdout
    assert fields(out) == ["ca:varwave", "4", "1.5", "2", "3", "4"]   # server's current length
    out = cli(backend, "get", "-w", "5", "-#", "2", "ca:varwave", check=0).stdout
    assert fields(out) == ["ca:varwave", "2", "1.5", "2"]
    out = cli(backend, "get", "-w", "5", "-f", "2", "-#", "2", "ca:varwave", check=0).stdout
    assert fields(out) == ["ca:varwave", "2", "1.50", "2.00"]
    cli(backend, "put", "-w", "5", "-S", "cawavec", "abc", check=0)
    out = cli(backend, "get", "-w", "5", "-S", "cawavec", check=0).stdout
    assert fields(out) == ["cawavec", "abc"]
    out = cli(backend, "get", "-w", "5", "-#", "4", "cawavec", check=0).stdout
    assert fields(out) == ["cawavec", "4", "97", "98", "99", "0"]


def test_get_not_connected(backend):
    proc = cli(backend, "get", "-w", "0.5", "catest", MISSING, check=1)
    assert fields(proc.stdout.splitlines()[0])[0] == "catest"       # the others still print
    assert proc.stderr.strip().splitlines() == [
        "Channel connect timed out: '%s' not found." % MISSING]


# --------------------------------------------------------------------- put
def test_put_prints_old_and_new(backend):
    cli(backend, "put", "-w", "5", "catest", "1", check=0)
    out = cli(backend, "put", "-w", "5", "catest", "2.25", check=0).stdout.splitlines()
    assert fields(out[0]) == ["Old", ":", "catest", "1"]
    assert fields(out[1]) == ["New", ":", "catest", "2.25"]
    out = cli(backend, "put", "-w", "5", "-t", "catest", "-3", check=0).stdout
    assert out == "-3\n"


def test_put_with_completion(backend):
    out = cli(backend, "put", "-w", "5", "-c", "catest", "4.5", check=0).stdout.splitlines()
    assert fields(out[1]) == ["New", ":", "catest", "4.5"]
    proc = cli(backend, "put", "-w", "5", "-c", "ca:readonly", "1", check=1)
    assert "ca:readonly" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_put_enum_by_name_and_number(backend):
    out = cli(backend, "put", "-w", "5", "cabo", "Done", check=0).stdout.splitlines()
    assert fields(out[1]) == ["New", ":", "cabo", "Done"]
    out = cli(backend, "put", "-w", "5", "-n", "cabo", "1", check=0).stdout.splitlines()
    assert fields(out[1]) == ["New", ":", "cabo", "1"]
    out = cli(backend, "put", "-w", "5", "ca:scalar:MBBO", "Two", check=0).stdout.splitlines()
    assert fields(out[1]) == ["New", ":", "ca:scalar:MBBO", "Two"]
    cli(backend, "put", "-w", "5", "ca:scalar:MBBO", "One", check=0)


def test_put_arrays(backend):
    out = cli(backend, "put", "-w", "5", "-a", "cawave", "3", "1", "2", "3.5", check=0).stdout
    assert fields(out.splitlines()[1])[3:] == ["3", "1", "2", "3.5"]
    out = cli(backend, "put", "-w", "5", "-a", "cawaves", "2", "x y", "z", check=0).stdout
    assert out.splitlines()[1].endswith("2 x y z")
    proc = cli(backend, "put", "-w", "5", "-a", "cawave", "3", "1", "2", check=2)
    assert "element count 3" in proc.stderr


def test_put_not_connected(backend):
    proc = cli(backend, "put", "-w", "0.5", MISSING, "1", check=1)
    assert proc.stderr.strip() == "Channel connect timed out: '%s' not found." % MISSING
    assert proc.stdout == ""


# ----------------------------------------------------------------- monitor
def test_monitor_prints_updates(backend):
    proc = cli(backend, "monitor", "-w", "5", "--duration", "1.5", "cacalc", check=0)
    lines = proc.stdout.splitlines()
    assert len(lines) >= 5, proc.stdout        # cacalc counts at 10 Hz
    for line in lines:
        assert re.match(r"^cacalc +%s \d+$" % STAMP, line), line
    values = [int(fields(ln)[-1]) for ln in lines]
    assert values == sorted(values)


def test_monitor_no_timestamp_and_alarm(backend):
    cli(backend, "put", "-w", "5", "catest", "25", check=0)              # HIHI / MAJOR
    proc = cli(backend, "monitor", "-w", "5", "-t", "n", "--duration", "0.5", "catest", check=0)
    assert fields(proc.stdout.splitlines()[0]) == ["catest", "25", "HIHI", "MAJOR"]
    cli(backend, "put", "-w", "5", "catest", "1", check=0)


def test_monitor_not_connected(backend):
    proc = cli(backend, "monitor", "-w", "0.5", "--duration", "0.2", "cacalc", MISSING, check=1)
    assert "%s *** Not connected (PV not found)" % MISSING in " ".join(proc.stdout.split())
    assert proc.stderr.strip() == "Channel connect timed out: '%s' not found." % MISSING


def test_monitor_stops_on_sigint(backend):
    proc = subprocess.Popen([sys.executable, "-m", "CaChannel", "monitor", "-w", "5", "cacalc"],
                            env=env_for(backend), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = proc.stdout.readline()          # blocks until the first update
        assert first.startswith("cacalc"), first
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# -------------------------------------------------------------------- info
def test_info_block(backend, softioc):
    out = cli(backend, "info", "-w", "5", "catest", "ca:readonly", check=0).stdout
    blocks = out.strip().split("\n\n")
    rows = dict(re.split(r":\s+", ln.strip(), maxsplit=1) for ln in blocks[0].splitlines()[1:])
    assert blocks[0].splitlines()[0] == "catest"
    assert rows["State"] == "connected"
    assert rows["Host"].endswith(":%d" % softioc.port)
    assert rows["Access"] == "read, write"
    assert rows["Native data type"] == "DBF_DOUBLE"
    assert rows["Request type"] == "DBR_DOUBLE"
    assert rows["Element count"] == "1"
    assert "Access:           read, no write" in blocks[1]


def test_info_not_connected(backend):
    proc = cli(backend, "info", "-w", "0.5", MISSING, check=1)
    assert proc.stderr.strip() == "Channel connect timed out: '%s' not found." % MISSING


# ------------------------------------------------------------------- misc
def test_usage_without_command():
    proc = cli("cext", check=2)
    assert "get" in proc.stdout and "monitor" in proc.stdout


def test_console_script_entry_point(backend):
    """The ``cachannel`` script calls CaChannel.cli:console_main (see pyproject)."""
    code = "import sys; sys.argv[0] = 'cachannel'; from CaChannel.cli import console_main; console_main()"
    proc = subprocess.run([sys.executable, "-c", code, "get", "-w", "5", "-h"],
                          env=env_for(backend), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: cachannel get")
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        return
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts["cachannel"] == "CaChannel.cli:console_main"
