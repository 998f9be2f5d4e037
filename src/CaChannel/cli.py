"""Command-line tools: ``get``, ``put``, ``monitor``, ``info`` and ``demo``.

Run as ``python -m CaChannel SUBCOMMAND ...`` or with the ``cachannel``
console script. The subcommands follow the conventions of EPICS base's
``caget``, ``caput``, ``camonitor`` and ``cainfo``::

    $ cachannel get catest cabo
    catest                         1
    cabo                           Done
    $ cachannel put -c catest 2.5
    Old : catest                         1
    New : catest                         2.5
    $ cachannel monitor -# 4 cawave
    cawave                         2024-05-01 12:00:00.123456 4 0 1 2 3
    $ cachannel info catest
    catest
        State:            connected
        Host:             localhost:5064
        ...

Common options: ``-w SEC`` connection/IO timeout (default 1.0), ``-d TYPE``
request type (``DBR_TIME_DOUBLE``, ``TIME_DOUBLE``, ``ctrl_double`` or a
number), ``-n`` enums as numbers, ``-S`` char arrays as strings, ``-# N``
element count, ``--backend {cext,caffi}``. A PV that does not connect gives
one line ``Channel connect timed out: 'NAME' not found.`` on stderr and exit
status 1. ``python -m CaChannel SUBCOMMAND -h`` lists every option.

The same functions are usable from Python: :func:`main` takes the argument
list and returns the exit status.

>>> main(['get', 'catest'])  # doctest: +SKIP
catest                         1
0
"""
from __future__ import annotations

import argparse
import datetime
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import ca

__all__ = ["main", "parse_request_type", "format_value"]

_NAME_WIDTH = 30
_BACKENDS = ("cext", "caffi")
_REEXEC_MARK = "_CACHANNEL_BACKEND_REEXEC"


# ------------------------------------------------------------------ helpers
def parse_request_type(text: str) -> int:
    """Return the DBR request type named by ``text``.

    Accepts ``DBR_TIME_DOUBLE``, ``TIME_DOUBLE``, lower case, or the number.

    >>> parse_request_type('DBR_TIME_DOUBLE') == ca.DBR_TIME_DOUBLE
    True
    >>> parse_request_type('ctrl_enum') == ca.DBR_CTRL_ENUM
    True
    >>> parse_request_type('6') == ca.DBR_DOUBLE
    True
    >>> parse_request_type('DOUBLE_TIME')
    Traceback (most recent call last):
    ...
    ValueError: unknown request type 'DOUBLE_TIME'
    """
    t = text.strip()
    if t.lstrip("-").isdigit():
        value = int(t)
        if ca.dbr_type_is_valid(value):
            return int(value)
        raise ValueError("unknown request type %r" % text)
    upper = t.upper()
    if not upper.startswith("DBR_"):
        upper = "DBR_" + upper
    value = ca.dbr_text_to_type(upper)
    if value is None or int(value) < 0:
        raise ValueError("unknown request type %r" % text)
    return int(value)


def _stamp_text(posix: float) -> str:
    return datetime.datetime.fromtimestamp(posix).strftime("%Y-%m-%d %H:%M:%S.%f")


def _item_text(item: Any, float_fmt: str) -> str:
    if isinstance(item, float):
        return float_fmt % item
    if isinstance(item, bytes):
        return item.decode("utf-8", "backslashreplace")
    return str(item)


def _chars_text(value: Any) -> str:
    items = value if isinstance(value, (list, tuple)) else (
        value.tolist() if hasattr(value, "tolist") else [value])
    if not isinstance(items, list):
        items = [items]
    raw = bytes(int(i) & 0xFF for i in items)
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def format_value(value: Any, float_fmt: str = "%g", show_count: bool = False,
                 char_string: bool = False) -> str:
    """Format a received value like base's tools: ``v`` or ``count v1 v2 ...``.

    >>> format_value(1.5)
    '1.5'
    >>> format_value([1.0, 2.0, 3.0], show_count=True)
    '3 1 2 3'
    >>> format_value([104, 105, 0, 0], char_string=True)
    'hi'
    >>> format_value(3.14159265, float_fmt='%.3f')
    '3.142'
    """
    if char_string:
        return _chars_text(value)
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    text = " ".join(_item_text(i, float_fmt) for i in items)
    if show_count or len(items) > 1:
        return "%d %s" % (len(items), text) if items else "0"
    return text


def _alarm_suffix(status: Any, severity: Any) -> str:
    try:
        if int(severity) == 0 and int(status) == 0:
            return ""
        return " %s %s" % (ca.alarmStatusString(int(status)), ca.alarmSeverityString(int(severity)))
    except (IndexError, TypeError, ValueError):
        return " %s %s" % (status, severity)


def _label(name: str) -> str:
    return "%-*s" % (_NAME_WIDTH, name)


def _err(msg: str) -> None:
    sys.stdout.flush()
    print(msg, file=sys.stderr, flush=True)


def _not_found(name: str) -> None:
    _err("Channel connect timed out: '%s' not found." % name)


def _float_format(args: argparse.Namespace) -> str:
    for flag in ("e", "f", "g"):
        digits = getattr(args, "fmt_" + flag, None)
        if digits is not None:
            return "%%.%d%s" % (digits, flag)
    return "%g"


class _Session:
    """A preemptive CA context plus channels connected with a bounded wait."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        status = ca.create_context(True)
        if status != ca.ECA_NORMAL:
            raise RuntimeError("cannot create a CA context: %s" % ca.message(status))

    def connect(self, names: Sequence[str]) -> List[Tuple[str, Any]]:
        """Connect ``names``; returns ``[(name, chid or None)]`` in order."""
        chids: List[Tuple[str, Any]] = []
        for name in names:
            status, chid = ca.create_channel(name)
            if status != ca.ECA_NORMAL:
                _err("Invalid channel name '%s': %s" % (name, ca.message(status)))
                chid = None
            chids.append((name, chid))
        ca.pend_io(self.timeout)  # TIMEOUT when any is missing: checked below
        out = []
        for name, chid in chids:
            if chid is not None and ca.state(chid) != ca.cs_conn:
                ca.clear_channel(chid)
                chid = None
            out.append((name, chid))
        ca.flush_io()
        return out

    def close(self) -> None:
        ca.destroy_context()


def _get_many(requests: List[Tuple[Any, int, int]], use_numpy: bool,
              timeout: float) -> List[Optional[Dict[str, Any]]]:
    """Issue callback gets for ``[(chid, type, count)]`` and wait (bounded) for all."""
    results: List[Optional[Dict[str, Any]]] = [None] * len(requests)
    left = [len(requests)]
    lock = threading.Lock()
    all_done = threading.Event()

    def make_cb(i: int) -> Callable[[Dict[str, Any]], None]:
        def cb(args: Dict[str, Any]) -> None:
            results[i] = args
            with lock:
                left[0] -= 1
                if left[0] == 0:
                    all_done.set()
        return cb

    for i, (chid, req, count) in enumerate(requests):
        status, _ = ca.get(chid, req, count, callback=make_cb(i), use_numpy=use_numpy)
        if status != ca.ECA_NORMAL:
            results[i] = {"status": status, "value": None, "type": req, "count": 0}
            with lock:
                left[0] -= 1
    if left[0] == 0:
        all_done.set()
    ca.flush_io()
    all_done.wait(timeout)
    return results


def _native_request(chid: Any, args: argparse.Namespace) -> int:
    ftype = int(ca.field_type(chid))
    if ftype == ca.DBF_ENUM and not args.enum_number:
        return int(ca.DBR_STRING)
    if ftype == ca.DBF_CHAR and getattr(args, "char_string", False):
        return int(ca.DBR_CHAR)
    return int(ca.dbf_type_to_DBR(ftype))


def _wants_char_string(chid: Any, req: int, args: argparse.Namespace) -> bool:
    return bool(getattr(args, "char_string", False)) and ca.dbr_type_is_CHAR(req) \
        and int(ca.field_type(chid)) == ca.DBF_CHAR


# block labels of structured values, in base's order
_BLOCK_KEYS = [
    ("units", "Units:"),
    ("precision", "Precision:"),
    ("lower_disp_limit", "Lo disp limit:"),
    ("upper_disp_limit", "Hi disp limit:"),
    ("lower_alarm_limit", "Lo alarm limit:"),
    ("lower_warning_limit", "Lo warn limit:"),
    ("upper_warning_limit", "Hi warn limit:"),
    ("upper_alarm_limit", "Hi alarm limit:"),
    ("lower_ctrl_limit", "Lo ctrl limit:"),
    ("upper_ctrl_limit", "Hi ctrl limit:"),
]


def _block(name: str, chid: Any, req: int, result: Dict[str, Any], fmt: str,
           char_string: bool) -> str:
    data = result["value"]
    lines = [name,
             "    %-18s%s" % ("Native data type:", ca.dbf_type_to_text(ca.field_type(chid))),
             "    %-18s%s" % ("Request type:", ca.dbr_type_to_text(req)),
             "    %-18s%s" % ("Element count:", result.get("count", 0))]
    if not isinstance(data, dict):
        lines.append("    %-18s%s" % ("Value:", format_value(data, fmt, False, char_string)))
        return "\n".join(lines)
    lines.append("    %-18s%s" % ("Value:", format_value(data.get("value"), fmt, False, char_string)))
    if "stamp" in data:
        lines.append("    %-18s%s" % ("Timestamp:", _stamp_text(data["stamp"]["timestamp"])))
    if "status" in data:
        lines.append("    %-18s%s" % ("Status:", ca.alarmStatusString(int(data["status"]))))
        lines.append("    %-18s%s" % ("Severity:", ca.alarmSeverityString(int(data["severity"]))))
    for key, label in _BLOCK_KEYS:
        if key in data:
            v = data[key]
            lines.append("    %-18s%s" % (label, fmt % v if isinstance(v, float) else v))
    if "strs" in data:
        strs = data["strs"]
        lines.append("    %-18s(%d)" % ("Enums:", len(strs)))
        lines.extend("                      [%2d] %s" % (i, s) for i, s in enumerate(strs))
    return "\n".join(lines)


# --------------------------------------------------------------------- get
def cmd_get(args: argparse.Namespace) -> int:
    """``get``: print ``name value`` for each PV (base ``caget``)."""
    session = _Session(args.timeout)
    try:
        conns = session.connect(args.pvs)
        fmt = _float_format(args)
        requests, where = [], []
        for name, chid in conns:
            if chid is None:
                continue
            if args.dbr_type is not None:
                req = args.dbr_type
            else:
                req = _native_request(chid, args)
                if args.wide:
                    req = int(ca.dbf_type_to_DBR_TIME(req))  # plain -> TIME_ of the same type
            count = args.count if args.count is not None else 0
            requests.append((chid, req, count))
            where.append((name, chid, req))
        results = _get_many(requests, bool(ca.HAS_NUMPY), args.timeout)
        status = 0
        by_chid = {id(chid): (res, req) for (_, chid, req), res in zip(where, results)}
        for name, chid in conns:
            if chid is None:
                _not_found(name)
                status = 1
                continue
            res, req = by_chid[id(chid)]
            if res is None:
                _err("Read operation timed out: '%s' (no data within %g s)." % (name, args.timeout))
                status = 1
                continue
            if res["status"] != ca.ECA_NORMAL or res.get("value") is None:
                _err("Read of '%s' failed: %s" % (name, ca.message(res["status"])))
                status = 1
                continue
            print(_get_line(name, chid, req, res, args, fmt))
        return status
    finally:
        session.close()


def _get_line(name: str, chid: Any, req: int, res: Dict[str, Any],
              args: argparse.Namespace, fmt: str) -> str:
    chars = _wants_char_string(chid, req, args)
    show_count = ca.element_count(chid) > 1 and not chars
    data = res["value"]
    plain = ca.dbr_type_is_plain(req) or req == ca.DBR_CLASS_NAME
    if args.dbr_type is not None and not plain:
        return _block(name, chid, req, res, fmt, chars)
    if isinstance(data, dict):
        text = format_value(data.get("value"), fmt, show_count, chars)
        if args.wide and "stamp" in data:
            text = "%s %s" % (_stamp_text(data["stamp"]["timestamp"]), text)
        if "severity" in data:
            text += _alarm_suffix(data["status"], data["severity"])
    else:
        text = format_value(data, fmt, show_count, chars)
    return text if args.terse else "%s %s" % (_label(name), text)


# --------------------------------------------------------------------- put
def _put_value(chid: Any, values: List[str], args: argparse.Namespace) -> Tuple[Any, Optional[int]]:
    ftype = int(ca.field_type(chid))
    if args.char_string and ftype == ca.DBF_CHAR:
        return " ".join(values), int(ca.DBR_CHAR)
    if args.array:
        if not values:
            raise ValueError("-a needs the element count and the values")
        try:
            n = int(values[0])
        except ValueError:
            raise ValueError("-a: first value must be the element count, not %r" % values[0]) from None
        items = values[1:]
        if n != len(items):
            raise ValueError("-a: element count %d does not match the %d value(s) given" % (n, len(items)))
        if ftype in (ca.DBF_STRING,) or (ftype == ca.DBF_ENUM and not args.enum_number):
            return items, int(ca.DBR_STRING)
        if ftype in (ca.DBF_FLOAT, ca.DBF_DOUBLE):
            return [float(v) for v in items], None
        return [int(float(v)) if not v.lstrip("-+").isdigit() else int(v) for v in items], None
    if ftype == ca.DBF_ENUM and args.enum_number:
        return int(values[0]) if len(values) == 1 else int(" ".join(values)), int(ca.DBR_ENUM)
    # like base caput: scalars travel as a string, converted by the server
    return " ".join(values), int(ca.DBR_STRING)


def cmd_put(args: argparse.Namespace) -> int:
    """``put``: write a value and print old and new value (base ``caput``)."""
    session = _Session(args.timeout)
    try:
        (name, chid), = session.connect([args.pv])
        if chid is None:
            _not_found(name)
            return 1
        fmt = _float_format(args)
        req = _native_request(chid, args)
        count = args.count if args.count is not None else 0
        old = _get_many([(chid, req, count)], bool(ca.HAS_NUMPY), args.timeout)[0]
        try:
            value, chtype = _put_value(chid, list(args.values), args)
        except ValueError as exc:
            _err("caput: %s" % exc)
            return 2
        if args.callback:
            done = threading.Event()
            result: Dict[str, Any] = {}

            def on_put(put_args: Dict[str, Any]) -> None:
                result.update(put_args)
                done.set()

            status = ca.put(chid, value, chtype, args.count, callback=on_put)
            if status == ca.ECA_NORMAL:
                ca.flush_io()
                if not done.wait(args.timeout):
                    _err("Write operation timed out: '%s' did not complete within %g s." % (name, args.timeout))
                    return 1
                status = result.get("status", ca.ECA_NORMAL)
        else:
            status = ca.put(chid, value, chtype, args.count)
            ca.flush_io()
        if status != ca.ECA_NORMAL:
            _err("Write to '%s' failed: %s" % (name, ca.message(status)))
            return 1
        new = _get_many([(chid, req, count)], bool(ca.HAS_NUMPY), args.timeout)[0]
        chars = _wants_char_string(chid, req, args)
        show_count = ca.element_count(chid) > 1 and not chars

        def text(res: Optional[Dict[str, Any]]) -> str:
            if res is None or res.get("value") is None:
                return "*** no value"
            return format_value(res["value"], fmt, show_count, chars)

        if args.terse:
            print(text(new))
        else:
            print("Old : %s %s" % (_label(name), text(old)))
            print("New : %s %s" % (_label(name), text(new)))
        return 0
    finally:
        session.close()


# ----------------------------------------------------------------- monitor
_MASKS = {"v": ca.DBE_VALUE, "l": ca.DBE_LOG, "a": ca.DBE_ALARM, "p": ca.DBE_PROPERTY}


def cmd_monitor(args: argparse.Namespace) -> int:
    """``monitor``: print ``name timestamp value`` on every update (base ``camonitor``)."""
    mask = 0
    for ch in args.mask:
        if ch not in _MASKS:
            _err("camonitor: invalid mask letter %r (use v, l, a, p)" % ch)
            return 2
        mask |= int(_MASKS[ch])
    if args.stamp not in ("s", "c", "n", "r", "i"):
        _err("camonitor: invalid timestamp key %r (use s, c, n, r, i)" % args.stamp)
        return 2
    fmt = _float_format(args)
    session = _Session(args.timeout)
    out_lock = threading.Lock()
    last: Dict[str, float] = {}
    start = time.time()
    connected: List[threading.Event] = []
    ever: List[bool] = []
    subs: Dict[int, Any] = {}

    def emit(line: str) -> None:
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def stamp_for(name: str, server: Optional[float]) -> str:
        key = args.stamp
        now = server if (key in ("s", "r", "i") and server is not None) else time.time()
        if key == "n":
            return ""
        if key in ("s", "c"):
            return _stamp_text(now) + " "
        ref = start if key == "r" else last.get(name, now)
        last[name] = now
        return "%+.6f " % (now - ref)

    def make_event_cb(name: str, chid: Any, req: int) -> Callable[[Dict[str, Any]], None]:
        chars = _wants_char_string(chid, req, args)
        show_count = ca.element_count(chid) > 1 and not chars

        def on_event(ev: Dict[str, Any]) -> None:
            data = ev.get("value")
            if ev.get("status") != ca.ECA_NORMAL or data is None:
                emit("%s *** %s" % (_label(name), ca.message(ev.get("status"))))
                return
            server = data["stamp"]["timestamp"] if isinstance(data, dict) and "stamp" in data else None
            value = data.get("value") if isinstance(data, dict) else data
            text = format_value(value, fmt, show_count, chars)
            if isinstance(data, dict) and "severity" in data:
                text += _alarm_suffix(data["status"], data["severity"])
            emit("%s %s%s" % (_label(name), stamp_for(name, server), text))
        return on_event

    def make_conn_cb(i: int, name: str) -> Callable[[Dict[str, Any]], None]:
        def on_conn(cargs: Dict[str, Any]) -> None:
            chid = cargs["chid"]
            if cargs["op"] == ca.CA_OP_CONN_UP:
                ever[i] = True
                if i not in subs:
                    req = args.dbr_type if args.dbr_type is not None else _native_request(chid, args)
                    if args.dbr_type is None:
                        req = int(ca.dbf_type_to_DBR_TIME(req))  # TIME_ flavour for the stamp and alarm
                    count = args.count if args.count is not None else 0
                    status, evid = ca.create_subscription(
                        chid, make_event_cb(name, chid, req), req, count, mask or None,
                        use_numpy=bool(ca.HAS_NUMPY))
                    if status == ca.ECA_NORMAL:
                        subs[i] = evid
                    else:
                        emit("%s *** subscription failed: %s" % (_label(name), ca.message(status)))
                    ca.flush_io()
                connected[i].set()
            else:
                emit("%s *** disconnected" % _label(name))
        return on_conn

    chids = []
    try:
        for i, name in enumerate(args.pvs):
            connected.append(threading.Event())
            ever.append(False)
            status, chid = ca.create_channel(name, make_conn_cb(i, name))
            chids.append(chid)
            if status != ca.ECA_NORMAL:
                _err("Invalid channel name '%s': %s" % (name, ca.message(status)))
        ca.flush_io()
        try:  # Ctrl-C at any point ends the monitor normally
            deadline = time.monotonic() + args.timeout
            for i, name in enumerate(args.pvs):
                if chids[i] is not None and not connected[i].wait(max(0.0, deadline - time.monotonic())):
                    emit("%s *** Not connected (PV not found)" % _label(name))
            if args.duration is None:
                # until Ctrl-C / SIGTERM, waking now and then: the kernel may
                # deliver the signal to one of libca's threads, and then only
                # Python code running in the main thread raises it
                while True:
                    time.sleep(0.25)
            else:
                threading.Event().wait(max(0.0, args.duration))
        except KeyboardInterrupt:
            pass
        missing = [name for i, name in enumerate(args.pvs) if not ever[i]]
        for name in missing:
            _not_found(name)
        return 1 if missing else 0
    finally:
        for chid in chids:
            if chid is not None:
                ca.clear_channel(chid)
        ca.flush_io()
        session.close()


# -------------------------------------------------------------------- info
def cmd_info(args: argparse.Namespace) -> int:
    """``info``: print a block per PV (base ``cainfo``)."""
    session = _Session(args.timeout)
    try:
        status = 0
        first = True
        for name, chid in session.connect(args.pvs):
            if chid is None:
                _not_found(name)
                status = 1
                continue
            if not first:
                print()
            first = False
            ftype = ca.field_type(chid)
            read, write = ca.read_access(chid), ca.write_access(chid)
            access = "%s, %s" % ("read" if read else "no read", "write" if write else "no write")
            rows = [("State:", "connected"),
                    ("Host:", ca.host_name(chid)),
                    ("Access:", access),
                    ("Native data type:", ca.dbf_type_to_text(ftype)),
                    ("Request type:", ca.dbr_type_to_text(ca.dbf_type_to_DBR(ftype))),
                    ("Element count:", ca.element_count(chid))]
            print(name)
            for label, value in rows:
                print("    %-18s%s" % (label, value))
        return status
    finally:
        session.close()


# -------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    """``demo``: the embedded-IOC tour, see :mod:`CaChannel.demo`."""
    from .demo import run
    return run(seconds=args.seconds, port=args.port)


# ----------------------------------------------------------------- version
def cmd_version(args: argparse.Namespace) -> int:
    """``version``: package version, active backend and libca version."""
    from . import __version__
    print("CaChannel %s (backend %s, libca %s)" % (__version__, ca.backend, ca.version()))
    return 0


# ------------------------------------------------------------------ parser
def _request_type_arg(text: str) -> int:
    try:
        return parse_request_type(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(p: argparse.ArgumentParser, count: bool = True) -> None:
    p.add_argument("-w", dest="timeout", type=float, default=1.0, metavar="SEC",
                   help="wait time for connection and I/O, seconds (default 1.0)")
    p.add_argument("--backend", choices=_BACKENDS,
                   help="low-level backend (sets CACHANNEL_BACKEND and restarts the command)")


def _value_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", dest="enum_number", action="store_true",
                   help="enum values as numbers (default: state strings)")
    p.add_argument("-S", dest="char_string", action="store_true",
                   help="char arrays as strings")
    p.add_argument("-#", dest="count", type=int, metavar="N",
                   help="element count (default: the server's current count)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("-e", dest="fmt_e", type=int, metavar="N", help="format doubles as %%.Ne")
    fmt.add_argument("-f", dest="fmt_f", type=int, metavar="N", help="format doubles as %%.Nf")
    fmt.add_argument("-g", dest="fmt_g", type=int, metavar="N", help="format doubles as %%.Ng")


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The ``argparse`` parser of the command-line tools."""
    parser = argparse.ArgumentParser(
        prog=prog, description="EPICS Channel Access command-line tools of CaChannel "
                               "(like base's caget/caput/camonitor/cainfo).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("get", help="read PVs (caget)", description="Read PVs: 'name value' per PV.")
    _common(p)
    _value_opts(p)
    p.add_argument("-t", dest="terse", action="store_true", help="terse: value only")
    p.add_argument("-a", dest="wide", action="store_true",
                   help="wide: name, timestamp, value and alarm status")
    p.add_argument("-d", dest="dbr_type", type=_request_type_arg, metavar="TYPE",
                   help="request type, e.g. DBR_TIME_DOUBLE or CTRL_DOUBLE (structured types print a block)")
    p.add_argument("pvs", nargs="+", metavar="PV")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("put", help="write a PV (caput)",
                       description="Write VALUE to PV and print the old and new value.")
    _common(p)
    _value_opts(p)
    p.add_argument("-t", dest="terse", action="store_true", help="terse: new value only")
    p.add_argument("-c", dest="callback", action="store_true",
                   help="wait for completion (put with callback), at most -w seconds")
    p.add_argument("-a", dest="array", action="store_true",
                   help="array: VALUE... is the element count followed by the elements")
    p.add_argument("pv", metavar="PV")
    p.add_argument("values", nargs="+", metavar="VALUE")
    p.set_defaults(func=cmd_put)

    p = sub.add_parser("monitor", help="monitor PVs (camonitor)",
                       description="Print 'name timestamp value' on every update until Ctrl-C.")
    _common(p)
    _value_opts(p)
    p.add_argument("-t", dest="stamp", default="s", metavar="KEY",
                   help="timestamp: s server (default), c client, n none, "
                        "r relative to start, i incremental")
    p.add_argument("-m", dest="mask", default="va", metavar="MASK",
                   help="event mask letters: v value, a alarm, l log, p property (default va)")
    p.add_argument("-d", dest="dbr_type", type=_request_type_arg, metavar="TYPE",
                   help="request type (default: TIME_ of the native type)")
    p.add_argument("--duration", type=float, metavar="SEC",
                   help="stop after SEC seconds (default: run until Ctrl-C)")
    p.add_argument("pvs", nargs="+", metavar="PV")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("info", help="channel information (cainfo)",
                       description="Print state, host, access, type and count of PVs.")
    _common(p)
    p.add_argument("pvs", nargs="+", metavar="PV")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="run the embedded-IOC beamline demo",
                       description="Start a private soft IOC with a simulated beamline and show "
                                   "caget/caput/camonitor/cainfo and an image monitor on it.")
    p.add_argument("--backend", choices=_BACKENDS,
                   help="low-level backend (sets CACHANNEL_BACKEND and restarts the demo)")
    p.add_argument("--seconds", type=float, default=15.0,
                   help="approximate total run time (default 15)")
    p.add_argument("--port", type=int, default=None,
                   help="CA server port of the demo IOC (default: a free port)")
    p.set_defaults(func=cmd_demo, timeout=1.0)

    p = sub.add_parser("version", help="print versions and the active backend",
                       description="Print the CaChannel version, the backend in use and libca's version.")
    p.add_argument("--backend", choices=_BACKENDS, help="select the backend first")
    p.set_defaults(func=cmd_version, timeout=1.0)
    return parser


def _switch_backend(backend: str, argv: Sequence[str]) -> Optional[int]:
    """Re-run the command with ``CACHANNEL_BACKEND=backend`` if another one is active.

    ``CaChannel.ca`` picks its backend once, at import time, which already
    happened when this module was imported; so the command is started again
    in a fresh interpreter (``exec`` on POSIX) with the variable set.
    """
    if ca.backend == backend:
        return None
    if os.environ.get(_REEXEC_MARK) == backend:
        _err("cachannel: backend %r is not available (using %r)" % (backend, ca.backend))
        return 2
    env = dict(os.environ, CACHANNEL_BACKEND=backend)
    env[_REEXEC_MARK] = backend
    cmd = [sys.executable, "-m", "CaChannel", *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execve(sys.executable, cmd, env)
    return subprocess.call(cmd, env=env)


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Run a subcommand; returns the exit status (0 = all PVs handled)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if prog is None:
        base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        prog = "cachannel" if base.startswith("cachannel") else "python -m CaChannel"
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.backend:
        switched = _switch_backend(args.backend, argv)
        if switched is not None:
            return switched
    if args.command in ("get", "put", "monitor", "info") and args.timeout <= 0:
        parser.error("-w must be > 0")
    # Ctrl-C and SIGTERM end the command through KeyboardInterrupt, so the
    # finally blocks clean up (also when started with SIGINT ignored, as for
    # background jobs of a non-interactive shell)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into head
        return 0


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def console_main() -> None:
    """Entry point of the ``cachannel`` console script."""
    sys.exit(main(prog="cachannel"))
