"""The low-level Channel Access API (``ca``), served by one of two backends.

``CACHANNEL_BACKEND=caffi`` selects the cffi backend (``CaChannel._cffi``).
Otherwise the C extension (``CaChannel._ca``) is used; when it cannot be
imported, the cffi backend takes over. ``ca.backend`` names the active one
(``'cext'`` or ``'caffi'``). Both export exactly the same names.
"""
import importlib as _importlib
import os as _os
import warnings as _warnings


def _select():
    if _os.environ.get("CACHANNEL_BACKEND", "").strip().lower() == "caffi":
        return _importlib.import_module(__package__ + "._cffi")
    try:
        return _importlib.import_module(__package__ + "._ca")
    except Exception as exc:  # not built or broken: CA must stay usable
        _warnings.warn("CaChannel: the C extension is unavailable (%s: %s); "
                       "using the cffi backend" % (type(exc).__name__, exc),
                       RuntimeWarning, stacklevel=3)
    return _importlib.import_module(__package__ + "._cffi")


_impl = _select()
__all__ = list(_impl.__all__)
globals().update({_name: getattr(_impl, _name) for _name in __all__})
del _select
