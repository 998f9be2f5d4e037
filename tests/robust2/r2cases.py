"""Run a table of cases in a worker subprocess, one JSON line per case.

A case that aborts or hangs the worker must fail its own test, not the
test run: the worker runs every case in one process (cheap), and the cases
it did not report (the process died or timed out at one of them) are run
again alone, each in its own process, so that the one that kills the
process is named.

Worker side: :func:`main` with a dict ``name -> function``; each function
returns a JSON-able result or raises (reported as ``{"exc": ..., "msg": ...}``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from typing import Callable, Dict, Iterable, List

MARK = "R2CASE "
HERE = os.path.dirname(os.path.abspath(__file__))


def _run(worker: str, cases: List[str], timeout: float) -> tuple:
    cmd = [sys.executable, os.path.join(HERE, worker)] + cases
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, PYTHONFAULTHANDLER="1"))
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        def text(b):
            return b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
        out, err, rc = text(exc.stdout), text(exc.stderr), "timeout after %ss" % timeout
    results = {}
    for line in out.splitlines():
        if line.startswith(MARK):
            item = json.loads(line[len(MARK):])
            results[item.pop("case")] = item
    return results, rc, err


def run_cases(worker: str, cases: Iterable[str], timeout: float = 60.0,
              alone_timeout: float = 20.0) -> Dict[str, dict]:
    """``case -> result dict`` for every case; a case that killed the worker
    maps to ``{"died": returncode, "stderr": tail}``. ``"__stderr__"`` holds
    the first worker's stderr (``{"text": ...}``)."""
    cases = list(cases)
    results, rc, err = _run(worker, cases, timeout)
    results["__stderr__"] = {"text": err}
    for case in cases:
        if case in results:
            continue
        alone, rc, err = _run(worker, [case], alone_timeout)
        results[case] = alone.get(case) or {"died": rc, "stderr": err[-2000:]}
    return results


def result_of(func: Callable[[], object]) -> dict:
    try:
        return {"ret": func()}
    except Exception as exc:
        return {"exc": type(exc).__name__, "msg": str(exc),
                "status": int(exc.status) if hasattr(exc, "status") else None}


def main(table: Dict[str, Callable[[], object]], argv: List[str]) -> None:
    """Worker entry point: run the named cases (all if none) in order."""
    for name in argv or list(table):
        try:
            res = result_of(table[name])
        except SystemExit:
            raise   # a forked child of a case ends here
        except BaseException:  # pragma: no cover - reported, then the next case
            res = {"exc": "BaseException", "msg": traceback.format_exc()}
        sys.stdout.write(MARK + json.dumps(dict(res, case=name), default=repr) + "\n")
        sys.stdout.flush()
