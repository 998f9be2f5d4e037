"""destroy_context, fork and interpreter exit with several faces using one shared channel.

What is documented (docs/architecture.md, "Life of a channel shared by three
faces"): after ``ca.destroy_context()`` a 3.x object's methods raise
``CaChannelException(ECA_BADCHID)``, a PV made before stays disconnected
until ``pv.reconnect()``, ``util`` and new objects work in a new context; in a
fork child the inherited objects are dead (errors naming fork) and new ones
work; interpreter exit with every face live on one channel ends cleanly.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from coretools import Client, server_channels


def test_destroy_context_with_live_users_of_one_channel(core_ioc):
    client = Client(core_ioc, """
        from CaChannel import CaChannel, CaChannelException, PV, ca, core, util
        from CaChannel.monitor import Monitor
        pv = PV("catest"); assert pv.wait_for_connection(5)
        chan = CaChannel("catest"); chan.searchw()
        chan.add_masked_array_event(None, None, None, lambda args, user: None)
        mon = Monitor("catest")
        assert util.caget("catest") is not None
        (shared,) = [ch for ch in core.channels() if ch.name == "catest"]
        pause("before")
        ca.destroy_context()
        try:
            chan.getw()
        except CaChannelException as exc:
            assert exc.status == ca.ECA_BADCHID, exc
        else:
            raise AssertionError("getw on a destroyed context's channel did not raise")
        assert util.caget("catest") is not None            # a new context, a new channel
        fresh = CaChannel("catest"); fresh.searchw(); assert fresh.getw() is not None
        assert pv.get(use_monitor=False, timeout=0.5) is None   # dead until reconnect()
        assert pv.reconnect(5) and pv.get(use_monitor=False) is not None
        mon.close(); chan.clear_channel()                   # dead ones: no crash
        (new,) = [ch for ch in core.channels() if ch.name == "catest"]
        assert new is not shared and shared.closed and new.connected
        pause("after")
    """)
    client.wait_pause("before")
    assert server_channels(core_ioc, "catest") == 1
    client.go()
    client.wait_pause("after")
    assert server_channels(core_ioc, "catest") == 1
    client.go()
    client.finish()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_with_live_users_of_one_channel(core_ioc):
    client = Client(core_ioc, """
        import json, os
        from CaChannel import CaChannel, CaChannelException, PV, ca, core, util
        pv = PV("catest"); assert pv.wait_for_connection(5)
        chan = CaChannel("catest"); chan.searchw()
        assert util.caget("catest") is not None
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            out = {}
            try:
                chan.getw()
                out["old"] = "no error"
            except CaChannelException as exc:
                out["old"] = [int(exc.status), "fork" in str(exc)]
            out["cache"] = [ch.name for ch in core.channels()]
            out["util"] = util.caget("catest") is not None
            child_pv = PV("catest")
            out["pv"] = child_pv.wait_for_connection(5) and child_pv.get() is not None
            os.write(w, json.dumps(out).encode())
            os._exit(0)
        os.close(w)
        _, status = os.waitpid(pid, 0)
        data = json.loads(os.read(r, 65536).decode())
        assert status == 0, status
        assert data == {"old": [int(ca.ECA_BADCHID), True], "cache": [], "util": True, "pv": True}, data
        assert chan.getw() is not None and pv.get(use_monitor=False) is not None   # the parent goes on
        pause("done")
    """)
    client.wait_pause("done")
    assert server_channels(core_ioc, "catest") == 1   # the parent's one channel
    client.go()
    client.finish()


EXIT_SCRIPT = textwrap.dedent("""
    import asyncio, threading
    from CaChannel import CaChannel, PV, aio, util
    from CaChannel.monitor import ArrayMonitor, Monitor
    name = "cawave"
    pv = PV(name, callback=lambda **kw: None)
    assert pv.wait_for_connection(5)
    chan = CaChannel(name); chan.searchw()
    chan.add_masked_array_event(None, None, None, lambda args, user: None)
    mon = Monitor(name, lambda args, user: None)
    arr = ArrayMonitor(name, buffers=2, priority=0)
    started = threading.Event()
    def loop():
        async def main():
            aio.camonitor(name, lambda value: None)
            await aio.caget(name)
            started.set()
            await asyncio.sleep(3600)
        asyncio.run(main())
    threading.Thread(target=loop, daemon=True).start()
    assert started.wait(10)
    util.camonitor(name, callback=lambda args, user: None)
    print("LIVE", flush=True)
""")


def test_interpreter_exit_with_every_face_live_on_one_channel(core_ioc):
    env = dict(os.environ)
    env.update(core_ioc.client_env())
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert "LIVE" in proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
