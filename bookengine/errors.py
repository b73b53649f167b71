"""Exceptions raised by bookengine.

Every error names what was wrong: the symbol, the side and entry index of a bad level, the field
of a malformed frame. A message that raises leaves its book exactly as it was before.
"""

from __future__ import annotations


class BookError(Exception):
    """Base class of every error bookengine raises about books, frames or captures."""


class ProtocolError(BookError):
    """A frame is not valid JSON or not shaped like the Kraken message it claims to be."""


class PrecisionError(BookError):
    """A number cannot be held exactly at the symbol's scale.

    Raised for more significant fractional digits than the scale, negative values, int64
    overflow, or text that is not a decimal number.
    """


class UnknownSymbolError(BookError):
    """A frame names a symbol (or order id) the receiver has no book or precision for."""


class ChecksumError(BookError):
    """A computed Kraken CRC32 differs from the one the exchange sent."""

    def __init__(self, symbol: str, expected: int, computed: int) -> None:
        super().__init__(
            f"{symbol}: checksum mismatch: Kraken sent {expected}, book gives {computed}"
        )
        self.symbol = symbol
        self.expected = expected
        self.computed = computed


class CrossedBookError(BookError):
    """A message would leave the best bid at or above the best ask."""


class OrderError(BookError):
    """An L3 event names an unknown order, adds a duplicate, or is otherwise inconsistent."""


class CaptureError(BookError):
    """A capture file is unreadable or a line in it is malformed."""
