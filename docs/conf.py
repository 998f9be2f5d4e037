"""Sphinx configuration of the CaChannel API reference (``sphinx-build -W -b html docs out``)."""
import os
import sys

try:
    import CaChannel  # the installed package: its backends are built/mapped
except ImportError:
    # a checkout that is not pip-installed: document the source tree
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src")))
    import CaChannel  # noqa: E402

project = "CaChannel"
author = "CaChannel developers"
copyright = "CaChannel developers"
release = CaChannel.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"
# libca must not be needed to read docstrings, but importing CaChannel.ca loads
# it; no CA context is created by the build
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []
# docs/architecture.md is written for GitHub (no Markdown parser here): it is
# copied next to the HTML pages, where index.rst links to it
html_extra_path = ["architecture.md"]
