"""Small builders shared by the L3 tests: entries, frames, book state for comparisons."""

from __future__ import annotations

import json
from typing import Any

from bookengine import Implementation

SYMBOL = "BTC/USD"


def o(
    order_id: str, price: str, qty: str, event: str | None = None, ts: str | None = None
) -> dict[str, Any]:
    """One level3 entry as Kraken writes it (numbers as text)."""
    entry: dict[str, Any] = {"order_id": order_id, "limit_price": price, "order_qty": qty}
    if event is not None:
        entry["event"] = event
    if ts is not None:
        entry["timestamp"] = ts
    return entry


def frame(
    kind: str,
    bids: list[dict[str, Any]],
    asks: list[dict[str, Any]],
    checksum: int | None = None,
    symbol: str = SYMBOL,
) -> bytes:
    book: dict[str, Any] = {"symbol": symbol, "bids": bids, "asks": asks}
    if checksum is not None:
        book["checksum"] = checksum
    return json.dumps({"channel": "level3", "type": kind, "data": [book]}).encode()


def apply_frame(impl: Implementation, book: Any, data: bytes) -> bool:
    scanner = impl.FrameScanner()
    scanner.scan(data)
    return bool(book.apply_scanned(scanner))


def book_state(book: Any) -> tuple[Any, ...]:
    """Everything observable: checksum, every order with its place, L2 views, counts."""
    arrays = {name: array.tolist() for name, array in book.orders_arrays(order_ids=True).items()}
    return (book.checksum(), arrays, book.bids(), book.asks(), len(book), book.order_count)


def queue(book: Any, side: str, price: int) -> list[tuple[str, int]]:
    """(order_id, qty) of a level in queue order."""
    return [(order_id, qty) for order_id, qty, _ in book.level_orders(side, price)]
