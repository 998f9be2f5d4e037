"""Shared, session-scoped artefacts of the packaging tests.

Everything is built in temporary directories, never in the work tree:

* ``dists``: a copy of the source tree -> ``python -m build`` -> one sdist and
  one wheel (the wheel is built *from the sdist* in build's isolated env, so
  this also proves the sdist builds from scratch);
* ``builder``: a fresh venv with the build requirements of pyproject.toml
  (for the ``--no-build-isolation`` builds: no compiler, EPICS_BASE, RPM);
* ``fresh_venv``: a factory for empty venvs.

pip reuses its cache, so after the first run the registry is hardly touched.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import pytest

from pkgtools import REPO, Venv, copy_source_tree, pyproject, run  # noqa: F401


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory):
    """``fresh_venv(name) -> Venv``: a new empty venv (pip only)."""
    def make(name: str) -> Venv:
        return Venv(tmp_path_factory.mktemp("venv-" + name) / "venv")
    return make


@pytest.fixture(scope="session")
def dists(tmp_path_factory):
    """One ``python -m build`` of a copy of the tree: sdist, and wheel built from it."""
    work = tmp_path_factory.mktemp("dists")
    src = copy_source_tree(work / "src")
    out = work / "out"
    run([sys.executable, "-m", "build", "--outdir", out, src], timeout=900)
    sdists = glob.glob(str(out / "*.tar.gz"))
    wheels = glob.glob(str(out / "*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, os.listdir(out)
    with tarfile.open(sdists[0]) as tar:
        top = tar.getnames()[0].split("/")[0]
    return types.SimpleNamespace(src=src, out=out, sdist=Path(sdists[0]),
                                 wheel=Path(wheels[0]), sdist_top=top)


@pytest.fixture(scope="session")
def unpacked_sdist(dists, tmp_path_factory):
    """The sdist, extracted (its top directory)."""
    dest = tmp_path_factory.mktemp("sdist")
    with tarfile.open(dists.sdist) as tar:
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return dest / dists.sdist_top


@pytest.fixture(scope="session")
def builder(fresh_venv):
    """A fresh venv holding pyproject's build requirements (+ cffi, for running)."""
    venv = fresh_venv("builder")
    reqs = pyproject()["build-system"]["requires"]
    venv.pip("install", "-q", *reqs, "cffi>=1.15", timeout=900)
    return venv


def pytest_configure(config):
    config.addinivalue_line("markers", "rpm: builds an RPM with rpmbuild (skipped without it)")
