"""Synchronous groups in the cffi backend (the twin of ``cext/sync_group.c``):
``sg_*``; the reads of a group are kept in its read set (``_decode``) until
``sg_block``, ``sg_reset`` or ``sg_delete`` settles them.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from CaChannel import _common
from CaChannel._common import ECA, to_eca

from ._args import check_counts, get_channel, parse_timeout
from ._bindings import ffi, lib
from ._decode import DBRValue, read_buffer, read_drop, read_hold, read_mark, read_settle
from ._encode import prepare_put
from ._handles import chid, counted, held, token_of
from ._request import prepare_read


def _gid(gid) -> Optional[int]:
    """The group id, or None for one no group can have (-> ECA.BADSYNCGRP)."""
    return _common.sync_group_id(gid)


def _ctx() -> int:
    """Groups are per context: the address of the calling thread's."""
    return token_of(lib.ca_current_context())


@counted
def sg_create() -> Tuple[ECA, Optional[int]]:
    pgid = ffi.new("CA_SYNC_GID *")
    status = lib.ca_sg_create(pgid)
    if status != ECA.NORMAL:
        return to_eca(status), None
    return ECA.NORMAL, int(pgid[0])


@counted
def sg_delete(gid: int) -> ECA:
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP
    status = lib.ca_sg_delete(g)
    if status == ECA.NORMAL:
        read_drop(_ctx(), g)
    return to_eca(status)


@counted
def sg_get(gid: int, chid: chid, chtype: Optional[int] = None, count: Optional[int] = None,
           use_numpy: bool = False) -> Tuple[ECA, Optional[DBRValue]]:
    """Queue a read in group ``gid``; the value is valid after ``sg_block``."""
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP, None
    check_counts(chtype, count)
    with held(get_channel(chid)) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID, None
        status, t, n = prepare_read(ch, cptr, chtype, count, False)
        if status != ECA.NORMAL:
            return to_eca(status), None
        buf, value = read_buffer(t, n, bool(use_numpy))
        if ch._ptr is None:
            return ECA.BADCHID, None
        status = lib.ca_sg_array_get(g, t, n, cptr, buf)
    if status != ECA.NORMAL:
        return to_eca(status), None
    read_hold(_ctx(), g, value)
    return ECA.NORMAL, value


@counted
def sg_put(gid: int, chid: chid, value: Any, chtype: Optional[int] = None,
           count: Optional[int] = None) -> ECA:
    """Queue a write in group ``gid`` (conversion as ``put``)."""
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP
    check_counts(chtype, count)
    with held(get_channel(chid)) as (ch, cptr):
        if ch is None:
            return ECA.BADCHID
        status, args = prepare_put(ch, cptr, value, chtype, count)
        if args is None:
            return to_eca(status)
        t, n, data = args
        return to_eca(lib.ca_sg_array_put(g, t, n, cptr, data))


@counted
def sg_block(gid: int, timeout: float) -> ECA:
    """Flush and wait for the group's requests (0 = forever)."""
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP
    mark = read_mark(_ctx(), g)
    status = lib.ca_sg_block(g, parse_timeout(timeout))
    if status in (ECA.NORMAL, ECA.TIMEOUT):
        # only the reads issued before: other threads may add to the group
        read_settle(mark)
    return to_eca(status)


@counted
def sg_test(gid: int) -> ECA:
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP
    return to_eca(lib.ca_sg_test(g))


@counted
def sg_reset(gid: int) -> ECA:
    g = _gid(gid)
    if g is None:
        return ECA.BADSYNCGRP
    mark = read_mark(_ctx(), g)
    status = lib.ca_sg_reset(g)
    if status == ECA.NORMAL:
        read_settle(mark)
    return to_eca(status)
