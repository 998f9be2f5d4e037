"""Where libca comes from, the client environment, backend selection, caRepeater."""
import glob
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time

import pytest

from CaChannel.testing import free_port

HERE = os.path.dirname(os.path.abspath(__file__))


def run_python(code, env=None, timeout=60):
    full = dict(os.environ)
    full.update(env or {})
    proc = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                          text=True, timeout=timeout)
    return proc


def test_max_array_bytes_default_is_set_and_user_value_kept():
    code = ("import os; from CaChannel import _libca as L;"
            "print(os.environ['EPICS_CA_MAX_ARRAY_BYTES'], L.DEFAULT_MAX_ARRAY_BYTES)")
    env = dict(os.environ)
    env.pop("EPICS_CA_MAX_ARRAY_BYTES", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    value, default = proc.stdout.split()
    assert int(value) == int(default) >= 4_000_000 * 8 + 1024
    proc = run_python(code, {"EPICS_CA_MAX_ARRAY_BYTES": "12345"})
    assert proc.stdout.split()[0] == "12345"


def test_libca_from_epicscorelibs_by_default():
    proc = run_python("import CaChannel.ca, CaChannel._libca as L; print(L.load())",
                      {"EPICS_BASE": "", "EPICS_HOST_ARCH": ""})
    assert proc.returncode == 0, proc.stderr
    assert "epicscorelibs" in proc.stdout


def _epics_base_tree(root):
    """An EPICS_BASE-shaped tree holding epicscorelibs' own libca and libCom."""
    from epicscorelibs import path as ecl
    arch = "linux-x86_64"
    libdir = os.path.join(root, "lib", arch)
    os.makedirs(libdir)
    for name in ("ca", "Com"):
        real = os.path.realpath(ecl.get_lib(name))
        shutil.copy2(real, os.path.join(libdir, os.path.basename(real)))
        os.symlink(os.path.basename(real), os.path.join(libdir, "lib%s.so" % name))
    shutil.copytree(ecl.include_path, os.path.join(root, "include"))
    return arch


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tree built for Linux")
def test_libca_from_site_epics_base(tmp_path, softioc):
    arch = _epics_base_tree(str(tmp_path))
    code = """
import sys
from CaChannel import ca, _libca
assert ca.backend == 'caffi', ca.backend
assert ca.create_context(True) == ca.ECA_NORMAL
status, chid = ca.create_channel('catest')
assert ca.pend_io(5) == ca.ECA_NORMAL
status, value = ca.get(chid)
assert ca.pend_io(5) == ca.ECA_NORMAL
maps = open('/proc/self/maps').read()
loaded = sorted({l.split()[-1] for l in maps.splitlines() if 'libca.so' in l})
print(_libca.load()); print(loaded); print(value.get())
"""
    proc = run_python(code, {"EPICS_BASE": str(tmp_path), "EPICS_HOST_ARCH": arch,
                             "CACHANNEL_BACKEND": "caffi"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(str(tmp_path)), lines
    assert str(tmp_path) in lines[1] and "epicscorelibs" not in lines[1], lines
    float(lines[2])


def test_site_epics_base_without_libraries_is_a_clear_error(tmp_path):
    proc = run_python("import CaChannel.ca", {"EPICS_BASE": str(tmp_path),
                                              "EPICS_HOST_ARCH": "linux-x86_64",
                                              "CACHANNEL_BACKEND": "caffi"})
    assert proc.returncode != 0
    assert "EPICS_BASE" in proc.stderr and "missing" in proc.stderr


def test_backend_selection():
    proc = run_python("from CaChannel import ca; print(ca.backend)", {"CACHANNEL_BACKEND": "caffi"})
    assert proc.stdout.strip() == "caffi", proc.stderr
    proc = run_python("import warnings; warnings.simplefilter('error');"
                      "from CaChannel import ca; print(ca.backend)", {"CACHANNEL_BACKEND": ""})
    try:
        import CaChannel._ca  # noqa: F401
        built = True
    except ImportError:
        built = False
    if built:
        assert proc.stdout.strip() == "cext", proc.stderr
    else:
        assert "RuntimeWarning" in proc.stderr or proc.stdout.strip() == "caffi"


def _udp_port_in_use(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def _repeater_pids(port):
    pids = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            env = open(d + "/environ", "rb").read().split(b"\0")
            cmd = open(d + "/cmdline", "rb").read()
        except OSError:
            continue
        if b"caRepeater" in cmd and ("EPICS_CA_REPEATER_PORT=%d" % port).encode() in env:
            pids.append(int(d.rsplit("/", 1)[1]))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_carepeater_script_is_spawned_by_libca(softioc):
    scripts = sysconfig.get_path("scripts")
    assert os.path.exists(os.path.join(scripts, "caRepeater")), "console script not installed"
    port = free_port()
    env = {"EPICS_CA_REPEATER_PORT": str(port),
           "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
    code = """
from CaChannel import ca
ca.create_context(True)
status, chid = ca.create_channel('catest')
print(ca.pend_io(5))
ca.pend_event(1.0)
"""
    full = dict(os.environ, **env)
    try:
        # files, not pipes: the repeater libca spawns inherits them and lives on
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run([sys.executable, "-c", code], env=full, stdout=err,
                                  stderr=err, timeout=60)
            err.seek(0)
            output = err.read()
        assert proc.returncode == 0, output
        assert "couldn't be located" not in output, output
        deadline = time.monotonic() + 10
        while not (_repeater_pids(port) and _udp_port_in_use(port)):
            assert time.monotonic() < deadline, \
                "no caRepeater serving port %d: %s" % (port, output)
            time.sleep(0.05)
    finally:
        for pid in _repeater_pids(port):
            os.kill(pid, signal.SIGTERM)


def test_other_epics_copies_in_the_process_do_not_crash_exit():
    """pcaspy carries a private EPICS copy; libca must not interpose on it."""
    # looked up, not imported: in this process CaChannel.aio may have loaded
    # epicscorelibs.ca.dbr, whose cadef loads libca RTLD_GLOBAL, and pcaspy's
    # private EPICS copy then binds to it and crashes (see README, asyncio)
    if importlib.util.find_spec("pcaspy") is None:
        pytest.skip("pcaspy not installed")
    proc = run_python("from CaChannel import ca; import pcaspy; print(ca.backend)")
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])


def test_exit_with_live_monitors_and_pending_callbacks(softioc):
    code = """
import os, sys
from CaChannel import ca
ca.create_context(True)
chids = [ca.create_channel(n)[1] for n in ('cacalc', 'catest', 'cawave', 'ca:bigwave')]
assert ca.pend_io(5) == ca.ECA_NORMAL
for c in chids:
    ca.create_subscription(c, lambda d: None)
ca.get(chids[3], callback=lambda d: None, use_numpy=True)
ca.put(chids[1], 2.0, callback=lambda d: None)
ca.flush_io()
ca.pend_event(0.3)
print('exiting')
"""
    for _ in range(3):
        proc = run_python(code, timeout=30)
        assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
        assert proc.stdout.strip() == "exiting"
