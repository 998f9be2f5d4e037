"""Run a real EPICS soft IOC for Channel Access tests.

This module starts the minimal soft IOC shipped with ``epicscorelibs``
(``python -m epicscorelibs.ioc``) as a subprocess confined to 127.0.0.1 on a
free port, waits until it answers a Channel Access UDP search and gives the
client environment to point a CA client (CaChannel, caproto, pyepics...) at it.

Quick use in a script or test::

    from CaChannel.testing import IOC

    with IOC(["tests/test.db"], acf="tests/test.acf") as ioc:
        os.environ.update(ioc.client_env())   # before the first CA call!
        ioc.shell("dbpf catest 5")
        ...

pytest
------
The package registers a pytest plugin (entry point ``pytest11``), loaded in
every pytest session; it does nothing unless configured. To run one IOC for
the whole session, add to ``pyproject.toml``::

    [tool.pytest.ini_options]
    cachannel_ioc_db = ["tests/test.db"]     # paths relative to the rootdir
    cachannel_ioc_acf = "tests/test.acf"     # optional
    cachannel_ioc_macros = "P=ca:"           # optional

(or in ``pytest.ini``: ``cachannel_ioc_db = tests/test.db`` one path per
line, or on the command line ``-o cachannel_ioc_db=tests/test.db``). The IOC
is started at session start, *before collection*, and its client environment
(``EPICS_CA_ADDR_LIST=127.0.0.1:PORT``, ``EPICS_CA_AUTO_ADDR_LIST=NO``,
``EPICS_CA_MAX_ARRAY_BYTES``) is exported into ``os.environ`` so that the
first CA context of the process (created by any test or doctest) sees it.
The session-scoped autouse fixture ``softioc`` yields the :class:`IOC` (or
``None`` when not configured)::

    def test_put(softioc):
        softioc.shell("dbpf cabo 1")

For your own IOC(s) in a ``conftest.py`` use :func:`ioc_fixture`::

    from CaChannel.testing import ioc_fixture
    my_ioc = ioc_fixture(["db/motor_sim.db"], macros="P=sim:", scope="session")

Access security (ACF)
---------------------
EPICS base only enables access security if ``asSetFilename`` was called
*before* ``iocInit``; a later ``asSetFilename`` + ``asInit`` at the console
fails with "Access security is NOT enabled. Was asSetFilename specified before
iocInit?". ``epicscorelibs.ioc`` calls ``iocInit`` before its console starts,
so when ``acf`` is given the IOC is started through the tiny launcher
``python -m CaChannel.testing._iocmain --acf FILE ...`` which calls
``asSetFilename()`` of libdbCore through ctypes and then runs
``epicscorelibs.ioc.main()`` unchanged (so ``iocInit`` loads the ACF).
:meth:`IOC.start` checks afterwards that the rules are in force
(``asprules`` lists the ASGs) and raises ``RuntimeError`` otherwise. The
file can be reloaded at run time with ``ioc.shell("asInit")``. ACF ``INPA``
links use the IOC's own CA client, which is pointed at the IOC itself
(``EPICS_CA_ADDR_LIST=127.0.0.1`` with the IOC's port).

Environment of the IOC
----------------------
``EPICS_CA_SERVER_PORT``/``EPICS_CAS_SERVER_PORT`` = port,
``EPICS_CAS_INTF_ADDR_LIST=127.0.0.1``, ``EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO``,
``EPICS_CAS_BEACON_ADDR_LIST=127.0.0.1``, ``EPICS_CA_MAX_ARRAY_BYTES=100000000``
and, for the PV Access server that ``epicscorelibs.ioc`` also starts, loopback
only on fresh free ports (``EPICS_PVAS_INTF_ADDR_LIST``,
``EPICS_PVAS_SERVER_PORT``, ``EPICS_PVAS_BROADCAST_PORT``, beacons to
127.0.0.1), so parallel test runs never collide.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Deque, Dict, Iterator, List, Mapping, Optional, Sequence, Union

__all__ = [
    "DEFAULT_MAX_ARRAY_BYTES",
    "IOC",
    "ca_search",
    "free_port",
    "ioc_fixture",
]

PathLike = Union[str, "os.PathLike[str]"]

#: EPICS_CA_MAX_ARRAY_BYTES used for the IOC and the client environment
#: (enough for a 4,000,000-element DOUBLE waveform).
DEFAULT_MAX_ARRAY_BYTES = 100000000

_LOOPBACK = "127.0.0.1"
_RESERVED_PORTS = {5064, 5065, 5075, 5076}
_CA_MINOR_VERSION = 13
_CMD_VERSION = 0
_CMD_SEARCH = 6
_DO_REPLY = 10

# Variables inherited from the caller that could make the IOC talk to (or be
# found by) anything else than the loopback test setup.
_SCRUB_PREFIXES = ("EPICS_CA_", "EPICS_CAS_", "EPICS_PVA_", "EPICS_PVAS_")


def free_port() -> int:
    """Return a port number free for both TCP and UDP on 127.0.0.1.

    The port is only checked, not reserved: another process may take it
    before it is used (unlikely in practice, ephemeral ports cycle slowly).
    """
    for _ in range(200):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tcp.bind((_LOOPBACK, 0))
            port = tcp.getsockname()[1]
            if port in _RESERVED_PORTS:
                continue
            try:
                udp.bind((_LOOPBACK, port))
            except OSError:
                continue
            return port
        finally:
            tcp.close()
            udp.close()
    raise RuntimeError("could not find a port free for both TCP and UDP")


def _ca_header(cmd: int, payload: int, dtype: int, count: int, p1: int, p2: int) -> bytes:
    return struct.pack(">HHHHII", cmd, payload, dtype, count, p1, p2)


def ca_search(name: str, port: int, host: str = _LOOPBACK, timeout: float = 0.5) -> Optional[int]:
    """Send one CA UDP search for ``name`` to ``host:port``.

    Returns the server's TCP port from the search reply, or ``None`` if no
    reply arrived within ``timeout`` seconds.
    """
    raw = name.encode()
    padded = raw + b"\0" * (8 - len(raw) % 8)
    cid = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
    msg = (_ca_header(_CMD_VERSION, 0, 0, _CA_MINOR_VERSION, 0, 0)
           + _ca_header(_CMD_SEARCH, len(padded), _DO_REPLY, _CA_MINOR_VERSION, cid, cid)
           + padded)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((_LOOPBACK, 0))
        sock.sendto(msg, (host, port))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                data, _ = sock.recvfrom(65536)
            except socket.timeout:
                return None
            except OSError:  # e.g. ICMP port unreachable reported on Linux
                time.sleep(min(0.05, max(left, 0)))
                continue
            off = 0
            while off + 16 <= len(data):
                cmd, size, dtype, _count, _p1, p2 = struct.unpack_from(">HHHHII", data, off)
                if cmd == _CMD_SEARCH and p2 == cid:
                    return dtype  # server TCP port
                off += 16 + size
    finally:
        sock.close()


def _first_record_name(db: Path, macros: str) -> Optional[str]:
    text = db.read_text(errors="replace")
    m = re.search(r'^\s*g?record\s*\(\s*\w+\s*,\s*(?:"([^"]+)"|([^",)\s]+))', text, re.M)
    if not m:
        return None
    name = m.group(1) or m.group(2)
    subs = {}
    for item in filter(None, (s.strip() for s in macros.split(","))):
        if "=" in item:
            k, v = item.split("=", 1)
            subs[k.strip()] = v.strip()
    name = re.sub(r"\$[({](\w+)(?:=([^)}]*))?[)}]",
                  lambda mm: subs.get(mm.group(1), mm.group(2) or mm.group(0)), name)
    return None if "$" in name else name


class IOC:
    """An ``epicscorelibs`` soft IOC in a subprocess, serving CA on 127.0.0.1.

    :param databases: ``.db`` files to load (``dbLoadRecords``).
    :param macros: macro substitutions applied to every database
        (``"P=ca:,N=10"``).
    :param port: CA server port; default: a free port chosen now (kept for
        restarts).
    :param acf: access security configuration file (see module docstring).
    :param env: extra environment variables for the IOC (override ours).
    :param ready_pv: PV searched for to detect readiness; default: the first
        record of the first database.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, databases: Sequence[PathLike], macros: str = "",
                 port: Optional[int] = None, acf: Optional[PathLike] = None,
                 env: Optional[Mapping[str, str]] = None,
                 ready_pv: Optional[str] = None,
                 max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES) -> None:
        if isinstance(databases, (str, os.PathLike)):
            databases = [databases]
        self.databases: List[Path] = [Path(d).resolve() for d in databases]
        if not self.databases:
            raise ValueError("IOC needs at least one database")
        for db in self.databases:
            if not db.is_file():
                raise FileNotFoundError(f"database not found: {db}")
        self.macros = macros
        self.acf: Optional[Path] = Path(acf).resolve() if acf else None
        if self.acf is not None and not self.acf.is_file():
            raise FileNotFoundError(f"ACF not found: {self.acf}")
        self.extra_env: Dict[str, str] = dict(env or {})
        self.max_array_bytes = int(max_array_bytes)
        self.port: int = int(port) if port else free_port()
        self.ready_pv: Optional[str] = ready_pv or _first_record_name(self.databases[0], macros)
        if not self.ready_pv:
            raise ValueError("cannot find a record name in %s; pass ready_pv=" % self.databases[0])
        self._proc: Optional[subprocess.Popen] = None
        self._reader: Optional[threading.Thread] = None
        self._lines: Deque[str] = collections.deque(maxlen=2000)
        self._nlines = 0  # total lines ever read (for shell() output capture)
        self._cond = threading.Condition()
        self._shell_lock = threading.Lock()
        self._marker_seq = 0
        #: iocsh status of the last :meth:`shell` command (0 = success)
        self.last_status: Optional[int] = None

    # ------------------------------------------------------------------ info
    @property
    def pid(self) -> Optional[int]:
        """PID of the IOC process (None if never started)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the IOC process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def output(self, lines: int = 200) -> str:
        """The last ``lines`` lines of the IOC's stdout+stderr."""
        with self._cond:
            return "\n".join(list(self._lines)[-lines:])

    def client_env(self) -> Dict[str, str]:
        """Environment variables pointing a CA client at this IOC only."""
        return {
            "EPICS_CA_ADDR_LIST": f"{_LOOPBACK}:{self.port}",
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_MAX_ARRAY_BYTES": str(self.max_array_bytes),
        }

    def server_env(self) -> Dict[str, str]:
        """The environment the IOC process is started with (fresh PVA ports)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
        port = str(self.port)
        env.update({
            "EPICS_CA_SERVER_PORT": port,
            "EPICS_CAS_SERVER_PORT": port,
            "EPICS_CAS_INTF_ADDR_LIST": _LOOPBACK,
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_CAS_BEACON_ADDR_LIST": _LOOPBACK,
            "EPICS_CA_MAX_ARRAY_BYTES": str(self.max_array_bytes),
            # the IOC's own CA client (ACF INPA, CA links) finds only us
            "EPICS_CA_ADDR_LIST": _LOOPBACK,
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            # PV Access server started by epicscorelibs.ioc: loopback, own ports
            "EPICS_PVAS_INTF_ADDR_LIST": _LOOPBACK,
            "EPICS_PVAS_SERVER_PORT": str(free_port()),
            "EPICS_PVAS_BROADCAST_PORT": str(free_port()),
            "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_PVAS_BEACON_ADDR_LIST": _LOOPBACK,
            "EPICS_PVA_ADDR_LIST": _LOOPBACK,
            "EPICS_PVA_AUTO_ADDR_LIST": "NO",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def command(self) -> List[str]:
        """The command line used to start the IOC."""
        if self.acf is not None:
            cmd = [sys.executable, "-m", "CaChannel.testing._iocmain", "--acf", str(self.acf)]
        else:
            cmd = [sys.executable, "-m", "epicscorelibs.ioc"]
        # epicscorelibs.ioc applies the -m value seen *before* each -d
        if self.macros:
            cmd += ["-m", self.macros]
        for db in self.databases:
            cmd += ["-d", str(db)]
        return cmd

    # ------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 30.0) -> "IOC":
        """Start the IOC and wait until it answers a CA search for ``ready_pv``.

        Raises ``RuntimeError`` (with the IOC output tail) if the process dies
        or does not answer within ``timeout`` seconds.
        """
        if self.running:
            raise RuntimeError(f"IOC already running (pid {self.pid})")
        with self._cond:
            self._lines.clear()
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=self.server_env(), cwd=str(self.databases[0].parent),
            start_new_session=True)
        self._reader = threading.Thread(target=self._drain, args=(self._proc,),
                                        name=f"ioc-{self._proc.pid}-output", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                self._reader.join(2)
                raise RuntimeError(
                    f"IOC exited with status {self._proc.returncode} during start-up:\n"
                    + self.output())
            if ca_search(self.ready_pv, self.port, timeout=0.25) is not None:
                break
            if time.monotonic() > deadline:
                out = self.output()
                self.stop()
                raise RuntimeError(
                    f"IOC did not answer a CA search for {self.ready_pv!r} on "
                    f"{_LOOPBACK}:{self.port} within {timeout} s:\n{out}")
        if self.acf is not None:
            rules = self.shell("asprules", timeout=max(5.0, deadline - time.monotonic()))
            if "ASG(" not in rules:
                out = self.output()
                self.stop()
                raise RuntimeError(f"access security not active after loading {self.acf}:\n{out}")
        return self

    def _drain(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n")
            with self._cond:
                self._lines.append(line)
                self._nlines += 1
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def shell(self, cmd: str, timeout: float = 10.0) -> str:
        """Run an iocsh command (e.g. ``"dbpf catest 5"``) and return its output.

        Waits until the command finished; its iocsh return status is kept in
        :attr:`last_status`. Raises ``RuntimeError`` if the IOC is
        not running or does not complete the command within ``timeout``.
        """
        if not self.running or self._proc is None or self._proc.stdin is None:
            raise RuntimeError("IOC is not running")
        with self._shell_lock:
            self._marker_seq += 1
            marker = f"@@cachannel-shell-done-{self._marker_seq}@@"
            line = (f"_st = ioc({cmd!r}); _fl = __import__('ctypes').CDLL(None).fflush(None); "
                    f"print({marker!r}, _st, flush=True)\n")
            with self._cond:
                start = self._nlines
            try:
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise RuntimeError(f"IOC console closed: {exc}\n{self.output()}") from exc
            deadline = time.monotonic() + timeout
            with self._cond:
                while True:
                    new = self._nlines - start
                    got = list(self._lines)[-new:] if new else []
                    for i, text in enumerate(got):
                        if marker in text:
                            out = [ln for ln in got[:i]]
                            tail, _, status = text.partition(marker)
                            try:
                                self.last_status = int(status.strip())
                            except ValueError:
                                self.last_status = None
                            if tail.replace(">>>", "").strip():
                                out.append(tail)
                            return "\n".join(
                                ln[4:] if ln.startswith(">>> ") else ln for ln in out)
                    left = deadline - time.monotonic()
                    if left <= 0 or not self.running:
                        raise RuntimeError(
                            f"iocsh command {cmd!r} did not complete:\n{self.output()}")
                    self._cond.wait(min(left, 0.5))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the IOC: close its console (clean exit), then SIGTERM, then SIGKILL."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        self._finish(proc)

    def kill(self) -> None:
        """SIGKILL the IOC (for fault tests); :meth:`start` restarts it on the same port."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        self._finish(proc)

    def _finish(self, proc: subprocess.Popen) -> None:
        if self._reader is not None:
            self._reader.join(5)
        for f in (proc.stdin, proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    def __enter__(self) -> "IOC":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<IOC {_LOOPBACK}:{self.port} {state} dbs={[d.name for d in self.databases]}>"


def ioc_fixture(databases: Sequence[PathLike], *, macros: str = "",
                acf: Optional[PathLike] = None, port: Optional[int] = None,
                env: Optional[Mapping[str, str]] = None, ready_pv: Optional[str] = None,
                export_env: bool = True, scope: str = "session",
                autouse: bool = False, name: Optional[str] = None, timeout: float = 30.0):
    """Make a pytest fixture that runs an :class:`IOC` for its scope.

    In a ``conftest.py``::

        from CaChannel.testing import ioc_fixture
        motor_ioc = ioc_fixture(["db/motor.db"], macros="P=sim:")

        def test_motor(motor_ioc):
            motor_ioc.shell("dbpf sim:m1.VAL 2")

    With ``export_env`` the IOC's :meth:`IOC.client_env` is put into
    ``os.environ`` for the fixture's scope (restored afterwards). libca reads
    it only when the first CA context of the process is created, so a
    fixture started after CA was already used cannot redirect libca; use the
    ini options of the plugin (started before collection) in that case.
    Relative database paths are resolved against the current directory.
    """
    import pytest

    @pytest.fixture(scope=scope, autouse=autouse, name=name)
    def _ioc_fixture() -> Iterator[IOC]:
        ioc = IOC(databases, macros=macros, port=port, acf=acf, env=env, ready_pv=ready_pv)
        ioc.start(timeout=timeout)
        saved = {k: os.environ.get(k) for k in ioc.client_env()}
        try:
            if export_env:
                os.environ.update(ioc.client_env())
            yield ioc
        finally:
            if export_env:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            ioc.stop()

    return _ioc_fixture
