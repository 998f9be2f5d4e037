#!/usr/bin/env python
"""caproto interop server for the high-level tests.

Serves, under ``--prefix`` (default ``cap:``), PVs shaped like the manual's
records (``catest`` double with limits/units/precision, ``cabo`` enum
Done/Busy, ``cawave`` DOUBLE[20], ``cawavec`` CHAR[5], ``cawaves`` STRING[3])
and the sequence-server template: ``CMD`` (a string of up to 10,000
characters, a CHAR waveform), ``ACK`` (read-only string) and ``values``
(read-only DOUBLE array). A write to CMD is executed before the write
completes: ACK becomes ``'done <length>'`` and ``values`` the list
``[length, sum of character codes % 1000003, number of words]``.

Run: ``EPICS_CA_SERVER_PORT=PORT python caproto_server.py --interfaces 127.0.0.1``.
"""
import argparse
import math

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty, run


class Manual(PVGroup):
    catest = pvproperty(value=1.0, precision=4, units="mm",
                        upper_disp_limit=20.0, lower_disp_limit=-20.0,
                        upper_alarm_limit=20.0, lower_alarm_limit=-20.0,
                        upper_warning_limit=10.0, lower_warning_limit=-10.0)
    cabo = pvproperty(value="Done", enum_strings=["Done", "Busy"], dtype=ChannelType.ENUM)
    cawave = pvproperty(value=[0.0] * 20, max_length=20)
    cawavec = pvproperty(value=[0] * 5, dtype=ChannelType.CHAR, max_length=5)
    cawaves = pvproperty(value=["", "", ""], dtype=ChannelType.STRING, max_length=3)


class Sequence(PVGroup):
    CMD = pvproperty(value="This is command string", max_length=10000, dtype=str)
    # max_length: caproto sizes a str PV by its initial value otherwise
    ACK = pvproperty(value="0", read_only=True, dtype=str, max_length=40)
    values = pvproperty(value=[math.nan, math.nan], read_only=True, max_length=10000)

    @CMD.putter
    async def CMD(self, instance, value):
        await self.system_io_execute("CMD", value)
        return value

    async def system_io_execute(self, pv_name, value):
        """Execute a command: here, summarise it into ACK and values."""
        text = value if isinstance(value, str) else str(value)
        await self.values.write([float(len(text)), float(sum(map(ord, text)) % 1000003),
                                 float(len(text.split()))])
        await self.ACK.write("done %d" % len(text))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="cap:")
    parser.add_argument("--interfaces", nargs="+", default=["127.0.0.1"])
    parser.add_argument("--list-pvs", action="store_true")
    args = parser.parse_args(argv)
    pvdb = dict(Manual(prefix=args.prefix).pvdb)
    pvdb.update(Sequence(prefix=args.prefix).pvdb)
    run(pvdb, interfaces=args.interfaces, log_pv_names=args.list_pvs)


if __name__ == "__main__":
    main()
