"""Compatibility module: ``import ca`` gives the low-level API of ``CaChannel.ca``."""
from CaChannel.ca import *  # noqa: F401,F403
from CaChannel.ca import __all__  # noqa: F401
