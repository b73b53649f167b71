"""The fuzz targets' checks, as plain functions of the input bytes (no atheris needed).

Each ``check_<target>(data)`` decodes ``data`` into something to feed bookengine (a frame, a
sequence of frames, a capture file, a capture buffer), feeds it to both implementations (or
both paths) and raises ``AssertionError`` when they disagree or when anything but the
documented error escapes. The atheris drivers (``fuzz_<target>.py``) call these; so do the
regression tests in ``tests/hardening`` (on the seed corpus and on every crasher found), which
is why this module imports nothing outside the standard library and bookengine.

Decoding is total: any byte string is a valid input (the :class:`Input` reader returns zeros
once the bytes run out), so libFuzzer's mutations always reach the code under test.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bookengine import implementation
from bookengine.capture import CaptureReader, CaptureReport, read_frames
from bookengine.errors import BookError, CaptureError, ProtocolError
from bookengine.kraken.events import BookChanged
from bookengine.kraken.session import KrakenSession
from bookengine.replay import Replayer

NAMES = ("cython", "python")

# Everything the checks call is imported here, at the top: atheris instruments (for coverage)
# only the modules imported while ``fuzz.harness`` itself is.

COMPILED = implementation("cython")
REFERENCE = implementation("python")
IMPLS = (COMPILED, REFERENCE)

TARGETS = ("scan", "l2", "l3", "capture", "session")
"""Names of the fuzz targets (``fuzz/fuzz_<name>.py``, ``fuzz/corpus/<name>/``)."""

OPEN_BUGS: frozenset[str] = frozenset()
"""Known, reported bugs the checks step around so fuzzing can go past them; each has a test in
tests/hardening/test_fuzz_regressions.py (tagged ``[name]``) that fails until it is fixed.
Remove a name once its test passes. Fixed so far (2e9da1f), with their regression tests:
``scan-encoding-detection``, ``scan-lone-surrogates``, ``l2-v1-api-numbers``,
``l2-api-checksum-text``, ``session-mismatch-recv-ts``, ``capture-huge-timestamp``.
"""

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


class Input:
    """Reads structured choices from fuzz bytes; past the end every read gives 0 / empty."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.data)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        value = self.data[self.pos]
        self.pos += 1
        return value

    def int(self, lo: int, hi: int) -> int:
        """An int in ``[lo, hi]`` (from as few bytes as the span needs)."""
        span = hi - lo
        if span <= 0:
            return lo
        value = 0
        width = 0
        while (1 << width) <= span:
            value = (value << 8) | self.byte()
            width += 8
        return lo + value % (span + 1)

    def bool(self) -> bool:
        return bool(self.byte() & 1)

    def pick(self, options: Sequence[Any]) -> Any:
        return options[self.int(0, len(options) - 1)]

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def blob(self, limit: int = 512) -> bytes:
        """A length-prefixed chunk of the raw input."""
        return self.take(self.int(0, limit))

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk


# -- outcomes ----------------------------------------------------------------------------------


def outcome(call: Callable[[], Any], allowed: tuple[type[BaseException], ...]) -> tuple[Any, ...]:
    """``("ok", value)`` or ``("raised", exception type name)`` for an allowed exception.

    Anything not in ``allowed`` propagates: that is a finding.
    """
    try:
        return ("ok", call())
    except allowed as exc:
        return ("raised", type(exc).__name__)


def agree(
    what: str, compiled: Any, reference: Any, names: tuple[str, str] = ("cython", "python")
) -> None:
    if compiled != reference:
        raise AssertionError(
            f"{what}: disagree\n  {names[0]}: {compiled!r}\n  {names[1]}: {reference!r}"
        )


# -- scanner -----------------------------------------------------------------------------------


def scanned(scanner: Any) -> tuple[Any, ...]:
    """What a scan tells (the kind alone for non-book frames)."""
    if scanner.kind == 0:
        return (0,)
    return (
        scanner.kind,
        scanner.is_snapshot,
        scanner.symbol,
        scanner.channel_name,
        scanner.checksum,
        scanner.bid_count,
        scanner.ask_count,
        list(scanner.bids),
        list(scanner.asks),
        outcome(lambda: scanner.timestamp_ns, (ProtocolError,)),
    )


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _DuplicateKey
    return dict(pairs)


def has_duplicate_keys(frame: bytes | str) -> bool:
    """True when some JSON object in ``frame`` repeats a key.

    json.loads keeps the last value, the compiled scanner may read the first: both readings
    are defensible, so such frames are only checked for crashes, not for agreement.
    """
    try:
        json.loads(frame, object_pairs_hook=_no_duplicates)
    except _DuplicateKey:
        return True
    except (ValueError, RecursionError):
        return False
    return False


def scan_outcome(scanner: Any, frame: bytes | str) -> tuple[Any, ...]:
    try:
        scanner.scan(frame)
    except ProtocolError:
        return ("raised", "ProtocolError")
    return ("ok", scanned(scanner))


def _big_level3_frame() -> bytes:
    return (DATA / "docs-v2-level3-guide-btcusd.jsonl").read_bytes().splitlines()[0]


_WARM = _big_level3_frame()
_reused = [impl.FrameScanner() for impl in IMPLS]


_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]|\\u[dD][89a-fA-F]")
"""A surrogate, UTF-8-encoded or escaped (paired ones too: cheap and close enough)."""


def check_scan(data: bytes) -> None:
    """Both scanners read ``data`` the same way (same ProtocolError or same entries).

    Also: a scanner that just read a big frame reads ``data`` as a fresh one does, and the
    compiled scanner reads the same text given as ``str``.
    """
    results = []
    for impl, reused in zip(IMPLS, _reused, strict=True):
        fresh = scan_outcome(impl.FrameScanner(), data)
        reused.scan(_WARM)
        again = scan_outcome(reused, data)
        agree(f"{impl.name} scanner", fresh, again, ("fresh", "reused"))
        results.append(fresh)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        again = scan_outcome(COMPILED.FrameScanner(), text)
        agree("cython scanner", results[0], again, ("bytes", "str"))
    if "scan-encoding-detection" in OPEN_BUGS and json.detect_encoding(data) != "utf-8":
        return
    if "scan-lone-surrogates" in OPEN_BUGS and _SURROGATE.search(data):
        return
    if not has_duplicate_keys(data):
        agree("scan", results[0], results[1])


# -- frame builders ----------------------------------------------------------------------------

_DIGITS = "0123456789"


def number_text(inp: Input, mantissa: int, scale: int) -> str:
    """Render ``mantissa`` at ``scale`` in one of the ways Kraken (or a broken peer) might."""
    style = inp.int(0, 15)
    if style == 0:  # an arbitrary short token
        return "".join(inp.pick("0123456789.-+eE") for _ in range(inp.int(0, 6)))
    if style == 1:  # way too many digits, or an int64 edge
        return inp.pick(
            ["9223372036854775807", "9223372036854775808", "1" * 25, "0." + "0" * 30 + "1", "-0"]
        )
    negative = mantissa < 0
    mantissa = abs(mantissa)
    digits = str(mantissa).rjust(scale + 1, "0")
    whole, frac = (digits[:-scale], digits[-scale:]) if scale else (digits, "")
    if style == 2 and frac:
        frac = frac.rstrip("0")  # Kraken drops trailing zeros
    elif style == 3:
        frac += "0" * inp.int(1, 3)  # more zeros than the scale: still exact
    elif style == 4:
        frac += str(inp.int(1, 9))  # more significant digits than the scale: an error
    elif style == 5:  # exponent notation of the same value
        exponent = inp.int(-3, 3)
        text = f"{whole}{frac}"
        point = len(whole) - exponent
        if 0 < point < len(text):
            body = f"{text[:point]}.{text[point:]}"
        elif point <= 0:
            body = "0." + "0" * (-point) + text
        else:
            body = text + "0" * (point - len(text))
        return ("-" if negative else "") + f"{body}e{exponent}"
    text = whole + (("." + frac) if frac else "")
    return ("-" if negative else "") + text


def json_number(inp: Input, text: str) -> str:
    """As a JSON number, or as a string (both occur on the wire)."""
    if inp.int(0, 3) == 0:
        return json.dumps(text)
    return text


def mantissa(inp: Input, base: int) -> int:
    kind = inp.int(0, 7)
    if kind == 0:
        return 0
    if kind == 1:
        return inp.pick([1, (1 << 63) - 1, (1 << 62), 10**18, -1])
    return base + inp.int(-8, 8)


def mutate(inp: Input, frame: bytes) -> bytes:
    """Flip, drop or insert a few bytes of ``frame``."""
    out = bytearray(frame)
    for _ in range(inp.int(0, 3)):
        if not out:
            break
        at = inp.int(0, len(out) - 1)
        op = inp.int(0, 2)
        if op == 0:
            out[at] = inp.pick(b'{}[]:,"\\ 0123456789.-eE\x00\xff')
        elif op == 1:
            del out[at : at + inp.int(1, 4)]
        else:
            out[at:at] = inp.take(inp.int(1, 4))
    return bytes(out)


# -- L2 ----------------------------------------------------------------------------------------

L2_SYMBOL = "BTC/USD"
V1_PAIR = "XBT/USD"


def _l2_state(book: Any) -> tuple[Any, ...]:
    return (
        book.bids(),
        book.asks(),
        outcome(book.checksum, (BookError,)),
        book.bid_levels,
        book.ask_levels,
        book.best_bid(),
        book.best_ask(),
        len(book),
        book.bids_array().tolist(),
        book.asks_array(3).tolist(),
        book.price_precision,
        book.qty_precision,
    )


def _l2_levels(inp: Input, side: int, pp: int, qp: int) -> list[tuple[str, str]]:
    levels = []
    for _ in range(inp.int(0, 6)):
        price = mantissa(inp, 1000 * 10**pp + (-20 if side == 0 else 20))
        qty = mantissa(inp, 10**qp)
        levels.append((number_text(inp, price, pp), number_text(inp, qty, qp)))
    return levels


def _v2_book_frame(
    inp: Input,
    snapshot: bool,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    checksum: Any,
) -> bytes:
    book: dict[str, Any] = {"symbol": L2_SYMBOL}
    body = []
    for side, levels in (("bids", bids), ("asks", asks)):
        if levels or inp.int(0, 3):
            entries = ",".join(
                f'{{"price":{json_number(inp, p)},"qty":{json_number(inp, q)}}}' for p, q in levels
            )
            body.append(f'"{side}":[{entries}]')
    if checksum is not None:
        body.append(f'"checksum":{checksum}')
    if inp.int(0, 3) == 0:
        body.append('"timestamp":"2023-07-30T15:29:58.343415Z"')
    kind = "snapshot" if snapshot else "update"
    book_text = ",".join([f'"symbol":{json.dumps(book["symbol"])}', *body])
    return f'{{"channel":"book","type":"{kind}","data":[{{{book_text}}}]}}'.encode()


def _v1_book_frame(
    snapshot: bool, bids: list[tuple[str, str]], asks: list[tuple[str, str]], checksum: Any
) -> bytes:
    def side(levels: list[tuple[str, str]]) -> list[list[str]]:
        return [[p, q, "1690730998.343415"] for p, q in levels]

    payload: dict[str, Any] = {}
    if snapshot:
        payload = {"as": side(asks), "bs": side(bids)}
    else:
        if asks:
            payload["a"] = side(asks)
        if bids:
            payload["b"] = side(bids)
        if checksum is not None:
            payload["c"] = str(checksum)
    return json.dumps([336, payload, "book-10", V1_PAIR]).encode()


def _checksum_field(inp: Input, correct: Callable[[], int | None]) -> Any:
    choice = inp.int(0, 7)
    if choice == 0:
        return None
    if choice == 1:
        return inp.int(0, 0xFFFFFFFF)
    if choice == 2:
        return inp.pick(["-1", "4294967296", '"12"', "1.0", "null", '""'])
    value = correct()
    return None if value is None else (f'"{value}"' if choice == 3 else value)


def _apply_frame(scanner: Any, book: Any, frame: bytes) -> tuple[Any, ...]:
    def run() -> Any:
        scanner.scan(frame)
        return book.apply_scanned(scanner)

    return outcome(run, (BookError,))


def check_l2(data: bytes) -> None:
    """A sequence of frames applied to both L2 books: same outcome and same book each time."""
    inp = Input(data)
    v1 = inp.int(0, 3) == 0
    depth = inp.pick([1, 2, 3, 5, 10, 10, 25, 1000])
    if v1:
        pp = qp = None
        scales = (inp.int(0, 5), inp.int(0, 8))  # what the wire will carry
    else:
        pp, qp = inp.int(0, 8), inp.int(0, 10)
        scales = (pp, qp)
    books = [impl.L2Book(V1_PAIR if v1 else L2_SYMBOL, depth, pp, qp) for impl in IMPLS]
    scanners = [impl.FrameScanner() for impl in IMPLS]
    for step in range(24):
        if inp.exhausted:
            break
        op = inp.int(0, 9)
        if op == 0:  # raw bytes as a frame
            frame = inp.blob()
        elif op == 1:  # the Python API with non-text numbers
            _api_call(inp, books, step)
            continue
        else:
            snapshot = op == 2 or inp.int(0, 5) == 0
            bids = _l2_levels(inp, 0, *scales)
            asks = _l2_levels(inp, 1, *scales)

            def correct(
                snapshot: bool = snapshot,
                bids: list[tuple[str, str]] = bids,
                asks: list[tuple[str, str]] = asks,
            ) -> int | None:
                clone = copy.deepcopy(books[1])
                apply = clone.apply_snapshot if snapshot else clone.apply_update
                try:
                    apply(bids, asks)
                    return int(clone.checksum())
                except BookError:
                    return None

            checksum = _checksum_field(inp, correct)
            if v1:
                frame = _v1_book_frame(snapshot, bids, asks, checksum)
            else:
                frame = _v2_book_frame(inp, snapshot, bids, asks, checksum)
            if op == 9:
                frame = mutate(inp, frame)
        results = [
            _apply_frame(scanner, book, frame)
            for scanner, book in zip(scanners, books, strict=True)
        ]
        if not has_duplicate_keys(frame):
            agree(f"step {step}: apply {frame[:300]!r}", results[0], results[1])
        for book in books:
            book._check()
        agree(f"step {step}: book after {frame[:300]!r}", *(_l2_state(b) for b in books))


def _api_call(inp: Input, books: list[Any], step: int) -> None:
    """apply_snapshot/apply_update/clear with ints, Decimals, floats, bools, odd checksums."""
    from decimal import Decimal

    values: list[Any] = [0, 1, 10**6, (1 << 63) - 1, 1 << 63, -5, True, 1.5, Decimal("1.25"), None]

    def level() -> tuple[Any, Any]:
        return (
            inp.pick([*values, "1000", "999.9"]),
            inp.pick([*values, "1", "0.001"]),
        )

    op = inp.int(0, 3)
    if "l2-v1-api-numbers" in OPEN_BUGS and books[1].price_precision is None:
        values = ["1000", "999.9", "0", "1.5e2"]
    if op == 3:
        for book in books:
            book.clear()
        return
    bids = [level() for _ in range(inp.int(0, 3))]
    asks = [level() for _ in range(inp.int(0, 3))]
    checksum = inp.pick([None, 0, -1, 1 << 32, 12345, "12", 1.0])
    if "l2-api-checksum-text" in OPEN_BUGS and isinstance(checksum, str):
        checksum = None
    results = []
    for book in books:
        apply = book.apply_snapshot if op == 0 else book.apply_update
        results.append(
            # ValueError: a checksum argument outside uint32 is refused before any change.
            outcome(
                lambda apply=apply: apply(bids, asks, checksum), (BookError, TypeError, ValueError)
            )
        )
    what = f"step {step}: api {('apply_snapshot', 'apply_update', 'apply_update')[op]}"
    what += f"({bids}, {asks}, {checksum})"
    agree(what, results[0], results[1])
    for book in books:
        book._check()
    agree(f"{what}: book", *(_l2_state(b) for b in books))


# -- L3 ----------------------------------------------------------------------------------------

L3_SYMBOL = "BTC/USD"
ORDER_IDS = ["OA", "OB", "OC", "OD", "OE", "OF", "OTCFZG-YOE2Q-LQKNM3", 'O\u00e9\\"x']
TIMESTAMPS = [
    None,
    "2024-01-08T12:26:39.526146327Z",
    "2024-01-08T12:26:39Z",
    "2024-01-08T12:26:39.5+01:00",
    "2262-04-11T23:47:16.854775808Z",
    "not a time",
    "",
]


def _l3_entries(inp: Input, side: int, snapshot: bool, pp: int, qp: int) -> list[dict[str, Any]]:
    entries = []
    for _ in range(inp.int(0, 6)):
        price = mantissa(inp, 1000 * 10**pp + (-4 if side == 0 else 4))
        qty = mantissa(inp, 10**qp)
        entry: dict[str, Any] = {
            "order_id": inp.pick(ORDER_IDS),
            "limit_price": number_text(inp, price, pp),
            "order_qty": number_text(inp, qty, qp),
        }
        if not snapshot or inp.int(0, 7) == 0:
            event = inp.pick(["add", "add", "modify", "delete", "cancel"])
            if event != "cancel" or inp.bool():
                entry["event"] = event
        timestamp = inp.pick(TIMESTAMPS)
        if timestamp is not None:
            entry["timestamp"] = timestamp
        entries.append(entry)
    return entries


def _l3_frame(
    inp: Input,
    snapshot: bool,
    bids: list[dict[str, Any]],
    asks: list[dict[str, Any]],
    checksum: Any,
) -> bytes:
    def entry_text(entry: dict[str, Any]) -> str:
        parts = []
        for key, value in entry.items():
            if key in ("limit_price", "order_qty"):
                parts.append(f'"{key}":{json_number(inp, value)}')
            else:
                parts.append(f"{json.dumps(key)}:{json.dumps(value)}")
        return "{" + ",".join(parts) + "}"

    body = [f'"symbol":"{L3_SYMBOL}"']
    for side, entries in (("bids", bids), ("asks", asks)):
        if entries or inp.int(0, 3):
            body.append(f'"{side}":[{",".join(entry_text(e) for e in entries)}]')
    if checksum is not None:
        body.append(f'"checksum":{checksum}')
    kind = "snapshot" if snapshot else "update"
    return f'{{"channel":"level3","type":"{kind}","data":[{{{",".join(body)}}}]}}'.encode()


def l3_state(book: Any) -> tuple[Any, ...]:
    """Everything observable about an L3 book, order by order."""
    arrays = {name: array.tolist() for name, array in book.orders_arrays(order_ids=True).items()}
    queues = []
    for side, levels in (("bid", book.bids()), ("ask", book.asks())):
        for price, _ in levels[:4]:
            queues.append(book.level_orders(side, price))
    return (
        book.checksum(),
        arrays,
        book.bids(),
        book.asks(),
        book.bids_array(2).tolist(),
        len(book),
        book.order_count,
        book.bid_levels,
        book.ask_levels,
        book.best_bid(),
        book.best_ask(),
        book.needs_resync,
        [(oid, oid in book, book.order(oid), book.queue_position(oid)) for oid in ORDER_IDS],
        queues,
    )


def check_l3(data: bytes) -> None:
    """A sequence of level3 frames applied to both L3 books: same outcome, same book."""
    if COMPILED.L3Book is None or REFERENCE.L3Book is None:
        return
    inp = Input(data)
    depth = inp.pick([1, 2, 3, 10, 10, 100])
    pp, qp = inp.int(0, 8), inp.int(0, 10)
    books = [impl.L3Book(L3_SYMBOL, depth, pp, qp) for impl in IMPLS]
    scanners = [impl.FrameScanner() for impl in IMPLS]
    for step in range(24):
        if inp.exhausted:
            break
        op = inp.int(0, 9)
        if op == 0:
            frame = inp.blob()
        elif op == 1:
            for book in books:
                book.clear()
            agree(f"step {step}: clear", *(l3_state(b) for b in books))
            continue
        else:
            snapshot = op == 2 or inp.int(0, 6) == 0
            bids = _l3_entries(inp, 0, snapshot, pp, qp)
            asks = _l3_entries(inp, 1, snapshot, pp, qp)

            def correct(
                snapshot: bool = snapshot,
                bids: list[dict[str, Any]] = bids,
                asks: list[dict[str, Any]] = asks,
            ) -> int | None:
                clone = copy.deepcopy(books[1])
                apply = clone.apply_snapshot if snapshot else clone.apply_update
                try:
                    apply(bids, asks)
                    return int(clone.checksum())
                except (BookError, TypeError, ValueError):
                    return None

            checksum = _checksum_field(inp, correct)
            frame = _l3_frame(inp, snapshot, bids, asks, checksum)
            if op == 9:
                frame = mutate(inp, frame)
        results = [
            _apply_frame(scanner, book, frame)
            for scanner, book in zip(scanners, books, strict=True)
        ]
        if not has_duplicate_keys(frame):
            agree(f"step {step}: apply {frame[:400]!r}", results[0], results[1])
        for book in books:
            book._check()
        agree(f"step {step}: book after {frame[:400]!r}", *(l3_state(b) for b in books))


# -- capture reader ----------------------------------------------------------------------------

_TMP = Path(tempfile.mkdtemp(prefix="bookengine-fuzz-"))


def _read_all(path: Path) -> tuple[Any, ...]:
    """Every record and note a full read gives, or the CaptureError it ends with."""
    reader = CaptureReader([path], kinds=("frame", "sent", "header", "checkpoint", "torn"))
    records = []
    try:
        for record in reader:
            assert isinstance(record.frame, bytes)
            assert b"\n" not in record.frame, record
            assert isinstance(record.recv_ts_ns, int)
            records.append((record.line, record.recv_ts_ns, record.frame, record.kind))
    except CaptureError as exc:
        records.append(("CaptureError", str(exc).replace(str(path), "<path>")))
    report = reader.report
    lines = [r[0] for r in records if isinstance(r[0], int)]
    assert lines == sorted(lines), lines
    return (
        records,
        report.frames,
        report.sent,
        report.checkpoints,
        report.comments,
        len(report.torn),
        [(n.kind, n.line) for n in report.notes if n.kind == "torn"],
    )


def _read_frames(path: Path) -> None:
    report = CaptureReport()
    try:
        for record in read_frames([path], report=report, sent=True):
            assert record.kind in ("frame", "sent"), record
    except CaptureError:
        pass


def check_capture(data: bytes) -> None:
    """Arbitrary bytes as a capture file: records or CaptureError, never another exception.

    The same decoded bytes read the same as plain, gzip and zstd files; damaged or truncated
    compressed files read a prefix of the plain reading and say so.
    """
    inp = Input(data)
    mode = inp.int(0, 5)
    content = inp.rest()
    plain = _TMP / f"p{os.getpid()}.jsonl"
    plain.write_bytes(content)
    _read_frames(plain)
    expected = _read_all(plain)
    if mode == 0:
        return
    gz = _TMP / f"g{os.getpid()}.jsonl.gz"
    compressed = gzip.compress(content, mtime=0)
    if mode == 1:  # whole gzip file: reads like the plain one
        gz.write_bytes(compressed)
        _read_frames(gz)
        agree("gzip vs plain", _read_all(gz), expected)
        return
    if mode == 2:  # truncated or damaged gzip: a clean read of whatever decodes
        cut = len(content) % max(1, len(compressed))
        damaged = bytearray(compressed[:cut] if cut else compressed)
        if damaged and content[:1] and content[0] & 1:
            damaged[len(damaged) // 2] ^= 0xFF
        gz.write_bytes(bytes(damaged))
        _read_frames(gz)
        _read_all(gz)
        return
    if mode == 3:  # the fuzz bytes themselves as a .gz file
        gz.write_bytes(content)
        _read_frames(gz)
        _read_all(gz)
        return
    if mode == 4:  # two gzip members with zero padding between them
        half = len(content) // 2
        gz.write_bytes(
            gzip.compress(content[:half], mtime=0)
            + b"\0\0"
            + gzip.compress(content[half:], mtime=0)
        )
        agree("gzip members vs plain", _read_all(gz), expected)
        return
    try:
        import zstandard
    except ImportError:
        return
    zst = _TMP / f"z{os.getpid()}.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(content))
    _read_frames(zst)
    agree("zstd vs plain", _read_all(zst), expected)


# -- session: receive_buffer vs receive --------------------------------------------------------


def _session_pool() -> list[bytes]:
    pool: list[bytes] = []
    v2 = (DATA / "v2-book-btcusd-depth10.jsonl").read_bytes().splitlines()
    pool += v2[:24]
    v1 = (DATA / "v1-book-xbtusd-depth10.jsonl").read_bytes().splitlines()
    pool += v1[:12]
    for name in (
        "docs-v2-book-guide-btcusd.jsonl",
        "docs-v2-book-reference-maticusd.jsonl",
        "docs-v2-level3-guide-btcusd.jsonl",
        "docs-v1-book-guide.jsonl",
    ):
        pool += (DATA / name).read_bytes().splitlines()
    pool += [
        b'{"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":['
        b'{"symbol":"BTC/USD","price_precision":1,"qty_precision":8},'
        b'{"symbol":"MATIC/USD","price_precision":4,"qty_precision":8}]}}',
        b'{"channel":"instrument","type":"update","data":{"pairs":['
        b'{"symbol":"BTC/USD","price_precision":2,"qty_precision":8}]}}',
        b'{"channel":"status","type":"update","data":[{"system":"maintenance",'
        b'"api_version":"v2","connection_id":13834774380200032777,"version":"2.0.0"}]}',
        b'{"channel":"heartbeat"}',
        b'{"method":"pong","req_id":1,"time_in":"2023-09-24T14:10:23.799685Z",'
        b'"time_out":"2023-09-24T14:10:23.799703Z"}',
        b'{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,'
        b'"symbol":"BTC/USD"},"success":true}',
        b'{"method":"subscribe","error":"Exceeded msg rate","success":false,"symbol":"BTC/USD"}',
        b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[]}]}',
        b'{"channel":"book","type":"update","data":[{"symbol":"ETH/USD","bids":[],"asks":[]}]}',
        b"[1,2,3]",
        b"not json",
    ]
    return pool


_POOL = _session_pool()
_PRECISIONS = {"BTC/USD": (1, 8), "MATIC/USD": (4, 8)}
_TIMESTAMPS = [
    b"",
    b"1690730998343415000\t",
    b"1690730998.343415\t",
    b"2023-07-30T15:29:58.343415Z\t",
    b"123456789012345678901\t",
    b"12a\t",
    b"\t",
]


def session_lines(inp: Input) -> list[bytes]:
    """Capture lines made of pool frames (some mutated), timestamps, blanks and odd endings."""
    lines = []
    for _ in range(inp.int(1, 40)):
        if inp.exhausted:
            break
        choice = inp.int(0, 15)
        if choice == 0:
            line = inp.blob(200)
        elif choice == 1:
            line = b""
        else:
            line = inp.pick(_POOL)
            if choice == 2:
                line = mutate(inp, line)
            line = inp.pick(_TIMESTAMPS) + line
        line = line.replace(b"\n", b" ")
        ending = inp.int(0, 7)
        if ending == 0:
            line += b"\r"
        elif ending == 1:
            line += b"  "
        lines.append(line)
    return lines


def _session_state(session: Any, times: bool = True) -> tuple[Any, ...]:
    books = {}
    for key, state in sorted(session.books.items()):
        book = state.book
        view = None
        if book is not None:
            view = (book.bids(), book.asks(), outcome(book.checksum, (BookError,)))
        books[key] = (
            view,
            state.messages,
            state.checksums_checked,
            state.checksum_mismatches,
            state.invalid_messages,
            state.skipped_while_stale,
            state.resyncs,
            state.stale,
            state.depth,
            state.last_recv_ts_ns if times else None,
        )
    return (session.frames, session.bad_frames, session.last_recv_ts_ns if times else None, books)


def frame_by_frame(session: Any, path: Path) -> list[tuple[int, list[Any]]]:
    """The oracle of the capture path: each frame of the file through ``session.receive``.

    Lines come from the capture reader one at a time (a line without a receive time takes the
    previous line's), so only the batching of the one line reader differs from a replay.
    """
    out = []
    last = -1
    for record in CaptureReader([path], kinds=("frame",)):
        recv_ts_ns = record.recv_ts_ns if record.recv_ts_ns >= 0 else last
        last = recv_ts_ns
        events = [
            e for e in session.receive(record.frame, recv_ts_ns) if not isinstance(e, BookChanged)
        ]
        if events:
            out.append((record.line, events))
    return out


def replayed(implementation_name: str, path: Path) -> tuple[Any, list[tuple[int, list[Any]]]]:
    """A replay of the file (the line reader in batches): its session and problem events."""
    replayer = Replayer([path], precisions=_PRECISIONS, implementation_name=implementation_name)
    seen = []
    for record, events in replayer.records():
        kept = [e for e in events if not isinstance(e, BookChanged)]
        if kept:
            seen.append((record.line, kept))
    return replayer.session, seen


def _unworded(seen: list[tuple[int, list[Any]]]) -> list[tuple[int, list[Any]]]:
    return [
        (
            line,
            [("BadFrame", e.recv_ts_ns) if type(e).__name__ == "BadFrame" else e for e in events],
        )
        for line, events in seen
    ]


def check_session(data: bytes) -> None:
    """A replay (the line reader, compiled and pure) equals frame-by-frame ``receive``."""
    inp = Input(data)
    buffer = b"\n".join(session_lines(inp))
    if inp.bool():
        buffer += b"\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "capture.jsonl"
        path.write_bytes(buffer)
        refused = [outcome(lambda n=name: replayed(n, path), (CaptureError,)) for name in NAMES]
        if any(kind == "raised" for kind, _ in refused):
            # A file in no capture format: both implementations refuse it the same way.
            agree(
                "refusal",
                refused[0][1] if refused[0][0] == "raised" else None,
                refused[1][1] if refused[1][0] == "raised" else None,
            )
            return
        fast, seen = refused[0][1]
        slow = KrakenSession(precisions=_PRECISIONS, implementation_name="cython")
        expected = frame_by_frame(slow, path)
        names = ("replay", "receive")
        agree("events", seen, expected, names)
        times = "session-mismatch-recv-ts" not in OPEN_BUGS
        agree("state", _session_state(fast, times), _session_state(slow, times), names)
        pure, pure_seen = refused[1][1]
        # The two scanners word a malformed frame differently; what happened must agree.
        agree("cython vs python replay events", _unworded(seen), _unworded(pure_seen))
        agree("cython vs python replay", _session_state(fast), _session_state(pure))


CHECKS: dict[str, Callable[[bytes], None]] = {
    "scan": check_scan,
    "l2": check_l2,
    "l3": check_l3,
    "capture": check_capture,
    "session": check_session,
}
