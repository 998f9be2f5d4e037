"""Issue 10 item 2: nothing aborts after ``ca.destroy_context()``.

Every call of ca-api.md section 2 is made with the handles of a destroyed
context (and the CaChannel/util layer on top), on the selected backend, in a
worker subprocess: an abort (SIGABRT ``epicsMutex::invalidMutex``, SIGSEGV)
fails the case that caused it, not the run. The expected results are the
same for both backends: dead chids give ``ECA_BADCHID`` (the information
functions ``ValueError``), dead subscriptions ``ECA_BADMONID``, the dead
context object is refused by attach/show_context with a ``ValueError``, and
a new channel made afterwards works (libca makes a new context on demand).
"""
from __future__ import annotations

import pytest

from r2cases import run_cases

from CaChannel import ca

BADCHID, BADMONID, BADSYNCGRP = int(ca.ECA_BADCHID), int(ca.ECA_BADMONID), int(ca.ECA_BADSYNCGRP)
NORMAL, TIMEOUT, IODONE = int(ca.ECA_NORMAL), int(ca.ECA_TIMEOUT), int(ca.ECA_IODONE)
CLOSED = int(ca.ChannelState.CLOSED)
#: a new channel after the destroy: create, connect, get, pend_io, value type
NEW = [NORMAL, NORMAL, NORMAL, NORMAL, "float"]
CTX_DEAD = {"exc": "ValueError", "has": "destroyed"}
CHAN_DEAD = {"exc": "ValueError", "has": "context has been destroyed"}

EXPECTED = {
    "create_context": [NORMAL, NEW],
    "destroy_context_again": None,
    "attach_context": CTX_DEAD,
    "detach_context": NEW,
    "current_context": None,
    "current_context_new": True,
    "show_context": CTX_DEAD,
    "show_context_none": NEW,
    "create_channel": NEW,
    "clear_channel": [BADCHID, NEW],
    "clear_channel_twice": [BADCHID, BADCHID],
    "change_connection_event": [BADCHID, NEW],
    "change_connection_event_none": BADCHID,
    "get": [[BADCHID, True], NEW],
    "get_callback": [BADCHID, True],
    "get_count": [BADCHID, True],
    "put": [BADCHID, NEW],
    "put_callback": BADCHID,
    "create_subscription": [BADCHID, True],
    "clear_subscription": [BADMONID, NEW],
    "pending_value": [True, True],
    "pend_io": NORMAL,
    "pend_event": TIMEOUT,
    "poll": TIMEOUT,
    "pend": NORMAL,
    "flush_io": NORMAL,
    "test_io": IODONE,
    "field_type": CHAN_DEAD,
    "element_count": CHAN_DEAD,
    "name": CHAN_DEAD,
    "state": CLOSED,
    "host_name": CHAN_DEAD,
    "read_access": CHAN_DEAD,
    "write_access": CHAN_DEAD,
    "message": "Normal successful completion",
    "version": True,
    "replace_access_rights_event": [BADCHID, NEW],
    "replace_access_rights_event_none": BADCHID,
    "add_exception_event": [NORMAL, NORMAL, NEW],
    "replace_printf_handler": [NORMAL, NORMAL, NEW],
    "sg_create": NORMAL,
    "sg_delete": BADSYNCGRP,
    "sg_get": [BADCHID, True],
    "sg_get_new_group": [BADCHID, True],
    "sg_put": BADCHID,
    "sg_block": BADSYNCGRP,
    "sg_test": BADSYNCGRP,
    "sg_reset": BADSYNCGRP,
    "CaChannel_getw_old": {"exc": "CaChannelException", "status": BADCHID},
    "CaChannel_putw_old": {"exc": "CaChannelException", "status": BADCHID},
    "CaChannel_state_old": CLOSED,
    "CaChannel_new_searchw": "float",
    "CaChannel_old_searchw_again": "float",
    "util_caget": "float",
    "thread_CaChannel": "float",
    "thread_create_context": [BADCHID, NORMAL] + NEW,
    "thread_current_context": True,
}


@pytest.fixture(scope="module")
def results(softioc):
    return run_cases("destroy_worker.py", EXPECTED, timeout=90)


@pytest.mark.parametrize("case", list(EXPECTED))
def test_after_destroy_context(results, case):
    got = results[case]
    assert "died" not in got, "the worker died at %s (%s):\n%s" % (case, got["died"], got["stderr"])
    want = EXPECTED[case]
    if isinstance(want, dict):
        assert got.get("exc") == want["exc"], got
        if "has" in want:
            assert want["has"] in got["msg"], got
        if "status" in want:
            assert got["status"] == want["status"], got
    else:
        assert "exc" not in got, got
        assert got["ret"] == want
