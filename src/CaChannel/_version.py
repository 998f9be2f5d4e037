"""Single source of the package version (read by pyproject and at run time)."""
__version__ = "4.0.0.dev0"
version_info = tuple(int(p) if p.isdigit() else p for p in __version__.split("."))
