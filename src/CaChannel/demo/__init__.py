"""``python -m CaChannel demo``: a tour of CaChannel on an embedded soft IOC.

:func:`run` starts a private CA repeater and a real soft IOC
(:class:`CaChannel.testing.IOC`, 127.0.0.1 on a free port) loaded with the
shipped ``beamline.db`` (PV prefix ``demo:``):

=============================  ================================================
``demo:ring:current``          calc: ring current wandering around 400 mA
``demo:ring:mode``             mbbo: machine mode (Shutdown, Injection, ...)
``demo:shutter``               bo: photon shutter, Closed / Open
``demo:m1:setpoint``           ao: motor-like set-point (mm)
``demo:m1:readback``           calc: readback moving towards the set-point
``demo:sample:temp:setpoint``  ao: temperature set-point (degC)
``demo:sample:temp``           calc: temperature, alarm limits 10/30 and 5/40
``demo:det:image``             waveform: 1024 x 1024 USHORT detector image
``demo:image1:ArrayData`` ...  a simulated areaDetector NDStdArrays plugin
                               (``adsim.db``, see :mod:`CaChannel.demo.adsim`)
=============================  ================================================

It points the client environment (``EPICS_CA_ADDR_LIST`` ...) at that IOC
before the first CA context exists, runs a writer thread that refreshes the
image several times per second with CaChannel puts, and then shows
``cainfo``, ``caget`` with units and alarm state, ``caput`` with wait and the
readback, a ``camonitor`` of the ring current, an image monitor with frame
rate and throughput, and an areaDetector image reader
(:class:`CaChannel.areadetector.ImageReader`) on the simulated plugin with
images/s, MB/s and the frames dropped and lost. It ends after about ``seconds`` seconds and stops the
IOC and the repeater by PID (also on Ctrl-C or SIGTERM).

The database can be used for your own experiments::

    from CaChannel.demo import DATABASE
    from CaChannel.testing import IOC
    with IOC([DATABASE]) as ioc:
        ...
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO

from ..testing import IOC, free_port

__all__ = ["DATABASE", "PREFIX", "run"]

#: the shipped demo database (``beamline.db``)
DATABASE = Path(__file__).with_name("beamline.db")
#: PV prefix of the demo records
PREFIX = "demo:"
#: PV prefix of the simulated NDStdArrays plugin
AD_PREFIX = "demo:image1:"

WIDTH = HEIGHT = 1024
_FRAME_RATE = 10.0  # writer thread target, frames per second

_CA_REPEATER_REGISTER = 24
_CA_REPEATER_CONFIRM = 17


class _Repeater:
    """A private CA repeater (``python -m CaChannel._repeater``) on its own port.

    libca spawns a ``caRepeater`` process that outlives the client when no
    repeater answers on ``EPICS_CA_REPEATER_PORT``; running our own on a free
    port and stopping it by PID keeps the demo from leaving one behind.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 15.0) -> None:
        env = dict(os.environ, EPICS_CA_REPEATER_PORT=str(self.port))
        self.proc = subprocess.Popen([sys.executable, "-m", "CaChannel._repeater"], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        # wait for the repeater's REPEATER_CONFIRM to our registration
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", 0))
            msg = struct.pack(">HHHHII", _CA_REPEATER_REGISTER, 0, 0, 0, 0,
                              struct.unpack(">I", socket.inet_aton("127.0.0.1"))[0])
            deadline = time.monotonic() + timeout
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("CA repeater exited with status %s" % self.proc.returncode)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("CA repeater on port %d did not answer within %g s"
                                       % (self.port, timeout))
                try:
                    sock.sendto(msg, ("127.0.0.1", self.port))
                    sock.settimeout(min(0.2, left))
                    data = sock.recv(1024)
                except OSError:  # timeout, or ICMP "port unreachable" before it binds
                    continue
                if len(data) >= 2 and struct.unpack(">H", data[:2])[0] == _CA_REPEATER_CONFIRM:
                    return
        finally:
            sock.close()

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()  # by PID (Popen.terminate -> kill(pid, SIGTERM))
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class _ImageWriter(threading.Thread):
    """Writes a moving spot with noise to ``demo:det:image`` ~10 times per second."""

    def __init__(self, pv: str, rate: float = _FRAME_RATE) -> None:
        super().__init__(name="demo-image-writer", daemon=True)
        self.pv = pv
        self.period = 1.0 / rate
        self.stop_event = threading.Event()
        self.frames = 0
        self.error: Optional[BaseException] = None
        # set once the first frame is on the IOC (or the writer failed)
        self.first_frame = threading.Event()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the demo
            self.error = exc
        finally:
            self.first_frame.set()

    def _run(self) -> None:
        import numpy as np
        from .. import CaChannel, ca

        rng = np.random.default_rng(1)
        y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
        spot = (20000 * np.exp(-(((x - WIDTH / 2) ** 2 + (y - HEIGHT / 2) ** 2) / (2 * 40.0 ** 2))))
        spot = spot.astype(np.uint16)
        noise = [rng.integers(0, 400, size=(HEIGHT, WIDTH), dtype=np.uint16) for _ in range(4)]
        chan = CaChannel(self.pv)
        chan.searchw()
        done = threading.Event()

        def on_put(_args: Dict[str, Any], _user: Any) -> None:
            done.set()

        n = 0
        while not self.stop_event.is_set():
            angle = n * 0.15
            frame = np.roll(spot, (int(200 * np.sin(angle)), int(300 * np.cos(angle))), axis=(0, 1))
            frame += noise[n % len(noise)]
            done.clear()
            # 16-bit unsigned on the wire: DBR_ENUM is CA's uint16 type (the
            # USHORT waveform is served as DBF_LONG, twice the bytes)
            chan.array_put_callback(frame.ravel(), ca.DBR_ENUM, None, on_put)
            chan.flush_io()
            if not done.wait(5.0):
                raise RuntimeError("image put did not complete within 5 s")
            n += 1
            self.frames = n
            self.first_frame.set()
            self.stop_event.wait(self.period)  # pacing, not synchronisation
        chan.clear_channel()


def _section(out: TextIO, title: str) -> None:
    out.write("\n== %s ==\n" % title)
    out.flush()


def _fmt(value: Any, precision: Optional[int]) -> str:
    if isinstance(value, float):
        return "%.*f" % (precision if precision is not None else 3, value)
    return str(value)


def _show(chan: Any, out: TextIO) -> Dict[str, Any]:
    """Print ``name value units  status severity`` from a CTRL get; return the dict."""
    from .. import ca

    info = chan.getw(ca.dbf_type_to_DBR_CTRL(chan.field_type()))
    value = info["pv_value"]
    states = info.get("pv_statestrings")
    if states:
        value = "%s (%d)" % (states[value], value)
    text = "%s %s" % (_fmt(value, info.get("pv_precision")), info.get("pv_units", ""))
    out.write("  %-28s %-22s %s %s\n" % (chan.name(), text.rstrip(),
                                         ca.alarmStatusString(info["pv_status"]),
                                         ca.alarmSeverityString(info["pv_severity"])))
    out.flush()
    return info


def run(seconds: float = 15.0, port: Optional[int] = None, out: Optional[TextIO] = None) -> int:
    """Run the demo; returns the exit status (0 on success).

    ``seconds`` is the approximate total duration, ``port`` the IOC's CA
    port (default: free). Call it before anything else in the process used
    Channel Access: the client environment is set here, and libca reads it
    when the first context is created.
    """
    out = out if out is not None else sys.stdout
    t0 = time.monotonic()
    seconds = max(float(seconds), 4.0)
    repeater = _Repeater()
    ioc: Optional[IOC] = None
    writer: Optional[_ImageWriter] = None
    try:
        repeater.start()
        os.environ["EPICS_CA_REPEATER_PORT"] = str(repeater.port)
        from .adsim import DATABASE as ADSIM_DATABASE
        ioc = IOC([DATABASE, ADSIM_DATABASE], macros="PLUGIN=" + AD_PREFIX,
                  port=port, ready_pv=PREFIX + "ring:current",
                  env={"EPICS_CA_REPEATER_PORT": str(repeater.port),
                       "EPICS_CAS_BEACON_PORT": str(repeater.port)})
        ioc.start()
        os.environ.update(ioc.client_env())  # before the first CA context
        from .. import ca
        if ca.create_context(True) != ca.ECA_NORMAL:
            raise RuntimeError("cannot create a CA context")
        out.write("CaChannel demo: soft IOC pid %d on 127.0.0.1:%d, CA repeater pid %d, "
                  "backend %r, libca %s\n"
                  % (ioc.pid, ioc.port, repeater.proc.pid, ca.backend, ca.version()))
        out.write("client environment: %s\n" % " ".join(
            "%s=%s" % kv for kv in sorted(ioc.client_env().items())))
        out.flush()
        writer = _ImageWriter(PREFIX + "det:image")
        writer.start()
        # the image record holds no frame (UDF/INVALID) until the first put
        writer.first_frame.wait(10.0)
        _tour(out, seconds, t0, writer)
        if writer.error is not None:
            raise writer.error
        return 0
    except KeyboardInterrupt:
        out.write("\ninterrupted\n")
        return 130
    finally:
        if writer is not None:
            writer.stop_event.set()
            writer.join(10)
        _close_ca()
        if ioc is not None:
            ioc.stop()
        repeater.stop()
        out.write("demo IOC and CA repeater stopped (%.1f s)\n" % (time.monotonic() - t0))
        out.flush()


def _close_ca() -> None:
    """Clear every channel and destroy the context before the IOC goes away."""
    ca = sys.modules.get(__package__.rpartition(".")[0] + ".ca")
    if ca is None or ca.current_context() is None:
        return
    util = sys.modules.get(__package__.rpartition(".")[0] + ".util")
    if util is not None:
        util.clear_cache()  # util's monitors and every idle shared channel
    ca.flush_io()
    ca.destroy_context()


def _tour(out: TextIO, seconds: float, t0: float, writer: _ImageWriter) -> None:
    import numpy as np
    from .. import CaChannel, ca
    from .. import util

    P = PREFIX
    _section(out, "cainfo")
    for name in (P + "ring:current", P + "shutter", P + "det:image"):
        util.cainfo(name)
    out.flush()

    _section(out, "caget with units and alarm state (DBR_CTRL_*)")
    chans: Dict[str, Any] = {}
    for suffix in ("ring:current", "ring:mode", "shutter", "m1:readback", "sample:temp"):
        chan = CaChannel(P + suffix)
        chan.searchw()
        chans[suffix] = chan
        _show(chan, out)
    out.write("  caget(%r) -> %r\n" % (P + "ring:current", util.caget(P + "ring:current")))
    out.write("  caget(%r, as_string=True) -> %r\n"
              % (P + "ring:mode", util.caget(P + "ring:mode", as_string=True)))

    _section(out, "caput with wait, then the readback")
    util.caput(P + "shutter", "Open", wait=True, timeout=5)
    out.write("  caput(%r, 'Open', wait=True); caget(as_string=True) -> %r\n"
              % (P + "shutter", util.caget(P + "shutter", as_string=True)))
    target = 12.5
    arrived = threading.Event()
    lock = threading.Lock()
    seen: List[float] = []

    def on_readback(args: Dict[str, Any], _user: Any) -> None:
        with lock:
            seen.append(args["pv_value"])
            out.write("    readback %8.3f mm\n" % args["pv_value"])
            out.flush()
        if abs(args["pv_value"] - target) < 0.002:
            arrived.set()

    util.caput(P + "m1:setpoint", target, wait=True, timeout=5)
    out.write("  caput(%r, %g, wait=True) done; readback follows:\n" % (P + "m1:setpoint", target))
    out.flush()
    rb = chans["m1:readback"]
    rb.add_masked_array_event(ca.DBR_TIME_DOUBLE, None, None, on_readback)
    rb.flush_io()
    if not arrived.wait(10):
        raise RuntimeError("m1 readback did not reach %g within 10 s" % target)
    with lock:
        rb.clear_event()
        rb.flush_io()
        out.write("  readback reached %.3f mm after %d updates\n" % (target, len(seen)))
    hot = threading.Event()

    def on_temp(args: Dict[str, Any], _user: Any) -> None:
        if args["pv_severity"] != 0:
            hot.set()

    util.caput(P + "sample:temp:setpoint", 32.0, wait=True, timeout=5)
    out.write("  caput(%r, 32.0, wait=True); waiting for the HIGH alarm...\n"
              % (P + "sample:temp:setpoint"))
    temp = chans["sample:temp"]
    temp.add_masked_array_event(ca.DBR_TIME_DOUBLE, None, ca.DBE_ALARM, on_temp)
    temp.flush_io()
    if not hot.wait(10):
        raise RuntimeError("sample temperature did not go into alarm within 10 s")
    temp.clear_event()
    temp.flush_io()
    _show(temp, out)
    util.caput(P + "sample:temp:setpoint", 25.0, wait=True, timeout=5)

    left = seconds - (time.monotonic() - t0)
    monitor_s = max(1.0, min(3.0, 0.35 * left))
    _section(out, "camonitor %s for %.1f s" % (P + "ring:current", monitor_s))
    util.camonitor(P + "ring:current")
    threading.Event().wait(monitor_s)  # display time, not synchronisation
    util.camonitor(P + "ring:current", callback=())
    sys.stdout.flush()

    image_s = max(1.0, (seconds - (time.monotonic() - t0) - 0.8) / 2)
    _section(out, "image monitor %s (%dx%d USHORT) for %.1f s"
             % (P + "det:image", WIDTH, HEIGHT, image_s))
    _image_monitor(out, image_s)
    reader_s = max(1.0, seconds - (time.monotonic() - t0) - 0.8)
    _section(out, "areaDetector ImageReader %s for %.1f s" % (AD_PREFIX, reader_s))
    _image_reader(out, reader_s)

    # one synchronous read straight into a caller-owned 2-D array (no copy)
    status, chid = ca.create_channel(P + "det:image")
    if status != ca.ECA_NORMAL or ca.pend_io(5) != ca.ECA_NORMAL:
        raise RuntimeError("cannot connect %s" % (P + "det:image"))
    frame = np.empty((HEIGHT, WIDTH), dtype=np.uint16)
    status, value = ca.get(chid, out=frame)
    if status != ca.ECA_NORMAL or ca.pend_io(5) != ca.ECA_NORMAL:
        raise RuntimeError("image get failed: %s" % ca.message(status))
    peak = np.unravel_index(int(frame.argmax()), frame.shape)
    out.write("  ca.get(chid, out=frame): shape %s, dtype %s, peak %d at (y=%d, x=%d)\n"
              % (frame.shape, frame.dtype, frame.max(), peak[0], peak[1]))
    out.write("  writer thread put %d frames\n" % writer.frames)
    ca.clear_channel(chid)
    for chan in chans.values():
        chan.clear_channel()
    ca.flush_io()


def _image_monitor(out: TextIO, duration: float) -> None:
    from .. import CaChannel, ca

    lock = threading.Lock()
    stats = {"frames": 0, "bytes": 0}

    def on_frame(args: Dict[str, Any], _user: Any) -> None:
        value = args["pv_value"]
        if value is None:
            return
        with lock:
            stats["frames"] += 1
            stats["bytes"] += int(getattr(value, "nbytes", 0))

    chan = CaChannel(PREFIX + "det:image")
    chan.searchw()
    # request uint16 (DBR_ENUM) frames: 2 MiB each instead of the native DBF_LONG's 4 MiB
    chan.add_masked_array_event(ca.DBR_ENUM, None, None, on_frame, use_numpy=True)
    chan.flush_io()
    progress = _Progress(out)
    start = time.monotonic()
    tick = threading.Event()
    try:
        while True:
            elapsed = time.monotonic() - start
            with lock:
                frames, nbytes = stats["frames"], stats["bytes"]
            line = "  %5.1f s  frames %4d  %6.1f frames/s  %7.1f MB/s" % (
                elapsed, frames, frames / max(elapsed, 1e-9), nbytes / 1e6 / max(elapsed, 1e-9))
            progress.show(line, elapsed, final=elapsed >= duration)
            if elapsed >= duration:
                break
            tick.wait(min(0.25, duration - elapsed))  # progress refresh period
    finally:
        chan.clear_event()
        chan.clear_channel()
        out.flush()


class _Progress:
    """A progress line: rewritten in place on a terminal, else printed once a second."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.last = 0.0

    def show(self, line: str, elapsed: float, final: bool = False) -> None:
        if final:
            self.out.write(("\r" + line + "\n") if self.tty else (line + "\n"))
        elif self.tty:
            self.out.write("\r" + line)
        elif elapsed - self.last >= 1.0:
            self.out.write(line + "\n")
            self.last = elapsed
        self.out.flush()


def _image_reader(out: TextIO, duration: float) -> None:
    """Stream the simulated plugin at 20 images/s into an ImageReader; print the rates."""
    from ..areadetector import ImageReader
    from .adsim import SimDetector

    with SimDetector(AD_PREFIX, width=640, height=480, data_type="UInt16") as det:
        det.write(1)
        with ImageReader(AD_PREFIX, buffers=4, policy="latest") as reader:
            det.start(rate=20)
            progress = _Progress(out)
            start = time.monotonic()
            images = nbytes = 0
            shape = None
            while True:
                image = reader.get(0.25)
                if image is not None:
                    images += 1
                    nbytes += image.nbytes
                    shape = (image.array.shape, image.data_type, image.color_mode)
                elapsed = time.monotonic() - start
                st = reader.stats
                line = ("  %5.1f s  images %4d  %6.1f images/s  %7.1f MB/s  dropped %d  lost %d"
                        % (elapsed, images, images / max(elapsed, 1e-9),
                           nbytes / 1e6 / max(elapsed, 1e-9), st.dropped, st.lost))
                progress.show(line, elapsed, final=elapsed >= duration)
                if elapsed >= duration:
                    break
            det.stop()
            if shape is not None:
                out.write("  last image: shape %s, %s, %s; %s\n" % (shape + (tuple(reader.stats),)))
        out.flush()
