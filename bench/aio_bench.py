#!/usr/bin/env python
"""asyncio benchmark: CaChannel.aio (both backends) against aioca and raw libca, in one run.

    python bench/aio_bench.py [--quick] [--json out.json]
                              [--contenders raw,aio,aio_caffi,aio_uvloop,aioca,repics]
                              [--workloads scalar_get,put_cb,get_many,monitor,big_get]

Starts the same soft IOC as bench/run.py (bench/bench.db + 5,000 ``ao`` records
``bench:c:N``) on loopback with free ports, compiles bench/rawca.c for the raw
libca reference and the flooding writer, and runs every workload for every
contender in its own subprocess. CaChannel.aio, aioca and repics.ca.asyncio
(Rust, no libca) run the very same client code (only the imported module differs).

Workloads:
  scalar_get  ``await caget(pv)`` of a DOUBLE ``ao`` in a loop (gets/s); raw: ca_get + ca_pend_io
  put_cb      ``await caput(pv, i, wait=True)`` in a loop (puts/s); raw: put with callback + wait
  get_many    ``await caget([1,000 names])`` in a fresh process: connect included (s)
  monitor     events/s delivered to a coroutine callback (``camonitor(..., all_updates=True)``)
              of an ``ao`` with MDEL=-1 that bench/rawca.c's writer floods; raw: a C callback
  big_get     ``await caget()`` of the 4,000,000-element DOUBLE waveform (s per get); raw:
              ca_array_get into a fresh buffer + ca_pend_io

Targets: CaChannel.aio >= 2x aioca on scalar_get, put_cb, get_many and monitor; >= 0.7x raw
on scalar_get; big_get <= 1.1x raw.
"""
import argparse
import asyncio
import importlib
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

N_MANY = 1000
WORKLOADS = [
    ('scalar_get', 'scalar caget in a loop', 'rate', 'bench:ao'),
    ('put_cb', 'caput(wait=True) in a loop', 'rate', 'bench:ao'),
    ('get_many', 'caget of 1,000 PVs in one call, cold (connect included)', 'time', 'bench:c:'),
    ('monitor', 'monitor events to a coroutine callback (writer flooding)', 'rate', 'bench:mon'),
    ('big_get', 'caget of the 4,000,000-element DOUBLE waveform', 'time', 'bench:big'),
]
CONTENDERS = [
    ('raw', 'raw libca (C)'),
    ('aio', 'CaChannel.aio, C backend'),
    ('aio_caffi', 'CaChannel.aio, cffi backend'),
    ('aio_uvloop', 'CaChannel.aio, C backend, uvloop'),
    ('aioca', 'aioca (PyPI)'),
    ('repics', 'repics.ca.asyncio (Rust)'),
]
# (contender, workload, reference, op, factor)
TARGETS = [
    ('aio', 'scalar_get', 'aioca', '>=', 2.0),
    ('aio', 'put_cb', 'aioca', '>=', 2.0),
    ('aio', 'get_many', 'aioca', '<=', 0.5),
    ('aio', 'monitor', 'aioca', '>=', 2.0),
    ('aio', 'scalar_get', 'raw', '>=', 0.7),
    ('aio', 'big_get', 'raw', '<=', 1.1),
]


# ------------------------------------------------------------------------------------------------
# client side (runs in a subprocess: python aio_bench.py --client CONTENDER WORKLOAD ARGS)
# ------------------------------------------------------------------------------------------------
async def client_main(mod, workload, a):
    pv, repeats, window = a['pv'], a['repeats'], a['window']
    if workload == 'get_many':
        names = ['%s%d' % (pv, i) for i in range(N_MANY)]
        t0 = time.perf_counter()
        values = await mod.caget(names, timeout=60)
        dt = time.perf_counter() - t0
        assert len(values) == N_MANY
        return {'unit': 's', 'samples': [dt]}
    if workload == 'big_get':
        await mod.caget(pv, timeout=30)
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            value = await mod.caget(pv, timeout=30)
            samples.append(time.perf_counter() - t0)
            assert len(value) == 4000000 and value[12345] == 12345.0, value[:4]
        return {'unit': 's', 'samples': samples}
    if workload in ('scalar_get', 'put_cb'):
        if workload == 'scalar_get':
            async def op(i):
                await mod.caget(pv)
        else:
            async def op(i):
                await mod.caput(pv, i & 0xff, wait=True)
        await op(0)
        samples = []
        i = 0
        for _ in range(repeats):
            n = 0
            t0 = time.perf_counter()
            end = t0 + window
            while True:
                await op(i)
                i += 1
                n += 1
                t = time.perf_counter()
                if t >= end:
                    break
            samples.append(n / (t - t0))
        return {'unit': 'ops/s', 'samples': samples}
    if workload == 'monitor':
        count = [0]

        async def cb(value):
            count[0] += 1
        sub = mod.camonitor(pv, cb, all_updates=True)
        if asyncio.iscoroutine(sub):  # a coroutine in some libraries' versions
            sub = await sub
        await asyncio.sleep(0.5)
        samples = []
        for _ in range(repeats):
            c0, t0 = count[0], time.perf_counter()
            await asyncio.sleep(window)
            samples.append((count[0] - c0) / (time.perf_counter() - t0))
        sub.close()
        return {'unit': 'events/s', 'samples': samples, 'extra': {'dropped': sub.dropped_callbacks}}
    raise ValueError(workload)


def client(contender, workload, args):
    if contender == 'aioca':
        mod = importlib.import_module('aioca')
    elif contender == 'repics':
        try:
            mod = importlib.import_module('repics.ca.asyncio')
        except ImportError:
            print(json.dumps({'skip': 'repics not installed'}))
            return
    else:
        mod = importlib.import_module('CaChannel.aio')
        from CaChannel import ca
        want = 'caffi' if contender == 'aio_caffi' else 'cext'
        if ca.backend != want:
            print(json.dumps({'skip': 'backend is %s' % ca.backend}))
            return
    if contender == 'aio_uvloop':
        try:
            import uvloop
        except ImportError:
            print(json.dumps({'skip': 'uvloop not installed'}))
            return
        loop = uvloop.new_event_loop()
        try:
            res = loop.run_until_complete(client_main(mod, workload, args))
        finally:
            loop.close()
    else:
        res = asyncio.run(client_main(mod, workload, args))
    print(json.dumps(res))


# ------------------------------------------------------------------------------------------------
# harness
# ------------------------------------------------------------------------------------------------
def measure(contender, workload, pv, quick, rawca, client_env):
    import run as harness
    env = dict(client_env)
    if contender == 'aio_caffi':
        env['CACHANNEL_BACKEND'] = 'caffi'
    repeats = 3 if quick else 5
    window = 0.3 if quick else 0.6
    if workload == 'big_get':
        repeats = 3 if quick else 15
    timeout = 90

    def one(reps):
        if contender == 'raw':
            if workload == 'get_many':
                return None, 'n/a'
            cmd = [rawca, workload, pv, str(reps), str(window)]
        else:
            cmd = [sys.executable, os.path.abspath(__file__), '--client', contender, workload,
                   json.dumps({'pv': pv, 'repeats': reps, 'window': window})]
        return harness.run_json(cmd, env, timeout)

    if workload == 'get_many':
        return harness.cell_of_processes(one, 1 if quick else repeats)
    writes = workload == 'monitor'
    return harness.cell_of_run(one, repeats,
                               (lambda: harness.Writer(rawca, pv, client_env)) if writes else None)


def evaluate(results):
    verdicts = []
    for c, w, ref, op, factor in TARGETS:
        a, b = results.get(c, {}).get(w), results.get(ref, {}).get(w)
        if not a or not b or a.get('status') != 'ok' or b.get('status') != 'ok':
            verdicts.append((c, w, ref, op, factor, None, 'n/a'))
            continue
        ratio = a['median'] / b['median']
        ok = ratio >= factor if op == '>=' else ratio <= factor
        verdicts.append((c, w, ref, op, factor, ratio, 'MET' if ok else 'MISSED'))
    return verdicts


def report(results, contenders, workloads, verdicts):
    import run as harness
    lines = []
    for key, label, kind, _ in WORKLOADS:
        if key not in workloads:
            continue
        better = 'higher' if kind == 'rate' else 'lower'
        lines.append('%s  [%s is better]' % (label, better))
        lines.append('  %-28s %14s %22s %7s %7s' % ('contender', 'median', 'min..max', '/raw', '/aioca'))
        for c in contenders:
            cell = results[c].get(key)
            if not cell:
                continue
            if cell['status'] != 'ok':
                lines.append('  %-28s %s: %s' % (dict(CONTENDERS)[c], cell['status'], cell['note']))
                continue
            u = cell['unit']
            rng = '%s..%s' % (harness.fmt_value(cell['min'], u), harness.fmt_value(cell['max'], u))
            ratios = []
            for ref in ('raw', 'aioca'):
                r = results.get(ref, {}).get(key)
                ratios.append('%7.2f' % (cell['median'] / r['median'])
                              if r and r.get('status') == 'ok' else '%7s' % '-')
            lines.append('  %-28s %14s %22s %s %s' % (dict(CONTENDERS)[c],
                                                    harness.fmt_value(cell['median'], u), rng,
                                                    *ratios))
            if cell.get('writer'):
                lines[-1] += '  (writer: %.0f puts/s)' % cell['writer'].get('rate', 0)
        lines.append('')
    lines.append('targets (CaChannel.aio, C backend):')
    for c, w, ref, op, factor, ratio, verdict in verdicts:
        lines.append('  %-10s %s %s x %-5s: %s%s' % (w, op, factor, ref, verdict,
                                                    '' if ratio is None else ' (%.2f)' % ratio))
    return '\n'.join(lines)


def main():
    import run as harness
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--json', default=os.path.join(HERE, 'results', 'aio_latest.json'))
    ap.add_argument('--contenders', default=','.join(c for c, _ in CONTENDERS))
    ap.add_argument('--workloads', default=','.join(w[0] for w in WORKLOADS))
    ap.add_argument('--client', nargs=3, metavar=('CONTENDER', 'WORKLOAD', 'ARGS'),
                    help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.client:
        client(opts.client[0], opts.client[1], json.loads(opts.client[2]))
        return
    contenders = [c for c in opts.contenders.split(',') if c]
    workloads = [w for w in opts.workloads.split(',') if w]

    def on_signal(signum, frame):
        raise KeyboardInterrupt('signal %d' % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    load_start = os.getloadavg()
    results = {c: {} for c in contenders}
    with harness.bench_ioc('aio-bench', 'bench:ao',
                           fill=('bench:big', 'bench:img', 'bench:mimg')) as (rawca, client_env):
        for key, label, kind, pv in WORKLOADS:
            if key not in workloads:
                continue
            for c in contenders:
                t0 = time.time()
                cell = measure(c, key, pv, opts.quick, rawca, client_env)
                results[c][key] = cell
                desc = (harness.fmt_value(cell['median'], cell['unit']) if cell['status'] == 'ok'
                        else '%s: %s' % (cell['status'], cell.get('note')))
                harness.log('aio bench: %-10s %-9s %s  (%.1f s)' % (key, c, desc, time.time() - t0))
    load_end = os.getloadavg()
    verdicts = evaluate(results)
    print('load average: start %.2f, end %.2f (2 cores)' % (load_start[0], load_end[0]))
    print(report(results, contenders, workloads, verdicts))
    os.makedirs(os.path.dirname(opts.json), exist_ok=True)
    versions = {}
    for name in ('aioca', 'epicscorelibs', 'numpy'):
        try:
            versions[name] = importlib.import_module(name).__version__
        except Exception:
            pass
    with open(opts.json, 'w') as f:
        json.dump({'results': results, 'load': [load_start, load_end], 'versions': versions,
                   'targets': [list(v) for v in verdicts]}, f, indent=1)


if __name__ == '__main__':
    main()
