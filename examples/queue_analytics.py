"""Queue analytics over a simulator capture, offline (the script twin of the notebook).

The capture (``examples/data/sim_capture.jsonl.gz``, made by ``examples/make_capture.py``)
holds what a :class:`~bookengine.feed.KrakenFeed` received from the local simulator for
BTC/USD: ``level3`` and ``book`` at depth 10, public ``trade``, and the private ``executions``
of a few own orders. Replaying it through :class:`~bookengine.analytics.BookAnalytics`:

1. every level3 delete/modify is classified fill or cancel by the trade join;
2. the own orders announced on ``executions`` are tracked through their queues to their
   outcome;
3. queue flow, sizes, concentration and ages; fill estimates for a resting order;
4. L2 features on a 100 ms grid;
5. the classifier and the L2 queue estimators scored against the simulator's ground truth;
6. pictures (with ``--plots DIR``; needs matplotlib).

    .venv/bin/python examples/queue_analytics.py [--plots out/] [--quick]
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bookengine.analytics import (
    BookAnalytics,
    FeatureSampler,
    LevelSampler,
    OrderOutcome,
    Table,
    level_stats,
)
from bookengine.analytics.evaluate import evaluate_classifier, evaluate_estimators
from bookengine.kraken.events import BookChanged
from bookengine.kraken.session import KrakenSession

CAPTURE = Path(__file__).resolve().parent / "data" / "sim_capture.jsonl.gz"
SYMBOL = "BTC/USD"
MS = 1_000_000


@dataclass
class Study:
    """Everything one pass over the capture produced."""

    analytics: BookAnalytics
    features: Table
    levels: dict[str, Any]
    outcomes: list[OrderOutcome]
    last_ns: int


def analyse(capture: Path = CAPTURE) -> Study:
    """One replay of the capture with analytics, a level sampler and a feature sampler."""
    analytics = BookAnalytics()
    levels = LevelSampler(levels=15, every_ns=50 * MS)
    features = FeatureSampler(levels=5, sizes=(10_000_000,), every_ns=100 * MS)
    outcomes: list[OrderOutcome] = []
    last_ns = -1
    for event in analytics.replay([capture], KrakenSession()):
        if isinstance(event, BookChanged):
            last_ns = event.recv_ts_ns
            if event.key == f"level3:{SYMBOL}":
                levels.add(event.book, event.recv_ts_ns)
            elif event.key == f"book:{SYMBOL}":
                features.add(event.book, event.recv_ts_ns)
        elif isinstance(event, OrderOutcome):
            outcomes.append(event)
    return Study(analytics, features.table(), levels.arrays(), outcomes, last_ns)


def report(study: Study) -> None:
    """Print the findings."""
    analytics = study.analytics
    book = analytics.book(SYMBOL)
    labels = Counter(c.label for c in analytics.classifications)
    ambiguous = sum(c.ambiguous for c in analytics.classifications)
    print(f"level3 changes classified: {dict(labels)} ({ambiguous} flagged ambiguous)")
    print(f"trades joined: {analytics.stats.trades}; unmatched: ", end="")
    print(analytics.classifier.stats.unmatched_trades)
    print("\nown orders (from the executions channel), tracked through their queues:")
    for tracked in analytics.tracked.values():
        history = tracked.history()
        first_ahead = int(history["qty_ahead_m"][0]) if history.rows else -1
        outcome = tracked.outcome.outcome if tracked.outcome else tracked.status
        print(
            f"  {tracked.order_id} {tracked.side} @ {book.price_text(tracked.price)}: "
            f"{history.rows} queue changes, joined with {book.qty_text(first_ahead)} ahead, "
            f"{outcome}, filled {book.qty_text(tracked.filled_qty)} "
            f"(executions says {tracked.exec_status} {tracked.exec_filled})"
        )
    stats = level_stats(book, "bid", levels=5, now_ns=study.last_ns)
    print("\nbid queues now: price, qty, orders, HHI of sizes, mean age (s)")
    for i in range(stats.rows):
        print(
            f"  {book.price_text(int(stats['price'][i]))}  {book.qty_text(int(stats['qty'][i]))}"
            f"  {int(stats['orders'][i])}  {stats['hhi'][i]:.2f}"
            f"  {stats['mean_age_ns'][i] / 1e9:.2f}"
        )
    bid = book.best_bid()
    if bid is not None:
        last = book.level_orders("bid", bid[0])[-1][0]
        estimate = analytics.fill_estimate(last, horizon_s=5.0)
        print(
            f"\nthe last order at the best bid: {book.qty_text(estimate.qty_ahead)} ahead; "
            f"expected time to fill {estimate.expected_time_s:.2f} s, "
            f"P(fill within 5 s) = {estimate.probability:.2f} "
            f"(rate {estimate.model.rate_per_s:.1f}/s, mean size "
            f"{book.qty_text(round(estimate.model.mean_size))})"
        )
    features = study.features
    print(
        f"\nL2 features on a 100 ms grid: {len(features)} rows; mean spread "
        f"{features['spread_m'].mean():.2f} ticks, mean imbalance "
        f"{features['imbalance_1'].mean():+.3f}, net OFI "
        f"{book.qty_text(int(features['ofi_m'].sum()))} BTC"
    )


def ground_truth(quick: bool) -> None:
    """Score the classifier and the L2 estimators against the simulator's own truth."""
    steps = 3_000 if quick else 20_000
    print("\nfill/cancel classifier vs the engine's reasons (fills are the positive class):")
    for run in (
        evaluate_classifier(steps, label="trades in time"),
        evaluate_classifier(steps, trade_delay_ms=50, trade_jitter_ms=100, label="trades late"),
        evaluate_classifier(steps, trade_loss=0.2, label="20% trades lost"),
    ):
        s = run.score
        print(
            f"  {run.label:<16} precision {s.precision:.3f} recall {s.recall:.3f} "
            f"accuracy {s.accuracy:.3f} ({run.decisions} decisions, {s.ambiguous} ambiguous)"
        )
    results, facts = evaluate_estimators(5_000 if quick else 30_000)
    print(
        f"\nL2 queue estimators vs exact L3 position ({facts['trials']} own orders, "
        f"{facts['filled']} filled):"
    )
    for r in results:
        print(
            f"  {r.model:<12} MAE {r.mae_lots:.3f} lots, bias {r.bias_lots:+.3f}, "
            f"fills seen {r.fill_detected}/{r.fills}, time-to-fill MAE {r.ttf_mae_s * 1e3:.1f} ms"
        )


def pictures(study: Study, out: Path) -> list[Path]:
    """Depth chart, heatmap and each own order's queue trajectory as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bookengine.analytics import plots

    out.mkdir(parents=True, exist_ok=True)
    book = study.analytics.book(SYMBOL)
    paths = []
    ax = plots.depth_chart(book, levels=10)
    paths.append(out / "depth.png")
    ax.figure.savefig(paths[-1], dpi=100, bbox_inches="tight")
    ax = plots.heatmap(study.levels, book.price_precision, book.qty_precision)
    paths.append(out / "heatmap.png")
    ax.figure.savefig(paths[-1], dpi=100, bbox_inches="tight")
    for tracked in study.analytics.tracked.values():
        if tracked.history().rows:
            ax = plots.queue_trajectory(tracked, book.qty_precision)
            paths.append(out / f"queue_{tracked.order_id}.png")
            ax.figure.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close("all")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--capture", type=Path, default=CAPTURE)
    parser.add_argument("--plots", type=Path, help="write PNG pictures to this directory")
    parser.add_argument("--quick", action="store_true", help="short ground-truth runs")
    args = parser.parse_args(argv)
    study = analyse(args.capture)
    report(study)
    ground_truth(args.quick)
    if args.plots is not None:
        for path in pictures(study, args.plots):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
