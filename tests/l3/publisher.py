"""A small Kraken-like ``level3`` publisher: an exchange book, the subscriber's window, frames.

It is the independent model the L3 tests (and ``bench/bench_l3.py``) check both book
implementations against. It shares no code with them: plain dicts and ``SortedList``s, and the
checksum comes from ``bookengine.checksum.level3_checksum``.

Model. The exchange holds the full book ``F`` (every order at every price). A subscriber at
``depth`` sees a *window*: a set of F's price levels, each one an exact copy of F's level.
Kraken's rules, as the publisher applies them:

* an event on an order whose level is in the window is published (add, modify, delete);
* an order added at a *new* level is published when that level ranks within ``depth`` and no
  better F level is missing from the window; an add at an existing level outside the window
  is not;
* a price-changing modify is published as ``modify`` when both levels are in the window, as
  ``delete`` when only the old one is, as ``add`` when only the new one is;
* at the end of a message every level of F's top ``depth`` that the window lacks is
  backfilled (all its orders as ``add`` events, queue order): this is how orders that fell
  out by truncation come back; then the window is truncated to ``depth`` levels, as the
  subscriber does.

After every message the window is exactly F's top ``depth`` levels per side.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from sortedcontainers import SortedDict, SortedList

from bookengine.checksum import level3_checksum
from bookengine.numbers import mantissa_text
from bookengine.timestamps import format_rfc3339_ns

BID, ASK = 0, 1
SIDE_KEYS = ("bids", "asks")
SIDE_WORDS = ("bid", "ask")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def kraken_id(n: int) -> str:
    """A unique, random-looking Kraken-shaped id ``OXXXXX-XXXXX-XXXXXX`` for counter ``n``."""
    value = (n * 0x9E3779B97F4A7C15 + 0x1234567) % 36**16  # odd multiplier: injective mod 2**k
    symbols = []
    for _ in range(16):
        value, digit = divmod(value, 36)
        symbols.append(_ALPHABET[digit])
    text = "O" + "".join(symbols)
    return f"{text[:6]}-{text[6:11]}-{text[11:]}"


def _key(side: int, price: int) -> int:
    return -price if side == BID else price


class Publisher:
    """The exchange book plus the subscriber's window; turns exchange events into frames.

    Args:
        symbol, depth, price_precision, qty_precision: the subscription.
        seed: drives id shapes and number rendering (not the events: callers choose those).
        odd_ids: share of ids that are not Kraken-shaped (short, long, lowercase), to exercise
            the compiled index's fallbacks.
        number_style: "mixed" (JSON numbers without trailing zeros, or padded strings),
            "number" or "string".
    """

    def __init__(
        self,
        symbol: str = "BTC/USD",
        depth: int = 10,
        price_precision: int = 1,
        qty_precision: int = 8,
        seed: int = 0,
        odd_ids: float = 0.05,
        number_style: str = "mixed",
    ) -> None:
        self.symbol = symbol
        self.depth = depth
        self.pp = price_precision
        self.qp = qty_precision
        self.rng = random.Random(seed)
        self.odd_ids = odd_ids
        self.number_style = number_style
        # F: per side, key -> {order_id: [qty, timestamp_ns]} (dict order = queue order)
        self.full: tuple[SortedDict, SortedDict] = (SortedDict(), SortedDict())
        self.where: dict[str, tuple[int, int]] = {}  # order_id -> (side, price)
        self.window: tuple[SortedList, SortedList] = (SortedList(), SortedList())
        self.pending: tuple[list[str], list[str]] = ([], [])
        self.events = 0  # published entries so far
        self.clock_ns = 1_704_716_799_000_000_000
        self._ids = 0

    # -- ids, time, rendering ----------------------------------------------------------------

    def new_id(self) -> str:
        self._ids += 1
        if self.rng.random() >= self.odd_ids:
            return kraken_id(self._ids)
        shape = self.rng.randrange(4)
        if shape == 0:
            return f"s{self._ids}"  # short: inline
        if shape == 1:
            return f"custom-client-order-{self._ids:08d}"  # long: heap copy
        if shape == 2:
            return kraken_id(self._ids).lower()  # Kraken-like but not the pattern
        return f"ordre-é-{self._ids}"  # non-ASCII

    def tick(self) -> int:
        self.clock_ns += self.rng.randrange(1, 5_000_000)
        return self.clock_ns

    def _number(self, mantissa: int, scale: int) -> str:
        text = mantissa_text(mantissa, scale)
        style = self.number_style
        if style == "mixed":
            style = "number" if self.rng.random() < 0.7 else "string"
        if style == "string":
            return f'"{text}"'
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text

    def _entry(self, event: str | None, order_id: str, price: int, qty: int, ts: int) -> str:
        head = f'{{"event":"{event}",' if event else "{"
        return (
            f'{head}"order_id":{json.dumps(order_id)},'
            f'"limit_price":{self._number(price, self.pp)},'
            f'"order_qty":{self._number(qty, self.qp)},'
            f'"timestamp":"{format_rfc3339_ns(ts)}"}}'
        )

    def _publish(self, side: int, event: str, order_id: str, price: int) -> None:
        qty, ts = self.full[side][_key(side, price)][order_id]
        self.pending[side].append(self._entry(event, order_id, price, qty, ts))
        self.events += 1

    # -- the exchange: events on F -----------------------------------------------------------

    def best(self, side: int) -> int | None:
        levels = self.full[side]
        return _key(side, levels.peekitem(0)[0]) if levels else None

    def price_near(self, side: int, offset: int, anchor: int = 100_000) -> int:
        """A price ``offset`` ticks behind the touch of ``side`` that cannot cross the book."""
        other = self.best(1 - side)
        own = self.best(side)
        if side == BID:
            top = other - 1 if other is not None else (own if own is not None else anchor)
            return max(0, top - offset)
        bottom = other + 1 if other is not None else (own if own is not None else anchor)
        return bottom + offset

    def add(self, side: int, price: int, qty: int, order_id: str | None = None) -> str:
        """A new resting order at the back of its level. The caller keeps F uncrossed."""
        order_id = order_id or self.new_id()
        assert order_id not in self.where and qty > 0
        other = self.best(1 - side)
        assert other is None or (price < other if side == BID else price > other), "crossing"
        key = _key(side, price)
        levels = self.full[side]
        new_level = key not in levels
        levels.setdefault(key, {})[order_id] = [qty, self.tick()]
        self.where[order_id] = (side, price)
        if new_level:
            self._maybe_show(side, key)
        if key in self.window[side]:
            self._publish(side, "add", order_id, price)
        return order_id

    def _maybe_show(self, side: int, key: int) -> None:
        # A level new to F joins the window when it ranks within depth and every better F
        # level is already shown: what the subscriber can place without a gap.
        rank = self.full[side].index(key)
        if rank < self.depth and self.window[side].bisect_left(key) == rank:
            self.window[side].add(key)

    def _take_out(self, order_id: str) -> tuple[int, int, bool]:
        side, price = self.where.pop(order_id)
        key = _key(side, price)
        level = self.full[side][key]
        shown = key in self.window[side]
        if shown:  # before it leaves F: a delete carries the order's last price and qty
            self._publish(side, "delete", order_id, price)
        del level[order_id]
        if not level:
            del self.full[side][key]
            if shown:
                self.window[side].remove(key)
        return side, price, shown

    def delete(self, order_id: str) -> None:
        """The order is gone (cancel or full fill)."""
        self._take_out(order_id)

    def modify(self, order_id: str, qty: int) -> None:
        """Quantity change in place (partial fill or size change): the order keeps its place."""
        assert qty > 0
        side, price = self.where[order_id]
        key = _key(side, price)
        entry = self.full[side][key][order_id]
        entry[0] = qty
        entry[1] = self.tick()
        if key in self.window[side]:
            self._publish(side, "modify", order_id, price)

    def move(self, order_id: str, price: int, qty: int) -> None:
        """A price amend: the order goes to the back of the level at ``price``."""
        side, old_price = self.where[order_id]
        assert price != old_price and qty > 0
        other = self.best(1 - side)
        assert other is None or (price < other if side == BID else price > other), "crossing"
        old_key, key = _key(side, old_price), _key(side, price)
        old_shown = old_key in self.window[side]
        level = self.full[side][old_key]
        del level[order_id]
        if not level:
            del self.full[side][old_key]
            if old_shown:
                self.window[side].remove(old_key)
        levels = self.full[side]
        new_level = key not in levels
        levels.setdefault(key, {})[order_id] = [qty, self.tick()]
        self.where[order_id] = (side, price)
        if new_level:
            self._maybe_show(side, key)
        new_shown = key in self.window[side]
        if old_shown and new_shown:
            self._publish(side, "modify", order_id, price)
        elif old_shown:
            ts = self.full[side][key][order_id][1]
            self.pending[side].append(self._entry("delete", order_id, old_price, qty, ts))
            self.events += 1
        elif new_shown:
            self._publish(side, "add", order_id, price)

    def trade(self, side: int, qty: int) -> None:
        """An aggressive order takes ``qty`` from the front of ``side``'s best levels."""
        while qty > 0 and self.full[side]:
            _, level = self.full[side].peekitem(0)
            order_id, (resting, _) = next(iter(level.items()))
            if resting <= qty:
                qty -= resting
                self.delete(order_id)
            else:
                self.modify(order_id, resting - qty)
                qty = 0

    # -- messages ----------------------------------------------------------------------------

    def flush(self, checksum: bool = True) -> bytes:
        """The update frame for the events since the last frame (backfill included)."""
        for side in (BID, ASK):
            window, keys = self.window[side], self.full[side].keys()
            n = min(self.depth, len(keys))
            # The window is a subset of F: its n-th key equals F's n-th exactly when its first
            # n keys are F's first n. Only then is nothing missing (one look, not n).
            if n == 0 or (len(window) >= n and window[n - 1] == keys[n - 1]):
                del window[self.depth :]
                continue
            for key in keys[: self.depth]:
                if key not in window:
                    price = _key(side, key)
                    for order_id in self.full[side][key]:
                        self._publish(side, "add", order_id, price)
                    window.add(key)
            del window[self.depth :]
        frame = self._frame("update", checksum)
        self.pending[BID].clear()
        self.pending[ASK].clear()
        return frame

    def snapshot(self) -> bytes:
        """A snapshot frame of the window (F's top ``depth`` levels); drops pending events."""
        for side in (BID, ASK):
            self.pending[side].clear()
            self.window[side].clear()
            self.window[side].update(self.full[side].keys()[: self.depth])
            for price, orders in self.levels(side):
                for order_id, qty, ts in orders:
                    self.pending[side].append(self._entry(None, order_id, price, qty, ts))
        frame = self._frame("snapshot", True)
        self.pending[BID].clear()
        self.pending[ASK].clear()
        return frame

    def _frame(self, kind: str, checksum: bool) -> bytes:
        parts = [f'"symbol":{json.dumps(self.symbol)}']
        if checksum:
            parts.append(f'"checksum":{self.checksum()}')
        parts.append(f'"bids":[{",".join(self.pending[BID])}]')
        parts.append(f'"asks":[{",".join(self.pending[ASK])}]')
        parts.append(f'"timestamp":"{format_rfc3339_ns(self.clock_ns)}"')
        return (f'{{"channel":"level3","type":"{kind}","data":[{{{",".join(parts)}}}]}}').encode()

    # -- what the subscriber must hold -------------------------------------------------------

    def levels(self, side: int) -> Iterator[tuple[int, list[tuple[str, int, int]]]]:
        """Window levels best first: (price, [(order_id, qty, timestamp_ns) in queue order])."""
        for key in self.window[side]:
            level = self.full[side][key]
            yield _key(side, key), [(oid, q, ts) for oid, (q, ts) in level.items()]

    def l2(self, side: int) -> list[tuple[int, int]]:
        return [(price, sum(q for _, q, _ in orders)) for price, orders in self.levels(side)]

    def checksum(self) -> int:
        def top(side: int) -> list[tuple[int, list[int]]]:
            return [
                (_key(side, key), [q for q, _ in self.full[side][key].values()])
                for key in self.window[side][:10]
            ]

        return level3_checksum(top(ASK), top(BID))

    def visible_ids(self) -> list[str]:
        return [
            oid for side in (BID, ASK) for _, orders in self.levels(side) for oid, _, _ in orders
        ]

    def hidden_ids(self) -> list[str]:
        """Orders the exchange has but the subscriber must not (outside the window)."""
        shown = set(self.visible_ids())
        return [oid for oid in self.where if oid not in shown]

    def order(self, order_id: str) -> tuple[Any, ...] | None:
        """``(order_id, side, price, qty, timestamp_ns, level_index, position)`` or None."""
        if order_id not in self.where:
            return None
        side, price = self.where[order_id]
        key = _key(side, price)
        if key not in self.window[side]:
            return None
        level = self.full[side][key]
        qty, ts = level[order_id]
        return (
            order_id,
            SIDE_WORDS[side],
            price,
            qty,
            ts,
            self.window[side].index(key),
            list(level).index(order_id),
        )

    def queue_position(self, order_id: str) -> tuple[int, int, int, int, int] | None:
        info = self.order(order_id)
        if info is None:
            return None
        side, price = self.where[order_id]
        quantities = [q for q, _ in self.full[side][_key(side, price)].values()]
        position = info[6]
        ahead = sum(quantities[:position])
        total = sum(quantities)
        return position, ahead, total - ahead - info[3], len(quantities), total

    def all_ids(self) -> list[str]:
        return list(self.where)
