"""Both implementations' books give the analytics the same answers on the same stream."""

from __future__ import annotations

import os
from typing import Any

from bookengine.analytics import BookAnalytics, QueueChanged, level_stats
from bookengine.analytics.evaluate import SimStream
from bookengine.kraken.events import BookChanged

from .helpers import MS


def _run(impl_name: str) -> tuple[list[Any], list[Any], Any]:
    stream = SimStream(seed=31, step_ns=2 * MS)
    analytics = BookAnalytics(stream.session(impl_name))
    changes: list[Any] = []
    tracked = 0
    for recv, frame in stream.frames(1_500):
        for event in analytics.receive(frame, recv):
            if isinstance(event, QueueChanged):
                changes.append(event)
            elif (
                isinstance(event, BookChanged)
                and event.key.startswith("level3")
                and tracked < 5
                and recv % 7 == 0
            ):
                # Follow the newest order at each side's touch, a few times over the run.
                for side in ("bid", "ask"):
                    best = event.book.best_bid() if side == "bid" else event.book.best_ask()
                    if best is not None:
                        order_id = event.book.level_orders(side, best[0])[-1][0]
                        if order_id not in analytics.tracked:
                            analytics.track(order_id)
                            tracked += 1
    analytics.flush()
    decisions = [
        (
            c.change.order_id,
            c.change.orders_ahead,
            c.change.qty_ahead,
            c.change.front,
            c.label,
            c.ambiguous,
        )
        for c in analytics.classifications
    ]
    stats = level_stats(analytics.book("BTC/USD"), "bid", 10, stream.now_ns)
    return decisions, changes, {k: v.tolist() for k, v in stats.items()}


def test_compiled_and_reference_agree() -> None:
    names = ["python"] if os.environ.get("BOOKENGINE_PURE") == "1" else ["cython", "python"]
    runs = [_run(name) for name in names]
    decisions, changes, stats = runs[0]
    assert len(decisions) > 500 and changes
    for other in runs[1:]:
        assert other[0] == decisions
        assert other[1] == changes
        assert other[2] == stats
