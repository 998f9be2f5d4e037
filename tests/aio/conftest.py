"""Fixtures for the CaChannel.aio tests (run against the session IOC, tests/test.db)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _shared_context(circuit_anchor):
    """Make the test thread's context (tests/conftest.py) the one CaChannel shares.

    Otherwise the first test that uses CA from another thread would create the
    shared context there, and this thread would have to leave its own.
    """
    from CaChannel import core
    core.context.attach()


@pytest.fixture(autouse=True)
def _session_ioc(softioc):
    assert softioc is not None, "the session IOC is not configured (cachannel_ioc_db)"
    return softioc
