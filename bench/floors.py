#!/usr/bin/env python
"""libca floors: what a round trip and a cold bulk get cost inside libca itself, in C.

    python bench/floors.py [--quick] [--json out.json]

Uses run.py's world (bench IOC with 5,000 ``ao`` records ``bench:c:N``,
private repeater, loopback, rawca.c) and measures, no Python in any client:

  wire round trip   ``rawca wire_get``: READ_NOTIFY / reply on one blocking TCP
                    socket to the IOC, the CA handshake done by hand, no libca:
                    what the server and the loopback cost.
  libca round trip  ``rawca scalar_get``: ``ca_get`` + ``ca_pend_io`` in a
                    loop. libca hands each request to its TCP send thread and
                    each reply from its TCP receive thread back to the waiting
                    thread: the difference to the wire round trip is the cost
                    of those two thread hand-offs (and libca's bookkeeping).
  cold connect      ``rawca connect_twice``: a fresh context connects one name
                    (cold_s), then a second name on the same server (its
                    circuit exists; only the UDP search is new: warm_name_s),
                    then one get round trip.
  cold bulk get     ``rawca caget_many`` of 1 .. 5,000 names in a fresh process
                    (create all, ca_pend_io, ca_array_get all, ca_pend_io).

Every process-level figure is the median of several fresh processes.
"""
import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402


def median_of(cmd, env, n, key=None):
    vals = []
    for _ in range(n):
        res, err = run.run_json(cmd, env, 60)
        if err:
            raise RuntimeError('%s: %s' % (' '.join(cmd[1:3]), err))
        vals.append(res[key] if key else res['samples'][0])
    return statistics.median(vals), min(vals), max(vals)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--json', default=os.path.join(HERE, 'results', 'floors_latest.json'))
    opts = ap.parse_args()
    reps = 3 if opts.quick else 7
    load0 = os.getloadavg()
    out = {}
    with run.bench_ioc('floors', 'bench:ao') as (rawca, env):
        port = int(env['EPICS_CA_ADDR_LIST'].split(':')[1])
        res, err = run.run_json([rawca, 'wire_get', str(port), 'bench:ao', str(reps), '0.5'], env, 60)
        if err:
            raise RuntimeError('wire_get: ' + err)
        out['wire_rtt_s'] = 1.0 / statistics.median(res['samples'])
        res, err = run.run_json([rawca, 'scalar_get', 'bench:ao', str(reps), '0.5'], env, 60)
        if err:
            raise RuntimeError('scalar_get: ' + err)
        out['libca_rtt_s'] = 1.0 / statistics.median(res['samples'])
        for key in ('cold_s', 'warm_name_s', 'get_s'):
            out['connect_' + key] = median_of([rawca, 'connect_twice', 'bench:c:0', 'bench:c:1'], env,
                                              reps, key)
        out['caget_many'] = {}
        for n in (1, 10, 100, 1000, 5000):
            out['caget_many'][n] = median_of([rawca, 'caget_many', 'bench:c:', str(n)], env, reps)
    load1 = os.getloadavg()
    lines = ['', 'libca floors (raw libca in C, no Python; medians of %d)' % reps,
             '  round trip, one scalar DOUBLE get:',
             '    wire (one TCP socket, no libca)      %8.1f us' % (out['wire_rtt_s'] * 1e6),
             '    libca ca_get + ca_pend_io            %8.1f us   (+%.1f us: libca\'s send/receive thread '
             'hand-offs)' % (out['libca_rtt_s'] * 1e6, (out['libca_rtt_s'] - out['wire_rtt_s']) * 1e6),
             '  connect (fresh process):',
             '    first name, cold context             %8.1f ms  (%.1f..%.1f)' % tuple(
                 v * 1e3 for v in out['connect_cold_s']),
             '    second name, circuit already open    %8.1f ms  (%.1f..%.1f)' % tuple(
                 v * 1e3 for v in out['connect_warm_name_s']),
             '    then one get round trip              %8.1f us' % (out['connect_get_s'][0] * 1e6),
             '  cold bulk get (create N, pend_io, get N, pend_io), fresh process:']
    for n, (med, lo, hi) in out['caget_many'].items():
        lines.append('    %5d names                          %8.1f ms  (%.1f..%.1f)  %.1f us/name'
                     % (n, med * 1e3, lo * 1e3, hi * 1e3, med / n * 1e6))
    lines.append('  load average (1 min) %.2f at start, %.2f at end, %d CPUs' % (load0[0], load1[0],
                                                                             os.cpu_count()))
    print('\n'.join(lines))
    out['load'] = [load0, load1]
    out['repeats'] = reps
    os.makedirs(os.path.dirname(os.path.abspath(opts.json)), exist_ok=True)
    with open(opts.json, 'w') as f:
        json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
