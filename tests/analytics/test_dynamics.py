"""Queue dynamics: the fill model (closed form and a Monte Carlo oracle), flow rates, queue
sizes, concentration and ages on a tiny book."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bookengine import Implementation
from bookengine.analytics import (
    BookAnalytics,
    FillModel,
    QueueFlow,
    hhi,
    level_stats,
    order_ages,
)
from bookengine.analytics.classify import Classification, L3Change

from .helpers import MS, T0, ack, level3, order, session


def test_expected_time_closed_form() -> None:
    model = FillModel(rate_per_s=2.0, mean_size=1.0)
    assert model.expected_time_s(3) == pytest.approx(2.0)  # (1 + 3/1) / 2
    assert model.expected_time_s(0) == 0.0
    assert FillModel(0.0, 1.0).expected_time_s(5) == math.inf
    assert FillModel(0.0, 1.0).probability_within(5, 10.0) == 0.0
    assert model.probability_within(0, 1.0) == 1.0


def test_probability_with_one_event_needed() -> None:
    # X tiny: any single event fills, so P = P(N(h) >= 1) = 1 - exp(-lambda h).
    model = FillModel(rate_per_s=0.7, mean_size=1.0)
    assert model.probability_within(1e-9, 2.0) == pytest.approx(1 - math.exp(-1.4), abs=1e-6)


@pytest.mark.parametrize(
    ("rate", "mean", "target", "horizon"),
    [(2.0, 1.0, 3.0, 1.5), (5.0, 2.0, 20.0, 2.0), (0.5, 4.0, 2.0, 3.0)],
)
def test_probability_matches_monte_carlo(
    rate: float, mean: float, target: float, horizon: float
) -> None:
    """Oracle: simulate the compound Poisson depletion directly."""
    rng = np.random.default_rng(12345)
    runs = 40_000
    counts = rng.poisson(rate * horizon, runs)
    filled = 0
    times = []
    for count in counts:
        sizes = rng.exponential(mean, count)
        filled += bool(sizes.sum() >= target)
    # Expected time: events needed until the sum reaches the target, over the rate.
    for _ in range(4_000):
        total, events = 0.0, 0
        while total < target:
            total += rng.exponential(mean)
            events += 1
        times.append(events / rate)
    model = FillModel(rate, mean)
    assert model.probability_within(target, horizon) == pytest.approx(filled / runs, abs=0.01)
    assert model.expected_time_s(target) == pytest.approx(float(np.mean(times)), rel=0.05)


def test_hhi_by_hand() -> None:
    assert hhi([5, 5]) == 0.5
    assert hhi([10]) == 1.0
    assert hhi([1, 2, 3]) == pytest.approx(14 / 36)
    assert math.isnan(hhi([]))


def _decision(label: str, qty: int, t_ns: int, level: int = 0, side: str = "bid") -> Classification:
    change = L3Change(
        "TST/USD", "X", side, 1000, "delete", qty, 0, t_ns, t_ns, 0, 0, True, None, level
    )
    return Classification(change, label, qty if label == "fill" else 0, (), False, "")


def test_flow_rates_and_fill_estimate_by_hand() -> None:
    flow = QueueFlow(window_ns=60 * 1_000_000_000)
    second = 1_000_000_000
    flow.add_classification(_decision("fill", 4, T0))
    flow.add_classification(_decision("fill", 6, T0 + 5 * second))
    flow.add_classification(_decision("cancel", 2, T0 + 10 * second))
    flow.add_classification(_decision("cancel", 9, T0 + 10 * second, level=1))
    flow.add_classification(_decision("fill", 9, T0 + 10 * second, side="ask"))
    rates = flow.rates("bid", 0)
    assert rates.window_s == 10.0
    assert (rates.fills_per_s, rates.fill_qty_per_s, rates.mean_fill_qty) == (0.2, 1.0, 5.0)
    assert (rates.cancels_per_s, rates.cancel_qty_per_s, rates.mean_cancel_qty) == (0.1, 0.2, 2.0)
    assert flow.rates("bid", 1).cancels_per_s == 0.1
    estimate = flow.fill_estimate("bid", 0, qty_ahead=6, qty=2, level_qty=10, horizon_s=30.0)
    # Cancels ahead: 0.1/s * 6/8 of the others; rate 0.275/s; mean size (0.2*5 + 0.075*2)/0.275.
    assert estimate.model.rate_per_s == pytest.approx(0.275)
    assert estimate.model.mean_size == pytest.approx(1.15 / 0.275)
    assert estimate.expected_time_s == pytest.approx((1 + 8 / (1.15 / 0.275)) / 0.275)
    assert 0.0 < estimate.probability < 1.0
    with pytest.raises(ValueError):
        flow.rates("buy")


def test_flow_window_forgets() -> None:
    second = 1_000_000_000
    flow = QueueFlow(window_ns=10 * second)
    flow.add_classification(_decision("fill", 4, T0))
    flow.observe(T0 + 11 * second)
    assert flow.rates("bid").fills_per_s == 0.0


def _stamped(order_id: str, price: str, qty: str, seconds_before: int) -> dict[str, str]:
    entry = order(order_id, price, qty)
    second = 40 - seconds_before
    entry["timestamp"] = f"2024-01-08T12:26:{second:02d}.000000000Z"
    return entry


def test_level_stats_and_ages_by_hand(impl: Implementation) -> None:
    analytics = BookAnalytics(session(impl.name))
    analytics.receive(ack("level3", 10), T0)
    analytics.receive(
        level3(
            "snapshot",
            [
                _stamped("A", "100.0", "3", 30),
                _stamped("B", "100.0", "4", 20),
                _stamped("C", "100.0", "5", 10),
                order("D", "100.0", "2"),  # no timestamp
                _stamped("E", "99.9", "7", 5),
            ],
            [_stamped("F", "100.2", "6", 1)],
        ),
        T0,
    )
    book = analytics.book("TST/USD")
    stats = level_stats(book, "bid", levels=5, now_ns=T0)
    second = 1_000_000_000
    assert stats["price_m"].tolist() == [1000, 999]  # exact mantissas
    assert stats["qty_m"].tolist() == [14, 7]
    assert stats["front_qty_m"].tolist() == [3, 7]
    scale = 10**book.qty_precision
    assert stats["price"].tolist() == [100.0, 99.9]  # real units beside them
    assert stats["qty"].tolist() == [14 / scale, 7 / scale]
    assert set(stats["symbol"]) == {"TST/USD"}
    assert stats["orders"].tolist() == [4, 1]
    assert stats["hhi"][0] == pytest.approx((9 + 16 + 25 + 4) / 196)
    assert stats["hhi"][1] == 1.0
    assert stats["max_share"][0] == pytest.approx(5 / 14)
    assert stats["mean_age_ns"].tolist() == [20 * second, 5 * second]  # D has no timestamp
    assert stats["oldest_age_ns"].tolist() == [30 * second, 5 * second]
    assert level_stats(book, "bid", levels=1)["price_m"].tolist() == [1000]
    assert level_stats(book, "ask")["mean_age_ns"].tolist() == [-1]  # no now_ns
    ages = order_ages(book, T0)
    assert ages["age_ns"].tolist() == [
        30 * second,
        20 * second,
        10 * second,
        -1,
        5 * second,
        second,
    ]
    assert ages["position"].tolist() == [0, 1, 2, 3, 0, 0]
    assert ages["price"][0] == 100.0 and ages["price_m"][0] == 1000
    assert (
        str(ages["timestamp"].dtype) == "datetime64[ns]"
        and ages["timestamp"][3] != ages["timestamp"][3]
    )
    with pytest.raises(ValueError):
        level_stats(book, "bids")


def test_fill_estimate_of_a_tracked_order(impl: Implementation) -> None:
    analytics = BookAnalytics(session(impl.name), trade_wait_s=0.0)
    analytics.receive(ack("level3", 10), T0)
    analytics.receive(
        level3("snapshot", [order("A", "100.0", "3"), order("B", "100.0", "4")], []), T0
    )
    t1 = T0 + 1_000 * MS
    analytics.receive(level3("update", [order("A", "100.0", "1", "modify")], [], t1), t1)
    analytics.receive(b'{"channel":"heartbeat"}', t1 + 1_000 * MS)  # decided: a reduce
    estimate = analytics.fill_estimate("B", horizon_s=10.0)
    assert (estimate.qty_ahead, estimate.qty, estimate.level_qty) == (1, 4, 5)
    # Only a reduction of 2 in 1 s of flow: cancels ahead at 1/s * 1/1, mean size 2.
    assert estimate.model.rate_per_s == pytest.approx(1.0)
    assert estimate.expected_time_s == pytest.approx((1 + 5 / 2) / 1.0)
