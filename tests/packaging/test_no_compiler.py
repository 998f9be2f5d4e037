"""Installs where the C extension cannot (or must not) be built still work, on cffi."""
import zipfile

import CaChannel

from pkgtools import pyproject, run

FALLBACK_CODE = r"""
import os, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import CaChannel
    from CaChannel import ca
    import CaChannel.util, epicsPV
runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
assert len(runtime) == 1, [str(w.message) for w in caught]
assert "C extension is unavailable" in str(runtime[0].message), runtime[0].message
assert ca.backend == "caffi", ca.backend
here = os.path.dirname(os.path.realpath(CaChannel.__file__))
assert not [f for f in os.listdir(here) if f.startswith("_ca.") and f.endswith(".so")], here
from CaChannel import CaChannel as Chan
chan = Chan("catest"); chan.setTimeout(5.0); chan.searchw()
print(CaChannel.__version__, ca.backend, here, float(chan.getw()))
"""


def _check_fallback(python, env, origin):
    proc = run([python, "-c", FALLBACK_CODE], env=env, timeout=120)
    version, backend, where, value = proc.stdout.split()
    assert (version, backend) == (CaChannel.__version__, "caffi")
    assert where.startswith(str(origin)), (where, origin)
    float(value)


def test_pip_install_sdist_without_compiler(dists, fresh_venv, softioc):
    """``pip install`` of the sdist with a C compiler that does not exist.

    The build requirements are installed first and the build runs without
    isolation: the same setup.py paths as an isolated build (which the
    ``dists`` fixture already exercises), at half the unpacking cost.
    """
    venv = fresh_venv("nocc")
    venv.pip("install", "-q", *pyproject()["build-system"]["requires"], timeout=900)
    proc = venv.pip("install", "-v", "--no-build-isolation", dists.sdist,
                    env=venv.env(CC="/nonexistent/cc"), timeout=900)
    assert "C extension could not be built" in proc.stdout + proc.stderr
    site = venv.site_packages()
    assert not list((site / "CaChannel").glob("_ca.*.so"))
    assert (venv.bin / "caRepeater").exists()
    _check_fallback(venv.python, venv.env(), site)


def test_extension_required_makes_a_failed_compile_fatal(dists, builder, tmp_path):
    proc = builder.pip("wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path, dists.sdist,
                       env=builder.env(CC="/nonexistent/cc", CACHANNEL_EXTENSION_REQUIRED="1"),
                       check=False, timeout=600)
    assert proc.returncode != 0
    assert "/nonexistent/cc" in proc.stdout + proc.stderr
    assert not list(tmp_path.glob("*.whl"))


def test_failed_compile_warns_in_the_build_log(dists, builder, tmp_path):
    proc = builder.pip("wheel", "-v", "--no-deps", "--no-build-isolation", "-w", tmp_path,
                       dists.sdist, env=builder.env(CC="/nonexistent/cc"), timeout=600)
    assert "C extension could not be built" in proc.stdout + proc.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as whl:
        assert not [n for n in whl.namelist() if n.endswith(".so")]


def test_no_extension_switch(dists, builder, tmp_path, softioc):
    """``CACHANNEL_NO_EXTENSION=1``: no compile at all, a wheel without the extension."""
    proc = builder.pip("wheel", "-v", "--no-deps", "--no-build-isolation", "-w", tmp_path / "w",
                       dists.sdist, env=builder.env(CACHANNEL_NO_EXTENSION="1",
                                                    CC="/nonexistent/cc"), timeout=600)
    assert "C extension could not be built" not in proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "w").glob("*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        whl.extractall(tmp_path / "site")
    assert not [n for n in names if n.endswith(".so")]
    assert "CaChannel/_cffi/_bindings.py" in names
    _check_fallback(builder.python, builder.env(PYTHONPATH=tmp_path / "site"), tmp_path / "site")
