"""A private IOC for tests/core (module scope), so that ``casr 2`` lists only
the channels of the client under test."""
from __future__ import annotations

import pytest

from coretools import TEST_DB
from CaChannel.testing import IOC


@pytest.fixture(scope="module")
def core_ioc():
    ioc = IOC([TEST_DB])
    ioc.start()
    try:
        yield ioc
    finally:
        ioc.stop()
