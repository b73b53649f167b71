"""Replay captures through the same session and core as the live feed.

``replay(paths)`` feeds every line of the captures, in order, to one
:class:`~bookengine.kraken.session.KrakenSession` and returns its books and counts. Bad lines
are counted and reported with their file and line number; replay goes on.

:class:`Replayer` is the research face of the same loop:

* ``events(pace=None)`` / ``aevents(pace=None)``: every event, at full speed or paced by the
  receive timestamps (``pace=10``: ten times faster than recorded);
* ``book_at(t_ns, key)``: a book as of a receive time;
* ``sample(every_ns, keys, levels)`` and ``snapshots(keys, levels)``: top-N levels per side
  on a time grid or after every message, as int64 columns (:class:`BookSamples`).

What a capture holds besides frames is handled here: header lines are collected, sent
requests skipped, ``#checkpoint`` lines seed the books a rotated segment starts with (only
those the session does not already hold), a torn final line is reported and ignored.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from .capture import (
    CaptureHeader,
    CaptureNote,
    CaptureReader,
    CaptureRecord,
    book_snapshot_frame,
    instrument_frame,
    parse_checkpoint,
    subscribe_ack_frame,
)
from .errors import CaptureError
from .instruments import Instruments
from .kraken.events import (
    BadFrame,
    BookChanged,
    BookInvalid,
    ChecksumMismatch,
    Event,
    Subscribed,
)
from .kraken.session import BookState, KrakenSession

SECOND_NS = 1_000_000_000


@dataclass
class ReplayResult:
    """What a replay saw: frame counts and every book's final state."""

    frames: int
    bad_frames: int
    books: dict[str, BookState]
    notes: list[CaptureNote] = field(default_factory=list)
    """Torn final lines, truncated and damaged compressed streams (see ``CaptureReport``)."""
    sent: int = 0
    """Sent-request lines skipped."""
    checkpoints_applied: int = 0
    """``#checkpoint`` books used to seed a segment replayed without its predecessors."""
    headers: list[CaptureHeader] = field(default_factory=list)

    @property
    def checksum_mismatches(self) -> int:
        return sum(state.checksum_mismatches for state in self.books.values())

    @property
    def ok(self) -> bool:
        """True when no checksum mismatched, no frame was bad and no stream was damaged.

        A torn final line or a truncated compressed stream (an interrupted recording) does not
        make a replay fail: it is reported in :attr:`notes`.
        """
        return (
            self.bad_frames == 0
            and self.checksum_mismatches == 0
            and not any(note.kind == "corrupt" for note in self.notes)
        )

    def summary(self) -> dict[str, Any]:
        """The ``bookengine replay --json`` object (notes go to stderr, not in here)."""
        return {
            "frames": self.frames,
            "bad_frames": self.bad_frames,
            "books": {key: state.summary() for key, state in sorted(self.books.items())},
        }


def replay_events(
    paths: Iterable[str | Path], session: KrakenSession
) -> Iterator[tuple[CaptureRecord, list[Event]]]:
    """Feed each capture frame to ``session``; yield the line and the events it produced.

    Headers, sent requests and torn final lines are skipped; checkpoints seed books the
    session does not hold yet (see :class:`Replayer`).
    """
    replayer = Replayer(paths, progress=False)
    replayer.session = session
    for record in replayer._stream():
        yield record, replayer._apply(record)


def replay(
    paths: Iterable[str | Path],
    *,
    instruments: Instruments | None = None,
    precisions: Mapping[str, tuple[int, int]] | None = None,
    depth: int | None = None,
    implementation_name: str | None = None,
    on_problem: Callable[[CaptureRecord, str], None] | None = None,
    progress: bool = False,
) -> ReplayResult:
    """Replay captures and return the final books.

    Args:
        paths: capture files (plain, .gz or .zst), replayed in the order given.
        instruments: precisions read beforehand (e.g. ``Instruments.from_file``).
        precisions: ``symbol -> (price_precision, qty_precision)``; overrides ``instruments``.
        depth: depth for books whose subscription ack is not in the capture (v2); default: the
            smallest Kraken depth that holds the snapshot.
        on_problem: called with the line and a message for every bad frame, invalid book
            message and checksum mismatch, and for a torn final line, a truncated or damaged
            compressed stream (``"torn final line ignored ..."``).
        progress: draw a progress bar on stderr (only when it is a terminal).
    """
    return Replayer(
        paths,
        instruments=instruments,
        precisions=precisions,
        depth=depth,
        implementation_name=implementation_name,
        on_problem=on_problem,
        progress=progress,
    ).run()


# -- pacing and progress -----------------------------------------------------------------------


class _Pacer:
    """Delay before each record so receive times play back at ``pace`` x real time."""

    __slots__ = ("_base_ts", "_base_wall", "_pace")

    def __init__(self, pace: float) -> None:
        if not pace > 0:
            raise ValueError(f"pace must be > 0 (a speed factor), got {pace}")
        self._pace = pace
        self._base_ts = -1
        self._base_wall = 0.0

    def delay(self, recv_ts_ns: int) -> float:
        if recv_ts_ns < 0:
            return 0.0
        if self._base_ts < 0:
            self._base_ts = recv_ts_ns
            self._base_wall = time.perf_counter()
            return 0.0
        target = self._base_wall + (recv_ts_ns - self._base_ts) / SECOND_NS / self._pace
        return target - time.perf_counter()


class _ProgressBar:
    """A one-line progress bar on stderr (bytes of the capture files read, frames/s, ETA)."""

    def __init__(self, reader: CaptureReader, label: str, out: IO[str] | None = None) -> None:
        self.reader = reader
        self.label = label
        self.out = out or sys.stderr
        self.started = time.monotonic()
        self.last = 0.0
        self.frames = 0

    def tick(self) -> None:
        self.frames += 1
        if self.frames & 1023:
            return
        now = time.monotonic()
        if now - self.last >= 0.25:
            self.last = now
            self._draw(now, final=False)

    def _draw(self, now: float, final: bool) -> None:
        done, total = self.reader.bytes_read, max(1, self.reader.bytes_total)
        elapsed = max(1e-9, now - self.started)
        fraction = min(1.0, done / total)
        rate = self.frames / elapsed
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
        width = 24
        filled = int(fraction * width)
        bar = "#" * filled + "-" * (width - filled)
        text = (
            f"\r{self.label} [{bar}] {fraction * 100:5.1f}% {done / 1e6:8.1f}/"
            f"{total / 1e6:.1f} MB {self.frames:>10,} frames {rate:>9,.0f}/s"
            + (f" ETA {eta:5.0f}s" if not final else f" in {elapsed:.1f}s   ")
        )
        self.out.write(text + ("\n" if final else ""))
        self.out.flush()

    def close(self) -> None:
        self._draw(time.monotonic(), final=True)


_DATA_CHANNEL = re.compile(rb'\{\s*"channel"\s*:\s*"(?:book|level3|trade)"')
_SYMBOL = re.compile(rb'"symbol"\s*:\s*"([^"]*)"')


def _book_symbol(frame: bytes) -> str | None:
    """The symbol of a book/level3/trade data frame, cheaply; None when unsure."""
    if frame[:1] == b"{":
        if _DATA_CHANNEL.match(frame) is None:
            return None
        match = _SYMBOL.search(frame)
        return None if match is None else match.group(1).decode("utf-8", "replace")
    if frame[:1] == b"[" and frame.endswith(b'"]') and b'"book-' in frame:
        end = len(frame) - 2
        start = frame.rfind(b'"', 0, end)
        return frame[start + 1 : end].decode("utf-8", "replace") if start > 0 else None
    return None


# -- samples -----------------------------------------------------------------------------------


@dataclass
class BookSamples:
    """Top-N levels of books at sample times, as int64 columns (never floats).

    One row per (sample time, book key). Prices and quantities are mantissas: the value is
    ``mantissa / 10**scale`` with ``scales[key] = (price_precision, qty_precision)``. A level
    that does not exist (thin book, book not built) has price 0 and qty 0: a real level always
    has qty > 0.

    Arrays are new, owned by the caller: ``time_ns``, ``key`` (object str), ``valid`` (bool:
    the book existed and was not stale), ``is_snapshot`` (bool: the row follows a snapshot;
    per-message sampling only), each of shape ``(n,)``; ``bid_price``, ``bid_qty``,
    ``ask_price``, ``ask_qty`` of shape ``(n, levels)``, level 0 the best.
    """

    levels: int
    time_ns: npt.NDArray[np.int64]
    key: npt.NDArray[np.object_]
    valid: npt.NDArray[np.bool_]
    is_snapshot: npt.NDArray[np.bool_]
    bid_price: npt.NDArray[np.int64]
    bid_qty: npt.NDArray[np.int64]
    ask_price: npt.NDArray[np.int64]
    ask_qty: npt.NDArray[np.int64]
    scales: dict[str, tuple[int, int]]

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """Flat columns: ``time_ns, key, valid, is_snapshot, bid_price_1, bid_qty_1, ...``.

        Level columns are views into the 2-D arrays (no copy).
        """
        out: dict[str, npt.NDArray[Any]] = {
            "time_ns": self.time_ns,
            "key": self.key,
            "valid": self.valid,
            "is_snapshot": self.is_snapshot,
        }
        for side in ("bid", "ask"):
            prices = self.bid_price if side == "bid" else self.ask_price
            qtys = self.bid_qty if side == "bid" else self.ask_qty
            for level in range(self.levels):
                out[f"{side}_price_{level + 1}"] = prices[:, level]
                out[f"{side}_qty_{level + 1}"] = qtys[:, level]
        return out

    def for_key(self, key: str) -> BookSamples:
        """The rows of one book (copies)."""
        mask = self.key == key
        return BookSamples(
            self.levels,
            self.time_ns[mask],
            self.key[mask],
            self.valid[mask],
            self.is_snapshot[mask],
            self.bid_price[mask],
            self.bid_qty[mask],
            self.ask_price[mask],
            self.ask_qty[mask],
            {k: v for k, v in self.scales.items() if k == key},
        )

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` of :meth:`columns` (int64 mantissas; scales in ``attrs``)."""
        import pandas as pd  # type: ignore[import-untyped]

        frame = pd.DataFrame(self.columns())
        frame.attrs["scales"] = dict(self.scales)
        return frame


class _SampleBuilder:
    def __init__(self, levels: int) -> None:
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = levels
        self.time: list[int] = []
        self.keys: list[str] = []
        self.valid: list[bool] = []
        self.snapshot: list[bool] = []
        self.rows: list[npt.NDArray[np.int64]] = []
        self.scales: dict[str, tuple[int, int]] = {}
        self._empty = np.zeros((levels, 4), dtype=np.int64)

    def add(self, t_ns: int, key: str, state: BookState | None, is_snapshot: bool) -> None:
        book = None if state is None else state.book
        self.time.append(t_ns)
        self.keys.append(key)
        self.snapshot.append(is_snapshot)
        if book is None:
            self.valid.append(False)
            self.rows.append(self._empty)
            return
        assert state is not None
        self.valid.append(not state.stale)
        if key not in self.scales:
            self.scales[key] = (book.price_precision or 0, book.qty_precision or 0)
        row = np.zeros((self.levels, 4), dtype=np.int64)
        bids = book.bids_array(self.levels)
        asks = book.asks_array(self.levels)
        row[: bids.shape[0], 0:2] = bids
        row[: asks.shape[0], 2:4] = asks
        self.rows.append(row)

    def build(self) -> BookSamples:
        n = len(self.time)
        block = np.stack(self.rows) if self.rows else np.zeros((0, self.levels, 4), dtype=np.int64)
        return BookSamples(
            self.levels,
            np.array(self.time, dtype=np.int64).reshape(n),
            np.array(self.keys, dtype=object).reshape(n),
            np.array(self.valid, dtype=bool).reshape(n),
            np.array(self.snapshot, dtype=bool).reshape(n),
            np.ascontiguousarray(block[:, :, 0]),
            np.ascontiguousarray(block[:, :, 1]),
            np.ascontiguousarray(block[:, :, 2]),
            np.ascontiguousarray(block[:, :, 3]),
            self.scales,
        )


# -- the replayer ------------------------------------------------------------------------------


@dataclass
class _Cursor:
    """A session part-way through the captures (for ``book_at``)."""

    session: KrakenSession
    records: Iterator[CaptureRecord]
    reader: CaptureReader
    time_ns: int
    """Receive time of the last applied record (-1 before any)."""
    position: tuple[int, int]
    """(file index, line) of the last applied record."""
    pending: CaptureRecord | None = None
    pending_file: int = 0
    subscriptions: dict[tuple[str, str], int | None] = field(default_factory=dict)


@dataclass
class _Checkpoint:
    time_ns: int
    position: tuple[int, int]
    instruments: str | None
    subscriptions: dict[tuple[str, str], int | None]
    books: list[tuple[BookState, str]]


class Replayer:
    """Replay captures through a :class:`KrakenSession`: events, books in time, samples.

    Args:
        paths: capture files, replayed in the order given (segments of one recording in
            segment order, e.g. ``find_segments(base)``).
        instruments, precisions, depth, implementation_name: as for :func:`replay`.
        symbols: only these symbols' book, level3 and trade frames reach the session (the
            others are skipped before scanning); None: all.
        on_problem: called with the line and a message for every bad frame, invalid book
            message, checksum mismatch, torn line, truncated or damaged stream.
        progress: a progress bar on stderr; None: only when stderr is a terminal.
        checkpoint_every_s: while ``book_at`` moves forward it keeps the state of every book
            this often (capture time), so a later, earlier ``t`` restarts from there instead
            of from the first line. None: never.

    Receive times: a frame without a timestamp takes the time of the frame before it; the
    capture's times are expected to be non-decreasing (they are when recorded by one client).
    """

    def __init__(
        self,
        paths: Iterable[str | Path],
        *,
        instruments: Instruments | None = None,
        precisions: Mapping[str, tuple[int, int]] | None = None,
        depth: int | None = None,
        implementation_name: str | None = None,
        symbols: Iterable[str] | None = None,
        on_problem: Callable[[CaptureRecord, str], None] | None = None,
        progress: bool | None = None,
        checkpoint_every_s: float | None = 60.0,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self._instruments = instruments
        self.precisions = dict(precisions or {})
        self.depth = depth
        self.implementation_name = implementation_name
        self.symbols = None if symbols is None else frozenset(symbols)
        self.on_problem = on_problem
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.checkpoint_every_ns = (
            None if checkpoint_every_s is None else int(checkpoint_every_s * SECOND_NS)
        )
        self.session: KrakenSession = self._new_session()
        """The session of the latest full pass (``run``, ``events``, ``sample``...)."""
        self.reader: CaptureReader | None = None
        self.frames = 0
        self.bad = 0
        self.checkpoints_applied = 0
        self._subscriptions: dict[tuple[str, str], int | None] = {}
        self._cursor: _Cursor | None = None
        self._checkpoints: list[_Checkpoint] = []

    def _new_session(self) -> KrakenSession:
        instruments = Instruments()
        if self._instruments is not None:
            for symbol in self._instruments.symbols():
                item = self._instruments.get(symbol)
                assert item is not None
                instruments.set(symbol, item.price_precision, item.qty_precision, item.status)
        return KrakenSession(
            instruments=instruments,
            precisions=self.precisions,
            depth=self.depth,
            implementation_name=self.implementation_name,
        )

    # -- the loop ------------------------------------------------------------------------------

    def _stream(
        self, reader: CaptureReader | None = None, label: str = "replay"
    ) -> Iterator[CaptureRecord]:
        """Records to apply, in order: frames (filtered by symbol) and checkpoints.

        Torn lines are reported here; sent requests and headers never come out.
        """
        if reader is None:
            reader = CaptureReader(self.paths, kinds=("frame", "checkpoint", "torn"))
            self.reader = reader
            self.frames = self.bad = self.checkpoints_applied = 0
            self._subscriptions = {}
        bar = _ProgressBar(reader, label) if self.progress else None
        wanted = self.symbols
        notes_seen = 0
        last_ts = -1
        try:
            for record in reader:
                notes = reader.report.notes
                if len(notes) > notes_seen:
                    self._report_notes(notes[notes_seen:], record.path)
                    notes_seen = len(notes)
                if record.kind == "torn":
                    continue
                if bar is not None:
                    bar.tick()
                if record.recv_ts_ns < 0 and last_ts >= 0:
                    record = CaptureRecord(
                        record.path, record.line, last_ts, record.frame, record.kind
                    )
                last_ts = record.recv_ts_ns
                if wanted is not None and record.kind == "frame":
                    symbol = _book_symbol(record.frame)
                    if symbol is not None and symbol not in wanted:
                        continue
                yield record
            notes = reader.report.notes
            if len(notes) > notes_seen:
                self._report_notes(notes[notes_seen:], "")
        finally:
            if bar is not None:
                bar.close()

    def _report_notes(self, notes: Sequence[CaptureNote], _: str) -> None:
        if self.on_problem is None:
            return
        for note in notes:
            self.on_problem(CaptureRecord(note.path, note.line, -1, b"", note.kind), note.message)

    def _apply(
        self,
        record: CaptureRecord,
        session: KrakenSession | None = None,
        subscriptions: dict[tuple[str, str], int | None] | None = None,
    ) -> list[Event]:
        """Feed one record to the session; count and report problems (main pass only)."""
        if session is not None:  # a book_at cursor: same frames, no counting or reporting
            if record.kind == "checkpoint":
                return self._apply_checkpoint(record, session)
            events = session.receive(record.frame, record.recv_ts_ns)
            for event in events:
                if isinstance(event, Subscribed) and subscriptions is not None:
                    subscriptions[(event.channel, event.symbol)] = event.depth
            return events
        session = self.session
        if record.kind == "checkpoint":
            events = self._apply_checkpoint(record, session)
            if any(isinstance(event, BookChanged) for event in events):
                self.checkpoints_applied += 1
            return events
        self.frames += 1
        events = session.receive(record.frame, record.recv_ts_ns)
        self._report(record, events)
        return events

    def _report(self, record: CaptureRecord, events: Sequence[Event]) -> None:
        """Count bad frames and report problems of the main pass."""
        subs = self._subscriptions
        for event in events:
            message = None
            if isinstance(event, BookChanged):
                continue
            if isinstance(event, Subscribed):
                subs[(event.channel, event.symbol)] = event.depth
            elif isinstance(event, BadFrame):
                self.bad += 1
                message = event.error
            elif isinstance(event, BookInvalid):
                self.bad += 1
                message = f"{event.key}: {event.reason}"
            elif isinstance(event, ChecksumMismatch):
                message = (
                    f"{event.key}: checksum mismatch: Kraken sent {event.expected}, "
                    f"book gives {event.computed}"
                )
            if message is not None and self.on_problem is not None:
                self.on_problem(record, message)

    def _apply_checkpoint(self, record: CaptureRecord, session: KrakenSession) -> list[Event]:
        meta, frame = parse_checkpoint(record)
        kind = meta.get("kind")
        if kind == "instrument":
            try:
                pairs = json.loads(frame)["data"]["pairs"]
            except (ValueError, KeyError, TypeError):
                raise CaptureError(
                    f"{record.path}:{record.line}: bad instrument checkpoint"
                ) from None
            if all(pair.get("symbol") in session.instruments for pair in pairs):
                return []
            return session.receive(frame, record.recv_ts_ns)
        if kind != "book":
            return []  # a later format's checkpoint kind: nothing this reader needs
        key, symbol = meta.get("key"), meta.get("symbol")
        if not isinstance(key, str) or not isinstance(symbol, str):
            raise CaptureError(f"{record.path}:{record.line}: book checkpoint without key")
        if self.symbols is not None and symbol not in self.symbols:
            return []
        state = session.books.get(key)
        if state is not None and (state.book is not None or state.stale):
            return []  # the session holds this book already: the capture goes on from it
        events: list[Event] = []
        if meta.get("protocol") == "v2":
            depth = meta.get("depth")
            ack = subscribe_ack_frame(
                str(meta.get("channel")), symbol, depth if isinstance(depth, int) else None
            )
            events.extend(session.receive(ack, record.recv_ts_ns))
        events.extend(session.receive(frame, record.recv_ts_ns))
        return events

    def _result(self) -> ReplayResult:
        report = self.reader.report if self.reader is not None else None
        return ReplayResult(
            self.frames,
            self.bad,
            self.session.books,
            list(report.notes) if report is not None else [],
            report.sent if report is not None else 0,
            self.checkpoints_applied,
            list(report.headers) if report is not None else [],
        )

    # -- full passes ---------------------------------------------------------------------------

    def run(self) -> ReplayResult:
        """Replay everything at full speed; return the counts and final books."""
        self.session = self._new_session()
        if self.symbols is None:
            self._run_bulk()
        else:
            self._run_records()
        return self._result()

    def _run_records(self) -> None:
        """``run`` one record at a time (needed by the symbol filter; the bulk path's oracle)."""
        for record in self._stream():
            self._apply(record)

    def _run_bulk(self) -> None:
        """``run`` on whole chunks of lines: :meth:`KrakenSession.receive_buffer` applies the
        v2 book frames of healthy books in compiled code and hands every other line back here,
        where it goes through the same steps as in :meth:`_stream` and :meth:`_apply`.
        Nothing yields per frame, so this serves ``run`` only (not ``events``, ``sample``...).
        """
        reader = CaptureReader(self.paths, kinds=("raw", "frame", "checkpoint", "torn"))
        self.reader = reader
        self.frames = self.bad = self.checkpoints_applied = 0
        self._subscriptions = {}
        session = self.session
        bar = _ProgressBar(reader, "replay") if self.progress else None
        notes_seen = 0
        last_ts = -1
        fast_seen = fast_start = session.fast_path_frames
        mismatched = 0
        path = ""

        def apply(record: CaptureRecord) -> None:
            nonlocal last_ts, fast_seen
            if session.fast_path_frames != fast_seen:  # the fast path took the lines before
                last_ts = session.last_recv_ts_ns
            if record.recv_ts_ns < 0 and last_ts >= 0:
                record = CaptureRecord(record.path, record.line, last_ts, record.frame, record.kind)
            last_ts = record.recv_ts_ns
            self._apply(record)
            fast_seen = session.fast_path_frames

        def on_line(number: int, line: bytes) -> None:
            for record in reader.read_line(path, number, line):
                apply(record)

        def on_events(number: int, events: list[Event]) -> None:
            # The fast path's own failures: a checksum mismatch (its frame is not counted in
            # fast_path_frames) or a crossed book.
            nonlocal mismatched
            mismatched += any(isinstance(event, ChecksumMismatch) for event in events)
            self._report(CaptureRecord(path, number, session.last_recv_ts_ns, b""), events)

        try:
            for record in reader:
                if record.kind == "raw":
                    path = record.path
                    session.receive_buffer(
                        record.frame, first_line=record.line, on_events=on_events, on_line=on_line
                    )
                elif record.kind != "torn":
                    apply(record)  # a final line without its newline
                notes = reader.report.notes
                if len(notes) > notes_seen:
                    self._report_notes(notes[notes_seen:], record.path)
                    notes_seen = len(notes)
                if bar is not None:
                    bar.tick()
            notes = reader.report.notes
            if len(notes) > notes_seen:
                self._report_notes(notes[notes_seen:], "")
        finally:
            taken = session.fast_path_frames - fast_start + mismatched  # frames read in C
            self.frames += taken
            reader.report.frames += taken
            if bar is not None:
                bar.close()

    @property
    def result(self) -> ReplayResult:
        """Counts and books of the latest full pass (so far, while one is running)."""
        return self._result()

    def records(self, pace: float | None = None) -> Iterator[tuple[CaptureRecord, list[Event]]]:
        """Each applied record with the events it produced, from a fresh session.

        Args:
            pace: None: as fast as possible; otherwise a speed factor over the recorded
                receive times (1.0: real time, 10.0: ten times faster), by ``time.sleep``
                before each frame is applied.
        """
        self.session = self._new_session()
        pacer = None if pace is None else _Pacer(pace)
        for record in self._stream():
            if pacer is not None:
                delay = pacer.delay(record.recv_ts_ns)
                if delay > 0.0005:
                    time.sleep(delay)
            yield record, self._apply(record)

    def events(self, pace: float | None = None) -> Iterator[Event]:
        """Every event of a fresh replay (see :meth:`records` for ``pace``).

        Books in :class:`BookChanged` events are live: read them before the next event.
        """
        for _, events in self.records(pace):
            yield from events

    async def aevents(self, pace: float | None = None) -> AsyncIterator[Event]:
        """:meth:`events` for asyncio: waits with ``asyncio.sleep``, never blocks the loop."""
        self.session = self._new_session()
        pacer = None if pace is None else _Pacer(pace)
        for count, record in enumerate(self._stream(), 1):
            delay = 0.0 if pacer is None else pacer.delay(record.recv_ts_ns)
            if delay > 0.0005:
                await asyncio.sleep(delay)
            elif count % 256 == 0:
                await asyncio.sleep(0)  # let other tasks run during a fast replay
            for event in self._apply(record):
                yield event

    # -- sampling ------------------------------------------------------------------------------

    def sample(
        self,
        every_ns: int,
        keys: Sequence[str] | None = None,
        levels: int = 10,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> BookSamples:
        """Top ``levels`` of each book on a time grid, as of each grid time.

        The grid is ``start_ns + k * every_ns`` (default start: the first receive time rounded
        up to a multiple of ``every_ns``) up to ``end_ns`` (default: the last receive time).
        A row shows the book after every frame received at or before its time.

        Args:
            keys: books to sample (``"book:BTC/USD"``...); rows for every key at every grid
                time (``valid`` False while a book does not exist). None: every book that
                exists at the grid time.

        Complexity: one pass over the captures plus O(levels) per row.
        """
        if every_ns <= 0:
            raise ValueError(f"every_ns must be > 0, got {every_ns}")
        self.session = self._new_session()
        builder = _SampleBuilder(levels)
        next_t: int | None = start_ns
        last_ts = -1

        def emit_until(limit: int) -> None:
            # Rows for every grid time < limit (state before the frame received at limit).
            nonlocal next_t
            assert next_t is not None
            while next_t < limit and (end_ns is None or next_t <= end_ns):
                self._sample_row(builder, next_t, keys)
                next_t += every_ns

        for record in self._stream(label="sample"):
            ts = record.recv_ts_ns
            if ts >= 0:
                if next_t is None:
                    next_t = -(-ts // every_ns) * every_ns
                emit_until(ts)
                last_ts = max(last_ts, ts)
            self._apply(record)
        if next_t is not None:
            emit_until((last_ts if end_ns is None else end_ns) + 1)
        return builder.build()

    def _sample_row(self, builder: _SampleBuilder, t_ns: int, keys: Sequence[str] | None) -> None:
        books = self.session.books
        for key in keys if keys is not None else sorted(books):
            builder.add(t_ns, key, books.get(key), False)

    def snapshots(self, keys: Sequence[str] | None = None, levels: int = 10) -> BookSamples:
        """Top ``levels`` of the books after every message applied to them.

        One row per :class:`BookChanged` (a message applied) of the given keys (None: all),
        at its receive time; ``is_snapshot`` marks rows that follow a snapshot.
        """
        self.session = self._new_session()
        builder = _SampleBuilder(levels)
        wanted = None if keys is None else set(keys)
        for record in self._stream(label="snapshots"):
            for event in self._apply(record):
                if isinstance(event, BookChanged) and (wanted is None or event.key in wanted):
                    state = self.session.books.get(event.key)
                    builder.add(record.recv_ts_ns, event.key, state, event.is_snapshot)
        return builder.build()

    # -- books in time -------------------------------------------------------------------------

    def book_at(self, t_ns: int, key: str) -> Any:
        """The book ``key`` as of receive time ``t_ns`` (after every frame received at or
        before ``t_ns``), as a new book owned by the caller; None if it did not exist then.

        Complexity: a cursor stays where the last call stopped, so calls with non-decreasing
        ``t_ns`` cost one pass over the captures in total (sort your times). An earlier
        ``t_ns`` restarts from the latest in-memory checkpoint at or before it (taken every
        ``checkpoint_every_s`` of capture time while the cursor moves forward), else from the
        first line. Each call also copies the book: O(its levels or orders).
        """
        cursor = self._cursor
        if cursor is None or t_ns < cursor.time_ns:
            cursor = self._restart(t_ns)
        self._advance(cursor, t_ns)
        self._cursor = cursor
        state = cursor.session.books.get(key)
        if state is None or state.book is None:
            return None
        return self._copy_book(state)

    def _restart(self, t_ns: int) -> _Cursor:
        checkpoint = None
        for candidate in self._checkpoints:
            if candidate.time_ns <= t_ns:
                checkpoint = candidate
        session = self._new_session()
        if checkpoint is None:
            reader = CaptureReader(self.paths, kinds=("frame", "checkpoint"))
            cursor = _Cursor(session, iter(()), reader, -1, (0, 0))
        else:
            reader = CaptureReader(
                self.paths, kinds=("frame", "checkpoint"), start=checkpoint.position
            )
            cursor = _Cursor(
                session,
                iter(()),
                reader,
                checkpoint.time_ns,
                checkpoint.position,
                subscriptions=dict(checkpoint.subscriptions),
            )
            self._restore(session, checkpoint)
        cursor.records = self._cursor_records(cursor)
        return cursor

    def _cursor_records(self, cursor: _Cursor) -> Iterator[CaptureRecord]:
        wanted = self.symbols
        last_ts = cursor.time_ns
        for record in cursor.reader:
            if record.recv_ts_ns < 0 and last_ts >= 0:
                record = CaptureRecord(record.path, record.line, last_ts, record.frame, record.kind)
            last_ts = record.recv_ts_ns
            if wanted is not None and record.kind == "frame":
                symbol = _book_symbol(record.frame)
                if symbol is not None and symbol not in wanted:
                    continue
            yield record

    def _advance(self, cursor: _Cursor, t_ns: int) -> None:
        every = self.checkpoint_every_ns
        next_checkpoint = (
            None
            if every is None
            else (self._checkpoints[-1].time_ns + every if self._checkpoints else 0)
        )
        while True:
            record = cursor.pending
            if record is None:
                record = next(cursor.records, None)
                if record is None:
                    cursor.time_ns = max(cursor.time_ns, t_ns)
                    return
            if record.recv_ts_ns > t_ns:
                cursor.pending = record
                cursor.time_ns = t_ns
                return
            cursor.pending = None
            if (
                next_checkpoint is not None
                and record.recv_ts_ns >= next_checkpoint
                and cursor.time_ns >= 0
                and record.recv_ts_ns > cursor.time_ns
            ):
                self._keep_checkpoint(cursor)
                next_checkpoint = cursor.time_ns + (every or 0)
            self._apply(record, cursor.session, cursor.subscriptions)
            cursor.time_ns = max(cursor.time_ns, record.recv_ts_ns)
            cursor.position = (cursor.reader.file_index, record.line)

    def _keep_checkpoint(self, cursor: _Cursor) -> None:
        if self._checkpoints and self._checkpoints[-1].position >= cursor.position:
            return
        session = cursor.session
        precisions = {}
        for symbol in session.instruments.symbols():
            item = session.instruments.get(symbol)
            assert item is not None
            precisions[symbol] = (item.price_precision, item.qty_precision)
        books = []
        for state in session.books.values():
            frame = book_snapshot_frame(state)
            if frame is not None:
                books.append((_state_copy(state), frame))
        self._checkpoints.append(
            _Checkpoint(
                cursor.time_ns,
                cursor.position,
                instrument_frame(precisions) if precisions else None,
                dict(cursor.subscriptions),
                books,
            )
        )

    def _restore(self, session: KrakenSession, checkpoint: _Checkpoint) -> None:
        # The same frames a live session would have seen: precisions, acks, snapshots.
        if checkpoint.instruments is not None:
            session.receive(checkpoint.instruments, checkpoint.time_ns)
        for (channel, symbol), depth in checkpoint.subscriptions.items():
            session.receive(subscribe_ack_frame(channel, symbol, depth), checkpoint.time_ns)
        for saved, frame in checkpoint.books:
            if saved.protocol == "v2" and (saved.channel, saved.symbol) not in (
                checkpoint.subscriptions
            ):
                session.receive(
                    subscribe_ack_frame(saved.channel, saved.symbol, saved.depth),
                    checkpoint.time_ns,
                )
            session.receive(frame, checkpoint.time_ns)
            state = session.books.get(saved.key)
            if state is not None:
                state.depth = saved.depth
                state.stale = saved.stale
                state.stale_reason = saved.stale_reason

    def _copy_book(self, state: BookState) -> Any:
        frame = book_snapshot_frame(state)
        assert frame is not None
        session = KrakenSession(implementation_name=self.implementation_name)
        book = state.book
        if state.protocol == "v2":
            pp, qp = book.price_precision, book.qty_precision
            session.receive(instrument_frame({state.symbol: (pp, qp)}))
            session.receive(subscribe_ack_frame(state.channel, state.symbol, state.depth))
        session.receive(frame)
        copy = session.books[state.key].book
        if copy is None:  # pragma: no cover - a book that cannot be copied is a bug
            raise CaptureError(f"{state.key}: cannot copy the book")
        return copy


def _state_copy(state: BookState) -> BookState:
    return BookState(
        state.key,
        state.channel,
        state.protocol,
        state.symbol,
        state.depth,
        stale=state.stale,
        stale_reason=state.stale_reason,
    )


def effects_pass(
    replayer: Replayer, session: KrakenSession | None = None
) -> Iterator[tuple[int, list[Event]]]:
    """A full pass of ``replayer`` (as :meth:`Replayer.records`) whose session records level3
    effects: each applied record's receive time and events, never its frame.

    For the consumers that read what each level3 message did to the queues (analytics, the
    exporters). ``session``: replay into this one instead of a fresh one.
    """
    # The one place that asks the Replayer for such a session (until it takes the option).
    make = replayer._new_session

    def new_session() -> KrakenSession:
        fresh = session if session is not None else make()
        fresh.record_effects(True)
        return fresh

    replayer._new_session = new_session  # type: ignore[method-assign]
    try:
        for record, events in replayer.records():
            yield record.recv_ts_ns, events
    finally:
        del replayer._new_session
