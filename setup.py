"""Build of CaChannel: metadata lives in pyproject.toml; this file adds the
C extension ``CaChannel._ca`` and the run-time pin of epicscorelibs.

The extension links to libca/libCom. Where they come from:

* default: the ``epicscorelibs`` wheel (headers and libraries); the installed
  package then requires the epicscorelibs ABI it was built against
  (``epicscorelibs.version.abi_requires()``), because the wheel's library
  version is part of the shared object names.
* ``EPICS_BASE`` and ``EPICS_HOST_ARCH`` both set: a site EPICS base, headers
  from ``$EPICS_BASE/include`` and libraries from
  ``$EPICS_BASE/lib/$EPICS_HOST_ARCH`` (linked with an rpath to that dir).

Environment switches:

* ``CACHANNEL_NO_EXTENSION=1`` skips the extension; the package then runs on
  the cffi backend (``CaChannel._cffi``).
* ``CACHANNEL_EXTENSION_REQUIRED=1`` makes a failed compile fatal. Without it
  a compile failure only prints a warning and the package is installed
  without the extension (same fallback as above).
"""
import os
import sys
import sysconfig

from setuptools_dso import Extension, setup
from setuptools_dso import build_ext as _build_ext


# the C extension: one private header and the files of its concerns
CEXT_HEADER = "cext/cachannel.h"
CEXT_SOURCES = ["cext/" + f for f in (
    "module.c", "args.c", "handles.c", "callbacks.c", "dbr_decode.c", "dbr_encode.c",
    "context.c", "channel.c", "request.c", "pend.c", "sync_group.c", "ring.c", "augment.c", "evqueue.c")]


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "no", "false")


def _numpy_include():
    import numpy
    return numpy.get_include()


def _site_base():
    """(EPICS_BASE, EPICS_HOST_ARCH) when both are set, else None."""
    base, arch = os.environ.get("EPICS_BASE"), os.environ.get("EPICS_HOST_ARCH")
    return (base, arch) if base and arch else None


def _extension():
    """The Extension CaChannel._ca, linked to the libca/libCom of the site
    EPICS base (see _site_base) or else of the epicscorelibs wheel."""
    site = _site_base()
    if site:
        base, arch = site
        inc = os.path.join(base, "include")
        osclass = {"linux": "Linux", "darwin": "Darwin", "win32": "WIN32"}.get(
            sys.platform, "Linux")
        cmplr = "msvc" if sys.platform == "win32" else (
            "clang" if sys.platform == "darwin" else "gcc")
        libdir = os.path.join(base, "lib", arch)
        macros = []
        link = dict(library_dirs=[libdir], libraries=["ca", "Com"],
                    runtime_library_dirs=[] if sys.platform == "win32" else [libdir])
    else:
        import epicscorelibs.path
        import epicscorelibs.config
        inc = epicscorelibs.path.include_path
        osclass = epicscorelibs.config.get_config_var("OS_CLASS")
        cmplr = epicscorelibs.config.get_config_var("CMPLR_CLASS")
        macros = [m for m in epicscorelibs.config.get_config_var("CPPFLAGS")
                  if isinstance(m, tuple)]
        extra_link = []
        if sys.platform.startswith("linux"):
            # setuptools_dso adds an $ORIGIN-relative rpath valid for a normal
            # install next to epicscorelibs. An editable install keeps the .so in
            # src/, so also point at the epicscorelibs of the target environment
            # (purelib of the interpreter running this build, which pip keeps
            # even under build isolation).
            target = os.path.join(sysconfig.get_paths()["purelib"], "epicscorelibs", "lib")
            extra_link.append("-Wl,-rpath," + target)
        link = dict(dsos=["epicscorelibs.lib.ca", "epicscorelibs.lib.Com"],
                    extra_link_args=extra_link)
    # an EPICS base keeps the os/ and compiler/ headers in subdirectories; the
    # wheel flattens them into include/
    incs = [inc] + [os.path.join(inc, sub)
                    for sub in (os.path.join("os", osclass), os.path.join("compiler", cmplr))
                    if os.path.isdir(os.path.join(inc, sub))]
    incs.append(_numpy_include())
    return Extension(
        "CaChannel._ca",
        sources=CEXT_SOURCES,
        depends=[CEXT_HEADER],
        include_dirs=incs,
        define_macros=macros,
        **link,
    )


class optional_build_ext(_build_ext):
    """setuptools_dso's build_ext (links the DSOs) that turns a compile failure into a warning unless the extension is required:
    the cffi backend is a complete replacement."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any toolchain failure
            self._failed(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def _failed(self, exc):
        if _flag("CACHANNEL_EXTENSION_REQUIRED"):
            raise exc
        sys.stderr.write(
            "\n*** WARNING: the CaChannel C extension could not be built (%s).\n"
            "*** CaChannel will use the cffi backend. Set CACHANNEL_EXTENSION_REQUIRED=1\n"
            "*** to make this an error.\n\n" % (exc,))


def _configured(make):
    """The Extension from ``make()``, or None (with the same warning as a failed
    compile) when even configuring it fails: epicscorelibs.config probes the C
    toolchain on import, so on a machine without a compiler this is where
    the failure shows up."""
    try:
        return make()
    except Exception as exc:  # noqa: BLE001
        optional_build_ext._failed(None, exc)
        return None


ext_modules = []
install_requires = ["numpy", "cffi>=1.15"]
if _site_base():
    install_requires.append("epicscorelibs")   # still used by the test IOC
    if not _flag("CACHANNEL_NO_EXTENSION"):
        ext_modules.append(_extension())
else:
    import epicscorelibs.version
    install_requires.append(epicscorelibs.version.abi_requires())
    if not _flag("CACHANNEL_NO_EXTENSION"):
        ext_modules.append(_configured(_extension))

ext_modules = [e for e in ext_modules if e is not None]
cmdclass = {"build_ext": optional_build_ext}

setup(
    ext_modules=ext_modules,
    install_requires=install_requires,
    cmdclass=cmdclass,
)
