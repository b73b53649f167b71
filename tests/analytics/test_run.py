"""``BookAnalytics.run``: the compiled trade join decides exactly as the event path does.

The event path (``BookAnalytics.replay``, the session's events through ``consume``) is the
reference; ``run`` hands every level3 message and trade straight from the line reader to the
compiled join. Every stream below is replayed both ways and compared field by field: every
decision (with its change, place, front flag, trade ids, reason), the counters, the flow
windows and rates, the books and the classifications table. The streams come from the
simulator with trade connections that lag, jitter and lose frames, with and without receive
times, one and two symbols.
"""

from __future__ import annotations

import heapq
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bookengine._impl import implementation
from bookengine.analytics import BookAnalytics
from bookengine.analytics.classify import LABELS
from bookengine.analytics.evaluate import SimStream
from bookengine.kraken.events import BookChanged, BookInvalid, ChecksumMismatch
from bookengine.kraken.session import KrakenSession
from bookengine.replay import Replayer

from .helpers import MS

LABEL_WORDS = ("fill", "partial_fill", "cancel", "reduce", "requeue")

COMPILED = os.environ.get("BOOKENGINE_PURE") != "1" and implementation().TradeJoin is not None
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "sim_capture.jsonl.gz"


def write_capture(
    path: Path,
    symbols: dict[str, int],
    steps: int,
    *,
    recv_times: bool = True,
    **stream_options: Any,
) -> Path:
    """The simulator's frames of ``symbols`` (symbol -> seed), merged in receive order."""
    streams = [SimStream(symbol, seed, **stream_options) for symbol, seed in symbols.items()]
    merged = heapq.merge(*(s.frames(steps) for s in streams), key=lambda item: item[0])
    with path.open("w") as out:
        for recv, frame in merged:
            out.write(f"{recv}\t{frame}\n" if recv_times else f"{frame}\n")
    return path


def by_events(path: Path, **options: Any) -> BookAnalytics:
    analytics = BookAnalytics(**options)
    events = list(analytics.replay([path]))
    assert not [e for e in events if isinstance(e, ChecksumMismatch | BookInvalid)]
    return analytics


def assert_same(events: BookAnalytics, joined: BookAnalytics) -> None:
    """Everything the two paths leave is equal (``frames`` aside: the event path counts the
    calls that carried events, a run the frames read)."""
    assert joined.classifier.stats == events.classifier.stats
    assert joined.classifier.stats.decided > 0
    assert joined.classifications == events.classifications
    assert joined.classifier.pending == events.classifier.pending == 0
    for name in ("level3_messages", "trades", "changes", "refused_messages", "executions"):
        assert getattr(joined.stats, name) == getattr(events.stats, name), name
    assert set(joined._flows) == set(events._flows)
    for symbol, flow in events._flows.items():
        other = joined.flow(symbol)
        assert other.window() == flow.window(), symbol
        assert other.span_s == flow.span_s
        for side in ("bid", "ask"):
            for level in range(3):
                assert other.rates(side, level) == flow.rates(side, level)
    assert set(joined._books) == set(events._books)
    for symbol, book in events._books.items():
        assert joined.book(symbol).checksum() == book.checksum()
    if events.keep_classifications:
        mine, theirs = joined.classifications_table(), events.classifications_table()
        assert list(mine.columns) == list(theirs.columns)
        for name in theirs.columns:
            np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name, strict=True)


def assert_took_the_join(analytics: BookAnalytics) -> None:
    """Compiled, a run takes the join; on the reference, the event path (it has no join)."""
    if COMPILED:
        assert analytics.run_path == "join"
    else:
        assert analytics.run_path == "events: the pure-Python reference runs"


def run(path: Path, **options: Any) -> BookAnalytics:
    analytics = BookAnalytics(**options).run([path])
    assert_took_the_join(analytics)
    return analytics


@pytest.mark.parametrize(
    ("seed", "options"),
    [
        (3, {}),
        (4, {"trade_delay_ns": 30 * MS, "trade_jitter_ns": 60 * MS}),
        (5, {"trade_delay_ns": 5 * MS, "trade_jitter_ns": 900 * MS, "trade_loss": 0.1}),
        (6, {"step_ns": 1 * MS, "trade_jitter_ns": 3 * MS, "depth": 100, "target_levels": 150}),
    ],
)
def test_run_decides_as_the_event_path(tmp_path: Path, seed: int, options: Any) -> None:
    path = write_capture(tmp_path / "l3.jsonl", {"BTC/USD": seed}, 2_500, **options)
    assert_same(by_events(path), run(path))


def test_two_symbols_interleaved(tmp_path: Path) -> None:
    path = write_capture(
        tmp_path / "two.jsonl",
        {"BTC/USD": 11, "ETH/USD": 12},
        2_000,
        trade_delay_ns=20 * MS,
        trade_jitter_ns=40 * MS,
    )
    events, joined = by_events(path), run(path)
    assert_same(events, joined)
    assert {c.change.symbol for c in joined.classifications} == {"BTC/USD", "ETH/USD"}


def test_without_receive_times(tmp_path: Path) -> None:
    # Raw frames: every receive time is -1, so only the trade stream's watermark (and the end
    # of the replay) decides; both paths must agree on that too.
    path = write_capture(
        tmp_path / "raw.jsonl", {"BTC/USD": 21}, 2_000, recv_times=False, trade_jitter_ns=20 * MS
    )
    events, joined = by_events(path), run(path)
    assert_same(events, joined)
    assert {c.change.recv_ts_ns for c in joined.classifications} == {-1}


def test_precisions_and_symbols_given(tmp_path: Path) -> None:
    """A capture without the instrument channel replays with its precisions given, and a
    symbol filter skips the other symbol; both paths take the same options."""
    path = write_capture(
        tmp_path / "two.jsonl", {"BTC/USD": 81, "ETH/USD": 82}, 1_500, trade_jitter_ns=30 * MS
    )
    bare = tmp_path / "bare.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    bare.write_bytes(b"".join(line for line in lines if b'"channel":"instrument"' not in line))
    precisions = {**SimStream("BTC/USD").precisions, **SimStream("ETH/USD").precisions}
    events = BookAnalytics()
    for _ in events.replay([bare], precisions=precisions, symbols=["ETH/USD"]):
        pass
    joined = BookAnalytics().run([bare], precisions=precisions, symbols=["ETH/USD"])
    assert_took_the_join(joined)
    assert_same(events, joined)
    assert {c.change.symbol for c in joined.classifications} == {"ETH/USD"}
    # Without the precisions nothing can be priced: no decision either way.
    assert BookAnalytics().run([bare]).classifier.stats.decided == 0


def test_counters_only(tmp_path: Path) -> None:
    path = write_capture(tmp_path / "l3.jsonl", {"BTC/USD": 31}, 1_500, trade_jitter_ns=50 * MS)
    events = by_events(path, keep_classifications=False)
    joined = run(path, keep_classifications=False)
    assert_same(events, joined)
    assert joined.classifications == [] and len(joined.classifications_table()) == 0


def test_decisions_do_not_depend_on_how_frames_are_grouped(tmp_path: Path) -> None:
    """Live (one ``receive`` per frame, heartbeats included) decides as a replay does: each
    frame's decisions are made at its receive time from what came before it."""
    stream_options = {"trade_delay_ns": 10 * MS, "trade_jitter_ns": 300 * MS}
    path = write_capture(tmp_path / "l3.jsonl", {"BTC/USD": 41}, 2_000, **stream_options)
    live = BookAnalytics(KrakenSession(level3_effects=True))
    heartbeat = b'{"channel":"heartbeat"}'
    lines = [line.split(b"\t", 1) for line in path.read_bytes().splitlines()]
    for number, (recv, frame) in enumerate(lines):
        live.receive(frame, int(recv))
        if number % 3 == 0 and number + 1 < len(lines):
            # A poll between two frames, at a time in between.
            live.receive(heartbeat, (int(recv) + int(lines[number + 1][0])) // 2)
    live.flush()
    replayed = by_events(path)
    assert live.classifications == replayed.classifications
    assert live.classifier.stats == replayed.classifier.stats


def test_own_orders_start_the_run_over_on_the_event_path() -> None:
    # The example capture carries the private executions channel: its own orders are followed
    # (QueueChanged, outcomes), which needs Python per message.
    joined = BookAnalytics().run([EXAMPLE])
    assert joined.run_path.startswith("events: ")
    events = by_events(EXAMPLE)
    assert_same(events, joined)
    assert any(t.own and t.outcome is not None for t in joined.tracked.values())
    # Without following them the join takes it, and decides alike.
    quiet = run(EXAMPLE, track_own_orders=False)
    assert_same(by_events(EXAMPLE, track_own_orders=False), quiet)
    assert quiet.own_orders and not quiet.tracked


def test_event_consumers_take_the_event_path(tmp_path: Path) -> None:
    path = write_capture(tmp_path / "l3.jsonl", {"BTC/USD": 51}, 300)
    seen: list[Any] = []
    analytics = BookAnalytics(on_event=seen.append).run([path])
    given = BookAnalytics().run([path], KrakenSession())
    again = BookAnalytics()
    again.run([path])
    again.run([path])
    assert analytics.classifications and given.classifications == analytics.classifications
    paths = [analytics.run_path, given.run_path, again.run_path]
    if COMPILED:
        assert paths == [
            "events: on_event wants every event",
            "events: a session was given",
            "events: this analytics has consumed a stream or follows orders already",
        ]
    else:
        assert paths == ["events: the pure-Python reference runs"] * 3


def test_forgotten_prices_change_nothing(tmp_path: Path) -> None:
    """The join forgets prices with nothing left at them (memory); with no slack it does so at
    every sweep, and still decides as the event path."""
    join_type = implementation().TradeJoin
    if not COMPILED:
        assert join_type is None
        return
    assert join_type is not None
    path = write_capture(
        tmp_path / "l3.jsonl", {"BTC/USD": 71, "ETH/USD": 72}, 2_000, trade_jitter_ns=30 * MS
    )
    events = by_events(path)
    join = join_type(50 * MS, 500 * MS, 2_000 * MS, 60_000 * MS, True, bucket_slack=0)
    run = Replayer([path], progress=False).new_pass(emit=False, trades=False, level3_effects=True)
    run.session.set_sink(join)
    for _, lines_events in run.steps():
        for event in lines_events:  # the session's own level3 messages (the snapshots)
            if isinstance(event, BookChanged) and event.key.startswith("level3:"):
                join.level3(event.symbol, event.book, event.recv_ts_ns, event.is_snapshot)
    join.flush()
    assert join.buckets_freed > 100
    columns = join.columns()
    assert list(columns["order_id"]) == [c.change.order_id for c in events.classifications]
    labels = [LABEL_WORDS[code] for code in columns["label"]]
    assert labels == [c.label for c in events.classifications]
    assert [tuple(ids) for ids in columns["trade_ids"]] == [
        c.trade_ids for c in events.classifications
    ]


def test_the_join_refuses_bad_windows() -> None:
    join_type = implementation().TradeJoin
    if not COMPILED:
        assert join_type is None  # the reference's analytics are the event path
        return
    assert join_type is not None
    with pytest.raises(ValueError, match="windows must be >= 0"):
        join_type(-1, 0, 0, 1)
    with pytest.raises(ValueError, match="flow_window_ns must be > 0"):
        join_type(0, 0, 0, 0)
    with pytest.raises(ValueError, match="bucket_slack must be >= 0"):
        join_type(0, 0, 0, 1, bucket_slack=-1)
    # Its codes are the event path's words.
    from bookengine._core import tradejoin

    assert tradejoin.LABEL_WORDS == LABELS == LABEL_WORDS


def test_the_pure_reader_takes_no_compiled_sink() -> None:
    session = KrakenSession(implementation_name="python")
    session.set_sink(None)
    with pytest.raises(TypeError, match="pure-Python line reader"):
        session.set_sink(object())


def test_a_damaged_capture_is_reported_not_passed_over(tmp_path: Path) -> None:
    """A capture cut short (an interrupted recording) still gives its decisions, and
    ``on_problem`` says what was lost, on both paths."""
    path = write_capture(tmp_path / "l3.jsonl", {"BTC/USD": 91}, 1_500, trade_jitter_ns=30 * MS)
    data = path.read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(data[: len(data) * 2 // 3])  # ends inside a line
    heard: list[str] = []
    joined = BookAnalytics().run([cut], on_problem=lambda _, message: heard.append(message))
    assert_took_the_join(joined)
    assert any("torn final line" in message for message in heard)
    assert joined.classifier.stats.decided > 0
    events = BookAnalytics()
    told: list[str] = []
    for _ in events.replay([cut], on_problem=lambda _, message: told.append(message)):
        pass
    assert told == heard
    assert joined.classifications == events.classifications
