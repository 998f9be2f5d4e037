"""The Sphinx API reference builds without a single warning (-W)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest


# backend independent: the default pass runs it, the caffi pass skips it
pytestmark = pytest.mark.once

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_sphinx_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="sphinx is not installed (pip install '.[docs]')")
    env = dict(os.environ)  # the same backend as this run: its docstrings are documented
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, "sphinx-build -W failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    for page in ("index", "ca", "channel", "util", "epicspv", "testing", "cli", "demo"):
        assert (tmp_path / "html" / (page + ".html")).is_file(), page
    # the architecture notes (Markdown, for GitHub) are copied next to the pages
    assert (tmp_path / "html" / "architecture.md").is_file()
    assert 'href="architecture.md"' in (tmp_path / "html" / "index.html").read_text()
    ca_page = (tmp_path / "html" / "ca.html").read_text()
    assert 'id="CaChannel.ca.create_channel"' in ca_page
