"""Callbacks whose release runs code: clearing a channel drops its callbacks,
and a finalizer run by that drop may call back into ``ca`` (a ``CaChannel``
whose ``__del__`` clears its own channel is the common case). The backend must
have finished with the cleared channel by then and hold none of its locks."""
from __future__ import annotations

import threading

from CaChannel import ca
from lltools import TIMEOUT, connect


class ClearsOnRelease:
    """A callback that, when finalized, clears each of ``targets`` (filled in
    once the channels exist) and records the statuses in ``results``."""

    def __init__(self, results):
        self.results = results
        self.targets = []

    def __call__(self, args):
        pass

    def __del__(self):
        self.results.extend(ca.clear_channel(target) for target in self.targets)


def _in_thread(func):
    """Run ``func`` in a thread bounded in time: a deadlock fails, not hangs."""
    box = {}

    def run():
        ca.attach_context(context)
        try:
            box["value"] = func()
        except BaseException as exc:  # reported below
            box["error"] = exc
    context = ca.current_context()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(TIMEOUT * 2)
    assert not worker.is_alive(), "clear_channel deadlocked in a finalizer of a dropped callback"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def test_finalizer_of_a_dropped_callback_may_clear_channels():
    victim = connect("ca:scalar:DOUBLE")
    results = []
    callback = ClearsOnRelease(results)
    status, owner = ca.create_channel("catest", callback)
    assert status == ca.ECA_NORMAL
    callback.targets = [victim, owner]   # the channel being cleared is dead already
    del callback                      # the channel holds the only reference now
    assert ca.pend_event(0.5) in (ca.ECA_TIMEOUT, ca.ECA_NORMAL)

    assert _in_thread(lambda: ca.clear_channel(owner)) == ca.ECA_NORMAL
    assert results == [ca.ECA_NORMAL, ca.ECA_BADCHID], results
    assert ca.clear_channel(victim) == ca.ECA_BADCHID


def test_finalizer_of_a_dropped_monitor_callback_may_clear_channels():
    victim = connect("ca:scalar:LONG")
    owner = connect("catest")
    results = []
    callback = ClearsOnRelease(results)
    callback.targets = [victim, owner]
    status, _evid = ca.create_subscription(owner, callback)
    assert status == ca.ECA_NORMAL
    del callback, _evid
    ca.flush_io()

    assert _in_thread(lambda: ca.clear_channel(owner)) == ca.ECA_NORMAL
    assert results == [ca.ECA_NORMAL, ca.ECA_BADCHID], results


def _replaced_callback_clears_its_channel(install):
    owner = connect("catest")
    results = []
    callback = ClearsOnRelease(results)
    callback.targets = [owner]
    assert install(owner, callback) == ca.ECA_NORMAL
    del callback
    # replacing drops the old callback; its finalizer clears the channel the
    # replacing call is working on
    assert _in_thread(lambda: install(owner, None)) in (ca.ECA_NORMAL, ca.ECA_BADCHID)
    assert results == [ca.ECA_NORMAL], results
    assert ca.clear_channel(owner) == ca.ECA_BADCHID


def test_replaced_connection_callback_may_clear_its_channel():
    _replaced_callback_clears_its_channel(ca.change_connection_event)


def test_replaced_access_rights_callback_may_clear_its_channel():
    _replaced_callback_clears_its_channel(ca.replace_access_rights_event)
