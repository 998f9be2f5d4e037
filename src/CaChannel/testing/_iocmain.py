"""Launcher: ``epicscorelibs.ioc`` with access security configured before iocInit.

Usage: ``python -m CaChannel.testing._iocmain --acf FILE [--acf-subs SUBS] [epicscorelibs.ioc args]``

Access security is only enabled when ``asSetFilename`` is called before
``iocInit``; ``epicscorelibs.ioc`` runs ``iocInit`` before its console, so
this calls ``asSetFilename``/``asSetSubstitutions`` of libdbCore through ctypes
first and then hands over to ``epicscorelibs.ioc.main()``.
"""

from __future__ import annotations

import argparse
import ctypes
import sys


def main(argv: "list[str] | None" = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--acf", required=True)
    parser.add_argument("--acf-subs", default=None)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)

    from epicscorelibs import ioc  # loads libCom/libdbCore (RTLD_GLOBAL)

    as_set_filename = ioc.dbCore.asSetFilename
    as_set_filename.argtypes = [ctypes.c_char_p]
    as_set_filename.restype = ctypes.c_int
    if as_set_filename(args.acf.encode()):
        raise SystemExit(f"asSetFilename({args.acf!r}) failed")
    if args.acf_subs:
        as_set_subs = ioc.dbCore.asSetSubstitutions
        as_set_subs.argtypes = [ctypes.c_char_p]
        as_set_subs.restype = ctypes.c_int
        if as_set_subs(args.acf_subs.encode()):
            raise SystemExit(f"asSetSubstitutions({args.acf_subs!r}) failed")

    sys.argv = [sys.argv[0]] + rest
    ioc.main()


if __name__ == "__main__":
    main()
