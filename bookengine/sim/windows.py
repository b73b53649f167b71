"""What each subscriber was last told, and the smallest message that brings it up to date.

A subscriber's book follows Kraken's client rule: apply every entry of a message in order, then
truncate each side to the subscribed depth (price levels). A window object keeps a *mirror* of
that client book, updated by the very same rule from the entries it publishes. After every
engine step the publisher asks the window for the entries that turn the mirror into the
engine's current top ``depth`` levels (:meth:`L2Window.update`, :meth:`L3Window.update`); the
mirror's ``_check`` proves the result equals the engine's window.

Only levels touched since the last publish (``Changes``) and the levels between the old and the
new window edge can differ, so an update costs O((touched + entering) log n), not O(depth).

L2 entries (``book``), per side: deletions first, then the other entries best first (Kraken's
order: in the real captures every side that carries both a deletion and another entry lists the
deletion first, so a client that truncates after every entry never drops a level it still needs;
see ``docs/simulator-fidelity.md``):

* a level removed from the book that was inside the old window: ``qty 0``;
* a level of the new window that is new or whose quantity changed: its quantity;
* a level entering the window from beyond without having changed: its quantity, flagged as a
  republish (v1 ``"r"``); this is Kraken's backfill;
* a level pushed out by better levels: nothing (the client's truncation drops it).

L3 events (``level3``), per side: deletes first (an amended order is deleted before it is
added again under the same id), then modifies, then adds in queue order:

* ``delete`` for every mirrored order that left the book, moved or lost its queue place, even
  when its level is being pushed out (the client truncates only after the whole message, so an
  order deleted there and added elsewhere would otherwise be held twice mid-message);
* ``modify`` for a mirrored order whose quantity changed in place, inside the new window;
* ``add`` for new orders in window levels, and for every order of a level entering the window;
* nothing else for levels pushed out of the window.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

from sortedcontainers import SortedDict

from .engine import BookSide, Changes, Level, MatchingEngine


@dataclass(frozen=True, slots=True)
class LevelUpdate:
    """One L2 entry to publish: ``qty`` 0 removes the level."""

    price: int
    qty: int
    updated_ns: int
    """When the level last changed (v1 prints it; a republish keeps its old time)."""
    republish: bool = False
    """The level entered the window from beyond without changing (v1 ``"r"``)."""


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One L3 entry to publish."""

    event: Literal["add", "modify", "delete"]
    order_id: str
    price: int
    qty: int
    timestamp_ns: int


def _window_end(side: BookSide, depth: int) -> int | None:
    return side.window_end_key(depth)


def _candidate_keys(
    side: BookSide, mirror: SortedDict, touched: set[int], depth: int
) -> tuple[list[int], int | None]:
    """Keys that may differ between the mirror and the new window, best first.

    They are the touched levels plus the levels between the old window edge (exclusive) and the
    new one (inclusive): those entered the window without being touched.
    """
    keys = {side.key(price) for price in touched}
    new_end = _window_end(side, depth)
    if new_end is not None:
        old_end: int | None = mirror.peekitem(-1)[0] if mirror else None
        if old_end is None or old_end < new_end:
            keys.update(side.keys_after(old_end, new_end))
    return sorted(keys), new_end


class L2Window:
    """The aggregated levels one ``book`` subscriber holds, and the diff to the engine's window.

    Args:
        depth: the subscribed depth (levels per side kept by the client).
    """

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._mirror: dict[bool, SortedDict] = {True: SortedDict(), False: SortedDict()}

    def snapshot(self, engine: MatchingEngine) -> tuple[list[LevelUpdate], list[LevelUpdate]]:
        """The snapshot levels (bids, asks), best first; the mirror becomes them."""
        result: list[list[LevelUpdate]] = []
        for is_bid in (True, False):
            side = engine.side(is_bid)
            mirror = self._mirror[is_bid]
            mirror.clear()
            levels = side.top(self.depth)
            for level in levels:
                mirror[side.key(level.price)] = level.qty
            result.append([LevelUpdate(lv.price, lv.qty, lv.updated_ns) for lv in levels])
        return result[0], result[1]

    def update(
        self, engine: MatchingEngine, changes: Changes, now_ns: int
    ) -> tuple[list[LevelUpdate], list[LevelUpdate]]:
        """The entries (bids, asks) that bring the client to the engine's window; applies them."""
        bids = self.side_update(engine.bids, changes.bid_prices, now_ns)
        asks = self.side_update(engine.asks, changes.ask_prices, now_ns)
        return bids, asks

    def side_update(self, side: BookSide, touched: set[int], now_ns: int) -> list[LevelUpdate]:
        """The entries of one side, deletions first; applies them to the mirror.

        With every deletion first, a client that truncates to the depth after each entry holds
        the same book as one that truncates after the whole message: once the deletions are
        applied, whenever the client holds more than ``depth`` levels, its worst level is one
        that better levels pushed out of the new window.
        """
        mirror = self._mirror[side.is_bid]
        keys, new_end = _candidate_keys(side, mirror, touched, self.depth)
        deletions: list[LevelUpdate] = []
        entries: list[LevelUpdate] = []
        for key in keys:
            level: Level | None = side.levels.get(key)
            in_new = level is not None and new_end is not None and key <= new_end
            old_qty: int | None = mirror.get(key)
            if level is not None and in_new:
                if old_qty != level.qty:
                    republish = old_qty is None and level.price not in touched
                    entries.append(LevelUpdate(level.price, level.qty, level.updated_ns, republish))
            elif old_qty is not None and level is None:
                deletions.append(LevelUpdate(side.sign * key, 0, now_ns))
        deletions.extend(entries)
        self._apply(side, deletions)
        return deletions

    def _apply(self, side: BookSide, entries: list[LevelUpdate]) -> None:
        """Kraken's client rule on the mirror: each entry replaces its level, then truncate."""
        mirror = self._mirror[side.is_bid]
        for entry in entries:
            key = side.key(entry.price)
            if entry.qty:
                mirror[key] = entry.qty
            else:
                mirror.pop(key, None)
        while len(mirror) > self.depth:
            mirror.popitem(-1)

    def top(self, is_bid: bool, n: int) -> list[tuple[int, int]]:
        """The best ``n`` mirrored levels of one side, best first, as (price, qty) mantissas."""
        sign = -1 if is_bid else 1
        mirror = self._mirror[is_bid]
        return [(sign * key, mirror[key]) for key in itertools.islice(mirror.keys(), n)]

    def levels(self, is_bid: bool) -> list[tuple[int, int]]:
        """The mirrored levels of one side, best first, as (price, qty) mantissas."""
        sign = -1 if is_bid else 1
        return [(sign * key, qty) for key, qty in self._mirror[is_bid].items()]

    def _check(self, engine: MatchingEngine) -> None:
        """Assert the mirror equals the engine's top ``depth`` levels on both sides."""
        for is_bid in (True, False):
            assert self.levels(is_bid) == engine.levels(is_bid, self.depth), (
                f"{engine.symbol} depth {self.depth} {'bids' if is_bid else 'asks'} diverged"
            )


class L3Window:
    """The orders one ``level3`` subscriber holds, and the diff to the engine's window.

    Args:
        depth: the subscribed depth (price levels per side kept by the client).
    """

    def __init__(self, depth: int) -> None:
        self.depth = depth
        # key -> {order_id: (qty, seq)} in the client's queue order.
        self._mirror: dict[bool, SortedDict] = {True: SortedDict(), False: SortedDict()}

    def snapshot(self, engine: MatchingEngine) -> tuple[list[OrderEvent], list[OrderEvent]]:
        """Every order of the top ``depth`` levels (bids, asks), best level first, queue order."""
        result: list[list[OrderEvent]] = []
        for is_bid in (True, False):
            side = engine.side(is_bid)
            mirror = self._mirror[is_bid]
            mirror.clear()
            events: list[OrderEvent] = []
            for level in side.top(self.depth):
                mirror[side.key(level.price)] = {
                    o.order_id: (o.qty, o.seq) for o in level.orders.values()
                }
                events.extend(
                    OrderEvent("add", o.order_id, o.price, o.qty, o.timestamp_ns)
                    for o in level.orders.values()
                )
            result.append(events)
        return result[0], result[1]

    def update(
        self, engine: MatchingEngine, changes: Changes, now_ns: int
    ) -> tuple[list[OrderEvent], list[OrderEvent]]:
        """The events (bids, asks) that bring the client to the engine's window; applies them."""
        bids = self._side_update(engine.bids, changes.bid_prices, now_ns)
        asks = self._side_update(engine.asks, changes.ask_prices, now_ns)
        return bids, asks

    def _side_update(self, side: BookSide, touched: set[int], now_ns: int) -> list[OrderEvent]:
        mirror = self._mirror[side.is_bid]
        keys, new_end = _candidate_keys(side, mirror, touched, self.depth)
        deletes: list[OrderEvent] = []
        modifies: list[OrderEvent] = []
        adds: list[OrderEvent] = []
        for key in keys:
            level: Level | None = side.levels.get(key)
            in_new = level is not None and new_end is not None and key <= new_end
            seen: dict[str, tuple[int, int]] | None = mirror.get(key)
            price = side.sign * key
            if level is not None and in_new:
                orders = level.orders
                if seen is not None:
                    for order_id, (qty, seq) in seen.items():
                        current = orders.get(order_id)
                        if current is None or current.seq != seq:
                            deletes.append(OrderEvent("delete", order_id, price, qty, now_ns))
                for order in orders.values():
                    previous = None if seen is None else seen.get(order.order_id)
                    if previous is not None and previous[1] == order.seq:
                        if previous[0] != order.qty:
                            modifies.append(
                                OrderEvent(
                                    "modify", order.order_id, price, order.qty, order.timestamp_ns
                                )
                            )
                    else:
                        # New orders come after every kept one in the engine's queue (their
                        # seq is newer), so appending them reproduces its queue order.
                        adds.append(
                            OrderEvent("add", order.order_id, price, order.qty, order.timestamp_ns)
                        )
            elif seen is not None:
                # The level left the window (gone, or pushed out by better levels). Its orders
                # that left the book or moved must still be deleted: the client truncates only
                # after the whole message, so an order re-added elsewhere in this message would
                # otherwise exist twice while it is applied.
                orders = {} if level is None else level.orders
                for order_id, (qty, seq) in seen.items():
                    current = orders.get(order_id)
                    if current is None or current.seq != seq:
                        deletes.append(OrderEvent("delete", order_id, price, qty, now_ns))
        events = deletes + modifies + adds
        self._apply(side, events, self._seqs(side, adds))
        return events

    @staticmethod
    def _seqs(side: BookSide, adds: list[OrderEvent]) -> dict[str, int]:
        seqs: dict[str, int] = {}
        for event in adds:
            level = side.level(event.price)
            assert level is not None
            seqs[event.order_id] = level.orders[event.order_id].seq
        return seqs

    def _apply(self, side: BookSide, events: list[OrderEvent], seqs: dict[str, int]) -> None:
        """Kraken's client rule on the mirror: apply each event, then truncate to depth levels."""
        mirror = self._mirror[side.is_bid]
        for event in events:
            key = side.key(event.price)
            queue: dict[str, tuple[int, int]] | None = mirror.get(key)
            if event.event == "add":
                if queue is None:
                    queue = mirror[key] = {}
                queue[event.order_id] = (event.qty, seqs[event.order_id])
            elif queue is not None and event.order_id in queue:
                if event.event == "delete":
                    del queue[event.order_id]
                    if not queue:
                        del mirror[key]
                else:
                    queue[event.order_id] = (event.qty, queue[event.order_id][1])
        while len(mirror) > self.depth:
            mirror.popitem(-1)

    def levels(self, is_bid: bool) -> list[tuple[int, list[tuple[str, int]]]]:
        """The mirrored levels, best first: (price, [(order_id, qty) in queue order])."""
        sign = -1 if is_bid else 1
        return [
            (sign * key, [(order_id, qty) for order_id, (qty, _seq) in queue.items()])
            for key, queue in self._mirror[is_bid].items()
        ]

    def checksummed_order(self) -> tuple[bool, str, int, int] | None:
        """(is_bid, order_id, price, qty) of the last order of the deepest checksummed bid level.

        The 10th bid level (or the deepest there is; asks if there are no bids).
        """
        for is_bid in (True, False):
            mirror = self._mirror[is_bid]
            if mirror:
                key, queue = mirror.peekitem(min(len(mirror), 10) - 1)
                order_id, (qty, _seq) = next(reversed(queue.items()))
                return is_bid, order_id, (-1 if is_bid else 1) * key, qty
        return None

    def _check(self, engine: MatchingEngine) -> None:
        """Assert the mirror equals the orders of the engine's top ``depth`` levels."""
        for is_bid in (True, False):
            expected = [
                (level.price, [(o.order_id, o.qty) for o in level.orders.values()])
                for level in engine.side(is_bid).top(self.depth)
            ]
            assert self.levels(is_bid) == expected, (
                f"{engine.symbol} level3 depth {self.depth} {'bids' if is_bid else 'asks'} diverged"
            )
