"""Helpers of the CaChannel.aio tests."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable


def arun(coro: Awaitable[Any], timeout: float = 30.0) -> Any:
    """Run ``coro`` in a fresh loop (``asyncio.run``), failing after ``timeout`` s."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``pred`` in the loop until true; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        await asyncio.sleep(0.01)
