"""aioca's own test suite, run unchanged with ``aioca`` redirected to CaChannel.aio.

The suite (``tests/`` of the aioca sdist, the version installed by the
``test`` extra) is not part of this repository. It is taken, in this order,
from ``$CACHANNEL_AIOCA_SUITE`` (a directory holding ``tests/test_aioca.py``,
or an aioca sdist ``.tar.gz``), from the cache directory
(``$XDG_CACHE_HOME/cachannel-tests/aioca-<version>``, default
``~/.cache/...``), or downloaded once with ``pip download --no-binary`` into
that cache. Without it (offline, no aioca installed) the test is skipped
with the reason.

The suite runs in a subprocess whose ``import aioca`` is CaChannel.aio
(installed by ``CaChannel.aio.use()`` from a stand-in ``aioca`` package put
first on ``PYTHONPATH``), against IOCs it starts itself from its own
``soft_records.db``, on a private CA port and repeater on 127.0.0.1. Left
out: the tests of aioca's private internals (:data:`LEFT_OUT`) and
``test_cli.py`` (``python -m aioca --version``, aioca's distribution).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional

import pytest

HERE = Path(__file__).resolve().parent

# ~1 min a run: the default pass of .ci/run runs it (C backend); on the cffi
# backend it is a long variant, run with
# CACHANNEL_BACKEND=caffi python -m pytest -m stress tests/aio/test_aioca_suite.py
if os.environ.get("CACHANNEL_BACKEND", "").strip().lower() == "caffi":
    pytestmark = pytest.mark.stress

#: aioca tests not run, and why: each one exercises aioca's private internals
LEFT_OUT: Dict[str, str] = {
    "test_subscription": "monkeypatches aioca._catools (aioca's own libca bindings and "
                         "conversion) and reads Subscription._Subscription__future",
    "test_value_event_raises": "tests aioca._catools.ValueEvent, a private helper class",
    "test_get_non_existent_pvs_no_throw": "fakes a connection by calling "
                                          "aioca._catools.get_channel(...).on_ca_connect_",
    "test_closing_event_loop": "expects the unraisable 'Event loop is closed' error that "
                               "aioca's libca-thread callback raises after the loop closed, "
                               "and reads the queue pending_values; CaChannel.aio drops "
                               "events for a closed loop without an error",
}

#: the stand-in ``aioca`` package: importing it installs CaChannel.aio in its place
SHIM = '''"""Stand-in for aioca (aioca-suite run): CaChannel.aio, installed by use()."""
import sys
import types

del sys.modules["aioca"]  # this stand-in; use() refuses any other aioca module
from CaChannel import aio  # noqa: E402

aio.use()
# aioca's test module imports its private _catools at the top; the tests that
# use it are left out, an empty module lets the rest import
_private = types.ModuleType("aioca._catools")
sys.modules["aioca._catools"] = sys.modules["CaChannel.aio._catools"] = _private
'''


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cachannel-tests"


def _extract_tests(sdist: Path, dest: Path) -> None:
    """Unpack only ``<top>/tests/*`` of an sdist into ``dest/tests``."""
    tmp = Path(tempfile.mkdtemp(dir=str(dest.parent), prefix=dest.name + ".part-"))
    try:
        with tarfile.open(sdist) as tar:
            members = []
            for m in tar.getmembers():
                parts = Path(m.name).parts
                if len(parts) >= 3 and parts[1] == "tests" and m.isfile() and ".." not in parts:
                    m.name = str(Path(*parts[1:]))
                    members.append(m)
            if not members:
                raise RuntimeError("%s holds no tests/ directory" % sdist)
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=members, **kwargs)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def suite_dir() -> Path:
    """A directory holding aioca's ``tests/``; ``pytest.skip`` with the reason if none."""
    given = os.environ.get("CACHANNEL_AIOCA_SUITE")
    if given:
        path = Path(given)
        if path.is_dir() and (path / "tests" / "test_aioca.py").is_file():
            return path
        if path.is_file() and path.name.endswith(".tar.gz"):
            dest = _cache_root() / ("from-" + path.name[:-len(".tar.gz")])
            if not (dest / "tests" / "test_aioca.py").is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                _extract_tests(path, dest)
            return dest
        pytest.fail("CACHANNEL_AIOCA_SUITE=%s is neither a directory with tests/test_aioca.py "
                    "nor an aioca sdist" % given)
    try:
        from importlib.metadata import PackageNotFoundError, version
        aioca_version = version("aioca")
    except PackageNotFoundError:
        pytest.skip("aioca is not installed (the test extra installs it; its version picks "
                    "the suite)")
    dest = _cache_root() / ("aioca-" + aioca_version)
    if (dest / "tests" / "test_aioca.py").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--dest", tmp, "aioca==" + aioca_version]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip("cannot download the aioca %s sdist for its test suite: %s"
                        % (aioca_version, exc))
        sdists = sorted(Path(tmp).glob("aioca-*.tar.gz"))
        if proc.returncode != 0 or not sdists:
            pytest.skip("cannot download the aioca %s sdist for its test suite (offline?): %s"
                        % (aioca_version, (proc.stderr or proc.stdout).strip()[-300:]))
        _extract_tests(sdists[0], dest)
    return dest


def _start_repeater(env: Dict[str, str]) -> subprocess.Popen:
    sys.path.insert(0, str(HERE.parent / "reliability"))
    try:
        from restart_worker import start_repeater
    finally:
        sys.path.pop(0)
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = env["PATH"]
    try:
        return start_repeater(int(env["EPICS_CA_REPEATER_PORT"]))
    finally:
        os.environ["PATH"] = old


def run_suite(suite: Path, workdir: Path, extra_args: Optional[List[str]] = None,
              junit: str = "junit.xml", tests: Optional[List[str]] = None
              ) -> subprocess.CompletedProcess:
    """Run aioca's ``tests`` (default: all of test_aioca.py) in a subprocess.

    The JUnit XML goes to ``workdir/<junit>``.
    """
    from CaChannel.testing import IOC, free_port
    shim = workdir / "shim" / "aioca"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "__init__.py").write_text(SHIM)
    db = suite / "tests" / "soft_records.db"
    # loopback only, a private CA server port (the suite starts its IOCs with
    # this environment) and a private repeater
    env = IOC([db], macros="P=AIOCA").server_env()
    env["EPICS_CA_REPEATER_PORT"] = str(free_port())
    env["PATH"] = sysconfig.get_path("scripts") + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(shim.parent)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    cmd = [sys.executable, "-m", "pytest"] + (tests or ["tests/test_aioca.py"]) + [
           "-p", "no:cacheprovider",
           "-o", "addopts=", "-o", "asyncio_default_fixture_loop_scope=function",
           "--timeout=120", "-q", "-rfE", "--tb=short",
           "--junitxml", str(workdir / junit)]
    for name in LEFT_OUT:
        cmd += ["--deselect", "tests/test_aioca.py::" + name]
    cmd += extra_args or []
    repeater = _start_repeater(env)
    try:
        return subprocess.run(cmd, cwd=str(suite), env=env, capture_output=True, text=True,
                              timeout=1500)
    finally:
        repeater.kill()
        repeater.wait(10)


def outcomes(junit: Path) -> Dict[str, str]:
    """test name -> 'passed', 'failed', 'error' or 'skipped', from the JUnit XML."""
    result = {}
    for case in ET.parse(str(junit)).getroot().iter("testcase"):
        state = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                state = {"failure": "failed"}.get(child.tag, child.tag)
        result[case.get("name")] = state
    return result


def test_aioca_suite_on_cachannel(tmp_path):
    pytest.importorskip("pytest_asyncio", reason="aioca's suite needs pytest-asyncio")
    suite = suite_dir()
    proc = run_suite(suite, tmp_path)
    junit = tmp_path / "junit.xml"
    assert junit.is_file(), "aioca's suite did not run:\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
    results = outcomes(junit)
    bad = sorted(name for name, state in results.items() if state in ("failed", "error"))
    first = proc.stdout[-6000:]
    for attempt in (1, 2):
        # aioca's tests time callbacks with sleeps of 0.1-0.5 s: on a loaded machine one
        # can miss; a test that fails in the full run and in two re-runs of the failed
        # ones is a real failure
        if not bad:
            break
        name = "rerun%d.xml" % attempt
        proc = run_suite(suite, tmp_path, junit=name,
                         tests=["tests/test_aioca.py::" + n for n in bad])
        again = outcomes(tmp_path / name) if (tmp_path / name).is_file() else {}
        results.update(again)
        bad = [n for n in bad if again.get(n) != "passed"]
    assert not bad, "aioca tests failing on CaChannel.aio (also when re-run): %s\n%s\n%s" % (
        ", ".join(bad), first, proc.stdout[-6000:])
    passed = [name for name, state in results.items() if state == "passed"]
    # the suite of aioca 2.1 has 33 tests, 4 left out; a much smaller count means
    # the suite changed shape or did not really run
    assert len(passed) >= 20, results
    assert not set(LEFT_OUT) & set(results), "left-out tests ran"


if __name__ == "__main__":  # run by hand: python tests/aio/test_aioca_suite.py [pytest args]
    with tempfile.TemporaryDirectory() as tmp:
        done = run_suite(suite_dir(), Path(tmp), sys.argv[1:])
        print(done.stdout[-20000:], done.stderr[-5000:])
        print(outcomes(Path(tmp) / "junit.xml"))
