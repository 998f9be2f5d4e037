"""Kill -9 and restart an IOC under a monitoring client; print figures as JSON.

Run as a script (one process per backend, so that its libca context points at
the IOC it kills): ``python restart_worker.py CYCLES CHANNELS``. The test in
test_restart.py checks the figures.
"""
import json
import os
import sys
import tempfile
import threading
import time


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def start_repeater(port: int):
    """Our own caRepeater on a private port (stopped by PID at the end)."""
    import shutil
    import socket
    import subprocess
    exe = shutil.which("caRepeater")
    if exe is None:
        raise SystemExit("caRepeater script not on PATH")
    env = dict(os.environ, EPICS_CA_REPEATER_PORT=str(port))
    proc = subprocess.Popen([exe], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60  # python start-up on a loaded machine
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return proc  # bound by the repeater
        finally:
            s.close()
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("caRepeater did not bind port %d" % port)
        time.sleep(0.05)


def main(cycles: int, nchan: int, repeater: str = "private") -> dict:
    from CaChannel.testing import IOC, free_port
    ioc_env = {}
    rep = None
    if repeater in ("private", "none"):
        # a repeater port of our own: beacons of the restarted IOC reach this
        # client through our repeater only ("none": no repeater at all)
        rport = free_port()
        ioc_env["EPICS_CA_REPEATER_PORT"] = str(rport)
        os.environ["EPICS_CA_REPEATER_PORT"] = str(rport)
        if repeater == "private":
            rep = start_repeater(rport)
        else:
            os.environ["PATH"] = ""  # libca cannot spawn one either
    db = tempfile.NamedTemporaryFile("w", suffix=".db", delete=False)
    for i in range(nchan):
        db.write('record(ao, "rs:%d") { field(VAL, "%d") field(PINI, "YES") }\n' % (i, i))
    # a put to rs:slow completes only after 30 s (the seq record stays active
    # through its delay): it is pending at every kill
    db.write('record(seq, "rs:slow") { field(DLY0, "30") field(DOL0, "1") '
             'field(LNK0, "rs:sink PP") }\nrecord(ao, "rs:sink") {}\n')
    db.close()
    ioc = IOC([db.name], ready_pv="rs:0", env=ioc_env)
    ioc.start()
    os.environ.update(ioc.client_env())
    from CaChannel import ca
    assert ca.create_context(True) == ca.ECA_NORMAL

    lock = threading.Condition()
    ups, downs, events = {}, {}, {}

    def on_conn(d):
        with lock:
            book = ups if d["op"] == ca.CA_OP_CONN_UP else downs
            name = ca.name(d["chid"])
            book[name] = book.get(name, 0) + 1
            lock.notify_all()

    def on_event(d):
        with lock:
            name = ca.name(d["chid"])
            events[name] = events.get(name, 0) + 1
            lock.notify_all()

    def wait(pred, timeout, what):
        deadline = time.monotonic() + timeout
        with lock:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit("timeout waiting for %s" % what)
                lock.wait(left)

    names = ["rs:%d" % i for i in range(nchan)]
    chids = []
    for n in names:
        status, chid = ca.create_channel(n, on_conn)
        chids.append(chid)
    ca.flush_io()
    wait(lambda: len(ups) == nchan, 30, "first connections")
    for chid in chids:
        status, _ = ca.create_subscription(chid, on_event)
        assert status == ca.ECA_NORMAL
    ca.flush_io()
    wait(lambda: len(events) == nchan, 30, "first events")
    status, slow = ca.create_channel("rs:slow")
    assert ca.pend_io(10) == ca.ECA_NORMAL

    figures = {"cycles": [], "pending": []}
    for cycle in range(cycles):
        with lock:
            base_up = dict(ups)
            base_down = dict(downs)
            base_ev = dict(events)
        done = []
        ca.put(slow, 1, callback=lambda d: done.append(d["status"]))
        got = []
        ca.get(chids[0], callback=lambda d: got.append(d["status"]))
        ca.flush_io()
        t0 = time.monotonic()
        ioc.kill()
        wait(lambda: all(downs.get(n, 0) == base_down.get(n, 0) + 1 for n in names), 30,
             "CONN_DOWN of every channel (cycle %d)" % cycle)
        deadline = time.monotonic() + 10
        while not done and time.monotonic() < deadline:
            time.sleep(0.01)
        t1 = time.monotonic()
        ioc.start()
        t2 = time.monotonic()
        wait(lambda: all(ups.get(n, 0) == base_up.get(n, 0) + 1 for n in names), 60,
             "CONN_UP of every channel (cycle %d)" % cycle)
        # subscriptions resume by themselves: each delivers the value again
        wait(lambda: all(events.get(n, 0) > base_ev.get(n, 0) for n in names), 30,
             "events after reconnect (cycle %d)" % cycle)
        t3 = time.monotonic()
        with lock:
            extra_down = sum(downs[n] - base_down.get(n, 0) - 1 for n in names)
            extra_up = sum(ups[n] - base_up.get(n, 0) - 1 for n in names)
        figures["pending"].append({"put": [int(s) for s in done], "get": [int(s) for s in got]})
        figures["cycles"].append({"fds": fd_count(), "rss_kb": rss_kb(),
                                  "extra_down": extra_down, "extra_up": extra_up,
                                  "seconds": [round(t1 - t0, 2), round(t2 - t1, 2),
                                              round(t3 - t2, 2)]})
    for chid in chids:
        ca.clear_channel(chid)
    ca.clear_channel(slow)
    ca.flush_io()
    ioc.stop()
    os.unlink(db.name)
    if rep is not None:
        rep.kill()
        rep.wait(10)
    return figures


if __name__ == "__main__":
    result = main(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:4])
    print("RESULT " + json.dumps(result), flush=True)
    os._exit(0)
