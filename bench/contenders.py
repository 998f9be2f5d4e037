"""Python contenders of the CaChannel benchmark; one workload per process.

    python bench/contenders.py CONTENDER WORKLOAD '{"pv": ..., "repeats": N, "window": s}'

CONTENDER: cext | cext_out | caffi | pyepics | caproto | repics
WORKLOAD:  big_get | image_get | scalar_get | put_cb | connect | monitor | monitor_image

Prints one JSON object as the last line of stdout:
    {"unit": ..., "samples": [...], "extra": {...}}      measured
    {"skip": "reason"}                                   contender cannot run this workload
Any exception -> traceback on stderr, non-zero exit (run.py shows "error: ...").
The process is started by bench/run.py with the CA environment pointing at the bench IOC
(and CACHANNEL_BACKEND=caffi for the cffi contender).
"""
import json
import sys
import threading
import time

import numpy as np

CONNECT_TIMEOUT = 10.0
IO_TIMEOUT = 60.0


class Skip(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# generic measurement loops (identical for every Python contender)
# ----------------------------------------------------------------------------------------------
def time_per_call(fn, repeats, check=None):
    value = fn()  # warm-up, not recorded
    if check:
        check(value)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        samples.append(time.perf_counter() - t0)
    if check:
        check(value)
    return samples


def rate(fn, repeats, window):
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            t = time.perf_counter() - t0
            if t >= window:
                break
        samples.append(n / t)
    return samples


def event_rate(counter, repeats, window, settle=0.5):
    """counter: 1-element list incremented by the callback."""
    time.sleep(settle)
    if counter[0] == 0:
        time.sleep(2.0)
        if counter[0] == 0:
            raise RuntimeError("no monitor events received")
    samples = []
    for _ in range(repeats):
        e0 = counter[0]
        t0 = time.perf_counter()
        time.sleep(window)
        t = time.perf_counter() - t0
        samples.append((counter[0] - e0) / t)
    return samples


def check_big(value):
    """4M DOUBLE waveform holds 0, 1, 2, ... (written by rawca fill)."""
    a = np.asarray(value)
    if a.shape != (4000000,) or a[1] != 1.0 or a[-1] != 3999999.0:
        raise RuntimeError("unexpected data: shape %s, a[-1]=%r" % (a.shape, a[-1] if a.size else None))


def check_image(value):
    a = np.asarray(value)
    if a.shape != (1048576,) or a[1] != 1 or a[-1] != (1048575 & 0xFFFF):
        raise RuntimeError("unexpected image data: shape %s" % (a.shape,))


# ----------------------------------------------------------------------------------------------
# CaChannel low-level API (ca-api.md section 2); both backends
# ----------------------------------------------------------------------------------------------
class CaChannelContender:
    def __init__(self, variant):
        from CaChannel import ca
        self.ca = ca
        self.variant = variant
        want = 'caffi' if variant == 'caffi' else 'cext'
        if ca.backend != want:
            raise Skip("CaChannel.ca.backend is %r, not %r" % (ca.backend, want))
        self.extra = {'backend': ca.backend, 'libca': str(ca.version())}
        self._ok(ca.create_context(True), 'create_context')

    def _ok(self, status, what):
        if int(status) != 1:  # ECA_NORMAL
            raise RuntimeError('%s: %s' % (what, self.ca.message(status)))

    def connect(self, name):
        ca = self.ca
        status, chid = ca.create_channel(name)
        self._ok(status, 'create_channel')
        self._ok(ca.pend_io(CONNECT_TIMEOUT), 'pend_io(connect %s)' % name)
        return chid

    def _getter(self, name, chtype=None):
        ca = self.ca
        chid = self.connect(name)
        count = ca.element_count(chid)
        if chtype is None:
            chtype = ca.dbf_type_to_DBR(ca.field_type(chid))
        self.extra.update(count=count, dbr_type=ca.dbr_type_to_text(chtype))
        if self.variant == 'cext_out':
            dtype = {5: np.int32, 6: np.float64, 1: np.int16, 2: np.float32, 4: np.uint8,
                     3: np.uint16}[int(chtype) % 7]
            out = np.empty(count, dtype)

            def get():
                try:
                    res = ca.get(chid, chtype, count, out=out)
                except TypeError as exc:
                    raise Skip("ca.get(..., out=) not supported: %s" % exc)
                self._ok(res[0] if isinstance(res, tuple) else res, 'get(out=)')
                self._ok(ca.pend_io(IO_TIMEOUT), 'pend_io')
                return out
            return get

        def get():
            status, dbrvalue = ca.get(chid, chtype, count, use_numpy=True)
            self._ok(status, 'get')
            self._ok(ca.pend_io(IO_TIMEOUT), 'pend_io')
            return dbrvalue.get()
        return get

    def big_get(self, a):
        return 's', time_per_call(self._getter(a['pv'], self.ca.DBR_DOUBLE), a['repeats'], check_big)

    def image_get(self, a):
        return 's', time_per_call(self._getter(a['pv']), a['repeats'], check_image)

    def scalar_get(self, a):
        ca = self.ca
        chid = self.connect(a['pv'])
        DBR_DOUBLE = ca.DBR_DOUBLE

        def get():
            status, dbrvalue = ca.get(chid, DBR_DOUBLE, 1)
            if status != 1 or ca.pend_io(IO_TIMEOUT) != 1:
                raise RuntimeError('get failed: %r' % (status,))
            return dbrvalue.get()
        return 'gets/s', rate(get, a['repeats'], a['window'])

    def put_cb(self, a):
        ca = self.ca
        chid = self.connect(a['pv'])
        done = threading.Lock()
        done.acquire()
        result = {}

        def cb(args):
            result['status'] = args['status']
            done.release()
        value = [0.0]

        def put():
            value[0] += 1.0
            self._ok(ca.put(chid, value[0], callback=cb), 'put')
            ca.flush_io()
            if not done.acquire(timeout=IO_TIMEOUT):
                raise RuntimeError('put callback timed out')
            if result['status'] != 1:
                raise RuntimeError('put callback status %r' % (result['status'],))
        return 'puts/s', rate(put, a['repeats'], a['window'])

    def connect_many(self, a):
        ca = self.ca
        names = ['%s%d' % (a['prefix'], i) for i in range(a['n'])]
        t0 = time.perf_counter()
        chids = []
        for name in names:
            status, chid = ca.create_channel(name)
            self._ok(status, 'create_channel')
            chids.append(chid)
        self._ok(ca.pend_io(IO_TIMEOUT), 'pend_io(connect)')
        t = time.perf_counter() - t0
        if not all(ca.read_access(c) for c in chids):
            raise RuntimeError('not all channels connected')
        return 's', [t]

    def _monitor(self, a, unit):
        ca = self.ca
        chid = self.connect(a['pv'])
        counter = [0]

        def cb(args):
            if args['value'] is not None:
                counter[0] += 1
        status, self._evid = ca.create_subscription(chid, cb, None, None, ca.DBE_VALUE | ca.DBE_ALARM,
                                                    use_numpy=True)
        self._ok(status, 'create_subscription')
        ca.flush_io()
        return unit, event_rate(counter, a['repeats'], a['window'])

    def monitor(self, a):
        return self._monitor(a, 'events/s')

    def monitor_image(self, a):
        return self._monitor(a, 'frames/s')


# ----------------------------------------------------------------------------------------------
# pyepics: epics.ca low-level functions (its fastest reasonable use)
# ----------------------------------------------------------------------------------------------
class PyepicsContender:
    def __init__(self, variant):
        import epics
        from epics import ca
        self.ca = ca
        ca.initialize_libca()
        self.extra = {'pyepics': epics.__version__, 'libca': ca.find_libca()}

    def connect(self, name):
        chid = self.ca.create_channel(name, connect=False, auto_cb=False)
        if not chid or not self.ca.connect_channel(chid, timeout=CONNECT_TIMEOUT):
            raise RuntimeError('could not connect %s' % name)
        return chid

    def _getter(self, name, ftype=None):
        ca = self.ca
        chid = self.connect(name)
        count = ca.element_count(chid)
        self.extra.update(count=count, ftype=ca.field_type(chid) if ftype is None else ftype)

        def get():
            v = ca.get(chid, ftype=ftype, count=count, as_numpy=True, timeout=IO_TIMEOUT)
            if v is None:
                raise RuntimeError('get timed out')
            return v
        return get

    def big_get(self, a):
        return 's', time_per_call(self._getter(a['pv'], 6), a['repeats'], check_big)

    def image_get(self, a):
        return 's', time_per_call(self._getter(a['pv']), a['repeats'], check_image)

    def scalar_get(self, a):
        ca = self.ca
        chid = self.connect(a['pv'])

        def get():
            v = ca.get(chid, ftype=6, timeout=IO_TIMEOUT)
            if v is None:
                raise RuntimeError('get timed out')
            return v
        return 'gets/s', rate(get, a['repeats'], a['window'])

    def put_cb(self, a):
        ca = self.ca
        chid = self.connect(a['pv'])
        value = [0.0]

        def put():
            value[0] += 1.0
            if ca.put(chid, value[0], wait=True, timeout=IO_TIMEOUT) != 1:
                raise RuntimeError('put did not complete')
        return 'puts/s', rate(put, a['repeats'], a['window'])

    def connect_many(self, a):
        ca = self.ca
        names = ['%s%d' % (a['prefix'], i) for i in range(a['n'])]
        t0 = time.perf_counter()
        chids = [ca.create_channel(n, connect=False, auto_cb=False) for n in names]
        for chid in chids:
            if not ca.connect_channel(chid, timeout=IO_TIMEOUT):
                raise RuntimeError('not all channels connected')
        return 's', [time.perf_counter() - t0]

    def _monitor(self, a, unit):
        ca = self.ca
        chid = self.connect(a['pv'])
        counter = [0]

        def cb(value=None, **kw):
            if value is not None:
                counter[0] += 1
        self._sub = ca.create_subscription(chid, mask=ca.dbr.DBE_VALUE | ca.dbr.DBE_ALARM, callback=cb)
        ca.flush_io()
        return unit, event_rate(counter, a['repeats'], a['window'])

    def monitor(self, a):
        return self._monitor(a, 'events/s')

    def monitor_image(self, a):
        return self._monitor(a, 'frames/s')


# ----------------------------------------------------------------------------------------------
# caproto threading client
# ----------------------------------------------------------------------------------------------
class CaprotoContender:
    def __init__(self, variant):
        import caproto
        from caproto.threading.client import Context
        self.ctx = Context()
        self.extra = {'caproto': caproto.__version__}

    def connect(self, name):
        pv, = self.ctx.get_pvs(name, timeout=CONNECT_TIMEOUT)
        pv.wait_for_connection(timeout=CONNECT_TIMEOUT)
        return pv

    def _getter(self, name, data_type=None):
        pv = self.connect(name)
        self.extra.update(count=pv.channel.native_data_count,
                          native_type=str(pv.channel.native_data_type))

        def get():
            return pv.read(data_type=data_type, timeout=IO_TIMEOUT).data
        return get

    def big_get(self, a):
        from caproto import ChannelType
        return 's', time_per_call(self._getter(a['pv'], ChannelType.DOUBLE), a['repeats'], check_big)

    def image_get(self, a):
        return 's', time_per_call(self._getter(a['pv']), a['repeats'], check_image)

    def scalar_get(self, a):
        from caproto import ChannelType
        pv = self.connect(a['pv'])

        def get():
            return pv.read(data_type=ChannelType.DOUBLE, timeout=IO_TIMEOUT).data[0]
        return 'gets/s', rate(get, a['repeats'], a['window'])

    def put_cb(self, a):
        pv = self.connect(a['pv'])
        value = [0.0]

        def put():
            value[0] += 1.0
            pv.write([value[0]], wait=True, timeout=IO_TIMEOUT)
        return 'puts/s', rate(put, a['repeats'], a['window'])

    def connect_many(self, a):
        names = ['%s%d' % (a['prefix'], i) for i in range(a['n'])]
        t0 = time.perf_counter()
        pvs = self.ctx.get_pvs(*names, timeout=IO_TIMEOUT)
        for pv in pvs:
            pv.wait_for_connection(timeout=IO_TIMEOUT)
        return 's', [time.perf_counter() - t0]

    def _monitor(self, a, unit):
        pv = self.connect(a['pv'])
        counter = [0]

        def cb(sub, response):
            if response.data is not None:
                counter[0] += 1
        self._cb = cb  # caproto holds callbacks weakly
        self._sub = pv.subscribe()
        self._sub.add_callback(cb)
        return unit, event_rate(counter, a['repeats'], a['window'])

    def monitor(self, a):
        return self._monitor(a, 'events/s')

    def monitor_image(self, a):
        return self._monitor(a, 'frames/s')


# ----------------------------------------------------------------------------------------------
# repics (PyPI): Channel Access in Rust (epics-rs), no libca; its blocking front end repics.ca
# ----------------------------------------------------------------------------------------------
class RepicsContender:
    """``repics.ca`` calls: caget/caput/connect/camonitor, ``form='plain'`` (the value
    only, like the other contenders' plain DBR requests). Channels are cached by name
    inside repics, so the first call of a loop (the warm-up) connects."""

    def __init__(self, variant):
        import repics
        from repics import ca
        self.ca = ca
        self.extra = {'repics': repics.__version__}

    def connect(self, name):
        self.ca.connect(name, timeout=CONNECT_TIMEOUT)
        return name

    def _getter(self, name, datatype=None):
        ca = self.ca
        self.connect(name)

        def get():
            return ca.caget(name, form='plain', datatype=datatype, timeout=IO_TIMEOUT)
        return get

    def big_get(self, a):
        return 's', time_per_call(self._getter(a['pv'], float), a['repeats'], check_big)

    def image_get(self, a):
        get = self._getter(a['pv'])
        self.extra['dtype'] = str(np.asarray(get()).dtype)
        return 's', time_per_call(get, a['repeats'], check_image)

    def scalar_get(self, a):
        return 'gets/s', rate(self._getter(a['pv'], float), a['repeats'], a['window'])

    def put_cb(self, a):
        ca = self.ca
        name = self.connect(a['pv'])
        value = [0.0]

        def put():
            value[0] += 1.0
            ca.caput(name, value[0], wait=True, timeout=IO_TIMEOUT)
        return 'puts/s', rate(put, a['repeats'], a['window'])

    def connect_many(self, a):
        names = ['%s%d' % (a['prefix'], i) for i in range(a['n'])]
        t0 = time.perf_counter()
        self.ca.connect(names, timeout=IO_TIMEOUT)  # raises if any does not connect
        return 's', [time.perf_counter() - t0]

    def _monitor(self, a, unit):
        name = self.connect(a['pv'])
        counter = [0]

        def cb(value):
            if getattr(value, 'ok', True):
                counter[0] += 1
        # all_updates: every event to the callback (no merging of queued updates)
        self._sub = self.ca.camonitor(name, cb, form='plain', all_updates=True)
        return unit, event_rate(counter, a['repeats'], a['window'])

    def monitor(self, a):
        return self._monitor(a, 'events/s')

    def monitor_image(self, a):
        return self._monitor(a, 'frames/s')


CONTENDERS = {
    'repics': RepicsContender,
    'cext': CaChannelContender,
    'cext_out': CaChannelContender,
    'caffi': CaChannelContender,
    'pyepics': PyepicsContender,
    'caproto': CaprotoContender,
}


def main():
    import os
    import traceback
    contender, workload, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    try:
        impl = CONTENDERS[contender](contender)
        if contender == 'cext_out' and workload not in ('big_get', 'image_get'):
            raise Skip('out= applies to callback-less array gets only')
        method = getattr(impl, 'connect_many' if workload == 'connect' else workload)
        unit, samples = method(args)
        out = {'unit': unit, 'samples': samples, 'extra': impl.extra}
        code = 0
    except Skip as exc:
        out, code = {'skip': str(exc)}, 0
    except BaseException as exc:
        traceback.print_exc()
        out, code = {'error': '%s: %s' % (type(exc).__name__, exc)}, 1
    print(json.dumps(out))
    sys.stdout.flush()
    sys.stderr.flush()
    # do not wait for library teardown (pyepics/caproto/libca threads); the result is out
    os._exit(code)


if __name__ == '__main__':
    main()
