"""The matching engine alone: verbs, priority, invariants, determinism, seeded flow."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from bookengine.sim.engine import MatchingEngine, derive_seed, is_order_id
from bookengine.sim.specs import DEFAULT_SPECS, SymbolSpec, spec_for

ORDER_ID = re.compile(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")
BTC = spec_for("BTC/USD")


def empty(spec: SymbolSpec = BTC) -> MatchingEngine:
    return MatchingEngine(spec, 1, seed_book=False)


def queue(engine: MatchingEngine, is_bid: bool, price: int) -> list[tuple[str, int]]:
    level = engine.side(is_bid).level(price)
    assert level is not None
    return [(o.order_id, o.qty) for o in level.orders.values()]


def test_limit_orders_rest_in_time_priority_and_aggregate() -> None:
    e = empty()
    a, _ = e.add_limit("buy", 1000, 5, 1)
    b, _ = e.add_limit("buy", 1000, 7, 2)
    c, _ = e.add_limit("buy", 999, 1, 3)
    d, _ = e.add_limit("sell", 1002, 4, 4)
    assert e.levels(True, 10) == [(1000, 12), (999, 1)]
    assert e.levels(False, 10) == [(1002, 4)]
    assert queue(e, True, 1000) == [(a, 5), (b, 7)]
    assert all(ORDER_ID.fullmatch(x) for x in (a, b, c, d))
    e._check()


def test_marketable_limit_trades_through_levels_fifo_and_rests_the_rest() -> None:
    e = empty()
    m1, _ = e.add_limit("sell", 1001, 3, 1)
    m2, _ = e.add_limit("sell", 1001, 4, 2)
    m3, _ = e.add_limit("sell", 1003, 10, 3)
    e.drain()
    taker, trades = e.add_limit("buy", 1003, 12, 4)
    assert [(t.maker_order_id, t.price, t.qty, t.side) for t in trades] == [
        (m1, 1001, 3, "buy"),
        (m2, 1001, 4, "buy"),
        (m3, 1003, 5, "buy"),
    ]
    assert e.order(m1) is None and e.order(m2) is None
    assert queue(e, False, 1003) == [(m3, 5)]  # partially filled maker keeps its place
    assert e.order(taker) is None  # fully filled
    changes = e.drain()
    assert changes.ask_prices == {1001, 1003} and not changes.bid_prices
    assert [t.trade_id for t in changes.trades] == sorted({t.trade_id for t in trades})

    taker, trades = e.add_limit("buy", 1004, 8, 5)
    assert [(t.price, t.qty) for t in trades] == [(1003, 5)]
    assert e.levels(True, 1) == [(1004, 3)] and e.levels(False, 1) == []
    assert queue(e, True, 1004) == [(taker, 3)]
    e._check()


def test_market_order_stops_when_the_side_is_empty() -> None:
    e = empty()
    e.add_limit("buy", 100, 2, 1)
    e.add_limit("buy", 99, 2, 1)
    trades = e.market("sell", 10, 2)
    assert [(t.price, t.qty, t.side, t.ord_type) for t in trades] == [
        (100, 2, "sell", "market"),
        (99, 2, "sell", "market"),
    ]
    assert len(e.bids) == 0
    e._check()


def test_amend_decrease_keeps_priority_increase_and_price_change_requeue() -> None:
    e = empty()
    a, _ = e.add_limit("sell", 2000, 10, 1)
    b, _ = e.add_limit("sell", 2000, 10, 2)
    e.add_limit("buy", 1990, 10, 3)
    old_seq = e.order(a).seq  # type: ignore[union-attr]
    assert e.amend(a, 4, qty=6)
    assert queue(e, False, 2000) == [(a, 6), (b, 10)]
    assert e.order(a).seq == old_seq  # type: ignore[union-attr]
    assert e.amend(a, 5, qty=8)
    assert queue(e, False, 2000) == [(b, 10), (a, 8)]
    assert e.order(a).seq > old_seq  # type: ignore[union-attr]
    assert e.amend(b, 6, price=2001)
    assert queue(e, False, 2000) == [(a, 8)] and queue(e, False, 2001) == [(b, 10)]
    with pytest.raises(ValueError):
        e.amend(a, 7, price=1990)  # would cross the best bid
    assert e.amend(a, 8, qty=0)
    assert e.order(a) is None and e.levels(False, 5) == [(2001, 10)]
    assert not e.amend("OAAAAA-AAAAA-AAAAAA", 9, qty=1)
    assert e.cancel(b, 10) and not e.cancel(b, 11)
    e._check()


def test_bad_values_are_refused() -> None:
    e = empty()
    with pytest.raises(ValueError):
        e.add_limit("buy", 0, 1, 1)
    with pytest.raises(ValueError):
        e.add_limit("buy", 1, 0, 1)
    order_id, _ = e.add_limit("buy", 5, 1, 1)
    with pytest.raises(ValueError):
        e.add_limit("buy", 5, 1, 1, order_id=order_id)
    with pytest.raises(ValueError):
        e.market("buy", 0, 1)


@pytest.mark.parametrize("spec", DEFAULT_SPECS, ids=lambda s: s.symbol)
def test_seeded_flow_keeps_every_invariant(spec: SymbolSpec) -> None:
    e = MatchingEngine(spec, derive_seed(3, spec.symbol), now_ns=1, warmup_steps=200)
    assert len(e.bids) > 1000 and len(e.asks) > 1000
    assert e.order_count > 4000  # a few thousand resting orders
    e._check()
    kinds: Counter[str] = Counter()
    for step in range(3000):
        count = e.order_count
        e.step(step)
        changes = e.drain()
        bid, ask = e.best_bid(), e.best_ask()
        assert bid is not None and ask is not None and bid < ask
        kinds["trade"] += bool(changes.trades)
        kinds["more orders"] += e.order_count > count
        kinds["fewer orders"] += e.order_count < count
        # A maker still resting after a fill was filled partially.
        kinds["partial fill"] += any(e.order(t.maker_order_id) for t in changes.trades)
        kinds["full fill"] += any(not e.order(t.maker_order_id) for t in changes.trades)
        if step % 500 == 0:
            e._check()
    e._check()
    assert min(kinds.values()) > 10, kinds
    assert len(e.bids) >= 1000 and len(e.asks) >= 1000
    for order in e._orders.values():
        assert type(order.price) is int and type(order.qty) is int
        assert is_order_id(order.order_id) and ORDER_ID.fullmatch(order.order_id)


def test_same_seed_same_book_different_seed_different_book() -> None:
    def fingerprint(seed: int) -> list[object]:
        e = MatchingEngine(BTC, seed, now_ns=5, warmup_steps=100, target_levels=200)
        for step in range(500):
            e.step(step)
        return [
            (lv.price, [(o.order_id, o.qty, o.seq) for o in lv.orders.values()])
            for side in (e.bids, e.asks)
            for lv in side.top(10_000)
        ]

    assert fingerprint(11) == fingerprint(11)
    assert fingerprint(11) != fingerprint(12)


def test_derived_seeds_differ_per_symbol_and_fit_64_bits() -> None:
    seeds = {derive_seed(1, s.symbol) for s in DEFAULT_SPECS} | {derive_seed(2, "BTC/USD")}
    assert len(seeds) == len(DEFAULT_SPECS) + 1
    assert all(0 <= s < 1 << 64 for s in seeds)
    assert derive_seed(1, "BTC/USD") == derive_seed(1, "BTC/USD")


def test_modes_restrict_the_flow() -> None:
    e = MatchingEngine(BTC, 9, warmup_steps=50, target_levels=300)
    e.drain()
    e.mode = "maintenance"
    snapshot = e.levels(True, 10_000), e.levels(False, 10_000)
    for step in range(200):
        e.step(step)
    assert not e.drain() and (e.levels(True, 10_000), e.levels(False, 10_000)) == snapshot

    e.mode = "cancel_only"
    count = start = e.order_count
    for step in range(300):
        e.step(step)
        assert e.order_count <= count
        count = e.order_count
    changes = e.drain()
    assert not changes.trades and e.order_count < start

    e.mode = "post_only"
    for step in range(300):
        e.step(step)
    assert not e.drain().trades
    e._check()


def test_is_order_id() -> None:
    assert is_order_id("OTCFZG-YOE2Q-LQKNM3")
    for bad in (
        "OTCFZG-YOE2Q-LQKNM",
        "XTCFZG-YOE2Q-LQKNM3",
        "Otcfzg-YOE2Q-LQKNM3",
        "OTCFZGYOE2Q-LQKNM3X",
    ):
        assert not is_order_id(bad)
