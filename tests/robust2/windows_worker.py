"""Worker of test_windows.py (issue 10 item 5): Python code that runs in the
middle of a ca call (a value's conversion, a finalizer, a callback libca runs
inside the call) clears the channel, and the freed chid is taken over at once
by a new channel to another PV (libca reuses its channel memory): the call
must report the channel dead, never act on the other PV. And read buffers
must live until the settle point of their own context or sync group."""
from __future__ import annotations

import gc
import numbers
import sys
import threading
import time

from r2cases import main

from CaChannel import ca

SCALAR, SCALAR_VICTIM = "catest", "ca:scalar:DOUBLE"
WAVE, WAVE_VICTIM = "ca:wave:DOUBLE", "cawave"
MARK = 7.25


def context():
    assert ca.create_context(True) == ca.ECA_NORMAL


def connect(name):
    st, ch = ca.create_channel(name)
    assert st == ca.ECA_NORMAL and ca.pend_io(5) == ca.ECA_NORMAL, name
    return ch


def read(ch, count=None):
    st, v = ca.get(ch, count=count)
    assert st == ca.ECA_NORMAL and ca.pend_io(5) == ca.ECA_NORMAL
    return v.get()


class Scene:
    """A channel ``ch`` and a victim PV set to a marker; ``strike()`` clears
    ``ch`` and connects a new channel to the victim, which libca allocates in
    the chid memory just freed."""

    def __init__(self, name=SCALAR, victim=SCALAR_VICTIM):
        context()
        self.ch = connect(name)
        self.victim = victim
        self.probe = connect(victim)
        self.mark = [MARK] * 10 if victim == WAVE_VICTIM else MARK
        assert ca.put(self.probe, self.mark) == ca.ECA_NORMAL
        ca.pend_io(5)
        self.before = read(self.probe, count=10 if victim == WAVE_VICTIM else None)
        self.taken = []
        self.struck = 0

    def strike(self):
        self.struck += 1
        if self.struck > 1:
            return
        ca.clear_channel(self.ch)
        st, new = ca.create_channel(self.victim)
        ca.pend_io(5)
        self.taken.append(new)

    def outcome(self, result):
        ca.pend_io(5)
        ca.flush_io()
        after = read(self.probe, count=10 if self.victim == WAVE_VICTIM else None)
        return {"result": result, "victim_unchanged": after == self.before,
                "struck": self.struck > 0, "ch_state": int(ca.state(self.ch))}


def status(x):
    if isinstance(x, tuple):
        return int(x[0])
    return int(x)


class Index:
    def __init__(self, scene, value):
        self.scene, self.value = scene, value

    def __index__(self):
        self.scene.strike()
        return self.value


class Real:
    def __init__(self, scene, value):
        self.scene, self.value = scene, value

    def __float__(self):
        self.scene.strike()
        return self.value


numbers.Real.register(Real)


class Seq:
    """A sequence whose slicing (the conversion's first step) clears."""

    def __init__(self, scene, items):
        self.scene, self.items = scene, items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.scene.strike()
        return self.items[i]


class Finalizer:
    """Cyclic garbage whose finalizer clears: runs at the next collection."""

    def __init__(self, scene):
        self.scene = scene
        self.me = self

    def __del__(self):
        self.scene.strike()


def with_gc_finalizer(scene, call):
    Finalizer(scene)
    old = gc.get_threshold()
    gc.set_threshold(1)   # the next container allocation collects it
    try:
        return call()
    finally:
        gc.set_threshold(*old)


def case_put(make_value, scalar=True, **kw):
    def run():
        s = Scene() if scalar else Scene(WAVE, WAVE_VICTIM)
        value = make_value(s)
        return s.outcome(status(ca.put(s.ch, value, **kw(s) if callable(kw) else kw)))
    return run


def put_count():
    s = Scene()
    return s.outcome(status(ca.put(s.ch, 123.0, count=Index(s, 1))))


def put_chtype():
    s = Scene()
    return s.outcome(status(ca.put(s.ch, 123.0, chtype=Index(s, ca.DBR_DOUBLE))))


def put_float():
    s = Scene()
    try:
        r = status(ca.put(s.ch, Real(s, 123.0)))
    except (ValueError, TypeError) as exc:
        r = type(exc).__name__
    return s.outcome(r)


def put_sequence():
    s = Scene(WAVE, WAVE_VICTIM)
    return s.outcome(status(ca.put(s.ch, Seq(s, [1.0, 2.0, 3.0, 4.0]))))


def put_numpy_conversion():
    s = Scene(WAVE, WAVE_VICTIM)
    return s.outcome(status(ca.put(s.ch, [Real(s, 1.0), 2.0, 3.0])))


def put_callback_count():
    s = Scene()
    calls = []
    r = status(ca.put(s.ch, 123.0, count=Index(s, 1), callback=calls.append))
    out = s.outcome(r)
    out["callbacks"] = len(calls)
    return out


def put_gc_finalizer():
    s = Scene(WAVE, WAVE_VICTIM)
    return s.outcome(with_gc_finalizer(s, lambda: status(ca.put(s.ch, [1.0, 2.0, 3.0, 4.0]))))


def sg_put_count():
    s = Scene()
    st, gid = ca.sg_create()
    r = status(ca.sg_put(gid, s.ch, 123.0, count=Index(s, 1)))
    ca.sg_block(gid, 5)
    ca.sg_delete(gid)
    return s.outcome(r)


def sg_put_float():
    s = Scene()
    st, gid = ca.sg_create()
    try:
        r = status(ca.sg_put(gid, s.ch, Real(s, 123.0)))
    except (ValueError, TypeError) as exc:
        r = type(exc).__name__
    ca.sg_block(gid, 5)
    ca.sg_delete(gid)
    return s.outcome(r)


def get_count():
    """A get on the freed chid would read the other PV."""
    s = Scene()
    st, v = ca.get(s.ch, count=Index(s, 1))
    if v is not None:
        ca.pend_io(5)
    return s.outcome([int(st), v is None])


def get_callback_count():
    s = Scene()
    got = []
    done = threading.Event()
    st, v = ca.get(s.ch, count=Index(s, 1), callback=lambda a: (got.append(a), done.set()))
    done.wait(2 if st == ca.ECA_NORMAL else 0)
    return s.outcome([int(st), len(got)])


def sg_get_count():
    s = Scene()
    st, gid = ca.sg_create()
    st2, v = ca.sg_get(gid, s.ch, count=Index(s, 1))
    ca.sg_block(gid, 5)
    ca.sg_delete(gid)
    return s.outcome([int(st2), v is None])


def subscription_count():
    s = Scene()
    events = []
    st, ev = ca.create_subscription(s.ch, events.append, count=Index(s, 1))
    ca.pend_event(0.2)
    return s.outcome([int(st), ev is None, len(events)])


def access_rights_inline_clear():
    """libca runs the handler inside replace_access_rights_event; clearing
    the channel there must neither deadlock nor free the chid under the call."""
    context()
    ch = connect(SCALAR)
    seen = []

    def handler(args):
        seen.append(int(ca.clear_channel(ch)))

    r = int(ca.replace_access_rights_event(ch, handler))
    return [r, seen, int(ca.clear_channel(ch)), int(ca.state(ch))]


# --------------------------------------------------------------- read buffers

N_PROBES = 64


def filled_wave():
    ch = connect(WAVE_VICTIM)
    assert ca.put(ch, [float(i + 1) for i in range(20)]) == ca.ECA_NORMAL
    ca.pend_io(5)
    assert read(ch)[0] == 1.0
    return ch


def probes_clean(probes):
    return all(p == bytes(len(p)) for p in probes)


def buffer_other_context():
    """A read pending in context A must keep its buffer through a pend_io of
    context B in the same thread: the buffer freed there would be reused by
    the next allocation (the probes) and then written by libca."""
    context()
    ctx_a = ca.current_context()
    ch = filled_wave()
    st, v = ca.get(ch)               # queued in A, not flushed
    ca.detach_context()
    context()                        # B
    ca.pend_io(1)                    # B's settle point, not A's
    ctx_b = ca.current_context()
    ca.detach_context()
    ca.attach_context(ctx_a)
    size = 20 * 8
    del v
    probes = [bytes(size) for _ in range(N_PROBES)]
    r = int(ca.pend_io(5))           # A's reply arrives now
    out = [r, probes_clean(probes)]
    ca.detach_context()
    ca.attach_context(ctx_b)
    ca.destroy_context()
    ca.attach_context(ctx_a)
    return out


def buffer_other_context_destroyed():
    """Destroying context B is no settle point for context A's reads."""
    context()
    ctx_a = ca.current_context()
    ch = filled_wave()
    st, v = ca.get(ch)               # queued in A, not flushed
    ca.detach_context()
    context()                        # B
    connect(SCALAR)
    ca.destroy_context()
    ca.attach_context(ctx_a)
    del v
    probes = [bytes(20 * 8) for _ in range(N_PROBES)]
    return [int(ca.pend_io(5)), probes_clean(probes)]


def buffer_other_group():
    """A read pending in sync group 1 must keep its buffer through the
    settle point of group 2."""
    context()
    ch = filled_wave()
    st, g1 = ca.sg_create()
    st, g2 = ca.sg_create()
    st, v = ca.sg_get(g1, ch)        # queued in group 1, not flushed
    ca.sg_reset(g2)                  # group 2's settle point
    del v
    probes = [bytes(20 * 8) for _ in range(N_PROBES)]
    r = int(ca.sg_block(g1, 5))
    out = [r, probes_clean(probes)]
    ca.sg_delete(g1)
    ca.sg_delete(g2)
    return out


def buffer_evdisallow():
    """A pend_io made inside a callback returns EVDISALLOW without doing
    anything: it is no settle point for the reads pending in that context."""
    context()
    ctx_a = ca.current_context()
    wave = filled_wave()
    x = connect(SCALAR_VICTIM)
    seen = []
    second = threading.Event()

    def on_event(args):
        seen.append(int(ca.pend_io(0.1)))   # in libca's callback thread
        if len(seen) >= 2:
            second.set()

    st, ev = ca.create_subscription(x, on_event)
    ca.flush_io()
    end = time.monotonic() + 5
    while not seen and time.monotonic() < end:
        ca.pend_event(0.01)
    st, v = ca.get(wave)             # queued in A, not flushed
    # an update of x from another context: A's callback thread runs pend_io
    ca.detach_context()
    context()
    ctx_b = ca.current_context()
    writer = connect(SCALAR_VICTIM)
    ca.put(writer, read(writer) + 1.0)   # a change, so that x's monitor fires
    ca.flush_io()
    fired = second.wait(5)
    ca.detach_context()
    ca.attach_context(ctx_a)
    del v
    probes = [bytes(20 * 8) for _ in range(N_PROBES)]
    r = int(ca.pend_io(5))
    out = [fired, sorted(set(seen)), r, probes_clean(probes)]
    ca.clear_subscription(ev)
    ca.detach_context()
    ca.attach_context(ctx_b)
    ca.destroy_context()
    ca.attach_context(ctx_a)
    return out


def buffer_stress(rounds=200):
    """Two threads, two contexts: one reads into buffers it drops at once
    while the other settles its own context all the time."""
    bad = []
    stop = threading.Event()

    def other():
        context()
        ch = connect(SCALAR)
        while not stop.is_set():
            ca.get(ch)
            ca.pend_io(1)

    t = threading.Thread(target=other, daemon=True)
    t.start()
    context()
    ch = filled_wave()
    for _ in range(rounds):
        st, v = ca.get(ch)
        del v
        probes = [bytes(20 * 8) for _ in range(8)]
        ca.pend_io(5)
        if not probes_clean(probes):
            bad.append(1)
    stop.set()
    t.join(10)
    return [len(bad), rounds]


# ------------------------------------------------ destroy_context's registry walk

def registry_walk():
    """destroy_context must not hold a pointer to the next registered channel
    while it waits (GIL released) for a libca call on a channel of the
    context: another thread may clear and free that next channel meanwhile.

    b1 (context B) is registered before a1 (context A), so it follows a1 in
    the registry. A thread sits inside replace_access_rights_event(a1) (its
    handler, run by libca inside the call, waits); destroy_context of A waits
    for it; meanwhile another thread clears b1, drops it and reuses its memory
    (0xff bytes); then the handler returns."""
    context()
    ctx_b = ca.current_context()
    b1 = [connect(SCALAR)]
    ca.detach_context()
    context()
    ctx_a = ca.current_context()
    a1 = connect(SCALAR)
    release = threading.Event()
    inside = threading.Event()
    log = []

    def holder():
        ca.attach_context(ctx_a)

        def handler(args):
            inside.set()
            release.wait(10)
        log.append(int(ca.replace_access_rights_event(a1, handler)))

    def clearer():
        ca.attach_context(ctx_b)
        end = time.monotonic() + 10
        # destroy_context marks a1 dead before it waits for the holder
        while ca.state(a1) != ca.ChannelState.CLOSED and time.monotonic() < end:
            time.sleep(0.001)
        log.append(int(ca.clear_channel(b1[0])))
        b1.clear()
        gc.collect()
        junk = [b"\xff" * n for n in range(40, 100) for _ in range(8)]
        log.append(len(junk))
        release.set()
        ca.destroy_context()

    th = threading.Thread(target=holder)
    th.start()
    assert inside.wait(10)
    tc = threading.Thread(target=clearer)
    tc.start()
    ca.destroy_context()             # context A
    th.join(10)
    tc.join(10)
    return [log[0] if log else None, int(ca.state(a1)), not th.is_alive(), not tc.is_alive()]


CASES = {
    "put_count": put_count,
    "put_chtype": put_chtype,
    "put_float": put_float,
    "put_sequence": put_sequence,
    "put_numpy_conversion": put_numpy_conversion,
    "put_callback_count": put_callback_count,
    "put_gc_finalizer": put_gc_finalizer,
    "sg_put_count": sg_put_count,
    "sg_put_float": sg_put_float,
    "get_count": get_count,
    "get_callback_count": get_callback_count,
    "sg_get_count": sg_get_count,
    "subscription_count": subscription_count,
    "access_rights_inline_clear": access_rights_inline_clear,
    "buffer_other_context": buffer_other_context,
    "buffer_other_context_destroyed": buffer_other_context_destroyed,
    "buffer_other_group": buffer_other_group,
    "buffer_evdisallow": buffer_evdisallow,
    "buffer_stress": buffer_stress,
    "buffer_stress_long": lambda: buffer_stress(20000),
    "registry_walk": registry_walk,
    "registry_walk_stress": lambda: [registry_walk() for _ in range(50)],
}

if __name__ == "__main__":
    main(CASES, sys.argv[1:])
