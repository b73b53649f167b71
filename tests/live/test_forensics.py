"""Mismatch forensics (``bookengine.kraken.forensics``): the likely cause of a checksum mismatch
is found by re-checking the book, and ``replay`` names it in one line and in its JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bookengine.capture import CHECKPOINT_PREFIX, session_checkpoint
from bookengine.instruments import Instruments
from bookengine.kraken import forensics
from bookengine.kraken.events import ChecksumMismatch
from bookengine.kraken.session import KrakenSession
from bookengine.replay import replay

ROOT = Path(__file__).parent.parent.parent
DATA = ROOT / "tests" / "data"
CAPTURE = DATA / "v2-book-btcusd-depth10.jsonl"
INSTRUMENTS = DATA / "v2-instrument-snapshot.jsonl"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "bookengine", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_wrong_price_precision_is_named() -> None:
    result = cli("replay", str(CAPTURE), "--precision", "BTC/USD=2/8", "--json")
    assert result.returncode == 1
    problems = result.stderr.strip().splitlines()
    assert len(problems) == 1, result.stderr
    assert "likely cause: price precision is 1, not 2" in problems[0]
    summary = json.loads(result.stdout)
    book = summary["books"]["book:BTC/USD"]
    assert book["checksum_mismatches"] == 1
    assert book["mismatches"][0]["likely_cause"] == "price precision is 1, not 2"
    # every frame after the failed snapshot was skipped (the capture has one snapshot)
    assert book["skipped_frames"] == summary["skipped_frames"] == 509


def test_wrong_qty_precision_is_named() -> None:
    result = replay([CAPTURE], precisions={"BTC/USD": (1, 9)})
    assert not result.ok
    assert result.mismatches[0].likely_cause == "qty precision is 8, not 9"


def test_mismatch_carries_top_levels_and_frame() -> None:
    result = replay([CAPTURE], precisions={"BTC/USD": (2, 8)})
    (event,) = result.mismatches
    assert isinstance(event, ChecksumMismatch)
    assert event.top_levels[0] == ("ask", "29430.30", "8.25215653")
    assert ("bid", "29430.20", "0.18967538") in event.top_levels
    assert len(event.top_levels) == 20
    assert len(event.frames) == 1 and '"checksum":2785033588' in event.frames[0]
    assert event.message.endswith("likely cause: price precision is 1, not 2")


def test_a_correct_replay_is_clean() -> None:
    result = cli("replay", str(CAPTURE), "--instruments", str(INSTRUMENTS), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["skipped_frames"] == 0 and summary["checksum_mismatches"] == 0


def _segments(tmp_path: Path) -> list[Path]:
    """The capture as three rotated segments (receive times 1 s apart), each after the first
    starting with checkpoints of the book, as ``record --rotate-*`` writes them."""
    lines = CAPTURE.read_bytes().splitlines()
    instruments = Instruments.from_file(INSTRUMENTS)
    session = KrakenSession(instruments=instruments)
    base = 1_690_000_000_000_000_000
    paths: list[Path] = []
    cuts = [0, 170, 340, len(lines)]
    for number in range(3):
        path = tmp_path / f"seg.{number + 1:04d}.jsonl"
        out: list[bytes] = []
        if number == 0:  # a recording subscribes to the instrument channel first
            out.extend(
                b"%d\t%s" % (base - 1, line) for line in INSTRUMENTS.read_bytes().splitlines()
            )
        else:
            ts = base + (cuts[number] - 1) * 1_000_000_000
            for meta, frame in session_checkpoint(session.books, session.instruments):
                body = dict(meta, recv_ts_ns=ts)
                out.append(CHECKPOINT_PREFIX + json.dumps(body).encode() + b"\t" + frame.encode())
        for index in range(cuts[number], cuts[number + 1]):
            ts = base + index * 1_000_000_000
            session.receive(lines[index], ts)
            out.append(b"%d\t%s" % (ts, lines[index]))
        path.write_bytes(b"\n".join(out) + b"\n")
        paths.append(path)
    return paths


def test_segments_in_order_replay_clean(tmp_path: Path) -> None:
    segments = _segments(tmp_path)
    assert replay(segments).ok
    assert replay(segments[2:]).ok  # the last alone, from its checkpoint


def test_segments_in_the_wrong_order_say_time_went_backwards(tmp_path: Path) -> None:
    segments = _segments(tmp_path)
    result = cli("replay", str(segments[0]), str(segments[2]), str(segments[1]), "--json")
    assert result.returncode == 1
    # segment 3 goes on from segment 1's book: frames were missed; segment 2 then goes back
    summary = json.loads(result.stdout)
    causes = [m["likely_cause"] for m in summary["books"]["book:BTC/USD"]["mismatches"]]
    assert causes, result.stderr
    result = cli("replay", str(segments[2]), str(segments[1]), "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    (mismatch,) = summary["books"]["book:BTC/USD"]["mismatches"]
    assert mismatch["likely_cause"].startswith("time went backwards by ")
    assert "wrong order" in mismatch["likely_cause"]
    assert "time went backwards" in result.stderr
    assert summary["skipped_frames"] > 0


def test_a_level_the_book_lacks_or_holds_extra() -> None:
    session = KrakenSession(instruments=Instruments.from_file(INSTRUMENTS))
    lines = CAPTURE.read_bytes().splitlines()
    for line in lines[:50]:
        session.receive(line)
    book = session.book("book:BTC/USD")
    asks, bids = book.asks(11), book.bids(10)
    from bookengine.checksum import book_checksum

    # Kraken's book without our third ask: we hold a level Kraken does not.
    expected = book_checksum(asks[:2] + asks[3:], bids)
    cause = forensics.likely_cause(book, expected)
    assert cause.startswith("the book holds a ask level Kraken does not: ")
    # fewer levels in the checksum window than in the book
    expected = book_checksum(asks[:5], bids[:5])
    assert forensics.likely_cause(book, expected, depth=10).startswith(
        "the checksum covers 5 levels per side"
    )
    # time
    assert "backwards" in forensics.likely_cause(
        book, 1, recv_ts_ns=5, previous_recv_ts_ns=2_000_000_000
    )
    assert "gap of 120s" in forensics.likely_cause(
        book, 1, recv_ts_ns=121_000_000_000, previous_recv_ts_ns=1_000_000_000
    )


def test_a_thin_side_names_the_missing_level(impl: Any) -> None:
    book = impl.L2Book("BTC/USD", 10, 1, 8)
    bids = [(f"{100 - n}.0", "1.0") for n in range(9)]
    asks = [(f"{101 + n}.0", "1.0") for n in range(10)]
    book.apply_snapshot(bids, asks)
    cause = forensics.likely_cause(book, 12345, depth=10)
    assert cause.startswith("the book holds only 9 bid levels where the checksum covers 10")
