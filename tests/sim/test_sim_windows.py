"""Publisher diffs against independent consumers, engine-level (no sockets, fast).

Every message a window produces is rendered with the wire functions, scanned by the reference
``FrameScanner`` and applied to the reference ``L2BookCore`` (v2 and v1) or to the independent
``L3Consumer``; those verify every checksum (they raise ``ChecksumError``). The windows' own
mirrors are checked against the engine as well.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookengine._reference.l2book import L2BookCore
from bookengine._reference.scan import FrameScanner
from bookengine.core_types import BOOK_DEPTHS, LEVEL3_DEPTHS
from bookengine.numbers import parse_mantissa
from bookengine.sim.engine import MatchingEngine, derive_seed
from bookengine.sim.specs import DEFAULT_SPECS, SymbolSpec, spec_for
from bookengine.sim.windows import L2Window, L3Window, LevelUpdate
from bookengine.sim.wire import (
    plain_number,
    v1_book_snapshot,
    v1_book_update,
    v2_book,
    v2_level3,
)

from .helpers import L3Consumer, reference_l3

NOW = 1_700_000_000_000_000_000


class Harness:
    """One engine with L2, v1 and L3 windows at every depth, each feeding a reference client."""

    def __init__(
        self, engine: MatchingEngine, book_depths: tuple[int, ...], l3_depths: tuple[int, ...]
    ):
        self.engine = engine
        spec = engine.spec
        self.spec = spec
        self.scanner = FrameScanner()
        self.l2: list[tuple[L2Window, L2BookCore]] = []
        self.v1: list[tuple[L2Window, L2BookCore]] = []
        self.l3: list[tuple[L3Window, L3Consumer, Any]] = []
        self.messages = 0
        self.republished = 0
        pp, qp = spec.price_precision, spec.qty_precision
        for depth in book_depths:
            window = L2Window(depth)
            book = L2BookCore(spec.symbol, depth, pp, qp)
            bids, asks = window.snapshot(engine)
            frame = v2_book("snapshot", spec, bids, asks, engine.checksum(depth), NOW, plain_number)
            self._apply(book, frame)
            self.l2.append((window, book))
            window = L2Window(depth)
            book = L2BookCore(spec.v1_pair, depth)
            bids, asks = window.snapshot(engine)
            self._apply(book, v1_book_snapshot(7, f"book-{depth}", spec, bids, asks))
            assert (book.price_precision, book.qty_precision) == (
                spec.v1_price_decimals,
                spec.v1_qty_decimals,
            )
            self.v1.append((window, book))
        for depth in l3_depths:
            l3window = L3Window(depth)
            consumer = L3Consumer(spec.symbol, depth, pp, qp)
            other = reference_l3(spec.symbol, depth, pp, qp)
            bid_orders, ask_orders = l3window.snapshot(engine)
            frame = v2_level3(
                "snapshot",
                spec,
                bid_orders,
                ask_orders,
                engine.level3_checksum(depth),
                NOW,
                plain_number,
            )
            consumer.apply(frame)
            self._apply_other(other, frame)
            self.l3.append((l3window, consumer, other))

    def _apply(self, book: L2BookCore, frame: str) -> None:
        self.scanner.scan(frame)
        book.apply_scanned(self.scanner)
        self.messages += 1

    def _apply_other(self, other: Any, frame: str) -> None:
        if other is not None:
            self.scanner.scan(frame)
            other.apply_scanned(self.scanner)

    def publish(self, now_ns: int) -> None:
        engine, spec = self.engine, self.spec
        changes = engine.drain()
        cache: dict[tuple[str, int], int] = {}

        def checksum(kind: str, depth: int) -> int:
            key = (kind, min(depth, 10))
            if key not in cache:
                compute = {
                    "book": engine.checksum,
                    "v1": engine.v1_checksum,
                    "level3": engine.level3_checksum,
                }[kind]
                cache[key] = compute(depth)
            return cache[key]

        for window, book in self.l2:
            bids, asks = window.update(engine, changes, now_ns)
            if bids or asks:
                frame = v2_book(
                    "update", spec, bids, asks, checksum("book", book.depth), now_ns, plain_number
                )
                self._apply(book, frame)
        for window, book in self.v1:
            bids, asks = window.update(engine, changes, now_ns)
            self.republished += sum(lv.republish for lv in bids + asks)
            if bids or asks:
                frame = v1_book_update(
                    7, f"book-{book.depth}", spec, bids, asks, checksum("v1", book.depth)
                )
                self._apply(book, frame)
        for l3window, consumer, other in self.l3:
            bid_events, ask_events = l3window.update(engine, changes, now_ns)
            if bid_events or ask_events:
                frame = v2_level3(
                    "update",
                    spec,
                    bid_events,
                    ask_events,
                    checksum("level3", l3window.depth),
                    now_ns,
                    plain_number,
                )
                consumer.apply(frame)
                self._apply_other(other, frame)
                self.messages += 1

    def check(self) -> None:
        engine = self.engine
        for window, book in self.l2:
            window._check(engine)
            assert book.bids() == engine.levels(True, book.depth)
            assert book.asks() == engine.levels(False, book.depth)
        for window, book in self.v1:
            window._check(engine)
            pf, qf = self.spec.v1_price_factor, self.spec.v1_qty_factor
            assert book.bids() == [(p * pf, q * qf) for p, q in engine.levels(True, book.depth)]
        for l3window, consumer, _ in self.l3:
            l3window._check(engine)
            assert consumer.levels(True) == [
                (lv.price, [o.qty for o in lv.orders.values()])
                for lv in engine.bids.top(consumer.depth)
            ]


@pytest.mark.parametrize("spec", DEFAULT_SPECS, ids=lambda s: s.symbol)
def test_every_depth_every_channel_verifies_over_a_long_run(spec: SymbolSpec) -> None:
    engine = MatchingEngine(spec, derive_seed(5, spec.symbol), now_ns=NOW, warmup_steps=300)
    harness = Harness(engine, BOOK_DEPTHS, LEVEL3_DEPTHS)
    for step in range(1, 2001):
        engine.step(NOW + step)
        harness.publish(NOW + step)
        if step % 500 == 0:
            harness.check()
    assert harness.messages > 10_000
    assert harness.republished > 0
    for _, book in harness.l2 + harness.v1:
        assert book.bid_levels == book.ask_levels == book.depth  # depth 1000 stays full
    for _, consumer, _ in harness.l3:
        assert consumer.verified > 300


def test_backfill_and_push_out_follow_krakens_rules() -> None:
    spec = spec_for("BTC/USD")
    e = MatchingEngine(spec, 1, seed_book=False)
    ids = {p: e.add_limit("sell", p, 10 + p, 1)[0] for p in (101, 102, 103, 104, 105)}
    e.add_limit("buy", 100, 1, 1)
    window = L2Window(3)
    window.snapshot(e)
    e.drain()

    # A level inside the window disappears: qty 0 for it, and the next level as a republish.
    e.cancel(ids[102], 2)
    _, asks = window.update(e, e.drain(), 2)
    assert asks == [LevelUpdate(102, 0, 2), LevelUpdate(104, 114, 1, True)]

    # A better level pushes the worst one (104) out: only the new level is sent.
    e.add_limit("sell", 102, 7, 3)
    _, asks = window.update(e, e.drain(), 3)
    assert asks == [LevelUpdate(102, 7, 3)]
    assert window.levels(False) == e.levels(False, 3) == [(101, 111), (102, 7), (103, 113)]


@st.composite
def operations(draw: Any) -> list[tuple[Any, ...]]:
    ops = []
    for _ in range(draw(st.integers(5, 60))):
        kind = draw(st.sampled_from(["add", "add", "add", "cancel", "amend", "market", "take"]))
        side = draw(st.sampled_from(["buy", "sell"]))
        ops.append(
            (
                kind,
                side,
                draw(st.integers(1, 14)),
                draw(st.integers(1, 40)),
                draw(st.integers(0, 10**6)),
            )
        )
    return ops


@settings(max_examples=100, deadline=None)
@given(ops=operations(), depth=st.sampled_from([1, 2, 3, 4, 11]))
def test_random_operations_on_a_tiny_book(ops: list[tuple[Any, ...]], depth: int) -> None:
    spec = spec_for("PEPE/USD")
    engine = MatchingEngine(spec, 1, seed_book=False)
    # One order per side first: a v1 client learns its decimals from a non-empty snapshot.
    engine.add_limit("buy", 1, 3, NOW)
    engine.add_limit("sell", 15, 3, NOW)
    harness = Harness(engine, (depth,), (depth,))
    for index, (kind, side, price, qty, pick) in enumerate(ops, start=1):
        is_bid = side == "buy"
        now = NOW + index
        resting = sorted(engine._orders)
        if kind == "add":
            # Passive only: keep below the best ask / above the best bid.
            other = engine.best_ask() if is_bid else engine.best_bid()
            if other is None or (price < other if is_bid else price > other):
                engine.add_limit(side, price, qty, now)
        elif kind == "take":
            engine.add_limit(side, price, qty, now)  # may cross and rest the remainder
        elif kind == "market":
            engine.market(side, qty, now)
        elif resting:
            order_id = resting[pick % len(resting)]
            order = engine.order(order_id)
            assert order is not None
            if kind == "cancel":
                engine.cancel(order_id, now)
            else:
                new_qty = max(1, order.qty + (pick % 7) - 3)
                opposite = engine.best_bid() if order.side == "sell" else engine.best_ask()
                new_price = order.price + (pick % 3) - 1
                if opposite is not None and (
                    new_price <= opposite if order.side == "sell" else new_price >= opposite
                ):
                    new_price = order.price
                if new_price > 0:
                    engine.amend(order_id, now, qty=new_qty, price=new_price)
        engine._check()
        harness.publish(now)
        harness.check()


def test_snapshot_numbers_parse_back_to_the_engines_mantissas() -> None:
    spec = spec_for("DOGE/USD")
    engine = MatchingEngine(spec, 2, warmup_steps=50, target_levels=100)
    window = L2Window(25)
    bids, asks = window.snapshot(engine)
    scanner = FrameScanner()
    scanner.scan(v2_book("snapshot", spec, bids, asks, engine.checksum(), NOW, plain_number))
    parsed = [
        (parse_mantissa(e.price, spec.price_precision), parse_mantissa(e.qty, spec.qty_precision))
        for e in scanner.bids
    ]
    assert parsed == engine.levels(True, 25)
