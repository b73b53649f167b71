"""Hypothesis fuzz of the L3 book (both implementations, frames and mappings) and of the
capture reader (a model of the lines written; plain, gzip, zstd, truncated and damaged files).

The scanner and the L2 book have theirs in tests/test_scan.py and tests/test_l2_property.py;
the coverage-guided versions of all of these are in fuzz/.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookengine import BookError, Implementation, implementation
from bookengine._impl import compiled_available
from bookengine.capture import CaptureReader, CaptureReport, read_frames
from bookengine.errors import CaptureError

# The L3 tests compare the compiled book with the reference; without the extension (possible
# only with BOOKENGINE_PURE=1: conftest refuses a plain run without it) they are skipped and
# the capture reader tests below still run.
both_books = pytest.mark.skipif(not compiled_available(), reason="the compiled core is not built")


def _impls() -> list[Implementation]:
    return [implementation("cython"), implementation("python")]


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- L3 ------------------------------------------------------------------------------------------

ORDER_IDS = ["OA", "OB", "OC", "OD", "OE", "OTCFZG-YOE2Q-LQKNM3"]


@st.composite
def l3_entry(draw: st.DrawFn, side: int, snapshot: bool, pp: int, qp: int) -> dict[str, Any]:
    base = 1000 * 10**pp
    price = base + draw(st.integers(-3, 3)) + (-3 if side == 0 else 3)
    qty = draw(st.one_of(st.integers(0, 3 * 10**qp), st.sampled_from([1, 2**62, 2**63 - 1])))
    entry: dict[str, Any] = {
        "order_id": draw(st.sampled_from(ORDER_IDS)),
        "limit_price": _text(price, pp, draw(st.booleans())),
        "order_qty": _text(qty, qp, draw(st.booleans())),
    }
    if not snapshot:
        entry["event"] = draw(st.sampled_from(["add", "add", "modify", "delete"]))
    if draw(st.booleans()):
        entry["timestamp"] = draw(
            st.sampled_from(["2024-01-08T12:26:39.526146327Z", "2024-01-08T12:26:39Z", "bad"])
        )
    return entry


def _text(mantissa: int, scale: int, strip: bool) -> str:
    digits = str(mantissa).rjust(scale + 1, "0")
    text = f"{digits[:-scale]}.{digits[-scale:]}" if scale else digits
    return text.rstrip("0").rstrip(".") if strip and scale else text


@st.composite
def l3_messages(draw: st.DrawFn) -> tuple[int, int, int, list[tuple[Any, ...]]]:
    depth = draw(st.sampled_from([1, 2, 3, 10]))
    pp, qp = draw(st.integers(0, 6)), draw(st.integers(0, 8))
    messages = []
    for index in range(draw(st.integers(1, 12))):
        snapshot = index == 0 or draw(st.integers(0, 9)) == 0
        bids = draw(st.lists(l3_entry(0, snapshot, pp, qp), max_size=5))
        asks = draw(st.lists(l3_entry(1, snapshot, pp, qp), max_size=5))
        checksum = draw(st.sampled_from(["correct", "correct", "none", "wrong"]))
        via_frame = draw(st.booleans())
        messages.append((snapshot, bids, asks, checksum, via_frame))
    return depth, pp, qp, messages


def _frame(snapshot: bool, bids: Any, asks: Any, checksum: int | None) -> bytes:
    book: dict[str, Any] = {"symbol": "BTC/USD", "bids": bids, "asks": asks}
    if checksum is not None:
        book["checksum"] = checksum
    kind = "snapshot" if snapshot else "update"
    return json.dumps({"channel": "level3", "type": kind, "data": [book]}).encode()


def _apply_frame(scanner: Any, book: Any, frame: bytes) -> Any:
    scanner.scan(frame)
    return book.apply_scanned(scanner)


def _outcome(call: Any) -> tuple[Any, ...]:
    try:
        return ("ok", call())
    except BookError as exc:
        return ("raised", type(exc).__name__)


@both_books
@settings(SETTINGS, max_examples=100)
@given(case=l3_messages())
def test_l3_books_agree_message_by_message(case: tuple[int, int, int, list[Any]]) -> None:
    """Both L3 books, fed the same messages (as frames or as mappings), give the same outcome
    (or the same error type) and the same book, order by order, and keep their invariants."""
    from fuzz.harness import l3_state  # builds both implementations at import

    depth, pp, qp, messages = case
    books = [impl.L3Book("BTC/USD", depth, pp, qp) for impl in _impls()]
    scanners = [impl.FrameScanner() for impl in _impls()]
    verified = 0
    for step, (snapshot, bids, asks, how, via_frame) in enumerate(messages):
        checksum: int | None = None
        if how == "wrong":
            checksum = 12345
        elif how == "correct":
            clone = copy.deepcopy(books[1])
            try:
                (clone.apply_snapshot if snapshot else clone.apply_update)(bids, asks)
                checksum = clone.checksum()
            except BookError:
                checksum = None
        frame = _frame(snapshot, bids, asks, checksum)
        results = []
        for scanner, book in zip(scanners, books, strict=True):
            if via_frame:
                results.append(_outcome(partial(_apply_frame, scanner, book, frame)))
            else:
                apply = book.apply_snapshot if snapshot else book.apply_update
                results.append(_outcome(partial(apply, bids, asks, checksum)))
            book._check()
        assert results[0] == results[1], (step, bids, asks)
        verified += results[0] == ("ok", True)
        assert l3_state(books[0]) == l3_state(books[1]), step
        if results[0][0] == "ok" and snapshot:
            assert not books[0].needs_resync  # a good snapshot starts over
        elif results[0][0] == "raised":
            assert books[0].needs_resync


@both_books
def test_l3_strategy_reaches_verified_checksums() -> None:
    """The generator is not vacuous: it produces messages whose checksums verify."""
    seen = []

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(case=l3_messages())
    def probe(case: tuple[int, int, int, list[Any]]) -> None:
        depth, pp, qp, messages = case
        compiled, reference = _impls()
        book = compiled.L3Book("BTC/USD", depth, pp, qp)
        _, bids, asks, _, _ = messages[0]
        clone = copy.deepcopy(reference.L3Book("BTC/USD", depth, pp, qp))
        try:
            clone.apply_snapshot(bids, asks)
        except BookError:
            return
        seen.append(book.apply_snapshot(bids, asks, clone.checksum()))

    probe()
    assert any(seen)


# -- capture reader ------------------------------------------------------------------------------

FRAMES = [
    b'{"channel":"heartbeat"}',
    b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[]}]}',
    b'[336,{"a":[["5541.3","2.5","1534614248.123678"]]},"book-10","XBT/USD"]',
    b'{"method":"pong","req_id":1}',
    b'{"x":"caf\xc3\xa9 \\t"}',
]
TIMESTAMPS = [
    (b"", -1),
    (b"1690730998343415000\t", 1690730998343415000),
    (b"1690730998.343415\t", 1690730998343415000),
    (b"2023-07-30T15:29:58.343415Z\t", 1690730998343415000),
    (b"0\t", 0),
]


@st.composite
def capture_lines(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int, bytes, str]]]:
    """A capture file's bytes and the records a reader must give (line, recv_ts, frame, kind)."""
    out: list[bytes] = []
    expected: list[tuple[int, int, bytes, str]] = []
    for number in range(1, draw(st.integers(0, 25)) + 1):
        kind = draw(st.sampled_from(["frame"] * 6 + ["sent", "comment", "blank", "crlf"]))
        prefix, ts = draw(st.sampled_from(TIMESTAMPS))
        frame = draw(st.sampled_from(FRAMES))
        if kind == "frame":
            out.append(prefix + frame)
            expected.append((number, ts, frame, "frame"))
        elif kind == "crlf":
            out.append(prefix + frame + b"\r")
            expected.append((number, ts, frame, "frame"))
        elif kind == "sent":
            out.append(prefix + b">" + frame)
            expected.append((number, ts, frame, "sent"))
        elif kind == "comment":
            out.append(b"# note " + frame)
        else:
            out.append(draw(st.sampled_from([b"", b"  ", b"\t"])))
    return b"".join(line + b"\n" for line in out), expected


def _records(path: Path) -> tuple[list[tuple[int, int, bytes, str]], CaptureReport]:
    reader = CaptureReader([path], kinds=("frame", "sent"))
    records = [(r.line, r.recv_ts_ns, r.frame, r.kind) for r in reader]
    return records, reader.report


@SETTINGS
@given(case=capture_lines(), cut=st.integers(0, 10_000), torn=st.binary(max_size=30))
def test_capture_reader_reads_what_was_written(
    tmp_path_factory: pytest.TempPathFactory,
    case: tuple[bytes, list[tuple[int, int, bytes, str]]],
    cut: int,
    torn: bytes,
) -> None:
    """Plain, gzip and zstd files of the same lines read as exactly the lines written; a
    truncated gzip file reads a prefix and reports the truncation; a torn final line is
    reported, never yielded as a frame; nothing but CaptureError ever escapes."""
    content, expected = case
    folder = tmp_path_factory.mktemp("cap")
    plain = folder / "c.jsonl"
    plain.write_bytes(content)
    assert _records(plain)[0] == expected
    gz = folder / "c.jsonl.gz"
    compressed = gzip.compress(content, mtime=0)
    gz.write_bytes(compressed)
    assert _records(gz)[0] == expected
    zstandard = pytest.importorskip("zstandard")
    zst = folder / "c.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(content))
    assert _records(zst)[0] == expected
    # Truncated gzip: a prefix of the records (the last one may be cut), truncation reported.
    if compressed:
        gz.write_bytes(compressed[: cut % len(compressed)])
        records, report = _records(gz)
        assert records == expected[: len(records)] or records[:-1] == expected[: len(records) - 1]
        if cut % len(compressed) > 10:
            assert report.truncated
    # A torn final line (no newline) is reported, not read as a frame (unless it parses).
    plain.write_bytes(
        content + b"1690730998343415000\t" + b'{"channel":' + torn.replace(b"\n", b"")
    )
    records, report = _records(plain)
    assert records[: len(expected)] == expected
    for record in records[len(expected) :]:
        json.loads(record[2])  # only a complete item may be yielded
    with contextlib.suppress(CaptureError):
        list(read_frames([plain], sent=True))


@SETTINGS
@given(content=st.binary(max_size=2000), mode=st.sampled_from(["plain", "gz", "rawgz", "zst"]))
def test_capture_reader_on_arbitrary_bytes(
    tmp_path_factory: pytest.TempPathFactory, content: bytes, mode: str
) -> None:
    """Arbitrary bytes: records or a CaptureError, never another exception."""
    folder = tmp_path_factory.mktemp("raw")
    suffix = {"plain": ".jsonl", "gz": ".jsonl.gz", "rawgz": ".jsonl.gz", "zst": ".jsonl.zst"}
    path = folder / f"c{suffix[mode]}"
    if mode == "gz":
        path.write_bytes(gzip.compress(content)[: max(1, len(content))])
    elif mode == "zst":
        zstandard = pytest.importorskip("zstandard")
        path.write_bytes(zstandard.ZstdCompressor().compress(content)[: max(1, len(content))])
    else:
        path.write_bytes(content)
    reader = CaptureReader([path], kinds=("frame", "sent", "header", "checkpoint", "torn"))
    try:
        for record in reader:
            assert b"\n" not in record.frame
    except CaptureError:
        pass
