"""Falsy callables and falsy values (issue 10, item 4): shared recorders and context."""
from __future__ import annotations

import pytest

from CaChannel import ca


@pytest.fixture(scope="session", autouse=True)
def falsy_context(softioc):
    """The preemptive context of the test thread, as CaChannel users have."""
    assert softioc is not None, "the session IOC is not configured (cachannel_ioc_db)"
    status = ca.create_context(True)
    assert status == ca.ECA_NORMAL, status
    yield ca.current_context()


@pytest.fixture(params=["len0", "bool_false"])
def recorder_cls(request):
    """A class of callable recorders that test false when installed."""
    from falsy import AlwaysFalseRecorder, CallRecorder
    return {"len0": CallRecorder, "bool_false": AlwaysFalseRecorder}[request.param]
