"""``caRepeater`` console script: run libca's CA repeater in this process.

libca starts a repeater (a process that fans out server beacons to every CA
client on the host) by spawning an executable named ``caRepeater`` found on
PATH. EPICS base ships it as a C program; a pip install has no such binary,
so this script stands in for it: it loads the same libca and runs its
repeater loop (``caRepeaterThread``), which returns only when the process is
killed or when another repeater already owns the port
(``EPICS_CA_REPEATER_PORT``, 5065 by default).

The repeater outlives the client that spawned it, so before it runs the loop
it detaches from that client as a daemon does; otherwise it would keep the
client's stdout/stderr pipes open for ever, and ``subprocess.run(...,
capture_output=True)`` of a CA script, or ``cachannel get PV | grep x``,
would never see the end of the output:

* stdin, stdout and stderr are redirected to ``/dev/null``; set
  ``CACHANNEL_REPEATER_LOG`` to a file name to have stdout and stderr (libca's
  messages) appended to that file instead;
* every other inherited file descriptor is closed;
* it starts a new session (``setsid``), so it has no controlling terminal and
  is outside the spawner's process group (a terminal's Ctrl-C or hang-up does
  not reach it). When it is already a process-group leader (started by an
  interactive shell or a service manager) it stays in its session: it does
  not fork, so its PID stays the one its starter knows;
* its working directory is ``/``, so it holds no directory busy.

SIGINT is ignored; stop it with SIGTERM.
"""
from __future__ import annotations

import os
import signal
import sys

#: environment variable naming a file that receives the repeater's stdout and stderr
LOG_ENV = "CACHANNEL_REPEATER_LOG"


def _max_fd() -> int:
    try:
        import resource
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft > 0:
            return int(soft)
    except (ImportError, OSError, ValueError):
        pass
    return 65536


def detach() -> None:
    """Detach this process from whatever spawned it, as a daemon does.

    Redirects stdio to ``/dev/null`` (stdout and stderr to the file named by
    ``CACHANNEL_REPEATER_LOG`` when set and writable), closes every other file
    descriptor, starts a new session when possible and changes directory to
    ``/``. The process keeps its PID.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    null = os.open(os.devnull, os.O_RDWR)
    out = null
    log = os.environ.get(LOG_ENV)
    if log:
        try:
            out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                          | getattr(os, "O_NOCTTY", 0), 0o644)
        except OSError as exc:
            try:
                sys.stderr.write("caRepeater: cannot open %s=%s (%s); logging to %s\n"
                                 % (LOG_ENV, log, exc, os.devnull))
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                pass
    for target, source in ((0, null), (1, out), (2, out)):
        if source != target:
            os.dup2(source, target)
    if os.name == "posix":
        # libca's spawner may leave descriptors of the client open in us
        # (sockets, pipes): hold none of them
        os.closerange(3, _max_fd())
    else:
        for fd in {null, out}:
            if fd > 2:
                os.close(fd)
    if hasattr(os, "setsid"):
        try:
            os.setsid()
        except OSError:
            pass  # already a process-group leader: keep the session we were given
    os.chdir("/")


def main() -> None:
    """Entry point of the ``caRepeater`` script (see the module docstring)."""
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return
    detach()
    # a repeater spawned by libca must not die of a terminal's Ctrl-C meant
    # for the client that started it; SIGTERM still ends it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import ctypes

    from . import _libca
    lib = ctypes.CDLL(_libca.load())
    lib.caRepeaterThread.argtypes = [ctypes.c_void_p]
    lib.caRepeaterThread.restype = None
    lib.caRepeaterThread(None)


if __name__ == "__main__":
    main()
