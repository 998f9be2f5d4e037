"""A simulated areaDetector NDStdArrays plugin: soft records plus a frame writer.

``adsim.db`` (:data:`DATABASE`, macro ``PLUGIN``: the prefix) holds the records an image client reads
(``$(P)ArrayData``, ``ArraySize0_RBV``..``ArraySize2_RBV``,
``NDimensions_RBV``, ``ColorMode_RBV``, ``DataType_RBV``, ``UniqueId_RBV``,
``ArrayCounter_RBV``); load it in any IOC, e.g. ::

    from CaChannel.testing import IOC
    from CaChannel.demo.adsim import DATABASE, SimDetector
    with IOC([DATABASE], macros="PLUGIN=sim:") as ioc:   # and point the client at it
        with SimDetector("sim:", width=256, height=256) as det:
            det.write(10)                # ten frames, synchronously
            det.start(rate=20)           # or a stream at 20 frames/s
            ...

:class:`SimDetector` writes frames from its own thread in its own CA context,
like the plugin does: the metadata PVs first (only those that changed, and the
``UniqueId_RBV``/``ArrayCounter_RBV`` of the frame), then ``ArrayData``. So a
client on one circuit sees a frame's metadata before its data. Sizes, data
type, colour mode and rate can be changed at run time; :meth:`SimDetector.skip`
advances ``UniqueId_RBV`` without sending frames (frames "lost between the
server and the client"). ``ArrayData`` is a LONG waveform (default
``NELM=1048576``), so the writer sends 4 bytes a pixel whatever the type; the
client converts on request (``DBR_ENUM`` for UInt16, ``DBR_CHAR`` for 8 bits).
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

__all__ = ["DATABASE", "DATA_TYPES", "COLOR_MODES", "SimDetector"]

#: the NDStdArrays record database (macros PLUGIN, FTVL, NELM)
DATABASE = Path(__file__).with_name("adsim.db")
#: NDDataType_t names in ``DataType_RBV`` order
DATA_TYPES = ("Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
              "Float32", "Float64")
#: NDColorMode_t names in ``ColorMode_RBV`` order
COLOR_MODES = ("Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV411")

_META = ("NDimensions_RBV", "ArraySize0_RBV", "ArraySize1_RBV", "ArraySize2_RBV",
         "ColorMode_RBV", "DataType_RBV")


def dims_for(width: int, height: int, color: str) -> Tuple[int, ...]:
    """NDArray dims (fastest first) for a colour mode, as ``ArraySize0..2_RBV`` report them."""
    if color == "RGB1":
        return (3, width, height)
    if color == "RGB2":
        return (width, 3, height)
    if color == "RGB3":
        return (width, height, 3)
    return (width, height)


class SimDetector:
    """Writes frames into the ``adsim.db`` records of prefix ``prefix``.

    ``width``, ``height``, ``data_type`` (a :data:`DATA_TYPES` name), ``color``
    (``Mono``, ``RGB1``, ``RGB2``, ``RGB3``). Frame ``k`` (its UniqueId) holds
    ``(ramp + k) % modulus`` with a per-type modulus, so a client can check
    which frame it got: element 0 of frame ``k`` is ``k % modulus``.
    Everything CA runs on the writer's own thread; stop it with :meth:`close`
    (or a ``with`` block).
    """

    def __init__(self, prefix: str, width: int = 256, height: int = 256,
                 data_type: str = "UInt16", color: str = "Mono", timeout: float = 5.0) -> None:
        self.prefix = prefix
        self.timeout = timeout
        self.uid = 0
        self.written = 0
        self._config: Dict[str, Any] = {}
        self.configure(width=width, height=height, data_type=data_type, color=color)
        self._jobs: "queue.Queue[Any]" = queue.Queue()
        self._rate = 0.0
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="SimDetector", daemon=True)
        self._thread.start()
        self._ready.wait(timeout + 1)
        if self._error is not None:
            raise self._error

    @staticmethod
    def modulus(data_type: str) -> int:
        """Values of frame ``k`` are taken modulo this (fits every type)."""
        return 128 if data_type in ("Int8", "UInt8") else 30000

    def configure(self, **settings: Any) -> None:
        """Change ``width``, ``height``, ``data_type`` or ``color`` for the next frames."""
        cfg = dict(self._config, **settings)
        if cfg["data_type"] not in DATA_TYPES:
            raise ValueError("data_type must be one of %s" % (DATA_TYPES,))
        if cfg["color"] not in ("Mono", "RGB1", "RGB2", "RGB3"):
            raise ValueError("color must be Mono, RGB1, RGB2 or RGB3")
        self._config = cfg

    # writer thread -------------------------------------------------------
    def _run(self) -> None:
        import numpy as np

        from .. import ca
        try:
            ca.create_context(True)
            chids = {}
            for name in _META + ("UniqueId_RBV", "ArrayCounter_RBV", "ArrayData"):
                status, chids[name] = ca.create_channel(self.prefix + name)
                if status != ca.ECA_NORMAL:
                    raise RuntimeError("SimDetector: create_channel %s: %s" % (name, status))
            if ca.pend_io(self.timeout) != ca.ECA_NORMAL:
                raise TimeoutError("SimDetector: %sArrayData etc. did not connect" % self.prefix)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        sent: Dict[str, int] = {}
        base_key = None
        base = None
        buf = None
        while True:
            try:
                job = self._jobs.get(timeout=(1.0 / self._rate) if self._rate > 0 else None)
            except queue.Empty:
                job = ("frame", 1, None)
            if job is None:
                break
            kind, n, done = job
            if kind == "rate":
                self._rate = float(n)
            elif kind == "skip":
                self.uid += n
            else:
                for _ in range(n):
                    cfg = self._config
                    dims = dims_for(cfg["width"], cfg["height"], cfg["color"])
                    size = int(np.prod(dims))
                    key = (size, cfg["data_type"])
                    if key != base_key:
                        base = (np.arange(size, dtype=np.int64) % self.modulus(cfg["data_type"])
                                ).astype(np.int32)
                        buf = np.empty(size, dtype=np.int32)
                        base_key = key
                    self.uid += 1
                    mod = self.modulus(cfg["data_type"])
                    np.add(base, self.uid % mod, out=buf)
                    np.remainder(buf, mod, out=buf)
                    meta = {"NDimensions_RBV": len(dims),
                            "ArraySize0_RBV": dims[0], "ArraySize1_RBV": dims[1],
                            "ArraySize2_RBV": dims[2] if len(dims) > 2 else 0,
                            "ColorMode_RBV": COLOR_MODES.index(cfg["color"]),
                            "DataType_RBV": DATA_TYPES.index(cfg["data_type"])}
                    for name, value in meta.items():
                        if sent.get(name) != value:
                            ca.put(chids[name], value, ca.DBR_LONG)
                            sent[name] = value
                    self.written += 1
                    ca.put(chids["UniqueId_RBV"], self.uid, ca.DBR_LONG)
                    ca.put(chids["ArrayCounter_RBV"], self.written, ca.DBR_LONG)
                    ca.put(chids["ArrayData"], buf, ca.DBR_LONG, size)
                    ca.flush_io()
            if done is not None:
                # a read after the puts: the server has processed them when it returns
                ca.get(chids["UniqueId_RBV"], ca.DBR_LONG)
                ca.pend_io(self.timeout)
                done.set()
        for chid in chids.values():
            ca.clear_channel(chid)
        ca.flush_io()
        ca.destroy_context()

    def _submit(self, kind: str, n: int, wait: bool) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("SimDetector is closed")
        done = threading.Event() if wait else None
        self._jobs.put((kind, n, done))
        if done is not None and not done.wait(self.timeout + 30):
            raise TimeoutError("SimDetector: the writer did not finish")

    # public --------------------------------------------------------------
    def write(self, n: int = 1, wait: bool = True) -> None:
        """Write ``n`` frames now; with ``wait`` return once the IOC processed them."""
        self._submit("frame", int(n), wait)

    def skip(self, n: int = 1) -> None:
        """Advance UniqueId by ``n`` without sending frames (frames lost upstream)."""
        self._submit("skip", int(n), True)

    def start(self, rate: float = 10.0) -> None:
        """Write frames continuously at ``rate`` frames per second (0 stops)."""
        self._submit("rate", rate, True)

    def stop(self) -> None:
        """Stop the continuous writing."""
        self.start(0)

    def close(self) -> None:
        """Stop the writer thread (it clears its channels and destroys its context)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(self.timeout + 5)

    def __enter__(self) -> "SimDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
