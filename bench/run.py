#!/usr/bin/env python
"""CaChannel benchmark: CaChannel (C and cffi backends) against raw libca, pyepics, caproto and repics.

    python bench/run.py [--quick] [--json out.json] [--contenders raw,cext,...] [--workloads big_get,...] [--serve]

Starts ONE soft IOC (epicscorelibs) on loopback with free ports, compiles bench/rawca.c,
then runs every workload for every contender, each in its own subprocess, and prints a
table of medians with the ratios to raw libca and to pyepics (see bench/README.md).
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scale  # noqa: E402  (bench/scale.py: the 100,000-PV workload)

N_CONNECT = 5000
PV = {
    'big': 'bench:big',
    'img': 'bench:img',
    'ao': 'bench:ao',
    'mon': 'bench:mon',
    'mimg': 'bench:mimg',
    'conn_prefix': 'bench:c:',
}

# key, label, unit kind ('time': lower is better, 'rate': higher is better)
WORKLOADS = [
    ('big_get', 'a. get 4,000,000-element DOUBLE waveform -> numpy (time per get)', 'time'),
    ('image_get', 'b. get 1024x1024 USHORT image, native type (DBR_LONG on the wire; time per get)', 'time'),
    ('scalar_get', 'c. synchronous scalar get + pend_io round trips', 'rate'),
    ('put_cb', 'd. put with callback, wait for callback, repeat', 'rate'),
    ('connect', 'e. connect 5,000 channels (create all, wait all connected)', 'time'),
    ('monitor', 'f. scalar monitor events delivered to callback (writer flooding)', 'rate'),
    ('monitor_image', 'g. image monitor frames delivered to callback (writer flooding)', 'rate'),
]
WORKLOAD_KIND = {k: kind for k, _, kind in WORKLOADS}

CONTENDERS = [
    ('raw', 'raw libca (C)'),
    ('cext', 'CaChannel C backend'),
    ('cext_out', 'CaChannel C backend out='),
    ('caffi', 'CaChannel cffi backend'),
    ('pyepics', 'pyepics (epics.ca)'),
    ('caproto', 'caproto threading'),
    ('repics', 'repics (Rust, no libca)'),
]
CONTENDER_LABEL = dict(CONTENDERS)
ARRAY_ONLY = {'cext_out'}  # contenders that only make sense for workloads a and b

# (contender, workload or '*', reference, op, factor); ratio = contender / reference
TARGETS = [
    ('cext', 'big_get', 'raw', '<=', 1.10),
    ('cext_out', 'big_get', 'raw', '<=', 1.10),
    ('cext', 'scalar_get', 'raw', '>=', 0.85),
    ('cext', 'monitor', 'raw', '>=', 0.80),
    ('cext', 'monitor_image', 'raw', '>=', 0.80),
    ('cext', 'connect', 'raw', '<=', 1.20),
    ('cext', '*', 'pyepics', '2x', 2.0),
    ('cext_out', '*', 'pyepics', '2x', 2.0),
    ('caffi', 'big_get', 'raw', '<=', 1.50),
]


def settings(quick):
    """repeats / window (s) per workload; connect repeats = separate processes."""
    if quick:
        return {
            'big_get': dict(repeats=3), 'image_get': dict(repeats=3),
            'scalar_get': dict(repeats=3, window=0.2), 'put_cb': dict(repeats=3, window=0.2),
            'connect': dict(repeats=1), 'monitor': dict(repeats=3, window=0.3),
            'monitor_image': dict(repeats=3, window=0.3),
        }
    return {
        'big_get': dict(repeats=10), 'image_get': dict(repeats=15),
        'scalar_get': dict(repeats=5, window=0.5), 'put_cb': dict(repeats=5, window=0.5),
        'connect': dict(repeats=5), 'monitor': dict(repeats=5, window=0.6),
        'monitor_image': dict(repeats=5, window=0.6),
    }


def log(msg):
    sys.stderr.write(msg + '\n')
    sys.stderr.flush()


# ------------------------------------------------------------------------------------------------
# environment: ports, build, IOC
# ------------------------------------------------------------------------------------------------
def free_port(exclude=()):
    """A port number free for both TCP and UDP on 127.0.0.1."""
    for _ in range(200):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(('127.0.0.1', 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(('127.0.0.1', port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        if port not in exclude:
            return port
    raise RuntimeError('no free port')


def start_repeater(rawca, env):
    """Our own CA repeater (``rawca repeater``) on the private port of ``env``:
    clients then never spawn a stray caRepeater that would hold their pipes."""
    proc = subprocess.Popen([rawca, 'repeater'], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    time.sleep(0.3)
    return proc


def stop_repeater(proc):
    """Stop what :func:`start_repeater` started (None: nothing)."""
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def bench_ioc(name, check_pv, fill=()):
    """The bench's world, torn down on exit: ``rawca`` built in a temporary
    directory, a private CA repeater, the bench IOC (``bench.db`` plus the
    connect records) checked through ``check_pv`` and, with ``fill``, those
    arrays written with the reference data. Yields ``(rawca, client_env)``."""
    builddir = tempfile.mkdtemp(prefix='cachannel-%s-' % name)
    ioc = repeater = None
    try:
        rawca = compile_rawca(builddir)
        ca_port, pva_port, ioc_env, client_env = bench_envs()
        repeater = start_repeater(rawca, client_env)
        log('%s: starting IOC on 127.0.0.1:%d (CA), %d (PVA)' % (name, ca_port, pva_port))
        ioc = Ioc(builddir, ioc_env)
        ioc.start()
        res, err = run_json([rawca, 'check', check_pv], client_env, 30)
        if err:
            raise RuntimeError('IOC not reachable: ' + err)
        if fill:
            log('%s: IOC pid %d running; writing reference data' % (name, ioc.proc.pid))
            res, err = run_json([rawca, 'fill'] + list(fill), client_env, 60)
            if err:
                raise RuntimeError('fill failed: ' + err)
        yield rawca, client_env
    finally:
        if ioc:
            ioc.stop()
        stop_repeater(repeater)
        shutil.rmtree(builddir, ignore_errors=True)


def compile_rawca(builddir):
    import epicscorelibs.path as ep
    inc = ep.include_path
    incs = [inc] + [d for d in (os.path.join(inc, 'os', 'Linux'), os.path.join(inc, 'compiler', 'gcc'))
                    if os.path.isdir(d)]
    exe = os.path.join(builddir, 'rawca')
    cmd = ['gcc', '-O2', '-o', exe, os.path.join(HERE, 'rawca.c')]
    cmd += ['-I' + d for d in incs]
    cmd += ['-L' + ep.lib_path, '-lca', '-lCom', '-Wl,-rpath,' + ep.lib_path]
    subprocess.run(cmd, check=True)
    return exe


class Ioc:
    def __init__(self, builddir, env):
        self.builddir = builddir
        self.env = env
        self.proc = None
        self.output = []
        self.running = threading.Event()

    def start(self, timeout=60.0):
        conn_db = os.path.join(self.builddir, 'connect.db')
        with open(conn_db, 'w') as f:
            for i in range(N_CONNECT):
                f.write('record(ao, "%s%d") {}\n' % (PV['conn_prefix'], i))
        cmd = [sys.executable, '-m', 'epicscorelibs.ioc',
               '-d', os.path.join(HERE, 'bench.db'), '-d', conn_db]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=self.env)
        threading.Thread(target=self._drain, daemon=True).start()
        if not self.running.wait(timeout):
            self.stop()
            raise RuntimeError('IOC did not start:\n' + ''.join(self.output[-30:]))

    def _drain(self):
        for line in iter(self.proc.stdout.readline, b''):
            text = line.decode(errors='replace')
            self.output.append(text)
            if 'IOC Running' in text:
                self.running.set()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.close()  # the console exits on EOF
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def base_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(('EPICS_CA', 'EPICS_PVA', 'CACHANNEL_')):
            del env[k]
    env['PYTHONUNBUFFERED'] = '1'
    return env


# ------------------------------------------------------------------------------------------------
# running one measurement
# ------------------------------------------------------------------------------------------------

def bench_envs():
    """Free loopback ports and the environments of the bench IOC and its clients.

    Returns ``(ca_port, pva_port, ioc_env, client_env)``: the IOC serves CA and
    PVA on private ports of 127.0.0.1 only, the clients search only it and use a
    private repeater port (the harness runs its own repeater there).
    """
    ports = []
    for _ in range(4):
        ports.append(free_port(ports))
    ca_port, repeater_port, pva_port, pva_bcast = ports
    env = base_env()
    common = {
        'EPICS_CA_MAX_ARRAY_BYTES': '100000000',
        'EPICS_CA_REPEATER_PORT': str(repeater_port),
        'EPICS_PVA_SERVER_PORT': str(pva_port),
        'EPICS_PVA_BROADCAST_PORT': str(pva_bcast),
        'EPICS_PVA_AUTO_ADDR_LIST': 'NO',
        'EPICS_PVA_ADDR_LIST': '127.0.0.1',
    }
    ioc_env = dict(env, **common)
    ioc_env.update({
        'EPICS_CA_SERVER_PORT': str(ca_port),
        'EPICS_CAS_INTF_ADDR_LIST': '127.0.0.1',
        'EPICS_CAS_AUTO_BEACON_ADDR_LIST': 'NO',
        'EPICS_CAS_BEACON_ADDR_LIST': '127.0.0.1',
        'EPICS_PVAS_INTF_ADDR_LIST': '127.0.0.1',
        'EPICS_PVAS_AUTO_BEACON_ADDR_LIST': 'NO',
        'EPICS_PVAS_BEACON_ADDR_LIST': '127.0.0.1',
        'EPICS_PVAS_SERVER_PORT': str(pva_port),
        'EPICS_PVAS_BROADCAST_PORT': str(pva_bcast),
    })
    client_env = dict(env, **common)
    client_env.update({
        'EPICS_CA_ADDR_LIST': '127.0.0.1:%d' % ca_port,
        'EPICS_CA_AUTO_ADDR_LIST': 'NO',
    })
    return ca_port, pva_port, ioc_env, client_env


def run_json(cmd, env, timeout):
    """Run cmd, return (parsed last-line JSON or None, error text or None).

    Output goes to temporary files, not pipes: a grandchild that inherits the
    descriptors (e.g. a caRepeater spawned by libca) must not block us."""
    with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        proc = subprocess.Popen(cmd, stdout=fout, stderr=ferr, stdin=subprocess.DEVNULL, env=env)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return None, 'timeout after %.0f s' % timeout
        fout.seek(0)
        ferr.seek(0)
        out = fout.read().decode(errors='replace').strip()
        err = ferr.read().decode(errors='replace').strip()
    result = None
    if out:
        try:
            result = json.loads(out.splitlines()[-1])
        except ValueError:
            pass
    if proc.returncode != 0 or result is None:
        msg = (result or {}).get('error') if isinstance(result, dict) else None
        if not msg:
            tail = [l for l in err.splitlines() if l.strip()][-1:] or ['(no output)']
            msg = 'exit %s: %s' % (proc.returncode, tail[0])
        return None, msg[:300]
    if 'error' in result:
        return None, result['error']
    return result, None


class Writer:
    """The raw-libca writer process that floods a PV during monitor workloads."""

    def __init__(self, rawca, pv, env):
        self.out = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([rawca, 'writer', pv], stdout=self.out,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError('writer exited with %s' % self.proc.returncode)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None
        self.out.seek(0)
        try:
            return json.loads(self.out.read().decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None
        finally:
            self.out.close()


def measure(contender, workload, cfg, rawca, client_env, quick):
    """Returns a result dict: {status: ok|skip|error, samples, unit, median, extra, note}."""
    env = dict(client_env)
    if contender == 'caffi':
        env['CACHANNEL_BACKEND'] = 'caffi'
    if contender in ARRAY_ONLY and workload not in ('big_get', 'image_get'):
        return {'status': 'skip', 'note': 'n/a (out= is for array gets)'}
    pv = {'big_get': PV['big'], 'image_get': PV['img'], 'scalar_get': PV['ao'], 'put_cb': PV['ao'],
          'monitor': PV['mon'], 'monitor_image': PV['mimg'], 'connect': PV['conn_prefix']}[workload]
    repeats, window = cfg['repeats'], cfg.get('window', 1.0)
    timeout = 60 if quick else 90

    def one(reps):
        if contender == 'raw':
            if workload == 'connect':
                cmd = [rawca, 'connect', pv, str(N_CONNECT)]
            else:
                cmd = [rawca, workload, pv, str(reps), str(window)]
        else:
            args = {'pv': pv, 'repeats': reps, 'window': window, 'prefix': pv, 'n': N_CONNECT}
            cmd = [sys.executable, os.path.join(HERE, 'contenders.py'), contender, workload,
                   json.dumps(args)]
        return run_json(cmd, env, timeout)

    if workload == 'connect':
        # every connect sample is a fresh process (fresh libca context / client)
        return cell_of_processes(one, repeats)
    writes = workload in ('monitor', 'monitor_image')
    return cell_of_run(one, repeats, (lambda: Writer(rawca, pv, client_env)) if writes else None)


def cell_of_processes(one, n):
    """The cell of ``n`` fresh processes, ``one(1)`` each (a cold client per
    sample), their samples pooled; ``one`` returns ``(result, error)``."""
    samples, unit, extra = [], 's', {}
    for _ in range(n):
        res, err = one(1)
        if err:
            return {'status': 'skip' if err == 'n/a' else 'error', 'note': err}
        if 'skip' in res:
            return {'status': 'skip', 'note': res['skip']}
        samples += res['samples']
        unit, extra = res.get('unit', unit), res.get('extra', {})
    return ok_cell({'samples': samples, 'unit': unit, 'extra': extra})


def cell_of_run(one, repeats, start_writer=None):
    """The cell of one process, ``one(repeats)``; with ``start_writer`` a
    writer (:class:`Writer`) runs meanwhile and its figures go into the cell."""
    writer = writer_info = None
    if start_writer is not None:
        try:
            writer = start_writer()
        except Exception as exc:
            return {'status': 'error', 'note': 'writer: %s' % exc}
    try:
        res, err = one(repeats)
    finally:
        if writer:
            writer_info = writer.stop()
    if err:
        return {'status': 'error', 'note': err}
    if 'skip' in res:
        return {'status': 'skip', 'note': res['skip']}
    return ok_cell(res, writer_info)


def ok_cell(res, writer_info=None):
    """The result cell of a measured workload: samples, unit, median, min, max, extra."""
    samples = res['samples']
    out = {'status': 'ok', 'samples': samples, 'unit': res['unit'],
           'median': statistics.median(samples), 'min': min(samples), 'max': max(samples),
           'extra': res.get('extra', {})}
    if writer_info:
        out['writer'] = writer_info
    return out


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------
def fmt_value(v, unit):
    if unit == 's':
        if v < 1e-3:
            return '%.1f us' % (v * 1e6)
        if v < 1.0:
            return '%.2f ms' % (v * 1e3)
        return '%.3f s' % v
    if v >= 1000:
        return '%.0f %s' % (v, unit)
    return '%.1f %s' % (v, unit)


def evaluate_targets(results):
    """List of dicts: contender, workload, text, ratio, met (True/False/None)."""
    out = []
    for contender, wl, ref, op, factor in TARGETS:
        workloads = [w for w, _, _ in WORKLOADS] if wl == '*' else [wl]
        for w in workloads:
            if contender in ARRAY_ONLY and w not in ('big_get', 'image_get'):
                continue
            kind = WORKLOAD_KIND[w]
            cell = results.get(contender, {}).get(w)
            refcell = results.get(ref, {}).get(w)
            if op == '2x':
                # >= 2x better than pyepics: times contender/ref <= 1/2, rates contender/ref >= 2
                op_eff, fac = ('<=', 1.0 / factor) if kind == 'time' else ('>=', factor)
                text = '>=2x pyepics (%s %s %.2f)' % ('x/pyepics', op_eff, fac)
            else:
                op_eff, fac = op, factor
                text = '%s %.2f x %s' % (op, factor, ref)
            ratio = met = None
            if cell and refcell and cell.get('status') == 'ok' and refcell.get('status') == 'ok':
                ratio = cell['median'] / refcell['median']
                met = ratio <= fac if op_eff == '<=' else ratio >= fac
            out.append({'contender': contender, 'workload': w, 'target': text, 'ratio': ratio, 'met': met})
    return out


def report(results, targets, contenders, workloads):
    lines = []
    w = lines.append
    w('')
    w('CaChannel benchmark - medians; ratio columns = contender median / reference median')
    w('  time workloads (a, b, e): lower is better -> /raw < 1 beats raw libca, /pyepics < 0.5 is >=2x pyepics')
    w('  rate workloads (c, d, f, g): higher is better -> /raw > 1 beats raw libca, /pyepics > 2 is >=2x pyepics')
    tmap = {}
    for t in targets:
        tmap.setdefault((t['contender'], t['workload']), []).append(t)
    for key, label, kind in WORKLOADS:
        if key not in workloads:
            continue
        w('')
        w(label + ('   [lower is better]' if kind == 'time' else '   [higher is better]'))
        w('  %-26s %-16s %-22s %8s %9s  %s' % ('contender', 'median', 'min..max', '/raw', '/pyepics', 'targets'))
        raw = results.get('raw', {}).get(key, {})
        pye = results.get('pyepics', {}).get(key, {})
        for c in contenders:
            cell = results.get(c, {}).get(key)
            if cell is None:
                continue
            if cell['status'] != 'ok':
                prefix = 'error: ' if cell['status'] == 'error' else 'skipped: '
                w('  %-26s %s%s' % (CONTENDER_LABEL[c], prefix, cell.get('note', '')))
                continue
            unit = cell['unit']
            rr = '%.2f' % (cell['median'] / raw['median']) if raw.get('status') == 'ok' else '-'
            rp = '%.2f' % (cell['median'] / pye['median']) if pye.get('status') == 'ok' else '-'
            span = '%s..%s' % (fmt_value(cell['min'], unit).split()[0], fmt_value(cell['max'], unit))
            tt = []
            for t in tmap.get((c, key), []):
                state = 'n/a' if t['met'] is None else ('MET' if t['met'] else 'MISSED')
                tt.append('%s: %s' % (t['target'], state))
            w('  %-26s %-16s %-22s %8s %9s  %s' % (CONTENDER_LABEL[c], fmt_value(cell['median'], unit),
                                                  span, rr, rp, '; '.join(tt)))
            if cell.get('writer'):
                cell_w = cell['writer']
                w('  %-26s   (writer: %.0f puts/s during this run)' % ('', cell_w.get('rate', 0)))
    w('')
    w('Targets')
    for t in targets:
        if t['workload'] not in workloads or t['contender'] not in contenders:
            continue
        state = 'n/a (no data)' if t['met'] is None else ('MET' if t['met'] else 'MISSED')
        ratio = '-' if t['ratio'] is None else '%.2f' % t['ratio']
        w('  %-26s %-14s %-32s ratio %6s  %s' % (CONTENDER_LABEL[t['contender']], t['workload'],
                                                  t['target'], ratio, state))
    return '\n'.join(lines)


def serve(rawca, client_env):
    print('# bench IOC running; in another shell:')
    for k in sorted(client_env):
        if k.startswith('EPICS_CA'):
            print('export %s=%s' % (k, client_env[k]))
    print('# rawca binary (deleted on exit): %s' % rawca)
    print("# e.g. python bench/contenders.py cext connect '{\"prefix\": \"bench:c:\", \"n\": 5000}'")
    print('# Ctrl-C stops the IOC')
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


# ------------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='short smoke run (fewer repeats, short windows)')
    ap.add_argument('--json', default=os.path.join(HERE, 'results', 'latest.json'),
                    help='where to write the JSON results (default bench/results/latest.json)')
    ap.add_argument('--serve', action='store_true',
                    help='only start the bench IOC, print the client environment and wait (Ctrl-C '
                         'stops it); for profiling contenders by hand')
    ap.add_argument('--contenders', default=','.join(c for c, _ in CONTENDERS),
                    help='comma list of: ' + ','.join(c for c, _ in CONTENDERS))
    ap.add_argument('--workloads', default=','.join([k for k, _, _ in WORKLOADS] + ['scale']),
                    help='comma list of: ' + ','.join([k for k, _, _ in WORKLOADS] + ['scale']))
    ap.add_argument('--scale-contenders', default=None,
                    help='comma list for the scale workload (default: all of them; see '
                         'bench/scale.py): ' + ','.join(c for c, _ in scale.CONTENDERS))
    ap.add_argument('--scale-phases', default=','.join(scale.PHASES),
                    help='comma list of the scale phases to run: ' + ','.join(scale.PHASES))
    opts = ap.parse_args()
    contenders = [c for c in opts.contenders.split(',') if c]
    workloads = [w for w in opts.workloads.split(',') if w]
    for c in contenders:
        if c not in CONTENDER_LABEL:
            ap.error('unknown contender %r' % c)
    for wl in workloads:
        if wl not in WORKLOAD_KIND and wl != 'scale':
            ap.error('unknown workload %r' % wl)
    cfg = settings(opts.quick)
    t_start = time.time()
    load_start = os.getloadavg()

    def on_signal(signum, frame):
        raise KeyboardInterrupt('signal %d' % signum)
    # SIGTERM (and SIGINT even when inherited as ignored) -> normal cleanup of IOC and repeater
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    results = {c: {} for c in contenders}
    classic = [w for w in workloads if w != 'scale']
    with contextlib.ExitStack() as stack:
        if classic or opts.serve:
            rawca, client_env = stack.enter_context(
                bench_ioc('bench', PV['ao'], fill=(PV['big'], PV['img'], PV['mimg'])))
        if opts.serve:
            serve(rawca, client_env)
            return

        for key, label, kind in WORKLOADS:
            if key not in workloads:
                continue
            for c in contenders:
                t0 = time.time()
                cell = measure(c, key, cfg[key], rawca, client_env, opts.quick)
                results[c][key] = cell
                desc = (fmt_value(cell['median'], cell['unit']) if cell['status'] == 'ok'
                        else '%s: %s' % (cell['status'], cell.get('note')))
                log('bench: %-13s %-9s %s  (%.1f s)' % (key, c, desc, time.time() - t0))

    scale_results = scale_cfg = None
    scale_text = ''
    if 'scale' in workloads:
        if opts.scale_contenders:
            scale_contenders = [c for c in opts.scale_contenders.split(',') if c]
        else:
            scale_contenders = [c for c, _ in scale.CONTENDERS]
        builddir = tempfile.mkdtemp(prefix='cachannel-scale-build-')
        try:
            scale_results, scale_cfg, scale_text = scale.run_scale(
                compile_rawca(builddir), base_env(), opts.quick, scale_contenders, log,
                phases=[p for p in opts.scale_phases.split(',') if p])
        finally:
            shutil.rmtree(builddir, ignore_errors=True)

    targets = evaluate_targets(results)
    text = report(results, targets, contenders, classic) if classic else ''
    print(text + scale_text)
    elapsed = time.time() - t_start
    load_end = os.getloadavg()
    print('\ntotal wall time %.0f s%s; load average (1 min) %.1f at start, %.1f at end, %d CPUs'
          % (elapsed, ' (--quick)' if opts.quick else '', load_start[0], load_end[0], os.cpu_count()))
    if max(load_start[0], load_end[0]) > 1.5:
        print('WARNING: other load on this host - compare min..max spreads before trusting small differences')

    meta = {
        'date': datetime.datetime.now().isoformat(timespec='seconds'),
        'quick': opts.quick, 'settings': cfg, 'host': platform.node(),
        'platform': platform.platform(), 'python': sys.version.split()[0],
        'cpus': os.cpu_count(), 'wall_time_s': elapsed,
        'loadavg_start': load_start, 'loadavg_end': load_end,
        'ratio_definition': 'ratio = contender median / reference median for both times and rates; '
                            'times: lower is better, rates: higher is better',
    }
    try:
        meta['git_commit'] = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=HERE, capture_output=True,
                                            text=True).stdout.strip()
    except OSError:
        pass
    try:
        import epicscorelibs.version
        meta['epicscorelibs'] = getattr(epicscorelibs.version, 'version', None)
    except Exception:
        pass
    doc = {'meta': meta,
           'workloads': {k: {'label': l, 'kind': kind} for k, l, kind in WORKLOADS},
           'contenders': dict(CONTENDERS),
           'results': results, 'targets': targets}
    if scale_results is not None:
        doc['scale'] = {'settings': scale_cfg, 'results': scale_results,
                        'contenders': dict(scale.CONTENDERS)}
    # ratios per cell
    for c, cells in results.items():
        for k, cell in cells.items():
            if cell.get('status') != 'ok':
                continue
            for ref in ('raw', 'pyepics'):
                rc = results.get(ref, {}).get(k)
                if rc and rc.get('status') == 'ok':
                    cell['ratio_' + ref] = cell['median'] / rc['median']
    os.makedirs(os.path.dirname(os.path.abspath(opts.json)), exist_ok=True)
    with open(opts.json, 'w') as f:
        json.dump(doc, f, indent=1)
    print('JSON written to %s' % opts.json)


if __name__ == '__main__':
    main()
