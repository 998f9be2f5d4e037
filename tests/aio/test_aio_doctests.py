"""Run the docstring examples of CaChannel.aio against the test IOC."""
import doctest

import pytest

from CaChannel.aio import _alias, _channels, _monitor, _ops, _values, types

MODULES = [_values, _ops, _monitor, _channels, _alias, types]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_module_doctests(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(module, module.__name__, globs=dict(vars(module)))
    assert tests
    for test in sorted(tests, key=lambda t: t.lineno or 0):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "%d doctest example(s) failed in %s" % (result.failed, module.__name__)


def test_readme_example(capsys):
    """The example of the README's asyncio section runs as shown."""
    import os
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")) as f:
        readme = f.read()
    start = readme.index("<!-- aio-example -->")
    block = readme[readme.index("```python", start) + len("```python"):]
    block = block[:block.index("```")]
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "catest" in out
