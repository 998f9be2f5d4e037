"""Reliability tests: in-process tests share the session IOC and one
preemptive context (as CaChannel users have); tests needing their own IOCs
run a worker subprocess (libca reads EPICS_CA_ADDR_LIST once per context)."""
from __future__ import annotations

import pytest

from CaChannel import ca


@pytest.fixture(scope="session", autouse=True)
def reliability_context(softioc):
    assert softioc is not None, "the session IOC is not configured (cachannel_ioc_db)"
    status = ca.create_context(True)
    assert status == ca.ECA_NORMAL, status
    yield ca.current_context()
