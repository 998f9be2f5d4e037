"""Helpers of the packaging tests (venvs, commands, the source copy)."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

try:  # Python >= 3.11
    import tomllib as _toml
except ImportError:  # pragma: no cover - 3.9/3.10
    _toml = pytest.importorskip("tomli", reason="tomli reads pyproject.toml before 3.11")

# variables of the developer's shell that would change what gets built
_BUILD_VARS = ("EPICS_BASE", "EPICS_HOST_ARCH", "CACHANNEL_NO_EXTENSION",
               "CACHANNEL_EXTENSION_REQUIRED", "CACHANNEL_BACKEND", "CC", "LDSHARED",
               "CFLAGS", "PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")


def pyproject():
    with open(REPO / "pyproject.toml", "rb") as f:
        return _toml.load(f)


def clean_env(**extra):
    """os.environ (it holds the session IOC's client env) minus build switches."""
    env = {k: v for k, v in os.environ.items() if k not in _BUILD_VARS}
    env.pop("VIRTUAL_ENV", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_NO_COMPILE"] = "1"  # no .pyc for numpy & co in every venv: seconds each
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(cmd, *, env=None, cwd=None, timeout=600, check=True):
    """Run ``cmd``; on failure (when ``check``) fail the test with its output."""
    proc = subprocess.run([str(c) for c in cmd], env=env if env is not None else clean_env(),
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail("command failed (%d): %s\n--- stdout ---\n%s\n--- stderr ---\n%s"
                    % (proc.returncode, " ".join(map(str, cmd)), proc.stdout[-6000:],
                       proc.stderr[-6000:]), pytrace=False)
    return proc


def copy_source_tree(dest: Path) -> Path:
    """Copy the project (files git knows or would add; not build outputs) to ``dest``."""
    files = None
    if (REPO / ".git").exists() and shutil.which("git"):
        proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                               "--exclude-standard"], cwd=REPO, capture_output=True,
                              timeout=60)
        if proc.returncode == 0:
            files = [f for f in proc.stdout.decode().split("\0") if f]
    if files is None:
        ignore = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                        "*.so", "*.pyc", "venv", ".venv", ".pytest_cache")
        shutil.copytree(REPO, dest, ignore=ignore)
        return dest
    for rel in files:
        src = REPO / rel
        if not src.is_file():  # deleted in the work tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


class Venv:
    """A virtual environment made with ``python -m venv``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        run([sys.executable, "-m", "venv", self.path], timeout=300)
        self.python = self.path / "bin" / "python"
        self.bin = self.path / "bin"

    def pip(self, *args, env=None, check=True, timeout=600):
        return run([self.python, "-m", "pip", *args], env=env, check=check, timeout=timeout)

    def site_packages(self) -> Path:
        out = run([self.python, "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"])
        return Path(out.stdout.strip())

    def env(self, **extra):
        env = clean_env(**extra)
        env["VIRTUAL_ENV"] = str(self.path)
        env["PATH"] = str(self.bin) + os.pathsep + env.get("PATH", "")
        return env


# -- a site EPICS base ---------------------------------------------------------
ARCH = "linux-x86_64"
OS_HEADERS = ("osd*.h", "osiFileName.h", "osiUnistd.h", "epicsAtomicOSD.h", "epicsMath.h")
COMPILER_HEADERS = ("compilerSpecific.h", "epicsAtomicCD.h")


def epics_base_tree(root: Path, ecl_root: Path) -> Path:
    """An installed-EPICS-base-shaped tree built from the epicscorelibs package at ecl_root."""
    libdir = root / "lib" / ARCH
    libdir.mkdir(parents=True)
    for name in ("ca", "Com"):
        # the file named by the soname (lib<name>.so.X.Y...), plus the link-time symlink
        (real,) = [p for p in (ecl_root / "lib").glob("lib%s.so.*" % name)
                   if re.fullmatch(r"lib%s\.so(\.\d+)+" % name, p.name)]
        shutil.copy2(real, libdir / real.name)
        os.symlink(real.name, libdir / ("lib%s.so" % name))
    inc = root / "include"
    shutil.copytree(ecl_root / "include", inc)
    for sub, patterns in ((inc / "os" / "Linux", OS_HEADERS),
                          (inc / "compiler" / "gcc", COMPILER_HEADERS)):
        sub.mkdir(parents=True)
        for header in os.listdir(inc):
            if any(fnmatch.fnmatch(header, p) for p in patterns):
                shutil.move(str(inc / header), str(sub / header))
        assert os.listdir(sub), sub
    return root
