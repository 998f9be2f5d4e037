"""Contexts in the cffi backend (the twin of ``cext/context.c``): create,
destroy, attach, detach, current, show; the per-context exception handler
and the process-wide printf handler.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from CaChannel._common import ECA, to_eca

from . import _callbacks, _handles
from ._args import as_index
from ._bindings import ffi, lib
from ._decode import read_drop
from ._handles import (Context, as_usr, context_gens, counted, dead_contexts, detach_if_destroyed,
                       forget, live_channels, new_token, pending_clears, registry, token_of)

_NULL = ffi.NULL

#: contexts created here, with the thread that created them: destroyed at
#: interpreter exit so that no libca thread calls into a finalising interpreter
_our_contexts: Dict[int, Tuple[Context, int]] = {}
#: context address -> token of its exception handler in the registry
_exception_tokens: Dict[int, int] = {}


@counted
def create_context(preemptive_callback: bool = True) -> ECA:
    """Create a CA context for the calling thread (preemptive by default)."""
    detach_if_destroyed()
    existed = lib.ca_current_context() != _NULL
    status = lib.ca_context_create(1 if preemptive_callback else 0)
    if status == ECA.NORMAL:
        dead_contexts.discard(token_of(lib.ca_current_context()))
    if status == ECA.NORMAL and not existed and preemptive_callback:
        # only a context made here is ours to destroy at exit
        ctx = current_context()
        _our_contexts[ctx.address] = (ctx, threading.get_ident())
    return to_eca(status)


@counted
def destroy_context() -> None:
    """Destroy the calling thread's context (and forget its exception handler).

    Every channel and subscription of the context is dead afterwards
    (``ECA.BADCHID``/``ECA.BADMONID``, ``ValueError`` from the information
    functions), and so is its context object (``attach_context`` and
    ``show_context`` refuse it). The next CA call of the thread makes a new
    context: a non-preemptive one, unless ``create_context`` comes first.
    """
    address = token_of(lib.ca_current_context())
    if address == 0:
        return
    with _handles.use_lock:
        mine = [ch for ch in list(live_channels.values()) if ch._ctx == address]
        dropped = [forget(ch, "context") for ch in mine]
        for key, ch in list(pending_clears.items()):
            if ch._ctx == address:   # libca frees it with the context
                ch._clear_ptr = None
                del pending_clears[key]
                mine.append(ch)
    # other threads still inside a call on one of its channels finish first
    # (they find the channel dead at their next step); this thread's own
    # holds are Python code below us (a conversion, a callback) that checks
    # the channel again before its next libca call
    me = threading.get_ident()
    for ch in mine:
        while any(tid != me for tid in list(ch.holders)):
            time.sleep(0.0002)
    context_gens.pop(address, None)
    dead_contexts.add(address)
    lib.ca_context_destroy()
    _our_contexts.pop(address, None)
    token = _exception_tokens.pop(address, None)
    if token is not None:
        dropped.append(registry.pop(token, None))
    read_drop(address)
    del dropped  # finalizers it runs find every handle of the context dead


@counted
def attach_context(context: Context) -> ECA:
    """Attach the calling thread to ``context`` (from ``current_context``).

    ``ValueError`` for a context that was destroyed or inherited across fork.
    """
    if not isinstance(context, Context):
        raise TypeError("expected a context from current_context(), not %s"
                        % type(context).__name__)
    ptr = context.live_ptr()
    detach_if_destroyed()
    return to_eca(lib.ca_attach_context(ptr))


def detach_context() -> None:
    lib.ca_detach_context()


def current_context() -> Optional[Context]:
    """The calling thread's context, None if it has none.

    None also when the thread is still attached to a context another thread
    destroyed (libca keeps that dangling pointer until the thread detaches).
    """
    ptr = lib.ca_current_context()
    if ptr == _NULL or token_of(ptr) in dead_contexts:
        return None
    return Context(ptr)


@counted
def show_context(context: Optional[Context] = None, level: int = 0) -> None:
    """Print libca's report on ``context`` (default: the calling thread's)."""
    level = as_index(level, "level")
    if context is None:
        lib.ca_client_status(max(0, level))
    elif isinstance(context, Context):
        lib.ca_context_status(context.live_ptr(), max(0, level))
    else:
        raise TypeError("expected a context or None, not %s" % type(context).__name__)


@counted
def add_exception_event(callback: Optional[Callable] = None) -> ECA:
    """Install the context's exception handler; None restores libca's default."""
    cb = callback if callable(callback) else None
    address = token_of(lib.ca_current_context())
    old = _exception_tokens.pop(address, None)
    if cb is None:
        status = lib.ca_add_exception_event(_NULL, _NULL)
    else:
        token = new_token(cb)
        _exception_tokens[token_of(lib.ca_current_context())] = token
        status = lib.ca_add_exception_event(_callbacks.exception_cb, as_usr(token))
    if old is not None:
        registry.pop(old, None)
    return to_eca(status)


@counted
def replace_printf_handler(callback: Optional[Callable[[str], Any]] = None) -> ECA:
    """Send libca's diagnostic messages to ``callback(str)``; None restores stderr."""
    cb = callback if callable(callback) else None
    _callbacks.set_printf_callback(cb)
    return to_eca(lib.ca_replace_printf_handler(_callbacks.printf_cb if cb is not None
                                                else _NULL))


# ---------------------------------------------------------------------------
# Exit and fork (called by the hooks in _module)


def destroy_own_contexts() -> None:
    """At exit: end the preemptive contexts created here, so that their
    threads are gone before the interpreter is.

    A context the exiting thread created but is no longer attached to is
    left alone: another user of the same libca in this process may have
    destroyed it (pyepics' atexit hook, which runs before ours, destroys the
    thread's current context even when it did not create it), and
    destroying it again is a double free. It is left to the process exit,
    as the C extension leaves all of them.
    """
    me = threading.get_ident()
    own = lib.ca_current_context()
    for address, (ctx, creator) in list(_our_contexts.items()):
        if token_of(own) != address:
            if creator == me:
                continue
            lib.ca_detach_context()
            if lib.ca_attach_context(ctx._ptr) != ECA.NORMAL:
                continue
        lib.ca_context_destroy()
        own = _NULL
    _our_contexts.clear()


def forget_after_fork() -> None:
    """In a child after fork: the inherited contexts are not ours to destroy."""
    _our_contexts.clear()
    _exception_tokens.clear()
