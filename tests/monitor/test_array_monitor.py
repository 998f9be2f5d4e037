"""ArrayMonitor: frames in a ring of preallocated buffers, policies, close, exit."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from CaChannel import ca
from CaChannel.monitor import ArrayMonitor

from mon_helpers import wait_for


def put_frame(chid, k, n=100, chtype=ca.DBR_LONG, mon=None):
    """Put one frame; with ``mon``, wait until that monitor received it.

    The IOC's event queue keeps at most a few events per subscription and
    coalesces the rest, so frames are paced by their arrival (the consumer
    under test stays as slow as it likes).
    """
    before = None if mon is None else mon.stats.received
    assert ca.put(chid, np.arange(k, k + n, dtype=np.int32), chtype, n) == ca.ECA_NORMAL
    ca.flush_io()
    if mon is not None:
        wait_for(lambda: mon.stats.received > before, what="frame %d" % k)


def test_ring_reuses_slots(wf):
    put_frame(wf, 0)
    ca.pend_io(2)
    addresses = []
    with ArrayMonitor("mon:wf", buffers=3, policy="all") as mon:
        assert mon.buffers == 3 and mon.capacity == 1000 and mon.dtype == np.int32
        first = mon.get(5)
        assert first is not None and first.seq == 1 and first.count == 100
        for k in range(1, 10):
            put_frame(wf, k)
            frame = mon.get(5)
            assert frame is not None, "frame %d did not arrive" % k
            assert first.released or k > 1
            assert frame.seq == k + 1 and frame.count == 100
            assert frame.array[0] == k and frame.array[-1] == k + 99
            assert frame.array.dtype == np.int32 and frame.timestamp > 1e9
            assert frame.severity == ca.AlarmSeverity.No
            addresses.append(frame.array.ctypes.data)
        with pytest.raises(ValueError):
            first.array  # released when the next frame was taken
        assert len(set(addresses)) <= 3, "only the ring's 3 slots may be used"
        assert len(set(addresses)) < len(addresses), "slots come back"
        slot_base = mon._sink.data.ctypes.data
        slot_bytes = mon._sink.data.strides[0]
        assert all(slot_base <= a < slot_base + 3 * slot_bytes for a in addresses)
        assert mon.stats == (10, 10, 0, 0)


def test_latest_with_slow_consumer(wf):
    with ArrayMonitor("mon:wf", buffers=4, policy="latest") as mon:
        held = mon.get(5)           # the consumer is busy with this one
        assert held is not None
        for k in range(1, 21):
            put_frame(wf, 1000 + k, mon=mon)
        wait_for(lambda: mon.stats.received == 21, what="21 frames")
        st = mon.stats
        assert (st.pending, st.dropped) == (1, 19)
        assert held.array[0] == held.array[1] - 1  # the held slot was not overwritten
        newest = mon.get(1)
        assert newest.array[0] == 1020 and newest.seq == 21
        st = mon.stats
        assert st.received == st.delivered + st.dropped + st.pending == 21


def test_all_with_slow_consumer(wf):
    with ArrayMonitor("mon:wf", buffers=4, policy="all") as mon:
        held = mon.get(5)
        first_value = int(held.array[0])
        for k in range(1, 21):
            put_frame(wf, 2000 + k, mon=mon)
        wait_for(lambda: mon.stats.received == 21, what="21 frames")
        assert mon.stats == (21, 1, 17, 3)     # 3 free slots while one is held
        assert int(held.array[0]) == first_value
        assert [int(mon.get(1).array[0]) for _ in range(3)] == [2018, 2019, 2020]
        assert mon.get(0.05) is None
        assert mon.stats == (21, 4, 17, 0)


def test_unsigned_and_signed_8_16_bit(mon_ioc):
    status, chid = ca.create_channel("mon:wf16")
    assert ca.pend_io(5) == ca.ECA_NORMAL
    try:
        ca.put(chid, [0, 1, 40000, 65535], ca.DBR_LONG, 4)
        ca.pend_io(2)
        with ArrayMonitor("mon:wf16", dtype="uint16") as mon:
            assert mon.request_type == ca.DBR_TIME_ENUM
            frame = mon.get(5)
            assert frame.array.dtype == np.uint16 and frame.array.itemsize == 2
            assert frame.array.tolist() == [0, 1, 40000, 65535]
        ca.put(chid, [0, 1, 127, 200, 255], ca.DBR_LONG, 5)
        ca.pend_io(2)
        with ArrayMonitor("mon:wf16", dtype=np.int8, count=5) as mon:
            assert mon.request_type == ca.DBR_TIME_CHAR and mon.capacity == 5
            assert mon.get(5).array.tolist() == [0, 1, 127, -56, -1]
        with pytest.raises(ValueError):
            ArrayMonitor("mon:wf16", dtype=np.complex64)
    finally:
        ca.clear_channel(chid)
        ca.flush_io()


def test_bad_arguments(mon_ioc):
    with pytest.raises(ValueError):
        ArrayMonitor("mon:wf", buffers=1)
    with pytest.raises(ValueError):
        ArrayMonitor("mon:wf", policy="fifo")
    with pytest.raises(TimeoutError):
        ArrayMonitor("mon:no_such_pv", timeout=0.3)


def test_close_with_frames_in_flight(wf):
    mon = ArrayMonitor("mon:wf", buffers=4, policy="all")
    held = mon.get(5)
    for k in range(1, 4):
        put_frame(wf, 3000 + k, mon=mon)
    wait_for(lambda: mon.stats.received == 4)
    got = []
    consumer_waiting = threading.Event()

    def consume():
        consumer_waiting.set()
        for frame in mon:      # ends when the monitor is closed
            got.append(int(frame.array[0]))
            if len(got) == 3:
                consumer_waiting.set()
    held.release()
    t = threading.Thread(target=consume)
    t.start()
    wait_for(lambda: len(got) == 3, what="the consumer to take 3 frames")
    put_frame(wf, 4000)
    wait_for(lambda: mon.stats.received == 5)
    mon.close()
    t.join(5)
    assert not t.is_alive(), "iteration must end when the monitor is closed"
    st = mon.stats
    assert st.received == st.delivered + st.dropped and st.pending == 0
    assert got[:3] == [3001, 3002, 3003]
    assert mon.get(0.01) is None
    mon.close()


EXIT_SCRIPT = textwrap.dedent("""
    import threading, numpy as np
    from CaChannel import ca
    from CaChannel.monitor import ArrayMonitor
    mon = ArrayMonitor("mon:wf", buffers=3, policy="all")
    ca.create_context(True)
    status, chid = ca.create_channel("mon:wf")
    assert ca.pend_io(5) == ca.ECA_NORMAL
    frames = []
    def consume():                      # a non-daemon consumer blocked in iteration
        for frame in mon:
            frames.append(frame.seq)
    threading.Thread(target=consume).start()
    held = mon.get  # the monitor stays live with frames in flight
    for k in range(50):
        ca.put(chid, np.arange(k, k + 500, dtype=np.int32), ca.DBR_LONG, 500)
    ca.flush_io()
    print("exiting", flush=True)
""")


def test_interpreter_exit_with_live_monitor(mon_ioc):
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "exiting" in proc.stdout
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


def test_ioc_restart_during_array_monitor(restart_ioc):
    """The IOC dies and comes back: the monitor reports the outage and resumes.

    libca notices the dead circuit at once, but finds the restarted IOC only
    after its disconnect governor (~10 s): this test takes that long.
    """
    status, chid = ca.create_channel("rst:wf")
    assert ca.pend_io(5) == ca.ECA_NORMAL
    try:
        with ArrayMonitor("rst:wf", buffers=4, policy="all") as mon:
            put_frame(chid, 10, n=50, mon=mon)
            frame = None
            while frame is None or frame.count != 50 or frame.array[0] != 10:
                frame = mon.get(5)
                assert frame is not None
            seq_before = frame.seq
            restart_ioc.kill()
            wait_for(lambda: not mon.connected, timeout=10, what="the disconnection")
            assert mon.disconnects == 1 and mon.outages[-1][1] is None
            restart_ioc.start()
            wait_for(lambda: mon.connected, timeout=40, what="the reconnection")
            wait_for(lambda: ca.state(chid) == ca.ChannelState.CONN, timeout=20,
                     what="the writer's reconnection")
            down, up = mon.outages[-1]
            assert up is not None and up > down
            put_frame(chid, 77, n=50)
            deadline = 20
            while True:
                frame = mon.get(deadline)
                assert frame is not None, "no frame after the restart"
                if frame.count == 50 and frame.array[0] == 77:
                    break
            assert frame.seq > seq_before
            st = mon.stats
            assert st.received == st.delivered + st.dropped + st.pending
            assert mon.disconnects == 1
    finally:
        ca.clear_channel(chid)
        ca.flush_io()
