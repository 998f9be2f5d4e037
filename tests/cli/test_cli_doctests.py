"""Docstring examples of the modules owned by the CLI/demo work.

The high-level modules (_channel, util, epicsPV) are covered by
tests/hl/test_doctests.py; this adds CaChannel.cli and CaChannel.demo.
"""
import doctest

import pytest

import CaChannel.cli as cli
import CaChannel.demo as demo


@pytest.mark.parametrize("module", [cli, demo], ids=lambda m: m.__name__)
def test_module_doctests(module):
    finder = doctest.DocTestFinder(exclude_empty=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, module.__name__, globs=dict(vars(module))):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "%d doctest example(s) failed in %s" % (result.failed, module.__name__)
    if module is cli:
        assert result.attempted >= 8
