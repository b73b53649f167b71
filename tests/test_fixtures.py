"""Every checksum in every fixture reproduces, through the Python API and the CLI, on both
implementations. Expected counts come from ../shared/fixtures/README.md, not from the code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bookengine import Implementation
from bookengine.instruments import Instruments
from bookengine.kraken.events import BadFrame, BookChanged, BookInvalid, ChecksumMismatch
from bookengine.kraken.session import KrakenSession

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent

# file -> (book key, checksums the README says it holds, precisions for v2)
L2_FIXTURES = {
    "v2-book-btcusd-depth10.jsonl": ("book:BTC/USD", 510, None),
    "v1-book-xbtusd-depth10.jsonl": ("book-10:XBT/USD", 979, None),
    "docs-v2-book-guide-btcusd.jsonl": ("book:BTC/USD", 1, {"BTC/USD": (1, 8)}),
    "docs-v2-book-reference-maticusd.jsonl": ("book:MATIC/USD", 2, {"MATIC/USD": (4, 8)}),
    "docs-v1-book-guide.jsonl": ("book-1000:XBT/USD", 1, None),
}
DOCUMENTED = {
    "docs-v2-book-guide-btcusd.jsonl": [3310070434],
    "docs-v2-book-reference-maticusd.jsonl": [2439117997, 2114181697],
    # The guide's update lies outside the top 10: the checksum stays the same.
    "docs-v1-book-guide.jsonl": [974947235, 974947235],
}


def _instruments() -> Instruments:
    return Instruments.from_file(DATA / "v2-instrument-snapshot.jsonl")


def test_instrument_snapshot_gives_btcusd_precision() -> None:
    instruments = _instruments()
    assert len(instruments) == 683
    btc = instruments.get("BTC/USD")
    assert btc is not None and (btc.price_precision, btc.qty_precision) == (1, 8)


@pytest.mark.parametrize("name", sorted(L2_FIXTURES))
def test_every_checksum_verifies_through_the_session(impl: Implementation, name: str) -> None:
    key, expected, precisions = L2_FIXTURES[name]
    session = KrakenSession(
        instruments=_instruments(), precisions=precisions, implementation_name=impl.name
    )
    verified = 0
    for line in (DATA / name).read_bytes().splitlines():
        for event in session.receive(line, 0):
            assert not isinstance(event, BadFrame | BookInvalid | ChecksumMismatch), event
            if isinstance(event, BookChanged):
                verified += event.checksum_verified
                event.book._check()
    state = session.books[key]
    assert verified == expected
    assert state.checksums_checked == expected
    assert state.checksum_mismatches == 0


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_checksums_are_the_ones_the_book_computes(
    impl: Implementation, name: str
) -> None:
    # Independently of the frame's checksum field: the book's own CRC32 after each message.
    scanner = impl.FrameScanner()
    book = None
    computed = []
    _, _, precisions = L2_FIXTURES[name]
    for line in (DATA / name).read_bytes().splitlines():
        scanner.scan(line)
        if book is None:
            pp, qp = (None, None) if precisions is None else precisions[scanner.symbol]
            book = impl.L2Book(scanner.symbol, 1000, pp, qp)
        book.apply_scanned(scanner)
        computed.append(book.checksum())
    assert computed == DOCUMENTED[name]


def test_python_api_apply_snapshot_reproduces_the_guide(impl: Implementation) -> None:
    frame = json.loads((DATA / "docs-v2-book-guide-btcusd.jsonl").read_text(), parse_float=str)
    data = frame["data"][0]
    book = impl.L2Book("BTC/USD", 10, 1, 8)
    levels = {side: [(lv["price"], lv["qty"]) for lv in data[side]] for side in ("bids", "asks")}
    assert book.apply_snapshot(levels["bids"], levels["asks"], checksum=data["checksum"]) is True
    assert book.checksum() == 3310070434


def test_raw_text_without_padding_would_fail_but_the_book_verifies() -> None:
    # The capture lost its trailing zeros (0.2997598, 4.0): hashing the raw text cannot match,
    # which is why books render at the instrument precision. Guards the fixture's meaning.
    import zlib

    line = (DATA / "v2-book-btcusd-depth10.jsonl").read_text().splitlines()[0]
    data = json.loads(line, parse_float=str)["data"][0]
    raw = "".join(
        (lv["price"] + lv["qty"]).replace(".", "").lstrip("0")
        for side in ("asks", "bids")
        for lv in data[side]
    )
    assert zlib.crc32(raw.encode()) != data["checksum"]


def _cli(*args: str, pure: bool) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("BOOKENGINE_PURE", None)
    if pure:
        env["BOOKENGINE_PURE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "bookengine", "replay", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_cli_reproduces_every_fixture_checksum(impl: Implementation) -> None:
    files = [str(DATA / name) for name in sorted(L2_FIXTURES)]
    result = _cli(
        *files,
        "--instruments",
        str(DATA / "v2-instrument-snapshot.jsonl"),
        "--precision",
        "MATIC/USD=4/8",
        "--json",
        pure=impl.name == "python",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["bad_frames"] == 0
    books = summary["books"]
    # BTC/USD is in two files (guide snapshot, then the capture): 1 + 510 checksums.
    assert books["book:BTC/USD"]["checksums_checked"] == 511
    assert books["book-10:XBT/USD"]["checksums_checked"] == 979
    assert books["book:MATIC/USD"]["checksums_checked"] == 2
    assert books["book-1000:XBT/USD"]["checksums_checked"] == 1
    for book in books.values():
        assert book["checksum_mismatches"] == 0
    assert books["book:BTC/USD"]["protocol"] == "v2"
    assert books["book-10:XBT/USD"] == {
        "channel": "book",
        "protocol": "v1",
        "symbol": "XBT/USD",
        "depth": 10,
        "messages": 980,
        "checksums_checked": 979,
        "checksum_mismatches": 0,
        "best_bid": books["book-10:XBT/USD"]["best_bid"],
        "best_ask": books["book-10:XBT/USD"]["best_ask"],
        "bid_levels": 10,
        "ask_levels": 10,
        "skipped_frames": 0,
        "mismatches": [],
    }
    # v1 prices keep the wire's 5 decimals.
    assert books["book-10:XBT/USD"]["best_bid"].split(".")[1].__len__() == 5
