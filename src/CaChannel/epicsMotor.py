"""``epicsMotor``: a class for the EPICS motor record, built on :class:`CaChannel.epicsPV.epicsPV`.

Certain fields are properties (read: ``getw``, write: ``putw``): ``slew_speed``
(VELO), ``base_speed`` (VBAS), ``acceleration`` (ACCL), ``description``
(DESC), ``resolution`` (MRES), ``high_limit`` (HLM), ``low_limit`` (LLM),
``dial_high_limit`` (DHLM), ``dial_low_limit`` (DLLM), ``backlash`` (BDST),
``offset`` (OFF) and the read-only ``done_moving`` (DMOV).

>>> m = epicsMotor('13BMD:m38')
>>> m.move(10)              # Move to position 10 in user coordinates
>>> m.wait()                # Wait for motor to stop moving
>>> m.get_position(readback=True)
10.0
"""
from __future__ import annotations

import threading
import time
from typing import Any, Dict, Optional

from . import ca
from ._channel import CaChannel
from .epicsPV import epicsPV

__all__ = ["epicsMotor", "epicsMotorException"]

_FIELDS = ("VAL", "DVAL", "RVAL", "RLV", "RBV", "DRBV", "RRBV", "DMOV", "STOP", "VELO", "VBAS",
           "ACCL", "DESC", "MRES", "HLM", "LLM", "DHLM", "DLLM", "BDST", "SET", "LVIO", "LLS",
           "HLS", "OFF")


class epicsMotorException(Exception):
    """Raised by :meth:`epicsMotor.check_limits` on a soft or hard limit violation."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


class _Field:
    """Descriptor exposing one motor record field."""

    def __init__(self, field: str, doc: str, read_only: bool = False) -> None:
        self.field = field
        self.read_only = read_only
        self.__doc__ = doc

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        return obj.pvs[self.field].getw()

    def __set__(self, obj: Any, value: Any) -> None:
        if self.read_only:
            return  # read-only: assignment silently ignored
        obj.pvs[self.field].putw(value)


class epicsMotor:
    """An EPICS motor record ``name`` (without trailing field)."""

    slew_speed = _Field("velo", "Slew speed or velocity (.VELO)")
    base_speed = _Field("vbas", "Base or starting speed (.VBAS)")
    acceleration = _Field("accl", "Acceleration time in seconds (.ACCL)")
    description = _Field("desc", "Description of the motor (.DESC)")
    resolution = _Field("mres", "Resolution, units per step (.MRES)")
    high_limit = _Field("hlm", "High soft limit in user coordinates (.HLM)")
    low_limit = _Field("llm", "Low soft limit in user coordinates (.LLM)")
    dial_high_limit = _Field("dhlm", "High soft limit in dial coordinates (.DHLM)")
    dial_low_limit = _Field("dllm", "Low soft limit in dial coordinates (.DLLM)")
    backlash = _Field("bdst", "Backlash distance (.BDST)")
    offset = _Field("off", "Offset from dial to user (.OFF)")
    done_moving = _Field("dmov", "1 = done, 0 = moving; read-only (.DMOV)", read_only=True)

    def __init__(self, name: str) -> None:
        """Connect to the 24 fields of motor ``name``; raises CaChannelException if absent.

        >>> m = epicsMotor('13BMD:m38')
        """
        self.name = name
        self.pvs: Dict[str, epicsPV] = {}
        for field in _FIELDS:
            self.pvs[field.lower()] = epicsPV(name + "." + field, wait=False)
        self.pvs["val"].pend_io()
        self.pvs["dmov"].setMonitor()
        # every DMOV update, so that wait(start=True) sees even a short move
        self._moving_seen = threading.Event()
        self._dmov_watch = CaChannel(name + ".DMOV")
        self._dmov_watch.searchw()
        self._dmov_watch.add_masked_array_event(ca.DBR_SHORT, 1, ca.DBE_VALUE, self._on_dmov)
        self._dmov_watch.flush_io()

    def _on_dmov(self, epics_args: Dict[str, Any], _user_args: Any) -> None:
        if epics_args.get("pv_value") == 0:
            self._moving_seen.set()

    def _dmov_now(self) -> int:
        """DMOV read from the server (not the cache): ordered after our writes."""
        return int(self._dmov_watch.getw(ca.DBR_SHORT))

    def move(self, value: float, relative: bool = False, dial: bool = False, step: bool = False,
             ignore_limits: bool = False) -> None:
        """Move to ``value`` (absolute or ``relative``) in user, ``dial`` or ``step`` coordinates.

        Raises :class:`epicsMotorException` on a limit violation unless ``ignore_limits``.

        >>> m=epicsMotor('13BMD:m38')
        >>> m.move(10)          # Move to position 10 in user coordinates
        >>> m.move(50, dial=True)  # Move to position 50 in dial coordinates
        >>> m.move(2, step=True, relative=True) # Move 2 steps
        """
        if dial:
            field = "dval"
            if relative:
                value = self.pvs["dval"].getw() + value
        elif step:
            field = "rval"
            if relative:
                value = self.pvs["rval"].getw() + value
        elif relative:
            field = "rlv"
        else:
            field = "val"
        self._moving_seen.clear()
        self.pvs[field].putw(value)
        if not ignore_limits:
            self.check_limits()

    def check_limits(self) -> None:
        """Raise :class:`epicsMotorException` if LVIO, LLS or HLS is set (in this order)."""
        if self.pvs["lvio"].getw() != 0:
            raise epicsMotorException("Soft limit violation")
        if self.pvs["lls"].getw() != 0:
            raise epicsMotorException("Low hard limit violation")
        if self.pvs["hls"].getw() != 0:
            raise epicsMotorException("High hard limit violation")

    def stop(self) -> None:
        """Stop moving immediately (STOP <- 1).

        >>> m=epicsMotor('13BMD:m38')
        >>> m.move(10)          # Move to position 10 in user coordinates
        >>> m.stop()            # Stop motor
        """
        self.pvs["stop"].putw(1)

    def get_position(self, dial: bool = False, readback: bool = False, step: bool = False) -> float:
        """Target (default) or ``readback`` position in user, ``dial`` or ``step`` coordinates.

        >>> m = epicsMotor('13BMD:m38')
        >>> m.move(10)                   # Move to position 10 in user coordinates
        >>> pos_dial = m.get_position(dial=True)   # Read the target position in dial coordinates
        >>> pos_step = m.get_position(readback=True, step=True) # Read the actual position in steps
        """
        if dial:
            field = "drbv" if readback else "dval"
        elif step:
            field = "rrbv" if readback else "rval"
        else:
            field = "rbv" if readback else "val"
        return self.pvs[field].getw()

    def set_position(self, position: float, dial: bool = False, step: bool = False) -> None:
        """Redefine the current position (SET mode: nothing moves).

        >>> m = epicsMotor('13BMD:m38')
        >>> m.set_position(10, dial=True)   # Set the motor position to 10 in dial coordinates
        >>> m.set_position(1000, step=True) # Set the motor position to 1000 steps
        """
        field = "dval" if dial else "rval" if step else "val"
        timeout = self.pvs["set"].getTimeout()
        self.pvs["set"].putWait(1, timeout=timeout)
        try:
            self.pvs[field].putWait(position, timeout=timeout)
        finally:
            self.pvs["set"].putWait(0, timeout=timeout)

    def wait(self, start: bool = False, stop: bool = False, poll: float = 0.01,
             ignore_limits: bool = False) -> None:
        """Wait for the motor to start and/or stop moving (neither flag: stop).

        >>> m = epicsMotor('13BMD:m38')
        >>> m.move(50)                # Move to position 50
        >>> m.wait(start=True, stop=True)   # Wait for the motor to start moving and then to stop moving
        """
        if not start and not stop:
            stop = True
        if start:
            while not self._moving_seen.is_set() and self._dmov_now() == 1:
                if self.pvs["lvio"].getw() != 0:
                    break  # a refused move never starts
                time.sleep(poll)
        if stop:
            while self._dmov_now() == 0:
                time.sleep(poll)
        if not ignore_limits:
            self.check_limits()

    def __repr__(self) -> str:
        return "epicsMotor(%r)" % (self.name,)
