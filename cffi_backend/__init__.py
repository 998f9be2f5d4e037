"""The cffi backend of ``CaChannel.ca`` (ABI mode: no compiler needed).

It implements the low-level API of ca-api.md section 2 on top of libca,
with the value conversions of :mod:`CaChannel._common`. cffi releases the GIL
around every libca call and takes it for every callback, so preemptive
callbacks arrive in libca's threads while Python threads block in
``pend_event``/``pend_io``.

Select it with ``CACHANNEL_BACKEND=caffi``; ``CaChannel.ca`` also falls back
to it when the C extension cannot be imported.

The package is split by concern like the C extension (``cext/``), each
module the twin of the C file of the same name: ``_bindings`` (the cdef),
``_handles``, ``_callbacks``, ``_args``, ``_decode``/``_encode``
(``dbr_decode.c``/``dbr_encode.c``), ``_context``, ``_channel``,
``_request``, ``_pend``, ``_sync_group``, ``_ring``, ``_evqueue`` and ``_module``
(the exit and fork hooks). This module only re-exports the API.
"""
from __future__ import annotations

from CaChannel import _common
from CaChannel._common import *  # noqa: F401,F403 (constants, enums, helpers)

from ._channel import (change_connection_event, clear_channel, create_channel,  # noqa: F401
                       element_count, field_type, host_name, message, name, read_access,
                       replace_access_rights_event, state, version, write_access)
from ._context import (add_exception_event, attach_context, create_context,  # noqa: F401
                       current_context, destroy_context, detach_context,
                       replace_printf_handler, show_context)
from ._decode import DBRValue  # noqa: F401
from ._evqueue import EventQueue  # noqa: F401
from ._handles import Context, chid, evid  # noqa: F401
from ._module import after_fork_child as _after_fork_child  # noqa: F401
from ._module import shutdown as _shutdown  # noqa: F401
from ._pend import flush_io, pend, pend_event, pend_io, poll, test_io  # noqa: F401
from ._request import clear_subscription, create_subscription, get, put  # noqa: F401
from ._ring import Ring as _Ring  # noqa: F401
from ._ring import ring_subscribe as _ring_subscribe  # noqa: F401
from ._sync_group import (sg_block, sg_create, sg_delete, sg_get, sg_put,  # noqa: F401
                          sg_reset, sg_test)

backend = "caffi"
HAS_NUMPY = True

__all__ = sorted(set(_common.__all__) | {
    "backend", "HAS_NUMPY", "DBRValue", "EventQueue",
    "create_context", "destroy_context", "attach_context", "detach_context",
    "current_context", "show_context",
    "create_channel", "clear_channel", "change_connection_event",
    "replace_access_rights_event", "add_exception_event", "replace_printf_handler",
    "get", "put", "create_subscription", "clear_subscription",
    "pend_io", "pend_event", "poll", "pend", "flush_io", "test_io",
    "field_type", "element_count", "name", "state", "host_name",
    "read_access", "write_access", "message", "version",
    "sg_create", "sg_delete", "sg_get", "sg_put", "sg_block", "sg_test", "sg_reset",
})
