"""Let code that imports ``aioca`` run on ``CaChannel.aio``: :func:`use`."""
from __future__ import annotations

import sys

__all__ = ["use"]

_NAMES = ("aioca", "aioca.types")


def use() -> None:
    """Install ``CaChannel.aio`` as the module ``aioca`` (and ``aioca.types``).

    Call it once, before anything imports aioca. From then on
    ``import aioca``, ``from aioca import caget`` and
    ``from aioca.types import AugmentedValue`` anywhere in the process (for
    example in ophyd-async's Channel Access transport) get ``CaChannel.aio``,
    so a program written for aioca runs on CaChannel without changes::

        import CaChannel.aio
        CaChannel.aio.use()           # before ophyd_async.epics is imported

        from ophyd_async.epics.core import epics_signal_rw

    Calling it again is harmless. Raises :class:`RuntimeError` if the real
    aioca is already imported: its channels, subscriptions and context would
    stay in use next to CaChannel's, so the switch would be partial.

    >>> from CaChannel import aio
    >>> aio.use()
    >>> import aioca, aioca.types
    >>> aioca is aio, aioca.types is aio.types
    (True, True)
    """
    from . import types as aio_types
    ours = {"aioca": sys.modules[__package__], "aioca.types": aio_types}
    foreign = sorted(name for name, module in sys.modules.items()
                     if (name == "aioca" or name.startswith("aioca."))
                     and module is not None and module is not ours.get(name))
    if foreign:
        raise RuntimeError(
            "CaChannel.aio.use(): the real aioca is already imported (%s); call use() before "
            "anything imports aioca (e.g. before ophyd_async.epics)" % ", ".join(foreign))
    sys.modules.update(ours)
