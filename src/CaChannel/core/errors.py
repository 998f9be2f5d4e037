"""Errors of the channel core, shared by every face.

:class:`CaChannelException` is the one exception type for a Channel Access
failure (it keeps its 3.x home, ``CaChannel.CaChannelException``);
:func:`report_callback_error` is how every face reports an exception raised
by a user callback that libca's thread (or a delivery thread) called.
"""
from __future__ import annotations

import sys
import traceback
from typing import Optional

from .. import ca

__all__ = ["CaChannelException", "check", "report_callback_error"]


class CaChannelException(Exception):
    """A Channel Access failure, carrying the ECA status code.

    ``exc.status`` (also ``int(exc)`` / ``operator.index(exc)``) is the ECA code
    and ``exc.args == (status,)``. ``str(exc)`` is ``ca.message(status)``, the
    text of the CA library, as in CaChannel 3.x.

    Decision (extension): an optional ``detail`` text (keyword or second
    argument) tells what failed, e.g. which PV a refused write was aimed at. It
    is kept in ``exc.detail``, not in ``args``; when present ``str(exc)`` is
    ``"<ca.message(status)>: <detail>"`` -- it still starts with the CA message.

    >>> e = CaChannelException(ca.ECA_TIMEOUT)
    >>> print(e)
    User specified timeout on IO operation expired
    >>> int(e), e.status, e.args
    (80, 80, (80,))
    >>> str(CaChannelException(ca.ECA_NOWTACCESS, "put to 'x'"))
    "Write access denied: put to 'x'"
    """

    def __init__(self, status: int, detail: Optional[str] = None) -> None:
        super().__init__(status)
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        try:
            text = ca.message(int(self.status))
        except Exception:
            text = "CA status %r" % (self.status,)
        if self.detail:
            return "%s: %s" % (text, self.detail)
        return text

    def __int__(self) -> int:
        return int(self.status)

    def __index__(self) -> int:
        return int(self.status)

    def __reduce__(self):
        return (type(self), (self.status, self.detail))


def check(status: int, detail: Optional[str] = None) -> None:
    """Raise :class:`CaChannelException` unless ``status`` is ``ECA_NORMAL``."""
    if status != ca.ECA_NORMAL:
        raise CaChannelException(status, detail)


def report_callback_error(what: str) -> None:
    """Print the traceback of the exception a user callback raised (and carry on)."""
    try:
        sys.stderr.write("CaChannel: exception in %s callback (ignored):\n" % what)
        traceback.print_exc()
    except Exception:  # pragma: no cover - stderr gone at shutdown
        pass
