"""Many channels on many servers: ``python many_worker.py IOCS PVS_PER_IOC``.

Starts IOCS soft IOCs with PVS_PER_IOC records each, connects every channel,
monitors all, waits for one update of each, clears all; twice (the first
round warms libca's free lists). Prints ``RESULT {json}`` with RSS figures.
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


def main(niocs: int, npv: int) -> dict:
    from CaChannel.testing import IOC
    iocs, dbs = [], []
    try:
        for k in range(niocs):
            fd, db = tempfile.mkstemp(suffix=".db")
            with os.fdopen(fd, "w") as f:
                for i in range(npv):
                    f.write('record(ao, "m%d:%d") { field(VAL, "%d") field(PINI, "YES") }\n'
                            % (k, i, i))
            dbs.append(db)
            iocs.append(IOC([db], ready_pv="m%d:0" % k))
        for ioc in iocs:
            ioc.start(timeout=120)
        os.environ["EPICS_CA_ADDR_LIST"] = " ".join("127.0.0.1:%d" % i.port for i in iocs)
        os.environ["EPICS_CA_AUTO_ADDR_LIST"] = "NO"
        from CaChannel import ca
        assert ca.create_context(True) == ca.ECA_NORMAL
        names = ["m%d:%d" % (k, i) for k in range(niocs) for i in range(npv)]
        cond = threading.Condition()
        state = {"up": 0, "events": 0}

        def on_conn(d):
            if d["op"] == ca.CA_OP_CONN_UP:
                with cond:
                    state["up"] += 1
                    cond.notify_all()

        def on_event(d):
            if d["status"] == ca.ECA_NORMAL:
                with cond:
                    state["events"] += 1
                    cond.notify_all()

        def wait(key, n, timeout, what):
            deadline = time.monotonic() + timeout
            with cond:
                while state[key] < n:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise SystemExit("timeout waiting for %s: %d of %d"
                                         % (what, state[key], n))
                    cond.wait(left)

        rounds = []
        for rnd in range(2):
            state["up"] = state["events"] = 0
            before = rss_kb()
            t0 = time.monotonic()
            chids = []
            for n in names:
                st, chid = ca.create_channel(n, on_conn)
                assert st == ca.ECA_NORMAL, st
                chids.append(chid)
            ca.flush_io()
            wait("up", len(names), 120, "connections")
            t1 = time.monotonic()
            evids = []
            for chid in chids:
                st, evid = ca.create_subscription(chid, on_event)
                assert st == ca.ECA_NORMAL, st
                evids.append(evid)
            ca.flush_io()
            wait("events", len(names), 120, "first updates")
            t2 = time.monotonic()
            peak = rss_kb()
            for evid in evids:
                ca.clear_subscription(evid)
            for chid in chids:
                ca.clear_channel(chid)
            ca.flush_io()
            del chids, evids
            ca.pend_event(0.5)  # let libca finish the clears
            after = rss_kb()
            rounds.append({"rss_before_kb": before, "rss_peak_kb": peak, "rss_after_kb": after,
                           "connect_s": round(t1 - t0, 2), "monitor_s": round(t2 - t1, 2),
                           "channels": len(names), "events": state["events"]})
        return {"rounds": rounds}
    finally:
        for ioc in iocs:
            ioc.stop()
        for db in dbs:
            os.unlink(db)


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))), flush=True)
    os._exit(0)
