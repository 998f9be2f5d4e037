"""A listener change re-entered on the same thread, as a garbage collection does.

Building a channel's new listener tuple allocates; a collection there runs the
``__del__`` of an unreachable face object (a 3.x ``CaChannel`` in a reference
cycle), which removes its own listeners from the same thread. With a plain
lock that hung the test run (``util.caput`` -> ``clear_channel`` ->
``remove_listener`` -> GC -> ``CaChannel.__del__`` -> ``remove_listener``).
Here the nested call is made deterministic: a listener whose ``!=`` (called
while the new tuple is built) removes another listener.
"""
from __future__ import annotations

import threading

from CaChannel import core


def _listener(channel, up):
    pass


def test_listener_removed_from_inside_a_listener_change():
    channel = core.acquire("catest")
    try:
        victim = lambda ch, up: None   # noqa: E731 - a second, distinct listener
        gone = lambda ch, up: None     # noqa: E731

        class Reenter:
            armed = True

            def __call__(self, ch, up):
                pass

            def __ne__(self, other):
                if Reenter.armed:
                    Reenter.armed = False
                    channel.remove_listener(victim)   # what a __del__ run here does
                return self is not other

            __hash__ = object.__hash__

        reenter = Reenter()
        for fn in (reenter, victim, gone):
            channel.add_listener(fn, replay=False)

        worker = threading.Thread(target=channel.remove_listener, args=(gone,), daemon=True)
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "remove_listener deadlocked on its own thread's nested call"
        assert Reenter.armed is False, "the nested removal did not run"
        # None, one listener or a tuple: the state under test
        listeners = core.channel._members(channel._listeners)   # noqa: SLF001
        assert reenter in listeners
        assert victim not in listeners, "the nested removal was lost"
        assert gone not in listeners
        channel.remove_listener(reenter)
    finally:
        channel.release()
