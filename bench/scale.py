"""The "scale" workload of bench/run.py: one client process, 100,000 PVs.

    python bench/run.py --workloads scale [--quick] [--scale-contenders raw,cext_ca,...]

World: NIOC IOC processes (``python -m epicscorelibs.ioc`` through
``CaChannel.testing.IOC``), each on its own free port of 127.0.0.1 with NPER
``calc`` records ``sc:K:I`` (``SCAN "10 second"``, ``CALC "VAL+1"``: every
record counts up by one per scan, so the PVs together make NIOC*NPER/10
updates/s; full 4 x 25,000 -> 10,000 updates/s; ``--quick`` 4 x 2,500 scanned every
2 s), generated at start-up; a
private CA repeater; a silent UDP listener whose address is in every client's
``EPICS_CA_ADDR_LIST`` next to the IOCs' (how search datagrams are counted,
see :class:`SearchCounter`).

Every client phase runs in a fresh process (``bench/scale_clients.py`` for the
Python contenders, ``rawca scale_*`` / ``rawca caget_list`` for raw libca):
``monitor`` (connect, RSS, subscribe all with a callback, CPU over the window,
received/generated, timed interpreter exit with everything live), ``get``
(cold first value of every PV in the library's bulk form) and ``missing``
(1,000 names that nobody serves mixed into the list: the rest must finish
within one timeout, then search datagrams per second over a window).
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# key, label, backend env ('caffi' -> CACHANNEL_BACKEND=caffi), phases it has
CONTENDERS = [
    ('raw', 'raw libca (C)'),
    ('cext_ca', 'CaChannel C: ca (low level)'),
    ('cext_util', 'CaChannel C: util.caget(list)'),
    ('cext_aio', 'CaChannel C: aio'),
    ('cext_pv', 'CaChannel C: PV objects'),
    ('cext_pv_pool', "CaChannel C: PV, delivery='all'"),
    ('cext_ca3', 'CaChannel C: 3.x objects'),
    ('caffi_ca', 'CaChannel cffi: ca (low level)'),
    ('caffi_util', 'CaChannel cffi: util.caget(list)'),
    ('caffi_aio', 'CaChannel cffi: aio'),
    ('caffi_ca3', 'CaChannel cffi: 3.x objects'),
    ('pyepics', 'pyepics'),
    ('aioca', 'aioca'),
    ('caproto', 'caproto threading'),
    ('repics', 'repics (Rust, no libca)'),
]
LABEL = dict(CONTENDERS)
PHASES = ('monitor', 'get', 'missing')


def settings(quick):
    if quick:
        # 10,000 PVs scanned every 2 s (5,000 updates/s); windows are whole scan periods
        return dict(nioc=4, nper=2500, scan=2, nmiss=1000, window=4.0, timeout=3.0,
                    search_window=3.0, proc_timeout=120)
    return dict(nioc=4, nper=25000, scan=10, nmiss=1000, window=20.0, timeout=10.0,
                search_window=60.0, proc_timeout=420)


# ------------------------------------------------------------------------------ the world
def write_db(path, k, nper, scan):
    with open(path, 'w') as f:
        for i in range(nper):
            f.write('record(calc, "sc:%d:%d") {\n  field(SCAN, "%d second")\n  field(CALC, "VAL+1")\n}\n'
                    % (k, i, scan))


def names_of(nioc, nper):
    """Every served name, IOC after IOC."""
    return ['sc:%d:%d' % (k, i) for k in range(nioc) for i in range(nper)]


def with_missing(names, nmiss):
    """``names`` with ``nmiss`` names nobody serves spread evenly among them."""
    out = []
    step = max(1, len(names) // nmiss)
    j = 0
    for i, name in enumerate(names):
        if i % step == 0 and j < nmiss:
            out.append('sc:missing:%d' % j)
            j += 1
        out.append(name)
    while j < nmiss:
        out.append('sc:missing:%d' % j)
        j += 1
    return out


class SearchCounter:
    """A silent UDP listener on 127.0.0.1 that is one more address of every
    client's ``EPICS_CA_ADDR_LIST``.

    libca (and every CA client) sends each search datagram to every address
    of the list, so this socket gets a copy of each one the client sends; it
    never answers, so it changes nothing for the client. It records the arrival
    time, the source port and the number of CA_PROTO_SEARCH (6) messages of
    every datagram. No root, no packet capture; what it cannot see: searches a
    client sends only to some addresses (none of the contenders does that)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:  # a big receive buffer so that the connect bursts are not dropped here
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        except OSError:
            pass
        self.sock.bind(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.records = []  # (time.time(), searches, source port)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(65536)
            except OSError:
                return
            t = time.time()
            n, off = 0, 0
            while off + 16 <= len(data):
                cmd, size = struct.unpack_from('>HH', data, off)
                if cmd == 6:
                    n += 1
                off += 16 + size
            with self.lock:
                self.records.append((t, n, addr[1]))

    def count(self, t0, t1):
        """(datagrams, search messages) that arrived in [t0, t1]."""
        with self.lock:
            sel = [r for r in self.records if t0 <= r[0] <= t1]
        return len(sel), sum(r[1] for r in sel)

    def close(self):
        self.sock.close()


class World:
    """IOCs, repeater, search counter, names files; torn down by :meth:`close`."""

    def __init__(self, cfg, rawca, base_env, log):
        from CaChannel.testing import IOC, free_port
        self.cfg = cfg
        self.rawca = rawca
        self.dir = tempfile.mkdtemp(prefix='cachannel-scale-')
        self.iocs = []
        self.repeater = None
        self.counter = None
        try:
            repeater_port = free_port()
            self.counter = SearchCounter()
            env = dict(base_env)
            env['EPICS_CA_REPEATER_PORT'] = str(repeater_port)
            self.repeater = subprocess.Popen([rawca, 'repeater'], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                             env=env)
            t0 = time.time()
            for k in range(cfg['nioc']):
                db = os.path.join(self.dir, 'scale%d.db' % k)
                write_db(db, k, cfg['nper'], cfg['scan'])
                ioc = IOC([db], env={'EPICS_CA_REPEATER_PORT': str(repeater_port)},
                          ready_pv='sc:%d:0' % k)
                ioc.start(timeout=120)
                self.iocs.append(ioc)
            log('scale: %d IOCs x %d calc records up in %.1f s (ports %s), search counter on %d'
                % (cfg['nioc'], cfg['nper'], time.time() - t0, [i.port for i in self.iocs],
                   self.counter.port))
            addrs = ['127.0.0.1:%d' % i.port for i in self.iocs] + ['127.0.0.1:%d' % self.counter.port]
            self.env = dict(base_env)
            self.env.update({
                'EPICS_CA_ADDR_LIST': ' '.join(addrs),
                'EPICS_CA_AUTO_ADDR_LIST': 'NO',
                'EPICS_CA_REPEATER_PORT': str(repeater_port),
                'EPICS_CA_MAX_ARRAY_BYTES': '100000000',
            })
            self.names = names_of(cfg['nioc'], cfg['nper'])
            self.names_file = os.path.join(self.dir, 'names.txt')
            with open(self.names_file, 'w') as f:
                f.write('\n'.join(self.names) + '\n')
            self.missing_file = os.path.join(self.dir, 'missing.txt')
            with open(self.missing_file, 'w') as f:
                f.write('\n'.join(with_missing(self.names, cfg['nmiss'])) + '\n')
        except BaseException:
            self.close()
            raise

    def close(self):
        for ioc in self.iocs:
            try:
                ioc.stop()
            except Exception:
                pass
        if self.repeater is not None and self.repeater.poll() is None:
            os.kill(self.repeater.pid, signal.SIGTERM)
            try:
                self.repeater.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.repeater.pid, signal.SIGKILL)
                self.repeater.wait()
        if self.counter is not None:
            self.counter.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------------ one phase
def run_phase(world, contender, phase):
    """Run one phase of one contender in a fresh process; the result dict
    (``status`` ok / skip / error; ``wall_s`` of the whole process; for
    ``monitor`` ``exit_s`` = process end - ``exit_start``)."""
    cfg = world.cfg
    env = dict(world.env)
    if contender.startswith('caffi'):
        env['CACHANNEL_BACKEND'] = 'caffi'
    n = len(world.names)
    if contender == 'raw':
        cmd = {'monitor': [world.rawca, 'scale_monitor', world.names_file, str(cfg['window'])],
               'get': [world.rawca, 'caget_list', world.names_file],
               'missing': [world.rawca, 'scale_missing', world.missing_file, str(n),
                           str(cfg['timeout']), str(cfg['search_window'])]}[phase]
    else:
        args = {'names': world.missing_file if phase == 'missing' else world.names_file,
                'window': cfg['search_window'] if phase == 'missing' else cfg['window'],
                'timeout': cfg['timeout'], 'expect': n}
        cmd = [sys.executable, os.path.join(HERE, 'scale_clients.py'), contender, phase,
               json.dumps(args)]
    with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        t_start = time.time()
        proc = subprocess.Popen(cmd, stdout=fout, stderr=ferr, stdin=subprocess.DEVNULL, env=env)
        try:
            proc.wait(cfg['proc_timeout'])
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            fout.seek(0)
            partial = fout.read().decode(errors='replace').strip().splitlines()
            res = _last_json(partial)
            if res is not None and 'exit_start' in res:
                res.update(status='error', note='hung at exit (killed after %.0f s)'
                           % (time.time() - res['exit_start']))
                return res
            return {'status': 'error', 'note': 'timeout after %d s' % cfg['proc_timeout']}
        t_end = time.time()
        fout.seek(0)
        ferr.seek(0)
        lines = fout.read().decode(errors='replace').strip().splitlines()
        err = ferr.read().decode(errors='replace')
    res = _last_json(lines)
    if res is None:
        tail = [ln for ln in err.splitlines() if ln.strip()][-1:] or ['(no output)']
        return {'status': 'error', 'note': 'exit %s: %s' % (proc.returncode, tail[0][:200])}
    if 'skip' in res:
        return {'status': 'skip', 'note': res['skip']}
    if 'error' in res:
        return {'status': 'error', 'note': res['error'][:300]}
    if contender == 'raw' and phase == 'get':
        res = {'get_s': res['samples'][0], 'n': n}
    res['status'] = 'ok'
    res['wall_s'] = t_end - t_start
    res['returncode'] = proc.returncode
    if phase == 'monitor':
        res['exit_s'] = t_end - res['exit_start']
        crash = [ln for ln in err.splitlines() if 'Traceback' in ln or 'Fatal' in ln
                 or 'Segmentation' in ln or 'Abort' in ln]
        if proc.returncode != 0 or crash:
            res['exit_problem'] = 'exit status %s%s' % (proc.returncode,
                                                        ('; stderr: ' + crash[0]) if crash else '')
    if phase == 'missing':
        t0, t1 = res['window_start'], res['window_end']
        dgrams, searches = world.counter.count(t0, t1)
        res.update(datagrams=dgrams, searches=searches,
                   datagrams_per_s=dgrams / (t1 - t0), searches_per_s=searches / (t1 - t0))
        # the second half of the window: by then the served names have connected (the
        # first half can still hold the tail of their searches), what is left is the
        # re-searching of the missing names
        tm = (t0 + t1) / 2
        d2, s2 = world.counter.count(tm, t1)
        res.update(late_datagrams_per_s=d2 / (t1 - tm), late_searches_per_s=s2 / (t1 - tm))
    return res


def _last_json(lines):
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


# ------------------------------------------------------------------------------ report
def derive(res, n):
    """Figures of one monitor-phase result."""
    out = {}
    if res.get('status') != 'ok':
        return out
    if 'rss_conn_MB' in res:
        out['rss_conn_per_1000'] = (res['rss_conn_MB'] - res['rss0_MB']) / n * 1000
        out['rss_sub_per_1000'] = (res['rss_sub_MB'] - res['rss0_MB']) / n * 1000
    if 'cpu_s' in res:
        out['cpu_pct'] = 100.0 * res['cpu_s'] / res['window_s']
        out['recv_ratio'] = res['received'] / res['generated'] if res['generated'] else None
        out['updates_per_s'] = res['received'] / res['window_s']
    return out


def report(results, contenders, cfg):
    n = cfg['nioc'] * cfg['nper']
    raw = results.get('raw', {})
    rawd = derive(raw.get('monitor', {}), n)
    lines = ['', 'scale: %d IOCs x %d calc records = %d PVs, scan %d s (%d updates/s offered), one client '
             'process' % (cfg['nioc'], cfg['nper'], n, cfg['scan'], n // cfg['scan']),
             '  /raw = contender / raw libca (times, MB, CPU: lower is better)']

    def ratio(a, b):
        return '%.2f' % (a / b) if (a is not None and b) else '-'

    def cell(c, phase):
        return results.get(c, {}).get(phase, {})

    # 1. connect / first value
    lines += ['', 'connect all, first value of all (cold process each)',
              '  %-32s %10s %6s %10s %6s %8s' % ('contender', 'connect s', '/raw', 'get s', '/raw', 'wall s')]
    for c in contenders:
        m, g = cell(c, 'monitor'), cell(c, 'get')
        cs = m.get('connect_s') if m.get('status') == 'ok' else None
        gs = g.get('get_s') if g.get('status') == 'ok' else None
        lines.append('  %-32s %10s %6s %10s %6s %8s' % (
            LABEL[c], '%.2f' % cs if cs is not None else _why(m), ratio(cs, raw.get('monitor', {}).get('connect_s')),
            '%.2f' % gs if gs is not None else _why(g), ratio(gs, raw.get('get', {}).get('get_s')),
            '%.1f' % g['wall_s'] if g.get('status') == 'ok' else '-'))
    # 2. memory, CPU, updates, exit
    lines += ['', 'RSS growth per 1,000 channels; callbacks on every update over %.0f s; exit with all live'
              % cfg['window'],
              '  %-32s %9s %6s %9s %7s %6s %9s %10s %7s' % (
                  'contender', 'MB/1k con', '/raw', 'MB/1k sub', 'CPU %', '/raw', 'upd/s', 'recv/gen', 'exit s')]
    for c in contenders:
        m = cell(c, 'monitor')
        if m.get('status') != 'ok':
            lines.append('  %-32s %s' % (LABEL[c], _why(m, long=True)))
            continue
        d = derive(m, n)
        lines.append('  %-32s %9.3f %6s %9.3f %7.1f %6s %9.0f %10s %7.2f%s' % (
            LABEL[c], d['rss_conn_per_1000'], ratio(d['rss_conn_per_1000'], rawd.get('rss_conn_per_1000')),
            d['rss_sub_per_1000'], d['cpu_pct'], ratio(d['cpu_pct'], rawd.get('cpu_pct')),
            d['updates_per_s'], '%.4f' % d['recv_ratio'] if d['recv_ratio'] is not None else '-',
            m['exit_s'], ('  ' + m['exit_problem']) if m.get('exit_problem') else ''))
    # 3. missing names
    lines += ['', '%d of the names missing: timeout %.0f s; then search traffic over %.0f s'
              % (cfg['nmiss'], cfg['timeout'], cfg['search_window']),
              '  %-32s %10s %10s %10s %9s %6s %9s %6s %10s %6s' % (
                  'contender', 'at timeout', 'rest s', 'connected', 'dgrams/s', '/raw', 'search/s', '/raw',
                  'late dg/s', '/raw')]
    rm = cell('raw', 'missing')
    for c in contenders:
        m = cell(c, 'missing')
        if m.get('status') != 'ok':
            lines.append('  %-32s %s' % (LABEL[c], _why(m, long=True)))
            continue
        lines.append('  %-32s %10d %10s %10d %9.2f %6s %9.1f %6s %10.2f %6s' % (
            LABEL[c], m['at_timeout'], '%.2f%s' % (m['rest_s'], '*' if m.get('list_call') else ''),
            m['connected'],
            m['datagrams_per_s'], ratio(m['datagrams_per_s'], rm.get('datagrams_per_s')),
            m['searches_per_s'], ratio(m['searches_per_s'], rm.get('searches_per_s')),
            m['late_datagrams_per_s'], ratio(m['late_datagrams_per_s'], rm.get('late_datagrams_per_s'))))
    lines.append('  at timeout: served names connected when the timeout ran out; rest s / connected: when '
                 'the last of the %d served names connected and how many did, by the end of the search '
                 'window; * = a list call (connect/caget of all names with timeout, throw=False): when it '
                 'returned and how many it returned' % n)
    lines.append('  dgrams/s, search/s: UDP search datagrams (and CA search requests in them) the client sent '
                 'to one address of its EPICS_CA_ADDR_LIST during the window (it sends the same to each of '
                 'the %d); late dg/s: datagrams/s in the second half of the window only' % (cfg['nioc'] + 1))
    return '\n'.join(lines)


def _why(cell, long=False):
    if not cell:
        return '-'
    if cell.get('status') == 'ok':
        return 'ok'
    note = cell.get('note', '')
    if cell.get('status') == 'skip':
        return ('skipped: ' + note) if long else 'n/a'
    return ('error: ' + note) if long else 'error'


def run_scale(rawca, base_env, quick, contenders, log, phases=PHASES):
    """Run the workload; returns (results, cfg, table text)."""
    cfg = settings(quick)
    world = World(cfg, rawca, base_env, log)
    results = {c: {} for c in contenders}
    try:
        for c in contenders:
            for phase in phases:
                t0 = time.time()
                res = run_phase(world, c, phase)
                results[c][phase] = res
                if res['status'] == 'ok':
                    desc = ', '.join('%s=%s' % (k, ('%.3g' % v) if isinstance(v, float) else v)
                                     for k, v in res.items()
                                     if k in ('connect_s', 'get_s', 'cpu_s', 'received', 'generated',
                                              'exit_s', 'rest_s', 'connected', 'datagrams', 'searches'))
                else:
                    desc = '%s: %s' % (res['status'], res.get('note'))
                log('scale: %-10s %-8s %s  (%.1f s)' % (c, phase, desc, time.time() - t0))
    finally:
        world.close()
    return results, cfg, report(results, contenders, cfg)
