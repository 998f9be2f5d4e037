"""Verdicts of the faces battery (no CA import: the worker subprocesses use it too).

Every case of ``test_faces_bad_input.py`` / ``test_faces_faults.py`` names
what it expects and gets one verdict:

* ``ok`` -- it raised the expected exception type with a message matching
  the expected pattern, or returned what was expected, in time;
* ``crash`` -- the (worker) process died (signal, fatal error);
* ``hang`` -- it did not return within its bound;
* ``unclear-error`` -- it raised, but another type or a message that does
  not say what was wrong;
* ``wrong`` -- it returned where it should have raised, or returned a wrong
  value.

The table of (case, face, verdict) is printed at the end of each module
(and appended to ``$CACHANNEL_BATTERY_TABLE`` if set).
"""
from __future__ import annotations

import os
import re
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

VERDICTS = ("ok", "crash", "hang", "unclear-error", "wrong")


def raises(exc: type, pattern: str) -> Tuple[str, Any, str]:
    """Expect ``exc`` (exactly that type) with a message matching ``pattern``."""
    return ("raises", exc.__name__, pattern)


def returns(check: Callable[[Any], bool], what: str) -> Tuple[str, Any, str]:
    """Expect a return value for which ``check(value)`` is true (``what`` says which)."""
    return ("returns", check, what)


def judge(expected: Tuple[str, Any, Any], outcome: Dict[str, Any]) -> Tuple[str, str]:
    """(verdict, detail) of ``outcome`` = {"kind": "raised"/"returned"/"hang"/"crash", ...}."""
    kind = outcome["kind"]
    if kind in ("hang", "crash"):
        return kind, outcome.get("detail", "")
    want = expected[0]
    if kind == "raised":
        got = "%s: %s" % (outcome["type"], outcome["message"])
        if want != "raises":
            return "wrong", "expected a return (%s), got %s" % (expected[2], got)
        if outcome["type"] != expected[1] or not re.search(expected[2], outcome["message"]):
            return "unclear-error", "expected %s /%s/, got %s" % (expected[1], expected[2], got)
        return "ok", got
    value = outcome.get("value")
    if want == "raises":
        return "wrong", "expected %s /%s/, returned %r" % (expected[1], expected[2], value)
    try:
        good = expected[1](value)
    except Exception as exc:  # a check that cannot even look at the value
        good = False
        value = "%r (check failed: %s)" % (value, exc)
    return ("ok" if good else "wrong"), "returned %r (want %s)" % (value, expected[2])


def run_bounded(call: Callable[[], Any], bound: float) -> Dict[str, Any]:
    """Run ``call()`` in a daemon thread; its outcome, or ``hang`` after ``bound`` s."""
    box: Dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
            box["kind"] = "returned"
        except BaseException as exc:  # noqa: B902 - the verdict wants every kind
            box.update(kind="raised", type=type(exc).__name__, message=str(exc))

    start = time.monotonic()
    thread = threading.Thread(target=target, name="battery-case", daemon=True)
    thread.start()
    thread.join(bound)
    if thread.is_alive():
        return {"kind": "hang", "detail": "no return within %.1f s" % bound}
    box["seconds"] = time.monotonic() - start
    return box


class Table:
    """Rows of (case, face, verdict, detail), printed as a table."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: List[Tuple[str, str, str, str]] = []

    def add(self, case: str, face: str, verdict: str, detail: str = "") -> None:
        self.rows.append((case, face, verdict, detail))

    def text(self) -> str:
        if not self.rows:
            return ""
        w1 = max(len(r[0]) for r in self.rows)
        w2 = max(len(r[1]) for r in self.rows)
        lines = ["%s (%s backend)" % (self.title, os.environ.get("CACHANNEL_BACKEND") or "C"),
                 "%-*s  %-*s  %s" % (w1, "case", w2, "face", "verdict")]
        for case, face, verdict, detail in self.rows:
            lines.append("%-*s  %-*s  %s" % (w1, case, w2, face, verdict))
        counts: Dict[str, int] = {}
        for row in self.rows:
            counts[row[2]] = counts.get(row[2], 0) + 1
        lines.append("total %d: %s" % (len(self.rows), ", ".join(
            "%s %d" % (v, counts[v]) for v in VERDICTS + ("xfail",) if v in counts)))
        return "\n".join(lines)

    def emit(self, config: Any) -> None:
        text = self.text()
        if not text:
            return
        path: Optional[str] = os.environ.get("CACHANNEL_BATTERY_TABLE")
        if path:
            with open(path, "a") as f:
                f.write(text + "\n\n")
        capman = config.pluginmanager.getplugin("capturemanager")
        if capman is None:
            print("\n" + text)
            return
        with capman.global_and_fixture_disabled():
            print("\n" + text, flush=True)
