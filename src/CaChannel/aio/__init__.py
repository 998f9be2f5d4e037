"""asyncio Channel Access with aioca's names and semantics, on CaChannel's context.

Code written for `aioca <https://github.com/dls-controls/aioca>`_ 2.x runs
with its import changed to ``from CaChannel.aio import ...``. Both CaChannel
backends work (``CACHANNEL_BACKEND=caffi`` selects the cffi one).

* One libca context per process, shared with the synchronous API
  (:class:`CaChannel.CaChannel`, :mod:`CaChannel.util`): a preemptive one,
  libca delivers events in its own threads.
* One channel per PV name for every event loop and thread, and the same
  channel as :mod:`CaChannel.util` uses for that name (see
  :mod:`CaChannel.aio._channels`).
* Events reach each loop in batches: a burst of events costs one wake-up of
  the loop (see :mod:`CaChannel.aio._dispatch`). Several loops in several
  threads, and uvloop, work; a loop closed with live subscriptions just stops
  receiving their events.

Functions: :func:`caget`, :func:`caput`, :func:`camonitor` (returns
:class:`Subscription`), :func:`connect`, :func:`cainfo` (:class:`CAInfo`),
:func:`run`, :func:`get_channel_infos`, :func:`purge_channel_caches`.
Results: the augmented values of ``epicscorelibs.ca.dbr`` (``ca_int``,
``ca_float``, ``ca_str``, ``ca_bytes``, ``ca_array``: the Python/numpy type
with ``.name``, ``.ok``, ``.datatype``, ``.element_count``, ``.severity``,
``.status``, ``.timestamp``, ``.raw_stamp``, ``.datetime``, ``.units``,
``.precision``, ``.enums``, limits...; ``+value`` is the plain value) and
:class:`CANothing`; a request libca refuses at once raises
``epicscorelibs.ca.cadef.CAException`` as in aioca. The ``DBR_*``, ``DBE_*``
and ``FORMAT_*`` constants are those of ``epicscorelibs.ca``.
:mod:`CaChannel.aio.types` holds aioca's type names (``AugmentedValue``,
``Dbr``, ``Format``...).

Programs that import ``aioca`` (ophyd-async, for one) run on CaChannel after
:func:`use`, which installs this package as ``aioca`` (and ``aioca.types``)::

    import CaChannel.aio
    CaChannel.aio.use()     # before anything imports aioca

Example (``catest`` is an ``ao`` record with EGU ``mm``)::

    import asyncio
    from CaChannel.aio import caget, caput, camonitor, FORMAT_TIME

    async def main():
        await caput("catest", 1.5, wait=True)
        value = await caget("catest", format=FORMAT_TIME)
        print(value, value.severity, value.datetime)
        sub = camonitor("catest", lambda v: print("update", v))
        await asyncio.sleep(1)
        sub.close()

    asyncio.run(main())
"""
from .._version import __version__
from . import types
from ._alias import use
from ._channels import ChannelInfo, get_channel_infos, purge_channel_caches
from ._monitor import Subscription, camonitor
from ._ops import CAInfo, cainfo, caget, caput, connect, run
from ._values import (DBE_ALARM, DBE_LOG, DBE_PROPERTY, DBE_VALUE, DBR_CHAR, DBR_CHAR_BYTES,
                      DBR_CHAR_STR, DBR_CHAR_UNICODE, DBR_CLASS_NAME, DBR_DOUBLE, DBR_ENUM,
                      DBR_ENUM_STR, DBR_FLOAT, DBR_LONG, DBR_PUT_ACKS, DBR_PUT_ACKT, DBR_SHORT,
                      DBR_STRING, DBR_STSACK_STRING, FORMAT_CTRL, FORMAT_RAW, FORMAT_TIME,
                      CANothing, ca_extra_fields)

__all__ = [
    "Subscription", "caput", "caget", "camonitor", "connect", "cainfo", "CAInfo", "CANothing",
    "ChannelInfo", "get_channel_infos", "purge_channel_caches", "run", "__version__",
    "DBE_VALUE", "DBE_LOG", "DBE_ALARM", "DBE_PROPERTY",
    "DBR_STRING", "DBR_SHORT", "DBR_FLOAT", "DBR_ENUM", "DBR_CHAR", "DBR_LONG", "DBR_DOUBLE",
    "DBR_CHAR_STR", "DBR_CHAR_UNICODE", "DBR_ENUM_STR", "DBR_CHAR_BYTES",
    "DBR_PUT_ACKT", "DBR_PUT_ACKS", "DBR_STSACK_STRING", "DBR_CLASS_NAME",
    "FORMAT_RAW", "FORMAT_TIME", "FORMAT_CTRL", "ca_extra_fields", "use", "types",
]
