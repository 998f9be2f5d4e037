"""Callables whose truth value is False: a callback must be called all the same."""
from __future__ import annotations

import threading
import time
from typing import Any, List, Tuple


class CallRecorder:
    """Records its calls; ``len()`` is the number of calls, so it is falsy until called.

    A natural object to hand over as a callback: ``if callback:`` mistakes it
    for "no callback" (issue 10, item 4).
    """

    def __init__(self) -> None:
        self.calls: List[Tuple[Any, ...]] = []
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self.calls)

    def __call__(self, *args: Any) -> None:
        with self._cond:
            self.calls.append(args)
            self._cond.notify_all()

    def wait(self, n: int = 1, timeout: float = 10.0, what: str = "callback") -> List[Tuple]:
        """The calls once there are ``n``; fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.calls) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: a falsy callable was not called %d time(s) within "
                                         "%g s (got %d)" % (what, n, timeout, len(self.calls)))
                self._cond.wait(left)
            return list(self.calls)

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "callback") -> List[Tuple]:
        """The calls once ``predicate(calls)`` holds; fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.calls):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: not seen within %g s; calls: %r"
                                         % (what, timeout, self.calls[-3:]))
                self._cond.wait(left)
            return list(self.calls)


class AlwaysFalseRecorder(CallRecorder):
    """A recorder whose ``__bool__`` is always False."""

    def __bool__(self) -> bool:
        return False


def make(cls):
    rec = cls()
    assert callable(rec) and not rec, "the recorder must be a falsy callable"
    return rec
