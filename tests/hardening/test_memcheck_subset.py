"""A compact, core-heavy workload for ``make memcheck`` (valgrind is ~50x slower).

Every compiled module does real work here: the scanner over every fixture line, L2 books via
the session's fast path (``receive_buffer``) and line by line, L3 books through snapshot and
churn with refused messages (rollbacks), checksums, array views, and a replay of a slice of
the fuzz seed corpus of each target. It runs in the normal suite too (a second or two).
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from bench import bench_memory
from bookengine import implementation
from bookengine.capture import split_recv_ts
from bookengine.kraken.session import KrakenSession
from fuzz import harness

from .conftest import ROOT

DATA = ROOT / "tests" / "data"


@pytest.mark.parametrize("name", ["cython", "python"])
def test_scanner_over_every_fixture_line(name: str) -> None:
    scanner = implementation(name).FrameScanner()
    kinds = set()
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            kinds.add(scanner.scan(line))
    assert kinds >= {0, 1, 2, 3}


def test_session_fast_path_and_line_by_line() -> None:
    lines = bench_memory.capture_lines()
    data = b"\n".join(lines) + b"\n"
    fast = KrakenSession(precisions={"BTC/USD": (1, 8)})
    for _ in range(3):
        fast.receive_buffer(data)
    slow = KrakenSession(precisions={"BTC/USD": (1, 8)})
    for _ in range(3):
        last = -1
        for line in data.splitlines():  # frame by frame (lines without a time take the last)
            recv_ts_ns, frame = split_recv_ts(line)
            last = recv_ts_ns if recv_ts_ns >= 0 else last
            if frame.strip():
                slow.receive(frame, last)
    book_fast, book_slow = fast.book("book:BTC/USD"), slow.book("book:BTC/USD")
    assert (book_fast.bids(), book_fast.asks()) == (book_slow.bids(), book_slow.asks())
    assert book_fast.bids_array().shape == (10, 2)


def test_l3_churn() -> None:
    state: dict[str, object] = {}
    chunks = bench_memory.l3_chunks("cython", batch=100, state=state)
    for _ in range(5):
        next(chunks)
    book = state["book"]
    book._check()  # type: ignore[attr-defined]
    assert book.checksum() >= 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("target", harness.TARGETS)
def test_seed_corpus_slice(target: str) -> None:
    for path in islice(sorted(Path(ROOT / "fuzz" / "corpus" / target).iterdir()), 12):
        harness.CHECKS[target](path.read_bytes())
