#!/usr/bin/env python
"""ophyd-async benchmark: its CA signals on aioca, on CaChannel.aio.use(), and on ophyd-epicsrs.

    python bench/ophyd_async_bench.py [--contenders aioca,cachannel,cachannel_caffi,epicsrs,soft,libca]
                                      [--epicsrs-python PATH] [--window 10] [--runs 1]
                                      [--json out.json]

One soft IOC (CaChannel.testing.IOC, loopback, free port, private caRepeater)
serves 1,000 ``calc`` records ``oab:t:N`` that count at 10 Hz and 100 ``ao``
records ``oab:w:N``. Every contender runs the same client in a fresh
subprocess: an ophyd-async ``Device`` with a ``DeviceVector`` of 1,000
``epics_signal_r(float, "oab:t:N")`` and one of 100
``epics_signal_rw(float, "oab:w:N")``, and measures

  connect   ``await device.connect()`` from cold (channel search included), s
  read      ``read()`` of all 1,000 signals at once (gathered), s (median of 5)
  set       ``set(value)`` with completion (caput wait=True) of all 100 at once, s (median of 5)
  t_read, t_set  the transport alone: the caget (FORMAT_TIME) / caput (wait=True) calls
            ophyd-async makes for read and set, gathered, without ophyd-async (aioca and
            CaChannel only; libca's figures are the same work from C)
  monitor   all 1,000 signals subscribed (``subscribe_reading``), 10 Hz each: process CPU %
            (all threads, ``time.process_time``) over the window, and readings/s received

Contenders: ``soft`` (ophyd-async's in-memory ``soft_signal_rw``: no
transport at all, so its times are ophyd-async's own cost, the floor under
every CA transport; no monitor figure), ``aioca`` (ophyd-async's own
transport on the PyPI aioca),
``cachannel`` (the same ophyd-async code after ``CaChannel.aio.use()``, C
backend), ``cachannel_caffi`` (cffi backend), ``epicsrs`` (ophyd-epicsrs'
``epicsrs_signal_r/rw`` factories, Rust CA client; run with the interpreter
of its own venv, ``--epicsrs-python`` or ``$OPHYD_EPICSRS_PYTHON``; skipped if
not given), ``libca`` (the same channels, gets, puts with callback and
subscriptions from C, ``bench/rawca.c oab``: what libca and the IOC take, with
no Python). With ``soft`` and ``libca`` both run, the row ``floor`` is their
sum for the timed figures: what a CA transport under ophyd-async cannot go
below, since it pays ophyd-async's cost and libca's. It is a lower bound, not
a reachable one: a soft signal's set completes without waiting, so the task
wake-ups ophyd-async makes when a reply arrives later are not in it. Ratios
are contender / aioca (lower is better for every figure).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
N_READ = 1000
N_WRITE = 100
CONTENDERS = [
    ("aioca", "ophyd-async on aioca 2.x (PyPI)"),
    ("cachannel", "ophyd-async on CaChannel.aio.use(), C backend"),
    ("cachannel_caffi", "ophyd-async on CaChannel.aio.use(), cffi backend"),
    ("epicsrs", "ophyd-epicsrs (Rust CA), own venv"),
    ("soft", "ophyd-async soft signals (no transport: ophyd-async's own cost, the floor)"),
    ("libca", "the same CA traffic from C (bench/rawca.c oab): libca's own cost, no Python"),
]
FIGURES = [
    ("connect_s", "connect() of 1,000 r + 100 rw signals, cold", "s"),
    ("read_s", "read() of 1,000 signals (gathered)", "s"),
    ("set_s", "set() with wait of 100 signals (gathered)", "s"),
    ("t_read_s", "  the transport alone: caget() of the 1,000 (gathered)", "s"),
    ("t_set_s", "  the transport alone: caput(wait=True) of the 100 (gathered)", "s"),
    ("monitor_cpu_pct", "1,000 subscribed signals at 10 Hz: process CPU", "%"),
    ("monitor_rate", "  readings received", "/s"),
]


# ----------------------------------------------------------------------- client
async def client(contender: str, window: float) -> dict:
    import asyncio
    if contender.startswith("cachannel"):
        import CaChannel.aio
        CaChannel.aio.use()
    from ophyd_async.core import Device, DeviceVector
    if contender == "epicsrs":
        from ophyd_epicsrs.ophyd_async import epicsrs_signal_r as signal_r
        from ophyd_epicsrs.ophyd_async import epicsrs_signal_rw as signal_rw
    elif contender == "soft":
        # ophyd-async's own in-memory signals: no transport at all, so what
        # is left is ophyd-async's cost, the floor of every CA transport
        from ophyd_async.core import soft_signal_rw

        def signal_r(datatype, pv):
            return soft_signal_rw(datatype, initial_value=1.0)
        signal_rw = signal_r
    else:
        from ophyd_async.epics.core import epics_signal_r as signal_r
        from ophyd_async.epics.core import epics_signal_rw as signal_rw

    class Bench(Device):
        def __init__(self, name: str = "") -> None:
            self.r = DeviceVector({i: signal_r(float, "oab:t:%d" % i) for i in range(N_READ)})
            self.w = DeviceVector({i: signal_rw(float, "oab:w:%d" % i) for i in range(N_WRITE)})
            super().__init__(name=name)

    dev = Bench(name="bench")
    out = {}
    t0 = time.perf_counter()
    await dev.connect(timeout=120)
    out["connect_s"] = time.perf_counter() - t0
    _part(out, "connect_s")
    reads = list(dev.r.values())
    writes = list(dev.w.values())

    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        got = await asyncio.gather(*(s.read() for s in reads))
        samples.append(time.perf_counter() - t0)
        assert len(got) == N_READ
    out["read_s"] = statistics.median(samples)
    _part(out, "read_s")

    samples = []
    for k in range(5):
        t0 = time.perf_counter()
        await asyncio.gather(*(s.set(float(i + k)) for i, s in enumerate(writes)))
        samples.append(time.perf_counter() - t0)
    out["set_s"] = statistics.median(samples)
    assert await writes[7].get_value() == 7.0 + 4
    _part(out, "set_s")

    if contender in ("aioca", "cachannel", "cachannel_caffi"):
        # the transport alone: the same caget/caput calls ophyd-async makes
        # (one task each, timeout=None), without ophyd-async around them
        from aioca import FORMAT_TIME, caget, caput
        r_names = ["oab:t:%d" % i for i in range(N_READ)]
        w_names = ["oab:w:%d" % i for i in range(N_WRITE)]
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            await asyncio.gather(*(caget(n, format=FORMAT_TIME, timeout=None) for n in r_names))
            samples.append(time.perf_counter() - t0)
        out["t_read_s"] = statistics.median(samples)
        samples = []
        for k in range(5):
            t0 = time.perf_counter()
            await asyncio.gather(*(caput(n, float(i + k), wait=True, timeout=None)
                                   for i, n in enumerate(w_names)))
            samples.append(time.perf_counter() - t0)
        out["t_set_s"] = statistics.median(samples)
        _part(out, "t_set_s")

    if contender == "soft":  # no server to send updates: no monitor figure
        return out
    count = [0]

    def on_reading(_reading) -> None:
        count[0] += 1
    for s in reads:
        s.subscribe_reading(on_reading)
    await asyncio.sleep(2.0)  # first values, steady state
    c0, p0, t0 = count[0], time.process_time(), time.perf_counter()
    await asyncio.sleep(window)
    c1, p1, t1 = count[0], time.process_time(), time.perf_counter()
    out["monitor_cpu_pct"] = 100.0 * (p1 - p0) / (t1 - t0)
    out["monitor_rate"] = (c1 - c0) / (t1 - t0)
    for s in reads:
        s.clear_sub(on_reading)
    return out


def _part(out: dict, key: str) -> None:
    """Report one figure at once: a client killed later still gave it."""
    print("PART " + json.dumps({key: out[key]}), flush=True)


def client_main(contender: str, window: float) -> None:
    import asyncio
    result = asyncio.run(client(contender, window))
    print("RESULT " + json.dumps(result), flush=True)
    os._exit(0)  # do not wait for libraries' exit handlers (epics-rs runtime, CA contexts)


# ------------------------------------------------------------------------ driver
def start_repeater(port: int) -> subprocess.Popen:
    exe = shutil.which("caRepeater", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
    if exe is None:
        raise SystemExit("caRepeater (CaChannel's console script) not found")
    proc = subprocess.Popen([exe], env=dict(os.environ, EPICS_CA_REPEATER_PORT=str(port)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return proc  # the repeater holds the port
        finally:
            s.close()
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("caRepeater did not bind port %d" % port)
        time.sleep(0.05)


def write_db(path: str) -> None:
    with open(path, "w") as f:
        for i in range(N_READ):
            f.write('record(calc, "oab:t:%d") { field(SCAN, ".1 second") field(CALC, "A+1") '
                    'field(INPA, "oab:t:%d") }\n' % (i, i))
        for i in range(N_WRITE):
            f.write('record(ao, "oab:w:%d") { field(VAL, "0") field(PINI, "YES") }\n' % i)


def run_client(python: str, contender: str, env: dict, window: float, timeout: float) -> dict:
    if contender == "cachannel_caffi":
        env = dict(env, CACHANNEL_BACKEND="caffi")
    try:
        proc = subprocess.run([python, os.path.abspath(__file__), "--client", contender,
                               "--window", str(window)], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:  # run() has killed the client
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        parts = {}
        for line in out.splitlines():
            if line.startswith("PART "):
                parts.update(json.loads(line[len("PART "):]))
        parts["error"] = "killed after %.0f s; figures before that kept" % timeout
        return parts
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stdout[-800:] + proc.stderr[-1500:]).strip()}
    return json.loads(lines[-1][len("RESULT "):])


def run_libca(tmp: str, env: dict, window: float) -> dict:
    """The workload from C: rawca's ``oab`` mode (compiled once into ``tmp``)."""
    exe = os.path.join(tmp, "rawca")
    if not os.path.exists(exe):
        sys.path.insert(0, HERE)
        from run import compile_rawca  # bench/run.py: the one place that builds rawca
        compile_rawca(tmp)
    print("running libca ...", flush=True)
    proc = subprocess.run([exe, "oab", str(N_READ), str(N_WRITE), "5", str(window)], env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return {"error": (proc.stdout[-800:] + proc.stderr[-800:]).strip()}
    out = json.loads(proc.stdout.splitlines()[-1])["extra"]
    out.update(t_read_s=out["read_s"], t_set_s=out["set_s"])  # no layer above libca
    return out


def _merge(contender: str, runs: list, good: list) -> dict:
    """The median of each figure over the good runs, or the first failure."""
    if not good:
        print("  %s failed: %s" % (contender, runs[0]["error"][-600:]), flush=True)
        return runs[0]  # with the figures it gave before failing
    merged = {k: statistics.median(r[k] for r in good) for k in good[0]}
    merged["runs"] = len(good)
    return merged


def fmt(value, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        return "%.3f s" % value if value >= 1 else "%.1f ms" % (value * 1e3)
    if unit == "%":
        return "%.1f %%" % value
    return "{:,.0f}/s".format(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--contenders", default=",".join(c for c, _ in CONTENDERS))
    ap.add_argument("--epicsrs-python", default=os.environ.get("OPHYD_EPICSRS_PYTHON"))
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=1, help="client processes per contender")
    ap.add_argument("--client-timeout", type=float, default=600.0,
                    help="seconds before a client process is killed")
    ap.add_argument("--json")
    ap.add_argument("--client", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.client:
        client_main(a.client, a.window)
        return

    from CaChannel.testing import IOC, free_port
    wanted = a.contenders.split(",")
    tmp = tempfile.mkdtemp(prefix="cachannel-ophyd-async-bench-")
    db = os.path.join(tmp, "oab.db")
    write_db(db)
    rport = free_port()
    os.environ["EPICS_CA_REPEATER_PORT"] = str(rport)
    repeater = start_repeater(rport)
    ioc = IOC([db], ready_pv="oab:w:0", env={"EPICS_CA_REPEATER_PORT": str(rport)})
    results = {}
    try:
        ioc.start(timeout=120)
        env = dict(os.environ)
        env.update(ioc.client_env())
        env["EPICS_CA_REPEATER_PORT"] = str(rport)
        print("load average before: %.2f %.2f %.2f" % os.getloadavg(), flush=True)
        for contender in wanted:
            python = sys.executable
            if contender == "libca":
                runs = [run_libca(tmp, env, a.window) for _ in range(a.runs)]
                good = [r for r in runs if "error" not in r]
                results[contender] = _merge(contender, runs, good)
                continue
            if contender == "epicsrs":
                if not a.epicsrs_python or not os.path.exists(a.epicsrs_python):
                    results[contender] = {"error": "skipped: no --epicsrs-python"}
                    continue
                python = a.epicsrs_python
            runs = []
            for _ in range(a.runs):
                print("running %s ..." % contender, flush=True)
                runs.append(run_client(python, contender, env, a.window, a.client_timeout))
            good = [r for r in runs if "error" not in r]
            results[contender] = _merge(contender, runs, good)
        print("load average after: %.2f %.2f %.2f" % os.getloadavg(), flush=True)
    finally:
        ioc.stop()
        repeater.kill()
        repeater.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, wanted)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": results, "loadavg": os.getloadavg()}, f, indent=1)


def report(results: dict, wanted: list) -> None:
    names = dict(CONTENDERS)
    cols = [c for c in wanted if c in results]
    soft, libca = results.get("soft", {}), results.get("libca", {})
    if "error" not in soft and "error" not in libca and soft and libca:
        # no transport can beat ophyd-async's own cost plus libca's
        results["floor"] = {k: soft[k] + libca[k] for k, _, unit in FIGURES
                            if unit == "s" and k in soft and k in libca}
        cols.append("floor")
    print()
    print("| figure | " + " | ".join(cols) + " | "
          + " | ".join("%s / aioca" % c for c in cols if c != "aioca") + " |")
    print("|---" * (1 + len(cols) + len([c for c in cols if c != "aioca"])) + "|")
    base = results.get("aioca", {})
    for key, label, unit in FIGURES:
        cells = [fmt(results[c].get(key), unit) for c in cols]
        ratios = []
        for c in cols:
            if c == "aioca":
                continue
            v, b = results[c].get(key), base.get(key)
            ratios.append("%.2f" % (v / b) if v is not None and b else "n/a")
        print("| %s | %s | %s |" % (label, " | ".join(cells), " | ".join(ratios)))
    for c in cols:
        if "error" in results[c]:
            print("%s (%s): %s" % (c, names.get(c, c), results[c]["error"][-300:]))


if __name__ == "__main__":
    main()
