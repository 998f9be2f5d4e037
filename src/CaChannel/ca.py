"""The low-level Channel Access API (``ca``), served by one of two backends.

``CACHANNEL_BACKEND=caffi`` selects the cffi backend (``CaChannel._cffi``).
Otherwise the C extension (``CaChannel._ca``) is used; when it cannot be
imported, the cffi backend takes over. ``ca.backend`` names the active one
(``'cext'`` or ``'caffi'``). Both export exactly the same names, written
down with their signatures in the stub ``ca.pyi`` (what type checkers and
IDEs read; ``tests/test_contract.py`` holds both backends to it).

Both backends treat dead handles alike: after ``destroy_context()`` the
channels, subscriptions and context object of that context are dead
(``ECA_BADCHID``/``ECA_BADMONID``, ``ValueError`` from the information
functions and from ``attach_context``/``show_context``) and the next CA call
makes a new context. Another thread that was attached to the destroyed
context is detached from it by its next ``create_context``/``attach_context``. In a child process made by ``os.fork()`` every handle
inherited from the parent is dead the same way (the errors name fork), the
inherited context is abandoned untouched and the child's first CA call makes
its own context.
"""
import importlib as _importlib
import os as _os
import types as _types
import warnings as _warnings


def _select() -> _types.ModuleType:
    if _os.environ.get("CACHANNEL_BACKEND", "").strip().lower() == "caffi":
        return _importlib.import_module(__package__ + "._cffi")
    try:
        return _importlib.import_module(__package__ + "._ca")
    except Exception as exc:  # not built or broken: CA must stay usable
        _warnings.warn("CaChannel: the C extension is unavailable (%s: %s); "
                       "using the cffi backend" % (type(exc).__name__, exc),
                       RuntimeWarning, stacklevel=3)
    return _importlib.import_module(__package__ + "._cffi")


def _check_layouts(impl: _types.ModuleType) -> None:
    """The C extension decodes with libca's layouts and encodes/sizes some
    buffers with CaChannel._common's tables: both must agree (the cffi backend
    checks itself through its ffi when it is imported)."""
    if getattr(impl, "backend", None) != "cext":
        return
    from . import _common, _libca
    arrays = _libca.dbr_layout_arrays(getattr(impl, "__file__", None))
    _common.check_dbr_layouts(*arrays, source="read with ctypes for the C extension")


_impl = _select()
_check_layouts(_impl)
__all__ = list(_impl.__all__)
globals().update({_name: getattr(_impl, _name) for _name in __all__})
# the ring API of CaChannel.monitor (private, but declared in ca.pyi): both
# backends have it, the C one fills the ring on libca's thread without the GIL
_Ring = _impl._Ring
_ring_subscribe = _impl._ring_subscribe
del _select, _check_layouts
