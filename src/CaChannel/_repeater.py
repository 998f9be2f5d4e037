"""``caRepeater`` console script: run libca's CA repeater in this process.

libca starts a repeater (a process that fans out server beacons to every CA
client on the host) by spawning an executable named ``caRepeater`` found on
PATH. EPICS base ships it as a C program; a pip install has no such binary,
so this script stands in for it: it loads the same libca and runs its
repeater loop (``caRepeaterThread``), which returns only when the process is
killed or when another repeater already owns the port.
"""
from __future__ import annotations

import ctypes
import signal
import sys

from . import _libca


def main() -> None:
    # a repeater spawned by libca must not die of a terminal's Ctrl-C meant
    # for the client that started it; SIGTERM still ends it
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lib = ctypes.CDLL(_libca.load())
    lib.caRepeaterThread.argtypes = [ctypes.c_void_p]
    lib.caRepeaterThread.restype = None
    lib.caRepeaterThread(None)


if __name__ == "__main__":
    main()
