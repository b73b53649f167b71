"""The line reader in pure Python: the twin of :mod:`bookengine._core.router`, same verdicts.

Obvious over fast: each line is split, its receive-time prefix read, filtered by symbol, and
then either applied to a routed book with the reference scanner and book, read as trades,
counted as a heartbeat, or handed to the session, exactly where the compiled reader does so.
See the compiled module for the contract; the differential tests hold the two together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from .. import core_types as codes
from ..errors import BookError, ChecksumError, ProtocolError
from ..kraken.events import Event, Trade, Trades, new_book_changed
from ..numbers import parse_mantissa
from ..timestamps import parse_rfc3339_ns
from .l2book import L2BookCore
from .l3book import L3BookCore
from .scan import FrameScanner

INT64_MAX = (1 << 63) - 1
HEARTBEAT = b'{"channel":"heartbeat"}'
_DATA_PREFIXES = (b'{"channel":"book"', b'{"channel":"level3"', b'{"channel":"trade"')
_SYMBOL = re.compile(rb'"symbol":"([^"]*)"')
_TRADE_KEYS = frozenset({"symbol", "side", "price", "qty", "ord_type", "trade_id", "timestamp"})
_UNIX_SECONDS = re.compile(rb"([0-9]+)(?:\.([0-9]{1,9}))?")


def _unix_ns(text: bytes) -> int:
    """``1690730998.343415`` -> ns exactly; -1 when not that form (cryptofeed's times)."""
    match = _UNIX_SECONDS.fullmatch(text)
    if match is None or len(text) > 21:
        return -1
    whole, fraction = match.group(1), match.group(2) or b""
    value = int(whole + fraction.ljust(9, b"0"))
    return value if value <= INT64_MAX else -1


class BookRouter:
    """Books the session trusts, trade precisions, a symbol filter, and the line loop."""

    def __init__(self) -> None:
        self.scanner = FrameScanner()
        self._books: dict[tuple[int, str, str], tuple[Any, bool, Any]] = {}
        self._counts: dict[tuple[int, str, str], list[int]] = {}
        self._trade_scales: dict[str, tuple[int, int]] = {}
        self._wanted: frozenset[str] | None = None
        self.failure: tuple[int, str, str, Any, int] | None = None
        self.lines = 0
        self.last_recv_ts = -1
        self.span_start = self.span_stop = 0
        self.applied_tag: Any = None
        self.applied_snapshot = self.applied_verified = False
        self.applied_event: Event | None = None
        self.effects_on = False
        self.counted = False
        self.want_trades = False
        self.events: list[Event] = []
        self.heartbeats = self.trade_frames = self.trades = self.filtered = 0
        self.next_recv_ts = -1
        self.scanned = False
        self.scan_error: BookError | None = None

    # -- what the session tells the reader -------------------------------------------------

    def add(
        self,
        kind: int,
        symbol: str,
        book: Any,
        channel_name: str = "",
        emit: bool = False,
        tag: Any = None,
    ) -> None:
        expected = L3BookCore if kind == codes.KIND_LEVEL3 else L2BookCore
        if kind not in (codes.KIND_BOOK, codes.KIND_LEVEL3, codes.KIND_V1_BOOK):
            raise ValueError(f"not a book kind: {kind}")
        if not isinstance(book, expected):
            raise TypeError(f"not a reference {expected.__name__}: {type(book).__name__}")
        key = (kind, symbol, channel_name if kind == codes.KIND_V1_BOOK else "")
        self._books[key] = (book, emit, tag)
        self._counts.setdefault(key, [0, 0, -1])

    def remove(self, kind: int, symbol: str, channel_name: str = "") -> None:
        self._books.pop((kind, symbol, channel_name if kind == codes.KIND_V1_BOOK else ""), None)

    def routes(self, kind: int, symbol: str, channel_name: str = "") -> bool:
        return (kind, symbol, channel_name if kind == codes.KIND_V1_BOOK else "") in self._books

    def set_emit(self, emit: bool) -> None:
        self._books = {key: (book, emit, tag) for key, (book, _, tag) in self._books.items()}

    def set_sink(self, sink: Any) -> None:
        # The compiled consumers are C: fed by the compiled reader only. Their reference is
        # the event path (BookAnalytics.replay), which this reader serves.
        if sink is not None:
            raise TypeError("the pure-Python line reader feeds no compiled sink")

    def set_trade_precision(self, symbol: str, price_precision: int, qty_precision: int) -> None:
        self._trade_scales[symbol] = (price_precision, qty_precision)

    def forget_trade_precision(self, symbol: str) -> None:
        self._trade_scales.pop(symbol, None)

    def set_symbols(self, symbols: Iterable[str] | None) -> None:
        self._wanted = None if symbols is None else frozenset(symbols)

    def take_counts(self) -> dict[tuple[int, str, str], tuple[int, int, int]]:
        self.counted = False
        out = {}
        for key, counts in self._counts.items():
            if counts[0]:
                out[key] = (counts[0], counts[1], counts[2])
                counts[0] = counts[1] = 0
        return out

    def take_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    # -- the loop ----------------------------------------------------------------------------

    def _filtered_out(self, frame: bytes) -> bool:
        assert self._wanted is not None
        if not frame.startswith(_DATA_PREFIXES):
            return False
        match = _SYMBOL.search(frame, 12)
        return match is not None and match.group(1).decode("utf-8") not in self._wanted

    def _read_trades(self, frame: bytes, recv_ts: int) -> bool:
        """The compiled reader's Kraken-layout rule, through json: True when read here."""
        if not frame.startswith(b'{"channel":"trade","type":"') or b"\\" in frame:
            return False
        if any(c in frame for c in (b" ", b"\t", b"\r")):
            return False  # Kraken's layout has no whitespace (a space in a value is odd too)
        try:
            message = json.loads(frame, parse_float=str, parse_int=str)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return False
        if list(message) != ["channel", "type", "data"] or message["type"] not in (
            "update",
            "snapshot",
        ):
            return False
        data = message["data"]
        if not isinstance(data, list) or len(data) > 4096:
            return False
        if not data:
            self.trade_frames += 1
            return True
        records: list[tuple[Any, ...]] = []
        for item in data:
            if not isinstance(item, dict) or not set(item) <= _TRADE_KEYS:
                return False
            if not {"symbol", "side", "price", "qty"} <= set(item):
                return False
            if not all(
                isinstance(item.get(k, ""), str)
                for k in ("symbol", "side", "ord_type", "timestamp")
            ):
                return False
            if item["side"] not in ("buy", "sell") or item["symbol"] != data[0]["symbol"]:
                return False
            records.append(
                (item["side"], item["price"], item["qty"], item.get("ord_type", ""), item)
            )
        symbol = data[0]["symbol"]
        scales = self._trade_scales.get(symbol)
        if scales is None:
            return False
        trades = []
        for side, price_text, qty_text, ord_type, item in records:
            try:
                price = parse_mantissa(price_text, scales[0])
                qty = parse_mantissa(qty_text, scales[1])
                trade_id = -1
                if "trade_id" in item:
                    text = item["trade_id"]
                    if not (isinstance(text, str) and text.isdigit() and len(text) <= 18):
                        return False
                    trade_id = int(text)
                stamp = parse_rfc3339_ns(item["timestamp"]) if "timestamp" in item else -1
            except (BookError, ProtocolError):
                return False
            trades.append(Trade(symbol, side, price, qty, trade_id, stamp, recv_ts, ord_type))
        self.trade_frames += 1
        self.trades += len(trades)
        if self.want_trades:
            self.events.append(
                Trades(symbol, tuple(trades), *scales, recv_ts, message["type"] == "snapshot")
            )
        return True

    def _prefix(self, line: bytes, line_format: int) -> tuple[int, int] | None:
        """(recv_ts or -1, frame offset) of a received frame; None: the capture layer's line."""
        if line_format == codes.LINES_KRAKEN:
            if line[:1] in (b"{", b"["):
                return -1, 0
            head, tab, rest = line.partition(b"\t")
            if (
                not tab
                or not head.isdigit()
                or len(head) > 19
                or int(head) > INT64_MAX
                or rest[:1] not in (b"{", b"[")
            ):
                return None
            return int(head), len(head) + 1
        if line_format == codes.LINES_TARDIS:
            if len(line) < 30 or line[28:29] != b" ":
                return None
            try:
                return parse_rfc3339_ns(line[:28].decode("ascii")), 29
            except (ProtocolError, UnicodeDecodeError):
                return None
        head, sep, rest = line.partition(b": ")
        stamp = _unix_ns(head) if sep and rest else -1
        return None if stamp < 0 else (stamp, len(head) + 2)

    def _event(
        self,
        state: Any,
        book: Any,
        kind: int,
        is_snapshot: bool,
        verified: bool,
        recv_ts: int,
    ) -> Event:
        # The session's own steps for an applied message: counts, then its BookChanged.
        state.messages += 1
        state.checksums_checked += verified
        state.last_recv_ts_ns = recv_ts
        effects = book.effects() if kind == codes.KIND_LEVEL3 and self.effects_on else ()
        return new_book_changed(
            state.key, state.symbol, book, recv_ts, is_snapshot, verified, effects
        )

    def apply_frame(self, frame: bytes, recv_ts_ns: int) -> int:
        """One socket frame received at ``recv_ts_ns``; the stop code (see the compiled twin)."""
        self.last_recv_ts = recv_ts_ns
        if frame[:1] not in (b"{", b"[") or b"\n" in frame:
            self.failure = None
            self.scanned = False
            self.span_start, self.span_stop = 0, len(frame)
            self.lines = 1
            return codes.STOP_HANDOFF
        return self.apply_lines(frame, 0, codes.LINES_KRAKEN, INT64_MAX)[1]

    def apply_lines(
        self,
        data: bytes,
        pos: int = 0,
        line_format: int = codes.LINES_KRAKEN,
        until_ns: int = INT64_MAX,
        limit: int = -1,
    ) -> tuple[int, int]:
        """Read lines of ``data[:limit]`` from ``pos`` until a stop (see the compiled twin)."""
        self.failure = None
        self.lines = 0
        size = len(data) if limit < 0 else min(limit, len(data))
        scanner = self.scanner
        while pos < size:
            start = pos
            end = data.find(b"\n", pos, size)
            next_pos = size if end < 0 else end + 1
            stop = size if end < 0 else end
            while stop > start and data[stop - 1] in b"\r ":
                stop -= 1
            if stop == start:
                self.lines += 1
                if line_format == codes.LINES_TARDIS:
                    self.span_start = self.span_stop = start
                    return next_pos, codes.STOP_LINE
                pos = next_pos
                continue
            line = data[start:stop]
            prefix = self._prefix(line, line_format)
            if prefix is None:
                self.span_start, self.span_stop = start, stop
                self.lines += 1
                return next_pos, codes.STOP_LINE
            recv_ts, offset = prefix
            if recv_ts < 0:
                recv_ts = self.last_recv_ts
            elif recv_ts > until_ns:
                self.next_recv_ts = recv_ts
                return start, codes.STOP_TIME
            frame = line[offset:]
            self.last_recv_ts = recv_ts
            self.lines += 1
            if self._wanted is not None and self._filtered_out(frame):
                self.filtered += 1
                pos = next_pos
                continue
            if frame == HEARTBEAT:
                self.heartbeats += 1
                pos = next_pos
                continue
            if self._read_trades(frame, recv_ts):
                pos = next_pos
                continue
            self.span_start, self.span_stop = start + offset, stop
            self.scanned = True
            self.scan_error = None
            try:
                kind = scanner.scan(frame)
            except BookError as exc:
                self.scan_error = exc
                return next_pos, codes.STOP_HANDOFF
            if kind == codes.KIND_OTHER:
                return next_pos, codes.STOP_HANDOFF
            channel_name = scanner.channel_name if kind == codes.KIND_V1_BOOK else ""
            key = (kind, scanner.symbol, channel_name)
            routed = self._books.get(key)
            if routed is None:
                return next_pos, codes.STOP_HANDOFF
            book, emit, tag = routed
            try:
                verified = book.apply_scanned(scanner) is True
            except ChecksumError as exc:
                self.failure = (kind, scanner.symbol, channel_name, exc, recv_ts)
                return next_pos, codes.STOP_MISMATCH
            except BookError:
                return next_pos, codes.STOP_HANDOFF
            crossed = kind != codes.KIND_LEVEL3 and book.is_crossed()
            if emit and not crossed:
                # The session counts this message as it makes its event.
                self.applied_tag = tag
                self.applied_snapshot = scanner.is_snapshot
                self.applied_verified = verified
                self.applied_event = None
                if tag is not None:
                    self.applied_event = self._event(
                        tag, book, kind, scanner.is_snapshot, verified, recv_ts
                    )
                return next_pos, codes.STOP_APPLIED
            counts = self._counts[key]
            counts[0] += 1
            counts[1] += verified
            counts[2] = recv_ts
            self.counted = True
            if crossed:
                self.failure = (kind, scanner.symbol, channel_name, None, recv_ts)
                return next_pos, codes.STOP_CROSSED
            pos = next_pos
        return pos, codes.STOP_END


def count_lines(data: bytes, start: int = 0, end: int = -1) -> int:
    """Newlines in ``data[start:end]`` (``end`` -1: to the end)."""
    return data.count(b"\n", start, len(data) if end < 0 else end)
