"""caget, caput, connect, cainfo and run.

Every operation is a future that a libca callback (through the loop's
dispatcher) or a connection event completes; no task is created per PV, so a
list of 1,000 PVs costs 1,000 futures and one flush of the requests.

Timeouts (``timeout=``): ``None`` waits for ever, a number is seconds from
now, a 1-tuple ``(deadline,)`` an absolute ``time.time()`` deadline. A timeout
gives ``CANothing(name, ECA_TIMEOUT)``. Cancelling the awaiting task leaves
nothing behind: a waiter for the connection is removed at once, and the libca
callback of a request already sent only finds a finished future.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import time
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np

from .. import ca
from ._channels import Channel, get_channel
from ._dispatch import Dispatcher, dispatcher, flush
from ._values import ECA_NORMAL, FORMAT_RAW, CANothing, Request, encode_put

__all__ = ["caget", "caput", "connect", "cainfo", "CAInfo", "run", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 5.0
Timeout = Union[None, float, tuple]
PVs = Union[List[str], tuple]

_TIMEOUT = ca.ECA_TIMEOUT
_DISCONN = ca.ECA_DISCONN

#: futures of requests sent to libca whose callback has not run yet (tests)
_outstanding: set = set()


def _deadline(loop: asyncio.AbstractEventLoop, timeout: Timeout) -> Optional[float]:
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        return loop.time() + (float(timeout[0]) - time.time())
    return loop.time() + float(timeout)


def _expire(fut: asyncio.Future, name: str) -> None:
    if not fut.done():
        fut.set_result(CANothing(name, _TIMEOUT))


async def _wait(loop: asyncio.AbstractEventLoop, fut: asyncio.Future, name: str,
                timeout: Timeout) -> Any:
    if timeout is None:
        return await fut
    handle = loop.call_at(_deadline(loop, timeout), _expire, fut, name)
    try:
        return await fut
    finally:
        handle.cancel()


def _start(loop: asyncio.AbstractEventLoop, disp: Dispatcher, name: str,
           issue: Callable[[asyncio.Future, Channel, Dispatcher], None]) -> asyncio.Future:
    """A future completed by ``issue(fut, channel, disp)`` once ``name`` is connected."""
    fut = loop.create_future()
    chan = get_channel(name)
    if chan.connected:  # the common case: no waiter to set up
        _issue(fut, chan, disp, issue)
        return fut
    entry = chan.when_connected(disp, functools.partial(_ready, fut, chan, disp, issue))
    if entry is None:
        _issue(fut, chan, disp, issue)
    else:
        fut.add_done_callback(lambda _f, chan=chan, entry=entry: chan.forget(entry))
    return fut


def _ready(fut, chan, disp, issue, ok: bool) -> None:
    if fut.done():
        return
    if not ok:
        fut.set_result(CANothing(chan.name, _DISCONN))
        return
    _issue(fut, chan, disp, issue)
    disp.need_flush = True  # one flush after this pass of the dispatcher


def _issue(fut, chan, disp, issue) -> None:
    try:
        issue(fut, chan, disp)
    except CANothing as exc:
        fut.set_result(exc)
    except Exception as exc:  # bad argument: raised to the caller
        fut.set_exception(exc)


def _gather_futures(loop: asyncio.AbstractEventLoop, futs: Sequence[asyncio.Future],
                    names: Sequence[str], timeout: Timeout, throw: bool):
    """Await all futures; with ``throw`` stop at the first CANothing."""
    async def run() -> list:
        n = len(futs)
        results: list = [None] * n
        if not n:
            return results
        left = [n]
        done = loop.create_future()

        def one(i: int, f: asyncio.Future) -> None:
            if done.done():
                return
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None:
                done.set_exception(exc)
                return
            r = f.result()
            results[i] = r
            if throw and type(r) is CANothing and not r.ok:
                done.set_result(r)
                return
            left[0] -= 1
            if not left[0]:
                done.set_result(None)

        for i, f in enumerate(futs):
            f.add_done_callback(functools.partial(one, i))
        handle = None
        if timeout is not None:
            def expire() -> None:
                for f, name in zip(futs, names):
                    if not f.done():
                        f.set_result(CANothing(name, _TIMEOUT))
            handle = loop.call_at(_deadline(loop, timeout), expire)
        try:
            failure = await done
        finally:
            if handle is not None:
                handle.cancel()
            for f in futs:
                if not f.done():
                    f.cancel()
        if failure is not None:
            raise failure
        return results
    return run()


# ---------------------------------------------------------------------- caget
def _get_issuer(datatype, format, count, out):
    def issue(fut: asyncio.Future, chan: Channel, disp: Dispatcher) -> None:
        try:
            req = chan.requests.get((datatype, format))
        except TypeError:  # unhashable datatype
            req = None
        if req is None:
            req = Request(chan.name, chan.chid, datatype, format)
            try:
                chan.requests[(datatype, format)] = req
            except TypeError:
                pass
        status, _ = ca.get(chan.chid, req.dbr, req.count(count),
                           functools.partial(disp.post, _got, fut, req, out), use_numpy=True)
        if status != ECA_NORMAL:
            fut.set_result(CANothing(chan.name, status))
        else:
            _outstanding.add(fut)
    return issue


def _got(fut: asyncio.Future, req: Request, out: Optional[np.ndarray], args: dict) -> None:
    _outstanding.discard(fut)
    if fut.done():
        return
    value = req.convert(args)
    if out is not None and type(value) is not CANothing:
        value = _into(out, value)
    fut.set_result(value)


def _into(out: np.ndarray, value: Any) -> Any:
    """Copy ``value`` into the caller's array; return the filled part, augmented."""
    data = np.asarray(value).reshape(-1)
    n = min(data.size, out.size)
    flat = out.reshape(-1)
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
    :class:`CANothing`, or with ``throw=False`` returns it in place of the
    value. With a list and ``throw=True`` the first failure is raised.

    Beyond aioca: ``out=`` a numpy array receives the elements (copied in;
    the result is an augmented view of its filled part).

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
    loop = asyncio.get_running_loop()
    disp = dispatcher(loop)
    issue = _get_issuer(datatype, format, count, out)
    if isinstance(pv, (list, tuple)):
        if out is not None:
            raise ValueError("out= is for a single PV")
        futs = [_start(loop, disp, name, issue) for name in pv]
        flush()
        return await _gather_futures(loop, futs, pv, timeout, throw)
    fut = _start(loop, disp, pv, issue)
    flush()
    result = await _wait(loop, fut, pv, timeout)
    if throw and type(result) is CANothing:
        raise result
    return result


# ---------------------------------------------------------------------- caput
def _put_issuer(value, datatype, wait: bool, callback):
    def issue(fut: asyncio.Future, chan: Channel, disp: Dispatcher) -> None:
        data, chtype = encode_put(chan.name, chan.chid, value, datatype)
        if wait or callback is not None:
            status = ca.put(chan.chid, data, chtype, None,
                            functools.partial(disp.post, _put_done, fut, chan.name, callback))
            if status == ECA_NORMAL:
                _outstanding.add(fut)
                if callback is not None and not wait:
                    # callback mode: the caller goes on once the put is sent
                    fut.set_result(CANothing(chan.name))
                return
        else:
            status = ca.put(chan.chid, data, chtype)
        fut.set_result(CANothing(chan.name, status))
    return issue


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
    :class:`CANothing` or, with ``throw=False``, are returned (false).

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
        futs = [_start(loop, disp, name, _put_issuer(v, datatype, wait, callback))
                for name, v in zip(pv, values)]
        flush()
        return await _gather_futures(loop, futs, pv, timeout, throw)
    fut = _start(loop, disp, pv, _put_issuer(value, datatype, wait, callback))
    flush()
    result = await _wait(loop, fut, pv, timeout)
    if throw and not result.ok:
        raise result
    return result


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
    loop = asyncio.get_running_loop()
    disp = dispatcher(loop)
    issue = _connect_issuer(cainfo)
    names = list(pv) if isinstance(pv, (list, tuple)) else None
    if not wait:
        results = []
        for name in (names if names is not None else [pv]):
            chan = get_channel(name)
            results.append(CAInfo(name, chan) if cainfo else CANothing(name))
        flush()
        return results if names is not None else results[0]
    if names is not None:
        futs = [_start(loop, disp, name, issue) for name in names]
        flush()
        return await _gather_futures(loop, futs, names, timeout, throw)
    fut = _start(loop, disp, pv, issue)
    flush()
    result = await _wait(loop, fut, pv, timeout)
    if throw and type(result) is CANothing and not result.ok:
        raise result
    return result


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
    """Run ``coro`` in a new event loop (``asyncio.run`` does the same job).

    With ``forever`` the loop keeps running after ``coro`` finished, until
    ``loop.stop()``; the loop is closed on return.

    >>> from CaChannel import aio
    >>> aio.run(aio.caget('catest', datatype=aio.DBR_CLASS_NAME))
    'ao'
    """
    loop = asyncio.new_event_loop()
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
