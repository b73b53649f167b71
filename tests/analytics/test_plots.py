"""Pictures: titles name the symbol and the time range, axes carry units, nothing is blank."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from bookengine import Implementation
from bookengine.analytics import FeatureSampler, LevelSampler, Table
from bookengine.kraken.events import BookChanged

from .helpers import MS, SYMBOL, T0, ack, book, session

BIDS = [("100.0", "3"), ("99.9", "5"), ("99.7", "2")]
ASKS = [("100.2", "1"), ("100.3", "4")]
DAY = "2024-01-08"  # T0 is 2024-01-08 12:26:40 UTC


@pytest.fixture
def pyplot() -> Any:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def _books(impl: Implementation) -> tuple[Any, FeatureSampler, LevelSampler]:
    s = session(impl.name)
    s.receive(ack("book", 10), T0)
    features = FeatureSampler(levels=2, every_ns=10 * MS)
    levels = LevelSampler(levels=5, every_ns=10 * MS)
    frames = [
        (T0, book("snapshot", BIDS, ASKS)),
        (T0 + 40 * MS, book("update", [("100.0", "5")], [])),
        (T0 + 95 * MS, book("update", [("100.1", "1")], [])),
        (T0 + 130 * MS, book("update", [], [("100.2", "0"), ("100.4", "2")])),
    ]
    for t, frame in frames:
        for event in s.receive(frame, t):
            if isinstance(event, BookChanged):
                features.add(event.book, t)
                levels.add(event.book, t)
    return s.book(f"book:{SYMBOL}"), features, levels


def test_depth_chart_is_titled_and_labelled(pyplot: Any, impl: Implementation) -> None:
    from bookengine.analytics import plots

    l2, _, _ = _books(impl)
    ax = plots.depth_chart(l2, levels=5, time_ns=T0 + 130 * MS)
    assert SYMBOL in ax.get_title() and f"{DAY} 12:26:40.130 UTC" in ax.get_title()
    assert ax.get_xlabel() == "price (USD)" and ax.get_ylabel() == "cumulative quantity (TST)"
    bids = ax.get_lines()[0]
    assert bids.get_xdata().tolist() == [100.1, 100.0, 99.9, 99.7]
    assert bids.get_ydata().tolist() == [1.0, 6.0, 11.0, 13.0]  # cumulative, real units


def test_heatmap_names_its_symbol_and_time_range(pyplot: Any, impl: Implementation) -> None:
    from bookengine.analytics import plots

    _, _, levels = _books(impl)
    ax = plots.heatmap(levels)  # a sampler carries its symbol and precisions
    title = ax.get_title()
    assert title.startswith(SYMBOL) and f"{DAY} 12:26:40.000 – 12:26:40.130 UTC" in title
    assert ax.get_ylabel() == "price (USD)" and "12:26:40.000 UTC" in ax.get_xlabel()
    colorbar_label = ax.figure.axes[-1].get_ylabel()
    assert colorbar_label.startswith("resting quantity (TST)")
    assert ax.images and np.nanmax(ax.images[0].get_array()) == 5.0
    best_bid = ax.get_lines()[0].get_ydata()
    assert best_bid[0] == 100.0 and best_bid[-1] == 100.1


def test_features_figure_has_title_labels_and_price_units(
    pyplot: Any, impl: Implementation
) -> None:
    from bookengine.analytics import plots

    _, features, _ = _books(impl)
    table = features.table()
    fig = plots.features(table)
    assert SYMBOL in fig.get_suptitle() and DAY in fig.get_suptitle()
    prices, spread, flow, ofi = fig.axes
    assert prices.get_ylabel() == "price (USD)" and spread.get_ylabel() == "spread (USD)"
    assert flow.get_ylabel().startswith("imbalance") and ofi.get_ylabel() == "OFI (TST)"
    assert "seconds after" in flow.get_xlabel()
    mid = next(line for line in prices.get_lines() if line.get_label() == "mid")
    assert mid.get_ydata()[0] == pytest.approx(100.1)  # price units, not mantissas


@dataclass
class _Outcome:
    outcome: str
    recv_ts_ns: int


@dataclass
class _Tracked:
    """What queue_trajectory reads of a TrackedOrder."""

    rows: int
    outcome: _Outcome | None = None
    order_id: str = "OABC"
    symbol: str = "BTC/USD"
    side: str = "bid"

    def history(self) -> Table:
        n = self.rows
        return Table(
            {
                "recv_ts_ns": T0 + np.arange(n, dtype=np.int64) * 250 * MS,
                "qty": np.full(n, 2 * 10**8),
                "qty_ahead": np.arange(n, 0, -1, dtype=np.int64) * 10**8,
                "qty_behind": np.full(n, 10**8),
            }
        )


@pytest.mark.parametrize("outcome", [None, _Outcome("filled", T0 + 2 * 10**9)])
def test_a_trajectory_with_one_change_still_shows_the_order(
    pyplot: Any, outcome: _Outcome | None
) -> None:
    from bookengine.analytics import plots

    ax = plots.queue_trajectory(_Tracked(1, outcome), 8)
    assert "BTC/USD" in ax.get_title() and DAY in ax.get_title()
    assert ax.get_ylabel() == "quantity (BTC)"
    areas = ax.collections[:3]
    assert len(areas) == 3
    for area in areas:
        vertices = np.concatenate([path.vertices for path in area.get_paths()])
        assert np.ptp(vertices[:, 0]) > 0 and np.ptp(vertices[:, 1]) > 0  # a real area
    order_top = max(np.concatenate([p.vertices for p in areas[1].get_paths()])[:, 1])
    assert order_top == pytest.approx(3.0)  # 1 BTC ahead + the order's 2 BTC
    width = np.ptp(np.concatenate([p.vertices for p in areas[0].get_paths()])[:, 0])
    assert width == pytest.approx(2.0 if outcome else 1.0)


def test_a_longer_trajectory_ends_at_the_outcome(pyplot: Any) -> None:
    from bookengine.analytics import plots

    ax = plots.queue_trajectory(_Tracked(4, _Outcome("cancelled", T0 + 3 * 10**9)), 8)
    assert ax.get_xlim() == (0.0, 3.0)
    (changes,) = [line for line in ax.get_lines() if line.get_label() == "changes"]
    assert changes.get_xdata().tolist() == [0.0, 0.25, 0.5, 0.75]
