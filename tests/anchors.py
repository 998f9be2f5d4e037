"""Channels held open for a whole test session (see tests/conftest.py)."""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, List


@contextlib.contextmanager
def channels_held_open(names: Iterable[str], timeout: float = 10.0) -> Iterator[List[object]]:
    """Connect a channel to each name in the test thread's context; clear them at exit.

    libca closes a server's circuit when its last channel goes; a channel that
    connects while it closes waits 10 s (see ``circuit_anchor``). One channel
    held open per server keeps its circuit.
    """
    from CaChannel import ca  # not at conftest import, before the IOC environment is set
    status = ca.create_context(True)
    assert status == ca.ECA_NORMAL, status
    names = list(names)
    chids = []
    for name in names:
        status, chid = ca.create_channel(name)
        assert status == ca.ECA_NORMAL, (name, status)
        chids.append(chid)
    assert ca.pend_io(timeout) == ca.ECA_NORMAL, "did not connect: %s" % names
    try:
        yield chids
    finally:
        for chid in chids:
            ca.clear_channel(chid)
        ca.flush_io()
