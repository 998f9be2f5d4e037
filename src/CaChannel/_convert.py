"""Value conversion rules of the high-level faces (one place for all of them).

The ``ca`` level gives converted values (plain values, or dicts with
``value``, ``status``, ``severity``, ``stamp``, ... keys); these functions
turn them into what CaChannel 3.x users see (``pv_*`` dicts, lists unless
numpy is asked for) and apply the char-array-as-string rule.

>>> pv_dict({'value': 1.5, 'severity': 0}, False)
{'pv_value': 1.5, 'pv_severity': 0}
>>> chars_to_str([72, 105, 0, 33])
'Hi'
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Optional, Union

from . import _common

try:  # numpy is optional for the high-level layer
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None  # type: ignore[assignment]

__all__ = ["PV_KEYS", "use_numpy", "plain", "pv_dict", "epics_args",
           "char_bytes", "chars_to_str"]

# low-level structured value keys -> CaChannel ``pv_`` keys
PV_KEYS = {
    "value": "pv_value",
    "status": "pv_status",
    "severity": "pv_severity",
    "units": "pv_units",
    "precision": "pv_precision",
    "upper_disp_limit": "pv_updislim",
    "lower_disp_limit": "pv_lodislim",
    "upper_alarm_limit": "pv_upalarmlim",
    "lower_alarm_limit": "pv_loalarmlim",
    "upper_warning_limit": "pv_upwarnlim",
    "lower_warning_limit": "pv_lowarnlim",
    "upper_ctrl_limit": "pv_upctrllim",
    "lower_ctrl_limit": "pv_loctrllim",
    "no_str": "pv_nostrings",
    "strs": "pv_statestrings",
    "ackt": "pv_ackt",
    "acks": "pv_acks",
}


def use_numpy(flag: Optional[bool]) -> bool:
    """The ``use_numpy`` keyword, defaulting to ``CaChannel.USE_NUMPY`` now."""
    if flag is None:
        pkg = sys.modules.get(__package__ or "CaChannel")
        flag = getattr(pkg, "USE_NUMPY", False)
    return bool(flag)


def plain(value: Any, use_numpy: bool) -> Any:
    if not use_numpy and _np is not None and isinstance(value, _np.ndarray):
        return value.tolist()
    return value


def pv_dict(value: Any, use_numpy: bool) -> Dict[str, Any]:
    """Turn a low-level converted value (2.9) into the ``pv_*`` dict (4.2).

    Only the keys are renamed: the ``ca`` level already gives ``status`` and
    ``severity`` as ``AlarmCondition``/``AlarmSeverity`` members and ``strs``
    as a tuple. The one value conversion is the timestamp's:
    ``pv_seconds`` counts from the EPICS epoch, as in CaChannel 3.x, while
    the ``ca`` level's ``stamp`` is POSIX (:func:`_common.epics_seconds`).
    """
    if not isinstance(value, dict):
        return {"pv_value": plain(value, use_numpy)}
    out: Dict[str, Any] = {}
    for key, item in value.items():
        if key == "stamp":
            out["pv_seconds"] = _common.epics_seconds(item)
            out["pv_nseconds"] = int(item["nanoseconds"])
        elif key == "value":
            out["pv_value"] = plain(item, use_numpy)
        elif key in PV_KEYS:
            out[PV_KEYS[key]] = item
        else:  # unknown extra key: keep it visible under a pv_ name
            out["pv_" + key] = item
    return out


def char_bytes(value: Any) -> bytearray:
    """The bytes of a char array value (list/array/scalar of ints) up to the first 0."""
    if _np is not None and isinstance(value, _np.ndarray):
        items = value.tolist()
        if not isinstance(items, list):  # a 0-d array
            items = [items]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    raw = bytearray()
    for item in items:
        item = int(item) & 0xFF
        if item == 0:
            break
        raw.append(item)
    return raw


def chars_to_str(value: Any) -> Union[str, bytes]:
    """Char-as-string: integers (list/array/scalar) up to the first 0 -> ``str``."""
    if value is None:
        return ""
    raw = char_bytes(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(raw)


#: value types :func:`pv_dict` passes through as they are
_PLAIN_SCALARS = (float, int, str)


def epics_args(args: Dict[str, Any], numpy_flag: bool, own: bool = False) -> Dict[str, Any]:
    """A low-level callback dict -> CaChannel's ``epicsArgs`` (``chid``, ``type``,
    ``count``, ``status`` and the ``pv_*`` keys of the value).

    ``own``: ``args`` is the event's own dict, which nobody else sees (a
    backend makes one per callback): a plain scalar's is then renamed in
    place instead of copied.
    """
    get = args.get
    value = get("value")
    plain = type(value) in _PLAIN_SCALARS  # a plain request's scalar: every update of a monitor
    if plain and own and len(args) == 5:  # chid, type, count, status, value: nothing to drop
        del args["value"]
        args["pv_value"] = value
        return args
    out = {"chid": get("chid"), "type": get("type"), "count": get("count"),
           "status": get("status")}
    if plain:
        out["pv_value"] = value
    else:
        out.update(pv_dict(value, numpy_flag))
    return out
