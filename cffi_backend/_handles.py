"""Python-side handles of the cffi backend: channels, subscriptions, contexts.

libca frees its C objects on clear, so each handle records whether it is
still valid; every API function checks that before touching the pointer.
libca hands back only an opaque ``void *usr`` with each callback: it carries
a *token*, an integer key into :data:`registry`, never a Python pointer, so a
late or stray callback can at worst miss the registry, never dereference a
dead object.
"""
from __future__ import annotations

import itertools
import threading
from typing import Any, Dict, Optional, Set

from CaChannel import _common

from ._bindings import ffi, lib

#: token -> the Python object a libca callback belongs to
registry: Dict[int, Any] = {}
_tokens = itertools.count(1)
_token_lock = threading.Lock()


def new_token(obj: Any) -> int:
    """Register ``obj`` and return its token (an int usable as ``void *usr``)."""
    with _token_lock:
        token = next(_tokens)
    registry[token] = obj
    return token


def token_of(ptr) -> int:
    return int(ffi.cast("uintptr_t", ptr))


def as_usr(token: int):
    return ffi.cast("void *", token)


#: address of a live libca channel -> its chid object (for exception callbacks,
#: whose chid may belong to any channel; looking it up never dereferences it)
live_channels: Dict[int, "chid"] = {}


class chid:
    """A channel created by ``create_channel``.

    Compares and hashes by identity: callbacks receive this same object.
    """

    __slots__ = ("_ptr", "_name", "_token", "conn_callback", "access_callback",
                 "subscriptions", "pending", "inuse", "holders", "_ctx", "_dead",
                 "_clear_ptr", "__weakref__")

    def __init__(self, name: str):
        self._ptr = None
        # address of the context it belongs to
        self._ctx = 0
        # why it is no longer valid: "cleared", "context" (destroy_context), "fork"
        self._dead = "cleared"
        # a clear_channel that came while the channel was in use: the last
        # user calls ca_clear_channel with this pointer (see _held)
        self._clear_ptr = None
        # libca calls on this channel in flight (GIL released): clear_channel
        # waits for them before libca frees the chid
        self.inuse = 0
        # thread id -> its holds (destroy_context waits for other threads')
        self.holders: Dict[int, int] = {}
        self._name = name
        self._token = 0
        self.conn_callback = None
        self.access_callback = None
        self.subscriptions: Set["evid"] = set()
        self.pending: Set[int] = set()

    @property
    def valid(self) -> bool:
        return self._ptr is not None

    def __repr__(self) -> str:
        state = "cleared" if self._ptr is None else hex(token_of(self._ptr))
        return "<chid %r %s>" % (self._name, state)


class evid:
    """A subscription created by ``create_subscription``."""

    __slots__ = ("_ptr", "channel", "callback", "use_numpy", "_token", "__weakref__")

    def __init__(self, channel: chid, callback, use_numpy: bool):
        self._ptr = None
        self.channel = channel
        self.callback = callback
        self.use_numpy = use_numpy
        self._token = 0

    @property
    def valid(self) -> bool:
        return self._ptr is not None and self.channel.valid

    def __repr__(self) -> str:
        return "<evid of %r%s>" % (self.channel._name, "" if self.valid else " cleared")


#: address -> generation of the contexts known to be alive (see Context)
context_gens: Dict[int, int] = {}
_gens = itertools.count(1)
#: bumped in a child after fork: contexts made before are the parent's
fork_epoch = [0]


def dead_text(reason: str) -> str:
    """The ValueError text for a channel that is no longer valid."""
    if reason == "context":
        return "the channel's context has been destroyed (destroy_context)"
    if reason == "fork":
        return ("the channel was created in the parent process before fork(); "
                "create a new channel in this process")
    return "the channel has been cleared"


class Context:
    """A libca client context (``ca_client_context *``).

    Alive while its address maps to its generation in ``context_gens``:
    destroy_context forgets the address (libca may reuse it for a new
    context, which gets a new generation), fork forgets them all.
    """

    __slots__ = ("_ptr", "_gen", "_epoch")

    def __init__(self, ptr):
        self._ptr = ptr
        address = token_of(ptr)
        gen = context_gens.get(address)
        if gen is None:
            gen = context_gens[address] = next(_gens)
        self._gen = gen
        self._epoch = fork_epoch[0]

    def live_ptr(self):
        """The ``ca_client_context *``; ValueError if destroyed or inherited across fork."""
        if self._epoch != fork_epoch[0]:
            raise ValueError("this CA context was inherited from the parent process across "
                             "fork(); it cannot be used in the child (the first CA call in "
                             "the child creates a new context)")
        if context_gens.get(self.address) != self._gen:
            raise ValueError("this CA context has been destroyed (destroy_context); a new "
                             "one is made by create_context or on demand by the next CA call")
        return self._ptr

    @property
    def address(self) -> int:
        return token_of(self._ptr)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Context) and other.address == self.address
                and other._gen == self._gen and other._epoch == self._epoch)

    def __hash__(self) -> int:
        return hash(self.address)

    def __repr__(self) -> str:
        return "<ca context %s>" % hex(self.address)


class DBRValue:
    """The value of a synchronous ``get``/``sg_get``.

    Valid only after the matching ``pend_io`` (or ``sg_block``) returned
    ``ECA.NORMAL``. ``get()`` converts it by the rules of ca-api.md 2.9.
    """

    __slots__ = ("_buffer", "_dbrtype", "_count", "use_numpy", "_array", "_out")

    def __init__(self, buffer, dbrtype: int, count: int, use_numpy: bool,
                 array=None, out: bool = False):
        self._buffer = buffer
        self._dbrtype = int(dbrtype)
        self._count = int(count)
        self.use_numpy = bool(use_numpy)
        # an array libca wrote into directly (a numpy get, or the caller's out=)
        self._array = array
        self._out = out

    @property
    def dbrtype(self) -> _common.DBR:
        return _common.to_dbr(self._dbrtype)

    @property
    def count(self) -> int:
        return self._count

    def get(self):
        if self._array is not None:
            if self.use_numpy or self._out:
                return self._array
            return self._array.tolist() if self._count > 1 else self._array[0].item()
        return _common.decode(self._dbrtype, self._count, ffi.buffer(self._buffer),
                              self.use_numpy)

    def __repr__(self) -> str:
        return "<DBRValue %s count=%d>" % (_common.dbr_text(self._dbrtype), self._count)


def current_context_address() -> int:
    return token_of(lib.ca_current_context())
