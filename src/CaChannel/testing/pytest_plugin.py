"""pytest plugin: one soft IOC for the whole test session.

Loaded automatically in every pytest session through the ``pytest11`` entry
point ``cachannel``; it does nothing (and imports nothing heavy) unless the
ini option ``cachannel_ioc_db`` is set. Configuration (``pyproject.toml``)::

    [tool.pytest.ini_options]
    cachannel_ioc_db = ["tests/test.db"]    # relative to the rootdir
    cachannel_ioc_acf = "tests/test.acf"    # optional access security file
    cachannel_ioc_macros = ""               # optional, e.g. "P=ca:"

or ``pytest -o cachannel_ioc_db=tests/test.db``. The IOC is started in
``pytest_sessionstart`` (before collection, so doctest modules and anything
imported at collection time already see the environment), its
``client_env()`` is exported into ``os.environ`` (libca reads
``EPICS_CA_ADDR_LIST`` etc. when the first CA context is created), and it is
stopped at session end. The session-scoped autouse fixture ``softioc`` yields
the :class:`CaChannel.testing.IOC` (``None`` when not configured), e.g.::

    def test_cabo(softioc):
        softioc.shell("dbpf cabo 1")

Disable the plugin with ``-p no:cachannel``. Under pytest-xdist each worker
starts its own IOC (on its own port); the controller starts none.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, Optional

import pytest

_IOC_KEY = pytest.StashKey["Any"]()
_ENV_KEY = pytest.StashKey["Dict[str, Optional[str]]"]()


def pytest_addoption(parser: "pytest.Parser") -> None:
    parser.addini("cachannel_ioc_db", type="linelist", default=[],
                  help="CaChannel: EPICS database file(s), relative to the rootdir, "
                       "served by a soft IOC started for the test session")
    parser.addini("cachannel_ioc_acf", type="string", default="",
                  help="CaChannel: access security file for the session IOC")
    parser.addini("cachannel_ioc_macros", type="string", default="",
                  help="CaChannel: macro substitutions for the session IOC databases")


def _is_xdist_controller(config: "pytest.Config") -> bool:
    if hasattr(config, "workerinput"):
        return False
    try:
        return config.getoption("dist", "no") not in (None, "no")
    except ValueError:
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: "pytest.Session") -> None:
    config = session.config
    dbs = [d for d in (config.getini("cachannel_ioc_db") or []) if d.strip()]
    if not dbs or _is_xdist_controller(config):
        return
    from . import IOC  # only now: keep the plugin cheap when unused

    root = config.rootpath
    acf = (config.getini("cachannel_ioc_acf") or "").strip()
    try:
        ioc = IOC([root / d.strip() for d in dbs],
                  macros=(config.getini("cachannel_ioc_macros") or "").strip(),
                  acf=(root / acf) if acf else None)
        ioc.start()
    except Exception as exc:  # report cleanly instead of an INTERNALERROR
        pytest.exit(f"cachannel: could not start the test IOC: {exc}", returncode=3)
    env = ioc.client_env()
    config.stash[_ENV_KEY] = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    config.stash[_IOC_KEY] = ioc


def pytest_report_header(config: "pytest.Config") -> Optional[str]:
    ioc = config.stash.get(_IOC_KEY, None)
    if ioc is None:
        return None
    return f"cachannel: test IOC pid {ioc.pid} on 127.0.0.1:{ioc.port} ({ioc.client_env()})"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: "pytest.Session") -> None:
    config = session.config
    ioc = config.stash.get(_IOC_KEY, None)
    if ioc is None:
        return
    ioc.stop()
    del config.stash[_IOC_KEY]
    for key, value in config.stash.get(_ENV_KEY, {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session", autouse=True)
def softioc(request: "pytest.FixtureRequest") -> Iterator[Any]:
    """The session's :class:`CaChannel.testing.IOC`, or None if not configured."""
    yield request.config.stash.get(_IOC_KEY, None)
