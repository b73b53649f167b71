"""bookengine: exact Kraken Spot order books (L2 ``book``, L3 ``level3``) and queue analytics.

``IMPLEMENTATION`` names the active implementation: ``"cython"`` (the compiled core) or
``"python"`` (the pure-Python reference, forced by ``BOOKENGINE_PURE=1``).
"""

from __future__ import annotations

from ._impl import Implementation, implementation
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

__version__ = "0.1.0"

_active = implementation()
IMPLEMENTATION: str = _active.name
L2Book = _active.L2Book
L3Book = _active.L3Book
FrameScanner = _active.FrameScanner

__all__ = [
    "IMPLEMENTATION",
    "BookError",
    "CaptureError",
    "ChecksumError",
    "CrossedBookError",
    "FrameScanner",
    "Implementation",
    "L2Book",
    "L3Book",
    "OrderError",
    "PrecisionError",
    "ProtocolError",
    "UnknownSymbolError",
    "__version__",
    "implementation",
]
