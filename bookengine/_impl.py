"""The two implementations behind one face: compiled (Cython) and reference (pure Python).

``BOOKENGINE_PURE=1`` in the environment forces the reference. Tests obtain both through
:func:`implementation` and run every case against each.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ._display import BookDisplay

if TYPE_CHECKING:
    # What mypy sees as bookengine.L2Book/L3Book/FrameScanner: the compiled core's stubs plus
    # the display mixin. The reference has the same API (the differential tests and
    # tests/test_stubs.py hold the two together), so one static type serves both.
    from ._core.l2book import L2BookCore
    from ._core.l3book import L3BookCore
    from ._core.router import BookRouter
    from ._core.scan import FrameScanner
    from ._core.tradejoin import TradeJoin

    class L2Book(L2BookCore, BookDisplay):
        """One symbol's aggregated book (Kraken ``book``), exact at the subscribed depth."""

    class L3Book(L3BookCore, BookDisplay):
        """One symbol's order-by-order book (Kraken ``level3``), exact at the subscribed depth."""


@dataclass(frozen=True)
class Implementation:
    """The classes one implementation provides."""

    name: str
    """``"cython"`` or ``"python"``."""
    FrameScanner: type[FrameScanner]
    BookRouter: type[BookRouter]
    """The line reader (see :mod:`bookengine._core.router`)."""
    L2Book: type[L2Book]
    L3Book: type[L3Book]
    TradeJoin: type[TradeJoin] | None = None
    """The compiled trade join of the analytics (``BookAnalytics.run``); the reference has
    none: its analytics run on the session's events, which is the join's reference."""


def _with_display(name: str, core: type[Any]) -> Any:
    """``core`` with the display mixin: the public ``L2Book``/``L3Book`` of one implementation."""
    return type(name, (core, BookDisplay), {"__doc__": core.__doc__})


def _reference() -> Implementation:
    from ._reference import l2book, l3book, router, scan

    return Implementation(
        "python",
        cast("type[FrameScanner]", scan.FrameScanner),
        cast("type[BookRouter]", router.BookRouter),
        _with_display("L2Book", l2book.L2BookCore),
        _with_display("L3Book", l3book.L3BookCore),
    )


def _compiled() -> Implementation:
    # importlib: the extension may be missing (no compiler); ImportError then means "not built".
    scan = importlib.import_module("bookengine._core.scan")
    l2book = importlib.import_module("bookengine._core.l2book")
    l3book = importlib.import_module("bookengine._core.l3book")
    router = importlib.import_module("bookengine._core.router")
    tradejoin = importlib.import_module("bookengine._core.tradejoin")
    return Implementation(
        "cython",
        scan.FrameScanner,
        router.BookRouter,
        _with_display("L2Book", l2book.L2BookCore),
        _with_display("L3Book", l3book.L3BookCore),
        tradejoin.TradeJoin,
    )


_cache: dict[str, Implementation] = {}


def implementation(name: str | None = None) -> Implementation:
    """Return an implementation by name (``"cython"``/``"python"``), or the active one.

    Raises:
        ImportError: ``"cython"`` was asked for but the extension is not built.
    """
    if name is None:
        name = active_name()
    if name not in _cache:
        if name == "python":
            _cache[name] = _reference()
        elif name == "cython":
            _cache[name] = _compiled()
        else:
            raise ValueError(f"unknown implementation {name!r}: use 'cython' or 'python'")
    return _cache[name]


def compiled_available() -> bool:
    """True when the Cython extension is built and importable."""
    try:
        implementation("cython")
    except ImportError:
        return False
    return True


def active_name() -> str:
    """``"python"`` if forced by ``BOOKENGINE_PURE=1`` or without the extension, else cython."""
    if os.environ.get("BOOKENGINE_PURE") == "1":
        return "python"
    return "cython" if compiled_available() else "python"
