"""Subprocess of test_delivery_pool: the delivery pool across ca.destroy_context()
(argument ``destroy``) or os.fork() (``fork``). Prints one word per stage that
delivered a callback.

The two are separate runs: with the cffi backend a child forked after a
``ca.destroy_context()`` hangs at exit in libca's context destroy (with or
without this pool), a backend matter of its own."""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback

from CaChannel import ca, core, monitor

TIMEOUT = 10.0


def stage(word: str) -> None:
    """Subscribe with a callback (on the pool) and wait for the initial update."""
    core.context.attach(check=True)  # a destroyed context is noticed and replaced
    status, chid = ca.create_channel("mon:counter")
    assert status == ca.ECA_NORMAL, status
    assert ca.pend_io(TIMEOUT) == ca.ECA_NORMAL, "mon:counter did not connect"
    got = threading.Event()
    in_ca = []

    def cb(event):
        # the worker is attached to the subscription's context: CA works here
        in_ca.append(ca.current_context() == core.context.current())
        got.set()

    status, sub = monitor.subscribe(chid, cb)
    assert status == ca.ECA_NORMAL, status
    ca.flush_io()
    assert got.wait(TIMEOUT), "%s: no callback" % word
    assert in_ca == [True], in_ca
    sub.close()
    ca.clear_channel(chid)
    ca.flush_io()
    print(word, flush=True)


def main(mode: str) -> None:
    stage("parent")
    if mode == "destroy":
        ca.destroy_context()
        stage("destroyed")
        return
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            stage("child")
            code = 0
        except BaseException:
            traceback.print_exc()
        sys.exit(code)   # a normal interpreter exit, with the pool's threads alive
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            print("child-hung", flush=True)
            sys.exit(1)
        time.sleep(0.05)
    print("child-exit-%d" % os.waitstatus_to_exitcode(status), flush=True)
    stage("parent-after")


if __name__ == "__main__":
    main(sys.argv[1])
