"""Exit with live monitors, pending put callbacks and a freshly killed IOC.

``python exit_script.py MODE ALIVE_ADDR`` where ALIVE_ADDR is ``127.0.0.1:PORT``
of an IOC serving al:0..9, al:tick (10 Hz) and al:slow (a put completes after
30 s). The script starts its own IOC (ex:0..9, ex:slow), connects and
monitors everything, leaves puts with callback pending on both slow records,
SIGKILLs its own IOC and then exits according to MODE:

=================  ===========================================================  ====
normal             return from main (interpreter finalization)                   0
sys_exit           ``sys.exit(2)`` from the main thread                          2
raise              unhandled exception in the main thread                        1
sys_exit_callback  ``sys.exit(3)`` in a monitor callback (printed, swallowed)    0
os_exit_callback   ``os._exit(3)`` in a monitor callback (libca thread)          3
nonpreemptive      non-preemptive context, SystemExit in a callback run by
                   ``pend_event`` in the main thread, then normal exit          0
=================  ===========================================================  ====
"""
import os
import sys
import tempfile
import threading
import time

EXPECTED_RC = {"normal": 0, "sys_exit": 2, "raise": 1, "sys_exit_callback": 0,
               "os_exit_callback": 3, "nonpreemptive": 0}


def main(mode: str, alive_addr: str) -> int:
    from CaChannel.testing import IOC
    fd, db = tempfile.mkstemp(suffix=".db")
    with os.fdopen(fd, "w") as f:
        for i in range(10):
            f.write('record(ao, "ex:%d") { field(VAL, "%d") field(PINI, "YES") }\n' % (i, i))
        f.write('record(seq, "ex:slow") { field(DLY0, "30") field(DOL0, "1") '
                'field(LNK0, "ex:sink PP") }\nrecord(ao, "ex:sink") {}\n')
    own = IOC([db], ready_pv="ex:0")
    own.start()
    os.unlink(db)
    print("OWN_IOC_PID %d" % own.pid, flush=True)
    os.environ["EPICS_CA_ADDR_LIST"] = "%s 127.0.0.1:%d" % (alive_addr, own.port)
    os.environ["EPICS_CA_AUTO_ADDR_LIST"] = "NO"

    from CaChannel import ca
    preemptive = mode != "nonpreemptive"
    assert ca.create_context(preemptive) == ca.ECA_NORMAL
    cond = threading.Condition()
    seen = set()

    def on_event(d):
        with cond:
            seen.add(ca.name(d["chid"]))
            cond.notify_all()

    def wait(pred, timeout, what):
        deadline = time.monotonic() + timeout
        with cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit("timeout waiting for %s" % what)
                if preemptive:
                    cond.wait(left)
                else:
                    cond.release()
                    try:
                        ca.pend_event(0.02)
                    finally:
                        cond.acquire()

    names = ["al:%d" % i for i in range(10)] + ["ex:%d" % i for i in range(10)] + ["al:tick"]
    chids = {}
    for n in names + ["al:slow", "ex:slow"]:
        status, chids[n] = ca.create_channel(n)
    assert ca.pend_io(10) == ca.ECA_NORMAL, "channels did not connect"
    for n in names:
        status, _ = ca.create_subscription(chids[n], on_event)
        assert status == ca.ECA_NORMAL
    ca.flush_io()
    wait(lambda: len(seen) == len(names), 10, "first events")

    put_done = []
    for n in ("al:slow", "ex:slow"):
        assert ca.put(chids[n], 1, callback=put_done.append) == ca.ECA_NORMAL
    ca.flush_io()

    if mode == "normal":
        from CaChannel import CaChannel
        chan = CaChannel("al:tick")
        chan.searchw()
        chan.add_masked_array_event(None, None, ca.DBE_VALUE, lambda *a: None)
        chan.flush_io()
        chan.__dict__["_keep"] = chan  # a live high-level monitor at exit

    own.kill()  # the freshly killed IOC: disconnects race with the exit
    print("KILLED %.6f" % time.time(), flush=True)

    if mode == "sys_exit":
        sys.exit(2)
    if mode == "raise":
        raise RuntimeError("unhandled exception at exit (expected by the test)")
    if mode in ("sys_exit_callback", "os_exit_callback", "nonpreemptive"):
        ran = threading.Event()

        def exiting(d):
            ran.set()
            if mode == "os_exit_callback":
                os._exit(3)
            sys.exit(3)

        status, _ = ca.create_subscription(chids["al:tick"], exiting)
        assert status == ca.ECA_NORMAL
        ca.flush_io()
        deadline = time.monotonic() + 5
        while not ran.is_set() and time.monotonic() < deadline:
            if preemptive:
                ran.wait(0.1)
            else:
                ca.pend_event(0.05)
        if not ran.is_set():
            raise SystemExit("the exiting callback never ran")
        if mode == "os_exit_callback":
            time.sleep(5)  # os._exit in the libca thread ends the process first
            return 9
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
