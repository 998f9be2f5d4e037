"""sdist and wheel from ``python -m build``; the wheel in a fresh venv, on the C extension."""
import email.parser
import re
import tarfile
import zipfile

import CaChannel

from pkgtools import REPO, run

VERSION = CaChannel.__version__

GET_CODE = r"""
import os, sys, warnings
warnings.simplefilter("error")          # the C extension must load: no fallback warning
import CaChannel
from CaChannel import ca
assert os.path.realpath(CaChannel.__file__).startswith(os.path.realpath(sys.prefix)), CaChannel.__file__
assert ca.backend == "cext", ca.backend
assert ca.create_context(True) == ca.ECA_NORMAL
status, chid = ca.create_channel("catest")
assert status == ca.ECA_NORMAL, status
assert ca.pend_io(5) == ca.ECA_NORMAL, "no connection to the test IOC"
status, value = ca.get(chid)
assert ca.pend_io(5) == ca.ECA_NORMAL
maps = open("/proc/self/maps").read()
libca = sorted({l.split()[-1] for l in maps.splitlines() if "/libca.so" in l})
from CaChannel import CaChannel as Chan
chan = Chan("catest"); chan.searchw(); hl = chan.getw()
print(CaChannel.__version__, ca.backend, float(value.get()), float(hl), libca)
"""


def _metadata(text):
    return email.parser.Parser().parsestr(text)


def test_sdist_contents_and_version(dists):
    assert dists.sdist.name.lower() == "cachannel-%s.tar.gz" % VERSION
    with tarfile.open(dists.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        pkg_info = tar.extractfile("%s/PKG-INFO" % dists.sdist_top).read().decode()
    assert _metadata(pkg_info)["Version"] == VERSION
    for needed in ("setup.py", "pyproject.toml", "README.md", "CHANGELOG.md", "MANIFEST.in",
                   "python-CaChannel.spec", "cext/cachannel.h", "cffi_backend/_bindings.py",
                   "src/CaChannel/_version.py", "src/CaChannel/testing/_iocmain.py",
                   "src/CaChannel/ca.pyi", "src/CaChannel/py.typed",
                   "conda-recipe/meta.yaml", "conda-recipe/build.sh", "conda-recipe/bld.bat",
                   "tests/test.db", "tests/test.acf"):
        assert needed in names, needed
    # every file of the C extension (setup.py lists the sources one by one)
    cext = sorted(p.name for p in (REPO / "cext").iterdir() if p.suffix in (".c", ".h"))
    assert len(cext) > 2, cext
    assert [n for n in cext if "cext/" + n not in names] == []
    junk = [n for n in names if n.endswith((".so", ".pyc", ".o")) or "__pycache__" in n
            or n.startswith(("build/", "bench/", "venv/"))]
    assert not junk, junk


def test_wheel_contents_and_version(dists):
    name = dists.wheel.name
    assert name.lower().startswith("cachannel-%s-" % VERSION), name
    assert "linux" in name and "-none-any" not in name, "the wheel must carry the C extension"
    with zipfile.ZipFile(dists.wheel) as whl:
        names = set(whl.namelist())
        dist_info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
        meta = _metadata(whl.read(dist_info + "/METADATA").decode())
        entry_points = whl.read(dist_info + "/entry_points.txt").decode()
    assert meta["Version"] == VERSION
    requires = meta.get_all("Requires-Dist")
    assert any(re.match(r"epicscorelibs\s*[<>=~]", r) for r in requires), requires
    assert any(r.startswith(("numpy", "cffi")) for r in requires), requires
    assert [n for n in names if re.match(r"CaChannel/_ca\..*\.so$", n)], sorted(names)
    for needed in ("CaChannel/__init__.py", "CaChannel/_version.py", "CaChannel/_cffi/__init__.py",
                   "CaChannel/testing/__init__.py", "ca.py", "epicsPV.py", "epicsMotor.py",
                   "CaChannel/py.typed", "CaChannel/ca.pyi"):
        assert needed in names, needed
    assert re.search(r"caRepeater\s*=\s*CaChannel\._repeater:main", entry_points)
    assert not [n for n in names if n.startswith(("tests/", "cext/"))]


def test_version_single_source():
    text = (REPO / "src/CaChannel/_version.py").read_text()
    assert re.search(r'^__version__ = "%s"$' % re.escape(VERSION), text, re.M)
    # no second literal copy of the version in the Python sources or setup.py
    for path in list((REPO / "src").rglob("*.py")) + [REPO / "setup.py"]:
        if path.name != "_version.py":
            assert VERSION not in path.read_text(), path
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(r"^## %s\b" % re.escape(VERSION), changelog, re.M), \
        "CHANGELOG.md has no entry for %s" % VERSION


def test_wheel_in_fresh_venv_gets_from_ioc_on_cext(dists, fresh_venv, softioc):
    venv = fresh_venv("wheel")
    venv.pip("install", "-q", dists.wheel, timeout=900)  # dependencies from the registry
    proc = run([venv.python, "-c", GET_CODE], env=venv.env(), timeout=120)
    version, backend, value, hl_value, libca = proc.stdout.split(None, 4)
    assert (version, backend) == (VERSION, "cext")
    assert float(value) == float(hl_value)
    assert str(venv.path) in libca and "epicscorelibs" in libca, libca
    assert (venv.bin / "caRepeater").exists()
    # the IOC really answers: change the value and read it back through the wheel
    softioc.shell("dbpf catest 7.25")
    try:
        proc = run([venv.python, "-c", GET_CODE], env=venv.env(), timeout=120)
        assert float(proc.stdout.split()[2]) == 7.25
    finally:
        softioc.shell("dbpf catest %s" % value)


def test_setup_lists_every_cext_source():
    # setup.py names the extension's sources one by one: a new file in cext/
    # must be added there or the extension fails to link
    text = (REPO / "setup.py").read_text()
    block = re.search(r"CEXT_SOURCES = .*?\)\]", text, re.S).group(0)
    listed = set(re.findall(r'"(\w+\.c)"', block))
    assert listed == {p.name for p in (REPO / "cext").glob("*.c")}
    assert (REPO / re.search(r'CEXT_HEADER = "([^"]+)"', text).group(1)).is_file()
