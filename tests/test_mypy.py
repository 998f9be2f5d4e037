"""mypy over the package and over the README's Python examples.

The configuration is ``[tool.mypy]`` in pyproject.toml: the modules in its
allow-list (``CaChannel``, ``ca`` with its stub ``ca.pyi``, ``_common``,
``util``, ``_channel``) must be clean; the other modules are analysed for the
types they provide but their own errors are not reported until they join the
list. The README's ```python blocks are type-checked as user code against the
stub; a block preceded by the line ``<!-- mypy: skip -->`` is left out.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "CaChannel"
README = ROOT / "README.md"

pytestmark = [pytest.mark.once,   # backend independent: the caffi pass skips it
              pytest.mark.skipif(not (PACKAGE / "ca.pyi").exists(),
                                 reason="needs the source tree (src/CaChannel)")]


def _mypy(*args: str, cache: str = "default") -> Tuple[int, str]:
    """Run mypy from the repository root. Runs with different options get
    their own cache (mypy rebuilds a cache made with other options)."""
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.fail("mypy is missing: install the test extra (pip install -e '.[test]')")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--no-error-summary", "--hide-error-context",
         "--cache-dir", str(ROOT / ".mypy_cache" / cache), *args],
        cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def readme_python_blocks(text: str) -> List[Tuple[int, str]]:
    """[(line number, code)] of the ```python blocks, skip-marked ones left out."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            skip = i > 0 and lines[i - 1].strip() == "<!-- mypy: skip -->"
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            if not skip:
                blocks.append((start + 1, "\n".join(lines[start:j]) + "\n"))
            i = j
        i += 1
    return blocks


def test_package_is_type_clean():
    rc, out = _mypy(str(PACKAGE))
    assert rc == 0, "mypy on src/CaChannel:\n" + out


def test_ca_py_itself_is_type_clean():
    """ca.py is hidden behind ca.pyi in the package run; check its own code."""
    rc, out = _mypy("--follow-imports=silent", str(PACKAGE / "ca.py"), cache="ca_py")
    assert rc == 0, "mypy on ca.py:\n" + out


def test_readme_examples_type_check(tmp_path):
    blocks = readme_python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "no ```python block found in README.md"
    files = []
    for line, code in blocks:
        path = tmp_path / ("readme_line_%d.py" % line)
        path.write_text(code, encoding="utf-8")
        files.append(str(path))
    rc, out = _mypy(*files)
    # name the README line of each error instead of the temporary file
    out = re.sub(r"\S*readme_line_(\d+)\.py:(\d+)",
                 lambda m: "README.md:%d" % (int(m.group(1)) + int(m.group(2)) - 1), out)
    assert rc == 0, "mypy on the README examples:\n" + out


def test_readme_extraction_reads_blocks_and_skip_marks():
    text = "x\n```python\na = 1\n```\n<!-- mypy: skip -->\n```python\nb: int = 'no'\n```\n"
    assert readme_python_blocks(text) == [(3, "a = 1\n")]


def test_mypy_reports_an_error_in_readme_style_code(tmp_path):
    """The README check can fail: a wrong call of the low-level API is caught."""
    bad = tmp_path / "bad_example.py"
    bad.write_text("from CaChannel import ca\nca.pend_io('2')\nca.get(1, chtypo=5)\n",
                   encoding="utf-8")
    rc, out = _mypy(str(bad))
    assert rc != 0
    assert 'Argument 1 to "pend_io" has incompatible type "str"' in out, out
    assert 'Unexpected keyword argument "chtypo"' in out, out
