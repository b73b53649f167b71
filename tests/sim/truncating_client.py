"""A small L2 client of our own that truncates to the depth after EVERY entry.

That is the rule python-kraken-sdk's ``SpotOrderBookClient`` and cryptofeed follow (sort and slice
inside the per-entry loop); Kraken's own documentation truncates after the whole message. A feed
is only safe for both if the checksum verifies under the stricter rule. Written independently of
the library (only the CRC32 rule is shared): prices and quantities as exact mantissas.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bookengine.checksum import book_checksum
from bookengine.numbers import parse_mantissa


class TruncatingBook:
    """One symbol's book, truncated after every entry; counts checksum matches and failures.

    Args:
        depth: the subscribed depth.
        price_scale, qty_scale: decimals of the mantissas the checksum hashes (v2: the pair's
            precisions; v1: the wire strings' decimals).
    """

    def __init__(self, depth: int, price_scale: int, qty_scale: int) -> None:
        self.depth = depth
        self.price_scale = price_scale
        self.qty_scale = qty_scale
        self.asks: dict[int, int] = {}
        self.bids: dict[int, int] = {}
        self.verified = 0
        self.failed = 0
        self.crossed = 0
        """Messages after which the best bid was at or above the best ask."""

    def _entry(self, levels: dict[int, int], is_bid: bool, price: Any, qty: Any) -> None:
        p = parse_mantissa(_text(price), self.price_scale, "price")
        q = parse_mantissa(_text(qty), self.qty_scale, "qty")
        if q == 0:
            levels.pop(p, None)
        else:
            levels[p] = q
        if len(levels) > self.depth:
            for worst in sorted(levels, reverse=is_bid)[self.depth :]:
                del levels[worst]

    def apply(self, bids: list[tuple[Any, Any]], asks: list[tuple[Any, Any]]) -> None:
        """Apply entries one by one (bids first, then asks), truncating after each."""
        for price, qty in bids:
            self._entry(self.bids, True, price, qty)
        for price, qty in asks:
            self._entry(self.asks, False, price, qty)

    def checksum(self) -> int:
        asks = [(p, self.asks[p]) for p in sorted(self.asks)][:10]
        bids = [(p, self.bids[p]) for p in sorted(self.bids, reverse=True)][:10]
        return book_checksum(asks, bids)

    def check(self, expected: int) -> bool:
        if self.asks and self.bids and max(self.bids) >= min(self.asks):
            self.crossed += 1
        ok = self.checksum() == expected
        if ok:
            self.verified += 1
        else:
            self.failed += 1
        return ok

    def on_v2(self, data: dict[str, Any], snapshot: bool) -> None:
        """One ``data`` item of a v2 ``book`` message."""
        if snapshot:
            self.asks.clear()
            self.bids.clear()
        self.apply(
            [(lv["price"], lv["qty"]) for lv in data["bids"]],
            [(lv["price"], lv["qty"]) for lv in data["asks"]],
        )
        self.check(int(data["checksum"]))

    def on_v1(self, message: list[Any]) -> None:
        """One v1 ``book`` message (snapshot or update) ``[id, payload..., name, pair]``."""
        checksum: int | None = None
        for payload in message[1:-2]:
            if "as" in payload or "bs" in payload:
                self.asks.clear()
                self.bids.clear()
                self.apply(
                    [(e[0], e[1]) for e in payload.get("bs", [])],
                    [(e[0], e[1]) for e in payload.get("as", [])],
                )
                continue
            # One payload per side, applied in the order they come.
            self.apply(
                [(e[0], e[1]) for e in payload.get("b", [])],
                [(e[0], e[1]) for e in payload.get("a", [])],
            )
            if "c" in payload:
                checksum = int(payload["c"])
        if checksum is not None:
            self.check(checksum)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a number or numeric string, got {value!r}")
