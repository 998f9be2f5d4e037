#!/usr/bin/env python
"""Array/image monitor benchmark: ArrayMonitor vs the plain callback path vs pyepics.

One run, one IOC (``CaChannel/demo/adsim.db`` with a USHORT ``ArrayData`` of
4 Mpixel plus a ``bench:tick`` ao), every contender in its own subprocess:

``image``  (1 Mpixel and 4 Mpixel UInt16, a writer process putting frames flat
           out with put-callback pacing): frames/s received by the client and
           client CPU seconds (user+sys of the whole process, libca's threads
           included) per GB received.
Each cell also reports the client's RSS growth over the measured frames
(after a 1 s warm-up): it must stay flat (no per-frame growth).

``slow``   (1 Mpixel image flat out, consumer spends 20 ms per frame, plus a
           scalar ``bench:tick`` put at 100 Hz by the writer): the scalar's
           delivery latency p50/p99 (client receive time minus the record's
           time stamp), against the same scalar with no image monitor.
           frames/s here is frames delivered to the 20 ms consumer (at most 50).

Contenders: ``array_monitor`` (``CaChannel.monitor.ArrayMonitor``, dtype uint16
= DBR_ENUM on the wire, the consumer on its own thread), ``callback``
(``ca.create_subscription(DBR_ENUM, use_numpy=True)``, work done in the
callback, i.e. on libca's thread), ``pyepics`` (``epics.ca.create_subscription``
with its default native request type: the USHORT waveform is served as
DBF_LONG, so pyepics receives 4 bytes a pixel; CPU is per GB actually received).
The raw libca C reference with a copy into preallocated buffers comes with the
C fast path. Run on both backends::

    python bench/array_bench.py [--seconds 5] [--sizes 1,4]
    CACHANNEL_BACKEND=caffi python bench/array_bench.py
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time

PREFIX = "bench:image1:"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------------ writer
def writer(args) -> None:
    import numpy as np
    from CaChannel import ca
    ca.create_context(True)
    names = ["ArrayData", "ArraySize0_RBV", "ArraySize1_RBV", "UniqueId_RBV"]
    chids = {}
    for n in names:
        chids[n] = ca.create_channel(PREFIX + n)[1]
    tick = ca.create_channel("bench:tick")[1]
    assert ca.pend_io(10) == ca.ECA_NORMAL
    side = args.side
    ca.put(chids["ArraySize0_RBV"], side)
    ca.put(chids["ArraySize1_RBV"], side)
    frame = (np.arange(side * side) & 0xffff).astype(np.uint16)
    done = threading.Event()
    stop = threading.Event()

    def ticker():
        ca.attach_context(ctx)
        period = 0.01
        nxt = time.monotonic()
        k = 0
        while not stop.is_set():
            k += 1
            ca.put(tick, float(k))
            ca.flush_io()
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))

    ctx = ca.current_context()
    if args.tick:
        threading.Thread(target=ticker, daemon=True).start()
    uid = 0
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while not args.no_image:
        uid += 1
        done.clear()
        ca.put(chids["UniqueId_RBV"], uid)
        ca.put(chids["ArrayData"], frame, ca.DBR_ENUM, side * side, callback=lambda a: done.set())
        ca.flush_io()
        if not done.wait(10):
            break
    if args.no_image:
        threading.Event().wait()


# ------------------------------------------------------------------ clients
def client(args) -> None:
    seconds = args.seconds
    pv = PREFIX + "ArrayData"
    result = {"frames": 0, "bytes": 0}
    lat = []
    lock = threading.Lock()

    def on_tick_time(stamp_posix: float) -> None:
        lat.append(time.time() - stamp_posix)

    work = (lambda: time.sleep(0.02)) if args.workload == "slow" else (lambda: None)
    if args.contender == "pyepics":
        import epics.ca as eca
        eca.initialize_libca()
        chid = eca.create_channel(pv, connect=True, auto_cb=False)
        ok = eca.connect_channel(chid, timeout=10)
        assert ok

        def on_image(value=None, **kw):
            with lock:
                result["frames"] += 1
                result["bytes"] += value.nbytes
            work()
        tick_chid = None
        if args.workload == "slow":
            tick_chid = eca.create_channel("bench:tick", connect=True, auto_cb=False)
            eca.connect_channel(tick_chid, timeout=10)

            def on_tick(timestamp=None, **kw):
                on_tick_time(timestamp)
            eca.create_subscription(tick_chid, use_time=True, callback=on_tick)
        if not args.no_image:
            eca.create_subscription(chid, use_time=True, callback=on_image)
        eca.poll()
        time.sleep(1.0)
        with lock:
            result["frames"] = result["bytes"] = 0
        lat.clear()
        c0, t0, r0 = cpu(), time.monotonic(), rss_mb()
        time.sleep(seconds)
    else:
        from CaChannel import ca
        from CaChannel.monitor import ArrayMonitor
        ca.create_context(True)
        if args.workload == "slow":
            st, tick = ca.create_channel("bench:tick")
            assert ca.pend_io(10) == ca.ECA_NORMAL

            def on_tick(a):
                on_tick_time(a["value"]["stamp"]["timestamp"])
            ca.create_subscription(tick, on_tick, ca.DBR_TIME_DOUBLE)
        if args.no_image:
            ca.flush_io()
        elif args.contender == "callback":
            st, chid = ca.create_channel(pv)
            assert ca.pend_io(10) == ca.ECA_NORMAL

            def on_image(a):
                v = a["value"]
                with lock:
                    result["frames"] += 1
                    result["bytes"] += v.nbytes
                work()
            ca.create_subscription(chid, on_image, ca.DBR_ENUM, 0, None, True)
            ca.flush_io()
        else:
            mon = ArrayMonitor(pv, buffers=4, dtype="uint16", policy="latest", timeout=10)
            stop = threading.Event()

            def consume():
                while not stop.is_set():
                    frame = mon.get(0.2)
                    if frame is None:
                        continue
                    with lock:
                        result["frames"] += 1
                        result["bytes"] += frame.array.nbytes
                    work()
            threading.Thread(target=consume, daemon=True).start()
        time.sleep(1.0)
        with lock:
            result["frames"] = result["bytes"] = 0
        lat.clear()
        c0, t0, r0 = cpu(), time.monotonic(), rss_mb()
        time.sleep(seconds)
    with lock:
        elapsed = time.monotonic() - t0
        used = cpu() - c0
        frames, nbytes = result["frames"], result["bytes"]
    out = {"frames": frames, "rss_growth_MB": rss_mb() - r0, "fps": frames / elapsed, "MBps": nbytes / 1e6 / elapsed,
           "cpu_per_GB": used / (nbytes / 1e9) if nbytes else None, "cpu": used}
    if lat:
        lat.sort()
        out["p50_ms"] = 1e3 * lat[len(lat) // 2]
        out["p99_ms"] = 1e3 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        out["ticks"] = len(lat)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os._exit(0)   # do not wait for libca teardown under load


# ------------------------------------------------------------------ orchestration
def run_sub(argv, env, timeout):
    proc = subprocess.run([sys.executable, __file__] + argv, env=env, capture_output=True,
                          text=True, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-300:]}
    return json.loads(lines[-1])


def start_writer(env, side, tick, no_image=False):
    argv = ["--writer", "--side", str(side)] + (["--tick"] if tick else []) + \
        (["--no-image"] if no_image else [])
    proc = subprocess.Popen([sys.executable, __file__] + argv, env=env, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--sizes", default="1,4", help="image sizes in Mpixel (1 and/or 4)")
    ap.add_argument("--contenders", default="array_monitor,callback,pyepics")
    ap.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--contender", help=argparse.SUPPRESS)
    ap.add_argument("--workload", default="image", help=argparse.SUPPRESS)
    ap.add_argument("--side", type=int, default=1024, help=argparse.SUPPRESS)
    ap.add_argument("--tick", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-image", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.writer:
        writer(args)
        return 0
    if args.client:
        client(args)
        return 0

    import tempfile
    from CaChannel import ca
    from CaChannel.demo.adsim import DATABASE
    from CaChannel.testing import IOC
    contenders = [c for c in args.contenders.split(",") if c]
    with tempfile.NamedTemporaryFile("w", suffix=".db", delete=False) as f:
        f.write('record(ao, "bench:tick") { field(PREC, "0") }\n')
        tick_db = f.name
    ioc = IOC([DATABASE, tick_db], macros="PLUGIN=%s,FTVL=USHORT,NELM=4194304" % PREFIX)
    ioc.start()
    env = dict(os.environ, **ioc.client_env())
    print("backend %s, libca %s, %d s per cell; IOC pid %d" % (ca.backend, ca.version(),
                                                              args.seconds, ioc.pid))
    rows = []
    try:
        for mp in [int(s) for s in args.sizes.split(",") if s]:
            side = 1024 if mp == 1 else 2048
            w = start_writer(env, side, tick=False)
            try:
                for c in contenders:
                    r = run_sub(["--client", "--contender", c, "--workload", "image",
                                 "--seconds", str(args.seconds)], env, args.seconds + 60)
                    rows.append(("image %d Mpx" % mp, c, r))
                    print("  image %d Mpx %-14s %s" % (mp, c, r), file=sys.stderr)
            finally:
                stop(w)
        # slow consumer + 100 Hz scalar
        w = start_writer(env, 1024, tick=True, no_image=True)
        try:
            r = run_sub(["--client", "--contender", "callback", "--workload", "slow",
                         "--no-image", "--seconds", str(args.seconds)], env, args.seconds + 60)
            rows.append(("scalar, no image", "callback", r))
        finally:
            stop(w)
        w = start_writer(env, 1024, tick=True)
        try:
            for c in contenders:
                r = run_sub(["--client", "--contender", c, "--workload", "slow",
                             "--seconds", str(args.seconds)], env, args.seconds + 60)
                rows.append(("scalar + slow image", c, r))
                print("  slow %-14s %s" % (c, r), file=sys.stderr)
        finally:
            stop(w)
    finally:
        ioc.stop()
        os.unlink(tick_db)

    def f(v, fmt):
        return "-" if v is None else fmt % v
    print("| workload | contender | frames/s | MB/s | CPU s/GB | scalar p50 ms | scalar p99 ms "
          "| RSS growth MB (frames) |")
    print("|---|---|---|---|---|---|---|---|")
    ref = {}
    for wl, c, r in rows:
        if "error" in r:
            print("| %s | %s | error: %s | | | | | |" % (wl, c, r["error"].splitlines()[-1][:60]))
            continue
        print("| %s | %s | %s | %s | %s | %s | %s | %.1f (%d) |" % (
            wl, c, f(r.get("fps"), "%.1f"), f(r.get("MBps"), "%.0f"),
            f(r.get("cpu_per_GB") if wl.startswith("image") else None, "%.2f"),
            f(r.get("p50_ms"), "%.2f"), f(r.get("p99_ms"), "%.2f"), r.get("rss_growth_MB", 0.0),
            r.get("frames", 0)))
        if wl.startswith("image") and c == "callback":
            ref[wl] = r
    for wl, c, r in rows:
        if wl in ref and c != "callback" and "error" not in r and r.get("fps"):
            base = ref[wl]
            if base.get("fps") and base.get("cpu_per_GB") and r.get("cpu_per_GB"):
                print("%s: %s / callback = %.2fx frames/s, %.2fx CPU per GB"
                      % (wl, c, r["fps"] / base["fps"], r["cpu_per_GB"] / base["cpu_per_GB"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
