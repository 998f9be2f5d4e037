"""Exit with high-level objects alive: run by test_exit_hl.py as a subprocess.

The environment (EPICS_CA_ADDR_LIST of the session IOC, CACHANNEL_BACKEND)
comes from the test. The script leaves behind, at a normal interpreter exit:
a CaChannel made in a worker thread that has ended (so the worker made the
process-wide context), with connection and access-rights callbacks; a
CaChannel in a reference cycle with a live monitor; a util.camonitor.
"""
import threading

from CaChannel import CaChannel, ca, util

done = threading.Event()
result = {}


def worker():
    chan = CaChannel()
    conn = threading.Event()
    chan.search_and_connect("catest", lambda args, user: conn.set())
    chan.flush_io()
    result["conn"] = conn.wait(10)
    chan.replace_access_rights_event(lambda args, user: None)
    result["value"] = chan.getw()
    done.set()


threading.Thread(target=worker).start()
assert done.wait(20) and result["conn"], result

cyclic = CaChannel("cacalc")
cyclic.searchw()
got = threading.Event()
cyclic.add_masked_array_event(None, None, None, lambda args, user: got.set())
cyclic.flush_io()
cyclic.me = cyclic
assert got.wait(10)
util.camonitor("cacalc", callback=lambda args, user: None)
print("READY", ca.backend, flush=True)
