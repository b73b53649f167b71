"""Tiny hand-made streams: every number in them can be checked with pencil and paper.

Prices have 1 decimal and quantities 0 (``BTC/USD``-like with whole-unit sizes), so the
mantissa of ``"100.0"`` is 1000 and of ``"5"`` is 5.
"""

from __future__ import annotations

import json
from typing import Any

from bookengine.kraken.session import KrakenSession

SYMBOL = "TST/USD"
PRECISIONS = {SYMBOL: (1, 0)}
T0 = 1_704_716_800_000_000_000
MS = 1_000_000


def stamp(ns: int) -> str:
    """RFC 3339 with nanoseconds for ``ns`` after 2024-01-08T12:26:40Z."""
    offset = ns - T0
    seconds, nanos = divmod(offset, 1_000_000_000)
    return f"2024-01-08T12:26:{40 + seconds:02d}.{nanos:09d}Z"


def order(order_id: str, price: str, qty: str, event: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"order_id": order_id, "limit_price": price, "order_qty": qty}
    if event is not None:
        entry["event"] = event
    return entry


def level3(
    kind: str,
    bids: list[dict[str, Any]],
    asks: list[dict[str, Any]],
    t_ns: int | None = None,
    symbol: str = SYMBOL,
) -> bytes:
    """A level3 frame (no checksum: these books are checked by their queues)."""
    data: dict[str, Any] = {"symbol": symbol, "bids": bids, "asks": asks}
    if t_ns is not None:
        data["timestamp"] = stamp(t_ns)
    return json.dumps({"channel": "level3", "type": kind, "data": [data]}).encode()


def book(kind: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> bytes:
    """An L2 ``book`` frame (no checksum)."""
    data = {
        "symbol": SYMBOL,
        "bids": [{"price": p, "qty": q} for p, q in bids],
        "asks": [{"price": p, "qty": q} for p, q in asks],
    }
    return json.dumps({"channel": "book", "type": kind, "data": [data]}).encode()


def trade(side: str, price: str, qty: str, trade_id: int, t_ns: int | None = None) -> bytes:
    """A v2 trade update with one trade (``side`` is the taker's)."""
    item: dict[str, Any] = {
        "symbol": SYMBOL,
        "side": side,
        "price": price,
        "qty": qty,
        "ord_type": "market",
        "trade_id": trade_id,
    }
    if t_ns is not None:
        item["timestamp"] = stamp(t_ns)
    # Kraken's own layout (compact, keys in its order): the line reader reads it in C.
    frame = {"channel": "trade", "type": "update", "data": [item]}
    return json.dumps(frame, separators=(",", ":")).encode()


def ack(channel: str, depth: int) -> bytes:
    result = {"channel": channel, "depth": depth, "snapshot": True, "symbol": SYMBOL}
    return json.dumps({"method": "subscribe", "result": result, "success": True}).encode()


def session(impl_name: str) -> KrakenSession:
    return KrakenSession(precisions=PRECISIONS, implementation_name=impl_name, depth=10)
