"""An ophyd control layer on CaChannel: ``CaChannel.ophyd.use()``.

ophyd talks to EPICS through a *control layer*, a namespace with ``setup,
caget, caput, get_pv, thread_class, name, release_pvs, get_dispatcher``
(its own are pyepics and caproto). This module provides those names on
:class:`CaChannel.PV`; :func:`use` installs it as ophyd's current layer::

    import CaChannel.ophyd
    CaChannel.ophyd.use()              # before the first EpicsSignal is created

    from ophyd import EpicsSignal, EpicsMotor
    sig = EpicsSignal('catest', name='sig')
    sig.put(3.0, wait=True)

``ophyd.set_cl()`` only knows ophyd's own layers, hence :func:`use`. If ophyd
was not imported yet, :func:`use` imports it with
``OPHYD_CONTROL_LAYER=dummy`` for the duration of the import, so that ophyd
does not start pyepics' or caproto's CA client on the way (set the variable
yourself to keep one of them). Signals created before :func:`use` stay on
the layer they were created with.

Callbacks: as with ophyd's own layers, the PV callbacks of ophyd objects
(value, connection, access rights, put completion) are queued to ophyd's
dispatcher threads, never run on libca's threads.
"""
from __future__ import annotations

import atexit
import importlib
import logging
import os
import sys
import threading
import types
from typing import Any, Callable, Optional

from . import ca, core
from .pv import PV

__all__ = ["use", "setup", "caget", "caput", "get_pv", "thread_class", "name", "release_pvs",
           "get_dispatcher", "OphydPV"]

#: name of this control layer (``EpicsSignal.cl.name``)
name = "cachannel"
#: thread class ophyd uses for its helper threads (CaChannel needs no per-thread set-up)
thread_class = threading.Thread

_dispatcher = None
_lock = threading.Lock()
module_logger = logging.getLogger(__name__)

_EXPORTS = ("setup", "caput", "caget", "get_pv", "thread_class", "name", "release_pvs", "get_dispatcher")


def _wrap(event_type: str, callback: Optional[Callable]) -> Optional[Callable]:
    """Queue ``callback`` to the dispatcher thread of ``event_type`` (ophyd's wrap_callback)."""
    if callback is None or _dispatcher is None:
        return callback
    from ophyd._dispatch import wrap_callback
    return wrap_callback(_dispatcher, event_type, callback)


class OphydPV(PV):
    """:class:`CaChannel.PV` with what ophyd expects of a control-layer PV.

    Callbacks are queued to ophyd's dispatcher threads; the PV keeps the
    ``_reference_count`` of the ophyd signals using it (see
    :func:`release_pvs`) and adds ``get_all_metadata_blocking`` /
    ``get_all_metadata_callback``.
    """

    def __init__(self, pvname: str, callback: Optional[Callable] = None, form: str = "time",
                 verbose: bool = False, auto_monitor: Any = None, count: Optional[int] = None,
                 connection_callback: Optional[Callable] = None,
                 connection_timeout: Optional[float] = None,
                 access_callback: Optional[Callable] = None) -> None:
        self._reference_count = 0
        super().__init__(pvname, callback=_wrap("monitor", callback), form=form, verbose=verbose,
                         auto_monitor=auto_monitor, count=count,
                         connection_callback=_wrap("metadata", connection_callback),
                         connection_timeout=connection_timeout,
                         access_callback=_wrap("metadata", access_callback))

    def add_callback(self, callback: Optional[Callable] = None, index: Optional[int] = None,
                     run_now: bool = False, with_ctrlvars: bool = True, **kw: Any) -> Optional[int]:
        """As :meth:`PV.add_callback`; switches the monitor on, runs the callback in ophyd's monitor thread."""
        if not self.auto_monitor:
            self.auto_monitor = True
        return super().add_callback(_wrap("monitor", callback), index=index, run_now=run_now,
                                    with_ctrlvars=with_ctrlvars, **kw)

    def put(self, value: Any, wait: bool = False, timeout: Optional[float] = None,
            use_complete: bool = False, callback: Optional[Callable] = None,
            callback_data: Any = None) -> Optional[int]:
        """As :meth:`PV.put`; ``timeout=None`` waits without limit, the callback runs in ophyd's get_put thread."""
        if callback is not None:
            use_complete = True
        return super().put(value, wait=wait, timeout=timeout, use_complete=use_complete,
                           callback=_wrap("get_put", callback), callback_data=callback_data)

    def get_all_metadata_blocking(self, timeout: float) -> dict:
        """Alarm, time and control metadata (all but the value), read now."""
        if self._args["status"] is None:
            self.get_timevars(timeout=timeout, warn=False)
        self.get_ctrlvars(timeout=timeout, warn=False)
        md = dict(self._args)
        md.pop("value", None)
        return md

    def get_all_metadata_callback(self, callback: Callable, *, timeout: float) -> None:
        """Read the metadata in a dispatcher utility thread and pass it to ``callback(pvname, md)``."""
        def task(pvname: str) -> None:
            callback(pvname, self.get_all_metadata_blocking(timeout=timeout))

        if _dispatcher is None:
            threading.Thread(target=task, args=(self.pvname,), daemon=True).start()
        else:
            _dispatcher.schedule_utility_task(task, pvname=self.pvname)

    def clear_callbacks(self, with_access_callback: bool = True,
                        with_connect_callback: bool = True) -> None:
        """Remove value, access and connection callbacks (ophyd's release semantics)."""
        super().clear_callbacks(with_access_callback=with_access_callback,
                                with_connect_callback=with_connect_callback)


def get_pv(pvname: str, form: str = "time", connect: bool = False, context: Any = None,
           timeout: float = 5.0, connection_callback: Optional[Callable] = None,
           access_callback: Optional[Callable] = None, callback: Optional[Callable] = None,
           **kwargs: Any) -> OphydPV:
    """A new :class:`OphydPV` for ophyd (one per signal; ``release_pvs`` frees it).

    ``context`` must be ``None`` (one CA context per process); with
    ``connect`` wait up to ``timeout`` s for the connection.
    """
    if context is not None:
        raise ValueError("context must be None")
    timeout = core.checks.timeout(timeout)
    pv = OphydPV(pvname, form=form, connection_callback=connection_callback,
                 access_callback=access_callback, callback=callback, **kwargs)
    if connect:
        pv.wait_for_connection(timeout=timeout)
    return pv


def release_pvs(*pvs: OphydPV) -> None:
    """Drop one reference of each PV; a PV nobody uses any more is disconnected."""
    for pv in pvs:
        pv._reference_count = getattr(pv, "_reference_count", 1) - 1
        if pv._reference_count <= 0:
            pv.clear_callbacks()
            pv.disconnect()


def caget(pvname: str, as_string: bool = False, count: Optional[int] = None, as_numpy: bool = True,
          use_monitor: bool = False, timeout: Optional[float] = None,
          connection_timeout: float = 5.0) -> Any:
    """pyepics-style ``caget``: the value of ``pvname`` or ``None`` (not connected / timed out)."""
    pv = PV(pvname, auto_monitor=False, connection_timeout=connection_timeout)
    try:
        if not pv.wait_for_connection(connection_timeout):
            return None
        return pv.get(count=count, as_string=as_string, as_numpy=as_numpy, timeout=timeout,
                      use_monitor=use_monitor)
    finally:
        pv.disconnect()


def caput(pvname: str, value: Any, wait: bool = False, timeout: float = 60.0,
          connection_timeout: float = 5.0) -> Optional[int]:
    """pyepics-style ``caput``: 1 when done, -1 on a ``wait`` timeout, ``None`` if not connected."""
    pv = PV(pvname, auto_monitor=False, connection_timeout=connection_timeout)
    try:
        if not pv.wait_for_connection(connection_timeout):
            return None
        return pv.put(value, wait=wait, timeout=timeout)
    finally:
        if not wait:
            ca.flush_io()
        pv.disconnect()


def get_dispatcher() -> Any:
    """ophyd's event dispatcher of this layer (created by :func:`setup`)."""
    return _dispatcher


def setup(logger: Optional[logging.Logger] = None) -> Any:
    """Start the dispatcher threads ophyd runs callbacks in (once per process); returns it."""
    global _dispatcher
    logger = logger or module_logger
    with _lock:
        if _dispatcher is not None:
            logger.debug("ophyd control layer %r already set up", name)
            return _dispatcher
        from ophyd._dispatch import EventDispatcher, _CallbackThread

        _dispatcher = EventDispatcher(thread_class=_CallbackThread, context=None, logger=logger)

    def _cleanup() -> None:
        global _dispatcher
        disp, _dispatcher = _dispatcher, None
        if disp is not None and disp.is_alive():
            disp.stop()

    atexit.register(_cleanup)
    return _dispatcher


def namespace() -> types.SimpleNamespace:
    """This layer as the namespace ophyd keeps in ``ophyd.cl``."""
    mod = sys.modules[__name__]
    return types.SimpleNamespace(**{key: getattr(mod, key) for key in _EXPORTS})


def use() -> types.SimpleNamespace:
    """Make CaChannel ophyd's control layer (``ophyd.cl``); returns the layer namespace.

    Call it before creating ophyd signals; it imports ophyd if needed.

    >>> import CaChannel.ophyd
    >>> cl = CaChannel.ophyd.use()
    >>> import ophyd
    >>> ophyd.get_cl().name
    'cachannel'
    """
    if "ophyd" not in sys.modules:
        saved = os.environ.get("OPHYD_CONTROL_LAYER")
        if saved is None:
            os.environ["OPHYD_CONTROL_LAYER"] = "dummy"
        try:
            importlib.import_module("ophyd")
        finally:
            if saved is None:
                os.environ.pop("OPHYD_CONTROL_LAYER", None)
    import ophyd

    setup(logging.getLogger("ophyd"))
    cl = namespace()
    ophyd.cl = cl
    return cl
