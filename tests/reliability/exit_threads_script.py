"""Exit while daemon threads are inside CA calls (issue 21 item 1).

``python exit_threads_script.py MODE`` against the IOC of tests/test.db (its
client environment in os.environ). Daemon threads loop on CA calls; once each
has completed a round the script prints ``READY <time>`` and returns, so that the
interpreter exits while they are inside libca (``ca_flush_io``,
``ca_pend_io``, ``ca_array_get``...):

=====  ========================================================================
sync   two threads ``util.caget(['catest', 'cabo'])``, two ``PV.get(use_monitor
       =False)`` on one PV
aio    four threads, each an asyncio loop doing ``aio.caget`` of two PVs and a
       ``aio.caput(wait=True)`` writing back the value read
stuck  ``sync``, a monitor on the 10 Hz ``cacalc``, and a thread inside
       ``pend_event(60)`` on the shared context: exit may wait for the calls
       in flight, but not for that one
joined a thread polling ``util.caget`` that an atexit hook registered before
       CaChannel's import (so run after the backend's) stops and joins: the
       thread's calls after the backend's hook must not keep it for ever
=====  ========================================================================

Exit code 0 expected; a crash is a signal (-11), a hang is caught by the test.
"""
import asyncio
import atexit
import sys
import threading
import time

READY_TIMEOUT = 20.0


def main(mode: str) -> int:
    stop = threading.Event()
    joined = []

    def stop_and_join():
        stop.set()
        for t in joined:
            t.join()

    # before CaChannel's import: atexit runs it after the backend's own hook
    atexit.register(stop_and_join)

    from CaChannel import PV, aio, ca, util

    pv = PV("catest")
    if not pv.wait_for_connection(5):
        raise SystemExit("catest did not connect")
    workers = []

    def worker(body):
        ready = threading.Event()

        def run():
            body(ready)

        workers.append(ready)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def poll_list(ready):
        while True:
            util.caget(["catest", "cabo"])
            ready.set()

    def poll_pv(ready):
        while True:
            pv.get(use_monitor=False)
            ready.set()

    async def aio_loop(ready):
        while True:
            values = await aio.caget(["catest", "cabo"])
            await aio.caput("catest", float(values[0]), wait=True)
            ready.set()

    if mode in ("sync", "stuck"):
        for body in (poll_list, poll_list, poll_pv, poll_pv):
            worker(body)
    if mode == "aio":
        for _ in range(4):
            worker(lambda ready: asyncio.run(aio_loop(ready)))
    if mode == "stuck":
        events = threading.Event()
        ticker = PV("cacalc", callback=lambda **kw: events.set())
        if not ticker.wait_for_connection(5):
            raise SystemExit("cacalc did not connect")
        workers.append(events)
        ctx = ca.current_context()

        def stuck(ready):
            ca.attach_context(ctx)
            ready.set()
            ca.pend_event(60)

        worker(stuck)

    if mode == "joined":
        def poll_until_stopped(ready):
            while not stop.is_set():
                util.caget("catest")
                ready.set()

        joined.append(worker(poll_until_stopped))

    for ready in workers:
        if not ready.wait(READY_TIMEOUT):
            raise SystemExit("a worker did not complete a round in %.0f s" % READY_TIMEOUT)
    print("READY %.6f" % time.time(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
