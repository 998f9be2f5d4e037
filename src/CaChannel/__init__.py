"""CaChannel: EPICS Channel Access for Python.

``CaChannel.ca`` is the low-level API; ``CaChannel.CaChannel`` the
object-oriented channel class of CaChannel 3.x; ``CaChannel.util`` the
caget/caput/camonitor/cainfo functions.
"""
from ._version import __version__, version_info

#: default of the ``use_numpy`` keyword of every CaChannel read/monitor method,
#: read at call time.
USE_NUMPY = False

from . import ca  # noqa: E402

try:
    from ._channel import CaChannel, CaChannelException  # noqa: E402
except ImportError:  # the high-level class is being built
    pass

__all__ = ["ca", "CaChannel", "CaChannelException"]


def __getattr__(name):
    # PV/get_pv load CaChannel.pv on first use, so that `import CaChannel` stays light
    if name in ("PV", "get_pv"):
        from . import pv as _pv
        return getattr(_pv, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
