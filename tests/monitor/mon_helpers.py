"""Helpers shared by the tests/monitor modules."""
from __future__ import annotations

import time


def wait_for(pred, timeout=10.0, what="condition"):
    """Bounded wait for a counter to reach a value (the updates come from the IOC)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.005)
