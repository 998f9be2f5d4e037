"""python-CaChannel.spec: ``rpmbuild -ta`` on the sdist, then the RPM's content at work.

The build runs with ``--nodeps`` (the rpm database of a Debian host knows
none of the BuildRequires) and ``__python3`` pointing at a venv holding the
build requirements, the stand-in for a build root with python3-numpy etc.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import CaChannel

from pkgtools import ARCH, REPO, run

pytestmark = [
    pytest.mark.rpm,
    pytest.mark.skipif(shutil.which("rpmbuild") is None,
                       reason="rpmbuild is not installed (apt-get install rpm / dnf install "
                              "rpm-build); .ci/run installs it"),
    pytest.mark.skipif(shutil.which("rpm2cpio") is None or shutil.which("cpio") is None,
                       reason="rpm2cpio/cpio are not installed"),
]

GET_CODE = r"""
import os, sys, warnings
warnings.simplefilter("error")
import CaChannel, epicsPV
from CaChannel import ca
assert ca.backend == "cext", ca.backend
from CaChannel import CaChannel as Chan
chan = Chan("catest"); chan.setTimeout(5.0); chan.searchw(); value = chan.getw()
print(os.path.realpath(CaChannel.__file__)); print(CaChannel.__version__); print(float(value))
"""


def rpm_version(pep440):
    return re.sub(r"\.?(dev|a|b|rc)(\d+)", r"~\1\2", pep440)


def spec_macro(name):
    text = (REPO / "python-CaChannel.spec").read_text()
    return re.search(r"^%%global\s+%s\s+(\S+)" % name, text, re.M).group(1)


def test_spec_version_is_the_package_version():
    assert spec_macro("pypi_version") == CaChannel.__version__
    assert spec_macro("sdist_name") == "cachannel"  # PEP 625 sdist name and top directory


def build_rpm(top, dists, builder, *options):
    proc = run(["rpmbuild", "-ta", "--nodeps", *options, dists.sdist,
                "--define", "_topdir %s" % top,
                "--define", "__python3 %s" % builder.python,
                "--define", "_build_id_links none"],
               env=builder.env(HOME=top), timeout=900)
    found = sorted((top / "RPMS").rglob("*.rpm"))
    main = [p for p in found if p.name.startswith("python3-CaChannel-") and "debug" not in p.name]
    assert len(main) == 1, (found, proc.stdout[-3000:])
    return main[0]


def unpack(rpm, root):
    root.mkdir()
    cpio = subprocess.Popen(["cpio", "-idm", "--quiet"], stdin=subprocess.PIPE, cwd=root)
    subprocess.run(["rpm2cpio", str(rpm)], stdout=cpio.stdin, check=True, timeout=120)
    cpio.stdin.close()
    assert cpio.wait(timeout=120) == 0
    (site,) = root.glob("usr/lib*/python3*/site-packages")
    return site


def run_env(site, **extra):
    """The running interpreter's env (numpy, cffi, epicscorelibs), the RPM's CaChannel."""
    env = dict(os.environ, PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    for key in ("CACHANNEL_BACKEND", "EPICS_BASE", "EPICS_HOST_ARCH"):
        env.pop(key, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="module")
def rpms(dists, builder, tmp_path_factory):
    return build_rpm(tmp_path_factory.mktemp("rpmbuild"), dists, builder)


def test_rpm_contents(rpms):
    version = rpm_version(CaChannel.__version__)
    assert rpms.name.startswith("python3-CaChannel-%s-1" % version), rpms.name
    files = run(["rpm", "-qlp", rpms]).stdout.splitlines()
    assert "/usr/bin/caRepeater" in files
    assert [f for f in files if re.search(r"/site-packages/CaChannel/_ca\..*\.so$", f)], files
    for needed in ("CaChannel/__init__.py", "CaChannel/_cffi/__init__.py",
                   "CaChannel/testing/__init__.py", "/ca.py", "/epicsPV.py"):
        assert [f for f in files if f.endswith(needed)], needed
    assert [f for f in files if f.endswith("CHANGELOG.md")]
    reqs = run(["rpm", "-qp", "--requires", rpms]).stdout
    for req in ("python3-numpy", "python3-cffi", "python3-epicscorelibs"):
        assert req in reqs, reqs
    assert "libca.so" not in reqs, reqs


def test_rpm_unpacked_imports_and_gets(rpms, tmp_path, softioc):
    site = unpack(rpms, tmp_path / "root")
    assert (tmp_path / "root/usr/bin/caRepeater").exists()
    proc = run([sys.executable, "-c", GET_CODE], env=run_env(site), timeout=120)
    where, version, value = proc.stdout.splitlines()
    assert where.startswith(str(Path(site))), where
    assert version == CaChannel.__version__
    float(value)


def test_rpm_with_epics_base(dists, builder, site_base, tmp_path, softioc):
    """``--with epics_base``: the extension links to the system base's libca (rpath)."""
    rpm = build_rpm(tmp_path / "top", dists, builder, "--with", "epics_base",
                    "--define", "epics_base_dir %s" % site_base,
                    "--define", "epics_host_arch %s" % ARCH)
    reqs = run(["rpm", "-qp", "--requires", rpm]).stdout.split()
    assert "epics-base" in reqs, reqs
    site = unpack(rpm, tmp_path / "root")
    (ext,) = (site / "CaChannel").glob("_ca.*.so")
    ldd = run(["ldd", ext], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}).stdout
    libdir = str(site_base / "lib" / ARCH)
    assert re.search(r"libca\.so\S* => %s/" % re.escape(libdir), ldd), ldd
    assert "epicscorelibs" not in ldd, ldd
    env = run_env(site, EPICS_BASE=site_base, EPICS_HOST_ARCH=ARCH)
    proc = run([sys.executable, "-c", GET_CODE], env=env, timeout=120)
    assert proc.stdout.splitlines()[0].startswith(str(site))
    float(proc.stdout.splitlines()[2])
