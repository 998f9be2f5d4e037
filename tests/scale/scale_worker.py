"""Client process of the scale tests: ``python scale_worker.py MODE '{json args}'``.

Runs with the CA environment pointing at the scale IOCs (tests/scale/conftest.py)
and ``CACHANNEL_BACKEND`` chosen by the test; prints one JSON object as its last
stdout line. Modes:

``get``      first values of every static record through ``util.caget(list)``,
             ``aio.caget(list)`` and ``PV`` objects, each checked against the
             value the record was loaded with; the same lists with the missing
             names mixed in (``throw=False``) and, for util, ``throw=True``:
             which names were reported as failed.
``monitor``  subscribe every counting record through one face (``subscribe``:
             ``CaChannel.monitor.subscribe``; ``Monitor``; ``aio``:
             ``aio.camonitor(list)``; ``pv``: ``PV`` callbacks), collect every
             update for ``seconds`` s and report per channel the values that
             were skipped (the records count up by one per scan) and the
             repeats; then print the result and leave the interpreter the normal
             way with every channel and monitor live (the test times the exit).
``rounds``   ``rounds`` times: connect the first ``count`` static names (util.caget(list)),
             clear them (``util.clear_cache()``), the same with ``PV`` objects
             (``disconnect``) and the low-level ``ca``; open file descriptors and
             RSS after each round.
"""
import json
import os
import sys
import threading
import time


def names(prefix, nioc, nper):
    return ['%s:%d:%d' % (prefix, k, i) for k in range(nioc) for i in range(nper)]


def static_value(k, i):
    """What the static record ``sc:s:K:I`` was loaded with (see conftest.write_db)."""
    return float(k * 100000 + i)


def expected_static(nioc, nper):
    return [static_value(k, i) for k in range(nioc) for i in range(nper)]


def mismatches(values, expected):
    return [(i, v, e) for i, (v, e) in enumerate(zip(values, expected)) if v != e][:5]


def fds():
    return len(os.listdir('/proc/self/fd'))


def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e6


def with_missing(names_, missing):
    """Missing names spread among the real ones; returns (list, positions of the missing)."""
    out, pos = [], []
    step = max(1, len(names_) // max(1, len(missing)))
    j = 0
    for i, n in enumerate(names_):
        if i % step == 0 and j < len(missing):
            pos.append(len(out))
            out.append(missing[j])
            j += 1
        out.append(n)
    for m in missing[j:]:
        pos.append(len(out))
        out.append(m)
    return out, pos


# ------------------------------------------------------------------------------------ get
def mode_get(a):
    import asyncio

    from CaChannel import PV, CaChannelException, aio, util
    nioc, nper, timeout = a['nioc'], a['nper'], a['timeout']
    real = names('sc:s', nioc, nper)
    expected = expected_static(nioc, nper)
    missing = ['sc:nobody:%d' % j for j in range(a['nmiss'])]
    mixed, pos = with_missing(real, missing)
    out = {'n': len(real)}

    t0 = time.monotonic()
    values = util.caget(real, timeout=timeout)
    out['util'] = {'bad': mismatches(values, expected), 'count': len(values),
                   's': time.monotonic() - t0}

    async def aio_get(lst, throw, t):
        return await aio.caget(lst, timeout=t, throw=throw)
    t0 = time.monotonic()
    values = asyncio.run(aio_get(real, True, timeout))
    out['aio'] = {'bad': mismatches([float(v) for v in values], expected), 'count': len(values),
                  's': time.monotonic() - t0}

    t0 = time.monotonic()
    pvs = [PV(n) for n in real]
    values = [pv.get(timeout=timeout) for pv in pvs]
    out['pv'] = {'bad': mismatches(values, expected), 'count': len(values),
                 's': time.monotonic() - t0}
    for pv in pvs:
        pv.disconnect()

    # the same with names nobody serves mixed in
    t0 = time.monotonic()
    values = util.caget(mixed, timeout=a['miss_timeout'], throw=False)
    none_at = [i for i, v in enumerate(values) if v is None]
    rest = [v for i, v in enumerate(values) if i not in set(pos)]
    out['util_missing'] = {'none_at_missing': none_at == pos, 'n_none': len(none_at),
                           'bad': mismatches(rest, expected), 's': time.monotonic() - t0}
    t0 = time.monotonic()
    try:
        util.caget(mixed, timeout=a['miss_timeout'])
        failed = None
    except CaChannelException as exc:
        failed = sorted(getattr(exc, 'failures', {}) or {})
    out['util_throw'] = {'failed_are_missing': failed == sorted(missing),
                         'n_failed': None if failed is None else len(failed),
                         's': time.monotonic() - t0}
    t0 = time.monotonic()
    values = asyncio.run(aio_get(mixed, False, a['miss_timeout']))
    failed_at = [i for i, v in enumerate(values) if not getattr(v, 'ok', True)]
    rest = [float(v) for i, v in enumerate(values) if i not in set(pos)]
    out['aio_missing'] = {'failed_at_missing': failed_at == pos, 'n_failed': len(failed_at),
                          'bad': mismatches(rest, expected), 's': time.monotonic() - t0}
    t0 = time.monotonic()
    pvs = [PV(n) for n in mixed]
    conn = [pv.wait_for_connection(0.01) for pv in pvs]  # starts nothing new; just looks
    end = time.monotonic() + a['miss_timeout']
    while sum(pv.connected for pv in pvs) < len(real) and time.monotonic() < end:
        time.sleep(0.05)
    conn = [pv.connected for pv in pvs]
    values = [pv.get(timeout=timeout) if c else None for pv, c in zip(pvs, conn)]
    out['pv_missing'] = {'unconnected_are_missing': [i for i, c in enumerate(conn) if not c] == pos,
                         'bad': mismatches([v for i, v in enumerate(values) if i not in set(pos)],
                                           expected),
                         's': time.monotonic() - t0}
    return out


# ------------------------------------------------------------------------------------ monitor
class Seen:
    """Per channel: the first value, the last value, skipped values and repeats."""

    def __init__(self, n):
        self.first = [None] * n
        self.last = [None] * n
        self.count = [0] * n
        self.skipped = 0
        self.repeats = 0
        self.lock = threading.Lock()

    def on(self, i, v):
        with self.lock:
            last = self.last[i]
            if last is None:
                self.first[i] = v
            elif v == last:
                self.repeats += 1
            elif v != last + 1:
                self.skipped += int(v - last - 1) if v > last else 1
            self.last[i] = v
            self.count[i] += 1

    def total(self):
        with self.lock:
            return sum(self.count)

    def have_all(self):
        with self.lock:
            return all(x is not None for x in self.last)


def mode_monitor(a):
    from CaChannel import PV, ca, monitor
    nioc, nper, seconds, face = a['nioc'], a['nper'], a['seconds'], a['face']
    lst = names('sc:c', nioc, nper)
    n = len(lst)
    seen = Seen(n)
    keep = []
    t0 = time.monotonic()
    if face == 'subscribe':
        from CaChannel import core
        core.context.attach()
        chids = []
        for name in lst:
            st, chid = ca.create_channel(name)
            assert st == ca.ECA_NORMAL, st
            chids.append(chid)
        assert ca.pend_io(60) == ca.ECA_NORMAL, 'not all connected'
        for i, chid in enumerate(chids):
            def cb(ev, i=i):
                if ev['value'] is not None:
                    seen.on(i, ev['value'])
            status, sub = monitor.subscribe(chid, cb, ca.DBR_DOUBLE, 1,
                                            ca.DBE_VALUE | ca.DBE_ALARM, policy='all', maxlen=64)
            assert status == ca.ECA_NORMAL, status
            keep.append(sub)
        ca.flush_io()
    elif face == 'Monitor':
        from CaChannel import CaChannel
        chans = [CaChannel(name) for name in lst]
        for chan in chans:
            chan.search()
        chans[0].pend_io(60)
        for i, chan in enumerate(chans):
            def cb(epics_args, user_args, i=i):
                seen.on(i, epics_args['pv_value'])
            keep.append(monitor.Monitor(chan, cb, req_type=ca.DBR_DOUBLE, count=1, policy='all',
                                        maxlen=64))
    elif face == 'pv':
        index = {name: i for i, name in enumerate(lst)}

        def cb(pvname=None, value=None, **kw):
            seen.on(index[pvname], value)
        keep = [PV(name, callback=cb) for name in lst]
    elif face == 'aio':
        import asyncio

        from CaChannel import aio

        async def main():
            subs = aio.camonitor(lst, lambda v, i: seen.on(i, float(v)), all_updates=True)
            end = time.monotonic() + a.get('first_timeout', 60)
            while not seen.have_all() and time.monotonic() < end:
                await asyncio.sleep(0.05)
            first = time.monotonic() - t0
            base = seen.total()
            await asyncio.sleep(seconds)
            return subs, first, base
        keep, first_s, base = asyncio.run(_keep_loop(main()))
    else:
        raise SystemExit('unknown face %r' % face)
    if face != 'aio':
        end = time.monotonic() + a.get('first_timeout', 60)
        while not seen.have_all() and time.monotonic() < end:
            time.sleep(0.05)
        first_s = time.monotonic() - t0
        base = seen.total()
        time.sleep(seconds)
    with seen.lock:
        got = sum(1 for x in seen.last if x is not None)
        advanced = sum(1 for f, l in zip(seen.first, seen.last) if f is not None and l > f)
        out = {'n': n, 'connected_and_updated': got, 'advanced': advanced,
               'received': sum(seen.count), 'in_window': sum(seen.count) - base,
               'skipped': seen.skipped, 'repeats': seen.repeats, 'first_s': first_s,
               'threads': threading.active_count()}
    out['exit_start'] = time.time()
    return out, keep


async def _keep_loop(coro):
    """Run ``coro`` and hand its result out of asyncio.run; the subscriptions stay open."""
    return await coro


# ------------------------------------------------------------------------------------ rounds
def mode_rounds(a):
    from CaChannel import PV, ca, core, util
    nioc, nper = a['nioc'], a['nper']
    count = a.get('count')
    lst = names('sc:s', nioc, nper)[:count]
    expected = expected_static(nioc, nper)[:count]
    out = {'fds': [], 'rss': [], 'bad': [], 'n': len(lst)}
    core.context.attach()
    out['fds0'], out['rss0'] = fds(), rss_mb()
    for _ in range(a['rounds']):
        faces_rss = []
        values = util.caget(lst, timeout=a['timeout'])
        out['bad'] += mismatches(values, expected)
        util.clear_cache()
        del values
        faces_rss.append(rss_mb())
        pvs = [PV(n) for n in lst]
        values = [pv.get(timeout=a['timeout']) for pv in pvs]
        out['bad'] += mismatches(values, expected)
        for pv in pvs:
            pv.disconnect()
        util.clear_cache()   # the PVs' channels stay open (idle) until closed
        del pvs, values
        faces_rss.append(rss_mb())
        chids = [ca.create_channel(n)[1] for n in lst]
        assert ca.pend_io(a['timeout']) == ca.ECA_NORMAL
        for chid in chids:
            ca.clear_channel(chid)
        ca.flush_io()
        del chids
        faces_rss.append(rss_mb())
        # libca closes a circuit once its last channel is gone: wait until the
        # descriptor count has not changed for 0.5 s (at most 10 s)
        end = time.monotonic() + 10
        last, since = fds(), time.monotonic()
        while time.monotonic() < end and time.monotonic() - since < 0.5:
            time.sleep(0.05)
            now = fds()
            if now != last:
                last, since = now, time.monotonic()
        out['fds'].append(fds())
        out['rss'].append(rss_mb())
        out.setdefault('faces_rss', []).append(faces_rss)
    return out


def main():
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    if mode == 'monitor':
        out, keep = mode_monitor(args)
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()
        return  # normal interpreter exit with everything in `keep` live
    out = {'get': mode_get, 'rounds': mode_rounds}[mode](args)
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    main()
