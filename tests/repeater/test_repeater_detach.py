"""The ``caRepeater`` script detaches from the client libca spawns it from.

A repeater that keeps the client's stdout/stderr open makes
``subprocess.run(..., capture_output=True)`` of a CA script, or a shell pipe
reading its output, wait for ever (issue 10, item 1). Each test gives its
client a private ``EPICS_CA_REPEATER_PORT`` and a PATH where our
``caRepeater`` script is found first, so libca spawns *our* repeater on a port
nobody else uses; the repeater is stopped by its PID at the end.
"""
from __future__ import annotations

import glob
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import time

import pytest

from CaChannel.testing import free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")

SCRIPTS = sysconfig.get_path("scripts")
DESC = "CaChannel manual test record"  # catest.DESC in tests/test.db
CAGET = "from CaChannel import util; print(util.caget('catest.DESC'))\n"

# CA protocol commands used by the repeater (caProto.h)
CA_PROTO_VERSION = 0
CA_PROTO_RSRV_IS_UP = 13
REPEATER_CONFIRM = 17
REPEATER_REGISTER = 24


def ca_header(cmd: int, available: int = 0, cid: int = 0) -> bytes:
    return struct.pack(">HHHHII", cmd, 0, 0, 0, cid, available)


def udp_inodes(port: int) -> set:
    """Inodes of the UDP sockets bound to ``port`` (any address)."""
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_holders(port: int) -> list:
    """PIDs of the processes holding a UDP socket bound to ``port``."""
    wanted = {"socket:[%s]" % i for i in udp_inodes(port)}
    pids = []
    if not wanted:
        return pids
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        try:
            links = {os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)}
        except OSError:
            continue
        if links & wanted:
            pids.append(int(fd_dir.split("/")[2]))
    return pids


def is_repeater_cmdline(cmd: bytes) -> bool:
    return b"caRepeater" in cmd or b"CaChannel._repeater" in cmd


def repeaters_of(port: int) -> list:
    """caRepeater processes started for ``port`` (bound to it or not yet)."""
    pids = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/cmdline", "rb") as f:
                cmd = f.read()
            with open(d + "/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if is_repeater_cmdline(cmd) and ("EPICS_CA_REPEATER_PORT=%d" % port).encode() in env:
            pids.append(int(d.rsplit("/", 1)[1]))
    return pids


def wait_repeater(port: int, timeout: float = 30.0) -> int:
    """PID of the caRepeater that binds ``port`` (a python start on a busy host is slow)."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in port_holders(port):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if is_repeater_cmdline(f.read()):
                        return pid
            except OSError:
                pass
        assert time.monotonic() < deadline, \
            "no caRepeater bound UDP port %d within %g s (holders: %s)" % (
                port, timeout, port_holders(port))
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_detached(pid: int) -> None:
    """The repeater holds no pipe, has stdio on /dev/null, its own session, cwd /."""
    fds = {int(fd): os.readlink("/proc/%d/fd/%s" % (pid, fd))
           for fd in os.listdir("/proc/%d/fd" % pid)}
    assert [fds.get(i) for i in (0, 1, 2)] == [os.devnull] * 3, fds
    others = {fd: link for fd, link in fds.items() if fd > 2}
    assert all(link.startswith("socket:") for link in others.values()), others
    assert os.getsid(pid) == pid, "caRepeater %d did not start its own session" % pid
    assert os.readlink("/proc/%d/cwd" % pid) == "/"


@pytest.fixture
def private_repeater(softioc, tmp_path):
    """(environment, port, script): a client set-up whose libca spawns our
    caRepeater on a private port; every repeater of that port is stopped by
    PID at the end."""
    assert os.path.exists(os.path.join(SCRIPTS, "caRepeater")), "console script not installed"
    port = free_port()
    env = dict(os.environ, EPICS_CA_REPEATER_PORT=str(port),
               PATH=SCRIPTS + os.pathsep + os.environ.get("PATH", ""))
    env.update(softioc.client_env())
    env.pop("CACHANNEL_REPEATER_LOG", None)
    script = tmp_path / "caget1.py"
    script.write_text(CAGET)
    try:
        yield env, port, str(script)
    finally:
        deadline = time.monotonic() + 10
        while True:
            pids = set(repeaters_of(port)) | set(port_holders(port))
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            if not [p for p in pids if alive(p)] or time.monotonic() > deadline:
                break
            time.sleep(0.05)


def run_bounded(cmd, env, timeout=60.0):
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail("%s did not return within %g s: its output pipe stayed open "
                    "(caRepeater holding it?); stdout so far: %r" % (cmd, timeout, exc.stdout))


def test_captured_script_returns_while_spawned_repeater_lives(private_repeater):
    env, port, script = private_repeater
    assert not udp_inodes(port), "port %d already bound" % port
    proc = run_bounded([sys.executable, script], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == DESC, (proc.stdout, proc.stderr)
    assert "couldn't be located" not in proc.stderr, proc.stderr
    pid = wait_repeater(port)
    assert alive(pid)
    assert_detached(pid)


@pytest.mark.parametrize("command", [
    '"$CAGET_PY" "$CAGET_SCRIPT" 2>&1 | cat',
    'cachannel get catest.DESC | grep manual',
], ids=["script", "cli"])
def test_shell_pipe_ends_while_spawned_repeater_lives(private_repeater, command):
    env, port, script = private_repeater
    env = dict(env, CAGET_PY=sys.executable, CAGET_SCRIPT=script)
    proc = run_bounded(["sh", "-c", command], env)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.strip().endswith(DESC), (proc.stdout, proc.stderr)
    pid = wait_repeater(port)
    assert alive(pid)
    assert_detached(pid)


def _recv_cmd(sock: socket.socket, cmd: int, timeout: float) -> bytes:
    """First datagram carrying CA command ``cmd`` within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail("no CA command %d from the repeater within %g s (got %s)"
                        % (cmd, timeout, seen))
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            data = sock.recv(4096)
            seen.append(data[:16].hex())
            if len(data) >= 16 and struct.unpack(">H", data[:2])[0] == cmd:
                return data


SPY = """#!/bin/sh
echo $$ >> "$SPY_LOG"
exec "$REAL_CAREPEATER" "$@"
"""


def test_spawned_repeater_serves_clients(private_repeater, tmp_path):
    """After detaching, the repeater still confirms registrations, fans out
    beacons, and a libca client registers with it instead of spawning another.

    libca registers with the repeater 10 s after its UDP set-up (its
    repeaterSubscribeTimer), and the repeater then sends a noop
    (CA_PROTO_VERSION) to every other registered client: our fake client
    sees that noop when the libca client registered.
    """
    env, port, script = private_repeater
    # a caRepeater found first on PATH that records each spawn, then runs ours
    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    spy = spy_dir / "caRepeater"
    spy.write_text(SPY)
    spy.chmod(0o755)
    spy_log = tmp_path / "spawns.log"
    env = dict(env, PATH=str(spy_dir) + os.pathsep + env["PATH"], SPY_LOG=str(spy_log),
               REAL_CAREPEATER=os.path.join(SCRIPTS, "caRepeater"))
    proc = run_bounded([sys.executable, script], env)
    assert proc.stdout.strip() == DESC, proc.stderr
    pid = wait_repeater(port)
    assert len(spy_log.read_text().split()) == 1, "libca did not spawn caRepeater through PATH"
    loopback = struct.unpack(">I", socket.inet_aton("127.0.0.1"))[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        client.bind(("127.0.0.1", 0))
        client.sendto(ca_header(REPEATER_REGISTER, loopback), ("127.0.0.1", port))
        confirm = _recv_cmd(client, REPEATER_CONFIRM, 10)
        assert struct.unpack(">I", confirm[12:16])[0] == loopback
        # a beacon sent to the repeater port reaches the registered client,
        # with the sender's address filled in
        server.bind(("127.0.0.1", 0))
        server.sendto(ca_header(CA_PROTO_RSRV_IS_UP, 0, 7), ("127.0.0.1", port))
        beacon = _recv_cmd(client, CA_PROTO_RSRV_IS_UP, 10)
        assert struct.unpack(">I", beacon[12:16])[0] == loopback
        # a libca client that lives until its stdin closes
        code = ("import sys; from CaChannel import util\n"
                "print(util.caget('catest.DESC'), flush=True)\n"
                "sys.stdin.read()\n")
        second = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _recv_cmd(client, CA_PROTO_VERSION, 40)
            out, err = second.communicate("", timeout=30)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        assert second.returncode == 0 and out.strip() == DESC, (out, err)
    # the registered client spawned no repeater: ours is still the only one
    assert len(spy_log.read_text().split()) == 1, spy_log.read_text()
    assert port_holders(port) == [pid]
    assert alive(pid)


def read_to_eof(files, timeout: float) -> list:
    """Everything read from ``files`` until each reports EOF; fails after ``timeout`` s."""
    data = {f: b"" for f in files}
    open_ = list(files)
    deadline = time.monotonic() + timeout
    while open_:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail("no EOF within %g s: caRepeater kept the pipes of the process "
                        "that started it" % timeout)
        ready, _, _ = select.select(open_, [], [], left)
        for f in ready:
            chunk = os.read(f.fileno(), 4096)
            if chunk:
                data[f] += chunk
            else:
                open_.remove(f)
    return [data[f] for f in files]


def test_started_repeater_keeps_pid_and_logs_to_file(tmp_path):
    """Started directly (as ``python -m CaChannel._repeater`` or a service
    manager would), it keeps its PID, releases the starter's pipes, and sends
    stdout/stderr to ``CACHANNEL_REPEATER_LOG``."""
    port = free_port()
    log = tmp_path / "repeater.log"
    env = dict(os.environ, EPICS_CA_REPEATER_PORT=str(port), CACHANNEL_REPEATER_LOG=str(log))
    proc = subprocess.Popen([sys.executable, "-m", "CaChannel._repeater"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # EOF on both pipes while the process lives: it let go of them
        proc.stdin.close()
        out, err = read_to_eof([proc.stdout, proc.stderr], 60)
        assert proc.poll() is None, "caRepeater exited (%s): %r" % (proc.returncode, err)
        assert (out, err) == (b"", b"")
        assert wait_repeater(port) == proc.pid
        fds = {fd: os.readlink("/proc/%d/fd/%s" % (proc.pid, fd))
               for fd in os.listdir("/proc/%d/fd" % proc.pid)}
        assert fds["0"] == os.devnull and fds["1"] == fds["2"] == str(log), fds
        assert os.getsid(proc.pid) == proc.pid
    finally:
        proc.terminate()
        proc.wait(10)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def test_unwritable_log_is_reported_and_repeater_runs(tmp_path):
    port = free_port()
    log = tmp_path / "missing" / "repeater.log"
    env = dict(os.environ, EPICS_CA_REPEATER_PORT=str(port), CACHANNEL_REPEATER_LOG=str(log))
    proc = subprocess.Popen([sys.executable, "-m", "CaChannel._repeater"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        err, = read_to_eof([proc.stderr], 60)
        assert b"cannot open CACHANNEL_REPEATER_LOG" in err, err
        assert wait_repeater(port) == proc.pid
        assert os.readlink("/proc/%d/fd/2" % proc.pid) == os.devnull
    finally:
        proc.terminate()
        proc.wait(10)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None:
                f.close()
