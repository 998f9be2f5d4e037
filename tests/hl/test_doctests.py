"""Run the docstring examples of the high-level modules against the test IOC."""
import doctest
import time

import pytest

import CaChannel
from CaChannel import ca
import CaChannel._channel as _channel
import CaChannel.util as util
import CaChannel.epicsPV as epicsPV_mod
import CaChannel.monitor as monitor_mod

MODULES = [_channel, util, epicsPV_mod, monitor_mod]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_module_doctests(module):
    globs = dict(vars(module))
    globs.update({"ca": ca, "CaChannel": CaChannel.CaChannel, "CaChannelException": CaChannel.CaChannelException})
    globs.update({name: getattr(util, name) for name in util.__all__})
    globs["time"] = time
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(module, module.__name__, globs=globs)
    assert tests
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "%d doctest example(s) failed in %s" % (result.failed, module.__name__)
