"""camonitor and :class:`Subscription`, with aioca's semantics.

An event from libca is appended to the subscription's queue in the libca
thread; only the first event of a burst posts a delivery to the loop's
dispatcher (which itself wakes the loop at most once per burst). Without
``all_updates`` the queue holds one value: newer events replace an older
undelivered one and count in ``dropped_callbacks``. Values are made in the
loop, once each, when they are delivered.

A plain function callback is called in the loop for every value; a
coroutine function is awaited, one value at a time, in a task of the
subscription (values arriving meanwhile are merged unless ``all_updates``).
Whether the callback is a coroutine function is learnt from what its first
call returns, as aioca does.

An exception raised by the callback (or by the conversion of a value)
prints ``Subscription <name> callback raised exception``, the traceback and
``Subscription <name> closed`` on stderr and closes the subscription: state
:attr:`~Subscription.CLOSED`, no further callbacks.
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import sys
import threading
import traceback
import types
from typing import Any, Awaitable, Callable, List, Optional, Union, overload

from .. import ca
from ._channels import CallWaiter, get_channel, get_channels
from ._dispatch import dispatcher, flush
from ._ops import Timeout, check_timeout, deadline
from ._values import (DBE_ALARM, DBE_PROPERTY, DBE_VALUE, FORMAT_CTRL, FORMAT_RAW, FORMAT_TIME,
                      CANothing, Request, ca_error)

__all__ = ["Subscription", "camonitor"]

_DEFAULT_EVENTS = {
    FORMAT_RAW: DBE_VALUE,
    FORMAT_TIME: DBE_VALUE | DBE_ALARM,
    FORMAT_CTRL: DBE_VALUE | DBE_ALARM | DBE_PROPERTY,
}

#: values handed to a coroutine callback between two yields to the loop
_BATCH = 1024
#: guards every Subscription's queue and signalled flag (held briefly, never
#: while calling out): 100,000 subscriptions need no lock each
_lock = threading.Lock()

Callback = Callable[[Any], Union[None, Awaitable[Any]]]


class Subscription:
    """A CA subscription delivering values to ``callback`` in the event loop.

    Created by :func:`camonitor` (in a running loop). Attributes: ``name``,
    ``callback`` (may be replaced), ``state``, ``dropped_callbacks`` (values
    replaced by newer ones before their callback), ``all_updates``,
    ``notify_disconnect``, ``channel``, and ``dbr_to_value``: the function
    that makes a value from libca's event dict (set when the subscription
    opens; an exception from it closes the subscription like one from the
    callback). A scalar number or string of ``FORMAT_RAW`` or ``FORMAT_TIME``
    comes made by the backend (``ca.create_subscription(augment=)``, the
    same value); a ``dbr_to_value`` set by the user is still called for
    those, with the event dict rebuilt.

    ``state`` is :attr:`OPENING` until the channel is connected and the
    subscription made, then :attr:`OPEN`, and :attr:`CLOSED` after
    :meth:`close` or an exception of the callback. For a channel that is
    connected already :func:`camonitor` subscribes at once and returns an
    :attr:`OPEN` subscription (aioca makes it in a task, later), so that a
    request made after ``camonitor`` returns (a ``caput``) reaches the server
    after the subscription.
    """

    OPENING = 0  #: waiting for the channel's connection (or for the loop)
    OPEN = 1     #: subscribed
    CLOSED = 2   #: closed, no more callbacks

    def __init__(self, name: str, callback: Callback, events: Optional[int] = None,
                 datatype: Any = None, format: int = FORMAT_RAW, count: int = 0,
                 all_updates: bool = False, notify_disconnect: bool = False,
                 connect_timeout: Timeout = None) -> None:
        if not callable(callback):
            raise TypeError("callback must be callable, not %s" % type(callback).__name__)
        if format not in _DEFAULT_EVENTS:
            raise ValueError("format must be FORMAT_RAW, FORMAT_TIME or FORMAT_CTRL, not %r"
                             % (format,))
        check_timeout(connect_timeout, "connect_timeout")
        loop = asyncio.get_running_loop()
        self.name = name
        self.callback = callback
        self.all_updates = bool(all_updates)
        self.notify_disconnect = bool(notify_disconnect)
        #: values replaced by newer ones before their callback
        self.dropped_callbacks = 0
        self.state = self.OPENING
        #: the user's ``dbr_to_value``; None: the request's own conversion
        self._convert: Optional[Callable[[dict], Any]] = None
        self._request: Optional[Request] = None
        #: set by camonitor for one PV of a list: the callback gets (value, index)
        self._index: Optional[int] = None
        self._loop = loop
        self._disp = dispatcher(loop)
        self._events = _DEFAULT_EVENTS[format] if events is None else int(events)
        self._datatype = datatype
        self._format = format
        self._count = count
        # (100,000 subscriptions in a process: no lock of their own, see _lock)
        self._queue: collections.deque = collections.deque(maxlen=None if all_updates else 1)
        self._signalled = False
        self._is_sync: Optional[bool] = None
        self._task: Optional[asyncio.Task] = None
        self._evid = None
        self._timer = None
        self.channel = get_channel(name)
        self._waiter: Optional[CallWaiter] = None
        if not self._await_connection():
            # connected: subscribe now, so that the request goes out before
            # any request the caller makes next (a caput right after camonitor
            # is seen by the subscription); one flush for a burst of these
            self._open()
            self._disp.flush_soon()
        else:
            self._disp.flush_soon()  # the search: one flush for a burst of camonitors
            if connect_timeout is not None:
                self._timer = loop.call_at(deadline(loop, connect_timeout),
                                           self._connect_timeout)

    def __repr__(self) -> str:
        return "<Subscription %r %s>" % (self.name, ("OPENING", "OPEN", "CLOSED")[self.state])

    # ------------------------------------------------------------- loop side
    def _await_connection(self) -> bool:
        """Queue :meth:`_on_ready` for the channel's connection (kept in
        ``_waiter``); False if the channel is connected now."""
        waiter = CallWaiter(self._disp, self._on_ready)
        self._waiter = waiter if self.channel.when_connected(waiter) else None
        return self._waiter is not None

    def _on_ready(self, ok: bool) -> None:
        """The channel is connected (``ok``) or purged; runs in the dispatcher's pass."""
        self._waiter = None
        if self.state != self.OPENING:
            return
        if not ok:
            self.close()
            return
        if not self.channel.connected:  # lost again before this ran: wait for the next one
            if self._await_connection():
                return
        self._open()
        self._disp.flush_soon()

    def _open(self) -> None:
        """Make libca's subscription (the channel is connected); the caller flushes."""
        try:
            req = Request(self.name, self.channel.chid, self._datatype, self._format)
        except CANothing:  # disconnected since it was seen connected
            self._wait_again()
            return
        except Exception:
            self.close(sys.exc_info())
            return
        try:
            evq = self._disp.event_queue()
            status, evid = ca.create_subscription(
                self.channel.chid, self._enqueue if evq is None else self, req.dbr,
                req.count(self._count), self._events, use_numpy=True, augment=req.augment,
                queue=evq)
            if status == ca.ECA_DISCONN:
                self._wait_again()
                return
            if status != ca.ECA_NORMAL:
                raise ca_error(status, "ca_create_subscription")
        except Exception:
            self.close(sys.exc_info())
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._request = req
        self._evid = evid
        if self.state == self.CLOSED:  # shut down from another thread meanwhile (exit)
            self._shutdown()
            return
        self.state = self.OPEN
        self.channel.add_listener(self)

    def _wait_again(self) -> None:
        """The channel went down between its connection and our subscription: wait again."""
        if not self._await_connection():  # up again already
            self._disp.post(self._on_ready, True)

    def _connect_timeout(self) -> None:
        self._timer = None
        if self.state == self.OPENING:
            # reported whatever notify_disconnect says; the subscription stays
            # and opens when the channel connects
            self._enqueue(CANothing(self.name, ca.ECA_TIMEOUT))

    @property
    def dbr_to_value(self) -> Optional[Callable[[dict], Any]]:
        """Makes a value of libca's event dict (see the class docstring)."""
        if self._convert is not None:
            return self._convert
        return None if self._request is None else self._request.convert

    @dbr_to_value.setter
    def dbr_to_value(self, fn: Optional[Callable[[dict], Any]]) -> None:
        own = self._request is not None and fn == self._request.convert
        self._convert = None if own else fn

    def _value(self, item: Any) -> Any:
        convert = self._convert
        if type(item) is dict:
            return (convert or self._request.convert)(item)  # type: ignore[union-attr]
        if convert is not None and type(item) is not CANothing:
            # the backend made it, but the user replaced the conversion
            return convert(self._request.event_of(self.channel.chid, item))  # type: ignore[union-attr]
        return item

    def _call(self, value: Any) -> Any:
        index = self._index
        return self.callback(value) if index is None else self.callback(value, index)

    def _deliver(self) -> None:
        if self.state == self.CLOSED:
            return
        if self._is_sync is False:
            if self._task is None:
                self._task = self._loop.create_task(self._consume(None))
            return
        with _lock:
            self._signalled = False
            items = list(self._queue)
            self._queue.clear()
        for i, item in enumerate(items):
            try:
                value = self._value(item)
                if type(value) is CANothing and not self._wanted(value):
                    continue
                ret = self._call(value)
            except Exception:
                self.close(sys.exc_info())
                return
            if ret is not None:
                if self._is_sync is None:
                    self._is_sync = not inspect.isawaitable(ret)
                if not self._is_sync:
                    # a coroutine callback: hand this and the rest to the consumer task
                    with _lock:
                        for rest in reversed(items[i + 1:]):
                            self._queue.appendleft(rest)
                    self._task = self._loop.create_task(self._consume(ret))
                    return
            elif self._is_sync is None:
                self._is_sync = True
            if self.state == self.CLOSED:
                return

    def _wanted(self, nothing: CANothing) -> bool:
        """Is this CANothing for the callback? (disconnects only if asked for)"""
        return self.notify_disconnect or nothing.errorcode == ca.ECA_TIMEOUT

    async def _consume(self, first: Optional[Awaitable]) -> None:
        try:
            if first is not None:
                await first
            first_batch = True
            while self.state != self.CLOSED:
                if not first_batch:
                    # let the loop run between batches: a flood must not starve it
                    await asyncio.sleep(0)
                first_batch = False
                with _lock:
                    self._signalled = False
                    queue = self._queue
                    if len(queue) <= _BATCH:
                        items = list(queue)
                        queue.clear()
                    else:
                        popleft = queue.popleft
                        items = [popleft() for _ in range(_BATCH)]
                if not items:
                    break
                # looked up once a batch: this loop runs once per update
                own = self._convert is None
                convert = self._request.convert if own and self._request is not None else None
                callback, index = self.callback, self._index
                for item in items:
                    if own and type(item) is not dict:
                        value = item
                    elif convert is not None:
                        value = convert(item)
                    else:
                        value = self._value(item)
                    if type(value) is CANothing and not self._wanted(value):
                        continue
                    ret = callback(value) if index is None else callback(value, index)
                    if ret is not None and (type(ret) is types.CoroutineType
                                            or inspect.isawaitable(ret)):
                        await ret
                    if self.state == self.CLOSED:
                        return
        except asyncio.CancelledError:
            raise
        except Exception:
            self.close(sys.exc_info())
        finally:
            self._task = None

    # ------------------------------------------------- loop side, queued
    def _arrive(self, item: Any) -> None:
        """An event taken from the loop's EventQueue (the dispatcher's batch)."""
        if (self._is_sync and self.all_updates and not self._signalled
                and self.state == self.OPEN and self._convert is None and type(item) is not dict):
            # Nothing of this subscription waits (it would be signalled) and
            # its callback is known to be a plain function: call it now, in
            # the loop, instead of queueing for a delivery pass at the end of
            # the batch. Every value goes to the callback either way.
            try:
                if type(item) is not CANothing or self._wanted(item):
                    self._call(item)  # what it returns is ignored, as in _deliver
            except Exception:
                self.close(sys.exc_info())
            return
        if self._add(item):
            self._disp.post_here(self._deliver)

    # the subscription itself is the callback its EventQueue holds: no bound
    # method per subscription (100,000 in a process; the garbage collector
    # visits each one, at interpreter exit too)
    __call__ = _arrive

    # ---------------------------------------------------------- libca side
    def _connection(self, up: bool) -> None:
        if not up and self.notify_disconnect and self.state == self.OPEN:
            self._enqueue(CANothing(self.name, ca.ECA_DISCONN))

    def _enqueue(self, item: Any) -> None:
        if self._add(item):
            self._disp.post(self._deliver)

    def _add(self, item: Any) -> bool:
        """Queue ``item`` (any thread); True if a delivery must be posted."""
        if self.state == self.CLOSED:
            return False
        with _lock:
            queue = self._queue
            if queue.maxlen and queue:
                self.dropped_callbacks += 1
            queue.append(item)
            if self._signalled:
                if len(queue) & 1023 == 0 and self._loop.is_closed():
                    # nobody will ever take these values (the loop closed with
                    # a delivery pending); libca's subscription is cancelled
                    # at exit or by close()
                    queue.clear()
                return False
            self._signalled = True
        return True

    # ---------------------------------------------------------------- close
    def close(self, exc_info: Any = None) -> None:
        """Stop the subscription; no callback runs after this (not even queued ones).

        ``exc_info`` (``sys.exc_info()`` of the error that closes it) is
        printed on stderr with the subscription's name.
        """
        if exc_info:
            try:
                sys.stderr.write("Subscription %s callback raised exception\n" % self.name)
                if exc_info[2] is not None:
                    traceback.print_exception(*exc_info)
                else:
                    sys.stderr.write("%s\n" % (exc_info[1],))
                sys.stderr.write("Subscription %s closed\n" % self.name)
            except Exception:
                pass
        if self.state == self.CLOSED:
            return
        self._shutdown()
        task = self._task
        if task is not None and task is not _current_task(self._loop):
            try:
                task.cancel()
            except RuntimeError:  # loop closed
                pass
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            flush()
        except Exception:
            pass

    def _abandon(self) -> None:
        """Interpreter exit: no more callbacks; libca's subscription is left
        to the context's end (see ``_channels._close_subscriptions_at_exit``)."""
        self.state = self.CLOSED
        with _lock:
            self._queue.clear()

    def _shutdown(self) -> None:
        """Cancel libca's subscription and forget the channel (any thread)."""
        self.state = self.CLOSED
        self.channel.remove_listener(self)
        self.channel.forget(self._waiter)
        self._waiter = None
        evid, self._evid = self._evid, None
        if evid is not None:
            try:
                ca.clear_subscription(evid)
            except Exception:
                pass
        with _lock:
            self._queue.clear()


def _current_task(loop: asyncio.AbstractEventLoop) -> Optional[asyncio.Task]:
    try:
        return asyncio.current_task(loop)
    except RuntimeError:
        return None


@overload
def camonitor(pv: str, callback: Callable[..., Any], events: Optional[int] = None,
              datatype: Any = None, format: int = FORMAT_RAW, count: int = 0,
              all_updates: bool = False, notify_disconnect: bool = False,
              connect_timeout: Timeout = None) -> Subscription: ...


@overload
def camonitor(pv: Union[List[str], tuple], callback: Callable[..., Any],
              events: Optional[int] = None, datatype: Any = None, format: int = FORMAT_RAW,
              count: int = 0, all_updates: bool = False, notify_disconnect: bool = False,
              connect_timeout: Timeout = None) -> List[Subscription]: ...


def camonitor(pv: Union[str, List[str], tuple], callback: Callable[..., Any],
              events: Optional[int] = None, datatype: Any = None, format: int = FORMAT_RAW,
              count: int = 0, all_updates: bool = False, notify_disconnect: bool = False,
              connect_timeout: Timeout = None) -> Union[Subscription, List[Subscription]]:
    """Subscribe to one PV (returns a :class:`Subscription`) or several (a list).

    Must be called with a running event loop. ``callback(value)`` (a plain
    or a coroutine function) gets every new augmented value; for a list of
    PVs it is called as ``callback(value, index)``. ``events``: a ``DBE_*``
    mask, default by format (RAW: VALUE, TIME: VALUE|ALARM, CTRL:
    VALUE|ALARM|PROPERTY). ``datatype``, ``format``, ``count`` as for
    :func:`caget`. ``all_updates``: deliver every value (else a value that
    arrives while the previous one waits is merged into the newest).
    ``notify_disconnect``: a disconnection is delivered as
    ``CANothing(name, ECA_DISCONN)`` (false). ``connect_timeout``: if not
    connected by then, the callback gets ``CANothing(name, ECA_TIMEOUT)``
    once; the subscription still starts when the PV connects.

    >>> import asyncio
    >>> from CaChannel import aio
    >>> async def main():
    ...     got = asyncio.Queue()
    ...     sub = aio.camonitor('catest', got.put_nowait)
    ...     first = await got.get()
    ...     await aio.caput('catest', first + 1)
    ...     print((await got.get()) - first)
    ...     sub.close()
    >>> asyncio.run(main())
    1.0
    """
    kw = dict(events=events, datatype=datatype, format=format, count=count,
              all_updates=all_updates, notify_disconnect=notify_disconnect,
              connect_timeout=connect_timeout)
    if isinstance(pv, (list, tuple)):
        get_channels(pv)
        subs = []
        for index, name in enumerate(pv):
            sub = Subscription(name, callback, **kw)
            sub._index = index  # before any delivery: values reach the loop later
            subs.append(sub)
        return subs
    return Subscription(pv, callback, **kw)
