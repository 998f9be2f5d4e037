"""Worker of test_destroy_context.py: every call of ca-api.md section 2 (and
the CaChannel/util layer) after ``ca.destroy_context()``, against the session
IOC (environment inherited). Each case makes a context with a channel, a
subscription, a sync group and a pending read, destroys the context, then
makes the one call under test with the dead handles (or a new channel)."""
from __future__ import annotations

import sys
import threading
import types

from r2cases import main

from CaChannel import CaChannel, CaChannelException, ca, util

PV = "catest"


def dead():
    """A destroyed context and the handles it had."""
    ca.destroy_context()   # whatever the previous case left
    assert ca.create_context(True) == ca.ECA_NORMAL
    st, ch = ca.create_channel(PV)
    assert st == ca.ECA_NORMAL and ca.pend_io(5) == ca.ECA_NORMAL
    st, ev = ca.create_subscription(ch, lambda args: None)
    assert st == ca.ECA_NORMAL
    st, gid = ca.sg_create()
    assert st == ca.ECA_NORMAL
    st, sgv = ca.sg_get(gid, ch)      # pending in the group
    st, value = ca.get(ch)            # pending until a pend_io that never comes
    ctx = ca.current_context()
    ca.destroy_context()
    return types.SimpleNamespace(ch=ch, ev=ev, gid=gid, ctx=ctx, value=value, sgv=sgv)


def read_new(name=PV):
    """A new channel after the destroy: connects and reads (libca makes a context)."""
    st, ch = ca.create_channel(name)
    pend = ca.pend_io(5)
    st2, v = ca.get(ch)
    pend2 = ca.pend_io(5)
    # catest's value is whatever other tests left: its type is what is checked
    return [int(st), int(pend), int(st2), int(pend2),
            type(v.get()).__name__ if v is not None else None]


def st(x):
    return int(x)


def pair(x):
    return [int(x[0]), x[1] is None]


def cachannel_dead():
    """A CaChannel and util cache whose (CaChannel-made) context was destroyed."""
    ca.destroy_context()
    chan = CaChannel(PV)
    chan.searchw()
    util.caget(PV)
    ca.destroy_context()
    return chan


def then(result, _unused):
    """The result of a call, and whether a new channel works afterwards."""
    return [result, read_new()]


CASES = {
    # 2.2 context
    "create_context": lambda: (dead(), [st(ca.create_context(True)), read_new()])[1],
    "destroy_context_again": lambda: (dead(), ca.destroy_context(), ca.current_context())[2],
    "attach_context": lambda: ca.attach_context(dead().ctx),
    "detach_context": lambda: (dead(), ca.detach_context(), read_new())[2],
    "current_context": lambda: (dead(), ca.current_context())[1],
    "current_context_new": lambda: (dead(), read_new(), ca.current_context() is not None)[2],
    "show_context": lambda: ca.show_context(dead().ctx),
    "show_context_none": lambda: (dead(), ca.show_context(None), read_new())[2],
    # 2.3 channels
    "create_channel": lambda: (dead(), read_new())[1],
    "clear_channel": lambda: then(st(ca.clear_channel(dead().ch)), None),
    "clear_channel_twice": lambda: (lambda s: [st(ca.clear_channel(s.ch)),
                                               st(ca.clear_channel(s.ch))])(dead()),
    "change_connection_event": lambda: then(st(ca.change_connection_event(dead().ch, print)),
                                            None),
    "change_connection_event_none": lambda: st(ca.change_connection_event(dead().ch, None)),
    # 2.4 read, write, subscribe
    "get": lambda: then(pair(ca.get(dead().ch)), None),
    "get_callback": lambda: pair(ca.get(dead().ch, callback=print)),
    "get_count": lambda: pair(ca.get(dead().ch, ca.DBR_DOUBLE, 1)),
    "put": lambda: then(st(ca.put(dead().ch, 1.5)), None),
    "put_callback": lambda: st(ca.put(dead().ch, 1.5, callback=print)),
    "create_subscription": lambda: pair(ca.create_subscription(dead().ch, print)),
    "clear_subscription": lambda: then(st(ca.clear_subscription(dead().ev)), None),
    "pending_value": lambda: (lambda s: [s.value.get() is not None, s.sgv.get() is not None])(dead()),
    # 2.5 execution (libca makes a new context on demand)
    "pend_io": lambda: (dead(), st(ca.pend_io(1)))[1],
    "pend_event": lambda: (dead(), st(ca.pend_event(0.01)))[1],
    "poll": lambda: (dead(), st(ca.poll()))[1],
    "pend": lambda: (dead(), st(ca.pend(0.01, True)))[1],
    "flush_io": lambda: (dead(), st(ca.flush_io()))[1],
    "test_io": lambda: (dead(), st(ca.test_io()))[1],
    # 2.6 channel information
    "field_type": lambda: ca.field_type(dead().ch),
    "element_count": lambda: ca.element_count(dead().ch),
    "name": lambda: ca.name(dead().ch),
    "state": lambda: st(ca.state(dead().ch)),
    "host_name": lambda: ca.host_name(dead().ch),
    "read_access": lambda: ca.read_access(dead().ch),
    "write_access": lambda: ca.write_access(dead().ch),
    "message": lambda: (dead(), ca.message(ca.ECA_NORMAL))[1],
    "version": lambda: (dead(), isinstance(ca.version(), str))[1],
    # 2.7 handlers
    "replace_access_rights_event": lambda: then(
        st(ca.replace_access_rights_event(dead().ch, print)), None),
    "replace_access_rights_event_none": lambda: st(ca.replace_access_rights_event(dead().ch)),
    "add_exception_event": lambda: (dead(), [st(ca.add_exception_event(print)),
                                             st(ca.add_exception_event(None)), read_new()])[1],
    "replace_printf_handler": lambda: (dead(), [st(ca.replace_printf_handler(print)),
                                                st(ca.replace_printf_handler(None)),
                                                read_new()])[1],
    # 2.12 synchronous groups: the old group is gone with its context
    "sg_create": lambda: (dead(), pair(ca.sg_create())[0])[1],
    "sg_delete": lambda: st(ca.sg_delete(dead().gid)),
    "sg_get": lambda: (lambda s: pair(ca.sg_get(s.gid, s.ch)))(dead()),
    "sg_get_new_group": lambda: (lambda s: pair(ca.sg_get(ca.sg_create()[1], s.ch)))(dead()),
    "sg_put": lambda: (lambda s: st(ca.sg_put(s.gid, s.ch, 2.5)))(dead()),
    "sg_block": lambda: st(ca.sg_block(dead().gid, 0.1)),
    "sg_test": lambda: st(ca.sg_test(dead().gid)),
    "sg_reset": lambda: st(ca.sg_reset(dead().gid)),
    # CaChannel and util on a destroyed context
    "CaChannel_getw_old": lambda: cachannel_dead().getw(),
    "CaChannel_putw_old": lambda: cachannel_dead().putw(1.0),
    "CaChannel_state_old": lambda: st(cachannel_dead().state()),
    "CaChannel_new_searchw": lambda: (cachannel_dead(), new_getw())[1],
    "CaChannel_old_searchw_again": lambda: (lambda c: (c.searchw(), type(c.getw()).__name__)[1])(
        cachannel_dead()),
    "util_caget": lambda: (cachannel_dead(), type(util.caget(PV)).__name__)[1],
    # another thread was attached to the context when it was destroyed
    "thread_CaChannel": lambda: in_thread(thread_cachannel),
    "thread_create_context": lambda: in_thread(thread_create_context),
    "thread_current_context": lambda: in_thread(thread_current_context),
}


def in_thread(body):
    """body(ctx) in a thread attached to a context that the main thread then
    destroys; returns what body returned (or raised)."""
    ca.destroy_context()
    assert ca.create_context(True) == ca.ECA_NORMAL
    ctx = ca.current_context()
    attached, destroyed = threading.Event(), threading.Event()
    out = []

    def run():
        ca.attach_context(ctx)
        st, ch = ca.create_channel(PV)
        ca.pend_io(5)
        attached.set()
        destroyed.wait(10)
        try:
            out.append(body(ch))
        except Exception as exc:
            out.append([type(exc).__name__, str(exc)])

    t = threading.Thread(target=run)
    t.start()
    assert attached.wait(10)
    ca.destroy_context()
    destroyed.set()
    t.join(20)
    return out[0] if out else "thread did not finish"


def thread_cachannel(_old):
    """CaChannel in a thread that was attached to the destroyed context."""
    c = CaChannel(PV)
    c.searchw()
    return type(c.getw()).__name__


def thread_current_context(_old):
    """Such a thread has no usable current context."""
    return ca.current_context() is None


def thread_create_context(old):
    """The low-level API: create_context in such a thread makes a new context."""
    r = [int(ca.get(old)[0]), int(ca.create_context(True))]
    return r + read_new()


def new_getw():
    c = CaChannel(PV)
    c.searchw()
    return type(c.getw()).__name__


if __name__ == "__main__":
    main(CASES, sys.argv[1:])
