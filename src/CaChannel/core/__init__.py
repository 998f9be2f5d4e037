"""The channel core: one CA context and one channel per (name, priority) under every face.

Every face of CaChannel -- the 3.x ``CaChannel`` class, ``util``, ``PV``,
``aio``, ``monitor``, ``areadetector``, the ophyd layer -- gets its channels
here and nowhere else:

* :mod:`.context` -- the process's preemptive context: per-thread attach,
  ``destroy_context`` and fork handling, exit hooks;
* :mod:`.channel` -- :class:`Channel`, one per ``(name, priority)`` in one
  cache, with connection/access listeners, waits, the request helpers every
  face calls, and one release policy;
* :mod:`.checks` -- the argument rules faces share (timeouts, counts,
  request types, callbacks, names);
* :mod:`.errors` -- :class:`CaChannelException` and callback error reports.

>>> from CaChannel import core, util, PV
>>> ch = core.acquire('catest')
>>> ch.wait_connected(3)
True
>>> ch.release()
"""
from . import checks, context
from .channel import (Channel, WeakRelay, acquire, acquire_many, channels, close_idle, release_many,
                      wait_all)
from .errors import CaChannelException, check, report_callback_error

__all__ = ["checks", "context", "Channel", "WeakRelay", "acquire", "acquire_many", "release_many", "wait_all", "close_idle",
           "channels", "CaChannelException", "check", "report_callback_error"]
