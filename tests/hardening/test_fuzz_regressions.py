"""Regression tests for what fuzzing found, and a replay of the seed corpus of every target.

Each bug found by the fuzz targets in ``fuzz/`` (or while writing them) has a test here with
its minimal input, tagged ``[name]``. A new one fails until the bug is fixed; meanwhile the
fuzz harness steps around it (``fuzz.harness.OPEN_BUGS``) so that fuzzing can go past it, and
its name leaves ``OPEN_BUGS`` once the test passes. All of those below were fixed in 2e9da1f.
"""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bookengine import implementation
from bookengine.capture import read_frames
from bookengine.errors import CaptureError, ProtocolError
from bookengine.kraken.session import KrakenSession
from fuzz import harness

from .conftest import ROOT

IMPLS = [implementation("cython"), implementation("python")]
CORPUS = ROOT / "fuzz" / "corpus"
DATA = ROOT / "tests" / "data"


# -- the seed corpus -----------------------------------------------------------------------------


def corpus_files() -> list[Any]:
    return [
        pytest.param(target, path, id=f"{target}/{path.name}")
        for target in harness.TARGETS
        for path in sorted((CORPUS / target).iterdir())
    ]


def test_every_target_has_seeds() -> None:
    for target in harness.TARGETS:
        assert len(list((CORPUS / target).iterdir())) >= 10, target
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 2_000_000


@pytest.mark.parametrize(("target", "path"), corpus_files())
def test_seed_corpus_passes(target: str, path: Path) -> None:
    harness.CHECKS[target](path.read_bytes())


def test_the_checks_can_fail() -> None:
    """The harness is not vacuous: a planted disagreement is reported."""
    with pytest.raises(AssertionError, match="disagree"):
        harness.agree("x", ("ok", 1), ("ok", 2))
    books = [impl.L2Book("BTC/USD", 10, 1, 8) for impl in IMPLS]
    books[0].apply_snapshot([("1", "1")], [("2", "1")])
    with pytest.raises(AssertionError):
        harness.agree("book", *(harness._l2_state(b) for b in books))


# -- found bugs (fixed; each test failed before its fix) -----------------------------------------

HUGE_TS = b"1" * 5000  # Python refuses int() of more than 4300 digits (ValueError)


def test_open_bugs_each_have_a_test_here() -> None:
    """Every bug the harness steps around is held by a (failing) test here."""
    source = Path(__file__).read_text()
    for name in harness.OPEN_BUGS:
        assert f"[{name}]" in source, name


def test_capture_reader_survives_a_huge_digit_timestamp(tmp_path: Path) -> None:
    """[capture-huge-timestamp] A 5000-digit receive timestamp is untrusted input like any
    other: the reader must yield a record (or raise CaptureError), not a ValueError from
    ``int()`` (capture.CaptureReader._read: ``int(head)``; capture.parse_recv_ts)."""
    frame = (DATA / "docs-v2-book-guide-btcusd.jsonl").read_bytes().strip()
    for name, write in (("c.jsonl", Path.write_bytes), ("c.jsonl.gz", None)):
        path = tmp_path / name
        content = HUGE_TS + b"\t" + frame + b"\n" + frame + b"\n"
        if write is None:
            path.write_bytes(gzip.compress(content))
        else:
            write(path, content)
        try:
            records = list(read_frames([path]))
        except CaptureError:
            continue
        assert [r.frame for r in records][-1] == frame


def test_receive_buffer_survives_a_huge_digit_timestamp() -> None:
    """[capture-huge-timestamp] ``KrakenSession.receive_buffer`` never raises for bad input
    either (it calls capture.parse_recv_ts, which lets the ValueError out)."""
    session = KrakenSession(precisions={"BTC/USD": (1, 8)})
    assert session.receive_buffer(HUGE_TS + b"\t{}\n") == 1
    assert session.bad_frames == 1 or session.frames == 1


@pytest.mark.parametrize(
    "value",
    [1000, "1000", Decimal("1000"), None, 1.5],
    ids=["int", "text", "decimal", "none", "float"],
)
def test_reference_v1_book_takes_the_same_numbers_as_the_compiled_one(value: Any) -> None:
    """[l2-v1-api-numbers] An L2 book without precisions (v1: scale from the first snapshot)
    given an int/Decimal/None/float level: the reference raised AttributeError ("'int' object
    has no attribute 'partition'", numbers.wire_decimals), the compiled one accepts the int
    and raised TypeError for None/float."""
    results = []
    for impl in IMPLS:
        book = impl.L2Book("XBT/USD", 10)
        try:
            results.append(("ok", book.apply_snapshot([(value, "1.0")], []), book.bids()))
        except Exception as exc:  # the point: which exception
            results.append(("raised", type(exc).__name__))
    assert results[0] == results[1]
    assert results[1][0] == "ok" or results[1][1] == "TypeError"


def test_reference_l2_refuses_a_text_checksum_before_changing_the_book() -> None:
    """[l2-api-checksum-text] ``apply_snapshot(bids, asks, checksum="12")``: the compiled
    book raised TypeError and stayed unchanged; the reference applied the levels, then raised
    TypeError from the comparison: a raising message must leave the book as it was."""
    for impl in IMPLS:
        book = impl.L2Book("BTC/USD", 10, 1, 8)
        for apply in (book.apply_snapshot, book.apply_update):
            with pytest.raises(TypeError):
                apply([], [("999.9", "1")], "12")  # type: ignore[arg-type]
            assert (book.bids(), book.asks()) == ([], []), impl.name


def test_receive_buffer_records_the_time_of_a_fast_path_mismatch() -> None:
    """[session-mismatch-recv-ts] A checksum mismatch on receive_buffer's compiled fast path
    left ``session.last_recv_ts_ns`` and the book's ``last_recv_ts_ns`` at the previous
    line's time (5); line-by-line ``receive`` recorded the failing line's (7)."""
    snapshot = (DATA / "docs-v2-book-guide-btcusd.jsonl").read_bytes().strip()
    update = (
        b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],'
        b'"asks":[],"checksum":1}]}'
    )
    buffer = b"5\t" + snapshot + b"\n7\t" + update + b"\n"
    fast = KrakenSession(precisions={"BTC/USD": (1, 8)})
    fast.receive_buffer(buffer)
    slow = KrakenSession(precisions={"BTC/USD": (1, 8)})
    slow.receive(snapshot, 5)
    slow.receive(update, 7)
    assert fast.books["book:BTC/USD"].checksum_mismatches == 1
    assert slow.last_recv_ts_ns == slow.books["book:BTC/USD"].last_recv_ts_ns == 7
    assert fast.last_recv_ts_ns == 7
    assert fast.books["book:BTC/USD"].last_recv_ts_ns == 7


def _scan(impl: Any, frame: bytes) -> tuple[Any, ...]:
    return harness.scan_outcome(impl.FrameScanner(), frame)


@pytest.mark.parametrize(
    "frame",
    [
        b"\x006",  # found by fuzz_scan: UTF-16-BE "6" for the reference
        b'\xef\xbb\xbf{"channel":"heartbeat"}',
        (DATA / "docs-v2-book-guide-btcusd.jsonl").read_text().strip().encode("utf-16-le"),
        (DATA / "docs-v2-book-guide-btcusd.jsonl").read_text().strip().encode("utf-32"),
    ],
    ids=["nul-6", "utf8-bom", "book-utf16", "book-utf32"],
)
def test_scanners_agree_on_frames_that_are_not_utf8(frame: bytes) -> None:
    """[scan-encoding-detection] The compiled scanner reads UTF-8 only (ProtocolError here);
    the reference guessed the encoding like ``json.loads`` (BOM, UTF-16, UTF-32) and read a
    whole v2 book snapshot sent as UTF-16 or UTF-32."""
    assert _scan(IMPLS[0], frame) == ("raised", "ProtocolError")
    assert _scan(IMPLS[1], frame) == _scan(IMPLS[0], frame)


@pytest.mark.parametrize(
    "frame",
    [
        rb'{"cha\ude00e":"update","data":[]}',  # found by fuzz_scan (escaped, in a key)
        rb'{"channel":"book","type":"update","data":[{"symbol":"\ud800","bids":[]}]}',
        b'{"channel":"book","type":"snapshot","data":[{"symbol":"\xed\xa0\x80","bids":[]}]}',
    ],
    ids=["escaped-key", "escaped-symbol", "encoded-symbol"],
)
def test_scanners_agree_on_lone_surrogates(frame: bytes) -> None:
    """[scan-lone-surrogates] A lone surrogate, escaped or UTF-8-encoded (invalid UTF-8):
    ProtocolError from the compiled scanner, accepted by the reference, which then handed out
    symbols like ``"\\ud800"`` that cannot be encoded (the compiled router's
    ``symbol.encode("utf-8")`` would raise on one)."""
    compiled, reference = _scan(IMPLS[0], frame), _scan(IMPLS[1], frame)
    assert compiled == ("raised", "ProtocolError")
    assert reference == compiled


def test_lone_surrogate_symbol_reaches_the_session_with_the_reference() -> None:
    """[scan-lone-surrogates] Consequence in the session: with the reference implementation a
    book keyed by an unencodable symbol was created instead of a BadFrame."""
    frame = rb'{"channel":"book","type":"snapshot","data":[{"symbol":"\ud800","bids":[]}]}'
    for name in ("cython", "python"):
        session = KrakenSession(implementation_name=name)
        session.receive(frame, 1)
        assert session.bad_frames == 1, name
        assert not session.books, name


def test_scanner_error_types_stay_protocol_errors() -> None:
    """Guard for the harness's assumption: bad frames raise ProtocolError and nothing else."""
    for impl in IMPLS:
        with pytest.raises(ProtocolError):
            impl.FrameScanner().scan(b'{"channel":"book","type":"update","data":[{}]}')
