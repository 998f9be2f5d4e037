#!/usr/bin/env python
"""Motor-record simulator: a caproto Channel Access server for epicsMotor tests.

Serves ``<prefix><motor>.<FIELD>`` for every motor named by ``--motors``
(default ``13BMD:`` + ``m1,m38``) with the fields VAL DVAL RVAL RLV RBV DRBV
RRBV DMOV STOP VELO VBAS ACCL DESC MRES HLM LLM DHLM DLLM BDST SET LVIO LLS
HLS OFF DIR, and for ophyd's EpicsMotor MOVN (= not DMOV) and the inert EGU
FOFF TDIR HOMF HOMR.

Model (documented choices):

* coordinates: ``dial = raw * MRES``, ``user = dial * (DIR ? -1 : +1) + OFF``;
* soft limits DHLM/DLLM (dial; HLM/LLM are their user images, writing either
  updates the other). A target outside them is refused: LVIO = 1, nothing
  moves, the target fields keep their old values. Both 0 = no soft limits;
* hard limits at dial +-1000 (``HARD_LIMIT``): motion stops there and HLS
  (dial >= +1000) or LLS (dial <= -1000) is raised;
* a move ramps from VBAS to VELO in ACCL seconds (and down again); DMOV is
  0 while moving and for at least ``MIN_MOVE_TIME`` s, so a client polling
  DMOV sees every move start;
* SET = 1: writing VAL changes OFF, writing DVAL or RVAL redefines the dial
  position; nothing moves;
* STOP = 1 stops at the current position (targets follow it), STOP resets to 0;
* a put-callback on VAL/DVAL/RVAL/RLV completes when the write is handled
  (the move has started), not when the move ends.

Run: ``EPICS_CA_SERVER_PORT=PORT python motor_sim.py --interfaces 127.0.0.1``.
"""
import argparse
import asyncio
import os
import time

# reads after a write wait until the write is handled (IOC-like ordering)
os.environ.setdefault("CAPROTO_SERVER_WRITE_LOCK_TIMEOUT_SEC", "2.0")

from caproto import ChannelType  # noqa: E402
from caproto.server import PVGroup, pvproperty, run  # noqa: E402

HARD_LIMIT = 1000.0
MIN_MOVE_TIME = 0.15
TICK = 0.01


def _prop(field, value, **kw):
    return pvproperty(name="." + field, value=value, **kw)


class Motor(PVGroup):
    """One simulated motor record."""

    val = _prop("VAL", 0.0, precision=4)
    dval = _prop("DVAL", 0.0, precision=4)
    rval = _prop("RVAL", 0)
    rlv = _prop("RLV", 0.0, precision=4)
    rbv = _prop("RBV", 0.0, precision=4, read_only=True)
    drbv = _prop("DRBV", 0.0, precision=4, read_only=True)
    rrbv = _prop("RRBV", 0, read_only=True)
    dmov = _prop("DMOV", 1, read_only=True)
    stop = _prop("STOP", 0)
    velo = _prop("VELO", 100.0)
    vbas = _prop("VBAS", 10.0)
    accl = _prop("ACCL", 0.1)
    desc = _prop("DESC", "simulated motor", max_length=40)
    mres = _prop("MRES", 0.001, precision=6)
    hlm = _prop("HLM", 500.0)
    llm = _prop("LLM", -500.0)
    dhlm = _prop("DHLM", 500.0)
    dllm = _prop("DLLM", -500.0)
    bdst = _prop("BDST", 0.0)
    set = _prop("SET", 0)
    lvio = _prop("LVIO", 0, read_only=True)
    lls = _prop("LLS", 0, read_only=True)
    hls = _prop("HLS", 0, read_only=True)
    off = _prop("OFF", 0.0)
    dir = _prop("DIR", 0)
    # for ophyd's EpicsMotor: MOVN follows DMOV; the others are inert
    movn = _prop("MOVN", 0, read_only=True)
    egu = _prop("EGU", "mm", dtype=ChannelType.STRING)
    foff = _prop("FOFF", 0)
    tdir = _prop("TDIR", 0, read_only=True)
    homf = _prop("HOMF", 0)
    homr = _prop("HOMR", 0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pos = 0.0          # dial position
        self.target = 0.0       # dial target
        self.speed = 0.0
        self.moving = False
        self.move_start = 0.0
        self.set_mode = 0
        self.sign = 1
        self.offset = 0.0
        self.res = 0.001

    # -- conversions
    def user(self, dial):
        return dial * self.sign + self.offset

    def to_dial(self, user):
        return (user - self.offset) * self.sign

    async def _w(self, prop, value):
        if prop.value != value:
            await prop.write(value, verify_value=False)

    async def _publish_targets(self):
        await self._w(self.dval, self.target)
        await self._w(self.val, self.user(self.target))
        await self._w(self.rval, int(round(self.target / self.res)))

    async def _publish_position(self):
        await self._w(self.drbv, self.pos)
        await self._w(self.rbv, self.user(self.pos))
        await self._w(self.rrbv, int(round(self.pos / self.res)))
        await self._w(self.hls, 1 if self.pos >= HARD_LIMIT else 0)
        await self._w(self.lls, 1 if self.pos <= -HARD_LIMIT else 0)

    async def _publish_limits(self):
        lo, hi = sorted((self.user(self.dllm.value), self.user(self.dhlm.value)))
        await self._w(self.llm, lo)
        await self._w(self.hlm, hi)

    async def _request(self, dial_target):
        """A move request in dial coordinates; returns False if refused."""
        if self.set_mode:
            self.pos = self.target = dial_target
            await self._publish_position()
            await self._publish_targets()
            return True
        hi, lo = self.dhlm.value, self.dllm.value
        if (hi != 0 or lo != 0) and not (lo <= dial_target <= hi):
            await self._w(self.lvio, 1)
            return False
        await self._w(self.lvio, 0)
        self.target = dial_target
        self.moving = True
        self.move_start = time.monotonic()
        await self._w(self.dmov, 0)
        await self._w(self.movn, 1)
        await self._publish_targets()
        return True

    @val.putter
    async def val(self, instance, value):
        if self.set_mode:
            self.offset = value - self.pos * self.sign
            await self._w(self.off, self.offset)
            await self._publish_limits()
            await self._publish_position()
            self.target = self.pos
            await self._publish_targets()
            return value
        if not await self._request(self.to_dial(value)):
            return instance.value
        return self.user(self.target)

    @dval.putter
    async def dval(self, instance, value):
        if not await self._request(value):
            return instance.value
        return self.target

    @rval.putter
    async def rval(self, instance, value):
        if not await self._request(value * self.res):
            return instance.value
        return int(round(self.target / self.res))

    @rlv.putter
    async def rlv(self, instance, value):
        await self._request(self.to_dial(self.user(self.target) + value))
        return 0.0

    @stop.putter
    async def stop(self, instance, value):
        if value:
            self.moving = False
            self.target = self.pos
            self.speed = 0.0
            await self._publish_targets()
        return 0

    @set.putter
    async def set(self, instance, value):
        self.set_mode = 1 if value else 0
        return self.set_mode

    @off.putter
    async def off(self, instance, value):
        self.offset = value
        await self._after_coordinates()
        return value

    @dir.putter
    async def dir(self, instance, value):
        self.sign = -1 if value else 1
        await self._after_coordinates()
        return 1 if value else 0

    @mres.putter
    async def mres(self, instance, value):
        if value == 0:
            raise ValueError("MRES must not be 0")
        self.res = value
        await self._publish_position()
        await self._publish_targets()
        return value

    async def _after_coordinates(self):
        await self._publish_limits()
        await self._publish_position()
        await self._w(self.val, self.user(self.target))

    @dhlm.putter
    async def dhlm(self, instance, value):
        await instance.write(value, verify_value=False)
        await self._publish_limits()
        return value

    @dllm.putter
    async def dllm(self, instance, value):
        await instance.write(value, verify_value=False)
        await self._publish_limits()
        return value

    @hlm.putter
    async def hlm(self, instance, value):
        await self._user_limit(value, high=True)
        return value

    @llm.putter
    async def llm(self, instance, value):
        await self._user_limit(value, high=False)
        return value

    async def _user_limit(self, value, high):
        dial = self.to_dial(value)
        # with DIR negative the user high limit is the dial low limit
        if (self.sign > 0) == high:
            await self._w(self.dhlm, dial)
        else:
            await self._w(self.dllm, dial)

    @dmov.startup
    async def dmov(self, instance, async_lib):
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            dt, last = now - last, now
            if not self.moving:
                if self.dmov.value == 0 and now - self.move_start >= MIN_MOVE_TIME:
                    await self._w(self.dmov, 1)
                    await self._w(self.movn, 0)
                continue
            velo = max(float(self.velo.value), 1e-6)
            vbas = min(max(float(self.vbas.value), 0.0), velo)
            accel = (velo - vbas) / max(float(self.accl.value), 1e-3)
            remaining = self.target - self.pos
            direction = 1 if remaining > 0 else -1
            braking = self.speed * self.speed / (2 * accel) if accel > 0 else 0.0
            if abs(remaining) <= braking:
                self.speed = max(vbas, self.speed - accel * dt)
            else:
                self.speed = min(velo, max(self.speed, vbas) + accel * dt)
            step = self.speed * dt
            if abs(remaining) <= step:
                self.pos = self.target
                self.moving = False
            else:
                self.pos += direction * step
            if self.pos >= HARD_LIMIT or self.pos <= -HARD_LIMIT:
                self.pos = max(-HARD_LIMIT, min(HARD_LIMIT, self.pos))
                self.moving = False
            if not self.moving:
                self.speed = 0.0
            await self._publish_position()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="13BMD:")
    parser.add_argument("--motors", default="m1,m38")
    parser.add_argument("--interfaces", nargs="+", default=["127.0.0.1"])
    parser.add_argument("--list-pvs", action="store_true")
    args = parser.parse_args(argv)
    pvdb = {}
    for name in args.motors.split(","):
        pvdb.update(Motor(prefix=args.prefix + name.strip()).pvdb)
    run(pvdb, interfaces=args.interfaces, log_pv_names=args.list_pvs)


if __name__ == "__main__":
    main()
