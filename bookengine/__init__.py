"""bookengine: exact Kraken Spot order books (L2 ``book``, L3 ``level3``) and queue analytics.

What most programs need is importable from here::

    from bookengine import KrakenFeed, BookChanged          # live
    from bookengine import Replayer, Instruments, replay    # captures
    from bookengine import L2Book, L3Book, Book             # books by hand

``IMPLEMENTATION`` names the active implementation: ``"cython"`` (the compiled core) or
``"python"`` (the pure-Python reference, forced by ``BOOKENGINE_PURE=1``); ``L2Book``, ``L3Book``
and ``FrameScanner`` are that implementation's classes.

``import bookengine`` loads neither the books nor numpy: the implementation (``IMPLEMENTATION``,
``L2Book``, ``L3Book``, ``FrameScanner``), the feed (asyncio, websockets), the session, replay
and the events load on first use of their name here (PEP 562 ``__getattr__``). ``replay`` is
the function; its module, which shares the name, is imported as ``from bookengine.replay
import ...``.
"""

from __future__ import annotations

import importlib
import sys
import types
import typing as _typing

from ._impl import Implementation, implementation
from .core_types import Book, OrderInfo, QueuePosition
from .errors import (
    BookError,
    CaptureError,
    ChecksumError,
    CrossedBookError,
    OrderError,
    PrecisionError,
    ProtocolError,
    UnknownSymbolError,
)

if _typing.TYPE_CHECKING:
    from ._core.scan import FrameScanner
    from ._impl import L2Book, L3Book
    from .feed import FeedError, KrakenFeed
    from .instruments import Instrument, Instruments
    from .kraken.events import (
        BadFrame,
        BookChanged,
        BookInvalid,
        ChecksumMismatch,
        ConnectionLost,
        ConnectionOpened,
        Event,
        InstrumentsUpdated,
        Pong,
        RequestFailed,
        ResyncRequested,
        Subscribed,
        SystemStatus,
        Unsubscribed,
    )
    from .kraken.session import KrakenSession
    from .replay import Replayer, ReplayResult, replay

    IMPLEMENTATION: str

__version__ = "0.1.0"

_FROM_IMPLEMENTATION = ("IMPLEMENTATION", "L2Book", "L3Book", "FrameScanner")
"""Names the active implementation gives (loading it loads the compiled core and numpy)."""

_EVENTS = (
    "BadFrame",
    "BookChanged",
    "BookInvalid",
    "ChecksumMismatch",
    "ConnectionLost",
    "ConnectionOpened",
    "Event",
    "InstrumentsUpdated",
    "Pong",
    "RequestFailed",
    "ResyncRequested",
    "Subscribed",
    "SystemStatus",
    "Unsubscribed",
)
_LAZY: dict[str, str] = {
    "FeedError": ".feed",
    "KrakenFeed": ".feed",
    "Instrument": ".instruments",
    "Instruments": ".instruments",
    "KrakenSession": ".kraken.session",
    "ReplayResult": ".replay",
    "Replayer": ".replay",
    "replay": ".replay",
    **dict.fromkeys(_EVENTS, ".kraken.events"),
}
"""Public name -> the module that defines it, imported on first use."""

__all__ = [
    "IMPLEMENTATION",
    "BadFrame",
    "Book",
    "BookChanged",
    "BookError",
    "BookInvalid",
    "CaptureError",
    "ChecksumError",
    "ChecksumMismatch",
    "ConnectionLost",
    "ConnectionOpened",
    "CrossedBookError",
    "Event",
    "FeedError",
    "FrameScanner",
    "Implementation",
    "Instrument",
    "Instruments",
    "InstrumentsUpdated",
    "KrakenFeed",
    "KrakenSession",
    "L2Book",
    "L3Book",
    "OrderError",
    "OrderInfo",
    "Pong",
    "PrecisionError",
    "ProtocolError",
    "QueuePosition",
    "ReplayResult",
    "Replayer",
    "RequestFailed",
    "ResyncRequested",
    "Subscribed",
    "SystemStatus",
    "UnknownSymbolError",
    "Unsubscribed",
    "__version__",
    "implementation",
    "replay",
]


def __getattr__(name: str) -> _typing.Any:
    if name in _FROM_IMPLEMENTATION:
        active = implementation()
        value = active.name if name == "IMPLEMENTATION" else getattr(active, name)
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bookengine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    if name != "replay":  # see _Package
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_FROM_IMPLEMENTATION))


class _Package(types.ModuleType):
    """The package's module type: ``bookengine.replay`` stays the function.

    Importing the submodule ``bookengine.replay`` sets the package attribute of that name to
    the module; this property outranks that attribute, so ``bookengine.replay(...)`` calls the
    function whichever was imported first.
    """

    @property
    def replay(self) -> _typing.Any:
        return __getattr__("replay")

    @replay.setter
    def replay(self, value: _typing.Any) -> None:
        pass  # the import system setting the submodule: it stays in sys.modules


sys.modules[__name__].__class__ = _Package
