"""Queue positions and tracked orders on tiny hand-made books (every number by hand).

The book: bids at 100.0 hold A 3, B 4, C 5, D 2 (queue order), 99.9 holds E 7; the ask 100.2
holds F 6. Mantissas: 100.0 -> 1000 (1 decimal), quantities whole units.
"""

from __future__ import annotations

from typing import Any

import pytest

from bookengine import Implementation
from bookengine.analytics import (
    BookAnalytics,
    OrderOutcome,
    QueueChanged,
    UnknownOrderError,
    queue_position,
)
from bookengine.kraken.events import BookChanged

from .helpers import MS, T0, ack, level3, order, session, trade


def _snapshot(t_ns: int = T0) -> bytes:
    return level3(
        "snapshot",
        [
            order("A", "100.0", "3"),
            order("B", "100.0", "4"),
            order("C", "100.0", "5"),
            order("D", "100.0", "2"),
            order("E", "99.9", "7"),
        ],
        [order("F", "100.2", "6")],
        t_ns,
    )


def _start(impl: Implementation, **kwargs: Any) -> BookAnalytics:
    analytics = BookAnalytics(session(impl.name), **kwargs)
    analytics.receive(ack("level3", 10), T0)
    events = analytics.receive(_snapshot(), T0)
    assert any(isinstance(e, BookChanged) for e in events)
    return analytics


def _of(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def test_queue_position_by_hand(impl: Implementation) -> None:
    analytics = _start(impl)
    book = analytics.book("TST/USD")
    info = queue_position(book, "C", now_ns=T0 + 5 * MS)
    assert info.side == "bid" and info.price == 1000 and info.qty == 5
    assert (info.orders_ahead, info.qty_ahead, info.qty_behind) == (2, 7, 2)
    assert (info.level_orders, info.level_qty, info.level_index) == (4, 14, 0)
    assert info.timestamp_ns == -1 and info.time_in_queue_ns == -1  # no order timestamps
    e = queue_position(book, "E")
    assert (e.level_index, e.orders_ahead, e.qty_ahead, e.qty_behind, e.level_qty) == (
        1,
        0,
        0,
        0,
        7,
    )
    f = queue_position(book, "F")
    assert (f.side, f.price, f.level_index) == ("ask", 1002, 0)
    with pytest.raises(UnknownOrderError, match="ZZZ"):
        queue_position(book, "ZZZ")
    with pytest.raises(UnknownOrderError):
        analytics.queue_position("ZZZ")
    with pytest.raises(UnknownOrderError):
        analytics.track("ZZZ")  # no symbol: it must rest somewhere
    assert analytics.queue_position("C") == queue_position(book, "C", T0)


def test_time_in_queue_uses_kraken_timestamp(impl: Implementation) -> None:
    analytics = BookAnalytics(session(impl.name))
    analytics.receive(ack("level3", 10), T0)
    entry = order("A", "100.0", "3")
    entry["timestamp"] = "2024-01-08T12:26:40.000000000Z"  # == T0
    analytics.receive(level3("snapshot", [entry], [], T0), T0 + 2 * MS)
    info = queue_position(analytics.book("TST/USD"), "A", now_ns=T0 + 250 * MS)
    assert info.timestamp_ns == T0 and info.time_in_queue_ns == 250 * MS
    tracked = analytics.track("A")
    assert tracked.entered_ns == T0
    assert tracked.last is not None and tracked.last.time_in_queue_ns == 2 * MS


def test_tracked_order_cancel_ahead_partial_fill_then_fill(impl: Implementation) -> None:
    """C (third in line) sees a cancel ahead, a partial fill ahead, then the sweep fills it."""
    analytics = _start(impl)
    tracked = analytics.track("C")
    first = analytics.receive(b'{"channel":"heartbeat"}', T0 + 1 * MS)
    (started,) = _of(first, QueueChanged)
    assert started.cause == "tracked"
    assert (started.orders_ahead, started.qty_ahead, started.qty_behind) == (2, 7, 2)

    # A cancels: nothing prints.
    t1 = T0 + 10 * MS
    events = analytics.receive(level3("update", [order("A", "100.0", "3", "delete")], [], t1), t1)
    (moved_up,) = _of(events, QueueChanged)
    assert (moved_up.orders_ahead, moved_up.qty_ahead, moved_up.level_qty) == (1, 4, 11)
    assert moved_up.cause == "book"

    # A sell of 1 takes part of B (the trade arrives first, on its own connection).
    t2 = T0 + 20 * MS
    analytics.receive(trade("sell", "100.0", "1", 1, t2), t2)
    events = analytics.receive(level3("update", [order("B", "100.0", "3", "modify")], [], t2), t2)
    (after_partial,) = _of(events, QueueChanged)
    assert (after_partial.orders_ahead, after_partial.qty_ahead) == (1, 3)

    # A sell of 8 takes B (3) then C (5): two trades, two deletes.
    t3 = T0 + 30 * MS
    analytics.receive(trade("sell", "100.0", "3", 2, t3), t3)
    analytics.receive(trade("sell", "100.0", "5", 3, t3), t3)
    events = analytics.receive(
        level3(
            "update",
            [order("B", "100.0", "3", "delete"), order("C", "100.0", "5", "delete")],
            [],
            t3,
        ),
        t3,
    )
    assert not _of(events, QueueChanged)
    assert tracked.status in ("leaving", "filled")  # decided once the trades are past
    events += analytics.flush()
    (outcome,) = _of(events, OrderOutcome)
    assert outcome.outcome == "filled" and outcome.final
    assert outcome.filled_qty == 5 and outcome.remaining_qty == 0
    assert not outcome.ambiguous
    assert tracked.status == "filled" and tracked.outcome == outcome
    assert tracked.cancelled_ahead_qty == 3  # A
    assert tracked.filled_ahead_qty == 1 + 3  # B's partial fill, then B
    history = tracked.history()
    assert history["qty_ahead_m"].tolist() == [7, 4, 3]  # exact mantissas
    assert history["orders_ahead"].tolist() == [2, 1, 1]
    assert history["qty_m"].tolist() == [5, 5, 5]
    assert history["qty_ahead_m"].dtype.name == "int64"
    scale = 10 ** analytics.book(tracked.symbol).qty_precision
    assert history["qty_ahead"].tolist() == [7 / scale, 4 / scale, 3 / scale]  # real units
    assert str(history["time"].dtype) == "datetime64[ns]"
    labels = {(c.change.order_id, c.label) for c in analytics.classifications}
    assert labels == {("A", "cancel"), ("B", "partial_fill"), ("B", "fill"), ("C", "fill")}


def test_outcomes_cancelled_moved_out_of_view(impl: Implementation) -> None:
    analytics = _start(impl)
    d = analytics.track("D")
    e = analytics.track("E")
    t1 = T0 + 10 * MS
    # D cancels; E is re-queued at 99.8 (Kraken: delete then add under the same id).
    events = analytics.receive(
        level3(
            "update",
            [
                order("D", "100.0", "2", "delete"),
                order("E", "99.9", "7", "delete"),
                order("E", "99.8", "7", "add"),
            ],
            [],
            t1,
        ),
        t1,
    )
    moved = [o for o in _of(events, OrderOutcome) if o.order_id == "E"]
    assert [(o.outcome, o.final) for o in moved] == [("moved", False)]
    # The first events are the track() starts, delivered with the next frame.
    assert [(q.order_id, q.cause) for q in _of(events, QueueChanged)][:2] == [
        ("D", "tracked"),
        ("E", "tracked"),
    ]
    (e_place,) = [q for q in _of(events, QueueChanged) if q.cause == "moved"]
    assert (e_place.price, e_place.cause, e_place.orders_ahead, e_place.level_qty) == (
        998,
        "moved",
        0,
        7,
    )
    assert e.active and e.price == 998
    events = analytics.flush()
    (d_out,) = _of(events, OrderOutcome)
    assert (d_out.order_id, d_out.outcome, d_out.final, d_out.filled_qty) == (
        "D",
        "cancelled",
        True,
        0,
    )
    assert d.status == "cancelled"
    requeue = [c for c in analytics.classifications if c.change.order_id == "E"]
    assert [c.label for c in requeue] == ["requeue"]


def test_out_of_view_when_level_leaves_the_depth(impl: Implementation) -> None:
    analytics = BookAnalytics(session(impl.name))
    analytics.receive(ack("level3", 2), T0)
    snapshot = level3(
        "snapshot", [order("A", "100.0", "3"), order("E", "99.9", "7")], [order("F", "100.2", "6")]
    )
    analytics.receive(snapshot, T0)
    tracked = analytics.track("E")
    t1 = T0 + 10 * MS
    # A better bid pushes 99.9 out of a depth-2 book: Kraken sends no delete for E.
    events = analytics.receive(level3("update", [order("G", "100.1", "1", "add")], [], t1), t1)
    (out,) = _of(events, OrderOutcome)
    assert (out.order_id, out.outcome, out.final) == ("E", "out_of_view", True)
    assert tracked.status == "out_of_view"


def test_pending_track_starts_when_the_order_is_added(impl: Implementation) -> None:
    analytics = _start(impl)
    tracked = analytics.track("NEW", symbol="TST/USD")
    assert tracked.status == "pending"
    t1 = T0 + 10 * MS
    events = analytics.receive(level3("update", [order("NEW", "100.0", "1", "add")], [], t1), t1)
    (started,) = _of(events, QueueChanged)
    assert (started.order_id, started.cause, started.orders_ahead, started.qty_ahead) == (
        "NEW",
        "tracked",
        4,
        14,
    )
    assert tracked.status == "resting"
    analytics.untrack("NEW")
    with pytest.raises(UnknownOrderError):
        analytics.untrack("NEW")


def test_refused_message_changes_nothing(impl: Implementation) -> None:
    analytics = _start(impl)
    analytics.track("C")
    analytics.receive(b'{"channel":"heartbeat"}', T0)
    t1 = T0 + 10 * MS
    # Deleting an unknown order makes the session refuse the message: no change is recorded.
    events = analytics.receive(
        level3(
            "update",
            [order("A", "100.0", "3", "delete"), order("X", "100.0", "1", "delete")],
            [],
            t1,
        ),
        t1,
    )
    assert not _of(events, QueueChanged)
    assert analytics.stats.refused_messages == 1
    assert analytics.classifier.pending == 0 and not analytics.flush()


def test_decision_waits_for_a_late_trade(impl: Implementation) -> None:
    """The trade connection lags: the delete waits ``trade_wait_s`` before being a cancel."""
    analytics = _start(impl, trade_wait_s=0.5)
    tracked = analytics.track("A")
    t1 = T0 + 10 * MS
    analytics.receive(level3("update", [order("A", "100.0", "3", "delete")], [], t1), t1)
    # 300 ms later: still undecided (the trade could still come).
    assert not _of(analytics.receive(b'{"channel":"heartbeat"}', t1 + 300 * MS), OrderOutcome)
    analytics.receive(trade("sell", "100.0", "3", 9, t1), t1 + 400 * MS)
    (outcome,) = _of(analytics.receive(b'{"channel":"heartbeat"}', t1 + 500 * MS), OrderOutcome)
    assert outcome.outcome == "filled" and tracked.filled_qty == 3


def test_no_trade_within_the_wait_is_a_cancel(impl: Implementation) -> None:
    analytics = _start(impl, trade_wait_s=0.5)
    analytics.track("A")
    t1 = T0 + 10 * MS
    analytics.receive(level3("update", [order("A", "100.0", "3", "delete")], [], t1), t1)
    assert not _of(analytics.receive(b'{"channel":"heartbeat"}', t1 + 499 * MS), OrderOutcome)
    (outcome,) = _of(analytics.receive(b'{"channel":"heartbeat"}', t1 + 500 * MS), OrderOutcome)
    assert outcome.outcome == "cancelled"


def test_replay_of_a_capture_tracks_the_same(impl: Implementation, tmp_path: Any) -> None:
    """The same stream from a capture file (through bookengine.replay) gives the same outcome."""
    t1, t2 = T0 + 10 * MS, T0 + 20 * MS
    frames = [
        (T0, ack("level3", 10)),
        (T0, _snapshot()),
        (t1, trade("sell", "100.0", "3", 1, t1)),
        (t1, level3("update", [order("A", "100.0", "3", "delete")], [], t1)),
        (t2, level3("update", [order("B", "100.0", "4", "delete")], [], t2)),
    ]
    path = tmp_path / "tiny.jsonl"
    path.write_bytes(b"".join(b"%d\t%s\n" % (t, f) for t, f in frames))
    analytics = BookAnalytics()
    events = list(analytics.replay([path], session(impl.name)))
    assert _of(events, BookChanged)
    labels = [(c.change.order_id, c.label) for c in analytics.classifications]
    assert labels == [("A", "fill"), ("B", "cancel")]
