"""KrakenSession: the sans-I/O protocol state machine. Frames in, events and requests out.

No sockets, no clocks, no asyncio: the caller passes each received frame with its receive time
(``recv_ts_ns``) and sends whatever :meth:`KrakenSession.requests_to_send` returns. The live feed
and replay drive the very same object, so what was verified live replays bit for bit.

Routing (protocol reference, section 6): book data frames go to the compiled scanner and the
book keyed by ``(channel, symbol)``; everything else (acks, status, instrument, pong, heartbeat,
trade...) is decoded with ``json``. A book that fails (checksum mismatch, crossed, bad message)
is marked stale and resynced alone: unsubscribe + subscribe once per episode, retried with
exponential backoff only if the fresh snapshot does not arrive or fails again; every other book
keeps flowing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import core_types as codes
from .._impl import Implementation, implementation
from ..core_types import BOOK_DEPTHS, LEVEL3_DEPTHS
from ..errors import BookError, ChecksumError, ProtocolError, UnknownSymbolError
from ..instruments import Instruments
from ..numbers import parse_mantissa
from ..timestamps import parse_rfc3339_ns
from . import forensics, frames
from .events import (
    BadFrame,
    BookInvalid,
    Event,
    Executions,
    InstrumentsUpdated,
    Pong,
    RequestFailed,
    ResyncRequested,
    Subscribed,
    SystemStatus,
    Trade,
    Trades,
    Unsubscribed,
    new_book_changed,
)

INT64_MAX = (1 << 63) - 1

SECOND_NS = 1_000_000_000


def _server_ns(message: Mapping[str, Any]) -> int | None:
    """Kraken's processing time from ``time_in``/``time_out`` (None when absent or odd)."""
    time_in, time_out = message.get("time_in"), message.get("time_out")
    if not isinstance(time_in, str) or not isinstance(time_out, str):
        return None
    try:
        return parse_rfc3339_ns(time_out) - parse_rfc3339_ns(time_in)
    except ProtocolError:
        return None


@dataclass
class BookState:
    """One book and its health, as the session keeps it."""

    key: str
    channel: str
    """``"book"`` or ``"level3"``."""
    protocol: str
    """``"v1"`` or ``"v2"``."""
    symbol: str
    depth: int | None
    book: Any = None
    messages: int = 0
    """Messages applied (snapshots included)."""
    checksums_checked: int = 0
    checksum_mismatches: int = 0
    invalid_messages: int = 0
    """Messages refused (bad entry, crossed, update before snapshot)."""
    skipped_while_stale: int = 0
    resyncs: int = 0
    """Resync requests queued for this book."""
    stale: bool = False
    stale_reason: str = ""
    last_recv_ts_ns: int = -1
    _resync_attempt: int = 0
    _resync_due_ns: int | None = None

    def summary(self) -> dict[str, Any]:
        """The ``replay --json`` record of this book (prices as decimal strings)."""
        book = self.book
        best_bid = book.best_bid() if book is not None else None
        best_ask = book.best_ask() if book is not None else None
        summary: dict[str, Any] = {
            "channel": self.channel,
            "protocol": self.protocol,
            "symbol": self.symbol,
            "depth": self.depth,
            "messages": self.messages,
            "checksums_checked": self.checksums_checked,
            "checksum_mismatches": self.checksum_mismatches,
            "best_bid": None if best_bid is None else book.price_text(best_bid[0]),
            "best_ask": None if best_ask is None else book.price_text(best_ask[0]),
            "bid_levels": 0 if book is None else book.bid_levels,
            "ask_levels": 0 if book is None else book.ask_levels,
        }
        if self.channel == "level3":
            summary["orders"] = 0 if book is None else len(book)
        return summary


@dataclass
class _Subscription:
    channel: str
    symbol: str
    depth: int | None


@dataclass
class _Pending:
    method: str
    sent_ns: int
    symbols: tuple[str, ...] = field(default_factory=tuple)
    channel: str = ""


RATE_LIMITED = "Exceeded msg rate"
"""Kraken's answer to too many requests: worth retrying later, unlike other refusals."""


class KrakenSession:
    """Protocol state for one connection (or one replayed capture).

    Args:
        protocol: ``"v2"`` (default) or ``"v1"``: the format of the requests this session makes.
            Data frames of either protocol are always understood.
        precisions: ``symbol -> (price_precision, qty_precision)`` known up front (v2 only);
            ``instrument`` frames add to and update them.
        depth: depth to assume for a book whose subscription this session did not see
            (replay of a capture without acks). ``None``: the smallest Kraken depth that holds
            the snapshot.
        implementation: ``"cython"``, ``"python"`` or None for the active one.
        resync_backoff_ns: (first, cap) delay between repeated resyncs of one book.
        level3_effects: every level3 book records what each update did to its queues, and
            its :class:`BookChanged` events carry them (``effects``; see :meth:`record_effects`).
        resync_timeout_ns: how long to wait for the snapshot after a resync before asking again.
    """

    def __init__(
        self,
        *,
        protocol: str = "v2",
        precisions: Mapping[str, tuple[int, int]] | None = None,
        instruments: Instruments | None = None,
        depth: int | None = None,
        implementation_name: str | None = None,
        resync_backoff_ns: tuple[int, int] = (SECOND_NS, 60 * SECOND_NS),
        resync_timeout_ns: int = 10 * SECOND_NS,
        level3_effects: bool = False,
    ) -> None:
        if protocol not in ("v1", "v2"):
            raise ValueError(f"protocol must be 'v1' or 'v2', got {protocol!r}")
        self.protocol = protocol
        self.impl: Implementation = implementation(implementation_name)
        self.instruments = instruments if instruments is not None else Instruments()
        for symbol, (price_precision, qty_precision) in (precisions or {}).items():
            self.instruments.set(symbol, price_precision, qty_precision)
        self.default_depth = depth
        self.resync_backoff_ns = resync_backoff_ns
        self.resync_timeout_ns = resync_timeout_ns
        self.level3_effects = level3_effects
        """level3 ``BookChanged`` events carry ``effects`` (switch with :meth:`record_effects`)."""
        self._sink_attached = False  # set_sink: the level3 books record what a sink reads
        self.token: str | None = None
        """level3 token for this connection (set by the feed before subscribing)."""
        self.system_status: str | None = None
        self.connection_id: int | None = None
        self.frames = 0
        self.fast_path_frames = 0
        """Book messages applied by the line reader itself (in ``frames``)."""
        self.bad_frames = 0
        """Frames that were malformed or could not be applied to their book."""
        self.trades_unpriced = 0
        """Trades skipped because their symbol's precision is not known (cannot be exact)."""
        self.unpriced_symbols: set[str] = set()
        """The symbols of those trades."""
        self.last_recv_ts_ns = -1
        self.symbols: frozenset[str] | None = None
        """Symbols whose data frames are read (None: all); see :meth:`set_symbols`."""
        self._scanner = self.impl.FrameScanner()
        self._router: Any = self.impl.BookRouter()
        self._router.effects_on = level3_effects
        self._router_filtered = 0
        self._reader_frames = 0
        self._emit = False
        self._price_trades(self.instruments.symbols())
        self._books: dict[tuple[int, str, str], BookState] = {}
        self._subscriptions: dict[tuple[str, str], _Subscription] = {}
        self._outbox: list[str] = []
        self._pending: dict[int, _Pending] = {}
        self._retries: list[tuple[int, str, tuple[str, ...]]] = []  # (due, channel, symbols)
        self._retry_attempt = 0
        self._next_req_id = 1

    # -- books ---------------------------------------------------------------------------------

    @property
    def books(self) -> dict[str, BookState]:
        """Every book this session has seen, by key ``"<channel>:<symbol>"``."""
        return {state.key: state for state in self._books.values()}

    def book(self, key: str) -> Any:
        """The book with ``key`` (e.g. ``"book:BTC/USD"``), or None before its snapshot."""
        for state in self._books.values():
            if state.key == key:
                return state.book
        return None

    # -- receiving -----------------------------------------------------------------------------

    def receive(self, frame: bytes | str, recv_ts_ns: int = -1) -> list[Event]:
        """Process one frame; return what happened.

        The frame goes through the same reader as capture lines (:meth:`receive_lines`): book
        frames of healthy books, trades and heartbeats are read in compiled code, everything
        else here. Never raises for bad input: a malformed frame is a :class:`BadFrame` event,
        a bad book message a :class:`BookInvalid` (and a resync), a checksum failure a
        :class:`ChecksumMismatch` (and a resync).
        """
        if type(frame) is not bytes:
            data = (
                frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else bytes(frame)
            )
        else:
            data = frame
        router = self._router
        if not self._emit:
            self._emit = True
            router.set_emit(True)
        router.want_trades = True
        # One frame is one line: one stop of the reader consumes it.
        stop = router.apply_frame(data, recv_ts_ns)
        if stop == codes.STOP_APPLIED and not router.counted:
            # The common case, a healthy book: the reader counted it and made its event.
            self.frames += 1
            self.fast_path_frames += 1
            self.last_recv_ts_ns = recv_ts_ns
            return [router.applied_event]
        events: list[Event] = []
        self._after_stop(data, stop, events)
        return events

    def receive_lines(
        self,
        data: bytes,
        pos: int = 0,
        *,
        line_format: int = codes.LINES_KRAKEN,
        until_ns: int = INT64_MAX,
        emit: bool = True,
        trades: bool = True,
        end: int = -1,
    ) -> tuple[int, int, int, list[Event]]:
        """Read capture (or socket) lines of ``data[:end]`` from offset ``pos`` until a stop.

        This is the one reader of frames: the compiled line reader
        (:class:`bookengine._core.router.BookRouter`, or its pure twin) reads each line's
        receive time in ``line_format``, skips symbols filtered out (:meth:`set_symbols`),
        applies book frames of healthy books, parses trades and counts heartbeats; the frames it
        hands back (control frames, new, stale or failing books, anything malformed) are
        handled here. A line without a receive time takes the previous line's.

        Args:
            emit: a :class:`BookChanged` for every applied book message (False: books are
                applied and counted only, the fast replay).
            trades: :class:`Trades` events for trade frames (False: counted only).
            until_ns: stop before the first line received after this time.
            end: where the lines end (-1: the end of ``data``; a capture chunk holds whole
                lines up to there, so nobody copies them out of it).

        Returns:
            ``(offset, stop, lines, events)``: where to continue; why it stopped (a
            ``STOP_*`` code of :mod:`bookengine.core_types`: ``STOP_END`` all read,
            ``STOP_LINE`` a line that is not a received frame in this format (the capture
            layer's; see :attr:`line_span`), ``STOP_TIME`` the next line is past ``until_ns``,
            any other: the last line read produced ``events``); how many lines were consumed;
            the events of those lines, in order.
        """
        router = self._router
        if emit != self._emit:
            self._emit = emit
            router.set_emit(emit)
        router.want_trades = trades
        limit = until_ns if until_ns < INT64_MAX else INT64_MAX
        lines = 0
        events: list[Event] = []
        while True:
            pos, stop = router.apply_lines(data, pos, line_format, limit, end)
            lines += router.lines
            if self._after_stop(data, stop, events) or events:
                return pos, stop, lines, events

    def _after_stop(self, data: bytes, stop: int, events: list[Event]) -> bool:
        """Do what the line reader's ``stop`` asks; its events go to ``events``.

        Returns True when the stop is the caller's (end, a capture line, the time limit).
        """
        router = self._router
        self._merge_router_counts()
        if router.events:
            events.extend(router.take_events())
        if stop == codes.STOP_APPLIED:
            self.frames += 1
            self.fast_path_frames += 1
            events.append(router.applied_event)
        elif stop == codes.STOP_HANDOFF:
            recv_ts_ns = router.last_recv_ts
            self.frames += 1
            self.last_recv_ts_ns = recv_ts_ns
            # The reader's scanner has read the frame: judged here from what it found.
            frame = data[router.span_start : router.span_stop]
            events.extend(self._receive_frame(frame, recv_ts_ns, router))
        elif stop in (codes.STOP_MISMATCH, codes.STOP_CROSSED):
            frame = data[router.span_start : router.span_stop]
            events.extend(self._fast_path_failure(stop, router.failure, frame))
        else:
            return True
        return False

    @property
    def line_span(self) -> tuple[int, int]:
        """After ``STOP_LINE``: the line's ``(start, stop)`` offsets in the data (no newline)."""
        return self._router.span_start, self._router.span_stop

    @property
    def next_recv_ts_ns(self) -> int:
        """After a ``STOP_TIME``: the receive time of the line left unread."""
        return int(self._router.next_recv_ts)

    @property
    def filtered_frames(self) -> int:
        """Data frames of other symbols skipped by :meth:`set_symbols`."""
        return int(self._router.filtered) + self._router_filtered

    def resume_time(self, recv_ts_ns: int) -> None:
        """Lines without a receive time take ``recv_ts_ns`` from now on (until the next time)."""
        self._router.last_recv_ts = recv_ts_ns
        self.last_recv_ts_ns = recv_ts_ns

    def disconnected(self, recv_ts_ns: int = -1) -> list[Event]:
        """The connection the frames came from dropped (a capture says so): every book goes
        stale until its next snapshot, as after a real disconnect."""
        events: list[Event] = []
        for state in self._books.values():
            if state.book is not None and not state.stale:
                self._unroute(state)
                events.extend(self._mark_stale(state, "disconnected", recv_ts_ns))
        return events

    def set_symbols(self, symbols: Iterable[str] | None) -> None:
        """Read only these symbols' book, level3 and trade frames (None: all).

        Other symbols' data lines are skipped by the line reader before they are scanned, so a
        filter makes reading faster; control frames are read whatever their symbol.
        """
        self.symbols = None if symbols is None else frozenset(symbols)
        self._router.set_symbols(self.symbols)

    def record_effects(self, on: bool = True) -> None:
        """Switch effects recording on (or off) for every level3 book, now and to come.

        With it, each level3 :class:`BookChanged` carries ``effects``: one
        :class:`~bookengine.kraken.events.OrderEffect` per entry of the update (what it did to
        the order's queue, with the place it held), then one per order truncated away.
        Snapshots carry none. Off by default: a plain replay pays nothing for it.
        """
        self.level3_effects = on
        self._router.effects_on = on
        for state in self._books.values():
            if state.channel == "level3" and state.book is not None:
                state.book.record_effects = on

    def set_sink(self, sink: Any) -> None:
        """Hand a compiled consumer (``bookengine._core.sink.LineSink``, e.g. the analytics'
        trade join) every level3 message and trade frame the line reader reads, as it reads
        them (None: stop). The messages this session applies itself come back as events: those
        are the caller's to hand over (``BookAnalytics.run`` does).

        While a sink is set, the level3 books record only what it reads of their effects
        (``sink_effects``: an add's side, no truncations).

        Raises:
            TypeError: the session runs on the pure-Python reader (it takes no compiled sink).
        """
        self._router.set_sink(sink)
        self._sink_attached = sink is not None
        for state in self._books.values():
            if state.channel == "level3" and state.book is not None:
                state.book.sink_effects = self._sink_attached

    def receive_buffer(
        self,
        data: bytes,
        *,
        first_line: int = 1,
        on_events: Callable[[int, list[Event]], None] | None = None,
    ) -> int:
        """Read a buffer of capture lines (``frame`` or ``recv_ts<TAB>frame``, one a line).

        :meth:`receive_lines` over the whole buffer with book events off (the fast replay):
        every event (problems, acks, trades...) goes, with its 1-based line number, to
        ``on_events``. Lines that are not received frames (capture headers...) are reported as
        :class:`BadFrame`: a capture reader handles those itself (:mod:`bookengine.replay`).

        Returns:
            The number of lines in ``data``.
        """
        pos = 0
        line = first_line
        while True:
            pos, stop, lines, events = self.receive_lines(data, pos, emit=False, trades=False)
            line += lines
            if stop == codes.STOP_LINE:
                start, end = self.line_span
                self.frames += 1
                self.bad_frames += 1
                events.append(BadFrame(f"not a frame: {data[start:end][:40]!r}", -1))
            if events and on_events is not None:
                on_events(line - 1, events)
            if stop == codes.STOP_END:
                return line - first_line

    def _receive_frame(self, frame: bytes, recv_ts_ns: int, scanned_by: Any = None) -> list[Event]:
        """One frame the line reader handed back, judged here.

        ``scanned_by``: the line reader, whose scanner has already read the frame (its kind,
        symbol and entries, or the error it raised); None: scan it here.
        """
        try:
            if scanned_by is not None and scanned_by.scanned:
                scanner = scanned_by.scanner
                if scanned_by.scan_error is not None:
                    raise scanned_by.scan_error
                kind = scanner.kind
            else:
                scanner = self._scanner
                kind = scanner.scan(frame)
        except ProtocolError as exc:
            # A malformed message for a book we keep means that book missed a message.
            if scanner.kind != codes.KIND_OTHER:
                channel_name = scanner.channel_name if scanner.kind == codes.KIND_V1_BOOK else ""
                state = self._books.get((scanner.kind, scanner.symbol, channel_name))
                if state is not None and state.book is not None:
                    return self._invalid(state, str(exc), recv_ts_ns)
            self.bad_frames += 1
            return [BadFrame(str(exc), recv_ts_ns)]
        if kind == codes.KIND_OTHER:
            return self._receive_control(frame, recv_ts_ns)
        symbol = scanner.symbol
        if self.symbols is not None and symbol not in self.symbols:
            self._router_filtered += 1
            return []
        # v1 books are identified by (channelName, pair): book-10 and book-1000 are two.
        channel_name = scanner.channel_name if kind == codes.KIND_V1_BOOK else ""
        state = self._books.get((kind, symbol, channel_name))
        if state is None:
            state = self._new_state(kind, symbol, channel_name)
        events = self._apply(state, scanner, recv_ts_ns, frame)
        self._sync_router(state)
        return events

    def _merge_router_counts(self) -> None:
        router = self._router
        self.last_recv_ts_ns = router.last_recv_ts
        read = router.heartbeats + router.trade_frames  # frames the reader took whole
        if read != self._reader_frames:
            self.frames += read - self._reader_frames
            self._reader_frames = read
        if not router.counted:
            return
        counts = router.take_counts()
        if not counts:
            return
        for key, (messages, verified, recv_ts_ns) in counts.items():
            state = self._books[key]
            state.messages += messages
            state.checksums_checked += verified
            state.last_recv_ts_ns = recv_ts_ns
            self.frames += messages
            self.fast_path_frames += messages

    def _fast_path_failure(
        self, reason: int, failure: tuple[int, str, str, Any, int], frame: bytes
    ) -> list[Event]:
        kind, symbol, channel_name, error, recv_ts_ns = failure
        state = self._books[(kind, symbol, channel_name)]
        self._router.remove(kind, symbol, channel_name)
        if reason == codes.STOP_MISMATCH:  # the reader stops before counting a failed message
            mismatch = forensics.explain(
                state,
                error.expected,
                error.computed,
                recv_ts_ns,
                previous_recv_ts_ns=state.last_recv_ts_ns,
                frame=frame,
            )
            self.frames += 1
            state.messages += 1
            state.last_recv_ts_ns = self.last_recv_ts_ns = recv_ts_ns
            state.checksums_checked += 1
            state.checksum_mismatches += 1
            events: list[Event] = [mismatch]
            events.extend(self._mark_stale(state, str(error), recv_ts_ns))
            return events
        return self._invalid(state, "book is crossed", recv_ts_ns)  # counted by the reader

    def _unroute(self, state: BookState) -> None:
        """Take ``state``'s book off the line reader (its counts so far are kept)."""
        kind, channel_name = self._kind_of(state)
        if self._router.routes(kind, state.symbol, channel_name):
            self._merge_router_counts()
            self._router.remove(kind, state.symbol, channel_name)

    @staticmethod
    def _kind_of(state: BookState) -> tuple[int, str]:
        if state.protocol == "v1":
            return codes.KIND_V1_BOOK, state.key.partition(":")[0]
        return (codes.KIND_LEVEL3 if state.channel == "level3" else codes.KIND_BOOK), ""

    def _sync_router(self, state: BookState) -> None:
        # A book is read by the line reader exactly while the session trusts it.
        kind, channel_name = self._kind_of(state)
        router = self._router
        if state.book is not None and not state.stale:
            router.add(kind, state.symbol, state.book, channel_name, self._emit, state)
        elif router.routes(kind, state.symbol, channel_name):
            router.remove(kind, state.symbol, channel_name)

    def _price_trades(self, symbols: Iterable[str]) -> None:
        # The reader parses a symbol's trades itself once their precision is known.
        for symbol in symbols:
            instrument = self.instruments.get(symbol)
            if instrument is None:
                self._router.forget_trade_precision(symbol)
            else:
                self._router.set_trade_precision(
                    symbol, instrument.price_precision, instrument.qty_precision
                )

    def _new_state(self, kind: int, symbol: str, channel_name: str) -> BookState:
        if kind == codes.KIND_V1_BOOK:
            suffix = channel_name.partition("-")[2]
            depth = int(suffix) if suffix.isdigit() and int(suffix) > 0 else None
            state = BookState(f"{channel_name}:{symbol}", "book", "v1", symbol, depth)
        else:
            channel = "book" if kind == codes.KIND_BOOK else "level3"
            subscription = self._subscriptions.get((channel, symbol))
            depth = subscription.depth if subscription is not None else None
            state = BookState(f"{channel}:{symbol}", channel, "v2", symbol, depth)
        self._books[(kind, symbol, channel_name)] = state
        return state

    def _apply(
        self, state: BookState, scanner: Any, recv_ts_ns: int, frame: bytes | None = None
    ) -> list[Event]:
        previous_recv_ts_ns = state.last_recv_ts_ns
        state.last_recv_ts_ns = recv_ts_ns
        if state.book is None or state.stale:
            if not scanner.is_snapshot:
                if state.stale:
                    state.skipped_while_stale += 1
                    return []
                return self._invalid(state, "update before the first snapshot", recv_ts_ns)
            if state.book is None:
                try:
                    state.book = self._create_book(state, scanner)
                except BookError as exc:
                    return self._invalid(state, str(exc), recv_ts_ns)
        book = state.book
        try:
            verified = book.apply_scanned(scanner)
        except BookError as exc:
            return self._apply_failed(state, exc, recv_ts_ns, frame, previous_recv_ts_ns)
        return self._applied(state, book, scanner.is_snapshot, verified, recv_ts_ns)

    def _applied(
        self, state: BookState, book: Any, is_snapshot: bool, verified: bool, recv_ts_ns: int
    ) -> list[Event]:
        state.messages += 1
        if verified:
            state.checksums_checked += 1
        if is_snapshot:  # a fresh snapshot ends any resync episode
            state.stale = False
            state.stale_reason = ""
            state._resync_attempt = 0
            state._resync_due_ns = None
        if state.channel == "book" and book.is_crossed():
            # Kraken's book is never crossed; a crossed one passed the top-10 checksum by luck
            # or is corrupt beyond the checksum window (pitfall 14).
            return self._invalid(state, "book is crossed", recv_ts_ns)
        if self.level3_effects and state.channel == "level3":
            return [
                new_book_changed(
                    state.key, state.symbol, book, recv_ts_ns, is_snapshot, verified, book.effects()
                )
            ]
        return [new_book_changed(state.key, state.symbol, book, recv_ts_ns, is_snapshot, verified)]

    def _apply_failed(
        self,
        state: BookState,
        exc: BookError,
        recv_ts_ns: int,
        frame: bytes | None = None,
        previous_recv_ts_ns: int = -1,
    ) -> list[Event]:
        if isinstance(exc, ChecksumError):
            state.messages += 1
            state.checksums_checked += 1
            state.checksum_mismatches += 1
            events: list[Event] = [
                forensics.explain(
                    state,
                    exc.expected,
                    exc.computed,
                    recv_ts_ns,
                    previous_recv_ts_ns=previous_recv_ts_ns,
                    frame=frame,
                    scanner=self._scanner,
                )
            ]
            events.extend(self._mark_stale(state, str(exc), recv_ts_ns))
            return events
        return self._invalid(state, str(exc), recv_ts_ns)

    def _create_book(self, state: BookState, scanner: Any) -> Any:
        if state.protocol == "v1":
            precision: tuple[int | None, int | None] = (None, None)
        else:
            instrument = self.instruments.get(state.symbol)
            if instrument is None:
                raise UnknownSymbolError(
                    f"{state.symbol}: no precision known: subscribe to 'instrument' or give "
                    "the symbol's price/qty precision"
                )
            precision = (instrument.price_precision, instrument.qty_precision)
        if state.depth is None:
            state.depth = self.default_depth or self._infer_depth(state, scanner, precision[0])
        if state.channel == "level3":
            # level3 is v2-only, so both precisions are ints here (mypy cannot see it).
            book = self.impl.L3Book(state.symbol, state.depth, *precision)  # type: ignore[arg-type]
            book.record_effects = self.level3_effects
            if self._sink_attached:
                book.sink_effects = True
            return book
        return self.impl.L2Book(state.symbol, state.depth, *precision)

    @staticmethod
    def _infer_depth(state: BookState, scanner: Any, price_precision: int | None) -> int:
        # No ack seen: the smallest depth Kraken serves that holds the whole snapshot.
        if state.channel == "book":
            levels = max(scanner.bid_count, scanner.ask_count)
            choices: tuple[int, ...] = BOOK_DEPTHS
        else:
            levels = 0
            for entries in (scanner.bids, scanner.asks):
                prices = {parse_mantissa(e.price, price_precision or 0) for e in entries}
                levels = max(levels, len(prices))
            choices = LEVEL3_DEPTHS
        for depth in choices:
            if levels <= depth:
                return depth
        return int(levels)

    def _invalid(
        self, state: BookState, reason: str, recv_ts_ns: int, bad_frame: bool = True
    ) -> list[Event]:
        if bad_frame:  # counted as replay counts them: every frame that could not be applied
            self.bad_frames += 1
            state.invalid_messages += 1
        events: list[Event] = [BookInvalid(state.key, state.symbol, reason, recv_ts_ns)]
        events.extend(self._mark_stale(state, reason, recv_ts_ns))
        return events

    def _mark_stale(self, state: BookState, reason: str, recv_ts_ns: int) -> list[Event]:
        self._unroute(state)  # a stale book's frames need the session's judgement
        if state.stale:
            return []  # one resync per episode: never a storm
        state.stale = True
        state.stale_reason = reason
        state._resync_due_ns = recv_ts_ns
        return self._resync(state, recv_ts_ns)

    def _resync(self, state: BookState, now_ns: int) -> list[Event]:
        if (state.channel, state.symbol) not in self._subscriptions:
            return []  # replaying, or a book we never asked for: nothing to resend
        state.resyncs += 1
        state._resync_attempt += 1
        first, cap = self.resync_backoff_ns
        wait = min(cap, first * (2 ** (state._resync_attempt - 1)))
        state._resync_due_ns = now_ns + max(wait, self.resync_timeout_ns)
        depth = state.depth
        if state.protocol == "v1":
            self._outbox.append(frames.unsubscribe_v1([state.symbol], depth or 10))
            self._outbox.append(frames.subscribe_v1([state.symbol], depth or 10))
        else:
            token = self.token if state.channel == "level3" else None
            self._outbox.append(
                frames.unsubscribe_v2(state.channel, [state.symbol], depth=depth, token=token)
            )
            self._outbox.append(
                self._request(
                    "subscribe",
                    now_ns,
                    (state.symbol,),
                    lambda req_id: frames.subscribe_v2(
                        state.channel, [state.symbol], depth=depth, req_id=req_id, token=token
                    ),
                    state.channel,
                )
            )
        return [ResyncRequested(state.key, state.symbol, state._resync_attempt)]

    # -- control frames ------------------------------------------------------------------------

    def _receive_control(self, frame: bytes | str, recv_ts_ns: int) -> list[Event]:
        try:
            message = json.loads(frame)
        except (ValueError, UnicodeDecodeError) as exc:
            self.bad_frames += 1
            return [BadFrame(f"malformed JSON: {exc}", recv_ts_ns)]
        try:
            if isinstance(message, dict):
                if "channel" in message:
                    return self._receive_channel(message, frame, recv_ts_ns)
                if "method" in message:
                    return self._receive_response(message, recv_ts_ns)
                if "event" in message:
                    return self._receive_v1_event(message, recv_ts_ns)
            elif isinstance(message, list):
                return []  # v1 channels other than book (trade, ticker...)
        except (ProtocolError, KeyError, TypeError, ValueError) as exc:
            self.bad_frames += 1
            return [BadFrame(f"unexpected message shape: {exc}", recv_ts_ns)]
        self.bad_frames += 1
        return [BadFrame("not a Kraken message", recv_ts_ns)]

    def _receive_channel(
        self, message: dict[str, Any], frame: bytes | str, recv_ts_ns: int
    ) -> list[Event]:
        channel = message["channel"]
        if channel == "instrument":
            symbols = self.instruments.apply_message(message)
            events: list[Event] = [InstrumentsUpdated(tuple(symbols))]
            self._price_trades(symbols)
            for symbol in symbols:
                events.extend(self._check_precision(symbol))
            return events
        if channel == "status":
            data = message["data"][0]
            connection_id = data.get("connection_id")
            return [self._status(str(data["system"]), str(data.get("version", "")), connection_id)]
        # Numbers must stay text to become exact: decode these two from the frame again.
        if channel == "trade":
            return self._trades(frame, message.get("type") == "snapshot", recv_ts_ns)
        if channel == "executions":
            reports = frames.decode_executions(frame, recv_ts_ns)
            return [Executions(tuple(reports), recv_ts_ns, message.get("type") == "snapshot")]
        return []  # heartbeat, ticker...: nothing for the books

    def _trades(self, frame: bytes | str, is_snapshot: bool, recv_ts_ns: int) -> list[Event]:
        by_symbol: dict[str, list[Trade]] = {}
        for trade in frames.decode_trades(
            frame, recv_ts_ns, self._trade_precision, include_snapshot=True
        ):
            if self.symbols is not None and trade.symbol not in self.symbols:
                continue
            by_symbol.setdefault(trade.symbol, []).append(trade)
        events: list[Event] = []
        for symbol, trades in by_symbol.items():
            precision = self._trade_precision(symbol)
            assert precision is not None  # decode_trades skips symbols without one
            events.append(Trades(symbol, tuple(trades), *precision, recv_ts_ns, is_snapshot))
        return events

    def _trade_precision(self, symbol: str) -> tuple[int, int] | None:
        instrument = self.instruments.get(symbol)
        if instrument is None:
            self.trades_unpriced += 1
            self.unpriced_symbols.add(symbol)
            return None
        return instrument.price_precision, instrument.qty_precision

    def _check_precision(self, symbol: str) -> list[Event]:
        # A precision change invalidates every mantissa of that symbol's v2 books.
        events: list[Event] = []
        instrument = self.instruments.get(symbol)
        for state in self._books.values():
            book = state.book
            if state.protocol != "v2" or state.symbol != symbol or book is None:
                continue
            if instrument is not None and (
                book.price_precision != instrument.price_precision
                or book.qty_precision != instrument.qty_precision
            ):
                state.book = None
                self._unroute(state)
                events.extend(
                    self._invalid(state, "instrument precision changed", -1, bad_frame=False)
                )
        return events

    def _status(self, system: str, version: str, connection_id: Any) -> SystemStatus:
        self.system_status = system
        self.connection_id = int(connection_id) if connection_id is not None else None
        return SystemStatus(system, version, self.connection_id)

    def _receive_response(self, message: dict[str, Any], recv_ts_ns: int) -> list[Event]:
        method = str(message["method"])
        req_id = message.get("req_id")
        pending = self._pending.get(req_id) if isinstance(req_id, int) else None
        rtt = None
        if pending is not None and recv_ts_ns >= 0 and pending.sent_ns >= 0:
            rtt = recv_ts_ns - pending.sent_ns
        server = _server_ns(message)
        if method == "pong":
            if isinstance(req_id, int):
                self._pending.pop(req_id, None)
            return [Pong(req_id, rtt, server)]
        if not message.get("success", False):
            symbol = message.get("symbol")
            error = str(message.get("error", ""))
            if method == "subscribe" and pending is not None:
                self._subscribe_failed(pending, symbol, error, recv_ts_ns)
            return [RequestFailed(method, error, symbol, req_id)]
        result = message.get("result") or {}
        channel, symbol = result.get("channel"), result.get("symbol")
        if method == "subscribe" and isinstance(channel, str) and isinstance(symbol, str):
            depth = result.get("depth")
            subscription = self._subscriptions.setdefault(
                (channel, symbol), _Subscription(channel, symbol, depth)
            )
            if isinstance(depth, int):
                subscription.depth = depth
            # A book not built yet takes the acknowledged depth; a built one keeps its own
            # until its next snapshot rebuilds it.
            for state in self._books.values():
                if (state.channel, state.symbol, state.protocol) == (channel, symbol, "v2") and (
                    state.book is None and subscription.depth is not None
                ):
                    state.depth = subscription.depth
            return [Subscribed(channel, symbol, subscription.depth, req_id, rtt, server)]
        if method == "unsubscribe" and isinstance(channel, str) and isinstance(symbol, str):
            return [Unsubscribed(channel, symbol)]
        return []

    def _subscribe_failed(self, pending: _Pending, symbol: Any, error: str, now_ns: int) -> None:
        symbols = (symbol,) if isinstance(symbol, str) else pending.symbols
        if RATE_LIMITED.lower() in error.lower():
            # Throttled: ask again later, backing off while Kraken keeps refusing.
            self._retry_attempt += 1
            first, cap = self.resync_backoff_ns
            wait = min(cap, first * 2 ** (self._retry_attempt - 1))
            self._retries.append((max(now_ns, 0) + wait, pending.channel, symbols))
        else:
            # Unknown pair, unsupported depth, bad token...: asking again cannot help.
            for name in symbols:
                self._subscriptions.pop((pending.channel, name), None)

    def _receive_v1_event(self, message: dict[str, Any], recv_ts_ns: int) -> list[Event]:
        event = message["event"]
        if event == "systemStatus":
            return [
                self._status(
                    str(message.get("status")),
                    str(message.get("version", "")),
                    message.get("connectionID"),
                )
            ]
        if event == "pong":
            req_id = message.get("reqid")
            pending = self._pending.pop(req_id, None) if isinstance(req_id, int) else None
            rtt = recv_ts_ns - pending.sent_ns if pending is not None and recv_ts_ns >= 0 else None
            return [Pong(req_id, rtt)]
        if event == "subscriptionStatus":
            pair = message.get("pair")
            status = message.get("status")
            if status == "error":
                return [
                    RequestFailed(
                        "subscribe",
                        str(message.get("errorMessage", "")),
                        pair,
                        message.get("reqid"),
                    )
                ]
            subscription = message.get("subscription") or {}
            if status == "subscribed" and subscription.get("name") == "book":
                return [
                    Subscribed("book", str(pair), subscription.get("depth"), message.get("reqid"))
                ]
            if status == "unsubscribed":
                return [Unsubscribed("book", str(pair))]
            return []
        if event == "error":
            return [
                RequestFailed("", str(message.get("errorMessage", "")), None, message.get("reqid"))
            ]
        return []  # heartbeat

    # -- requests ------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        now_ns: int,
        symbols: tuple[str, ...],
        encode: Any,
        channel: str = "",
    ) -> str:
        req_id = self._next_req_id
        self._next_req_id += 1
        self._pending[req_id] = _Pending(method, now_ns, symbols, channel)
        return str(encode(req_id))

    def subscribe(
        self, channel: str, symbols: Iterable[str], *, depth: int | None = None, now_ns: int = -1
    ) -> None:
        """Ask for ``channel`` on ``symbols`` (queued; see :meth:`requests_to_send`).

        ``book``: depth in 10/25/100/500/1000; ``level3``: 10/100/1000 (needs :attr:`token`).
        """
        symbols = tuple(symbols)
        if channel == "book" and depth is not None and depth not in BOOK_DEPTHS:
            raise ValueError(f"book depth must be one of {BOOK_DEPTHS}, got {depth}")
        if channel == "level3" and depth is not None and depth not in LEVEL3_DEPTHS:
            raise ValueError(f"level3 depth must be one of {LEVEL3_DEPTHS}, got {depth}")
        # Channel-wide subscriptions (instrument) are kept under the symbol "".
        for symbol in symbols or ("",):
            self._subscriptions[(channel, symbol)] = _Subscription(channel, symbol, depth)
        if self.protocol == "v1":
            if channel != "book":
                raise ValueError("v1 sessions subscribe to 'book' only")
            self._outbox.append(frames.subscribe_v1(symbols, depth or 10))
            return
        token = self.token if channel == "level3" else None
        self._outbox.append(
            self._request(
                "subscribe",
                now_ns,
                symbols,
                lambda req_id: frames.subscribe_v2(
                    channel,
                    symbols if channel != "instrument" else None,
                    depth=depth,
                    req_id=req_id,
                    token=token,
                ),
                channel,
            )
        )

    def ping(self, now_ns: int) -> int:
        """Queue an application ping; the matching :class:`Pong` carries the round trip."""
        req_id = self._next_req_id
        self._next_req_id += 1
        self._pending[req_id] = _Pending("ping", now_ns)
        self._outbox.append(
            frames.ping_v1(req_id) if self.protocol == "v1" else frames.ping_v2(req_id)
        )
        return req_id

    @property
    def has_requests(self) -> bool:
        """True when requests are queued (cheap: checked after every frame)."""
        return bool(self._outbox)

    @property
    def has_timers(self) -> bool:
        """True when a resync or a throttled subscribe waits for its time to come."""
        return bool(self._retries) or any(state.stale for state in self._books.values())

    def requests_to_send(self, now_ns: int | None = None) -> list[str]:
        """Take the queued requests (JSON text), including resyncs whose backoff has elapsed."""
        if now_ns is not None:
            ready = [retry for retry in self._retries if retry[0] <= now_ns]
            if ready:
                self._retries = [retry for retry in self._retries if retry[0] > now_ns]
                for _, channel, symbols in ready:
                    wanted = [s for s in symbols or ("",) if (channel, s) in self._subscriptions]
                    if wanted:
                        depth = self._subscriptions[(channel, wanted[0])].depth
                        self.subscribe(
                            channel, [s for s in wanted if s], depth=depth, now_ns=now_ns
                        )
            for state in self._books.values():
                due = state._resync_due_ns
                if state.stale and due is not None and now_ns >= due:
                    self._resync(state, now_ns)
        out, self._outbox = self._outbox, []
        return out

    def connection_lost(self) -> None:
        """Forget every book: after a reconnect each is rebuilt from a fresh snapshot."""
        for state in self._books.values():
            self._unroute(state)
        for state in self._books.values():
            state.book = None
            state.stale = False
            state._resync_due_ns = None
        self._pending.clear()
        self._outbox.clear()
        self._retries.clear()

    def resubscribe_all(self, now_ns: int = -1) -> None:
        """Queue subscriptions for everything asked for so far (after a reconnect)."""
        by_channel: dict[tuple[str, int | None], list[str]] = {}
        for subscription in self._subscriptions.values():
            by_channel.setdefault((subscription.channel, subscription.depth), []).append(
                subscription.symbol
            )
        for (channel, depth), symbols in by_channel.items():
            self.subscribe(channel, [s for s in symbols if s], depth=depth, now_ns=now_ns)
