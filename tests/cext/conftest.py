"""Fixtures of the C-extension tests: they drive ``CaChannel._ca`` directly,
whatever backend ``CaChannel.ca`` selected, against the session IOC."""
from __future__ import annotations

import pytest

pytest.importorskip("CaChannel._ca", reason="the C extension is not built")

from cexttools import connect  # noqa: E402


@pytest.fixture(scope="session")
def ca(softioc):
    from CaChannel import _ca
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
