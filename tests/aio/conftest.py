"""Fixtures for the CaChannel.aio tests (run against the session IOC, tests/test.db)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _session_ioc(softioc):
    assert softioc is not None, "the session IOC is not configured (cachannel_ioc_db)"
    return softioc
