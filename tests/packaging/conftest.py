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

import concurrent.futures
import glob
import os
import sys
import tarfile
import types
from pathlib import Path

import pytest

from pkgtools import Venv, copy_source_tree, epics_base_tree, pyproject, run


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory):
    """``fresh_venv(name) -> Venv``: a new empty venv (pip only)."""
    def make(name: str) -> Venv:
        return Venv(tmp_path_factory.mktemp("venv-" + name) / "venv")
    return make


def _build_dists(work: Path):
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


def _make_builder(path: Path):
    venv = Venv(path)
    reqs = pyproject()["build-system"]["requires"]
    venv.pip("install", "-q", *reqs, "cffi>=1.15", timeout=900)
    return venv


@pytest.fixture(scope="session")
def _prefetch(tmp_path_factory):
    """Start the two slow, independent preparations side by side (mostly I/O)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    futures = {
        "dists": pool.submit(_build_dists, tmp_path_factory.mktemp("dists")),
        "builder": pool.submit(_make_builder, tmp_path_factory.mktemp("venv-builder") / "venv"),
    }
    yield futures
    pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def dists(_prefetch):
    """One ``python -m build`` of a copy of the tree: sdist, and wheel built from it."""
    return _prefetch["dists"].result()


@pytest.fixture(scope="session")
def unpacked_sdist(dists, tmp_path_factory):
    """The sdist, extracted (its top directory)."""
    dest = tmp_path_factory.mktemp("sdist")
    with tarfile.open(dists.sdist) as tar:
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return dest / dists.sdist_top


@pytest.fixture(scope="session")
def builder(_prefetch):
    """A fresh venv holding pyproject's build requirements (+ cffi, for running)."""
    return _prefetch["builder"].result()


@pytest.fixture(scope="session")
def site_base(builder, tmp_path_factory):
    """An installed-EPICS-base-shaped tree (see pkgtools.epics_base_tree)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the site-base tree is assembled for Linux/gcc")
    ecl = run([builder.python, "-c", "import epicscorelibs, os;"
               "print(os.path.dirname(epicscorelibs.__file__))"]).stdout.strip()
    return epics_base_tree(tmp_path_factory.mktemp("site") / "epics-base", Path(ecl))


def pytest_configure(config):
    config.addinivalue_line("markers", "rpm: builds an RPM with rpmbuild (skipped without it)")


_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Run once per CI run: skip in the ``CACHANNEL_BACKEND=caffi`` pass.

    Every test here builds its own environments and picks the backend itself
    (the variable is removed from what the builds and installs see), so a
    second pass would repeat minutes of identical work.
    ``CACHANNEL_PACKAGING_TESTS=1`` runs them anyway.
    """
    if os.environ.get("CACHANNEL_BACKEND", "").strip().lower() != "caffi":
        return
    if os.environ.get("CACHANNEL_PACKAGING_TESTS", "") == "1":
        return
    skip = pytest.mark.skip(reason="packaging tests are backend independent and already ran "
                                   "in the default pass (CACHANNEL_PACKAGING_TESTS=1 forces them)")
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)
