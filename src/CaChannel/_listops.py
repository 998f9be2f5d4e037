"""List forms of ``util.caget``/``caput``/``cainfo``: every channel at once, one timeout.

Each name's request is issued the moment its channel is connected: cached
channels at once, new ones from their connection callback. Requests issued
inside libca's callbacks are sent by libca when its receive thread finished
the batch of messages it was processing (measured: no flush needed; a flush
per callback would send 1,000 small packets for 1,000 names and cost more
than the whole search), so the requests of a burst of connections travel
together; the waiting caller also flushes every 20 ms as a safety net. The caller waits on one event until
every request finished or the single deadline passed, so a name that never
connects costs the timeout once and delays nobody else's read.

Failures are collected per PV and raised together at the end
(:class:`CaChannelException` whose ``failures`` maps each failed name to its
own exception), or left as ``None`` with ``throw=False``.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import ca, core
from ._channel import CaChannel, CaChannelException
from ._convert import chars_to_str, plain, use_numpy

_Failures = Dict[Any, CaChannelException]
# issue(slot, name, channel, done) -> None: send the request of ``slot``; ``done(args)``
# must eventually be called with a dict carrying ``status`` (may be called at once)
_Issue = Callable[[int, Any, Any, Callable[[Dict[str, Any]], None]], None]


def is_many(name: Any) -> bool:
    """A list/tuple of names (not one ``str``/``bytes`` name)."""
    return isinstance(name, (list, tuple))


def _label(name: Any) -> str:
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return repr(name)


class _Batch:
    """One list operation: channels, per-slot results, one deadline."""

    def __init__(self, names: Sequence[Any], timeout: Optional[float], issue: _Issue,
                 wait_limit: Optional[float] = -1) -> None:
        self.names = list(names)
        for name in self.names:
            core.checks.pv_name(name)
        self.timeout = core.checks.timeout(timeout, CaChannel.ca_timeout)
        self.issue = issue
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.closed = False
        self.results: Dict[int, Dict[str, Any]] = {}
        self.failures: _Failures = {}
        self.slots: Dict[Any, List[int]] = {}
        for slot, name in enumerate(self.names):
            self.slots.setdefault(name, []).append(slot)
        self.left = len(self.names)
        self.chans: Dict[Any, core.Channel] = {}
        self.connected: Dict[Any, bool] = {}
        # wait_limit: -1 = the timeout; None = no limit once connected (caput wait, timeout None)
        self.wait_limit = wait_limit

    # -- completion bookkeeping (any thread)
    def _finish(self, slot: int, args: Dict[str, Any]) -> None:
        with self.lock:
            if slot in self.results:
                return
            self.results[slot] = args
            self.left -= 1
            if self.left <= 0:
                self.done.set()

    def _maker(self, slot: int) -> Callable[[Dict[str, Any]], None]:
        return lambda args: self._finish(slot, args)

    def _issue_name(self, name: Any, chan: core.Channel) -> None:
        for slot in self.slots[name]:
            try:
                self.issue(slot, name, chan, self._maker(slot))
            except CaChannelException as exc:
                self._finish(slot, {"status": exc.status, "error": exc})
            except (TypeError, ValueError, OverflowError) as exc:
                self._finish(slot, {"status": ca.ECA_BADTYPE, "error": CaChannelException(
                    ca.ECA_BADTYPE, "%s: %s" % (_label(name), exc))})

    def _up(self, name: Any, chan: core.Channel) -> None:
        """``name``'s channel is connected (any thread): issue its requests once."""
        with self.lock:
            if self.closed or self.connected.get(name):
                return
            self.connected[name] = True
        self._issue_name(name, chan)

    # -- the call
    def run(self) -> "_Batch":
        start = time.monotonic()
        if not self.names:
            return self
        listeners = []
        # (the names were checked in __init__: what fails here is libca refusing a channel)
        failed: Dict[Any, CaChannelException] = {}
        chans = core.acquire_many(self.slots, flush=False, failures=failed)
        try:
            for name, chan in zip(self.slots, chans):
                if chan is None:
                    exc = CaChannelException(failed[name].status, "search for %s" % _label(name))
                    for slot in self.slots[name]:
                        self._finish(slot, {"status": exc.status, "error": exc})
                    continue
                self.chans[name] = chan
                if chan.ever_connected and not chan.connected:
                    # a channel whose server went away: fails at once (ECA_DISCONN)
                    self._up(name, chan)
                    continue
                if not chan.connected:
                    def on_conn(ch: core.Channel, up: bool, name: Any = name) -> None:
                        if up:
                            self._up(name, ch)

                    chan.add_listener(on_conn, replay=False)
                    listeners.append((chan, on_conn))
                if chan.connected:  # (also if it connected while the listener was added)
                    self._up(name, chan)
            core.context.flush()
            end = start + self.timeout
            while not self.done.wait(max(min(0.02, end - time.monotonic()), 0.0)):
                if time.monotonic() >= end:
                    break
                ca.flush_io()
            if not self.done.is_set() and self.wait_limit is None:
                # writes of connected channels may take as long as they need
                with self.lock:
                    waiting_unconnected = any(not self.connected.get(self.names[s])
                                              for s in range(len(self.names)) if s not in self.results)
                if not waiting_unconnected:
                    # bounded steps: a Ctrl-C the kernel gave one of libca's threads is
                    # raised here only when the main thread runs Python again
                    while not self.done.wait(0.25):
                        pass
            with self.lock:
                self.closed = True
        finally:
            for chan, fn in listeners:
                chan.remove_listener(fn)
            core.release_many(chans)
        self._settle()
        return self

    def _settle(self) -> None:
        """Fill in the failures."""
        with self.lock:
            results = dict(self.results)
        for slot, name in enumerate(self.names):
            if name in self.failures:
                continue
            args = results.get(slot)
            if args is None:
                if self.connected.get(name):
                    what = "no answer within %.3g s" % self.timeout
                    self.failures[name] = CaChannelException(ca.ECA_TIMEOUT, "%s: %s" % (_label(name), what))
                else:
                    self.failures[name] = CaChannelException(
                        ca.ECA_TIMEOUT, "%s did not connect within %.3g s" % (_label(name), self.timeout))
            elif args.get("error") is not None:
                self.failures[name] = args["error"]
            elif args.get("status") != ca.ECA_NORMAL:
                self.failures[name] = CaChannelException(args.get("status"), _label(name))

    def raise_failures(self, what: str) -> None:
        raise_failures(self.names, self.failures, what)


def _need_connected(name: Any, chid: Any) -> None:
    if ca.state(chid) != ca.cs_conn:  # a cached channel whose server went away
        raise CaChannelException(ca.ECA_DISCONN, "%s is disconnected" % _label(name))


def raise_failures(names: Sequence[Any], failures: _Failures, what: str) -> None:
    """Raise one CaChannelException naming every failed PV (in the order given)."""
    if not failures:
        return
    ordered = [name for name in dict.fromkeys(names) if name in failures]
    first = failures[ordered[0]]
    detail = "%s failed for %d of %d PVs: %s" % (
        what, len(ordered), len(set(names)),
        "; ".join("%s (%s)" % (_label(n), failures[n]) for n in ordered))
    exc = CaChannelException(first.status, detail)
    exc.failures = {name: failures[name] for name in ordered}
    raise exc


def caget(names: Sequence[Any], as_string: bool = False, count: Optional[int] = None, timeout: Optional[float] = None,
          throw: bool = True) -> List[Any]:
    """Values of ``names`` in order (see :func:`CaChannel.util.caget`)."""
    numpy_flag = use_numpy(None)
    chars_slots = set()

    def issue(slot: int, name: Any, chan: core.Channel, done: Callable) -> None:
        chid = chan.chid
        _need_connected(name, chid)
        ftype = ca.field_type(chid)
        req = ca.dbf_type_to_DBR(ftype)
        if as_string and ftype == ca.DBF_ENUM:
            req = ca.DBR_STRING
        if as_string and ftype == ca.DBF_CHAR:
            chars_slots.add(slot)
        status, _ = ca.get(chid, req, count, done, numpy_flag)
        if status != ca.ECA_NORMAL:
            raise CaChannelException(status, "read of %s" % _label(name))

    batch = _Batch(names, timeout, issue).run()
    if throw:
        batch.raise_failures("read")
    values: List[Any] = []
    for slot, name in enumerate(batch.names):
        if name in batch.failures:
            values.append(None)
            continue
        value = batch.results[slot].get("value")
        values.append(chars_to_str(value) if slot in chars_slots else plain(value, numpy_flag))
    return values


def caput(names: Sequence[Any], values: Sequence[Any], wait: bool = False, timeout: Optional[float] = None,
          throw: bool = True) -> Optional[List[Optional[bool]]]:
    """Write ``values[i]`` to ``names[i]`` (see :func:`CaChannel.util.caput`)."""
    names = list(names)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError("caput of a list of names needs a list of values (one per name)")
    values = list(values)
    if len(values) != len(names):
        raise ValueError("caput got %d names but %d values" % (len(names), len(values)))

    def issue(slot: int, name: Any, chan: core.Channel, done: Callable) -> None:
        chid = chan.chid
        value = values[slot]
        _need_connected(name, chid)
        if not ca.write_access(chid):
            raise CaChannelException(ca.ECA_NOWTACCESS, "%s is read-only (no write access)" % _label(name))
        if ca.field_type(chid) == ca.DBF_ENUM and isinstance(value, (str, bytes)) and \
                not isinstance(threading.current_thread(), getattr(threading, "_DummyThread", ())):
            # reads the states: not from libca's threads
            chan.precheck_put(value, None, CaChannel.ca_timeout, _label(name))
        if wait:
            status = ca.put(chid, value, None, None, done)
        else:
            status = ca.put(chid, value)
        if status != ca.ECA_NORMAL:
            raise CaChannelException(status, "write of %r to %s" % (value, _label(name)))
        if not wait:
            done({"status": ca.ECA_NORMAL})

    limit = None if (wait and timeout is None) else -1
    batch = _Batch(names, timeout, issue, wait_limit=limit).run()
    if throw:
        batch.raise_failures("write")
        return None
    return [None if name in batch.failures else True for name in names]


def connect(names: Sequence[Any], timeout: Optional[float]) -> Tuple[Dict[Any, core.Channel], _Failures]:
    """Connect every name at once (for ``cainfo``): (name -> connected channel, failures).

    The channels are released again (idle, still open) when this returns: the
    caller reads their information at once.
    """
    def issue(slot: int, name: Any, chan: core.Channel, done: Callable) -> None:
        done({"status": ca.ECA_NORMAL})

    batch = _Batch(names, timeout, issue).run()
    found = {name: batch.chans[name] for name in batch.names
             if name not in batch.failures and name in batch.chans}
    return found, batch.failures
