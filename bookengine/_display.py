"""Display and convenience methods shared by both implementations' books.

The cores keep mantissas; these turn them into ``Decimal`` or decimal text for people, and
derive spread and crossing from the core's best levels. Nothing here is on the hot path.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .numbers import mantissa_decimal, mantissa_text

if TYPE_CHECKING:
    from .core_types import Book


class BookDisplay:
    """Mixed into each implementation's ``L2Book`` and ``L3Book``: with it, both are a
    :class:`bookengine.core_types.Book`."""

    def price_text(self: Book, price: int) -> str:
        """A price mantissa as decimal text at the symbol's precision (``"29430.2"``)."""
        return mantissa_text(price, self.price_precision or 0)

    def qty_text(self: Book, qty: int) -> str:
        """A quantity mantissa as decimal text at the symbol's precision (``"0.00100000"``)."""
        return mantissa_text(qty, self.qty_precision or 0)

    def price_decimal(self: Book, price: int) -> Decimal:
        """A price mantissa as an exact ``Decimal``."""
        return mantissa_decimal(price, self.price_precision or 0)

    def qty_decimal(self: Book, qty: int) -> Decimal:
        """A quantity mantissa as an exact ``Decimal``."""
        return mantissa_decimal(qty, self.qty_precision or 0)

    def levels_text(self: Book, side: str, n: int | None = None) -> list[tuple[str, str]]:
        """Top ``n`` levels of ``side`` ("bid"/"ask") as (price, qty) decimal text, best first."""
        if side not in ("bid", "ask"):
            raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")
        levels = self.bids(n) if side == "bid" else self.asks(n)
        pp, qp = self.price_precision or 0, self.qty_precision or 0
        return [(mantissa_text(p, pp), mantissa_text(q, qp)) for p, q in levels]

    def spread(self: Book) -> int | None:
        """Best ask minus best bid as a price mantissa; None when a side is empty."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return ask[0] - bid[0]

    def is_crossed(self: Book) -> bool:
        """True when the best bid is at or above the best ask (never valid on Kraken)."""
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid[0] >= ask[0]
