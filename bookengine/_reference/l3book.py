"""Reference L3 book: every resting order, in queue order, per price level. Obvious over fast.

Same public API as the compiled ``bookengine._core.l3book.L3BookCore``; differential tests hold
the two together. Layout: per side a ``SortedDict`` of price key -> level, a level being an
insertion-ordered ``dict`` of order id -> order (dict order *is* queue order), plus one
``dict`` order id -> order for the whole book. Orders are immutable records, so undoing a
message only needs the level dicts and index entries it touched (see :class:`_Journal`).

Entry parsing and error messages come from :mod:`bookengine.core_types`, shared with the
compiled core: both implementations fail on the same entry with the same words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from sortedcontainers import SortedDict

from ..checksum import CHECKSUM_LEVELS, level3_checksum
from ..core_types import (
    EVENT_ADD,
    EVENT_DELETE,
    EVENT_NAMES,
    KIND_LEVEL3,
    NO_EFFECTS,
    SIDE_ASK,
    SIDE_BID,
    SIDE_WORDS,
    OrderEffect,
    OrderEntry,
    OrderInfo,
    QueuePosition,
    check_checksum_argument,
    check_depth,
    crossed_error,
    duplicate_error,
    overflow_error,
    parse_fields,
    parse_mappings,
    unknown_error,
    where,
    wrong_side_error,
    zero_add_error,
)
from ..errors import (
    ChecksumError,
    ProtocolError,
)
from ..numbers import INT64_MAX, check_scale, mantissa_text
from .scan import FrameScanner


class _Order(NamedTuple):
    # Immutable on purpose: a modify stores a new record, so a rollback that restores the old
    # dict contents restores the old order exactly.
    order_id: str
    side: int
    price: int
    qty: int
    timestamp_ns: int


class _Journal:
    """Copy-on-write record of what one update message touched, for an exact rollback.

    Before a level or an index entry is first changed, its old contents are saved (a shallow
    copy of the level dict; the order records are immutable). Rolling back restores those, so
    queue order comes back exactly. Cost: O(size of the touched levels) per message.
    """

    __slots__ = ("book", "ids", "levels")

    def __init__(self, book: L3BookCore) -> None:
        self.book = book
        self.levels: dict[tuple[int, int], dict[str, _Order] | None] = {}
        self.ids: dict[str, _Order | None] = {}

    def touch_level(self, side: int, key: int) -> None:
        if (side, key) not in self.levels:
            level = self.book._ladders[side].get(key)
            self.levels[side, key] = None if level is None else dict(level)

    def touch_id(self, order_id: str) -> None:
        if order_id not in self.ids:
            self.ids[order_id] = self.book._index.get(order_id)

    def rollback(self) -> None:
        for (side, key), level in self.levels.items():
            ladder = self.book._ladders[side]
            if level is None:
                ladder.pop(key, None)
            else:
                ladder[key] = level
        for order_id, order in self.ids.items():
            if order is None:
                self.book._index.pop(order_id, None)
            else:
                self.book._index[order_id] = order


class L3BookCore:
    """One symbol's order-by-order book (Kraken ``level3``), kept exactly at the subscribed depth.

    Args:
        symbol: the Kraken v2 symbol (``"BTC/USD"``).
        depth: price levels per side kept after every message (Kraken's subscribed depth:
            10, 100 or 1000; any positive int is accepted).
        price_precision, qty_precision: scales of the mantissas (the instrument's precisions).

    Raises:
        BookError: for a depth that is not a positive int.
        PrecisionError: for a precision outside 0..18.
    """

    def __init__(self, symbol: str, depth: int, price_precision: int, qty_precision: int) -> None:
        self.symbol = symbol
        self.depth = check_depth(depth)
        self._price_precision = check_scale(price_precision, "price_precision")
        self._qty_precision = check_scale(qty_precision, "qty_precision")
        # Per side, key -> {order_id: order}; bids keyed by -price so both iterate best first.
        self._ladders: tuple[SortedDict, SortedDict] = (SortedDict(), SortedDict())
        self._index: dict[str, _Order] = {}
        self._needs_resync = False
        self.record_effects = False
        """Record what each update does to the queues (see :meth:`effects`); off by default."""
        self.sink_effects = False
        """The compiled book's trim for a compiled sink; this build takes no sink (the session
        refuses one), so its effects stay whole either way."""
        self._effects: tuple[OrderEffect, ...] = NO_EFFECTS

    # -- precision and state -----------------------------------------------------------------

    @property
    def price_precision(self) -> int:
        return self._price_precision

    @property
    def qty_precision(self) -> int:
        return self._qty_precision

    @property
    def needs_resync(self) -> bool:
        """True once a message failed (bad entry, unknown order, crossing, checksum mismatch).

        The book itself stays consistent (a refused message changed nothing), but it can no
        longer be trusted to match Kraken's: resubscribe. A successful snapshot clears it.
        """
        return self._needs_resync

    # -- applying messages -------------------------------------------------------------------

    def apply_scanned(self, scanner: FrameScanner) -> bool:
        """Apply the ``level3`` message held by ``scanner`` (a scanned v2 ``level3`` frame).

        Kraken rules: a snapshot replaces the book (each side's entries join their levels in
        array order). In an update, entries apply in array order, bids then asks: ``add`` joins
        the back of its level (creating it), ``modify`` at the same price changes the quantity
        in place (queue position kept), at another price moves the order to the back of the
        new level, to quantity 0 removes it; ``delete`` removes it; an emptied level
        disappears. Then each side is truncated to ``depth`` price levels (orders beyond drop
        out silently: Kraken re-adds them as ``add`` events if they come back), then the L3
        checksum (every order of the top 10 levels per side) is verified when present.

        Atomicity: numbers, timestamps and events are validated before anything changes;
        order-level errors are found while applying to a journal that is rolled back.

        Returns:
            True when a checksum was verified, False when the message carried none.

        Raises:
            ProtocolError: not a level3 frame for this symbol (book and flag untouched), or a
                malformed entry.
            PrecisionError: a number that does not fit the scale, or a level quantity that
                would overflow int64.
            OrderError: modify/delete of an unknown order, duplicate add, add of quantity 0,
                an event on the other side than the order's.
            CrossedBookError: the message would leave best bid >= best ask.
            ChecksumError: the message was applied but the checksum differs.

            On every error but the routing one the book is as before the message (except for
            ChecksumError, where the message is applied) and ``needs_resync`` is True.
        """
        if scanner.kind != KIND_LEVEL3:
            raise ProtocolError(f"{self.symbol}: not a level3 frame")
        if scanner.symbol != self.symbol:
            raise ProtocolError(f"{self.symbol}: frame is for {scanner.symbol}")
        try:
            events = [
                parse_fields(
                    self.symbol,
                    side,
                    index,
                    e.order_id,
                    e.price,
                    e.qty,
                    e.timestamp,
                    e.event,
                    scanner.is_snapshot,
                    self._price_precision,
                    self._qty_precision,
                )
                for side, entries in ((SIDE_BID, scanner.bids), (SIDE_ASK, scanner.asks))
                for index, e in enumerate(entries)
            ]
        except BaseException:
            self._needs_resync = True
            self._effects = NO_EFFECTS
            raise
        stamp = _message_ts_ns(scanner) if self.record_effects else -1
        return self._apply(scanner.is_snapshot, events, scanner.checksum, stamp)

    def apply_snapshot(
        self,
        bids: Sequence[Mapping[str, Any]],
        asks: Sequence[Mapping[str, Any]],
        checksum: int | None = None,
    ) -> bool:
        """Replace the book with a snapshot. See :meth:`apply_scanned`.

        Args:
            bids, asks: orders, levels best first and queue order within a level, as mappings
                with ``order_id`` (str), ``limit_price`` and ``order_qty`` (number text, int or
                Decimal; floats are refused) and an optional ``timestamp`` (RFC 3339 text).
            checksum: Kraken's CRC32 to verify, or None.
        """
        return self._apply_mappings(True, bids, asks, checksum)

    def apply_update(
        self,
        bids: Sequence[Mapping[str, Any]],
        asks: Sequence[Mapping[str, Any]],
        checksum: int | None = None,
    ) -> bool:
        """Apply one update message: as :meth:`apply_snapshot`, each mapping also with ``event``
        (``"add"``, ``"modify"`` or ``"delete"``). See :meth:`apply_scanned`."""
        return self._apply_mappings(False, bids, asks, checksum)

    def _apply_mappings(
        self,
        is_snapshot: bool,
        bids: Sequence[Mapping[str, Any]],
        asks: Sequence[Mapping[str, Any]],
        checksum: int | None,
    ) -> bool:
        try:
            events = parse_mappings(
                self.symbol, bids, asks, is_snapshot, self._price_precision, self._qty_precision
            )
            if checksum is not None:
                checksum = check_checksum_argument(self.symbol, checksum)
        except BaseException:
            self._needs_resync = True
            self._effects = NO_EFFECTS
            raise
        return self._apply(is_snapshot, events, -1 if checksum is None else checksum, -1)

    def _apply(
        self, is_snapshot: bool, events: list[OrderEntry], checksum: int, message_ts_ns: int
    ) -> bool:
        self._effects = NO_EFFECTS
        recorder = (
            _Recorder(self, message_ts_ns) if self.record_effects and not is_snapshot else None
        )
        try:
            if is_snapshot:
                self._replace(events)
            else:
                journal = _Journal(self)
                try:
                    for event in events:
                        self._apply_event(event, journal, recorder)
                    self._check_not_crossed(events)
                except BaseException:
                    journal.rollback()
                    raise
        except BaseException:
            self._needs_resync = True
            raise
        if is_snapshot:
            self._needs_resync = False
        if recorder is not None:
            recorder.truncations()
            self._effects = tuple(recorder.effects)
        for ladder in self._ladders:
            while len(ladder) > self.depth:
                _, level = ladder.popitem(-1)
                for order_id in level:
                    del self._index[order_id]
        if checksum < 0:
            return False
        computed = self.checksum()
        if computed != checksum:
            self._needs_resync = True
            raise ChecksumError(self.symbol, checksum, computed)
        return True

    def _replace(self, events: list[OrderEntry]) -> None:
        # Build the new book aside and swap it in: a refused snapshot leaves the old one.
        old = self._ladders, self._index
        self._ladders, self._index = (SortedDict(), SortedDict()), {}
        try:
            for event in events:
                self._apply_event(event, None, None)
            self._check_not_crossed(events)
        except BaseException:
            self._ladders, self._index = old
            raise

    def _apply_event(
        self, e: OrderEntry, journal: _Journal | None, recorder: _Recorder | None
    ) -> None:
        at = where(self.symbol, e.side, e.entry, e.order_id)
        old = self._index.get(e.order_id)
        if e.event == EVENT_ADD:
            if e.qty == 0:
                raise zero_add_error(at)
            if old is not None:
                raise duplicate_error(at, old.side)
            self._check_room(e.side, e.price, e.qty, at)
            timestamp_ns = -1 if e.timestamp_ns is None else e.timestamp_ns
            if recorder is not None:
                recorder.add(e)
            self._store(_Order(e.order_id, e.side, e.price, e.qty, timestamp_ns), journal)
            return
        name = EVENT_NAMES[e.event]
        if old is None:
            raise unknown_error(at, name)
        if old.side != e.side:
            raise wrong_side_error(at, name, old.side)
        if e.event == EVENT_DELETE or e.qty == 0:
            if recorder is not None:
                recorder.change(e, old, "delete")
            self._remove(old, journal)
            return
        timestamp_ns = old.timestamp_ns if e.timestamp_ns is None else e.timestamp_ns
        new = _Order(e.order_id, e.side, e.price, e.qty, timestamp_ns)
        if e.price == old.price:
            self._check_room(e.side, e.price, e.qty - old.qty, at)
            if recorder is not None:
                recorder.change(e, old, "modify")
            self._store(new, journal)  # same dict key: keeps its place in the queue
        else:
            self._check_room(e.side, e.price, e.qty, at)
            if recorder is not None:
                recorder.change(e, old, "requeue")
            self._remove(old, journal)
            self._store(new, journal)  # a new key: the back of the new level

    def _check_room(self, side: int, price: int, added: int, at: str) -> None:
        level = self._ladders[side].get(_key(side, price))
        total = sum(o.qty for o in level.values()) if level else 0
        if total + added > INT64_MAX:
            raise overflow_error(at, mantissa_text(price, self._price_precision))

    def _store(self, order: _Order, journal: _Journal | None) -> None:
        key = _key(order.side, order.price)
        ladder = self._ladders[order.side]
        if journal is not None:
            journal.touch_level(order.side, key)
            journal.touch_id(order.order_id)
        level = ladder.get(key)
        if level is None:
            level = ladder[key] = {}
        level[order.order_id] = order
        self._index[order.order_id] = order

    def _remove(self, order: _Order, journal: _Journal | None) -> None:
        key = _key(order.side, order.price)
        ladder = self._ladders[order.side]
        if journal is not None:
            journal.touch_level(order.side, key)
            journal.touch_id(order.order_id)
        level = ladder[key]
        del level[order.order_id]
        if not level:
            del ladder[key]
        del self._index[order.order_id]

    def _check_not_crossed(self, events: list[OrderEntry]) -> None:
        bids, asks = self._ladders
        if not bids or not asks:
            return
        bid, ask = -bids.peekitem(0)[0], asks.peekitem(0)[0]
        if bid < ask:
            return
        raise crossed_error(
            self.symbol,
            events,
            bid,
            ask,
            mantissa_text(bid, self._price_precision),
            mantissa_text(ask, self._price_precision),
        )

    def effects(self) -> tuple[OrderEffect, ...]:
        """What the last applied update did, one :class:`~bookengine.kraken.events.OrderEffect`
        per entry (then one per order truncated away), when :attr:`record_effects` is on.

        Empty after a snapshot, a refused message, or with recording off. Valid until the next
        message is applied.
        """
        return self._effects

    def clear(self) -> None:
        """Empty both sides (precisions and ``needs_resync`` are kept)."""
        self._ladders = (SortedDict(), SortedDict())
        self._index = {}
        self._effects = NO_EFFECTS

    # -- checksum ----------------------------------------------------------------------------

    def checksum(self) -> int:
        """Kraken L3 CRC32: every order of the top 10 ask levels (ascending), then bids."""
        return level3_checksum(self._side_orders(SIDE_ASK), self._side_orders(SIDE_BID))

    def _side_orders(self, side: int) -> list[tuple[int, list[int]]]:
        sign = -1 if side == SIDE_BID else 1
        return [
            (sign * key, [o.qty for o in level.values()])
            for key, level in self._ladders[side].items()[:CHECKSUM_LEVELS]
        ]

    # -- order queries -----------------------------------------------------------------------

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._index

    def order(self, order_id: str) -> OrderInfo | None:
        """Where ``order_id`` rests, or None when it is not in the book.

        Cost: O(log levels + orders in its level) (the position is found in the queue).
        """
        order = self._index.get(order_id)
        if order is None:
            return None
        ladder = self._ladders[order.side]
        key = _key(order.side, order.price)
        position = list(ladder[key]).index(order_id)
        return OrderInfo(
            order_id,
            SIDE_WORDS[order.side],
            order.price,
            order.qty,
            order.timestamp_ns,
            ladder.index(key),
            position,
        )

    def queue_position(self, order_id: str) -> QueuePosition | None:
        """The queue ahead of and behind ``order_id`` at its level, or None when unknown.

        Cost: O(orders in the level).
        """
        order = self._index.get(order_id)
        if order is None:
            return None
        level = self._ladders[order.side][_key(order.side, order.price)]
        orders_ahead = qty_ahead = 0
        for other in level.values():
            if other.order_id == order_id:
                break
            orders_ahead += 1
            qty_ahead += other.qty
        level_qty = sum(o.qty for o in level.values())
        return QueuePosition(
            orders_ahead, qty_ahead, level_qty - qty_ahead - order.qty, len(level), level_qty
        )

    def level_orders(self, side: str, price: int) -> list[tuple[str, int, int]]:
        """The orders at ``price`` on ``side`` ("bid"/"ask") in queue order, front first.

        Returns:
            ``(order_id, qty, timestamp_ns)`` per order; empty when there is no such level.
        """
        side_code = _side_code(side)
        level = self._ladders[side_code].get(_key(side_code, price), {})
        return [(o.order_id, o.qty, o.timestamp_ns) for o in level.values()]

    def orders_arrays(self, order_ids: bool = False) -> dict[str, npt.NDArray[Any]]:
        """Every resting order as columns, for notebooks and vectorised analytics.

        Rows run over the bid levels best first, each level front of the queue first, then the
        ask levels likewise. Arrays are new (owned by the caller), all of shape ``(n,)`` with
        ``n = order_count``.

        Args:
            order_ids: also return ``"order_id"``, an object array of str (exact: numpy's
                fixed-width str dtype would drop trailing NULs; costs a Python str per order).

        Returns:
            ``side`` int8 (0 bid, 1 ask), ``price`` int64, ``qty`` int64 (mantissas),
            ``position`` int32 (0 = front of its queue), ``level`` int32 (0 = best level of its
            side), ``timestamp_ns`` int64 (-1 when unknown); optionally ``order_id``.
        """
        rows = [
            (o.side, o.price, o.qty, position, level_index, o.timestamp_ns, o.order_id)
            for side in (SIDE_BID, SIDE_ASK)
            for level_index, level in enumerate(self._ladders[side].values())
            for position, o in enumerate(level.values())
        ]
        columns = list(zip(*rows, strict=True)) if rows else [()] * 7
        result: dict[str, npt.NDArray[Any]] = {
            name: np.array(column, dtype=dtype)
            for name, column, dtype in zip(
                ("side", "price", "qty", "position", "level", "timestamp_ns"),
                columns,
                (np.int8, np.int64, np.int64, np.int32, np.int32, np.int64),
                strict=False,
            )
        }
        if order_ids:
            result["order_id"] = np.array(columns[6], dtype=object)
        return result

    @property
    def order_count(self) -> int:
        """Resting orders in the book (both sides)."""
        return len(self._index)

    def __len__(self) -> int:
        return len(self._index)

    # -- aggregated (L2) view ----------------------------------------------------------------

    def bids(self, n: int | None = None) -> list[tuple[int, int]]:
        """Up to ``n`` bid levels, best (highest) first, as (price, total qty) mantissas."""
        return self._levels(SIDE_BID, n)

    def asks(self, n: int | None = None) -> list[tuple[int, int]]:
        """Up to ``n`` ask levels, best (lowest) first, as (price, total qty) mantissas."""
        return self._levels(SIDE_ASK, n)

    def _levels(self, side: int, n: int | None) -> list[tuple[int, int]]:
        ladder = self._ladders[side]
        if n is not None and n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        sign = -1 if side == SIDE_BID else 1
        return [
            (sign * key, sum(o.qty for o in level.values()))
            for key, level in ladder.items()[: len(ladder) if n is None else n]
        ]

    def bids_array(self, n: int | None = None) -> npt.NDArray[np.int64]:
        """Top ``n`` bids as a new int64 array of shape (k, 2): columns price, qty mantissas."""
        return np.array(self.bids(n), dtype=np.int64).reshape(-1, 2)

    def asks_array(self, n: int | None = None) -> npt.NDArray[np.int64]:
        """Top ``n`` asks as a new int64 array of shape (k, 2): columns price, qty mantissas."""
        return np.array(self.asks(n), dtype=np.int64).reshape(-1, 2)

    def best_bid(self) -> tuple[int, int] | None:
        """The best bid as (price, total qty) mantissas, or None when the side is empty."""
        levels = self._levels(SIDE_BID, 1)
        return levels[0] if levels else None

    def best_ask(self) -> tuple[int, int] | None:
        """The best ask as (price, total qty) mantissas, or None when the side is empty."""
        levels = self._levels(SIDE_ASK, 1)
        return levels[0] if levels else None

    def qty_at(self, side: str, price: int) -> int:
        """Total quantity mantissa at ``price`` on ``side`` ("bid"/"ask"), 0 if no level."""
        side_code = _side_code(side)
        level = self._ladders[side_code].get(_key(side_code, price), {})
        return sum(o.qty for o in level.values())

    @property
    def bid_levels(self) -> int:
        return len(self._ladders[SIDE_BID])

    @property
    def ask_levels(self) -> int:
        return len(self._ladders[SIDE_ASK])

    def _check(self) -> None:
        """Assert the invariants: index <-> queues, sorted, positive, sums, depth, not crossed."""
        seen = 0
        for side, ladder in enumerate(self._ladders):
            assert len(ladder) <= self.depth
            for key, level in ladder.items():
                assert level, "empty level"
                price = _key(side, key)
                assert price >= 0
                assert sum(o.qty for o in level.values()) <= INT64_MAX
                for order_id, order in level.items():
                    assert order.order_id == order_id
                    assert self._index[order_id] is order
                    assert order.side == side and order.price == price
                    assert 0 < order.qty <= INT64_MAX
                    seen += 1
        assert seen == len(self._index)
        bids, asks = self._ladders
        if bids and asks:
            assert -bids.peekitem(0)[0] < asks.peekitem(0)[0], "crossed"


class _Recorder:
    """The effects of one update message while it is applied (see ``OrderEffect``)."""

    __slots__ = ("book", "deleted", "effects", "message_ts_ns")

    def __init__(self, book: L3BookCore, message_ts_ns: int) -> None:
        self.book = book
        self.message_ts_ns = message_ts_ns
        self.effects: list[OrderEffect] = []
        self.deleted: dict[str, int] = {}
        """order id -> index of its ``delete`` effect in this message (a re-add requeues it)."""

    def add(self, e: OrderEntry) -> None:
        """Before an add is stored: the whole level it joins is ahead of it."""
        ladder = self.book._ladders[e.side]
        key = _key(e.side, e.price)
        level = ladder.get(key)
        ahead = len(level) if level else 0
        qty_ahead = sum(o.qty for o in level.values()) if level else 0
        self.effects.append(
            OrderEffect(
                "add",
                "add",
                SIDE_WORDS[e.side],
                e.order_id,
                e.price,
                e.price,
                0,
                e.qty,
                ahead,
                qty_ahead,
                ladder.bisect_left(key),
                -1 if e.timestamp_ns is None else e.timestamp_ns,
                self.message_ts_ns,
            )
        )
        index = self.deleted.pop(e.order_id, None)
        if index is not None:  # deleted and added again in one message: it lost its place
            self.effects[index] = self.effects[index]._replace(
                action="requeue", new_price=e.price, qty_after=e.qty
            )

    def change(self, e: OrderEntry, old: _Order, action: str) -> None:
        """Before a modify/delete changes resting order ``old``."""
        ladder = self.book._ladders[old.side]
        key = _key(old.side, old.price)
        ahead = qty_ahead = 0
        for other in ladder[key].values():
            if other.order_id == old.order_id:
                break
            ahead += 1
            qty_ahead += other.qty
        gone = action == "delete"
        if gone and e.event == EVENT_DELETE:
            self.deleted[e.order_id] = len(self.effects)
        self.effects.append(
            OrderEffect(
                action,
                EVENT_NAMES[e.event],
                SIDE_WORDS[old.side],
                old.order_id,
                old.price,
                -1 if gone else e.price,
                old.qty,
                0 if gone else e.qty,
                ahead,
                qty_ahead,
                ladder.index(key),
                -1 if e.timestamp_ns is None else e.timestamp_ns,
                self.message_ts_ns,
            )
        )

    def truncations(self) -> None:
        """The orders of the levels beyond the depth, best level first, queue order."""
        depth = self.book.depth
        for side, ladder in enumerate(self.book._ladders):
            if len(ladder) <= depth:
                continue
            for level_index, level in enumerate(ladder.values()[depth:], depth):
                qty_ahead = 0
                for ahead, o in enumerate(level.values()):
                    self.effects.append(
                        OrderEffect(
                            "truncate",
                            "",
                            SIDE_WORDS[side],
                            o.order_id,
                            o.price,
                            -1,
                            o.qty,
                            0,
                            ahead,
                            qty_ahead,
                            level_index,
                            -1,
                            self.message_ts_ns,
                        )
                    )
                    qty_ahead += o.qty


def _message_ts_ns(scanner: FrameScanner) -> int:
    """The message's own timestamp for effects; -1 when absent or unreadable (the book does not
    judge the message by it)."""
    try:
        return int(scanner.timestamp_ns)
    except ProtocolError:
        return -1


def _key(side: int, price: int) -> int:
    # Sorted keys ascending = best first on both sides. Self-inverse: price = _key(side, key).
    return -price if side == SIDE_BID else price


def _side_code(side: str) -> int:
    if side == "bid":
        return SIDE_BID
    if side == "ask":
        return SIDE_ASK
    raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")
