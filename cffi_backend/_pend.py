"""Waiting and flushing in the cffi backend (the twin of ``cext/pend.c``):
``pend_io``, ``pend_event``, ``poll``, ``pend``, ``flush_io``, ``test_io``.
"""
from __future__ import annotations

from CaChannel._common import ECA, to_eca

from ._args import parse_timeout
from ._bindings import lib
from ._decode import PEND_IO, read_mark, read_settle
from ._handles import counted, token_of


@counted
def pend_io(timeout: float) -> ECA:
    """Flush, then wait for callback-less gets and connections (0 = forever)."""
    t = parse_timeout(timeout)
    mark = read_mark(token_of(lib.ca_current_context()), PEND_IO)
    status = lib.ca_pend_io(t)
    if status != ECA.EVDISALLOW:
        # NORMAL or TIMEOUT: libca ended (or abandoned) the context's reads
        # issued before; reads other threads issued meanwhile stay held
        read_settle(mark)
    return to_eca(status)


@counted
def pend_event(timeout: float) -> ECA:
    """Flush and process background activity for ``timeout`` s (0 = forever)."""
    return to_eca(lib.ca_pend_event(parse_timeout(timeout)))


@counted
def poll() -> ECA:
    """Flush and process outstanding background activity without waiting."""
    return to_eca(lib.ca_pend_event(1e-12))


def pend(timeout: float, early: bool) -> ECA:
    """``pend_io`` when ``early`` is true, else ``pend_event``."""
    return pend_io(timeout) if early else pend_event(timeout)


@counted
def flush_io() -> ECA:
    return to_eca(lib.ca_flush_io())


@counted
def test_io() -> ECA:
    """``ECA.IODONE`` when no callback-less get/connect is outstanding."""
    return to_eca(lib.ca_test_io())
