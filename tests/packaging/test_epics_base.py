"""Building the C extension against a site EPICS base instead of epicscorelibs.

The site base is a tree with the layout of an installed EPICS base
(``include/``, ``include/os/Linux``, ``include/compiler/gcc``,
``lib/linux-x86_64``), assembled from epicscorelibs' headers and libraries:
the OS- and compiler-specific headers live only in their subdirectories, so
the build fails unless setup.py searches them like EPICS' own build does.
"""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from pkgtools import ARCH, run

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the site-base tree is assembled for Linux/gcc")


GET_CODE = r"""
import os, warnings
warnings.simplefilter("error")
import CaChannel
from CaChannel import ca
assert ca.backend == "cext", ca.backend
assert ca.create_context(True) == ca.ECA_NORMAL
status, chid = ca.create_channel("catest")
assert ca.pend_io(5) == ca.ECA_NORMAL, "no connection to the test IOC"
status, value = ca.get(chid)
assert ca.pend_io(5) == ca.ECA_NORMAL
libca = sorted({l.split()[-1] for l in open("/proc/self/maps") if "/libca.so" in l})
print(os.path.realpath(ca.__file__)); print(libca); print(float(value.get()))
"""


def test_extension_against_site_epics_base(dists, builder, site_base, tmp_path, softioc):
    env = builder.env(EPICS_BASE=site_base, EPICS_HOST_ARCH=ARCH, CACHANNEL_EXTENSION_REQUIRED=1)
    run([builder.python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", tmp_path / "w", dists.sdist], env=env, timeout=600)
    (wheel,) = (tmp_path / "w").glob("*.whl")
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(tmp_path / "site")
    (ext,) = (tmp_path / "site" / "CaChannel").glob("_ca.*.so")
    libdir = str(site_base / "lib" / ARCH)

    # linked to the tree's libca/libCom, found through the rpath, not epicscorelibs'
    ldd = subprocess.run(["ldd", str(ext)], capture_output=True, text=True, timeout=60,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}).stdout
    resolved = {l.split()[0].split(".so")[0]: l.split("=>")[1].split()[0]
                for l in ldd.splitlines() if "=>" in l}
    assert resolved["libca"].startswith(libdir + "/"), ldd
    assert resolved["libCom"].startswith(libdir + "/"), ldd
    assert "epicscorelibs" not in ldd, ldd

    # and the get against the session IOC runs on that extension and that libca
    proc = run([builder.python, "-c", GET_CODE],
               env=builder.env(PYTHONPATH=tmp_path / "site", EPICS_BASE=site_base,
                               EPICS_HOST_ARCH=ARCH), timeout=120)
    where, libca, value = proc.stdout.splitlines()
    assert where.startswith(str(tmp_path / "site")), where
    assert libdir in libca and "epicscorelibs" not in libca, libca
    float(value)


def test_site_base_tree_really_needs_the_os_and_compiler_dirs(site_base):
    """The tree is not a flat copy: without include/os/Linux cadef.h cannot compile."""
    inc = site_base / "include"
    assert not list(inc.glob("osdThread.h")) and (inc / "os" / "Linux" / "osdThread.h").exists()
    assert (inc / "compiler" / "gcc" / "compilerSpecific.h").exists()
    src = '#include "cadef.h"\nint main(void) { return ca_context_create(0); }\n'
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    flat = subprocess.run([cc, "-fsyntax-only", "-I", str(inc), "-x", "c", "-"], input=src,
                          capture_output=True, text=True, timeout=60)
    assert flat.returncode != 0
    full = subprocess.run([cc, "-fsyntax-only", "-I", str(inc), "-I", str(inc / "os" / "Linux"),
                           "-I", str(inc / "compiler" / "gcc"), "-x", "c", "-"], input=src,
                          capture_output=True, text=True, timeout=60)
    assert full.returncode == 0, full.stderr
