"""Read areaDetector images from an NDStdArrays plugin, off libca's thread.

:class:`ImageReader` monitors ``PREFIX:ArrayData`` into a ring of
preallocated buffers (:class:`CaChannel.monitor.ArrayMonitor`) and the
plugin's metadata PVs (``NDimensions_RBV``, ``ArraySize0_RBV``..
``ArraySize2_RBV``, ``ColorMode_RBV``, ``DataType_RBV``, ``UniqueId_RBV``,
``ArrayCounter_RBV``). Each image comes out shaped and typed as the detector
sent it::

    from CaChannel.areadetector import ImageReader
    with ImageReader("13SIM1:image1:") as reader:
        for image in reader:                 # blocks; ends when closed
            show(image.array)                # (Y, X) for Mono, (Y, X, 3) for RGB1
            print(image.unique_id, reader.stats)

Shapes follow NDArray dims, fastest first: ``ArraySize0..N-1`` reversed, so
Mono is ``(Y, X)``, RGB1 ``(Y, X, 3)``, RGB2 ``(Y, 3, X)``, RGB3 ``(3, Y, X)``.
Data types: ``UInt16`` is requested as ``DBR_ENUM`` (CA has no unsigned short
request type; the enum one is 16 bits unsigned, so a pixel stays 2 bytes on
the wire), ``Int8``/``UInt8`` as ``DBR_CHAR``, ``Int16`` as ``DBR_SHORT``,
``Int32``/``UInt32`` as ``DBR_LONG`` (UInt32 viewed unsigned), ``Float32``/
``Float64`` as ``DBR_FLOAT``/``DBR_DOUBLE``; the 64-bit integer types are read
as ``DBR_DOUBLE`` (CA has no 64-bit integer type).

Run-time changes: the size PVs are monitored and each frame is shaped with
the metadata received before it (the plugin posts them before the data); a
data type change re-subscribes ``ArrayData`` with the new request type.

A limit of CA, not of this reader: when the server falls behind (a burst of
frames, or a client that asked it to hold events back), it coalesces a
channel's updates by putting the newest value into the place of an older,
still unsent one, ahead of the metadata posted since. Such an image carries
the metadata of that older place: its ``unique_id`` (and its shape, if the
size changed within the burst) can lag its data. An element count that does
not fit the sizes is never shaped (``skipped``); the frames the server
coalesced show up as ``lost``. Paced frames (each one sent before the next
is posted) are always labelled right.

Loss accounting (:attr:`ImageReader.stats`): ``dropped`` frames were received
but replaced by the delivery policy because the consumer was slower;
``lost`` frames never reached us (gaps in ``UniqueId_RBV`` not explained by
our own drops: the server's event queue, or a disconnection); ``skipped``
frames were received but could not be shaped (data type change in flight, or
element count not matching the sizes). A data type change re-subscribes
``ArrayData``: the frames still waiting in the old subscription are counted as
``dropped``, and the UniqueId gap across the switch is not counted as
``lost`` (those frames passed while we were switching, our own doing).
"""
from __future__ import annotations

import threading
from typing import Any, Dict, Iterator, List, NamedTuple, Optional

from . import ca, core
from .core.errors import CaChannelException
from .monitor import POLICIES, ArrayMonitor, Frame, release_quietly

__all__ = ["ImageReader", "Image", "ImageStats", "DATA_TYPES", "COLOR_MODES"]

#: NDDataType_t, in ``DataType_RBV`` order, and the numpy dtype each becomes
DATA_TYPES = ("Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
              "Float32", "Float64")
_NUMPY = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float64", "float64",
          "float32", "float64")
#: NDColorMode_t, in ``ColorMode_RBV`` order
COLOR_MODES = ("Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV411")

_META_PVS = ("NDimensions_RBV", "ArraySize0_RBV", "ArraySize1_RBV", "ArraySize2_RBV",
             "ColorMode_RBV", "DataType_RBV", "UniqueId_RBV", "ArrayCounter_RBV")


class _Meta(NamedTuple):
    ndims: int
    size0: int
    size1: int
    size2: int
    color: int
    dtype: int
    uid: int
    counter: int


class ImageStats(NamedTuple):
    """Counters of an :class:`ImageReader`.

    ``received == delivered + dropped + skipped + pending`` (frames that reached
    us); ``lost`` counts frames the detector made (UniqueId gaps) that never
    reached us.
    """
    received: int
    delivered: int
    dropped: int
    skipped: int
    lost: int
    pending: int


class Image:
    """One image: ``array`` shaped and typed as the detector's NDArray.

    ``array`` is a view into the reader's ring slot, valid until the next
    image is taken or :meth:`release` is called (copy what you keep).
    Attributes: ``unique_id`` (``UniqueId_RBV`` of the frame), ``counter``
    (``ArrayCounter_RBV``), ``timestamp`` (POSIX seconds, the CA time stamp of
    ``ArrayData``), ``color_mode``/``data_type`` (names), ``dims`` (NDArray
    dims, fastest first), ``frame`` (the underlying
    :class:`CaChannel.monitor.Frame`, with ``seq``, ``status``, ``severity``).
    """

    __slots__ = ("array", "unique_id", "counter", "timestamp", "color_mode", "data_type",
                 "dims", "frame")

    def __init__(self, array: Any, meta: _Meta, frame: Frame) -> None:
        self.array = array
        self.unique_id = meta.uid
        self.counter = meta.counter
        self.timestamp = frame.timestamp
        self.color_mode = COLOR_MODES[meta.color] if 0 <= meta.color < len(COLOR_MODES) \
            else str(meta.color)
        self.data_type = DATA_TYPES[meta.dtype] if 0 <= meta.dtype < len(DATA_TYPES) \
            else str(meta.dtype)
        self.dims = (meta.size0, meta.size1, meta.size2)[:max(1, min(meta.ndims, 3))]
        self.frame = frame

    @property
    def nbytes(self) -> int:
        """Bytes of image data."""
        return int(self.array.nbytes)

    def release(self) -> None:
        """Give the ring slot back (the array must not be used afterwards)."""
        self.frame.release()

    def __enter__(self) -> "Image":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return "<Image uid=%d %s %s %s>" % (self.unique_id, self.color_mode, self.data_type,
                                           self.array.shape)


class ImageReader:
    """Images of an NDStdArrays plugin with prefix ``prefix`` (e.g. ``"13SIM1:image1:"``).

    ``buffers`` and ``policy`` (``"latest"``, default: a slow consumer sees the
    newest image; ``"all"``: up to ``buffers - 1`` images wait) are those of
    the underlying :class:`CaChannel.monitor.ArrayMonitor`. Connects within
    ``timeout`` seconds (``TimeoutError`` otherwise). ``priority`` (CA
    priority, default 1) puts the image and its metadata PVs on a TCP circuit
    of their own, apart from the default-priority channels to the same IOC
    (see :class:`CaChannel.monitor.ArrayMonitor`); the metadata must share the
    image's circuit, as its updates are ordered with the frames. Iterate
    (blocking; ends when closed) or call :meth:`get`. Use as a context
    manager or call :meth:`close`.
    """

    def __init__(self, prefix: str, buffers: int = 4, policy: str = "latest",
                 timeout: float = 5.0, priority: int = 1) -> None:
        # every argument checked before anything is sent (core.checks' rules)
        prefix = core.checks.pv_name(prefix, what="prefix")
        core.checks.choice(policy, POLICIES, what="policy")
        buffers = core.checks.integer(buffers, what="buffers", low=2)
        timeout = core.checks.timeout(timeout)
        priority = core.checks.priority(priority)
        self.prefix = prefix
        self.buffers = buffers
        self.policy = policy
        self.timeout = timeout
        self.priority = priority
        self._values: Dict[str, int] = {}
        self._meta: Optional[_Meta] = None
        self._got_all = threading.Event()
        self._channels: Dict[str, core.Channel] = {}
        self._evids: List[Any] = []
        self._monitor: Optional[ArrayMonitor] = None
        self._closed = False
        self._current: Optional[Image] = None
        self._last_uid: Optional[int] = None
        self._last_seq = 0
        self._base = (0, 0, 0, 0)   # stats of monitors replaced on a type change
        self._skipped = 0
        self._lost = 0
        try:
            for name in _META_PVS:
                channel = core.acquire(prefix + name, priority, flush=False)
                self._channels[name] = channel
                status, evid = channel.subscribe(self._meta_callback(name), ca.DBR_LONG, 1)
                if status != ca.ECA_NORMAL:
                    raise CaChannelException(status, "subscription to %s%s" % (prefix, name))
                self._evids.append(evid)
            ca.flush_io()
            meta = self._meta if core.checks.wait_event(self._got_all, timeout) else None
            if meta is None:
                missing = [n for n in _META_PVS if n not in self._values]
                raise TimeoutError("%s: no value within %g s from %s"
                                   % (prefix, timeout, ", ".join(missing)))
            self._subscribe(meta.dtype)
        except BaseException:
            self.close()
            raise
        core.context.close_at_exit(self)

    # libca's thread: store the value, build the metadata tuple ------------
    def _meta_callback(self, name: str):
        def on_meta(args: Dict[str, Any]) -> None:
            if args.get("status") != ca.ECA_NORMAL or args.get("value") is None:
                return
            self._values[name] = int(args["value"])
            if len(self._values) == len(_META_PVS):
                self._meta = meta = _Meta(*(self._values[n] for n in _META_PVS))
                # the frames that arrive from now on carry it: this runs on
                # libca's thread for the plugin's server, in order with ArrayData
                monitor = self._monitor
                if monitor is not None:
                    monitor.set_tag(meta)
                self._got_all.set()
        return on_meta

    def _subscribe(self, data_type: int) -> None:
        dtype = _NUMPY[data_type] if 0 <= data_type < len(_NUMPY) else "float64"
        old = self._monitor
        if old is not None:
            old.close()
            st = old.stats
            b = self._base
            self._base = (b[0] + st.received, b[1] + st.delivered, b[2] + st.dropped, 0)
            self._last_seq = 0
            # frames dropped with the old ring, or posted between the two
            # subscriptions, left no UniqueId behind: no gap across the switch
            self._last_uid = None
        self._monitor = ArrayMonitor(self.prefix + "ArrayData", buffers=self.buffers,
                                     dtype=dtype, policy=self.policy, timeout=self.timeout,
                                     tag=self._meta, priority=self.priority)
        self._data_type = data_type

    # consumer side ---------------------------------------------------------
    @property
    def monitor(self) -> ArrayMonitor:
        """The :class:`CaChannel.monitor.ArrayMonitor` of ``ArrayData``."""
        monitor = self._monitor
        if monitor is None:   # only while __init__ is failing
            raise RuntimeError("%s: ArrayData is not subscribed" % self.prefix)
        return monitor

    @property
    def stats(self) -> ImageStats:
        """:class:`ImageStats`: received, delivered, dropped, skipped, lost, pending."""
        st = self.monitor.stats
        b = self._base
        delivered = b[1] + st.delivered - self._skipped
        return ImageStats(b[0] + st.received, delivered, b[2] + st.dropped, self._skipped,
                          self._lost, st.pending)

    def get(self, timeout: Optional[float] = None) -> Optional[Image]:
        """The next image (releasing the previous one); ``None`` on timeout or once closed."""
        self.release()
        while True:
            monitor = self.monitor
            frame = monitor.get(timeout)
            if frame is None:
                if monitor is not self._monitor and not self._closed:
                    continue   # replaced by a type change meanwhile
                return None
            # every frame carries the metadata set before it arrived (set_tag)
            meta = _Meta(*frame.tag) if frame.tag is not None else self._meta
            if meta is None:
                self._skipped += 1
                frame.release()
                continue
            self._account(frame, meta)
            if meta.dtype != self._data_type:
                # converted to the old request type in flight: re-subscribe
                self._skipped += 1
                frame.release()
                self._subscribe(meta.dtype)
                continue
            image = self._shape(frame, meta)
            if image is None:
                self._skipped += 1
                frame.release()
                continue
            self._current = image
            return image

    def _account(self, frame: Frame, meta: _Meta) -> None:
        """Count UniqueId gaps that our own policy drops do not explain."""
        local_drops = frame.seq - self._last_seq - 1 if self._last_seq else 0
        self._last_seq = frame.seq
        if self._last_uid is not None and meta.uid > self._last_uid:
            gap = meta.uid - self._last_uid - 1 - local_drops
            if gap > 0:
                self._lost += gap
        self._last_uid = meta.uid

    @staticmethod
    def _shape(frame: Frame, meta: _Meta) -> Optional[Image]:
        ndims = max(1, min(meta.ndims, 3))
        dims = (meta.size0, meta.size1, meta.size2)[:ndims]
        size = 1
        for d in dims:
            size *= d
        if size <= 0 or size > frame.count:
            return None
        array = frame.array[:size].reshape(tuple(reversed(dims)))
        return Image(array, meta, frame)

    def release(self) -> None:
        """Release the image last handed out (if any)."""
        image, self._current = self._current, None
        if image is not None:
            image.release()

    def __iter__(self) -> Iterator[Image]:
        while True:
            image = self.get()
            if image is None:
                return
            yield image

    def close(self) -> None:
        """Stop: cancel the monitors, release the channels, wake a waiting consumer."""
        if self._closed:
            return
        self._closed = True
        if self._monitor is not None:
            self._monitor.close()
        evids, self._evids = self._evids, []
        release_quietly(lambda: [core.Channel.unsubscribe(evid) for evid in evids])
        channels = list(self._channels.values())
        self._channels.clear()
        for channel in channels:
            channel.release()
        core.context.forget_at_exit(self)

    def __enter__(self) -> "ImageReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<ImageReader %r %s>" % (self.prefix, tuple(self.stats))
