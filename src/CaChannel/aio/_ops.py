"""caget, caput, connect, cainfo and run.

Every operation is a future that a libca callback (through the loop's
dispatcher) or a connection event completes; no task is created per PV, so a
list of 1,000 PVs costs 1,000 futures and one flush of the requests.

Timeouts (``timeout=``): ``None`` waits for ever, a number is seconds from
now, a 1-tuple ``(deadline,)`` an absolute ``time.time()`` deadline; anything
else is refused at the call (``TypeError``, ``ValueError`` for NaN). A
timeout gives ``CANothing(name, ECA_TIMEOUT)``.

Failures, as in aioca: a request libca refuses at once (no read or write
access...) raises ``epicscorelibs.ca.cadef.CAException`` (``throw=False``:
returned as ``CANothing(name, status)``); a timeout, a disconnection or a
failure reported by the server raises :class:`CANothing`; a bad argument
raises ``TypeError``/``ValueError`` before anything is sent. Cancelling the awaiting task leaves
nothing behind: a waiter for the connection is removed at once, and the libca
callback of a request already sent only finds a finished future.
"""
from __future__ import annotations

import asyncio
import inspect
import math
import numbers
import time
import warnings
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np

from .. import ca
from ._channels import Channel, Waiter, get_channel, get_channels
from ._dispatch import Dispatcher, dispatcher, flush
from ._values import (ECA_NORMAL, FORMAT_RAW, CAException, CANothing, Request,
                      ca_error, encode_put)

__all__ = ["caget", "caput", "connect", "cainfo", "CAInfo", "run", "DEFAULT_TIMEOUT",
           "check_timeout", "deadline"]

DEFAULT_TIMEOUT = 5.0
Timeout = Union[None, float, tuple]
PVs = Union[List[str], tuple]

_TIMEOUT = ca.ECA_TIMEOUT
_DISCONN = ca.ECA_DISCONN

#: futures of requests sent to libca whose callback has not run yet (tests)
_outstanding: set = set()


def check_timeout(timeout: Any, what: str = "timeout") -> None:
    """Refuse a timeout that is not None, a number or a 1-tuple ``(deadline,)``.

    >>> check_timeout(())
    Traceback (most recent call last):
    ...
    TypeError: timeout must be None, seconds (a number) or (deadline,) (a 1-tuple), not ()
    """
    if timeout is None:
        return
    value = timeout
    if isinstance(timeout, tuple):
        value = timeout[0] if len(timeout) == 1 else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("%s must be None, seconds (a number) or (deadline,) (a 1-tuple), not %r"
                        % (what, timeout))
    if math.isnan(value):
        raise ValueError("%s must not be NaN" % what)


def deadline(loop: asyncio.AbstractEventLoop, timeout: Timeout) -> Optional[float]:
    """``loop.time()`` at which ``timeout`` (checked by :func:`check_timeout`) expires."""
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        return loop.time() + (float(timeout[0]) - time.time())
    return loop.time() + float(timeout)


def _expire(fut: asyncio.Future, name: str) -> None:
    if not fut.done():
        fut.set_result(CANothing(name, _TIMEOUT))


class _Ready(Waiter):
    """Issues an operation's request once its channel is connected (see
    :func:`_start`); it is also the token that forgets the wait."""

    __slots__ = ("fut", "chan", "issue")

    def __init__(self, disp: Dispatcher, fut: Any, chan: Channel, issue: Callable) -> None:
        self.disp = disp
        self.fut = fut
        self.chan = chan
        self.issue = issue

    def __call__(self, ok: bool) -> None:
        fut = self.fut
        if fut.done():
            return
        if not ok:
            fut.set_result(CANothing(self.chan.name, _DISCONN))
            return
        _issue(fut, self.chan, self.disp, self.issue)
        self.disp.flush_soon()

    def forget(self) -> None:
        """The operation stopped waiting (done, cancelled, timed out)."""
        self.chan.forget(self)


def _start(loop: asyncio.AbstractEventLoop, disp: Dispatcher, name: str,
           issue: Callable[[asyncio.Future, Channel, Dispatcher], None],
           fut: Any = None) -> Any:
    """``(future, waiter)``: the future (or the given :class:`_Slot`) is
    completed by ``issue(fut, channel, disp)`` once ``name`` is connected;
    ``waiter`` (None if the channel was connected) must be ``forget()``-ed
    when the caller stops waiting."""
    if fut is None:
        fut = loop.create_future()
    chan = get_channel(name)
    if chan.connected:  # the common case: no waiter to set up
        _issue(fut, chan, disp, issue)
        return fut, None
    waiter = _Ready(disp, fut, chan, issue)
    if not chan.when_connected(waiter):
        _issue(fut, chan, disp, issue)
        return fut, None
    return fut, waiter


def _issue(fut, chan, disp, issue) -> None:
    try:
        issue(fut, chan, disp)
    except CANothing as exc:
        fut.set_result(exc)
    except Exception as exc:  # bad argument: raised to the caller
        fut.set_exception(exc)


class _Gather:
    """The results of a list operation, settled as each name's slot finishes.

    The rule of ``throw``: with it the first failure (a false
    :class:`CANothing`, or an exception) ends the whole operation; without
    it a ``CAException`` becomes that name's ``CANothing`` and every name
    gets its result. Other exceptions (bad arguments) always end it.
    """

    __slots__ = ("names", "throw", "results", "left", "done")

    def __init__(self, loop: asyncio.AbstractEventLoop, names: Sequence[str], throw: bool) -> None:
        self.names = names
        self.throw = throw
        self.results: list = [None] * len(names)
        self.left = len(names)
        self.done = loop.create_future()

    def settle(self, i: int, result: Any, exc: Optional[BaseException]) -> None:
        done = self.done
        if done.done():
            return
        if exc is not None:
            if not self.throw and isinstance(exc, CAException):
                result = CANothing(self.names[i], exc.status)
            else:
                done.set_exception(exc)
                return
        self.results[i] = result
        if self.throw and type(result) is CANothing and not result.ok:
            done.set_result(result)
            return
        self.left -= 1
        if not self.left:
            done.set_result(None)


class _Slot:
    """One name's place in a list operation.

    It has the few methods of a future that :func:`_start`, the issuers and
    the reply handlers use, and reports straight to its :class:`_Gather`:
    a list of 100,000 names costs no asyncio future, done callback and loop
    handle per name. Used in the loop's thread only.
    """

    __slots__ = ("gather", "index", "finished", "waiter")

    def __init__(self, gather: _Gather, index: int) -> None:
        self.gather = gather
        self.index = index
        self.finished = False
        self.waiter: Optional[_Ready] = None  # the connection wait, to forget when finished

    def done(self) -> bool:
        return self.finished

    def cancelled(self) -> bool:
        return False

    def set_result(self, result: Any) -> None:
        if not self.finished:
            self.finish()
            self.gather.settle(self.index, result, None)

    def set_exception(self, exc: BaseException) -> None:
        if not self.finished:
            self.finish()
            self.gather.settle(self.index, None, exc)

    def finish(self) -> None:
        """Finished: a late reply finds it done; the connection wait is forgotten."""
        self.finished = True
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.forget()


async def _gather(loop: asyncio.AbstractEventLoop, disp: Dispatcher, names: Sequence[str],
                  issues: Sequence[Callable], timeout: Timeout, throw: bool) -> list:
    """Start ``issues[i]`` for ``names[i]`` (each once connected) and wait for
    all of them, one deadline for all; see :class:`_Gather` for ``throw``."""
    gather = _Gather(loop, names, throw)
    if not names:
        return gather.results
    for name in names:
        if type(name) is not str:
            # refused here, before the names ahead of it send their requests
            # (their replies could outlive the caller's event loop)
            get_channel(name)
    get_channels(names)
    slots = []
    try:
        for i, (name, issue) in enumerate(zip(names, issues)):
            slot = _Slot(gather, i)
            slots.append(slot)
            slot.waiter = _start(loop, disp, name, issue, slot)[1]
    except BaseException:
        for slot in slots:
            slot.finish()
        raise
    disp.flush_soon()
    handle = None
    if timeout is not None:
        def expire() -> None:
            for slot, name in zip(slots, names):
                if not slot.finished:
                    slot.set_result(CANothing(name, _TIMEOUT))
        when = deadline(loop, timeout)
        if when is not None and when <= loop.time():  # expired already: see _wait
            expire()
        handle = loop.call_at(when, expire)
    try:
        failure = await gather.done
    finally:
        if handle is not None:
            handle.cancel()
        for slot in slots:
            if not slot.finished:
                slot.finish()
    if failure is not None:
        raise failure
    return gather.results


# ---------------------------------------------------------------------- caget
class _Get:
    """``issue(fut, chan, disp)`` of a caget: one object per call (a closure
    with its cells was six for the garbage collector to track)."""

    __slots__ = ("datatype", "format", "count", "out")

    def __init__(self, datatype: Any, format: int, count: int, out: Optional[np.ndarray]) -> None:
        self.datatype, self.format, self.count, self.out = datatype, format, count, out

    def __call__(self, fut: asyncio.Future, chan: Channel, disp: Dispatcher) -> None:
        out = self.out
        req = chan.request(self.datatype, self.format)
        if out is not None:
            _check_out_type(out, req)
        reply, queue = disp.replier(_got, fut, req, out)
        # a scalar's reply comes as its augmented value where the request allows
        status, _ = ca.get(chan.chid, req.dbr, req.count(self.count), reply, use_numpy=True,
                           augment=req.augment if out is None else None, queue=queue)
        if status != ECA_NORMAL:
            fut.set_exception(ca_error(status, "ca_array_get_callback"))
        else:
            _outstanding.add(fut)


def _got(fut: asyncio.Future, req: Request, out: Optional[np.ndarray], args: Any) -> None:
    _outstanding.discard(fut)
    if fut.done():
        return
    try:
        # the reply's dict, or the value itself (augmented by the backend)
        value = req.convert(args) if type(args) is dict else args
        if out is not None and type(value) is not CANothing:
            value = _into(out, value)
    except Exception as exc:  # the caller learns why; the future must complete
        fut.set_exception(exc)
        return
    fut.set_result(value)


def _check_out(out: Any) -> None:
    """``out=`` must be a writable C-contiguous numeric numpy array (checked at the call)."""
    if not isinstance(out, np.ndarray):
        raise TypeError("out must be a numpy array, not %s" % type(out).__name__)
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable C-contiguous numpy array")
    if out.dtype.kind not in "biuf":
        raise TypeError("out must have a numeric dtype, not %s" % out.dtype)


def _check_out_type(out: np.ndarray, req: Request) -> None:
    """The value asked for must fit ``out`` (checked once the channel's type is known)."""
    dtype = req.dtype
    if dtype is None:
        what = "text" if req.text else "DBR_STRING"
        raise TypeError("caget(%r, out=...): a %s value cannot be read into a numpy array of %s"
                        % (req.name, what, out.dtype))
    if not np.can_cast(dtype, out.dtype, "same_kind"):
        raise TypeError("caget(%r, out=...): %s elements do not fit an array of %s"
                        % (req.name, dtype, out.dtype))


def _into(out: np.ndarray, value: Any) -> Any:
    """Copy ``value`` into the caller's array; return the filled part, augmented."""
    data = np.asarray(value).reshape(-1)
    flat = out.reshape(-1)  # a view: out is C-contiguous
    n = min(data.size, flat.size)
    flat[:n] = data[:n]
    result = flat[:n].view(type(value) if isinstance(value, np.ndarray) else np.ndarray)
    try:
        result.__dict__.update(value.__dict__)
    except AttributeError:
        pass
    return result


async def caget(pv: Union[str, PVs], datatype: Any = None, format: int = FORMAT_RAW,
                count: int = 0, *, timeout: Timeout = DEFAULT_TIMEOUT, throw: bool = True,
                out: Optional[np.ndarray] = None) -> Any:
    """Read one PV (a ``str``) or several (a list/tuple, read concurrently).

    ``datatype``: ``None`` (native), a ``DBR_*`` code (also ``DBR_CHAR_STR``,
    ``DBR_CHAR_BYTES``, ``DBR_CHAR_UNICODE``, ``DBR_ENUM_STR``,
    ``DBR_STSACK_STRING``, ``DBR_CLASS_NAME``) or a Python/numpy type
    (``float``, ``int``, ``str``, ``numpy.int16``...). ``format``:
    ``FORMAT_RAW``, ``FORMAT_TIME`` or ``FORMAT_CTRL``. ``count``: 0 = as many
    elements as the server holds now, -1 = the native count, n > 0 = at most n.

    Returns an augmented value (see :mod:`CaChannel.aio`), or a list of them
    in the order of the names. On failure (including timeout) raises
    :class:`CANothing` (``CAException`` when libca refuses the request), or
    with ``throw=False`` returns a false ``CANothing`` in place of the value.
    With a list and ``throw=True`` the first failure is raised.

    Beyond aioca: ``out=`` a writable C-contiguous numeric numpy array
    receives the elements (copied in; the result is an augmented view of its
    filled part). A string or text value, or elements that do not fit its
    dtype (``float`` into ``int``), raise ``TypeError``.

    >>> import asyncio
    >>> from CaChannel import aio
    >>> async def main():
    ...     await aio.caput(['catest', 'cabo'], [2.5, 'Busy'], wait=True)
    ...     value = await aio.caget('catest', format=aio.FORMAT_CTRL)
    ...     print(value, value.units, value.precision)
    ...     print(await aio.caget(['catest', 'cabo'], datatype=aio.DBR_ENUM_STR))
    ...     print(await aio.caget('no:such:pv', timeout=0.2, throw=False))
    >>> asyncio.run(main())
    2.5 mm 4
    [2.5, 'Busy']
    no:such:pv: User specified timeout on IO operation expired
    """
    check_timeout(timeout)
    if out is not None:
        if isinstance(pv, (list, tuple)):
            raise ValueError("out= is for a single PV")
        _check_out(out)
    loop = asyncio.get_running_loop()
    disp = dispatcher(loop)
    issue = _Get(datatype, format, count, out)
    if isinstance(pv, (list, tuple)):
        return await _gather(loop, disp, pv, [issue] * len(pv), timeout, throw)
    fut, waiter = _start(loop, disp, pv, issue)
    disp.flush_soon()
    return await _single(loop, fut, pv, timeout, throw, waiter)


async def _single(loop: asyncio.AbstractEventLoop, fut: asyncio.Future, pv: str,
                  timeout: Timeout, throw: bool, waiter: Optional[_Ready] = None) -> Any:
    """The result of one PV's future (waited for at most ``timeout``), with
    the ``throw`` rule applied; ``waiter`` (of :func:`_start`) is forgotten
    when the wait ends, however it ends."""
    handle = None
    if timeout is not None:
        when = deadline(loop, timeout)
        if when is not None and when <= loop.time():
            # expired already (timeout <= 0, a past deadline): a timeout now, as
            # asyncio.wait_for gives, not a race against a fast reply
            _expire(fut, pv)
        handle = loop.call_at(when, _expire, fut, pv)
    try:
        result = await fut
    except CAException as exc:
        if throw:
            raise
        return CANothing(pv, exc.status)
    finally:
        if handle is not None:
            handle.cancel()
        if waiter is not None:
            waiter.forget()
    if throw and type(result) is CANothing and not result.ok:
        raise result
    return result


# ---------------------------------------------------------------------- caput
class _Put:
    """``issue(fut, chan, disp)`` of a caput (one object per call, as :class:`_Get`)."""

    __slots__ = ("value", "datatype", "wait", "callback")

    def __init__(self, value: Any, datatype: Any, wait: bool, callback: Any) -> None:
        self.value, self.datatype, self.wait, self.callback = value, datatype, wait, callback

    def __call__(self, fut: asyncio.Future, chan: Channel, disp: Dispatcher) -> None:
        callback = self.callback
        data, chtype = encode_put(chan.name, chan.chid, self.value, self.datatype)
        if self.wait or callback is not None:
            reply, queue = disp.replier(_put_done, fut, chan.name, callback)
            status = ca.put(chan.chid, data, chtype, None, reply, queue=queue)
            if status != ECA_NORMAL:
                fut.set_exception(ca_error(status, "ca_array_put_callback"))
                return
            _outstanding.add(fut)
            if callback is not None and not self.wait:
                # callback mode: the caller goes on once the put is sent
                fut.set_result(CANothing(chan.name))
            return
        status = ca.put(chan.chid, data, chtype)
        if status != ECA_NORMAL:
            fut.set_exception(ca_error(status, "ca_array_put"))
        else:
            fut.set_result(CANothing(chan.name))


def _put_done(fut: asyncio.Future, name: str, callback, args: dict) -> None:
    _outstanding.discard(fut)
    result = CANothing(name, args["status"])
    if callback is not None:
        _call_user(callback, result)
    if not fut.done():
        fut.set_result(result)


def _call_user(callback: Callable, arg: Any) -> None:
    try:
        ret = callback(arg)
        if inspect.isawaitable(ret):
            asyncio.ensure_future(ret)
    except Exception:
        import traceback
        traceback.print_exc()


async def caput(pv: Union[str, PVs], value: Any, *args: Any, datatype: Any = None,
                wait: bool = False, repeat_value: bool = False,
                timeout: Timeout = DEFAULT_TIMEOUT,
                callback: Optional[Callable[[CANothing], Any]] = None,
                throw: bool = True) -> Union[CANothing, List[CANothing]]:
    """Write to one PV, or to several (then concurrently).

    Positional arguments after ``value`` follow aioca's two forms:
    ``caput(pv, value, datatype, wait)`` for one PV and
    ``caput(pvs, values, repeat_value, datatype, wait)`` for a list.

    With a list of PVs, ``value`` is a list of the same length (item i goes
    to PV i), unless it is a ``str`` or not iterable or ``repeat_value`` is
    true: then every PV gets ``value``. ``wait=True`` waits until the server
    completed the write and the processing it started. ``callback`` (beyond
    aioca, as cothread): the write is sent with completion notification and
    ``callback(CANothing)`` (a function or coroutine function) runs in the
    loop when it completed; without ``wait`` caput returns once it is sent.

    A ``str`` without ``datatype`` is sent as DBR_STRING (the server converts
    it, e.g. an enum state name); a char array whose name ends in ``$`` or
    ``datatype=DBR_CHAR_STR`` takes a ``str`` as its characters.

    Returns ``CANothing(pv)`` (true) or a list of them; failures raise
    :class:`CANothing` (``CAException`` when libca refuses the write, e.g.
    without write access) or, with ``throw=False``, are returned as a false
    ``CANothing``. A ``callback`` that is not callable raises ``TypeError``
    before anything is written.

    >>> import asyncio
    >>> from CaChannel import aio
    >>> async def main():
    ...     print(bool(await aio.caput('catest', 3, wait=True)))
    ...     await aio.caput(['catest', 'cabo'], [4, 'Done'], wait=True)
    ...     print(await aio.caget(['catest', 'cabo']))
    >>> asyncio.run(main())
    True
    [4.0, 0]
    """
    if args:
        names = (("repeat_value", "datatype", "wait") if isinstance(pv, (list, tuple))
                 else ("datatype", "wait"))
        if len(args) > len(names):
            raise TypeError("caput() takes at most %d positional arguments after the value"
                            % len(names))
        given = dict(zip(names, args))
        repeat_value = given.get("repeat_value", repeat_value)
        datatype = given.get("datatype", datatype)
        wait = given.get("wait", wait)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None, not %s" % type(callback).__name__)
    check_timeout(timeout)
    loop = asyncio.get_running_loop()
    disp = dispatcher(loop)
    if isinstance(pv, (list, tuple)):
        if repeat_value or isinstance(value, (str, bytes)):
            values = [value] * len(pv)
        else:
            try:
                values = list(value)
            except TypeError:
                values = [value] * len(pv)
        if len(values) != len(pv):
            raise ValueError("%d values for %d PVs" % (len(values), len(pv)))
        return await _gather(loop, disp, pv, [_Put(v, datatype, wait, callback)
                                              for v in values], timeout, throw)
    fut, waiter = _start(loop, disp, pv, _Put(value, datatype, wait, callback))
    disp.flush_soon()
    return await _single(loop, fut, pv, timeout, throw, waiter)


# -------------------------------------------------------------- connect/info
class CAInfo:
    """What :func:`cainfo` (or ``connect(..., cainfo=True)``) tells about a PV.

    Attributes: ``ok`` (True), ``name``, ``state`` (index into
    ``state_strings``), ``host`` (``'host:port'``), ``read``/``write``
    (access rights), ``count`` (native element count) and ``datatype``
    (native DBF type, index into ``datatype_strings``; 7 when not connected).
    """

    #: texts of ``state`` (libca's channel states)
    state_strings = ["never connected", "previously connected", "connected", "closed"]
    #: texts of ``datatype``
    datatype_strings = ["string", "short", "float", "enum", "char", "long", "double",
                        "no access"]

    def __init__(self, pv: str, channel: Channel) -> None:
        chid = channel.chid
        self.ok = True
        self.name = pv
        self.state = int(ca.state(chid))
        self.host = ca.host_name(chid)
        self.read = bool(ca.read_access(chid))
        self.write = bool(ca.write_access(chid))
        if self.state == ca.cs_conn:
            self.count = int(ca.element_count(chid))
            self.datatype = int(ca.field_type(chid))
        else:
            self.count = 0
            self.datatype = 7

    def __str__(self) -> str:
        return ("%s:\n    State: %s\n    Host: %s\n    Access: %s, %s\n"
                "    Data type: %s\n    Count: %d" % (
                    self.name, self.state_strings[self.state], self.host, self.read,
                    self.write, self.datatype_strings[self.datatype], self.count))

    def __repr__(self) -> str:
        return "<CAInfo %r %s>" % (self.name, self.state_strings[self.state])


def _connect_issuer(info: bool):
    def issue(fut: asyncio.Future, chan: Channel, disp: Dispatcher) -> None:
        fut.set_result(CAInfo(chan.name, chan) if info else CANothing(chan.name))
    return issue


async def connect(pv: Union[str, PVs], wait: bool = True, cainfo: bool = False, *,
                  timeout: Timeout = DEFAULT_TIMEOUT,
                  throw: bool = True) -> Any:
    """Connect to one or several PVs (the other calls connect on their own).

    With ``wait=False`` the search is only started. Returns ``CANothing(pv)``
    (or with ``cainfo=True`` a :class:`CAInfo`), or a list of them; a timeout
    raises :class:`CANothing` (``throw=False``: returned). Calling it again is
    harmless.

    >>> import asyncio
    >>> from CaChannel import aio
    >>> asyncio.run(aio.connect(['catest', 'cabo']))
    [CANothing('catest', 1), CANothing('cabo', 1)]
    """
    check_timeout(timeout)
    loop = asyncio.get_running_loop()
    disp = dispatcher(loop)
    issue = _connect_issuer(cainfo)
    names = list(pv) if isinstance(pv, (list, tuple)) else None
    if names is not None:
        get_channels(names)
    if not wait:
        results = []
        for name in (names if names is not None else [pv]):
            chan = get_channel(name)
            results.append(CAInfo(name, chan) if cainfo else CANothing(name))
        flush()
        return results if names is not None else results[0]
    if names is not None:
        return await _gather(loop, disp, names, [issue] * len(names), timeout, throw)
    fut, waiter = _start(loop, disp, pv, issue)
    disp.flush_soon()
    return await _single(loop, fut, pv, timeout, throw, waiter)


async def cainfo(pv: Union[str, PVs], wait: bool = True, *, timeout: Timeout = DEFAULT_TIMEOUT,
                 throw: bool = True) -> Any:
    """:class:`CAInfo` of one PV or a list of them (see :func:`connect`).

    >>> import asyncio
    >>> from CaChannel import aio
    >>> info = asyncio.run(aio.cainfo('catest'))
    >>> info.state_strings[info.state], info.datatype_strings[info.datatype], info.count
    ('connected', 'double', 1)
    """
    return await connect(pv, wait, True, timeout=timeout, throw=throw)


def run(coro: Any, forever: bool = False) -> Any:
    """Run ``coro`` in the current event loop and close the loop (as aioca's ``run``).

    ``asyncio.run`` does the same job for new code. The loop is the one set
    with ``asyncio.set_event_loop`` if there is one (not closed), else a new
    one. With ``forever`` the loop keeps running after ``coro`` finished,
    until something calls ``loop.stop()`` (``coro`` itself may); ``coro`` is
    then cancelled if still running. The loop is closed and unset on return.

    >>> from CaChannel import aio
    >>> aio.run(aio.caget('catest', datatype=aio.DBR_CLASS_NAME))
    'ao'
    """
    loop = _current_loop()
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
    elif loop.is_running():
        raise RuntimeError("run() cannot be called from a running event loop")
    asyncio.set_event_loop(loop)
    task = None
    try:
        if forever:
            task = loop.create_task(coro)
            loop.run_forever()
            return None
        return loop.run_until_complete(coro)
    finally:
        try:
            if task is not None and not task.done():
                task.cancel()
                loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _current_loop() -> Optional[asyncio.AbstractEventLoop]:
    """The loop set for this thread, or None (never warns)."""
    with warnings.catch_warnings():
        # get_event_loop() warns (3.12+) or makes a loop when none is set;
        # only an explicitly set loop is wanted here
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return asyncio.get_event_loop()
        except RuntimeError:  # none set (3.14+, or not the main thread)
            return None
