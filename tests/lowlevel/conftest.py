"""Fixtures for the low-level ``ca`` tests (run against the session IOC)."""
from __future__ import annotations

import pytest

from CaChannel import ca


@pytest.fixture(scope="session", autouse=True)
def context(softioc):
    """One preemptive context for the test thread, as CaChannel users have."""
    assert softioc is not None, "the session IOC is not configured (cachannel_ioc_db)"
    status = ca.create_context(True)
    assert status == ca.ECA_NORMAL, status
    ctx = ca.current_context()
    yield ctx
