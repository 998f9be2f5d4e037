#!/usr/bin/env python
"""Array/image monitor benchmark: ArrayMonitor vs raw libca, the plain callback path and pyepics.

One run, one IOC (``CaChannel/demo/adsim.db`` with a USHORT ``ArrayData`` of
4 Mpixel plus a ``bench:tick`` ao), a private CA repeater (``rawca repeater``),
every contender in its own subprocess, all against the same writer:

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

Contenders: ``raw`` (``bench/rawca.c monitor_ring``: libca in C, DBR_TIME_ENUM
subscription, the event callback copies each frame into a ring of 4
preallocated buffers with its status/severity/stamp, a consumer thread takes
the newest - the work ArrayMonitor does, without Python), ``raw_circuit``
(the same with the image channel at CA priority 1, i.e. on a TCP circuit of
its own as ArrayMonitor's default ``priority=1`` puts it: the physical
reference for the scalar latency behind a flat-out image), ``array_monitor``
(``CaChannel.monitor.ArrayMonitor``, dtype uint16 = DBR_ENUM on the wire, the
consumer on its own thread), ``callback`` (``ca.create_subscription(DBR_ENUM,
use_numpy=True)``, work done in the callback, i.e. on libca's thread),
``pyepics`` (``epics.ca.create_subscription`` with its default native request
type: the USHORT waveform is served as DBF_LONG, so pyepics receives 4 bytes a
pixel; CPU is per GB actually received). Every image cell is printed as a
ratio to ``raw`` (frames/s and CPU per GB) and ArrayMonitor gets a verdict
against its targets (>= 0.95x raw frames/s, <= 1.15x raw CPU per GB).

``--writer python`` (default) is a CaChannel process that also sets the
areaDetector size/UniqueId records; ``--writer raw`` is ``rawca put_image``
(C, put with callback, next put when the callback came). The writer's own
frame rate is printed: when every contender receives about that many frames/s
the cell is writer-limited and CPU per GB is the discriminating figure.
Run on both backends::

    python bench/array_bench.py [--seconds 5] [--sizes 1,4] [--writer raw]
    CACHANNEL_BACKEND=caffi python bench/array_bench.py
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "bench:image1:"
TICK = "bench:tick"
CONTENDERS = ("raw", "raw_circuit", "array_monitor", "callback", "pyepics")
BUFFERS = 4            # ring slots of ArrayMonitor and of the raw reference
WARMUP = 1.0           # s before the counters are reset
SLOW_MS = 20.0         # consumer work per frame in the slow workload
# ArrayMonitor's targets against raw libca (issue 12): frames/s ratio >=, CPU per GB ratio <=
TARGET_FPS, TARGET_CPU = 0.95, 1.15


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
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    if args.tick:
        threading.Thread(target=ticker, daemon=True).start()
    uid = 0
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    t0 = time.monotonic()
    completed = []  # time.monotonic() (CLOCK_MONOTONIC, as rawca's) of every completed frame put
    while not args.no_image and not stop.is_set():
        uid += 1
        done.clear()
        ca.put(chids["UniqueId_RBV"], uid)
        ca.put(chids["ArrayData"], frame, ca.DBR_ENUM, side * side, callback=lambda a: done.set())
        ca.flush_io()
        if not done.wait(10):
            break
        completed.append(time.monotonic())
    while not stop.is_set():
        stop.wait(0.5)
    elapsed = time.monotonic() - t0
    sys.stdout.write(json.dumps({"puts": len(completed), "seconds": elapsed,
                                 "rate": len(completed) / elapsed, "done": completed}) + "\n")
    sys.stdout.flush()
    os._exit(0)


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
            tick_chid = eca.create_channel(TICK, connect=True, auto_cb=False)
            eca.connect_channel(tick_chid, timeout=10)

            def on_tick(timestamp=None, **kw):
                on_tick_time(timestamp)
            eca.create_subscription(tick_chid, use_time=True, callback=on_tick)
        if not args.no_image:
            eca.create_subscription(chid, use_time=True, callback=on_image)
        eca.poll()
        time.sleep(WARMUP)
        with lock:
            result["frames"] = result["bytes"] = 0
        lat.clear()
        c0, t0, r0 = cpu(), time.monotonic(), rss_mb()
        time.sleep(seconds)
    else:
        from CaChannel import ca
        from CaChannel.monitor import ArrayMonitor
        ca.create_context(True)
        mon = None
        if args.workload == "slow":
            st, tick = ca.create_channel(TICK)
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
            mon = ArrayMonitor(pv, buffers=BUFFERS, dtype="uint16", policy="latest", timeout=10)
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
        time.sleep(WARMUP)
        with lock:
            result["frames"] = result["bytes"] = 0
        lat.clear()
        s0 = mon.stats if mon is not None else None
        c0, t0, r0 = cpu(), time.monotonic(), rss_mb()
        time.sleep(seconds)
        if mon is not None:
            s1 = mon.stats
            result["received"] = s1.received - s0.received
            result["dropped"] = s1.dropped - s0.dropped
    with lock:
        elapsed = time.monotonic() - t0
        used = cpu() - c0
        frames, nbytes = result["frames"], result["bytes"]
    out = {"frames": frames, "rss_growth_MB": rss_mb() - r0, "fps": frames / elapsed, "MBps": nbytes / 1e6 / elapsed,
           "cpu_per_GB": used / (nbytes / 1e9) if nbytes else None, "cpu": used,
           "t0": t0, "t1": t0 + elapsed}
    for k in ("received", "dropped"):
        if k in result:
            out[k] = result[k]
    if lat:
        lat.sort()
        out["p50_ms"] = 1e3 * lat[len(lat) // 2]
        out["p99_ms"] = 1e3 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        out["ticks"] = len(lat)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os._exit(0)   # do not wait for libca teardown under load


# ------------------------------------------------------------------ orchestration
def run_client(harness, rawca, contender, workload, seconds, env, no_image=False):
    """One measured cell in its own process: the result dict, or {"error": text}."""
    if contender in ("raw", "raw_circuit"):
        cmd = [rawca, "monitor_ring", "-" if no_image else PREFIX + "ArrayData", str(seconds),
               str(WARMUP), str(BUFFERS)]
        if workload == "slow" or contender == "raw_circuit":
            cmd += [str(SLOW_MS) if workload == "slow" else "0",
                    TICK if workload == "slow" else "-"]
        if contender == "raw_circuit":
            cmd += ["1"]   # CA priority 1: the image's own circuit, as ArrayMonitor's default
    else:
        cmd = [sys.executable, __file__, "--client", "--contender", contender, "--workload",
               workload, "--seconds", str(seconds)] + (["--no-image"] if no_image else [])
    # output to files, not pipes (harness.run_json): nothing a client leaves behind can block us
    res, err = harness.run_json(cmd, env, seconds + 60)
    return {"error": err} if err else res


class Writer:
    """The frame writer (Python CaChannel process or ``rawca put_image``); stop() -> its rate."""

    def __init__(self, kind, rawca, env, side, tick, no_image=False):
        if kind == "raw" and not tick:
            cmd = [rawca, "put_image", PREFIX + "ArrayData", str(side * side)]
        else:  # the 100 Hz scalar of the slow workload always comes from the Python writer
            cmd = [sys.executable, __file__, "--writer-proc", "--side", str(side)] + \
                (["--tick"] if tick else []) + (["--no-image"] if no_image else [])
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.stop()
            raise RuntimeError("writer did not start: %r" % line)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None
        lines = [l for l in (out or "").splitlines() if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None


def _brief(r):
    return {k: v for k, v in r.items() if k not in ("t0", "t1")}


def writer_share(rows, wr):
    """Add to each cell the writer's frames/s during the cell's measured window
    (``writer_fps``) and the fraction of those frames the client received (``got``)."""
    done = (wr or {}).get("done")
    for _wl, _c, r in rows:
        if not done or "error" in r or "t0" not in r or r["t1"] <= r["t0"]:
            continue
        n = sum(1 for t in done if r["t0"] <= t < r["t1"])
        r["writer_fps"] = n / (r["t1"] - r["t0"])
        if n:
            r["got"] = r.get("received", r.get("frames", 0)) / n


def ratio_lines(rows, ref_name):
    """Per image cell: contender / reference, frames/s and CPU per GB."""
    ref = {wl: r for wl, c, r in rows if c == ref_name and wl.startswith("image") and "error" not in r}
    out = []
    for wl, c, r in rows:
        base = ref.get(wl)
        if base is None or c == ref_name or "error" in r or not r.get("fps"):
            continue
        fps = r["fps"] / base["fps"] if base.get("fps") else None
        cpu_r = (r["cpu_per_GB"] / base["cpu_per_GB"]
                 if base.get("cpu_per_GB") and r.get("cpu_per_GB") else None)
        out.append((wl, c, fps, cpu_r))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--sizes", default="1,4", help="image sizes in Mpixel (1 and/or 4)")
    ap.add_argument("--contenders", default=",".join(CONTENDERS),
                    help="comma list of: " + ",".join(CONTENDERS))
    ap.add_argument("--writer", choices=("python", "raw"), default="python",
                    help="image writer: CaChannel process (default) or rawca put_image (C)")
    ap.add_argument("--writer-proc", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--contender", help=argparse.SUPPRESS)
    ap.add_argument("--workload", default="image", help=argparse.SUPPRESS)
    ap.add_argument("--side", type=int, default=1024, help=argparse.SUPPRESS)
    ap.add_argument("--tick", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-image", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.writer_proc:
        writer(args)
        return 0
    if args.client:
        client(args)
        return 0

    import shutil
    import tempfile
    sys.path.insert(0, HERE)
    import run as harness   # bench/run.py: rawca.c build, run_json, free ports
    from CaChannel import ca
    from CaChannel.demo.adsim import DATABASE
    from CaChannel.testing import IOC
    contenders = [c for c in args.contenders.split(",") if c]
    for c in contenders:
        if c not in CONTENDERS:
            ap.error("unknown contender %r" % c)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)

    builddir = tempfile.mkdtemp(prefix="cachannel-array-bench-")
    tick_db = os.path.join(builddir, "tick.db")
    with open(tick_db, "w") as f:
        f.write('record(ao, "%s") { field(PREC, "0") }\n' % TICK)
    ioc = repeater = None
    rows = []
    writer_rates = {}
    load_start = os.getloadavg()
    try:
        rawca = harness.compile_rawca(builddir)
        # a private CA repeater port for the IOC and every client, served by our own repeater:
        # no client spawns a stray caRepeater (and none registers with another user's)
        repeater_env = {"EPICS_CA_REPEATER_PORT": str(harness.free_port())}
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_CA")}
        env.update(repeater_env)
        repeater = harness.start_repeater(rawca, env)
        ioc = IOC([DATABASE, tick_db], macros="PLUGIN=%s,FTVL=USHORT,NELM=4194304" % PREFIX,
                  env=repeater_env)
        ioc.start()
        env.update(ioc.client_env())
        print("backend %s, libca %s, %g s per cell, %s writer; IOC pid %d" % (
            ca.backend, ca.version(), args.seconds, args.writer, ioc.pid))
        for mp in [int(s) for s in args.sizes.split(",") if s]:
            side = 1024 if mp == 1 else 2048
            wl = "image %d Mpx" % mp
            w = Writer(args.writer, rawca, env, side, tick=False)
            first = len(rows)
            try:
                for c in contenders:
                    r = run_client(harness, rawca, c, "image", args.seconds, env)
                    rows.append((wl, c, r))
                    print("  %s %-14s %s" % (wl, c, _brief(r)), file=sys.stderr)
            finally:
                writer_rates[wl] = w.stop()
                writer_share(rows[first:], writer_rates[wl])
        # slow consumer + 100 Hz scalar
        w = Writer("python", rawca, env, 1024, tick=True, no_image=True)
        try:
            for c in [c for c in ("raw", "callback") if c in contenders] or ["callback"]:
                r = run_client(harness, rawca, c, "slow", args.seconds, env, no_image=True)
                rows.append(("scalar, no image", c, r))
        finally:
            w.stop()
        w = Writer("python", rawca, env, 1024, tick=True)
        first = len(rows)
        try:
            for c in contenders:
                r = run_client(harness, rawca, c, "slow", args.seconds, env)
                rows.append(("scalar + slow image", c, r))
                print("  slow %-14s %s" % (c, _brief(r)), file=sys.stderr)
        finally:
            writer_rates["scalar + slow image"] = w.stop()
            writer_share(rows[first:], writer_rates["scalar + slow image"])
    finally:
        if ioc:
            ioc.stop()
        harness.stop_repeater(repeater)
        shutil.rmtree(builddir, ignore_errors=True)
    load_end = os.getloadavg()

    def f(v, fmt):
        return "-" if v is None else fmt % v
    print("load average: start %.2f, end %.2f (%d cores)" % (load_start[0], load_end[0],
                                                              os.cpu_count() or 0))
    print("| workload | contender | frames/s | writer frames/s | received % | MB/s | CPU s/GB "
          "| scalar p50 ms | scalar p99 ms | RSS growth MB (frames) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for wl, c, r in rows:
        if "error" in r:
            print("| %s | %s | error: %s | | | | | | | |" % (
                wl, c, (r["error"].splitlines() or [""])[-1][:60]))
            continue
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f (%d) |" % (
            wl, c, f(r.get("fps"), "%.1f"), f(r.get("writer_fps"), "%.1f"),
            f(100 * r["got"] if "got" in r else None, "%.0f"), f(r.get("MBps"), "%.0f"),
            f(r.get("cpu_per_GB") if wl.startswith("image") else None, "%.2f"),
            f(r.get("p50_ms"), "%.2f"), f(r.get("p99_ms"), "%.2f"), r.get("rss_growth_MB", 0.0),
            r.get("frames", 0)))
    print()
    for wl in dict.fromkeys(wl for wl, _c, _r in rows if wl.startswith("image")):
        got = [(c, r["got"]) for w2, c, r in rows if w2 == wl and "got" in r]
        limited = [c for c, g in got if g >= 0.97]
        if limited:
            print("%s: %s received >= 97%% of the frames the writer put during their window: "
                  "writer-limited there, compare CPU per GB" % (wl, ", ".join(limited)))
    for ref_name in ("raw", "callback"):
        for wl, c, fps, cpu_r in ratio_lines(rows, ref_name):
            if ref_name == "callback" and c.startswith("raw"):
                continue
            print("%s: %s / %s = %s frames/s, %s CPU per GB" % (
                wl, c, ref_name, f(fps, "%.2fx"), f(cpu_r, "%.2fx")))
    cells = {(wl, c): r for wl, c, r in rows}
    # the verdict compares with the raw client doing the same work: the ring
    # copy, on a circuit of its own as ArrayMonitor's default priority=1 is
    ref = "raw_circuit" if any(c == "raw_circuit" for _w, c, _r in rows) else "raw"
    for ref_name in (("raw_circuit",) if ref == "raw_circuit" else ()):
        for wl, c, fps, cpu_r in ratio_lines(rows, ref_name):
            if c in ("array_monitor", "callback", "pyepics"):
                print("%s: %s / %s = %s frames/s, %s CPU per GB" % (
                    wl, c, ref_name, f(fps, "%.2fx"), f(cpu_r, "%.2fx")))
    for wl, c, fps, cpu_r in ratio_lines(rows, ref):
        if c != "array_monitor":
            continue
        ok_fps = fps is not None and fps >= TARGET_FPS
        ok_cpu = cpu_r is not None and cpu_r <= TARGET_CPU
        got = [cells[(wl, k)].get("got") for k in ("array_monitor", ref)]
        note = ""
        if None not in got:
            note = "; received %.0f%% of the writer's frames, %s %.0f%%" % (
                100 * got[0], ref, 100 * got[1])
            if min(got) >= 0.97:
                note += " (both writer-limited: CPU per GB is the discriminating figure)"
        print("verdict %s: array_monitor %s (frames/s %s %s, target >= %.2fx: %s; CPU/GB %s %s, "
              "target <= %.2fx: %s%s)" % (
                  wl, "MET" if ok_fps and ok_cpu else "MISSED", f(fps, "%.2fx"), ref, TARGET_FPS,
                  "ok" if ok_fps else "missed", f(cpu_r, "%.2fx"), ref, TARGET_CPU,
                  "ok" if ok_cpu else "missed", note))
    # the scalar behind a slow image consumer, against the same scalar alone
    alone = [r for wl, c, r in rows if wl == "scalar, no image" and "p50_ms" in r]
    behind = [(c, r) for wl, c, r in rows if wl == "scalar + slow image" and "p50_ms" in r]
    if alone and behind:
        base = min(alone, key=lambda r: r["p50_ms"])
        print("scalar latency p50/p99 ms: no image %.2f/%.2f; behind a 20 ms/frame image "
              "consumer: %s" % (base["p50_ms"], base["p99_ms"], ", ".join(
                  "%s %.2f/%.2f" % (c, r["p50_ms"], r["p99_ms"]) for c, r in behind)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
