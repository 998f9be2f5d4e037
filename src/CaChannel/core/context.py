"""The process's Channel Access context: one preemptive context for every face.

Every face (the 3.x ``CaChannel`` class, ``util``, ``PV``, ``aio``,
``monitor``, ``areadetector``, the ophyd layer) works in one process-wide
*preemptive* libca context: libca delivers callbacks on its own threads, and
any Python thread may make CA calls after :func:`attach` (done for it by the
core's channel helpers).

Life cycle, all handled here:

* **first use** -- :func:`attach` creates the context (``ca.create_context(True)``);
* **other threads** -- :func:`attach` attaches them (once per thread and
  context generation; cheap afterwards);
* **``ca.destroy_context()``** by a user -- every channel of that context is
  dead. The next :func:`attach` notices (``attach_context`` refuses the dead
  context), starts a new *generation* and makes a new context; the channel
  cache (``core.channel``) then holds only channels of the new one;
* **``os.fork()``** -- in the child every inherited handle is dead (the
  backend's own at-fork hook); :func:`attach` in the child makes the child's
  own context, and locks held by parent threads at fork are replaced;
* **interpreter exit** -- hooks registered with :func:`at_exit` run once, in
  reverse order of registration (faces stop their subscriptions and
  delivery threads), before the backends' own exit handling.

>>> from CaChannel import ca
>>> from CaChannel.core import context
>>> context.attach() is ca.current_context()
True
"""
from __future__ import annotations

import atexit
import os
import threading
import warnings
import weakref
from typing import Any, Callable, List, Optional

from .. import ca
from .errors import CaChannelException

__all__ = ["attach", "current", "generation", "on_reset", "at_exit", "is_exiting", "flush"]

_lock = threading.Lock()
_context: Optional[Any] = None
#: bumped whenever the context is replaced (destroyed by a user, or fork)
_generation = 0
_tls = threading.local()
_reset_hooks: List[Callable[[], None]] = []
_exit_hooks: List[Callable[[], None]] = []
_exiting = False
_live: "weakref.WeakSet[Any]" = weakref.WeakSet()


def generation() -> int:
    """Number of times the process context was replaced (destroy_context, fork)."""
    return _generation


def current() -> Optional[Any]:
    """The process context if one was made (``None`` before first use)."""
    return _context


def _new_generation(dead: Any) -> None:
    """Forget ``dead`` (the context a user destroyed); run the reset hooks once."""
    global _context, _generation
    with _lock:
        if _context is not dead:
            return  # another thread did it already
        _context = None
        _generation += 1
        hooks = list(_reset_hooks)
    for hook in hooks:
        hook()


def attach(check: bool = False) -> Any:
    """Make (first call) or attach to the process's preemptive context; returns it.

    Cheap when the calling thread attached before (a thread-local check),
    unless ``check``: then libca is asked, so that a context destroyed
    meanwhile (``ca.destroy_context()``) is noticed and replaced by a new
    one. Requests on an existing channel need no check (a dead channel
    refuses them by itself); creating channels and waiting do it.
    """
    ctx = _context
    if ctx is not None and not check and getattr(_tls, "ctx", None) is ctx:
        return ctx
    if ctx is None:
        with _lock:
            if _context is None:
                _make()
            ctx = _context
    try:
        current = ca.current_context()
        if current is not None and current != ctx:
            _adopt_thread(ctx)
        else:
            ca.attach_context(ctx)  # ECA_ISATTACHED (already attached) is fine
    except ValueError:
        _new_generation(ctx)  # destroyed: a new context for everybody
        return attach()
    _tls.ctx = ctx
    return ctx


def _adopt_thread(ctx: Any) -> None:
    """The calling thread made a CA context of its own: requests on the shared
    channels would be queued in one context and flushed in another. Move the
    thread to the process context (its own context stays alive, unattached)."""
    warnings.warn("CaChannel: this thread has its own CA context; detaching it and "
                  "using the process's shared one", RuntimeWarning, stacklevel=4)
    ca.detach_context()
    ca.attach_context(ctx)


def _make() -> None:
    global _context
    status = ca.create_context(True)
    if status != ca.ECA_NORMAL:
        raise CaChannelException(status, "cannot create a preemptive CA context")
    _context = ca.current_context()


def on_reset(hook: Callable[[], None]) -> None:
    """Call ``hook()`` whenever the context is replaced (destroyed, or fork in the child).

    Hooks run in the thread that notices, with no core lock held; they must
    only drop state (the old handles are dead), not make CA calls.
    """
    _reset_hooks.append(hook)


def at_exit(hook: Callable[[], None]) -> None:
    """Run ``hook()`` once at interpreter exit (reverse order of registration),
    while CA still works: stop subscriptions, threads, flush."""
    _exit_hooks.append(hook)


def close_at_exit(obj: Any) -> None:
    """Have ``obj.close()`` called at interpreter exit, while CA still works,
    unless :func:`forget_at_exit` was called (held weakly).

    Called from threading's exit hook, before the interpreter joins
    non-daemon threads (so a consumer thread blocked on a monitor is woken by
    the close instead of keeping the process alive for ever), and again from
    the atexit hook.
    """
    _live.add(obj)


def forget_at_exit(obj: Any) -> None:
    """Undo :func:`close_at_exit` (``obj`` was closed)."""
    _live.discard(obj)


def _close_live() -> None:
    for obj in list(_live):
        try:
            obj.close()
        except Exception:  # pragma: no cover - best effort at exit
            pass


def is_exiting() -> bool:
    """True once interpreter exit handling started."""
    return _exiting


def flush() -> None:
    """Send buffered requests (attaching the calling thread first)."""
    attach()
    ca.flush_io()


@atexit.register
def _run_exit_hooks() -> None:
    # registered at import, so it runs after hooks registered later by the
    # faces (atexit is LIFO) -- but the faces register with at_exit instead
    global _exiting
    _close_live()
    _exiting = True
    for hook in reversed(_exit_hooks):
        try:
            hook()
        except Exception:
            pass


def _after_fork_child() -> None:
    global _context, _generation, _lock
    _lock = threading.Lock()
    _context = None
    _generation += 1
    _tls.__dict__.clear()
    for hook in list(_reset_hooks):
        try:
            hook()
        except Exception:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)

_register_threading_atexit = getattr(threading, "_register_atexit", None)
if _register_threading_atexit is not None:
    try:
        _register_threading_atexit(_close_live)
    except RuntimeError:  # pragma: no cover - imported during shutdown
        pass
