"""Where libca comes from, and the client environment it needs.

libca is taken from the ``epicscorelibs`` wheel, unless a site EPICS base is
named by ``EPICS_BASE`` and ``EPICS_HOST_ARCH``: then the libraries in
``$EPICS_BASE/lib/$EPICS_HOST_ARCH`` are used.

Importing this module also sets ``EPICS_CA_MAX_ARRAY_BYTES`` to
:data:`DEFAULT_MAX_ARRAY_BYTES` when it is unset, so that large waveforms
(a 4,000,000-element DOUBLE waveform is 32 MB) can be read without further
configuration. libca reads the variable when a context is created, so it must
be set before the first CA call; a value set by the user is never changed.
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import List, Optional, Tuple

#: default for ``EPICS_CA_MAX_ARRAY_BYTES``: 64 MiB, room for 8M doubles.
DEFAULT_MAX_ARRAY_BYTES = 64 * 1024 * 1024

os.environ.setdefault("EPICS_CA_MAX_ARRAY_BYTES", str(DEFAULT_MAX_ARRAY_BYTES))


def _lib_filename(name: str) -> str:
    if sys.platform.startswith("win"):
        return name + ".dll"
    if sys.platform == "darwin":
        return "lib%s.dylib" % name
    return "lib%s.so" % name


def site_base_libdir() -> Optional[str]:
    """``$EPICS_BASE/lib/$EPICS_HOST_ARCH`` when both variables are set."""
    base = os.environ.get("EPICS_BASE")
    arch = os.environ.get("EPICS_HOST_ARCH")
    if not base or not arch:
        return None
    sub = "bin" if sys.platform.startswith("win") else "lib"
    return os.path.join(base, sub, arch)


def library_paths() -> List[str]:
    """Paths of libCom and libca, in load order.

    Raises ``OSError`` naming the directory when a site EPICS base is
    configured but does not hold the libraries.
    """
    libdir = site_base_libdir()
    if libdir is not None:
        paths = [os.path.join(libdir, _lib_filename(n)) for n in ("Com", "ca")]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise OSError("EPICS_BASE/EPICS_HOST_ARCH name %s, but %s is missing"
                          % (libdir, ", ".join(missing)))
        return paths
    return [_wheel_library(n) for n in ("Com", "ca")]


def _wheel_library(name: str) -> str:
    """Path of an epicscorelibs library from its generated dsoinfo module.

    ``epicscorelibs.path.get_lib`` gives the same answer, but importing it
    pulls in setuptools (~0.4 s on every start of a script or CLI call).
    """
    import importlib
    try:
        info = importlib.import_module("epicscorelibs.lib.%s_dsoinfo" % name)
        for attr in ("sofilename", "filename"):
            path = getattr(info, attr, None)
            if path and os.path.exists(path):
                return path
    except ImportError:
        pass
    from epicscorelibs import path as ecl_path
    return ecl_path.get_lib(name)


_loaded: Optional[str] = None


def load() -> str:
    """Load libCom and libca into the process (once) and return libca's path.

    libCom is loaded first so that libca's dependency on it resolves to this
    copy (the loader matches it by soname). Both are loaded ``RTLD_LOCAL``:
    with ``RTLD_GLOBAL`` their symbols would interpose on other extensions
    that carry a private EPICS copy (pcaspy does), whose C++ static
    destructors then free libCom's globals a second time at exit.
    """
    global _loaded
    if _loaded is None:
        com, ca = library_paths()
        ctypes.CDLL(com)
        ctypes.CDLL(ca)
        _loaded = ca
    return _loaded


def dbr_layout_arrays(linked_by: Optional[str] = None) -> Tuple[List[int], List[int], List[int]]:
    """libca's ``dbr_size``, ``dbr_value_size`` and ``dbr_value_offset`` arrays.

    ``linked_by`` is the path of a shared object linked against libca (the C
    extension): the symbols are then looked up through that object's own
    dependencies, i.e. in exactly the libca it uses. Without it (or where the
    lookup fails, as on Windows, whose loader does not search dependencies),
    the libca of :func:`load` is used. Reading the three arrays costs a few
    tens of microseconds.
    """
    n = 39  # LAST_BUFFER_TYPE + 1
    lib = None
    if linked_by is not None:
        try:
            lib = ctypes.CDLL(linked_by)
            (ctypes.c_ushort * n).in_dll(lib, "dbr_size")
        except (OSError, ValueError):
            lib = None
    if lib is None:
        lib = ctypes.CDLL(load())
    size, value_size, value_offset = (list((ctypes.c_ushort * n).in_dll(lib, name))
                                      for name in ("dbr_size", "dbr_value_size",
                                                   "dbr_value_offset"))
    return size, value_size, value_offset
