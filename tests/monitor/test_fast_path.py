"""ArrayMonitor's C fast path: slots filled on libca's thread without the GIL.

On the C extension backend an ArrayMonitor's ring is ``_ca._Ring`` and its
subscription's handler is C code; on cffi it is ``CaChannel._ring.Ring``
filled by a Python callback (and so is it on both with ``_USE_FAST_RING =
False``, through an ordinary subscription). Tags (``set_tag``), the consumer
side and the errors are the same on both.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from CaChannel import ca, core
import CaChannel.monitor as monitor
from CaChannel.monitor import ArrayMonitor

from mon_helpers import wait_for

C_BACKEND = ca.backend == "cext"
needs_c = pytest.mark.skipif(not C_BACKEND, reason="the C fast path is the C extension's")


def put(chid, k, n=100):
    assert ca.put(chid, np.arange(k, k + n, dtype=np.int32), ca.DBR_LONG, n) == ca.ECA_NORMAL
    ca.flush_io()


def test_fast_path_is_the_default_on_c(mon_ioc):
    with ArrayMonitor("mon:wf", buffers=2) as mon:
        assert mon.fast_path is C_BACKEND
        assert mon.get(5) is not None


WRITER = textwrap.dedent("""
    import sys, time, numpy as np
    from CaChannel import ca
    ca.create_context(True)
    status, chid = ca.create_channel("mon:wf")
    assert ca.pend_io(5) == ca.ECA_NORMAL
    print("ready", flush=True)
    end = time.monotonic() + float(sys.argv[1])
    k = 0
    while time.monotonic() < end:
        k += 1
        ca.put(chid, np.arange(k, k + 100, dtype=np.int32), ca.DBR_LONG, 100)
        ca.flush_io()
        time.sleep(0.01)
""")


def frames_while_holding_the_gil(mon, seconds=1.5):
    """Frames received while this thread holds the GIL for ``seconds``.

    Another process writes the waveform at about 100 Hz meanwhile. The switch
    interval is raised so that no other Python thread (libca's callback
    thread included, when it needs the GIL) runs before the busy loop ends;
    ``_sink.stats()`` is read without releasing the GIL.
    """
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(seconds + 3)],
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert writer.stdout.readline().strip() == "ready"
        wait_for(lambda: mon.stats.received >= 3, what="the writer's first frames")
        old = sys.getswitchinterval()
        sys.setswitchinterval(60.0)
        try:
            before = mon._sink.stats()[0]
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass
            during = mon._sink.stats()[0] - before
        finally:
            sys.setswitchinterval(old)
    finally:
        writer.terminate()
        writer.wait(10)
    return during


@needs_c
def test_c_ring_fills_slots_while_python_holds_the_gil(mon_ioc):
    with ArrayMonitor("mon:wf", buffers=4, policy="latest") as mon:
        assert mon.fast_path
        during = frames_while_holding_the_gil(mon)
        assert during >= 20, "libca's thread stopped while Python held the GIL (%d frames)" % during
        frame = mon.get(5)
        st = mon.stats
        assert frame is not None and frame.count == 100
        assert st.received == st.delivered + st.dropped + st.pending


def test_python_ring_waits_for_the_gil(mon_ioc, monkeypatch):
    """The control: the Python ring's libca callback needs the GIL, so the
    measurement above really tells the paths apart."""
    monkeypatch.setattr(monitor, "_USE_FAST_RING", False)
    with ArrayMonitor("mon:wf", buffers=4, policy="latest") as mon:
        assert not mon.fast_path
        assert frames_while_holding_the_gil(mon) == 0


def test_tags_travel_with_frames(wf):
    put(wf, 0)
    with ArrayMonitor("mon:wf", buffers=3, policy="all", tag=(7, -1)) as mon:
        first = mon.get(5)
        assert first is not None and first.tag == (7, -1)
        mon.set_tag([8, 2 ** 40])
        put(wf, 1)
        frame = mon.get(5)
        assert frame is not None and frame.array[0] == 1 and frame.tag == (8, 2 ** 40)
        with pytest.raises(ValueError):
            mon.set_tag((1, 2, 3))
        with pytest.raises(TypeError):
            mon.set_tag(("a", "b"))
    with ArrayMonitor("mon:wf", buffers=2) as mon:
        frame = mon.get(5)
        assert frame is not None and frame.tag is None


def test_ring_and_ring_subscribe_reject_bad_input(wf):
    Ring = ca._impl._Ring
    sub = ca._impl._ring_subscribe
    for args, exc in [((1, 10, "int32", "latest"), ValueError),       # one slot
                      ((4, 0, "int32", "latest"), ValueError),
                      ((4, 10, "int32", "fifo"), ValueError),
                      ((4, 10, "int32", "all", 17), ValueError),      # too many tags
                      ((4, 10, object, "all"), ValueError),
                      ((4, 10, "complex128", "all"), ValueError),     # 16 bytes
                      ((4, 10, "no such dtype", "all"), TypeError),
                      ((4, 2 ** 62, "int32", "all"), ValueError)]:
        with pytest.raises(exc):
            Ring(*args)
    ring = Ring(4, 100, "int32", "all", 1)
    with pytest.raises(ValueError):
        sub(wf, ring, ca.DBR_LONG)                 # not a TIME type
    with pytest.raises(ValueError):
        sub(wf, ring, ca.DBR_TIME_SHORT)           # 2-byte elements, 4-byte slots
    with pytest.raises(TypeError):
        sub(wf, object(), ca.DBR_TIME_LONG)
    with pytest.raises(TypeError):
        sub("mon:wf", ring, ca.DBR_TIME_LONG)
    with pytest.raises(ValueError):
        ring.give_back(0)                          # free, not held
    with pytest.raises(ValueError):
        ring.give_back(4)
    with pytest.raises(ValueError):
        ring.take(-1)
    with pytest.raises(TypeError):
        ring.take("soon")
    with pytest.raises(ValueError):
        ring.set_tag((1, 2))
    status, evid = sub(wf, ring, ca.DBR_TIME_LONG, None, None)
    assert status == ca.ECA_NORMAL
    ca.flush_io()
    slot = ring.take(5)
    assert slot is not None and ring.counts[slot] == ring.capacity == 100
    with pytest.raises(ValueError):
        sub(wf, ring, ca.DBR_TIME_LONG)            # one subscription per ring
    assert ca.clear_subscription(evid) == ca.ECA_NORMAL
    ring.give_back(slot)
    ring.close()
    assert ring.closed and ring.take(0) is None
    st = ring.stats()
    assert st[0] == st[1] + st[2] + st[3] and st[3] == 0


FORK_SCRIPT = textwrap.dedent("""
    import os, sys
    from CaChannel.monitor import ArrayMonitor
    mon = ArrayMonitor("mon:wf", buffers=3, policy="all")
    frame = mon.get(5)
    assert frame is not None
    pid = os.fork()
    if pid == 0:
        # the child: the inherited ring acts closed and is never locked again
        ok = mon.get(0.5) is None and mon.stats.pending == 0
        mon.close()
        sys.exit(0 if ok else 3)          # atexit closes live monitors too
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert not mon.closed
    mon.close()
    print("ok", flush=True)
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_inherited_ring_after_fork(mon_ioc):
    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def circuits_to(port):
    """Established TCP connections of this host to 127.0.0.1:port (Linux)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and remote.upper() == "0100007F:%04X" % port:
                n += 1
    return n


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads /proc/net/tcp")
def test_priority_gives_the_monitor_its_own_circuit(mon_ioc):
    """An ArrayMonitor's frames do not share the TCP circuit of default-priority
    channels (they would queue ahead of scalar updates), unless asked to."""
    # earlier tests' released channels stay open (idle) with their circuits:
    # close them, until only the default-priority circuit is left
    core.close_idle()
    wait_for(lambda: circuits_to(mon_ioc.port) == 1, what="only the default circuit left")
    before = circuits_to(mon_ioc.port)
    assert before >= 1     # the session's default-priority channels to this IOC
    with ArrayMonitor("mon:wf", buffers=2, priority=37) as mon:
        assert mon.get(5) is not None
        assert circuits_to(mon_ioc.port) == before + 1
    # released, the channel stays open (idle) for reuse: close idle channels
    core.close_idle()
    wait_for(lambda: circuits_to(mon_ioc.port) == before, what="the circuit to close")
    with ArrayMonitor("mon:wf", buffers=2, priority=0) as mon:
        assert mon.get(5) is not None
        assert circuits_to(mon_ioc.port) == before


DESTROY_SCRIPT = textwrap.dedent("""
    import threading, numpy as np
    from CaChannel import ca
    from CaChannel.monitor import ArrayMonitor
    mon = ArrayMonitor("mon:wf", buffers=3, policy="all")
    ctx = ca.current_context()
    # a writer in a context of its own keeps frames coming
    stop = threading.Event()
    def write():
        ca.create_context(True)
        status, chid = ca.create_channel("mon:wf")
        ca.pend_io(5)
        k = 0
        while not stop.is_set():
            k += 1
            ca.put(chid, np.arange(k, k + 500, dtype=np.int32), ca.DBR_LONG, 500)
            ca.flush_io()
            stop.wait(0.002)
    t = threading.Thread(target=write)
    t.start()
    frames = 0
    for _ in range(20):
        frame = mon.get(5)
        assert frame is not None
        frames += 1
    held = mon.get(5)                        # a frame held across the destroy
    ca.destroy_context()                     # the monitor's context, frames in flight
    assert int(held.array[0]) >= 1           # its slot memory is still ours
    left = 0
    while mon.get(0.2) is not None:          # frames already in the ring, then nothing
        left += 1
    assert left <= 3, left
    mon.close()
    st = mon.stats
    assert st.received == st.delivered + st.dropped + st.pending, st
    stop.set()
    t.join(10)
    print("ok", frames, left, flush=True)
""")


def test_destroy_context_under_a_live_array_monitor(mon_ioc):
    proc = subprocess.run([sys.executable, "-c", DESTROY_SCRIPT], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "ok" in proc.stdout, (proc.returncode, proc.stderr[-2000:])
