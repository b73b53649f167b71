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


class EffectMirror:
    """An independent copy of a book's orders, moved only by the book's effects.

    ``apply`` checks every effect against the mirror as it stands just before it (the order's
    price, quantity, place and level index), then applies it; ``state`` must then equal the
    book's ``orders_arrays``: effects that are complete and in the right order rebuild the book
    exactly, queue order included.
    """

    def __init__(self) -> None:
        # order id -> (side word, price, qty); dict order is queue order within a level.
        self.orders: dict[str, tuple[str, int, int]] = {}

    def reset(self, book: Any) -> None:
        arrays = book.orders_arrays(order_ids=True)
        self.orders = {
            str(order_id): ("bid" if side == 0 else "ask", int(price), int(qty))
            for side, price, qty, order_id in zip(
                arrays["side"], arrays["price"], arrays["qty"], arrays["order_id"], strict=True
            )
        }

    def level(self, side: str, price: int) -> list[tuple[str, int]]:
        return [(i, q) for i, (s, p, q) in self.orders.items() if s == side and p == price]

    def rank(self, side: str, price: int) -> int:
        """Levels better than ``price`` on ``side`` (its index, existing or to be)."""
        prices = {p for s, p, _ in self.orders.values() if s == side}
        return sum(1 for p in prices if (p > price if side == "bid" else p < price))

    def apply(self, effects: Any) -> None:
        # Truncations report the place each order had when its level was dropped whole: the
        # orders (and the better dropped levels) already taken out by this batch count too.
        gone: dict[tuple[str, int], tuple[int, int]] = {}
        for e in effects:
            if e.action == "add":
                assert e.event == "add" and e.order_id not in self.orders, e
                level = self.level(e.side, e.price)
                assert (e.orders_ahead, e.qty_ahead) == (len(level), sum(q for _, q in level)), e
                assert e.level_index == self.rank(e.side, e.price), e
                assert (e.qty_before, e.new_price) == (0, e.price), e
                self.orders[e.order_id] = (e.side, e.price, e.qty_after)
                continue
            assert e.order_id in self.orders, e
            side, price, qty = self.orders[e.order_id]
            assert (e.side, e.price, e.qty_before) == (side, price, qty), e
            level = self.level(side, price)
            ahead = [i for i, _ in level].index(e.order_id)
            qty_ahead = sum(q for _, q in level[:ahead])
            rank = self.rank(side, price)
            if e.action == "truncate":
                count, total = gone.get((side, price), (0, 0))
                ahead, qty_ahead = ahead + count, qty_ahead + total
                rank += sum(1 for s, p in gone if s == side and p != price)
                gone[side, price] = (count + 1, total + qty)
            assert e.orders_ahead == ahead, e
            assert e.qty_ahead == qty_ahead, e
            assert e.level_index == rank, e
            if e.action in ("delete", "truncate"):
                assert e.qty_after == 0 and e.new_price == -1, e
                assert e.event == ("" if e.action == "truncate" else e.event)
                del self.orders[e.order_id]
            elif e.action == "modify":
                assert e.event == "modify" and e.new_price == price and e.qty_after > 0, e
                self.orders[e.order_id] = (side, price, e.qty_after)
            else:
                assert e.action == "requeue" and e.qty_after > 0, e
                del self.orders[e.order_id]
                if e.event == "modify":  # a delete+add requeue: its add effect comes later
                    assert e.new_price != price, e
                    self.orders[e.order_id] = (side, e.new_price, e.qty_after)

    def state(self) -> list[tuple[int, int, int, str]]:
        """(side, price, qty, order_id) in ``orders_arrays`` order."""
        rows = [(0 if s == "bid" else 1, p, q, i) for i, (s, p, q) in self.orders.items()]
        return sorted(rows, key=lambda r: (r[0], -r[1] if r[0] == 0 else r[1]))


def arrays_state(book: Any) -> list[tuple[int, int, int, str]]:
    arrays = book.orders_arrays(order_ids=True)
    return [
        (int(s), int(p), int(q), str(i))
        for s, p, q, i in zip(
            arrays["side"], arrays["price"], arrays["qty"], arrays["order_id"], strict=True
        )
    ]
