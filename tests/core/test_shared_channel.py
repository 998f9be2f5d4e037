"""One libca channel per (name, priority) serves every face (judged by the server).

The client runs in a subprocess against a private IOC, so that the IOC's
``casr 2`` report lists only its channels. Runs on the backend the suite runs
on (``CACHANNEL_BACKEND`` is inherited).
"""
from __future__ import annotations

import pytest

from coretools import Client, server_channels, wait_server_channels


def test_five_faces_one_channel(core_ioc):
    client = Client(core_ioc, """
        import asyncio
        from CaChannel import CaChannel, PV, aio, core, util
        from CaChannel.monitor import ArrayMonitor
        assert util.caget("cawave", count=2) is not None
        pv = PV("cawave"); assert pv.wait_for_connection(5)
        assert asyncio.run(aio.caget("cawave")) is not None
        chan = CaChannel("cawave"); chan.searchw()
        mon = ArrayMonitor("cawave", buffers=2, priority=0)
        assert mon.get(5) is not None
        (shared,) = [ch for ch in core.channels() if ch.name == "cawave"]
        assert shared.users >= 4, shared       # PV, aio, CaChannel, ArrayMonitor (util released)
        pause("five")
        aio.purge_channel_caches(); mon.close(); chan.clear_channel(); pv.disconnect()
        assert shared.users == 0 and shared.connected   # idle, still open for reuse
        pause("idle")
        util.clear_cache()                               # closes idle channels
        pause("closed")
    """)
    client.wait_pause("five")
    assert server_channels(core_ioc, "cawave") == 1
    client.go()
    client.wait_pause("idle")
    assert server_channels(core_ioc, "cawave") == 1
    client.go()
    client.wait_pause("closed")
    assert wait_server_channels(core_ioc, "cawave", 0) == 0
    client.go()
    client.finish()


def test_priorities_are_separate_channels(core_ioc):
    client = Client(core_ioc, """
        from CaChannel import core
        from CaChannel.monitor import ArrayMonitor
        a = ArrayMonitor("cawave", buffers=2, priority=0)
        b = ArrayMonitor("cawave", buffers=2, priority=1)
        assert a.get(5) is not None and b.get(5) is not None
        pause("two")
        a.close(); b.close()
    """)
    client.wait_pause("two")
    assert server_channels(core_ioc, "cawave") == 2
    client.go()
    client.finish()


def test_ophyd_layer_caget_caput_reuse_one_channel(core_ioc):
    pytest.importorskip("ophyd")
    client = Client(core_ioc, """
        import CaChannel.ophyd as cl
        from CaChannel import core
        assert cl.caput("catest", 1.5, wait=True) == 1
        (first,) = [ch for ch in core.channels() if ch.name == "catest"]
        for i in range(20):
            assert cl.caput("catest", float(i), wait=True) == 1
            assert cl.caget("catest") == float(i)
        (again,) = [ch for ch in core.channels() if ch.name == "catest"]
        assert again is first, (first, again)
        pause("after")
    """)
    client.wait_pause("after")
    assert server_channels(core_ioc, "catest") == 1
    client.go()
    client.finish()
