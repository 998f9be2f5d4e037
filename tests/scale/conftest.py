"""IOCs for the scale tests: NIOC soft IOCs, each with NPER static ``ao`` records
``sc:s:K:I`` (VAL = K*100000 + I, what the tests check values against) and NPER
counting ``calc`` records ``sc:c:K:I`` (``CALC "VAL+1"``; a lost update shows as a
skipped value).

The default size is small (2 x 5,000, ``SCAN "1 second"``: 10,000 updates/s offered);
tests marked ``stress`` use 4 x 25,000 (``SCAN "10 second"``: the same 10,000 updates/s,
in bursts of 25,000 per IOC).
Each test runs its client in a subprocess (tests/scale/scale_worker.py) whose
CA environment points at these IOCs only (the session IOC's environment is
not inherited), with the backend the test asks for.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from CaChannel.testing import IOC

HERE = Path(__file__).resolve().parent
WORKER = HERE / "scale_worker.py"
SMALL = (2, 5000, 1)    # IOCs, records of each kind per IOC, scan period (s)
BIG = (4, 25000, 10)


def write_db(path: Path, k: int, nper: int, scan: str) -> None:
    with open(path, "w") as f:
        for i in range(nper):
            f.write('record(ao, "sc:s:%d:%d") {\n  field(VAL, "%d")\n}\n' % (k, i, k * 100000 + i))
            f.write('record(calc, "sc:c:%d:%d") {\n  field(SCAN, "%s")\n  field(CALC, "VAL+1")\n}\n'
                    % (k, i, scan))


class ScaleWorld:
    """The running IOCs and a way to run the worker against them."""

    def __init__(self, nioc: int, nper: int, period: float, iocs: List[IOC]) -> None:
        self.nioc, self.nper, self.iocs = nioc, nper, iocs
        #: scan period (s) of the counting records
        self.period = period

    def env(self, backend: str) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("EPICS_CA_", "EPICS_CAS_", "CACHANNEL_"))}
        env.update({
            "EPICS_CA_ADDR_LIST": " ".join("127.0.0.1:%d" % ioc.port for ioc in self.iocs),
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_MAX_ARRAY_BYTES": "100000000",
            "PYTHONUNBUFFERED": "1",
        })
        if backend == "caffi":
            env["CACHANNEL_BACKEND"] = "caffi"
        return env

    def run(self, backend: str, mode: str, limit: float, **args: Any) -> Dict[str, Any]:
        """Run the worker; returns its JSON plus ``returncode``, ``stderr``,
        ``exit_s`` (process end - the worker's ``exit_start``, if it gave one).
        Fails the test (with the worker's stderr) if it does not finish in time."""
        args.setdefault("nioc", self.nioc)
        args.setdefault("nper", self.nper)
        with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            proc = subprocess.Popen([sys.executable, str(WORKER), mode, json.dumps(args)],
                                    stdout=fout, stderr=ferr, stdin=subprocess.DEVNULL,
                                    env=self.env(backend))
            try:
                proc.wait(limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                ferr.seek(0)
                fout.seek(0)
                pytest.fail("worker %s did not finish within %.0f s\nstdout: %s\nstderr: %s" % (
                    mode, limit, fout.read().decode(errors="replace")[-2000:],
                    ferr.read().decode(errors="replace")[-3000:]))
            t_end = time.time()
            fout.seek(0)
            ferr.seek(0)
            out = fout.read().decode(errors="replace")
            err = ferr.read().decode(errors="replace")
        lines = [ln for ln in out.splitlines() if ln.strip()]
        try:
            res = json.loads(lines[-1])
        except (IndexError, ValueError):
            pytest.fail("worker %s gave no result (exit %s)\nstdout: %s\nstderr: %s"
                        % (mode, proc.returncode, out[-2000:], err[-3000:]))
        res["returncode"] = proc.returncode
        res["stderr"] = err
        if "exit_start" in res:
            res["exit_s"] = t_end - res["exit_start"]
        return res


def _world(nioc: int, nper: int, period: int) -> Iterator[ScaleWorld]:
    tmp = Path(tempfile.mkdtemp(prefix="cachannel-scale-test-"))
    iocs: List[IOC] = []
    try:
        for k in range(nioc):
            db = tmp / ("scale%d.db" % k)
            write_db(db, k, nper, "%d second" % period)
            iocs.append(IOC([db], ready_pv="sc:s:%d:0" % k).start(timeout=120))
        yield ScaleWorld(nioc, nper, period, iocs)
    finally:
        for ioc in iocs:
            ioc.stop()
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()


@pytest.fixture(scope="session")
def scale_world() -> Iterator[ScaleWorld]:
    """2 IOCs x 5,000 static + 5,000 counting records (1 s scan)."""
    yield from _world(*SMALL)


@pytest.fixture(scope="session")
def scale_world_big() -> Iterator[ScaleWorld]:
    """4 IOCs x 25,000 static + 25,000 counting records (10 s scan; stress tests)."""
    yield from _world(*BIG)


@pytest.fixture(scope="session")
def backend() -> str:
    """The backend of this test session (``CACHANNEL_BACKEND``), used by the workers too."""
    from CaChannel import ca
    return ca.backend
