"""``bookengine replay`` as a user runs it: a subprocess on captures written in tmp_path, on both
implementations (``BOOKENGINE_PURE=1`` selects the reference). Expected books come from the
publisher model in tests/helpers_l2.py, never from the code under test."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers_l2 import KrakenPublisher, Message, fixed_text

from bookengine import Implementation

ROOT = Path(__file__).parent.parent

BOOK_KEYS = {
    "channel",
    "protocol",
    "symbol",
    "depth",
    "messages",
    "checksums_checked",
    "checksum_mismatches",
    "best_bid",
    "best_ask",
    "bid_levels",
    "ask_levels",
    "skipped_frames",
    "mismatches",
}


def run_cli(impl: Implementation, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("BOOKENGINE_PURE", None)
    if impl.name == "python":
        env["BOOKENGINE_PURE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "bookengine", "replay", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON object ``--json`` prints (and nothing else on stdout)."""
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    summary = json.loads(lines[0])
    assert isinstance(summary, dict)
    assert set(summary) == {
        "frames",
        "bad_frames",
        "skipped_frames",
        "checksum_mismatches",
        "books",
    }
    assert isinstance(summary["frames"], int) and isinstance(summary["bad_frames"], int)
    for book in summary["books"].values():
        assert set(book) == BOOK_KEYS
    return summary


@dataclass
class Stream:
    """Frames of one book from the publisher model, and what the book must end as."""

    publisher: KrakenPublisher
    symbol: str
    protocol: str = "v2"
    frames: list[str] = field(default_factory=list)
    last: Message | None = None

    def add(self, message: Message) -> str:
        if self.protocol == "v2":
            text = self.publisher.v2_frame(self.symbol, message)
        else:
            text = self.publisher.v1_frame(self.symbol, message)
        self.frames.append(text)
        self.last = message
        return text

    def expected(self, messages: int, checked: int, mismatches: int = 0) -> dict[str, Any]:
        assert self.last is not None
        pp = self.publisher.pp
        bids, asks = self.last.window_bids, self.last.window_asks
        return {
            "channel": "book",
            "protocol": self.protocol,
            "symbol": self.symbol,
            "depth": self.publisher.depth,
            "messages": messages,
            "checksums_checked": checked,
            "checksum_mismatches": mismatches,
            "best_bid": fixed_text(bids[0][0], pp) if bids else None,
            "best_ask": fixed_text(asks[0][0], pp) if asks else None,
            "bid_levels": len(bids),
            "ask_levels": len(asks),
            "skipped_frames": 0,
            "mismatches": [],
        }


def full_publisher(seed: int, depth: int, pp: int, qp: int) -> KrakenPublisher:
    """A publisher whose book fills the window (so the depth can be inferred)."""
    for attempt in range(100):
        publisher = KrakenPublisher(random.Random(seed * 1000 + attempt), depth, pp, qp)
        if len(publisher.bids) > depth and len(publisher.asks) > depth:
            return publisher
    raise AssertionError("no full book")


@dataclass
class Capture:
    lines: list[str]
    streams: dict[str, Stream]
    counts: dict[str, int]
    """Book key -> messages applied."""

    def write(self, path: Path) -> Path:
        path.write_text("".join(line + "\n" for line in self.lines))
        return path


def v2_capture(updates: int = 30, seed: int = 5) -> Capture:
    """BTC/USD (1/8) and ETH/USD (2/8), interleaved, with heartbeats and a status frame."""
    rng = random.Random(seed)
    streams = {
        "BTC/USD": Stream(full_publisher(seed, 10, 1, 8), "BTC/USD"),
        "ETH/USD": Stream(full_publisher(seed + 1, 10, 2, 8), "ETH/USD"),
    }
    lines = [
        '{"channel":"status","type":"update","data":[{"api_version":"v2",'
        '"connection_id":13834774380200032777,"system":"online","version":"2.0.0"}]}'
    ]
    for stream in streams.values():
        lines.append(stream.add(stream.publisher.snapshot()))
    counts = {"book:BTC/USD": 1, "book:ETH/USD": 1}
    for step in range(updates):
        symbol = rng.choice(sorted(streams))
        stream = streams[symbol]
        lines.append(stream.add(stream.publisher.update()))
        counts[f"book:{symbol}"] += 1
        if step % 10 == 0:
            lines.append('{"channel":"heartbeat"}')
    return Capture(lines, streams, counts)


PRECISIONS = ["--precision", "BTC/USD=1/8", "--precision", "ETH/USD=2/8"]


def expected_v2(capture: Capture) -> dict[str, Any]:
    return {
        "frames": len(capture.lines),
        "bad_frames": 0,
        "skipped_frames": 0,
        "checksum_mismatches": 0,
        "books": {
            f"book:{symbol}": stream.expected(
                capture.counts[f"book:{symbol}"], capture.counts[f"book:{symbol}"]
            )
            for symbol, stream in capture.streams.items()
        },
    }


def test_json_summary_is_exactly_the_documented_object(
    impl: Implementation, tmp_path: Path
) -> None:
    capture = v2_capture()
    path = capture.write(tmp_path / "v2.jsonl")
    result = run_cli(impl, str(path), *PRECISIONS, "--json")
    assert result.returncode == 0, result.stderr
    assert summary_of(result) == expected_v2(capture)
    assert result.stderr == ""


def test_v1_capture_keys_books_by_channel_name(impl: Implementation, tmp_path: Path) -> None:
    stream = Stream(full_publisher(11, 25, 5, 8), "XBT/USD", protocol="v1")
    lines = [
        '{"connectionID":13688620010177543517,"event":"systemStatus","status":"online",'
        '"version":"1.9.1"}',
        '{"channelID":336,"channelName":"book-25","event":"subscriptionStatus",'
        '"pair":"XBT/USD","status":"subscribed","subscription":{"depth":25,"name":"book"}}',
        stream.add(stream.publisher.snapshot()),
    ]
    for _ in range(25):
        lines.append(stream.add(stream.publisher.update()))
        lines.append('{"event":"heartbeat"}')
    path = tmp_path / "v1.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run_cli(impl, str(path), "--json")
    assert result.returncode == 0, result.stderr
    # v1 snapshots carry no checksum: 25 updates checked out of 26 messages
    assert summary_of(result) == {
        "frames": len(lines),
        "bad_frames": 0,
        "skipped_frames": 0,
        "checksum_mismatches": 0,
        "books": {"book-25:XBT/USD": stream.expected(26, 25)},
    }


def test_several_files_in_order_and_gzip(impl: Implementation, tmp_path: Path) -> None:
    capture = v2_capture(updates=20)
    plain = capture.write(tmp_path / "v2.jsonl")
    packed = tmp_path / "v2-copy.jsonl.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write(plain.read_text())
    result = run_cli(impl, str(packed), *PRECISIONS, "--json")
    assert result.returncode == 0, result.stderr
    assert summary_of(result) == expected_v2(capture)
    # the gzipped copy then the plain one: the second snapshot restarts each book
    result = run_cli(impl, str(packed), str(plain), *PRECISIONS, "--json")
    assert result.returncode == 0, result.stderr
    summary = summary_of(result)
    assert summary["frames"] == 2 * len(capture.lines)
    for key, book in summary["books"].items():
        assert book["messages"] == book["checksums_checked"] == 2 * capture.counts[key]


def test_receive_timestamp_prefixes(impl: Implementation, tmp_path: Path) -> None:
    capture = v2_capture(updates=12)
    prefixed = []
    for index, line in enumerate(capture.lines):
        ns = 1_690_730_998_343_415_000 + index * 1_000_000
        prefix = [
            str(ns),
            f"{ns // 10**9}.{ns % 10**9 // 1000:06d}",
            "2023-07-30T15:29:58.343415Z",
            "2023-07-30T17:29:58.343415123+02:00",
        ][index % 4]
        prefixed.append(f"{prefix}\t{line}")
    path = tmp_path / "ts.jsonl"
    path.write_text("\n".join(prefixed) + "\n")
    result = run_cli(impl, str(path), *PRECISIONS, "--json")
    assert result.returncode == 0, result.stderr
    assert summary_of(result) == expected_v2(capture)


@pytest.mark.parametrize(
    "garbage",
    [
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",',
        "not json at all",
        "1690730998x\t{}",
        "2023-13-30T15:29:58Z\t{}",
    ],
    ids=["truncated-frame", "text", "bad-epoch-prefix", "bad-rfc3339-prefix"],
)
def test_a_malformed_line_is_reported_and_replay_goes_on(
    impl: Implementation, tmp_path: Path, garbage: str
) -> None:
    capture = v2_capture(updates=20)
    lines = list(capture.lines)
    lines.insert(10, garbage)  # line 11 of the file
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run_cli(impl, str(path), *PRECISIONS, "--json")
    assert result.returncode == 1
    assert f"{path}:11:" in result.stderr
    assert "Traceback" not in result.stderr
    expected = expected_v2(capture)
    expected["frames"] += 1
    expected["bad_frames"] = 1
    assert summary_of(result) == expected


def test_a_corrupted_checksum(impl: Implementation, tmp_path: Path) -> None:
    capture = v2_capture(updates=20)
    lines = list(capture.lines)
    last_btc = max(i for i, line in enumerate(lines) if '"symbol":"BTC/USD"' in line)
    head, _, tail = lines[last_btc].partition('"checksum":')
    value, _, rest = tail.partition(",")
    lines[last_btc] = f'{head}"checksum":{(int(value) + 1) % 2**32},{rest}'
    path = tmp_path / "corrupt.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run_cli(impl, str(path), *PRECISIONS, "--json")
    assert result.returncode == 1
    assert f"{path}:{last_btc + 1}:" in result.stderr and "checksum" in result.stderr
    summary = summary_of(result)
    btc, eth = summary["books"]["book:BTC/USD"], summary["books"]["book:ETH/USD"]
    assert btc["checksum_mismatches"] == 1
    assert btc["checksums_checked"] == capture.counts["book:BTC/USD"]
    assert eth == expected_v2(capture)["books"]["book:ETH/USD"]
    assert summary["bad_frames"] == 0


@pytest.mark.parametrize(
    "text",
    ["BTC/USD", "BTC/USD=1", "BTC/USD=a/8", "=1/8", "BTC/USD=1/8/2", "BTC/USD=-1/8", "BTC/USD=1/"],
)
def test_bad_precision_text_is_an_argparse_error(
    impl: Implementation, tmp_path: Path, text: str
) -> None:
    path = v2_capture(updates=2).write(tmp_path / "v2.jsonl")
    result = run_cli(impl, str(path), "--precision", text, "--json")
    assert result.returncode == 2
    assert "--precision" in result.stderr and "SYMBOL=PRICE/QTY" in result.stderr
    assert result.stdout == ""


def test_precision_out_of_range(impl: Implementation, tmp_path: Path) -> None:
    path = v2_capture(updates=2).write(tmp_path / "v2.jsonl")
    result = run_cli(impl, str(path), "--precision", "BTC/USD=1/19", "--json")
    assert result.returncode == 2
    assert "BTC/USD" in result.stderr and "qty_precision" in result.stderr
    assert "Traceback" not in result.stderr


def test_precision_is_applied(impl: Implementation, tmp_path: Path) -> None:
    # Wrong precisions make every checksum fail: the flag reaches the books.
    capture = v2_capture(updates=4)
    path = capture.write(tmp_path / "v2.jsonl")
    result = run_cli(
        impl, str(path), "--precision", "BTC/USD=2/8", "--precision", "ETH/USD=2/8", "--json"
    )
    assert result.returncode == 1
    summary = summary_of(result)
    assert summary["books"]["book:BTC/USD"]["checksum_mismatches"] == 1
    assert summary["books"]["book:ETH/USD"]["checksum_mismatches"] == 0


def snapshot_only(depth: int, seed: int = 3) -> tuple[Stream, str]:
    stream = Stream(full_publisher(seed, depth, 1, 8), "BTC/USD")
    text = stream.add(stream.publisher.snapshot())
    return stream, text


def test_depth_is_inferred_from_a_depth_25_snapshot(impl: Implementation, tmp_path: Path) -> None:
    stream, snapshot = snapshot_only(25)
    assert len(stream.publisher.window("bid")) == 25  # more than 10: not a depth-10 book
    lines = [snapshot]
    for _ in range(15):
        lines.append(stream.add(stream.publisher.update()))
    path = tmp_path / "d25.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run_cli(impl, str(path), "--precision", "BTC/USD=1/8", "--json")
    assert result.returncode == 0, result.stderr
    assert summary_of(result)["books"]["book:BTC/USD"] == stream.expected(16, 16)


def test_depth_from_the_subscribe_ack(impl: Implementation, tmp_path: Path) -> None:
    stream, snapshot = snapshot_only(100, seed=4)
    ack = (
        '{"method":"subscribe","result":{"channel":"book","depth":100,"snapshot":true,'
        '"symbol":"BTC/USD"},"success":true,"time_in":"2023-10-06T17:35:55.219022Z",'
        '"time_out":"2023-10-06T17:35:55.219067Z"}'
    )
    lines = [ack, snapshot] + [stream.add(stream.publisher.update()) for _ in range(10)]
    path = tmp_path / "d100.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run_cli(impl, str(path), "--precision", "BTC/USD=1/8", "--json")
    assert result.returncode == 0, result.stderr
    assert summary_of(result)["books"]["book:BTC/USD"] == stream.expected(11, 11)


def test_depth_flag(impl: Implementation, tmp_path: Path) -> None:
    stream = Stream(KrakenPublisher(random.Random(9), 25, 1, 8, max_levels=6), "BTC/USD")
    lines = [stream.add(stream.publisher.snapshot())]
    lines += [stream.add(stream.publisher.update()) for _ in range(10)]
    path = tmp_path / "thin.jsonl"
    path.write_text("\n".join(lines) + "\n")
    # a thin snapshot alone would say depth 10
    inferred = run_cli(impl, str(path), "--precision", "BTC/USD=1/8", "--json")
    assert summary_of(inferred)["books"]["book:BTC/USD"]["depth"] == 10
    result = run_cli(impl, str(path), "--precision", "BTC/USD=1/8", "--depth", "25", "--json")
    assert result.returncode == 0, result.stderr
    assert summary_of(result)["books"]["book:BTC/USD"] == stream.expected(11, 11)
    for bad in ("0", "-5", "x", "2.5"):
        refused = run_cli(impl, str(path), "--depth", bad, "--json")
        assert refused.returncode == 2 and "--depth" in refused.stderr


def test_v2_capture_without_precision(impl: Implementation, tmp_path: Path) -> None:
    capture = v2_capture(updates=6)
    path = capture.write(tmp_path / "v2.jsonl")
    result = run_cli(impl, str(path), "--precision", "ETH/USD=2/8", "--json")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    problems = [line for line in result.stderr.splitlines() if "BTC/USD" in line]
    # one clear message for the symbol (not one per frame), saying how to fix it
    assert len(problems) == 1, result.stderr
    assert "precision" in problems[0]
    assert "--precision" in problems[0] or "--instruments" in problems[0], problems[0]
    summary = summary_of(result)
    assert summary["books"]["book:ETH/USD"]["checksum_mismatches"] == 0
    assert summary["books"]["book:ETH/USD"]["messages"] == capture.counts["book:ETH/USD"]


def test_missing_file(impl: Implementation, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = run_cli(impl, str(missing), "--json")
    assert result.returncode != 0
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_text_output_shows_the_book(impl: Implementation, tmp_path: Path) -> None:
    capture = v2_capture(updates=10)
    path = capture.write(tmp_path / "v2.jsonl")
    result = run_cli(impl, str(path), *PRECISIONS, "--levels", "3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"implementation {impl.name}" in out
    out_lines = out.splitlines()
    for symbol, stream in capture.streams.items():
        assert stream.last is not None
        assert any(f"book:{symbol}" in line for line in out_lines)
        pp, qp = stream.publisher.pp, stream.publisher.qp
        for side in (stream.last.window_bids[:3], stream.last.window_asks[:3]):
            for price, qty in side:
                price_text, qty_text = fixed_text(price, pp), fixed_text(qty, qp)
                assert any(price_text in line and qty_text in line for line in out_lines), (
                    price_text,
                    qty_text,
                    out,
                )
        # a level beyond --levels is not shown
        price, qty = stream.last.window_bids[3]
        hidden = (fixed_text(price, pp), fixed_text(qty, qp))
        assert not any(hidden[0] in line and hidden[1] in line for line in out_lines)
