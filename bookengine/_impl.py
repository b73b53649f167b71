"""The two implementations behind one face: compiled (Cython) and reference (pure Python).

``BOOKENGINE_PURE=1`` in the environment forces the reference. Tests obtain both through
:func:`implementation` and run every case against each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ._display import BookDisplay


@dataclass(frozen=True)
class Implementation:
    """The classes one implementation provides."""

    name: str
    """``"cython"`` or ``"python"``."""
    FrameScanner: type[Any]
    L2Book: type[Any]
    L3Book: type[Any] | None


def _reference() -> Implementation:
    from ._reference import l2book, scan

    l3: ModuleType | None
    try:
        from ._reference import l3book as l3
    except ImportError:
        l3 = None

    class L2Book(l2book.L2BookCore, BookDisplay):
        __doc__ = l2book.L2BookCore.__doc__

    l3_class = None
    if l3 is not None:

        class L3Book(l3.L3BookCore, BookDisplay):  # type: ignore[name-defined]
            __doc__ = l3.L3BookCore.__doc__

        l3_class = L3Book
    return Implementation("python", scan.FrameScanner, L2Book, l3_class)


def _compiled() -> Implementation:
    from ._core import l2book, scan  # type: ignore[attr-defined]

    l3: Any
    try:
        from ._core import l3book as l3  # type: ignore[attr-defined]
    except ImportError:
        l3 = None

    class L2Book(l2book.L2BookCore, BookDisplay):  # type: ignore[misc]
        __doc__ = l2book.L2BookCore.__doc__

    l3_class = None
    if l3 is not None:

        class L3Book(l3.L3BookCore, BookDisplay):  # type: ignore[misc]
            __doc__ = l3.L3BookCore.__doc__

        l3_class = L3Book
    return Implementation("cython", scan.FrameScanner, L2Book, l3_class)


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
    """``"python"`` when forced by ``BOOKENGINE_PURE=1`` or without the extension, else ``"cython"``."""
    if os.environ.get("BOOKENGINE_PURE") == "1":
        return "python"
    return "cython" if compiled_available() else "python"
