"""Kraken's CRC32 book checksums, in plain Python over int mantissas.

This is the readable statement of the rule; the compiled core computes the same thing in C.
The reference books and the simulator use these functions.

Kraken rule (v2 ``book``, v1 ``book`` and v2 ``level3``): take the best 10 ask levels in
ascending price, then the best 10 bid levels in descending price (fewer where the book is thin).
Each level (L2) or each order of the level in queue order (L3) contributes the digits of its
price then of its quantity, rendered at the symbol's precision with the ``.`` removed and the
leading zeros stripped. With mantissas, that rendering is simply ``str(mantissa)`` ("" for 0).
The CRC32 of the ASCII concatenation, unsigned, is the checksum.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

CHECKSUM_LEVELS = 10
"""The checksum covers at most this many price levels per side, whatever the depth."""

Level = tuple[int, int]
"""(price mantissa, qty mantissa)."""


def check_checksum(checksum: object) -> None:
    """Refuse a checksum argument that is not None or an unsigned 32-bit int (before any change).

    Raises:
        TypeError: not an int; ValueError: outside 0 .. 2**32 - 1.
    """
    if checksum is None:
        return
    if isinstance(checksum, bool) or not isinstance(checksum, int):
        raise TypeError(f"checksum must be an int or None, got {type(checksum).__name__}")
    if not 0 <= checksum <= 0xFFFFFFFF:
        raise ValueError(f"checksum must be an unsigned 32-bit integer, got {checksum}")


def _digits(mantissa: int) -> str:
    return str(mantissa) if mantissa else ""


def checksum_text(asks: Iterable[Level], bids: Iterable[Level]) -> str:
    """The string Kraken hashes for an L2 book.

    Args:
        asks: levels best (lowest) first; only the first 10 are used.
        bids: levels best (highest) first; only the first 10 are used.
    """
    parts: list[str] = []
    for side in (asks, bids):
        for count, (price, qty) in enumerate(side):
            if count == CHECKSUM_LEVELS:
                break
            parts.append(_digits(price))
            parts.append(_digits(qty))
    return "".join(parts)


def book_checksum(asks: Iterable[Level], bids: Iterable[Level]) -> int:
    """Kraken CRC32 of an L2 book (v2 ``book`` or v1 ``book``), as an unsigned 32-bit int."""
    return zlib.crc32(checksum_text(asks, bids).encode("ascii")) & 0xFFFFFFFF


def l3_checksum_text(
    asks: Iterable[tuple[int, Iterable[int]]], bids: Iterable[tuple[int, Iterable[int]]]
) -> str:
    """The string Kraken hashes for an L3 book.

    Args:
        asks: ``(price, [qty of each order in queue order])`` per level, best first.
        bids: the same for bids, best first.
    """
    parts: list[str] = []
    for side in (asks, bids):
        for count, (price, order_qtys) in enumerate(side):
            if count == CHECKSUM_LEVELS:
                break
            price_digits = _digits(price)
            for qty in order_qtys:
                parts.append(price_digits)
                parts.append(_digits(qty))
    return "".join(parts)


def level3_checksum(
    asks: Iterable[tuple[int, Iterable[int]]], bids: Iterable[tuple[int, Iterable[int]]]
) -> int:
    """Kraken CRC32 of an L3 book, as an unsigned 32-bit int."""
    return zlib.crc32(l3_checksum_text(asks, bids).encode("ascii")) & 0xFFFFFFFF
