"""Analytics and the exporters read the session's events only: every frame is read once.

The pure-Python scanner and trade decoder are counted over a replay: analytics and the L3/trade
export must add no call to what the session alone makes (one scan per frame).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bookengine._reference import scan
from bookengine.analytics import BookAnalytics
from bookengine.export import collect
from bookengine.kraken import frames
from bookengine.replay import Replayer

from .helpers import MS, PRECISIONS, T0, ack, level3, order, session, trade


def _capture(path: Path) -> Path:
    t1, t2, t3 = T0 + 10 * MS, T0 + 20 * MS, T0 + 30 * MS
    snapshot = level3(
        "snapshot",
        [order("A", "100.0", "3"), order("B", "100.0", "4"), order("C", "99.9", "7")],
        [order("F", "100.2", "6")],
        T0,
    )
    lines = [
        (T0, ack("level3", 10)),
        (T0, snapshot),
        (t1, trade("sell", "100.0", "3", 1, t1)),
        (t1, level3("update", [order("A", "100.0", "3", "delete")], [], t1)),
        (t2, b'{"channel":"heartbeat"}'),
        (t2, level3("update", [order("B", "100.0", "1", "modify")], [], t2)),
        (t3, level3("update", [order("C", "99.9", "7", "delete")], [], t3)),
    ]
    path.write_bytes(b"".join(b"%d\t%s\n" % (t, f) for t, f in lines))
    return path


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Calls of the pure-Python frame scanner and trade decoder."""
    seen = {"scan": 0, "decode_trades": 0}
    original_scan = scan.FrameScanner.scan
    original_decode = frames.decode_trades

    def counted_scan(self: Any, data: Any) -> Any:
        seen["scan"] += 1
        return original_scan(self, data)

    def counted_decode(*args: Any, **kwargs: Any) -> Any:
        seen["decode_trades"] += 1
        return original_decode(*args, **kwargs)

    monkeypatch.setattr(scan.FrameScanner, "scan", counted_scan)
    monkeypatch.setattr(frames, "decode_trades", counted_decode)
    return seen


def _plain_pass(path: Path, counts: dict[str, int]) -> dict[str, int]:
    replayer = Replayer([path], precisions=PRECISIONS, implementation_name="python")
    for _ in replayer.records():
        pass
    result = dict(counts)
    for name in counts:
        counts[name] = 0
    return result


def test_analytics_over_a_replay_reads_no_frame(tmp_path: Path, counts: dict[str, int]) -> None:
    path = _capture(tmp_path / "l3.jsonl")
    plain = _plain_pass(path, counts)
    # The session reads each frame once: the five book and control frames through the scanner,
    # the trade frame and the heartbeat by the line reader itself (no scanner, no decoder).
    assert plain == {"scan": 5, "decode_trades": 0}
    analytics = BookAnalytics()
    list(analytics.replay([path], session("python")))
    assert counts == plain
    labels = [(c.change.order_id, c.label) for c in analytics.classifications]
    assert labels == [("A", "fill"), ("B", "reduce"), ("C", "cancel")]
    assert analytics.stats.trades == 1 and analytics.stats.level3_messages == 4


def test_export_reads_no_frame(tmp_path: Path, counts: dict[str, int]) -> None:
    path = _capture(tmp_path / "l3.jsonl")
    plain = _plain_pass(path, counts)
    replayer = Replayer([path], precisions=PRECISIONS, implementation_name="python")
    tables, trades = collect(replayer, levels=2)
    assert counts == plain
    (table,) = tables.values()
    columns = table.columns
    assert columns["event"].tolist() == ["add"] * 4 + ["delete", "modify", "delete"]
    assert columns["origin"].tolist() == ["snapshot"] * 4 + ["wire"] * 3
    assert columns["prev_qty"].tolist()[4:] == [3, 4, 7]
    assert columns["execution"].tolist()[4:] == [True, False, False]
    (trade_table,) = trades.values()
    assert trade_table.columns["trade_id"].tolist() == [1]


def test_places_are_before_the_message() -> None:
    """Effects give each entry's place just before it; the changes keep the place before the
    whole message (what the ``front`` flag and the queue attribution are defined on)."""
    for name in ("cython", "python"):
        analytics = BookAnalytics(session(name))
        analytics.receive(ack("level3", 10), T0)
        snapshot = level3(
            "snapshot",
            [order("A", "100.0", "3"), order("B", "100.0", "4"), order("C", "100.0", "5")],
            [order("F", "100.2", "6")],
            T0,
        )
        analytics.receive(snapshot, T0)
        t1 = T0 + 10 * MS
        # A leaves, C is reduced while B is still ahead of it, then B leaves: a sweep.
        entries = [
            order("A", "100.0", "3", "delete"),
            order("C", "100.0", "2", "modify"),
            order("B", "100.0", "4", "delete"),
        ]
        analytics.receive(level3("update", entries, [], t1), t1)
        analytics.flush()
        changes = {c.change.order_id: c.change for c in analytics.classifications}
        assert [(changes[i].orders_ahead, changes[i].qty_ahead) for i in "ACB"] == [
            (0, 0),
            (2, 7),
            (1, 3),
        ], name
        assert all(changes[i].front for i in "ACB"), name
