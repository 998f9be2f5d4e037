#!/usr/bin/env python
"""Benchmark of CaChannel's list caget and PV objects against raw libca, pyepics, cothread and repics.

    python bench/pv_bench.py [--quick] [--json out.json] [--contenders raw,cext,...]

Uses the harness of bench/run.py (the same IOC with the 5,000 ``ao`` records
``bench:c:0..4999``, private CA repeater, loopback only, rawca.c compiled
with gcc) and measures, every sample in a fresh process (cold client):

  caget_many  caget of 1,000 names in one call: raw libca (create all, pend_io,
              ca_array_get all, pend_io), CaChannel ``util.caget(list)`` (C and
              cffi backends), pyepics ``caget_many``, cothread ``caget(list)``,
              repics ``ca.caget(list)``.
              Targets: C backend <= 1.3 x raw and >= 3 x faster than pyepics.
  pv_create   5,000 PV objects created, then the first value of each read:
              ``[PV(n) for n in names]`` then ``pv.get()`` for each, CaChannel
              ``PV`` against pyepics ``epics.PV`` and ``repics.pv.PV``.

Timing starts after the import and the creation of the CA context (each
library's own way) and stops when every value is in and checked.
"""
import argparse
import json
import os
import platform
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

N_CAGET = 1000
N_PV = 5000
PREFIX = 'bench:c:'

WORKLOADS = [
    ('caget_many', 'caget of %d names in one call (cold process)' % N_CAGET),
    ('pv_create', 'create %d PV objects + first value of each (cold process)' % N_PV),
]
CONTENDERS = [
    ('raw', 'raw libca (C)'),
    ('cext', 'CaChannel C backend'),
    ('caffi', 'CaChannel cffi backend'),
    ('pyepics', 'pyepics'),
    ('cothread', 'cothread.catools'),
    ('repics', 'repics (Rust, no libca)'),
]
LABEL = dict(CONTENDERS)
APPLIES = {
    'caget_many': {'raw', 'cext', 'caffi', 'pyepics', 'cothread', 'repics'},
    'pv_create': {'cext', 'caffi', 'pyepics', 'repics'},
}
# (contender, workload, reference, op, factor): ratio = contender / reference (times)
TARGETS = [
    ('cext', 'caget_many', 'raw', '<=', 1.3),
    ('cext', 'caget_many', 'pyepics', '<=', 1 / 3.0),
]


# ---------------------------------------------------------------------------------- children
def _names(n):
    return ['%s%d' % (PREFIX, i) for i in range(n)]


def _check(values, n):
    bad = [v for v in values if not isinstance(v, (int, float))]
    if len(values) != n or bad:
        raise RuntimeError('%d values, %d not numbers (e.g. %r)' % (len(values), len(bad), bad[:3]))


def child(contender, workload, n):
    """Run one sample in this (fresh) process; print the JSON result line."""
    names = _names(n)
    if contender in ('cext', 'caffi'):
        import CaChannel
        from CaChannel import util
        if contender == 'cext' and CaChannel.ca.backend != 'cext':
            return {'skip': 'C extension not in use'}
        import CaChannel.core
        CaChannel.core.context.attach()  # the CA context
        if workload == 'caget_many':
            t0 = time.perf_counter()
            values = util.caget(names, timeout=60)
            t = time.perf_counter() - t0
        else:
            from CaChannel import PV
            t0 = time.perf_counter()
            pvs = [PV(name) for name in names]
            values = [pv.get(timeout=60) for pv in pvs]
            t = time.perf_counter() - t0
    elif contender == 'pyepics':
        import epics
        epics.ca.initialize_libca()
        if workload == 'caget_many':
            t0 = time.perf_counter()
            values = epics.caget_many(names, connection_timeout=60, timeout=60)
            t = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            pvs = [epics.PV(name) for name in names]
            values = [pv.get(timeout=60) for pv in pvs]
            t = time.perf_counter() - t0
    elif contender == 'cothread':
        from cothread import catools
        # cothread makes its CA context on first use: do that outside the timing, with a
        # name nobody serves (so no circuit to the IOC exists yet, as for the others)
        catools.caget('bench:no:such:pv', timeout=0.05, throw=False)
        t0 = time.perf_counter()
        values = catools.caget(names, timeout=60)
        t = time.perf_counter() - t0
        values = [float(v) for v in values]
    elif contender == 'repics':
        import repics
        repics.context()  # its CA context, outside the timing
        if workload == 'caget_many':
            t0 = time.perf_counter()
            values = repics.ca.caget(names, form='plain', timeout=60)
            t = time.perf_counter() - t0
        else:
            from repics.pv import PV
            t0 = time.perf_counter()
            pvs = [PV(name) for name in names]
            values = [pv.get(timeout=60) for pv in pvs]
            t = time.perf_counter() - t0
        values = [float(v) for v in values]
    else:
        raise SystemExit('unknown contender %r' % contender)
    _check(values, len(names))
    return {'unit': 's', 'samples': [t]}


# ---------------------------------------------------------------------------------- parent
def measure(contender, workload, repeats, rawca, env, run):
    if contender not in APPLIES[workload]:
        return {'status': 'skip', 'note': 'n/a'}
    n = N_CAGET if workload == 'caget_many' else N_PV
    if contender == 'raw':
        cmd = [rawca, 'caget_many', PREFIX, str(n)]
    else:
        cmd = [sys.executable, os.path.abspath(__file__), '--child', contender, workload, str(n)]
    cenv = dict(env)
    if contender == 'caffi':
        cenv['CACHANNEL_BACKEND'] = 'caffi'
    # every sample a fresh process: a cold client
    return run.cell_of_processes(lambda _reps: run.run_json(cmd, cenv, 120), repeats)


def fmt(v):
    return '%.1f ms' % (v * 1e3) if v < 1 else '%.3f s' % v


def report(results, contenders):
    lines = ['', 'CaChannel PV / list benchmark - medians of fresh processes; ratio = median / reference median '
             '(lower is better)']
    for key, label in WORKLOADS:
        lines.append('')
        lines.append(label)
        lines.append('  %-24s %-11s %-20s %6s %9s' % ('contender', 'median', 'min..max', '/raw', '/pyepics'))
        raw = results.get('raw', {}).get(key, {})
        pye = results.get('pyepics', {}).get(key, {})
        for c in contenders:
            cell = results.get(c, {}).get(key)
            if cell is None or (cell['status'] == 'skip' and cell.get('note') == 'n/a'):
                continue
            if cell['status'] != 'ok':
                lines.append('  %-24s %s: %s' % (LABEL[c], cell['status'], cell.get('note')))
                continue
            rr = '%.2f' % (cell['median'] / raw['median']) if raw.get('status') == 'ok' else '-'
            rp = '%.2f' % (cell['median'] / pye['median']) if pye.get('status') == 'ok' else '-'
            lines.append('  %-24s %-11s %-20s %6s %9s' % (
                LABEL[c], fmt(cell['median']), '%s..%s' % (fmt(cell['min']).split()[0], fmt(cell['max'])), rr, rp))
    lines.append('')
    lines.append('Targets')
    verdicts = []
    for c, wl, ref, op, factor in TARGETS:
        cell = results.get(c, {}).get(wl, {})
        rcell = results.get(ref, {}).get(wl, {})
        if cell.get('status') == 'ok' and rcell.get('status') == 'ok':
            ratio = cell['median'] / rcell['median']
            met = ratio <= factor
            text = '%s %s %s: %.2f x %s (%s %.2f): %s' % (LABEL[c], wl, ref, ratio, ref, op, factor,
                                                         'MET' if met else 'MISSED')
        else:
            met, text = None, '%s %s vs %s: n/a' % (LABEL[c], wl, ref)
        verdicts.append({'contender': c, 'workload': wl, 'reference': ref, 'factor': factor, 'met': met})
        lines.append('  ' + text)
    return '\n'.join(lines), verdicts


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        contender, workload, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        try:
            out = child(contender, workload, n)
        except Exception as exc:  # reported in the table
            out = {'error': '%s: %s' % (type(exc).__name__, exc)}
        print(json.dumps(out))
        sys.stdout.flush()
        os._exit(0)  # skip interpreter teardown (not measured, and pyepics' can be slow)

    import run
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='2 samples per cell instead of 5')
    ap.add_argument('--json', default=os.path.join(HERE, 'results', 'pv_latest.json'))
    ap.add_argument('--contenders', default=','.join(c for c, _ in CONTENDERS))
    opts = ap.parse_args()
    contenders = [c for c in opts.contenders.split(',') if c]
    repeats = 2 if opts.quick else 5
    load_start = os.getloadavg()
    t_start = time.time()

    def on_signal(signum, frame):
        raise KeyboardInterrupt('signal %d' % signum)
    signal.signal(signal.SIGTERM, on_signal)

    results = {c: {} for c in contenders}
    with run.bench_ioc('pv_bench', PREFIX + '0') as (rawca, client_env):
        for key, _ in WORKLOADS:
            for c in contenders:
                t0 = time.time()
                cell = measure(c, key, repeats, rawca, client_env, run)
                results[c][key] = cell
                if cell['status'] != 'skip' or cell.get('note') != 'n/a':
                    desc = fmt(cell['median']) if cell['status'] == 'ok' else '%s: %s' % (
                        cell['status'], cell.get('note'))
                    run.log('pv_bench: %-11s %-9s %s  (%.1f s)' % (key, c, desc, time.time() - t0))

    text, verdicts = report(results, contenders)
    print(text)
    load_end = os.getloadavg()
    print('\ntotal wall time %.0f s; load average (1 min) %.1f at start, %.1f at end, %d CPUs'
          % (time.time() - t_start, load_start[0], load_end[0], os.cpu_count()))
    if max(load_start[0], load_end[0]) > 1.5:
        print('WARNING: other load on this host - compare min..max spreads before trusting small differences')
    versions = {}
    for mod in ('epics', 'cothread', 'CaChannel'):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            versions[mod] = None
    os.makedirs(os.path.dirname(os.path.abspath(opts.json)), exist_ok=True)
    with open(opts.json, 'w') as f:
        json.dump({'results': results, 'targets': verdicts, 'versions': versions, 'repeats': repeats,
                   'load': [load_start[0], load_end[0]], 'platform': platform.platform()}, f, indent=1)


if __name__ == '__main__':
    main()
