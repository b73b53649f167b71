"""A price-time priority matching engine per symbol, driven by seeded synthetic order flow.

Everything is an int mantissa at the symbol's precision: prices at ``price_precision`` (one unit
is one tick, so every price is on the tick grid), quantities at ``qty_precision``. The engine
has no clock: callers pass ``now_ns``. With the same seed and the same sequence of calls it
produces the same book, orders, ids and trades, bit for bit.

What an engine step can do (``MatchingEngine.step``):

* add a limit order, mostly a few ticks from its own touch (geometric distance), sometimes
  inside the spread, sometimes deep in the book, and behind the worst level while the side has
  fewer than ``target_levels`` levels (so depth-1000 subscriptions stay full);
* cancel an order (half of the time one near the touch);
* amend an order: a quantity decrease keeps queue priority (level3 ``modify``); a quantity
  increase or a price change re-queues it (level3 ``delete`` then ``add``, same order id);
* send a market order or a marketable limit order that trades through one or more levels
  (makers partially filled stay in place, fully filled ones leave); a marketable limit's
  remainder rests at its limit price.

The book is never crossed after a call. Changes since the last :meth:`MatchingEngine.drain` are
kept as touched price levels per side plus the trades; the publisher diffs subscriber windows
over those.

Ground truth for analytics: Kraken's level3 ``delete``/``modify`` never say *why* an order
changed. The engine knows, and when :attr:`MatchingEngine.history` is a list it appends one
:class:`OrderChange` per change of a resting order (fill, partial fill, cancel, in-place
reduction, re-queue), keyed like the level3 stream by order id and engine time. Orders placed
as ``user`` orders (the simulator's ``add_order``) are never picked by the synthetic flow: only
their owner cancels them, as on a real exchange.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from sortedcontainers import SortedDict

from ..checksum import CHECKSUM_LEVELS, book_checksum, level3_checksum
from .specs import SymbolSpec

Side = Literal["buy", "sell"]
"""Order side in Kraken's words: a ``buy`` order rests on the bids, a ``sell`` on the asks."""

Mode = Literal["online", "cancel_only", "post_only", "maintenance"]
"""Kraken ``system`` states the engine honours: which kinds of order flow it generates."""

ORDER_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
"""Characters of Kraken order ids (``OXXXXX-XXXXX-XXXXXX``)."""

_MAX_GEOMETRIC = 64
"""Cap on geometric draws, so a run of unlucky draws cannot loop long."""


def derive_seed(seed: int, symbol: str) -> int:
    """The per-symbol seed derived from the global one (stable across runs and platforms)."""
    digest = hashlib.sha256(f"bookengine.sim:{seed}:{symbol}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def is_order_id(text: str) -> bool:
    """True for Kraken's order id shape: ``O`` + 5, ``-`` + 5, ``-`` + 6 of ``A-Z0-9``."""
    return (
        len(text) == 19
        and text[0] == "O"
        and text[6] == "-"
        and text[12] == "-"
        and all(c in ORDER_ID_ALPHABET for c in text[1:6] + text[7:12] + text[13:])
    )


@dataclass(slots=True)
class Order:
    """A resting order. ``seq`` is its queue priority stamp: a re-queue gives a new one."""

    order_id: str
    side: Side
    price: int
    qty: int
    seq: int
    timestamp_ns: int


class Level:
    """One price level: orders in queue (time) priority, and their total quantity."""

    __slots__ = ("orders", "price", "qty", "updated_ns")

    def __init__(self, price: int, now_ns: int) -> None:
        self.price = price
        self.qty = 0
        self.updated_ns = now_ns
        self.orders: dict[str, Order] = {}
        """Order id -> order, in queue order (dicts keep insertion order)."""


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill: a taker order against one resting maker order, at the maker's price."""

    trade_id: int
    side: Side
    """The taker's side (Kraken's trade ``side``)."""
    price: int
    qty: int
    ord_type: Literal["market", "limit"]
    maker_order_id: str
    timestamp_ns: int


ChangeReason = Literal["fill", "partial_fill", "cancel", "reduce", "requeue"]
"""Why a resting order changed: traded in full, traded in part, cancelled, its quantity lowered
in place (amend down: keeps priority), or re-queued (amend up or to another price: loses it)."""


@dataclass(frozen=True, slots=True)
class OrderChange:
    """One change of one resting order, as the engine did it (the classifiers' ground truth)."""

    order_id: str
    side: Side
    price: int
    """The price the order rested at before the change."""
    reason: ChangeReason
    qty_before: int
    qty_after: int
    """0 when the order left the book; for ``requeue`` the re-queued quantity."""
    timestamp_ns: int
    """Engine time of the change (the level3 message and trades of that step carry it too)."""
    trade_id: int = 0
    """For ``fill``/``partial_fill``: the trade that did it."""
    new_price: int = 0
    """For ``requeue``: the price the order rests at afterwards."""


@dataclass(slots=True)
class Changes:
    """What changed since the previous drain: touched price levels per side, and trades."""

    bid_prices: set[int] = field(default_factory=set)
    ask_prices: set[int] = field(default_factory=set)
    trades: list[Trade] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.bid_prices or self.ask_prices or self.trades)


class BookSide:
    """One side of the book: levels keyed so that iteration runs best first.

    Keys are ``price`` for asks and ``-price`` for bids; :meth:`key` converts.
    """

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.sign = -1 if is_bid else 1
        self.levels: SortedDict = SortedDict()
        """key -> :class:`Level`."""

    def key(self, price: int) -> int:
        """The sort key of ``price`` on this side."""
        return self.sign * price

    def __len__(self) -> int:
        return len(self.levels)

    def best(self) -> Level | None:
        """The best level, or None when the side is empty."""
        if not self.levels:
            return None
        level: Level = self.levels.peekitem(0)[1]
        return level

    def level(self, price: int) -> Level | None:
        """The level at ``price``, or None."""
        level: Level | None = self.levels.get(self.sign * price)
        return level

    def top(self, n: int) -> list[Level]:
        """Up to ``n`` levels, best first. O(n)."""
        levels: list[Level] = list(self.levels.values()[:n])
        return levels

    def window_end_key(self, depth: int) -> int | None:
        """Key of the worst level among the best ``depth``, None when the side is empty."""
        count = min(depth, len(self.levels))
        if count == 0:
            return None
        key: int = self.levels.keys()[count - 1]
        return key

    def keys_after(self, low: int | None, high: int) -> Iterator[int]:
        """Keys in ``(low, high]`` best first (``low`` None: from the best level)."""
        keys: Iterator[int] = self.levels.irange(low, high, inclusive=(False, True))
        return keys

    def worst(self) -> Level | None:
        """The worst level, or None."""
        if not self.levels:
            return None
        level: Level = self.levels.peekitem(-1)[1]
        return level


class MatchingEngine:
    """Price-time priority book for one symbol, with seeded synthetic order flow.

    Args:
        spec: the instrument (precisions, starting mid, lot sizes).
        seed: the per-symbol seed (see :func:`derive_seed`); it alone decides the flow.
        now_ns: time of the warm-up orders.
        target_levels: price levels per side the flow keeps (at least 1000 for depth 1000).
        warmup_steps: random steps run after seeding the book, so it starts out irregular.
        seed_book: False starts from an empty book (for driving the verbs by hand).
    """

    def __init__(
        self,
        spec: SymbolSpec,
        seed: int,
        *,
        now_ns: int = 0,
        target_levels: int = 1200,
        warmup_steps: int = 1000,
        seed_book: bool = True,
    ) -> None:
        if target_levels < 1:
            raise ValueError("target_levels must be positive")
        self.spec = spec
        self.rng = random.Random(seed)
        self.target_levels = target_levels
        self.target_orders = 2 * target_levels + target_levels // 2
        self.bids = BookSide(True)
        self.asks = BookSide(False)
        self.mode: Mode = "online"
        self.steps = 0
        self._orders: dict[str, Order] = {}
        # Per side, a list of resting order ids plus positions: O(1) uniform random picks.
        self._pick_ids: dict[bool, list[str]] = {True: [], False: []}
        self._pick_pos: dict[str, int] = {}
        self._seq = 0
        self._trade_id = self.rng.randrange(10_000_000, 90_000_000)
        self._changes = Changes()
        self._round_unit = int(10 ** (len(str(spec.lot_qty)) - 1))
        self.history: list[OrderChange] | None = None
        """Set to a list to record every :class:`OrderChange` (ground truth); None: off."""
        self.user_orders: set[str] = set()
        """Resting orders placed with ``user=True``: the synthetic flow never touches them."""
        if seed_book:
            self._seed_book(now_ns)
            for _ in range(warmup_steps):
                self.step(now_ns)
        # The warm-up is not news: subscribers start from snapshots.
        self.drain()

    # -- views ------------------------------------------------------------------------------

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    def side(self, is_bid: bool) -> BookSide:
        """The bids (``is_bid``) or the asks."""
        return self.bids if is_bid else self.asks

    def order(self, order_id: str) -> Order | None:
        """The resting order with this id, or None."""
        return self._orders.get(order_id)

    @property
    def order_count(self) -> int:
        return len(self._orders)

    def levels(self, is_bid: bool, n: int) -> list[tuple[int, int]]:
        """Up to ``n`` levels of one side, best first, as (price, qty) mantissas."""
        return [(level.price, level.qty) for level in self.side(is_bid).top(n)]

    def best_bid(self) -> int | None:
        level = self.bids.best()
        return None if level is None else level.price

    def best_ask(self) -> int | None:
        level = self.asks.best()
        return None if level is None else level.price

    def checksum(self, depth: int = CHECKSUM_LEVELS) -> int:
        """Kraken CRC32 of the L2 book: top 10 levels per side (fewer if ``depth`` is smaller).

        Kraken hashes the client's book after truncation, so a depth below 10 (not offered by
        Kraken, but possible here) hashes only ``depth`` levels.
        """
        n = min(depth, CHECKSUM_LEVELS)
        return book_checksum(self.levels(False, n), self.levels(True, n))

    def v1_checksum(self, depth: int = CHECKSUM_LEVELS) -> int:
        """Kraken CRC32 of the L2 book as v1 prints it (mantissas at the v1 wire decimals)."""
        n = min(depth, CHECKSUM_LEVELS)
        pf, qf = self.spec.v1_price_factor, self.spec.v1_qty_factor
        return book_checksum(
            [(p * pf, q * qf) for p, q in self.levels(False, n)],
            [(p * pf, q * qf) for p, q in self.levels(True, n)],
        )

    def level3_checksum(self, depth: int = CHECKSUM_LEVELS) -> int:
        """Kraken CRC32 of the L3 book (every order of the top 10 levels, queue order)."""
        n = min(depth, CHECKSUM_LEVELS)
        return level3_checksum(
            [(lv.price, [o.qty for o in lv.orders.values()]) for lv in self.asks.top(n)],
            [(lv.price, [o.qty for o in lv.orders.values()]) for lv in self.bids.top(n)],
        )

    def drain(self) -> Changes:
        """Return the changes since the previous drain and start a new set."""
        changes, self._changes = self._changes, Changes()
        return changes

    # -- verbs ------------------------------------------------------------------------------

    def add_limit(
        self,
        side: Side,
        price: int,
        qty: int,
        now_ns: int,
        order_id: str | None = None,
        *,
        user: bool = False,
    ) -> tuple[str, list[Trade]]:
        """Place a limit order; the part that crosses trades first, the rest rests.

        Args:
            user: a user's order (the simulator's ``add_order``): the synthetic flow never
                cancels or amends it while it rests.

        Returns:
            The order id and the trades it made (the id may no longer rest if fully filled).

        Raises:
            ValueError: non-positive price or qty, or a duplicate order id.
        """
        if price <= 0 or qty <= 0:
            raise ValueError(f"{self.symbol}: price and qty must be positive")
        if order_id is None:
            order_id = self._new_order_id()
        elif order_id in self._orders:
            raise ValueError(f"{self.symbol}: duplicate order id {order_id}")
        trades, remaining = self._take(side, qty, price, "limit", now_ns)
        if remaining:
            self._insert(Order(order_id, side, price, remaining, self._next_seq(), now_ns), now_ns)
            if user:
                self.user_orders.add(order_id)
        return order_id, trades

    def market(self, side: Side, qty: int, now_ns: int) -> list[Trade]:
        """A market order: trades through levels until filled or the other side is empty."""
        if qty <= 0:
            raise ValueError(f"{self.symbol}: qty must be positive")
        trades, _ = self._take(side, qty, None, "market", now_ns)
        return trades

    def cancel(self, order_id: str, now_ns: int) -> bool:
        """Remove a resting order. Returns False when no such order rests."""
        order = self._orders.get(order_id)
        if order is None:
            return False
        self._record(order, "cancel", 0, now_ns)
        self._remove(order, now_ns)
        return True

    def amend(
        self, order_id: str, now_ns: int, qty: int | None = None, price: int | None = None
    ) -> bool:
        """Change a resting order's quantity and/or price.

        A quantity decrease at the same price keeps queue priority; anything else (quantity
        increase, new price) sends the order to the back of its (new) level's queue under the
        same id. A new price must not cross the book. Quantity 0 cancels.

        Returns:
            False when no such order rests.

        Raises:
            ValueError: the new price would cross the book, or a value is not positive.
        """
        order = self._orders.get(order_id)
        if order is None:
            return False
        new_qty = order.qty if qty is None else qty
        new_price = order.price if price is None else price
        if new_qty == 0:
            self._record(order, "cancel", 0, now_ns)
            self._remove(order, now_ns)
            return True
        if new_qty < 0 or new_price <= 0:
            raise ValueError(f"{self.symbol}: amend values must be positive")
        if new_price == order.price and new_qty <= order.qty:
            if new_qty < order.qty:
                self._record(order, "reduce", new_qty, now_ns)
            level = self._level_of(order)
            level.qty -= order.qty - new_qty
            order.qty = new_qty
            order.timestamp_ns = now_ns
            self._touch(order.side == "buy", level, now_ns)
            return True
        is_bid = order.side == "buy"
        opposite = self.side(not is_bid).best()
        if opposite is not None and (
            new_price >= opposite.price if is_bid else new_price <= opposite.price
        ):
            raise ValueError(f"{self.symbol}: amend to {new_price} would cross the book")
        self._record(order, "requeue", new_qty, now_ns, new_price=new_price)
        self._remove(order, now_ns)
        self._insert(
            Order(order_id, order.side, new_price, new_qty, self._next_seq(), now_ns), now_ns
        )
        return True

    # -- synthetic flow ---------------------------------------------------------------------

    def step(self, now_ns: int) -> None:
        """Apply one random order-flow event (what kinds depends on :attr:`mode`)."""
        self.steps += 1
        if self.mode == "maintenance":
            return
        rng = self.rng
        is_bid = rng.random() < 0.5
        if self.mode == "cancel_only":
            self._random_cancel(is_bid, now_ns)
            return
        count = len(self._pick_ids[is_bid])
        w_add = 1.0
        # Cancels grow with the side's size, which keeps the order count near its target.
        w_cancel = 0.7 * count / self.target_orders
        w_amend = 0.25
        w_take = 0.0 if self.mode == "post_only" else 0.3
        draw = rng.random() * (w_add + w_cancel + w_amend + w_take)
        if draw < w_add:
            self._random_add(is_bid, now_ns)
        elif draw < w_add + w_cancel:
            self._random_cancel(is_bid, now_ns)
        elif draw < w_add + w_cancel + w_amend:
            self._random_amend(is_bid, now_ns)
        else:
            self._random_take(now_ns)

    def _geometric(self, mean: float) -> int:
        """A geometric draw (0, 1, 2 ...) with the given mean, capped."""
        stay = mean / (mean + 1.0)
        count = 0
        while count < _MAX_GEOMETRIC and self.rng.random() < stay:
            count += 1
        return count

    def _random_qty(self) -> int:
        rng = self.rng
        spec = self.spec
        draw = rng.random()
        if draw < 0.25:
            # Round sizes (0.01 BTC, 3000 DOGE): their wire text has trailing zeros to strip.
            return self._round_unit * rng.randint(1, 9)
        if draw < 0.95:
            return rng.randint(spec.qty_min, 2 * spec.lot_qty)
        return rng.randint(2 * spec.lot_qty, 20 * spec.lot_qty)

    def _reference_price(self, is_bid: bool) -> int:
        own = self.side(is_bid).best()
        if own is not None:
            return own.price
        opposite = self.side(not is_bid).best()
        if opposite is not None:
            return opposite.price - 1 if is_bid else opposite.price + 1
        return self.spec.mid_price

    def _random_add(self, is_bid: bool, now_ns: int) -> None:
        rng = self.rng
        side = self.side(is_bid)
        direction = -1 if is_bid else 1  # away from the spread
        draw = rng.random()
        worst = side.worst()
        if worst is not None and len(side) < self.target_levels and draw < 0.3:
            price = worst.price + direction * (1 + self._geometric(1.0))
        elif draw < 0.65:
            reference = self._reference_price(is_bid)
            own, opposite = side.best(), self.side(not is_bid).best()
            spread = 0 if own is None or opposite is None else abs(opposite.price - own.price)
            if spread > 1 and rng.random() < 0.15:
                price = reference - direction * rng.randint(1, spread - 1)
            else:
                price = reference + direction * self._geometric(2.0)
        else:
            reference = self._reference_price(is_bid)
            price = reference + direction * rng.randrange(
                self.target_levels + self.target_levels // 3
            )
        opposite = self.side(not is_bid).best()
        if opposite is not None:
            # Passive only: a limit at or through the other touch would be a take.
            price = min(price, opposite.price - 1) if is_bid else max(price, opposite.price + 1)
        if price <= 0:
            return
        self.add_limit("buy" if is_bid else "sell", price, self._random_qty(), now_ns)

    def _pick_order(self, is_bid: bool) -> Order | None:
        ids = self._pick_ids[is_bid]
        if not ids:
            return None
        rng = self.rng
        if rng.random() < 0.5:
            # Near the touch, where most real cancels happen.
            levels = self.side(is_bid).top(5)
            level = levels[rng.randrange(len(levels))]
            queue = list(level.orders.values())
            order = queue[rng.randrange(len(queue))]
        else:
            order = self._orders[ids[rng.randrange(len(ids))]]
        # A user's order is theirs to cancel; skipping (not re-drawing) keeps the random
        # stream, and so every run without user orders, exactly as it was.
        return None if order.order_id in self.user_orders else order

    def _random_cancel(self, is_bid: bool, now_ns: int) -> None:
        order = self._pick_order(is_bid)
        if order is not None:
            self._record(order, "cancel", 0, now_ns)
            self._remove(order, now_ns)

    def _random_amend(self, is_bid: bool, now_ns: int) -> None:
        order = self._pick_order(is_bid)
        if order is None:
            return
        rng = self.rng
        draw = rng.random()
        if draw < 0.6 and order.qty > 1:
            self.amend(order.order_id, now_ns, qty=rng.randint(1, order.qty - 1))
        elif draw < 0.8:
            self.amend(order.order_id, now_ns, qty=order.qty + rng.randint(1, self.spec.lot_qty))
        else:
            move = rng.choice((-1, 1)) * (1 + self._geometric(2.0))
            price = order.price + move
            opposite = self.side(not is_bid).best()
            if opposite is not None:
                price = min(price, opposite.price - 1) if is_bid else max(price, opposite.price + 1)
            if price > 0:
                self.amend(order.order_id, now_ns, price=price)

    def _random_take(self, now_ns: int) -> None:
        rng = self.rng
        # Lean against drift from the starting mid so long runs stay near it.
        bid, ask = self.best_bid(), self.best_ask()
        lean = 0.0
        if bid is not None and ask is not None:
            mid = (bid + ask) // 2
            lean = max(-0.3, min(0.3, 5.0 * (self.spec.mid_price - mid) / self.spec.mid_price))
        is_buy = rng.random() < 0.5 + lean
        opposite = self.side(not is_buy)
        if len(opposite) < 2:
            self._random_add(is_buy, now_ns)
            return
        # Trade through k levels, never through the whole side.
        count = min(1 + self._geometric(0.6), 6, len(opposite) - 1)
        levels = opposite.top(count)
        qty = sum(level.qty for level in levels[:-1]) + rng.randint(1, levels[-1].qty)
        side: Side = "buy" if is_buy else "sell"
        if rng.random() < 0.6:
            self.market(side, qty, now_ns)
        else:
            extra = rng.randint(self.spec.qty_min, self.spec.lot_qty) if rng.random() < 0.5 else 0
            self.add_limit(side, levels[-1].price, qty + extra, now_ns)

    # -- book mechanics ---------------------------------------------------------------------

    def _take(
        self,
        side: Side,
        qty: int,
        limit: int | None,
        ord_type: Literal["market", "limit"],
        now_ns: int,
    ) -> tuple[list[Trade], int]:
        """Match ``qty`` against the other side up to ``limit``; return trades and the rest."""
        is_buy = side == "buy"
        opposite = self.side(not is_buy)
        trades: list[Trade] = []
        remaining = qty
        while remaining and opposite.levels:
            level: Level = opposite.levels.peekitem(0)[1]
            if limit is not None and (level.price > limit if is_buy else level.price < limit):
                break
            for maker in list(level.orders.values()):
                fill = min(remaining, maker.qty)
                self._trade_id += 1
                trades.append(
                    Trade(self._trade_id, side, level.price, fill, ord_type, maker.order_id, now_ns)
                )
                remaining -= fill
                if self.history is not None:
                    self.history.append(
                        OrderChange(
                            maker.order_id,
                            maker.side,
                            maker.price,
                            "fill" if fill == maker.qty else "partial_fill",
                            maker.qty,
                            maker.qty - fill,
                            now_ns,
                            self._trade_id,
                        )
                    )
                if fill == maker.qty:
                    self._remove(maker, now_ns)
                else:
                    maker.qty -= fill
                    level.qty -= fill
                    self._touch(not is_buy, level, now_ns)
                if not remaining:
                    break
        self._changes.trades.extend(trades)
        return trades, remaining

    def _record(
        self, order: Order, reason: ChangeReason, qty_after: int, now_ns: int, new_price: int = 0
    ) -> None:
        if self.history is not None:
            self.history.append(
                OrderChange(
                    order.order_id,
                    order.side,
                    order.price,
                    reason,
                    order.qty,
                    qty_after,
                    now_ns,
                    new_price=new_price,
                )
            )

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _new_order_id(self) -> str:
        choices = self.rng.choices
        while True:
            chars = "".join(choices(ORDER_ID_ALPHABET, k=16))
            order_id = f"O{chars[:5]}-{chars[5:10]}-{chars[10:]}"
            if order_id not in self._orders:
                return order_id

    def _level_of(self, order: Order) -> Level:
        level = self.side(order.side == "buy").level(order.price)
        assert level is not None, order
        return level

    def _touch(self, is_bid: bool, level: Level, now_ns: int) -> None:
        level.updated_ns = now_ns
        (self._changes.bid_prices if is_bid else self._changes.ask_prices).add(level.price)

    def _insert(self, order: Order, now_ns: int) -> None:
        is_bid = order.side == "buy"
        side = self.side(is_bid)
        key = side.key(order.price)
        level: Level | None = side.levels.get(key)
        if level is None:
            level = Level(order.price, now_ns)
            side.levels[key] = level
        level.orders[order.order_id] = order
        level.qty += order.qty
        self._orders[order.order_id] = order
        ids = self._pick_ids[is_bid]
        self._pick_pos[order.order_id] = len(ids)
        ids.append(order.order_id)
        self._touch(is_bid, level, now_ns)

    def _remove(self, order: Order, now_ns: int) -> None:
        is_bid = order.side == "buy"
        side = self.side(is_bid)
        level = self._level_of(order)
        del level.orders[order.order_id]
        level.qty -= order.qty
        if not level.orders:
            del side.levels[side.key(order.price)]
        del self._orders[order.order_id]
        self.user_orders.discard(order.order_id)
        ids = self._pick_ids[is_bid]
        position = self._pick_pos.pop(order.order_id)
        last = ids.pop()
        if last != order.order_id:
            ids[position] = last
            self._pick_pos[last] = position
        self._touch(is_bid, level, now_ns)

    def _seed_book(self, now_ns: int) -> None:
        """Fill both sides outward from the mid: ~80% of ticks hold 1-3+ orders."""
        rng = self.rng
        mid = self.spec.mid_price
        for is_bid in (True, False):
            side: Side = "buy" if is_bid else "sell"
            price = mid - rng.randint(0, 2) if is_bid else mid + 1 + rng.randint(0, 2)
            direction = -1 if is_bid else 1
            while len(self.side(is_bid)) < self.target_levels + 100 and price > 0:
                if rng.random() < 0.8:
                    for _ in range(1 + self._geometric(1.2)):
                        order = Order(
                            self._new_order_id(),
                            side,
                            price,
                            self._random_qty(),
                            self._next_seq(),
                            now_ns,
                        )
                        self._insert(order, now_ns)
                price += direction

    def _check(self) -> None:
        """Assert every invariant: sorted sides, totals, queue order, registry, not crossed."""
        seen: set[str] = set()
        for is_bid in (True, False):
            side = self.side(is_bid)
            ids = self._pick_ids[is_bid]
            count = 0
            for key, level in side.levels.items():
                assert key == side.key(level.price) and level.price > 0, (key, level.price)
                assert level.orders, f"empty level {level.price}"
                assert level.qty == sum(o.qty for o in level.orders.values())
                last_seq = 0
                for order_id, order in level.orders.items():
                    assert order.order_id == order_id and is_order_id(order_id), order_id
                    assert order.price == level.price and order.qty > 0
                    assert (order.side == "buy") == is_bid
                    assert order.seq > last_seq, "queue out of priority order"
                    last_seq = order.seq
                    assert self._orders[order_id] is order
                    assert ids[self._pick_pos[order_id]] == order_id
                    seen.add(order_id)
                    count += 1
            assert count == len(ids)
        assert seen == set(self._orders)
        bid, ask = self.best_bid(), self.best_ask()
        assert bid is None or ask is None or bid < ask, f"crossed book {bid} >= {ask}"
