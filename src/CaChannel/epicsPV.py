"""``epicsPV``: a :class:`CaChannel.CaChannel` with a cached monitor and blocking helpers.

Compared to ``CaChannel`` an ``epicsPV``

* connects in the constructor when given a name (``searchw``, or ``search``
  with ``wait=False``);
* after :meth:`epicsPV.setMonitor` answers ``getw``/``getValue``/``array_get``
  from the latest monitor update, without network traffic;
* :meth:`epicsPV.checkMonitor` tells whether an update arrived since the
  last look;
* :meth:`epicsPV.getControl` reads the control information into
  ``pv.callBack.pv_*`` attributes;
* :meth:`epicsPV.putWait` writes and waits for the server to complete it.

>>> pv = epicsPV('catest')
>>> pv.putWait(3.5)
>>> pv.getw()
3.5
>>> pv.setMonitor()
>>> pv.putWait(4.5)
>>> pv.getw()
4.5
>>> pv.clearMonitor()
"""
from __future__ import annotations

import math
import time
from typing import Any, Dict, Optional, Sequence

from . import ca, core
from ._channel import CaChannel, CaChannelException

__all__ = ["epicsPV", "callBack", "getCallback", "putCallBack", "ca", "CaChannel", "CaChannelException"]


class callBack:
    """Holder of the data delivered to an epicsPV's callbacks.

    ``newMonitor`` (0/1), ``putComplete`` (0/1), ``monitorState`` (0 none,
    1 monitor requested, 2 first update received), ``pv_value``; every key of
    the last callback dict is also set as an attribute.
    """

    #: status of the last put callback (set by putWait and its callback)
    putStatus: Optional[int]

    def __init__(self) -> None:
        self.newMonitor = 0
        self.putComplete = 0
        self.monitorState = 0
        self.pv_value: Any = None


def getCallback(epicsArgs: Dict[str, Any], userArgs: Sequence[Any]) -> None:
    """Copy the callback dict onto ``userArgs[0]`` (a :class:`callBack`) and flag it new."""
    cb = userArgs[0]
    for key, value in epicsArgs.items():
        setattr(cb, key, value)
    if cb.monitorState == 1:
        cb.monitorState = 2
    cb.newMonitor = 1


def putCallBack(epicsArgs: Dict[str, Any], userArgs: Sequence[Any]) -> None:
    """Flag the write as completed on ``userArgs[0]`` (a :class:`callBack`)."""
    cb = userArgs[0]
    cb.putStatus = epicsArgs.get("status")
    cb.putComplete = 1


class epicsPV(CaChannel):
    """A CaChannel that connects at construction and can cache a monitor."""

    def __init__(self, pvName: Optional[str] = None, wait: bool = True) -> None:
        """Create the channel; with a name, connect (``wait``: block until connected).

        >>> pv = epicsPV('catest')
        >>> pv.state()
        <ChannelState.CONN: 2>
        """
        super().__init__(pvName)
        self.callBack = callBack()
        if pvName is not None:
            if wait:
                self.searchw()
            else:
                self.search()

    def setMonitor(self) -> None:
        """Subscribe to value changes; later reads return the latest update."""
        if self.callBack.monitorState != 0:
            return
        self.add_masked_array_event(None, None, ca.DBE_VALUE, getCallback, self.callBack)
        self.callBack.monitorState = 1

    def clearMonitor(self) -> None:
        """Cancel :meth:`setMonitor`; reads go to the server again."""
        self.clear_event()
        self.callBack.monitorState = 0

    def checkMonitor(self) -> int:
        """1 if a monitor update arrived since the last check (or cached read), else 0."""
        self.pend_event(1e-4)
        new = self.callBack.newMonitor
        self.callBack.newMonitor = 0
        return new

    def getControl(self, req_type: Optional[int] = None, count: Optional[int] = None,
                   wait: int = 1, poll: float = 0.01) -> None:
        """Read the CTRL information into ``self.callBack.pv_*``.

        >>> pv = epicsPV('catest')
        >>> pv.getControl()
        >>> pv.callBack.pv_units, pv.callBack.pv_precision
        ('mm', 4)
        """
        poll = core.checks.timeout(poll, what="poll")
        if req_type is None:
            req_type = self.field_type()
        if wait:
            self.callBack.newMonitor = 0
        self.array_get_callback(ca.dbf_type_to_DBR_CTRL(req_type), count, getCallback, self.callBack)
        if wait:
            self._wait_flag("newMonitor", poll, "control information of %s" % self._label(),
                            self.getTimeout())

    def _wait_flag(self, attr: str, poll: float, what: str, timeout: Optional[float]) -> None:
        """Loop ``pend_event(poll)`` until ``self.callBack.<attr>`` is set, at
        most ``timeout`` s (``core.checks.timeout``: None or inf, no limit)."""
        seconds = core.checks.timeout(timeout, math.inf)
        poll = min(core.checks.timeout(poll, what="poll"), core.checks.CHUNK)
        deadline = time.monotonic() + seconds
        self.flush_io()
        while not getattr(self.callBack, attr):
            if time.monotonic() > deadline:
                raise CaChannelException(ca.ECA_TIMEOUT, "no reply for %s" % what)
            self.pend_event(poll)

    def array_get(self, req_type: Optional[int] = None, count: Optional[int] = None, **kw: Any) -> Any:
        """Like CaChannel.array_get, but returns the cached value when monitoring."""
        if self.callBack.monitorState != 0:
            self.pend_event(1e-4)
        if self.callBack.monitorState == 2:
            self.callBack.newMonitor = 0
            return self.callBack.pv_value
        return super().array_get(req_type, count, **kw)

    def getValue(self) -> Any:
        """Like CaChannel.getValue, but returns the cached value when monitoring."""
        if self.callBack.monitorState != 0:
            self.pend_event(1e-4)
        if self.callBack.monitorState == 2:
            self.callBack.newMonitor = 0
            return self.callBack.pv_value
        return super().getValue()

    def getw(self, req_type: Optional[int] = None, count: Optional[int] = None, **kw: Any) -> Any:
        """Like CaChannel.getw, but returns the cached value when monitoring."""
        if self.callBack.monitorState != 0:
            self.pend_event(1e-4)
        if self.callBack.monitorState == 2:
            self.callBack.newMonitor = 0
            value = self.callBack.pv_value
            if count is not None and isinstance(value, (list, tuple)) or (
                    count is not None and hasattr(value, "shape") and getattr(value, "ndim", 0) > 0):
                value = value[0:count]
            return value
        return super().getw(req_type, count, **kw)

    def putWait(self, value: Any, req_type: Optional[int] = None, count: Optional[int] = None,
                poll: float = 0.01, timeout: Optional[float] = None) -> None:
        """Write ``value`` and wait until the server completed it.

        Raises :class:`CaChannelException` if the server reports a failure, or
        ``ECA_TIMEOUT`` if ``timeout`` seconds (an extension; default None =
        no limit, as the original, because a completion may legitimately take
        long, e.g. a motor move) pass without completion.
        """
        core.checks.timeout(timeout, math.inf)   # refused before anything is written
        core.checks.timeout(poll, what="poll")
        self._precheck_put(value, req_type)
        self.callBack.putComplete = 0
        self.callBack.putStatus = None
        self.array_put_callback(value, req_type, count, putCallBack, self.callBack)
        self._wait_flag("putComplete", poll, "write to %s" % self._label(), timeout)
        status = self.callBack.putStatus
        if status is not None and status != ca.ECA_NORMAL:
            raise CaChannelException(status, "write of %r to %s" % (value, self._label()))
