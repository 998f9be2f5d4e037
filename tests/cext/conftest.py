"""Fixtures of the C-extension tests: they drive ``CaChannel._ca`` directly,
whatever backend ``CaChannel.ca`` selected, against the session IOC."""
from __future__ import annotations

import pytest

from cexttools import connect  # noqa: E402


@pytest.fixture(scope="session")
def ca(softioc):
    _ca = pytest.importorskip("CaChannel._ca", reason="the C extension is not built")
    assert softioc is not None, "the session IOC is not configured (cachannel_ioc_db)"
    # NORMAL also when another test package already made the thread's context
    status = _ca.create_context(True)
    assert status == _ca.ECA_NORMAL, status
    return _ca


@pytest.fixture
def chan(ca):
    made = []

    def make(name):
        ch = connect(ca, name)
        made.append(ch)
        return ch
    yield make
    for ch in made:
        ca.clear_channel(ch)
    ca.flush_io()


def pytest_collection_modifyitems(config, items):
    # the long variants only run when asked for with -m stress
    if "stress" in (config.getoption("-m") or ""):
        return
    here = __file__.rsplit("/", 1)[0]
    skip = pytest.mark.skip(reason="long variant: run with -m stress")
    for item in items:
        if "stress" in item.keywords and str(item.fspath).startswith(here):
            item.add_marker(skip)
