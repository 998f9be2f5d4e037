"""N threads x S seconds of mixed get/put/subscribe/clear on shared and
private channels, with callbacks that call back into the API.

Run as a script against an IOC serving tests/test.db (client environment in
os.environ): ``python thread_worker.py SECONDS THREADS``. Prints ``RESULT
{json}``. A deadlock makes faulthandler dump every thread's stack and exit 1.
"""
import faulthandler
import itertools
import json
import os
import random
import sys
import threading
import time
import traceback

SHARED = ["catest", "cawave", "ca:scalar:LONG", "ca:scalar:DOUBLE", "ca:wave:DOUBLE"]
PRIVATE = ["catest", "cawave", "ca:scalar:LONG", "ca:scalar:STRING", "ca:wave:SHORT"]
WRITABLE = {"catest", "cawave", "ca:scalar:LONG", "ca:scalar:DOUBLE"}


def main(seconds: float, nthreads: int) -> dict:
    faulthandler.dump_traceback_later(seconds + 60, exit=True)
    from CaChannel import ca
    assert ca.create_context(True) == ca.ECA_NORMAL
    ctx = ca.current_context()

    lock = threading.Lock()
    cond = threading.Condition(lock)
    errors = []          # unexpected things (exceptions, statuses)
    counts = {"ops": 0, "get_cb": 0, "nested_get_cb": 0, "events": 0, "sync_get": 0,
              "subs": 0, "unsubs": 0, "chan_churn": 0, "conn_cb": 0,
              "raced_clear": 0}
    put_issued = {}      # token -> channel name
    put_done = {}        # token -> number of callbacks
    tokens = itertools.count()

    def bump(key, n=1):
        with lock:
            counts[key] += n

    def err(what):
        with lock:
            errors.append(what)

    def guarded(fn):
        def cb(arg):
            try:
                fn(arg)
            except BaseException:
                err("exception in callback: " + traceback.format_exc())
        return cb

    @guarded
    def nested_get_cb(d):
        if d["status"] != ca.ECA_NORMAL:
            err("nested get status %s" % d["status"])
        bump("nested_get_cb")

    @guarded
    def get_cb(d):
        if d["status"] != ca.ECA_NORMAL:
            err("get status %s" % d["status"])
        # call back into the API from a libca thread
        chid = d["chid"]
        try:
            ca.name(chid), ca.field_type(chid), ca.element_count(chid), ca.state(chid)
        except ValueError as exc:
            # expected: another thread cleared this (churn) channel while its
            # callback ran; the handle reports it instead of touching freed memory
            if "cleared" not in str(exc):
                raise
            bump("raced_clear")
            return
        st = ca.pend_event(0.001)
        if st != ca.ECA_EVDISALLOW:
            err("pend_event inside a callback returned %s" % st)
        if random.random() < 0.3:
            st, _ = ca.get(chid, callback=nested_get_cb)
            if st == ca.ECA_BADCHID:
                # the same race as above, a moment later: cleared meanwhile
                bump("raced_clear")
                return
            if st != ca.ECA_NORMAL:
                err("nested get returned %s" % st)
            ca.flush_io()
        bump("get_cb")

    @guarded
    def event_cb(d):
        if d["status"] != ca.ECA_NORMAL:
            err("event status %s" % d["status"])
        ca.host_name(d["chid"])
        bump("events")

    def make_put_cb(token):
        @guarded
        def put_cb(d):
            if d["status"] != ca.ECA_NORMAL:
                err("put %d status %s" % (token, d["status"]))
            ca.read_access(d["chid"])
            with cond:
                put_done[token] = put_done.get(token, 0) + 1
                cond.notify_all()
        return put_cb

    @guarded
    def conn_cb(d):
        ca.name(d["chid"])
        bump("conn_cb")

    def connect(names, callback=None):
        chids = {}
        for n in names:
            st, chid = ca.create_channel(n, callback)
            if st != ca.ECA_NORMAL:
                raise RuntimeError("create_channel(%s) -> %s" % (n, st))
            chids[n] = chid
        return chids

    shared = connect(SHARED)
    assert ca.pend_io(10) == ca.ECA_NORMAL, "shared channels did not connect"

    def value_for(name, rng):
        if name == "cawave":
            return [rng.uniform(-1e3, 1e3) for _ in range(rng.randint(1, 20))]
        if name == "ca:scalar:LONG":
            return rng.randint(-2 ** 31, 2 ** 31 - 1)
        return rng.uniform(-15, 15)

    deadline = time.monotonic() + seconds

    def worker(index):
        try:
            st = ca.attach_context(ctx)
            if st != ca.ECA_NORMAL:
                err("attach_context -> %s" % st)
                return
            rng = random.Random(1000 + index)
            private = connect(PRIVATE)
            if ca.pend_io(10) != ca.ECA_NORMAL:
                err("private channels did not connect")
                return
            subs = []
            st, gid = ca.sg_create()
            if st != ca.ECA_NORMAL:
                err("sg_create -> %s" % st)
                return
            pools = [shared, private]
            while time.monotonic() < deadline:
                pool = rng.choice(pools)
                name = rng.choice(list(pool))
                chid = pool[name]
                op = rng.randrange(9)
                if op == 0:
                    st, _ = ca.get(chid, callback=get_cb)
                    if st != ca.ECA_NORMAL:
                        err("get -> %s" % st)
                elif op == 1 and name in WRITABLE:
                    token = next(tokens)
                    with lock:
                        put_issued[token] = name
                    st = ca.put(chid, value_for(name, rng), callback=make_put_cb(token))
                    if st != ca.ECA_NORMAL:
                        err("put -> %s" % st)
                        with lock:
                            del put_issued[token]
                elif op == 2 and name in WRITABLE:
                    st = ca.put(chid, value_for(name, rng))
                    if st != ca.ECA_NORMAL:
                        err("put (no callback) -> %s" % st)
                elif op == 3:
                    # synchronous read through the thread's own sync group:
                    # pend_io is context-wide, and concurrent pend_io calls of
                    # several threads wake one by one (each waits up to its
                    # timeout), so threads use sg_block
                    st, value = ca.sg_get(gid, chid)
                    if st != ca.ECA_NORMAL:
                        err("sg_get -> %s" % st)
                    else:
                        st = ca.sg_block(gid, 10)
                        if st != ca.ECA_NORMAL:
                            err("sg_block -> %s" % st)
                        else:
                            value.get()
                            bump("sync_get")
                elif op == 4 and len(subs) < 20:
                    st, evid = ca.create_subscription(chid, event_cb)
                    if st != ca.ECA_NORMAL:
                        err("subscribe -> %s" % st)
                    else:
                        subs.append(evid)
                        bump("subs")
                elif op == 5 and subs:
                    evid = subs.pop(rng.randrange(len(subs)))
                    st = ca.clear_subscription(evid)
                    if st != ca.ECA_NORMAL:
                        err("clear_subscription -> %s" % st)
                    bump("unsubs")
                elif op == 6:
                    # private channel churn: create, maybe use, clear
                    st, tmp = ca.create_channel(rng.choice(PRIVATE), conn_cb)
                    if st != ca.ECA_NORMAL:
                        err("create_channel -> %s" % st)
                        continue
                    ca.flush_io()
                    if rng.random() < 0.5:
                        time.sleep(rng.random() * 0.005)
                        ca.get(tmp, callback=get_cb)  # may be dropped by the clear
                    st = ca.clear_channel(tmp)
                    if st != ca.ECA_NORMAL:
                        err("clear_channel -> %s" % st)
                    # stale handle after clear: a status, never a crash
                    st, _ = ca.get(tmp)
                    if st != ca.ECA_BADCHID:
                        err("get on cleared chid -> %s" % st)
                    bump("chan_churn")
                elif op == 7:
                    ca.flush_io()
                else:
                    ca.poll()
                bump("ops")
            for evid in subs:
                ca.clear_subscription(evid)
            ca.sg_delete(gid)
            ca.flush_io()
            # put callbacks of the private channels must land before they are cleared
            if not wait_puts(15):
                err("put callbacks still missing at the end of thread %d" % index)
            for chid in private.values():
                ca.clear_channel(chid)
            ca.flush_io()
            ca.detach_context()
        except BaseException:
            err("exception in thread %d: %s" % (index, traceback.format_exc()))

    def wait_puts(timeout):
        end = time.monotonic() + timeout
        with cond:
            while any(put_done.get(t, 0) < 1 for t in put_issued):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                cond.wait(left)
        return True

    threads = [threading.Thread(target=worker, args=(i,), name="w%d" % i) for i in range(nthreads)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 45)
        if t.is_alive():
            err("thread %s did not finish (deadlock?)" % t.name)
    wait_puts(15)
    elapsed = time.monotonic() - t0
    with lock:
        missing = [t for t in put_issued if put_done.get(t, 0) == 0]
        duplicated = [t for t, n in put_done.items() if n > 1]
        unknown = [t for t in put_done if t not in put_issued]
        result = dict(counts, puts=len(put_issued), put_callbacks=sum(put_done.values()),
                      missing=len(missing), duplicated=len(duplicated), unknown=len(unknown),
                      errors=errors[:20], n_errors=len(errors), seconds=round(elapsed, 1))
    for chid in shared.values():
        ca.clear_channel(chid)
    ca.flush_io()
    faulthandler.cancel_dump_traceback_later()
    return result


if __name__ == "__main__":
    res = main(float(sys.argv[1]), int(sys.argv[2]))
    print("RESULT " + json.dumps(res), flush=True)
    sys.stdout.flush()
    os._exit(0)
