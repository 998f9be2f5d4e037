"""Python clients of the "scale" workload of bench/run.py; one phase per process.

    python bench/scale_clients.py CONTENDER PHASE '{"names": FILE, ...}'

CONTENDER (library and face):
  cext_ca, caffi_ca      CaChannel.ca (low level, ca-api.md section 2), C / cffi backend
  cext_util, caffi_util  CaChannel.util.caget(list)
  cext_aio, caffi_aio    CaChannel.aio (connect / caget / camonitor of a list)
  cext_pv                CaChannel.PV objects
  cext_pv_pool           CaChannel.PV objects with delivery='all' (callbacks on the monitor pool)
  pyepics                epics.ca (create_channel / connect_channel / create_subscription),
                         epics.caget_many
  aioca                  aioca (connect / caget / camonitor of a list)
  caproto                caproto.threading.client
  repics                 repics.ca (connect / caget / camonitor of a list)

PHASE:
  monitor  connect every name (connect_s), RSS before and after (rss0_MB,
           rss_conn_MB), subscribe all with a Python callback that stores the
           channel's last value and counts its updates (first_s: until every initial update
           came; rss_sub_MB), settle 1 s, count updates for ``window`` s
           (received = sum over channels of their updates in the window;
           generated = sum over channels of last value at the end minus at the
           start, the calc records count up by one per scan) and
           the process CPU (all threads) meanwhile. Prints the JSON with
           ``exit_start`` (time.time()) and then leaves the interpreter the
           normal way with every channel and monitor live: the harness times
           the exit.
  get      the first value of every name, cold: the library's bulk form
           (``get_s``), values checked (numbers).
  missing  the names file holds ``expect`` names that exist and some that do
           not. Connect (or read) them all with ``timeout``; ``rest_s`` = when
           the last existing one was in (for list calls: when the call returned),
           ``connected`` = how many; then keep everything as the library leaves
           it for ``window`` s and print the time.time() bounds of that window:
           the harness counts the UDP search datagrams meanwhile.

The last stdout line is one JSON object ({"skip": why} when the contender has
no such face; {"error": ...} with a non-zero exit on failure).
"""
import json
import os
import resource
import sys
import threading
import time

EVENTS = None  # DBE mask: VALUE|ALARM, set per library


class Skip(Exception):
    pass


def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e6


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def read_names(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def check_numbers(values, n):
    bad = [v for v in values if not isinstance(v, (int, float))]
    if len(values) != n or bad:
        raise RuntimeError('%d values of %d, %d not numbers (e.g. %r)'
                           % (len(values), n, len(bad), bad[:3]))


def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise RuntimeError('timeout: %s' % what)
        time.sleep(0.02)


class Counter:
    """Per channel index the last value and the number of updates, and the
    total; the callbacks of every library call :meth:`on` (one Python call
    per update)."""

    def __init__(self, n):
        self.last = [-1.0] * n
        self.per = [0] * n
        self.count = 0

    def on(self, i, value):
        self.last[i] = value
        self.per[i] += 1
        self.count += 1

    def all_seen(self):
        """True once every channel had its first update."""
        return 0 not in self.per

    def snapshot(self):
        """(updates, value) per channel, each pair read together: a callback
        running meanwhile (callbacks go on during the snapshot) can split at
        most the pair being read, never a whole burst."""
        last, per = self.last, self.per
        return [(per[i], last[i]) for i in range(len(last))]


def _window_figures(start, end, el, cpu):
    received = sum(e[0] - s[0] for s, e in zip(start, end))
    gen = sum(e[1] - s[1] for s, e in zip(start, end))
    return {'window_s': el, 'cpu_s': cpu, 'received': received, 'generated': gen}


def window_result(counter, window, sleep=time.sleep):
    """Settle 1 s, then count for ``window`` s (blocking flavour)."""
    sleep(1.0)
    start = counter.snapshot()
    c0, t0 = cpu_s(), time.monotonic()
    sleep(window)
    el, cpu = time.monotonic() - t0, cpu_s() - c0
    return _window_figures(start, counter.snapshot(), el, cpu)


async def window_result_async(counter, window):
    import asyncio
    await asyncio.sleep(1.0)
    start = counter.snapshot()
    c0, t0 = cpu_s(), time.monotonic()
    await asyncio.sleep(window)
    el, cpu = time.monotonic() - t0, cpu_s() - c0
    return _window_figures(start, counter.snapshot(), el, cpu)


def subscribed_result(out, counter, t0, window):
    """``out`` plus the first-update time since ``t0`` (subscriptions made),
    the RSS then, and the callbacks' figures over ``window`` s."""
    wait_until(counter.all_seen, 120, 'initial updates')
    out.update(first_s=time.perf_counter() - t0, rss_sub_MB=rss_mb())
    out.update(window_result(counter, window))
    return out


class Ups:
    """Counts connections for the ``missing`` phase: ``up()`` from any
    connection callback; ``n`` so far and ``last`` (perf_counter) of the latest."""

    def __init__(self):
        self.n = 0
        self.last = 0.0
        self._lock = threading.Lock()

    def up(self):
        with self._lock:
            self.n += 1
            self.last = time.perf_counter()

    def wait(self, expect, timeout, poll=None):
        """Until ``expect`` are up or ``timeout`` s passed (``poll()`` each turn, if given)."""
        end = time.monotonic() + timeout
        while self.n < expect and time.monotonic() < end:
            if poll is not None:
                poll()
            time.sleep(0.01)


def missing_result(ups, t0, window):
    """After the timeout: how many are connected, then the search window; the
    connection callbacks go on counting meanwhile (``connected``, ``rest_s``)."""
    out = {'at_timeout': ups.n}
    out.update(wall_window(window))
    out.update(connected=ups.n, rest_s=ups.last - t0 if ups.n else -1)
    return out


def wall_window(window):
    w0 = time.time()
    time.sleep(window)
    return {'window_start': w0, 'window_end': time.time()}


# ------------------------------------------------------------------------------ CaChannel.ca
class CaLow:
    def __init__(self, backend):
        from CaChannel import ca
        if ca.backend != backend:
            raise Skip('CaChannel.ca.backend is %r, not %r' % (ca.backend, backend))
        self.ca = ca
        ca.create_context(True)

    def _create(self, names, callback=None):
        ca = self.ca
        chids = []
        for name in names:
            status, chid = ca.create_channel(name, callback)
            if status != ca.ECA_NORMAL:
                raise RuntimeError('create_channel %s: %s' % (name, ca.message(status)))
            chids.append(chid)
        return chids

    def monitor(self, names, a):
        ca = self.ca
        n = len(names)
        rss0, t0 = rss_mb(), time.perf_counter()
        chids = self._create(names)
        if ca.pend_io(120.0) != ca.ECA_NORMAL:
            raise RuntimeError('not all connected')
        out = {'connect_s': time.perf_counter() - t0, 'rss0_MB': rss0, 'rss_conn_MB': rss_mb()}
        counter = Counter(n)
        on = counter.on
        mask = ca.DBE_VALUE | ca.DBE_ALARM
        t0 = time.perf_counter()
        self._evids = []
        for i, chid in enumerate(chids):
            def cb(args, i=i):
                value = args['value']
                if value is not None:
                    on(i, value)
            status, evid = ca.create_subscription(chid, cb, ca.DBR_DOUBLE, 1, mask)
            if status != ca.ECA_NORMAL:
                raise RuntimeError('create_subscription: %s' % ca.message(status))
            self._evids.append(evid)
        ca.flush_io()
        return subscribed_result(out, counter, t0, a['window'])

    def get(self, names, a):
        ca = self.ca
        t0 = time.perf_counter()
        chids = self._create(names)
        if ca.pend_io(120.0) != ca.ECA_NORMAL:
            raise RuntimeError('not all connected')
        vals = []
        for chid in chids:
            status, v = ca.get(chid, ca.DBR_DOUBLE, 1)
            vals.append(v)
        if ca.pend_io(120.0) != ca.ECA_NORMAL:
            raise RuntimeError('gets did not complete')
        values = [v.get() for v in vals]
        t = time.perf_counter() - t0
        check_numbers(values, len(names))
        return {'get_s': t}

    def missing(self, names, a):
        ca = self.ca
        ups = Ups()

        def conn(args):
            if args['op'] == ca.CA_OP_CONN_UP:
                ups.up()
        t0 = time.perf_counter()
        self._chids = self._create(names, conn)
        ca.flush_io()
        ups.wait(a['expect'], a['timeout'])
        return missing_result(ups, t0, a['window'])


# ------------------------------------------------------------------------------ CaChannel.util
class CaUtil:
    def __init__(self, backend):
        import CaChannel
        from CaChannel import util
        if CaChannel.ca.backend != backend:
            raise Skip('backend is %r, not %r' % (CaChannel.ca.backend, backend))
        import CaChannel.core
        CaChannel.core.context.attach()  # the CA context, outside the timing
        self.util = util

    def monitor(self, names, a):
        raise Skip('util has no list monitor (camonitor prints one PV)')

    def get(self, names, a):
        t0 = time.perf_counter()
        values = self.util.caget(names, timeout=120)
        t = time.perf_counter() - t0
        check_numbers(values, len(names))
        return {'get_s': t}

    def missing(self, names, a):
        t0 = time.perf_counter()
        values = self.util.caget(names, timeout=a['timeout'], throw=False)
        t = time.perf_counter() - t0
        ok = sum(v is not None for v in values)
        out = {'connected': ok, 'at_timeout': ok, 'rest_s': t, 'list_call': True}
        out.update(wall_window(a['window']))
        return out


# ------------------------------------------------------------------------------ asyncio faces
class AsyncFace:
    """CaChannel.aio, aioca and repics.ca.asyncio share this code; only the module differs."""

    def __init__(self, which):
        import importlib
        self.which = which
        if which in ('cext_aio', 'caffi_aio'):
            from CaChannel import ca
            want = 'caffi' if which == 'caffi_aio' else 'cext'
            if ca.backend != want:
                raise Skip('backend is %r, not %r' % (ca.backend, want))
            self.mod = importlib.import_module('CaChannel.aio')
        else:
            self.mod = importlib.import_module('aioca')

    def _run(self, coro):
        import asyncio
        return asyncio.run(coro)

    def monitor(self, names, a):
        return self._run(self._monitor(names, a))

    async def _monitor(self, names, a):
        mod = self.mod
        n = len(names)
        rss0, t0 = rss_mb(), time.perf_counter()
        await mod.connect(names, timeout=120)
        out = {'connect_s': time.perf_counter() - t0, 'rss0_MB': rss0, 'rss_conn_MB': rss_mb()}
        counter = Counter(n)
        on = counter.on

        def cb(value, index):
            on(index, value)
        t0 = time.perf_counter()
        self._subs = mod.camonitor(names, cb, all_updates=True)
        import asyncio
        end = time.monotonic() + 120
        while not counter.all_seen():
            if time.monotonic() > end:
                raise RuntimeError('timeout: initial updates (%d of %d)' % (counter.count, n))
            await asyncio.sleep(0.01)
        out.update(first_s=time.perf_counter() - t0, rss_sub_MB=rss_mb())
        out.update(await window_result_async(counter, a['window']))
        out['n'] = n
        # leave the loop with every subscription open; asyncio.run and the
        # interpreter tear down the rest
        out['exit_start'] = time.time()
        emit(out)
        return None

    def get(self, names, a):
        async def main():
            t0 = time.perf_counter()
            values = await self.mod.caget(names, timeout=120)
            t = time.perf_counter() - t0
            check_numbers([float(v) for v in values], len(names))
            return {'get_s': t}
        return self._run(main())

    def missing(self, names, a):
        async def main():
            import asyncio
            t0 = time.perf_counter()
            res = await self.mod.connect(names, timeout=a['timeout'], throw=False)
            t = time.perf_counter() - t0
            ok = sum(1 for r in res if bool(getattr(r, 'ok', False)))
            out = {'connected': ok, 'at_timeout': ok, 'rest_s': t, 'list_call': True}
            w0 = time.time()
            await asyncio.sleep(a['window'])
            out.update(window_start=w0, window_end=time.time())
            return out
        return self._run(main())


# ------------------------------------------------------------------------------ CaChannel.PV
class CaPV:
    """``CaChannel.PV`` objects; with ``delivery`` ('all') their callbacks run on
    the delivery pool of CaChannel.monitor (updates queued by libca's thread
    without the GIL, taken in batches) instead of libca's thread."""

    def __init__(self, backend, delivery=None):
        self.delivery = delivery
        import CaChannel
        if CaChannel.ca.backend != backend:
            raise Skip('backend is %r, not %r' % (CaChannel.ca.backend, backend))
        import CaChannel.core
        CaChannel.core.context.attach()
        self.PV = CaChannel.PV

    def monitor(self, names, a):
        n = len(names)
        counter = Counter(n)
        on = counter.on
        index = {name: i for i, name in enumerate(names)}

        def cb(pvname=None, value=None, **kw):
            on(index[pvname], value)
        rss0, t0 = rss_mb(), time.perf_counter()
        # auto_monitor (the default) subscribes each PV as it connects
        self._pvs = pvs = [self.PV(name, callback=cb, delivery=self.delivery) for name in names]
        for pv in pvs:
            if not pv.wait_for_connection(120):
                raise RuntimeError('%s did not connect' % pv.pvname)
        out = {'connect_s': time.perf_counter() - t0, 'rss0_MB': rss0, 'rss_conn_MB': rss_mb(),
               'note': 'PV subscribes on connect: connect_s/rss_conn include the monitors'}
        return subscribed_result(out, counter, t0, a['window'])

    def get(self, names, a):
        if self.delivery is not None:
            raise Skip("the same as cext_pv (delivery is for monitors)")
        t0 = time.perf_counter()
        pvs = [self.PV(name) for name in names]
        values = [pv.get(timeout=120) for pv in pvs]
        t = time.perf_counter() - t0
        check_numbers(values, len(names))
        return {'get_s': t}

    def missing(self, names, a):
        if self.delivery is not None:
            raise Skip("the same as cext_pv (delivery is for monitors)")
        ups = Ups()

        def conn(pvname=None, conn=None, **kw):
            if conn:
                ups.up()
        t0 = time.perf_counter()
        self._pvs = [self.PV(name, connection_callback=conn) for name in names]
        ups.wait(a['expect'], a['timeout'])
        return missing_result(ups, t0, a['window'])


# ------------------------------------------------------------------------------ CaChannel 3.x objects
class Ca3:
    """``CaChannel.CaChannel`` objects as 3.x scripts use them: ``search()`` every
    name and one ``pend_io()``; ``array_get()`` + ``pend_io()`` + ``getValue()``;
    ``add_masked_array_event`` with a callback (``user_args`` carry the index)."""

    def __init__(self, backend):
        import CaChannel
        if CaChannel.ca.backend != backend:
            raise Skip('backend is %r, not %r' % (CaChannel.ca.backend, backend))
        import CaChannel.core
        CaChannel.core.context.attach()
        self.CaChannel = CaChannel.CaChannel
        self.ca = CaChannel.ca

    def _connect(self, names):
        chans = []
        for name in names:
            chan = self.CaChannel(name)
            chan.search()
            chans.append(chan)
        chans[0].pend_io(120)  # waits for every search() since the last pend_io
        return chans

    def monitor(self, names, a):
        ca = self.ca
        n = len(names)
        rss0, t0 = rss_mb(), time.perf_counter()
        self._chans = chans = self._connect(names)
        out = {'connect_s': time.perf_counter() - t0, 'rss0_MB': rss0, 'rss_conn_MB': rss_mb()}
        counter = Counter(n)
        on = counter.on

        def cb(epics_args, user_args):
            on(user_args[0], epics_args['pv_value'])
        t0 = time.perf_counter()
        mask = ca.DBE_VALUE | ca.DBE_ALARM
        for i, chan in enumerate(chans):
            chan.add_masked_array_event(ca.DBR_DOUBLE, 1, mask, cb, i)
        chans[0].flush_io()
        return subscribed_result(out, counter, t0, a['window'])

    def get(self, names, a):
        ca = self.ca
        t0 = time.perf_counter()
        chans = self._connect(names)
        for chan in chans:
            chan.array_get(ca.DBR_DOUBLE, 1)
        chans[0].pend_io(120)
        values = [chan.getValue() for chan in chans]
        t = time.perf_counter() - t0
        check_numbers(values, len(names))
        return {'get_s': t}

    def missing(self, names, a):
        ca = self.ca
        ups = Ups()

        def conn(epics_args, user_args):
            if epics_args[1] == ca.CA_OP_CONN_UP:
                ups.up()
        t0 = time.perf_counter()
        self._chans = chans = []
        for name in names:
            chan = self.CaChannel(name)
            chan.search_and_connect(None, conn)
            chans.append(chan)
        chans[0].flush_io()
        ups.wait(a['expect'], a['timeout'])
        return missing_result(ups, t0, a['window'])


# ------------------------------------------------------------------------------ pyepics
class Pyepics:
    def __init__(self, which):
        import epics
        from epics import ca
        self.epics, self.ca = epics, ca
        ca.initialize_libca()

    def monitor(self, names, a):
        ca = self.ca
        n = len(names)
        rss0, t0 = rss_mb(), time.perf_counter()
        chids = [ca.create_channel(name, connect=False, auto_cb=False) for name in names]
        for chid in chids:
            if not ca.connect_channel(chid, timeout=120):
                raise RuntimeError('not all connected')
        out = {'connect_s': time.perf_counter() - t0, 'rss0_MB': rss0, 'rss_conn_MB': rss_mb()}
        counter = Counter(n)
        on = counter.on
        index = {name: i for i, name in enumerate(names)}

        def cb(pvname=None, value=None, **kw):
            on(index[pvname], value)
        t0 = time.perf_counter()
        mask = ca.dbr.DBE_VALUE | ca.dbr.DBE_ALARM
        self._subs = [ca.create_subscription(chid, mask=mask, callback=cb) for chid in chids]
        ca.flush_io()
        return subscribed_result(out, counter, t0, a['window'])

    def get(self, names, a):
        t0 = time.perf_counter()
        values = self.epics.caget_many(names, connection_timeout=120, timeout=120)
        t = time.perf_counter() - t0
        check_numbers(values, len(names))
        return {'get_s': t}

    def missing(self, names, a):
        ca = self.ca
        ups = Ups()

        def conn(pvname=None, chid=None, conn=None, **kw):
            if conn:
                ups.up()
        t0 = time.perf_counter()
        self._chids = [ca.create_channel(name, connect=False, callback=conn) for name in names]
        ca.flush_io()
        ups.wait(a['expect'], a['timeout'], poll=ca.poll)
        return missing_result(ups, t0, a['window'])


# ------------------------------------------------------------------------------ caproto
class Caproto:
    def __init__(self, which):
        from caproto.threading.client import Context
        self.ctx = Context()

    def _connect(self, names, timeout):
        pvs = self.ctx.get_pvs(*names, timeout=timeout)
        for pv in pvs:
            pv.wait_for_connection(timeout=timeout)
        return pvs

    def monitor(self, names, a):
        n = len(names)
        rss0, t0 = rss_mb(), time.perf_counter()
        pvs = self._connect(names, 120)
        out = {'connect_s': time.perf_counter() - t0, 'rss0_MB': rss0, 'rss_conn_MB': rss_mb()}
        counter = Counter(n)
        on = counter.on
        index = {name: i for i, name in enumerate(names)}

        def cb(sub, response):
            on(index[sub.pv.name], float(response.data[0]))
        self._cb = cb  # caproto holds callbacks weakly
        t0 = time.perf_counter()
        self._subs = []
        for pv in pvs:
            sub = pv.subscribe()
            sub.add_callback(cb)
            self._subs.append(sub)
        return subscribed_result(out, counter, t0, a['window'])

    def get(self, names, a):
        t0 = time.perf_counter()
        pvs = self._connect(names, 120)
        values = [None] * len(pvs)
        done = threading.Event()
        left = [len(pvs)]
        lock = threading.Lock()

        def make(i):
            def cb(response):
                values[i] = float(response.data[0])
                with lock:
                    left[0] -= 1
                    if not left[0]:
                        done.set()
            return cb
        self._cbs = [make(i) for i in range(len(pvs))]
        for pv, cb in zip(pvs, self._cbs):
            pv.read(wait=False, callback=cb)
        if not done.wait(120):
            raise RuntimeError('reads did not complete')
        t = time.perf_counter() - t0
        check_numbers(values, len(names))
        return {'get_s': t}

    def missing(self, names, a):
        ups = Ups()

        def conn(pv, new_state):
            if new_state == 'connected':
                ups.up()
        self._conn = conn
        t0 = time.perf_counter()
        self._pvs = self.ctx.get_pvs(*names, connection_state_callback=conn, timeout=a['timeout'])
        ups.wait(a['expect'], a['timeout'])
        return missing_result(ups, t0, a['window'])


# ------------------------------------------------------------------------------ repics
class Repics:
    def __init__(self, which):
        from repics import ca
        self.ca = ca

    def monitor(self, names, a):
        ca = self.ca
        n = len(names)
        rss0, t0 = rss_mb(), time.perf_counter()
        ca.connect(names, timeout=120)
        out = {'connect_s': time.perf_counter() - t0, 'rss0_MB': rss0, 'rss_conn_MB': rss_mb()}
        counter = Counter(n)
        on = counter.on

        def cb(value, index):
            on(index, value)
        t0 = time.perf_counter()
        self._subs = ca.camonitor(names, cb, form='plain', all_updates=True)
        return subscribed_result(out, counter, t0, a['window'])

    def get(self, names, a):
        t0 = time.perf_counter()
        values = self.ca.caget(names, form='plain', timeout=120)
        t = time.perf_counter() - t0
        check_numbers([float(v) for v in values], len(names))
        return {'get_s': t}

    def missing(self, names, a):
        t0 = time.perf_counter()
        res = self.ca.connect(names, timeout=a['timeout'], throw=False)
        t = time.perf_counter() - t0
        ok = sum(1 for r in res if bool(getattr(r, 'ok', False)))
        out = {'connected': ok, 'at_timeout': ok, 'rest_s': t, 'list_call': True}
        out.update(wall_window(a['window']))
        return out


CONTENDERS = {
    'cext_ca': lambda: CaLow('cext'),
    'caffi_ca': lambda: CaLow('caffi'),
    'cext_util': lambda: CaUtil('cext'),
    'caffi_util': lambda: CaUtil('caffi'),
    'cext_aio': lambda: AsyncFace('cext_aio'),
    'caffi_aio': lambda: AsyncFace('caffi_aio'),
    'cext_pv': lambda: CaPV('cext'),
    'cext_pv_pool': lambda: CaPV('cext', delivery='all'),
    'cext_ca3': lambda: Ca3('cext'),
    'caffi_ca3': lambda: Ca3('caffi'),
    'pyepics': lambda: Pyepics('pyepics'),
    'aioca': lambda: AsyncFace('aioca'),
    'caproto': lambda: Caproto('caproto'),
    'repics': lambda: Repics('repics'),
}


def emit(out):
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()


def main():
    import traceback
    contender, phase, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    try:
        impl = CONTENDERS[contender]()
        names = read_names(args['names'])
        out = getattr(impl, phase)(names, args)
    except Skip as exc:
        emit({'skip': str(exc)})
        os._exit(0)
    except BaseException as exc:
        traceback.print_exc()
        emit({'error': '%s: %s' % (type(exc).__name__, exc)})
        sys.stderr.flush()
        os._exit(1)
    if out is None:  # already emitted (the asyncio monitor leaves its loop first)
        return
    out['n'] = len(names)
    if phase == 'monitor':
        out['exit_start'] = time.time()
        emit(out)
        return  # the normal interpreter exit, every channel and monitor live: timed by the harness
    emit(out)
    os._exit(0)


if __name__ == '__main__':
    main()
