"""The cffi backend's process hooks (the part of ``cext/module.c`` beyond the
method table): what happens at interpreter exit and in a child after fork.
Registered when the backend is imported.
"""
from __future__ import annotations

import atexit

from CaChannel import _common

from . import _callbacks, _context, _handles
from ._bindings import lib, thread_init
from ._decode import read_drop
from ._handles import forget, live_channels


#: how long the exit hook waits for other threads' calls and callbacks
DRAIN_SECONDS = 5.0


def shutdown() -> None:
    """atexit hook: stop delivering callbacks, then end the preemptive
    contexts created here so that their threads are gone before the
    interpreter is.

    Other threads (daemon threads, libca's) may be inside a libca call on
    one of those contexts, or run a callback: destroying it under them
    would make them use freed memory. So new calls and callbacks are refused
    first (other threads park at their next API call), and the calls and
    callbacks in flight are awaited, at most ``DRAIN_SECONDS``. A thread
    still inside libca then (a ``pend_event(0)``, a long ``pend_io``) keeps
    the contexts alive: they are left to the process exit, as the C
    extension leaves all of them.
    """
    if _handles.close(DRAIN_SECONDS):
        _context.destroy_own_contexts()
    # libca freed the channels of those contexts: a __del__ that clears one
    # later during shutdown must get BADCHID, not touch freed memory
    dropped = [forget(ch) for ch in list(live_channels.values())]
    del dropped  # every handle is dead before any finalizer can run


def after_fork_child() -> None:
    """os.register_at_fork hook, run in the child (its only thread forked).

    libca's threads, and any lock they held, are gone: nothing of the
    inherited contexts is touched. Every handle becomes dead (reason
    "fork"), the contexts are forgotten (not destroyed at exit), the
    thread's context pointer is dropped, and the first CA call of the child
    makes a new context.
    """
    dropped = _handles.reset_after_fork()
    _context.forget_after_fork()
    read_drop()
    _callbacks.set_printf_callback(None)
    lib.ca_detach_context()
    thread_init()
    del dropped  # finalizers it runs find every inherited handle dead


atexit.register(shutdown)
_common._register_fork_child(after_fork_child)
