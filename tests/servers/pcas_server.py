#!/usr/bin/env python
"""pcaspy interop server for the high-level tests.

Serves, under ``--prefix`` (default ``pcas:``), PVs shaped like the manual's
records (``catest``, ``cabo``, ``cawave``, ``cawavec``, ``cawaves``) and
``table``: a CHAR waveform holding a pickled table (list of row dicts with
the columns h, k, l, q, d, 2theta), the "pickled byte waveform" recipe. The
table length is published in ``table:len``.

Run: ``EPICS_CA_SERVER_PORT=PORT EPICS_CAS_INTF_ADDR_LIST=127.0.0.1 python pcas_server.py``.
"""
import argparse
import math
import pickle

from pcaspy import Driver, SimpleServer, Severity


def make_table():
    """The hkl table of the seed talk (d = 2*pi/q, 2theta for a 1 A wavelength)."""
    rows = []
    for h in (0.0,):
        for k in (0.0, 1.0, 2.0):
            for l in (0.0, 1.0, 2.0):
                q = 6.283 if k == 2.0 else 0.0
                d = 2 * math.pi / q if q else math.inf
                two_theta = 103.441 if q else 0.0
                rows.append({"h": h, "k": k, "l": l, "q": q, "d": d, "2theta": two_theta})
    return rows


TABLE = pickle.dumps(make_table(), protocol=2)

PVDB = {
    "catest": {"type": "float", "prec": 4, "unit": "mm", "value": 1.0,
               "hopr": 20, "lopr": -20, "hihi": 20, "high": 10, "low": -10, "lolo": -20},
    "cabo": {"type": "enum", "enums": ["Done", "Busy"],
             "states": [Severity.NO_ALARM, Severity.MINOR_ALARM], "value": 0},
    "cawave": {"type": "float", "count": 20},
    "cawavec": {"type": "char", "count": 5},
    "cawaves": {"type": "string", "count": 3},
    "table": {"type": "char", "count": len(TABLE)},
    "table:len": {"type": "int", "value": len(TABLE)},
}


class TableDriver(Driver):
    def __init__(self):
        super().__init__()
        self.setParam("table", list(TABLE))
        self.updatePVs()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="pcas:")
    args = parser.parse_args(argv)
    server = SimpleServer()
    server.createPV(args.prefix, PVDB)
    TableDriver()
    print("pcas_server: serving", ", ".join(args.prefix + k for k in sorted(PVDB)), flush=True)
    while True:
        server.process(0.1)


if __name__ == "__main__":
    main()
