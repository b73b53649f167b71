"""Replayer: paced events, book_at against a full replay, sampling, symbols, progress."""

from __future__ import annotations

import asyncio
import io
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bookengine import Implementation
from bookengine.capture import CaptureReader
from bookengine.kraken.events import BookChanged, Event
from bookengine.replay import Replayer, replay

from .helpers import Recording

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def book_state(book: Any) -> tuple[Any, ...]:
    """Everything that identifies a book's content (orders and queue order for level3)."""
    if book is None:
        return (None,)
    state: tuple[Any, ...] = (book.bids(), book.asks(), book.checksum(), book.depth)
    if hasattr(book, "orders_arrays"):
        columns = book.orders_arrays(order_ids=True)
        state += tuple(columns[name].tolist() for name in sorted(columns))
    return state


def reference_at(
    paths: list[Path], times: list[int], implementation_name: str
) -> dict[int, dict[str, tuple[Any, ...]]]:
    """Every book's content as of each time, from a frame-by-frame replay (the oracle).

    Independent of the line reader's batches: each frame goes to ``KrakenSession.receive``.
    """
    pending = sorted(times)
    out: dict[int, dict[str, tuple[Any, ...]]] = {}
    replayer = Replayer(paths, implementation_name=implementation_name, progress=False)
    session = replayer.session

    def take(t: int) -> None:
        out[t] = {k: book_state(s.book) for k, s in session.books.items()}

    last = -1
    for record in CaptureReader(paths, kinds=("frame", "checkpoint")):
        ts = record.recv_ts_ns if record.recv_ts_ns >= 0 else last
        last = ts
        while pending and ts > pending[0]:  # before the record is applied: the state as of t
            take(pending.pop(0))
        if record.kind == "checkpoint":
            replayer._apply_checkpoint(record, session)
        else:
            session.receive(record.frame, ts)
    for t in pending:
        take(t)
    return out


def test_book_at_equals_a_replay_stopped_at_t(recording: Recording, impl: Implementation) -> None:
    paths = recording.segments
    stamps = [r.recv_ts_ns for r, _ in Replayer(paths, progress=False).records()]
    rng = random.Random(5)
    times = [stamps[0] - 1, stamps[-1] + 1, *rng.sample(stamps, 12)]
    times += [t - 1 for t in rng.sample(stamps, 4)]
    expected = reference_at(paths, times, impl.name)
    replayer = Replayer(
        paths, implementation_name=impl.name, progress=False, checkpoint_every_s=0.25
    )
    # Forward in time first (the cursor and its checkpoints), then random order (restarts).
    order = sorted(times) + rng.sample(times, len(times))
    for t in order:
        for key in ("book:BTC/USD", "book:ETH/USD", "level3:BTC/USD"):
            got = replayer.book_at(t, key)
            assert book_state(got) == expected[t].get(key, (None,)), (t, key)
    assert len(replayer._checkpoints) >= 4  # checkpoints were taken and used


def test_book_at_returns_an_independent_copy(plain_recording: Path) -> None:
    replayer = Replayer([plain_recording], progress=False)
    stamps = [r.recv_ts_ns for r, _ in replayer.records()]
    early = replayer.book_at(stamps[len(stamps) // 3], "book:BTC/USD")
    before = book_state(early)
    replayer.book_at(stamps[-1], "book:BTC/USD")
    assert book_state(early) == before
    early._check()


def test_book_at_without_timestamps_on_bundled_fixture() -> None:
    # Bare frames carry no receive time: the book "as of" any time is the final one.
    replayer = Replayer([DATA / "v2-book-btcusd-depth10.jsonl"], precisions={"BTC/USD": (1, 8)})
    final = replay([DATA / "v2-book-btcusd-depth10.jsonl"], precisions={"BTC/USD": (1, 8)})
    book = replayer.book_at(10**19, "book:BTC/USD")
    assert book_state(book) == book_state(final.books["book:BTC/USD"].book)


def synthetic_capture(path: Path, span_s: float = 1.0, n: int = 41) -> list[int]:
    """Heartbeat frames evenly spread over ``span_s`` seconds of receive time."""
    start = 1_700_000_000_000_000_000
    stamps = [start + int(i * span_s * 1e9 / (n - 1)) for i in range(n)]
    path.write_bytes(b"".join(b'%d\t{"channel":"heartbeat"}\n' % t for t in stamps))
    return stamps


def test_paced_replay_takes_span_over_speed(tmp_path: Path) -> None:
    path = tmp_path / "paced.jsonl"
    synthetic_capture(path, span_s=1.0)
    replayer = Replayer([path], progress=False)
    started = time.perf_counter()
    count = sum(1 for _ in replayer.records(pace=10.0))
    elapsed = time.perf_counter() - started
    assert count == 0  # heartbeats produce no events, but their times still pace the replay
    assert replayer.result.frames == 41
    assert 0.09 <= elapsed < 0.6, elapsed
    started = time.perf_counter()
    list(replayer.records())
    assert time.perf_counter() - started < 0.09  # full speed is not paced


def test_async_paced_replay_leaves_the_loop_free(tmp_path: Path) -> None:
    path = tmp_path / "paced.jsonl"
    synthetic_capture(path, span_s=0.5)

    async def main() -> tuple[float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.ensure_future(ticker())
        started = time.perf_counter()
        events: list[Event] = [e async for e in Replayer([path], progress=False).aevents(5.0)]
        elapsed = time.perf_counter() - started
        task.cancel()
        assert events == []  # heartbeats produce no events
        return elapsed, ticks

    elapsed, ticks = asyncio.run(main())
    assert 0.09 <= elapsed < 0.6, elapsed
    assert ticks >= 5


def test_bad_pace_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    synthetic_capture(path)
    with pytest.raises(ValueError, match="pace must be > 0"):
        list(Replayer([path]).events(pace=0))


def test_sample_matches_book_at_on_the_grid(recording: Recording, impl: Implementation) -> None:
    every = 100_000_000
    replayer = Replayer(recording.segments, implementation_name=impl.name, progress=False)
    keys = ["book:BTC/USD", "level3:BTC/USD", "book:NOPE/USD"]
    samples = replayer.sample(every, keys, levels=5)
    n_times = len(samples) // len(keys)
    assert len(samples) == n_times * len(keys) and n_times >= 20
    assert samples.bid_price.shape == (len(samples), 5) and samples.bid_price.dtype == np.int64
    times = samples.time_ns[:: len(keys)]
    assert (np.diff(times) == every).all() and (times % every == 0).all()
    oracle = Replayer(recording.segments, implementation_name=impl.name, progress=False)
    for row in range(len(samples)):
        key, t = samples.key[row], int(samples.time_ns[row])
        book = oracle.book_at(t, key)
        if book is None:
            assert not samples.valid[row] and samples.bid_qty[row].sum() == 0
            continue
        bids, asks = book.bids(5), book.asks(5)
        assert samples.valid[row]
        got_bids = [
            (int(p), int(q))
            for p, q in zip(samples.bid_price[row], samples.bid_qty[row], strict=True)
        ]
        got_asks = [
            (int(p), int(q))
            for p, q in zip(samples.ask_price[row], samples.ask_qty[row], strict=True)
        ]
        assert got_bids[: len(bids)] == bids and got_asks[: len(asks)] == asks
        assert all(q == 0 for _, q in got_bids[len(bids) :] + got_asks[len(asks) :])
    assert samples.scales["book:BTC/USD"] == (1, 8)
    frame = samples.for_key("book:BTC/USD").to_pandas()
    assert list(frame.columns[:10]) == [
        "time",
        "time_ns",
        "symbol",
        "key",
        "valid",
        "is_snapshot",
        "price_scale",
        "qty_scale",
        "bid_price_1",
        "bid_qty_1",
    ]
    assert frame["bid_price_1"].dtype == np.float64 and frame.attrs["scales"]
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    assert (frame["symbol"] == "BTC/USD").all()
    present = frame["bid_qty_1_m"].notna()
    assert (frame["bid_price_1"][present] * 10 == frame["bid_price_1_m"][present]).all()


def test_snapshots_follow_every_message(recording: Recording) -> None:
    replayer = Replayer(recording.segments, progress=False)
    changes = [
        (record.recv_ts_ns, event.key, event.book.bids(3), event.book.asks(3))
        for record, events in replayer.records()
        for event in events
        if isinstance(event, BookChanged)
    ]
    samples = replayer.snapshots(levels=3)
    assert len(samples) == len(changes)
    for row, (t, key, bids, asks) in enumerate(changes):
        assert (int(samples.time_ns[row]), samples.key[row]) == (t, key)
        assert samples.bid_price[row, : len(bids)].tolist() == [p for p, _ in bids]
        assert samples.ask_qty[row, : len(asks)].tolist() == [q for _, q in asks]
    assert samples.is_snapshot.sum() == 3  # one snapshot per book: no resync happened


def test_symbols_filter_keeps_only_those_books(recording: Recording) -> None:
    full = replay(recording.segments)
    only = Replayer(recording.segments, symbols=["ETH/USD"], progress=False).run()
    assert set(only.books) == {"book:ETH/USD"}
    assert book_state(only.books["book:ETH/USD"].book) == book_state(
        full.books["book:ETH/USD"].book
    )
    assert only.frames < full.frames


def test_torn_final_line_is_reported_not_counted(tmp_path: Path) -> None:
    source = (DATA / "v2-book-btcusd-depth10.jsonl").read_bytes()
    path = tmp_path / "torn.jsonl"
    path.write_bytes(source[: len(source) - 40].rstrip(b"\n")[:-5])
    problems: list[tuple[int, str]] = []
    result = replay(
        [path],
        precisions={"BTC/USD": (1, 8)},
        on_problem=lambda record, message: problems.append((record.line, message)),
    )
    lines = source[: len(source) - 40].count(b"\n")
    assert result.ok and result.bad_frames == 0
    assert problems == [(lines + 1, problems[0][1])]
    assert "torn final line ignored" in problems[0][1]
    assert [str(n) for n in result.notes] == [f"{path}:{lines + 1}: {problems[0][1]}"]


def test_progress_bar_goes_to_stderr_only_when_asked(
    plain_recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    Replayer([plain_recording]).run()  # not a terminal: no bar
    assert err.getvalue() == ""
    Replayer([plain_recording], progress=True).run()
    text = err.getvalue()
    assert "100.0%" in text and "frames" in text and text.endswith("\n")


# -- the bulk path of run() ----------------------------------------------------------------------


def _run_both(paths: list[Path], **options: Any) -> tuple[Any, ...]:
    """``run()`` (books applied without events), ``records()`` (an event per message) and a
    frame-by-frame oracle (``KrakenSession.receive`` per capture line): summaries, problems,
    books, counts."""
    outcomes = []
    for way in ("run", "records", "frames"):
        problems: list[tuple[str, int, str]] = []
        replayer = Replayer(
            paths,
            progress=False,
            on_problem=lambda r, m, out=problems: out.append((Path(r.path).name, r.line, m)),
            **options,
        )
        if way == "run":
            result = replayer.run()
        elif way == "records":
            for _ in replayer.records():
                pass
            result = replayer.result
        else:
            result = _frame_by_frame(replayer, paths)
        books = {k: (book_state(s.book), s.last_recv_ts_ns) for k, s in result.books.items()}
        outcomes.append(
            (
                result.summary(),
                sorted(problems),
                books,
                result.checkpoints_applied,
                result.sent,
                sorted(str(note) for note in result.notes),
                replayer.session.fast_path_frames > 0,
            )
        )
    return tuple(outcomes)


def _frame_by_frame(replayer: Replayer, paths: list[Path]) -> Any:
    """The oracle: every frame of the captures through ``session.receive``, one at a time."""
    from bookengine.capture import CaptureReader
    from bookengine.replay import ReplayResult

    session = replayer.session
    reader = CaptureReader(paths, kinds=("frame", "checkpoint", "torn"))
    last = -1
    frames = bad = applied = 0
    notes_seen = 0
    for record in reader:
        for note in reader.report.notes[notes_seen:]:
            replayer.on_problem(record, note.message)  # type: ignore[misc]
        notes_seen = len(reader.report.notes)
        if record.kind == "torn":
            continue
        ts = record.recv_ts_ns if record.recv_ts_ns >= 0 else last
        last = ts
        if record.kind == "checkpoint":
            events = replayer._apply_checkpoint(record, session)
            applied += any(isinstance(e, BookChanged) for e in events)
            continue
        frames += 1
        # Problems are reported as the Replayer reports them (the reading is what differs).
        bad += replayer._report(record, session.receive(record.frame, ts))
    for note in reader.report.notes[notes_seen:]:
        replayer.on_problem(record, note.message)  # type: ignore[misc]
    report = reader.report
    return ReplayResult(
        frames,
        bad,
        session.books,
        list(report.notes),
        report.sent,
        applied,
        report.headers,
        mismatches=list(replayer.mismatches),
    )


def test_bulk_run_equals_record_by_record_on_a_recording(
    recording: Recording, plain_recording: Path, impl: Implementation
) -> None:
    for paths in (recording.segments, [plain_recording]):
        bulk, records, frames = _run_both(paths, implementation_name=impl.name)
        assert bulk[:-1] == records[:-1] == frames[:-1]
        assert bulk[-1] and records[-1]  # the line reader itself applied book frames


def test_bulk_run_equals_record_by_record_through_trouble(tmp_path: Path) -> None:
    """Lines without times, other time forms, sent requests, comments, garbage, a checksum
    mismatch, a crossed book, a resnapshot, blank lines, CRLF and a torn final line."""
    v2 = (DATA / "v2-book-btcusd-depth10.jsonl").read_bytes().splitlines()
    v1 = (DATA / "v1-book-xbtusd-depth10.jsonl").read_bytes().splitlines()
    instruments = (DATA / "v2-instrument-snapshot.jsonl").read_bytes().splitlines()
    base = 1_690_000_000_000_000_000
    lines = [b"# a comment", b"%d\t%s" % (base, instruments[0])]
    for index, frame in enumerate(v2):
        stamp = base + 1000 * index
        if index % 11 == 5:
            lines.append(frame)  # no time: takes the previous line's
        elif index % 13 == 7:
            lines.append(b"%d.%09d\t%s" % (stamp // 10**9, stamp % 10**9, frame))
        else:
            lines.append(b"%d\t%s" % (stamp, frame))
        if index < len(v1) and index % 2:
            lines.append(b"%d\t%s" % (stamp, v1[index]))
        if index == 40:
            lines.append(b'%d\t>{"method":"ping","req_id":7}' % stamp)
            lines.append(b"")
            lines.append(b"%d\t" % stamp)
            lines.append(b"   ")
        if index == 60:
            lines.append(b"%d\t%s" % (stamp, v2[61].replace(b'"checksum":', b'"checksum":1')))
        if index == 80:
            lines.append(b'%d\t{"channel":"book","type":"update","data":[{"symbol"' % stamp)
            lines.append(b"%d\t%s" % (stamp, v2[0]))
        if index == 120:
            lines.append(b"99999999999999999999\t%s" % frame)  # beyond int64: a bad prefix
    text = b"\n".join(lines).replace(b"\n", b"\r\n", 30) + b"\n" + v2[5][:40]
    path = tmp_path / "trouble.jsonl"
    path.write_bytes(text)
    bulk, records, frames = _run_both([path])
    assert bulk[:-1] == records[:-1] == frames[:-1]
    assert bulk[-1]
    summary, problems = bulk[0], bulk[1]
    assert summary["bad_frames"] >= 2 and any("checksum mismatch" in m for _, _, m in problems)
    assert any("torn final line" in m for _, _, m in problems)
