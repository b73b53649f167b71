"""L2 features on a tiny book, by hand; the L3 book's aggregated view gives the same numbers.

Book: bids 100.0 x3, 99.9 x5, 99.7 x2; asks 100.2 x1, 100.3 x4 (mantissas 1000, 999, 997 /
1002, 1003; quantities whole units).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bookengine import Implementation
from bookengine.analytics import (
    FeatureSampler,
    LevelSampler,
    OrderFlowImbalance,
    book_pressure,
    imbalance,
    microprice,
    mid_price,
    sample_features,
    slippage,
    spread,
    vwap,
)
from bookengine.kraken.events import BookChanged

from .helpers import MS, SYMBOL, T0, ack, book, level3, order, session

BIDS = [("100.0", "3"), ("99.9", "5"), ("99.7", "2")]
ASKS = [("100.2", "1"), ("100.3", "4")]


def _l2(impl: Implementation) -> Any:
    s = session(impl.name)
    s.receive(ack("book", 10), T0)
    events = s.receive(book("snapshot", BIDS, ASKS), T0)
    (changed,) = [e for e in events if isinstance(e, BookChanged)]
    return changed.book


def _l3(impl: Implementation) -> Any:
    s = session(impl.name)
    s.receive(ack("level3", 10), T0)
    # The same totals, split into orders: 100.0 = 1 + 2, 99.9 = 5, 99.7 = 2; asks 1 and 3 + 1.
    bids = [
        order("a", "100.0", "1"),
        order("b", "100.0", "2"),
        order("c", "99.9", "5"),
        order("d", "99.7", "2"),
    ]
    asks = [order("e", "100.2", "1"), order("f", "100.3", "3"), order("g", "100.3", "1")]
    events = s.receive(level3("snapshot", bids, asks), T0)
    (changed,) = [e for e in events if isinstance(e, BookChanged)]
    return changed.book


def test_features_by_hand(impl: Implementation) -> None:
    for b in (_l2(impl), _l3(impl)):
        # Prices in price units (the book's price precision is 1: mantissa 1001 = 100.1).
        assert mid_price(b) == 100.1
        assert spread(b) == 2  # an exact mantissa
        assert microprice(b) == (1000 * 1 + 1002 * 3) / 40  # leans to the thin ask
        assert imbalance(b, 1) == 0.5
        assert imbalance(b, 2) == pytest.approx((8 - 5) / 13)
        # B = 3/1 + 5/2, A = 1/1 + 4/2 (quantity over distance from the mid).
        assert book_pressure(b, 2) == pytest.approx((5.5 - 3.0) / 8.5)
        assert vwap(b, "buy", 3) == (pytest.approx(300.8 / 3), 3)
        assert slippage(b, "buy", 3) == pytest.approx(300.8 / 3 - 100.1)
        assert vwap(b, "sell", 9) == (pytest.approx(899.2 / 9), 9)
        assert slippage(b, "sell", 9) == pytest.approx(100.1 - 899.2 / 9)
        price, filled = vwap(b, "buy", 10)
        assert filled == 5 and price == pytest.approx((100.2 + 4 * 100.3) / 5)
        assert math.isnan(slippage(b, "buy", 10))  # the visible book is too thin
    with pytest.raises(ValueError):
        vwap(b, "bid", 1)
    with pytest.raises(ValueError):
        vwap(b, "buy", 0)


def test_empty_side_gives_nan(impl: Implementation) -> None:
    s = session(impl.name)
    s.receive(ack("book", 10), T0)
    (changed,) = [
        e for e in s.receive(book("snapshot", BIDS, []), T0) if isinstance(e, BookChanged)
    ]
    b = changed.book
    assert math.isnan(mid_price(b)) and spread(b) is None and math.isnan(microprice(b))
    assert imbalance(b) == 1.0
    assert math.isnan(book_pressure(b))


class _Quotes:
    """A stand-in book: just best quotes, for the OFI cases."""

    def __init__(self, bid: tuple[int, int], ask: tuple[int, int]) -> None:
        self._bid, self._ask = bid, ask

    def bids(self, n: int | None = None) -> list[tuple[int, int]]:
        return [self._bid][:n]

    def asks(self, n: int | None = None) -> list[tuple[int, int]]:
        return [self._ask][:n]


def test_ofi_cont_kukanov_stoikov_cases() -> None:
    ofi = OrderFlowImbalance()
    assert ofi.update(_Quotes((1000, 3), (1002, 1))) == 0  # the first book has no flow
    assert ofi.update(_Quotes((1000, 5), (1002, 1))) == 2  # bid size up 3 -> 5
    assert ofi.update(_Quotes((1001, 1), (1002, 1))) == 1  # bid improves: + new size
    assert ofi.update(_Quotes((1000, 4), (1002, 1))) == -1  # bid drops: - old size
    assert ofi.update(_Quotes((1000, 4), (1003, 4))) == 1  # ask recedes: + old ask size
    assert ofi.update(_Quotes((1000, 4), (1001, 2))) == -2  # ask improves: - new size
    assert ofi.update(_Quotes((1000, 4), (1001, 7))) == -5  # ask size up 2 -> 7
    ofi.reset()
    assert ofi.update(_Quotes((1, 1), (2, 1))) == 0


def test_multi_level_ofi_sums_levels(impl: Implementation) -> None:
    s = session(impl.name)
    s.receive(ack("book", 10), T0)
    s.receive(book("snapshot", BIDS, ASKS), T0)
    ofi = OrderFlowImbalance(levels=2)
    l2 = s.book(f"book:{SYMBOL}")
    assert ofi.update(l2) == 0
    # 99.9 grows 5 -> 8 (level 2 of the bids) and 100.3 shrinks 4 -> 1 (level 2 of the asks).
    s.receive(book("update", [("99.9", "8")], [("100.3", "1")]), T0 + MS)
    assert ofi.update(l2) == (8 - 5) + (4 - 1)


def test_sampler_per_change_and_on_a_grid(impl: Implementation) -> None:
    s = session(impl.name)
    s.receive(ack("book", 10), T0)
    per_change = FeatureSampler(levels=2, sizes=(3,))
    grid = FeatureSampler(levels=2, every_ns=10 * MS)
    frames = [
        (T0, book("snapshot", BIDS, ASKS)),
        (T0 + 4 * MS, book("update", [("100.0", "5")], [])),  # OFI +2
        (T0 + 25 * MS, book("update", [("100.1", "1")], [])),  # bid improves: OFI +1
    ]
    for t, frame in frames:
        for event in s.receive(frame, t):
            if isinstance(event, BookChanged):
                per_change.add(event.book, t)
                grid.add(event.book, t)
    table = per_change.table()
    assert table.rows == len(table) == 3
    assert table["t_ns"].tolist() == [T0, T0 + 4 * MS, T0 + 25 * MS]
    assert table["time"].dtype == np.dtype("datetime64[ns]")
    assert table["time"].astype(np.int64).tolist() == table["t_ns"].tolist()
    assert table["symbol"].tolist() == [SYMBOL] * 3
    assert table["ofi_m"].tolist() == [0, 2, 1] and table["ofi"].tolist() == [0.0, 2.0, 1.0]
    assert table["best_bid_m"].tolist() == [1000, 1000, 1001]
    assert table["best_bid"].tolist() == [100.0, 100.0, 100.1]  # price units
    assert table["bid_qty"].tolist() == [3.0, 5.0, 1.0]
    assert table["spread_m"].tolist() == [2, 2, 1]
    assert table["spread"].tolist() == pytest.approx([0.2, 0.2, 0.1])
    assert table["mid"][0] == 100.1 and table["microprice"][0] == pytest.approx(100.15)
    assert table["vwap_buy_0"][0] == pytest.approx(300.8 / 3)
    assert table["ofi_m"].dtype == np.int64 and table["mid"].dtype == np.float64
    assert table.scales["best_bid_m"] == 1 and table.scales["bid_qty_m"] == 0
    # The grid is aligned to whole intervals (T0 is a multiple of 10 ms): T0, +10, +20 ms.
    g = grid.table()
    assert g["t_ns"].tolist() == [T0, T0 + 10 * MS, T0 + 20 * MS]
    assert g["bid_qty_m"].tolist() == [3, 5, 5]
    assert g["ofi_m"].tolist() == [0, 2, 0]
    assert g.columns == grid.column_names
    grid.finish(T0 + 30 * MS)
    assert grid.table()["t_ns"].tolist()[-1] == T0 + 30 * MS


def test_grid_starts_on_a_whole_interval(impl: Implementation) -> None:
    """A sampler that starts mid-interval still samples at whole multiples of the interval."""
    s = session(impl.name)
    s.receive(ack("book", 10), T0)
    grid = FeatureSampler(levels=2, every_ns=10 * MS)
    levels = LevelSampler(levels=3, every_ns=10 * MS)
    for t, frame in (
        (T0 + 3 * MS, book("snapshot", BIDS, ASKS)),
        (T0 + 27 * MS, book("update", [("100.0", "5")], [])),
    ):
        for event in s.receive(frame, t):
            if isinstance(event, BookChanged):
                grid.add(event.book, t)
                levels.add(event.book, t)
    assert grid.table()["t_ns"].tolist() == [T0 + 10 * MS, T0 + 20 * MS]
    assert levels.arrays()["t_ns"].tolist() == [T0 + 10 * MS, T0 + 20 * MS]
    assert levels.symbol == SYMBOL and levels.price_precision == 1
    table = levels.table()  # 3 levels: the asks have only 2, their third is missing
    assert table["bid_price_3"].tolist() == [99.7, 99.7] and table["bid_qty_1"].tolist() == [3, 3]
    assert np.isnan(table["ask_price_3"]).all() and np.isnan(table["ask_qty_3"]).all()
    assert table.missing("ask_price_3_m").all() and not table.missing("ask_price_2_m").any()
    assert table["symbol"].tolist() == [SYMBOL] * 2 and table.scales["bid_price_1_m"] == 1


def test_missing_values_are_null_not_zero(impl: Implementation) -> None:
    s = session(impl.name)
    s.receive(ack("book", 10), T0)
    sampler = FeatureSampler(levels=2)
    for event in s.receive(book("snapshot", BIDS, []), T0):
        if isinstance(event, BookChanged):
            sampler.add(event.book, T0)
    table = sampler.table()
    assert math.isnan(table["best_ask"][0]) and math.isnan(table["spread"][0])
    assert table.missing("best_ask_m").tolist() == [True]
    frame = table.to_pandas()
    assert frame["best_ask_m"].isna().tolist() == [True]
    assert str(frame["best_ask_m"].dtype) == "Int64" and frame["best_bid_m"].tolist() == [1000]
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    arrow = table.to_arrow(decimal=True)
    assert arrow.column("best_ask_m").null_count == 1 and arrow.column("best_ask").null_count == 1
    assert str(arrow.schema.field("time").type) == "timestamp[ns, tz=UTC]"
    assert str(arrow.column("best_bid_dec")[0]) == "100.0"
    polars = table.to_polars()
    assert polars["best_ask"].null_count() == 1 and polars["best_bid"][0] == 100.0


def test_sample_features_over_a_capture(impl: Implementation, tmp_path: Path) -> None:
    lines = [
        (
            T0,
            b'{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol":"TST/USD",'
            b'"price_precision":1,"qty_precision":0}]}}',
        ),
        (T0, ack("book", 10)),
        (T0, book("snapshot", BIDS, ASKS)),
        (T0 + MS, book("update", [("100.0", "4")], [])),
    ]
    path = tmp_path / "l2.jsonl"
    path.write_bytes(b"".join(b"%d\t%s\n" % (t, f) for t, f in lines))
    table = sample_features([path], f"book:{SYMBOL}", levels=2)
    assert table["bid_qty"].tolist() == [3, 4]
    assert table["ofi"].tolist() == [0, 1]
    assert table["imbalance_1"].tolist() == [0.5, 0.6]


def test_level_sampler_shapes(impl: Implementation) -> None:
    b = _l2(impl)
    sampler = LevelSampler(levels=4)
    sampler.add(b, T0)
    arrays = sampler.arrays()
    assert arrays["bid_price"].shape == (1, 4) and arrays["bid_price"].dtype == np.int64
    assert arrays["bid_price"][0].tolist() == [1000, 999, 997, 0]
    assert arrays["ask_qty"][0].tolist() == [1, 4, 0, 0]
