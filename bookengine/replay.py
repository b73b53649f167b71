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
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .capture import (
    LINE_FORMAT_NAMES,
    CaptureHeader,
    CaptureNote,
    CaptureReader,
    CaptureRecord,
    book_snapshot_frame,
    expand_inputs,
    foreign_line_kind,
    instrument_frame,
    parse_checkpoint,
    subscribe_ack_frame,
)
from .core_types import LINES_KRAKEN, STOP_LINE, STOP_TIME
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
from .kraken.session import INT64_MAX, BookState, KrakenSession

if TYPE_CHECKING:
    from .analytics.tables import Table

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
    skipped: int = 0
    """Data frames of other symbols skipped by a ``symbols`` filter (not in ``frames``)."""
    mismatches: list[ChecksumMismatch] = field(default_factory=list)
    """Every checksum mismatch, with its forensics (``likely_cause``, top levels, frames)."""

    @property
    def skipped_frames(self) -> int:
        """Frames of stale books skipped until their next snapshot."""
        return sum(state.skipped_while_stale for state in self.books.values())

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
            and self.skipped_frames == 0
            and not any(note.kind == "corrupt" for note in self.notes)
        )

    def summary(self) -> dict[str, Any]:
        """The ``bookengine replay --json`` object (notes go to stderr, not in here)."""
        books = {}
        for key, state in sorted(self.books.items()):
            book = state.summary()
            book["skipped_frames"] = state.skipped_while_stale
            book["mismatches"] = [
                {
                    "recv_ts_ns": event.recv_ts_ns,
                    "expected": event.expected,
                    "computed": event.computed,
                    "likely_cause": event.likely_cause,
                }
                for event in self.mismatches
                if event.key == key
            ]
            books[key] = book
        summary: dict[str, Any] = {
            "frames": self.frames,
            "bad_frames": self.bad_frames,
            "skipped_frames": self.skipped_frames,
            "checksum_mismatches": self.checksum_mismatches,
            "books": books,
        }
        if self.skipped:
            summary["filtered_frames"] = self.skipped
        return summary


def replay(
    paths: Iterable[str | Path],
    *,
    instruments: Instruments | None = None,
    precisions: Mapping[str, tuple[int, int]] | None = None,
    depth: int | None = None,
    implementation_name: str | None = None,
    symbols: Iterable[str] | None = None,
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
        symbols: read only these symbols' data frames (see :class:`Replayer`).
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
        symbols=symbols,
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


# -- samples -----------------------------------------------------------------------------------


@dataclass
class BookSamples:
    """Top-N levels of books at sample times, as int64 columns (never floats).

    One row per (sample time, book key). Prices and quantities are mantissas: the value is
    ``mantissa / 10**scale`` with ``scales[key] = (price_precision, qty_precision)``. A level
    that does not exist (thin book, book not built) has price 0 and qty 0: a real level always
    has qty > 0. :meth:`to_table` / :meth:`to_pandas` / :meth:`to_arrow` / :meth:`to_polars`
    give real-unit floats (NaN for missing levels), UTC times and a ``symbol`` column beside
    the exact mantissas.

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

    def to_table(self) -> Table:
        """The samples as a user table (long format: one row per time and book).

        Columns: ``time`` (datetime64[ns] UTC), ``time_ns`` int64 (exact), ``symbol``, ``key``,
        ``valid``, ``is_snapshot``, ``price_scale``/``qty_scale`` (int8, per row), then per
        side and level ``K`` (1 = best) ``bid_price_K``, ``bid_qty_K``, ``ask_price_K``,
        ``ask_qty_K`` float64 in real units (NaN: no level there), then the exact int64
        mantissas ``bid_price_K_m``... (masked, i.e. null in Arrow and ``<NA>`` in pandas,
        where there is no level). Rows of books with different scales may share a mantissa
        column; the float columns and the per-row scales say what each means. A table of
        one book (:meth:`for_key`) also carries the scales for ``to_arrow(decimal=True)``.
        """
        from .analytics.tables import Table
        from .units import to_datetime, to_float

        n = len(self)
        price_scale = np.zeros(n, dtype=np.int8)
        qty_scale = np.zeros(n, dtype=np.int8)
        symbols = np.empty(n, dtype=object)
        for key in set(self.key.tolist()):
            mask = self.key == key
            pp, qp = self.scales.get(key, (0, 0))
            price_scale[mask], qty_scale[mask] = pp, qp
            symbols[mask] = key.partition(":")[2]
        out: dict[str, npt.NDArray[Any]] = {
            "time": to_datetime(self.time_ns),
            "time_ns": self.time_ns.copy(),
            "symbol": symbols,
            "key": self.key.copy(),
            "valid": self.valid.copy(),
            "is_snapshot": self.is_snapshot.copy(),
            "price_scale": price_scale,
            "qty_scale": qty_scale,
        }
        exact: dict[str, npt.NDArray[Any]] = {}
        masks: dict[str, npt.NDArray[np.bool_]] = {}
        scales: dict[str, int] = {}
        single = len(self.scales) == 1 and len(set(self.key.tolist())) <= 1
        pp1, qp1 = next(iter(self.scales.values())) if single else (0, 0)
        for side in ("bid", "ask"):
            prices = self.bid_price if side == "bid" else self.ask_price
            qtys = self.bid_qty if side == "bid" else self.ask_qty
            for level in range(self.levels):
                missing = qtys[:, level] == 0
                for kind, values, scale, one in (
                    ("price", prices, price_scale, pp1),
                    ("qty", qtys, qty_scale, qp1),
                ):
                    name = f"{side}_{kind}_{level + 1}"
                    out[name] = to_float(values[:, level], scale, missing)
                    exact[name + "_m"] = values[:, level].copy()
                    masks[name + "_m"] = missing
                    if single:
                        scales[name + "_m"] = one
        out.update(exact)
        return Table(out, masks=masks, scales=scales)

    def to_pandas(self) -> Any:
        """:meth:`to_table` as a ``pandas.DataFrame`` (scales also in ``attrs["scales"]``)."""
        frame = self.to_table().to_pandas()
        frame.attrs["scales"] = dict(self.scales)
        return frame

    def to_arrow(self, *, decimal: bool = False) -> Any:
        """:meth:`to_table` as a ``pyarrow.Table`` (``decimal``: see ``Table.to_arrow``)."""
        return self.to_table().to_arrow(decimal=decimal)

    def to_polars(self) -> Any:
        """:meth:`to_table` as a ``polars.DataFrame``."""
        return self.to_table().to_polars()


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


# -- the one loop over captures ----------------------------------------------------------------


class _Pass:
    """One pass over the captures through one session: the only loop over capture lines.

    The capture reader hands over whole lines per chunk; the session's line reader reads them
    (books, trades, heartbeats in compiled code) until a stop; what stops here is what only
    the capture layer knows (headers, checkpoints, sent requests, other tools' header lines and
    disconnects). Every view of :class:`Replayer` (``run``, ``records``, ``events``,
    ``sample``, ``snapshots``, ``book_at``) and the exporters and analytics drive one of these.
    """

    def __init__(
        self,
        replayer: Replayer,
        session: KrakenSession,
        *,
        emit: bool,
        trades: bool,
        main: bool,
        start: tuple[int, int] | None = None,
        label: str = "replay",
    ) -> None:
        self.replayer = replayer
        self.session = session
        self.emit = emit
        self.trades = trades
        self.main = main
        """Count and report problems (the Replayer's own pass; not a ``book_at`` cursor)."""
        self.reader = CaptureReader(
            replayer.paths, kinds=("raw", "frame", "checkpoint", "torn"), start=start
        )
        self._records = iter(self.reader)
        self._data = b""
        self._pos = 0
        self._end = 0
        """The chunk's lines are _data[_pos:_end]."""
        self._line = 1
        self._path = ""
        self._format = LINES_KRAKEN
        self._pending: CaptureRecord | None = None
        self._notes_seen = 0
        self._synthetic = 0  # frames of checkpoints: not the capture's own
        self.time_ns = -1
        """Latest receive time read so far (-1 before any)."""
        self.done = False
        self.subscriptions: dict[tuple[str, str], int | None] = {}
        self.checkpoints_applied = 0
        self.bad = 0
        self.bar = _ProgressBar(self.reader, label) if main and replayer.progress else None

    @property
    def frames(self) -> int:
        """Received frames read so far (checkpoints' synthetic frames not included)."""
        return self.session.frames - self._synthetic

    @property
    def position(self) -> tuple[int, int]:
        """(file index, line) of the last line consumed."""
        return self.reader.file_index, self._line - 1

    def steps(self, until_ns: int = INT64_MAX) -> Iterator[tuple[CaptureRecord, list[Event]]]:
        """Read until the next line was received after ``until_ns``, or to the end.

        Yields each line that produced events (as a :class:`CaptureRecord` without its frame:
        the line's file, number and receive time) with those events.
        """
        session = self.session
        try:
            while True:
                if self._pending is not None:
                    record = self._pending
                    if record.recv_ts_ns > until_ns:
                        return
                    self._pending = None
                    events = self._apply_record(record)
                    if events:
                        yield self._emit(record.line, events)
                    continue
                if self._pos >= self._end:
                    if not self._next_chunk():
                        self.done = True
                        return
                    continue
                pos, stop, lines, events = session.receive_lines(
                    self._data,
                    self._pos,
                    line_format=self._format,
                    until_ns=until_ns,
                    emit=self.emit,
                    trades=self.trades,
                    end=self._end,
                )
                self._pos = pos
                self._line += lines
                if session.last_recv_ts_ns > self.time_ns:
                    self.time_ns = session.last_recv_ts_ns
                if stop == STOP_TIME:
                    return
                if stop == STOP_LINE:
                    start, end = session.line_span
                    events.extend(self._other_line(self._data[start:end], self._line - 1))
                if events:
                    yield self._emit(self._line - 1, events)
        finally:
            if self.done and self.bar is not None:
                self.bar.close()
                self.bar = None

    def _next_chunk(self) -> bool:
        record = next(self._records, None)
        self._report_notes()
        if record is None:
            return False
        if self.bar is not None:
            self.bar.frames = self.frames
            self.bar.tick()
        if record.kind == "raw":
            self._data, self._pos, self._line = record.frame, record.start, record.line
            self._end = len(record.frame) if record.end < 0 else record.end
            self._path = record.path
            self._format = self.reader.line_format
        elif record.kind != "torn":
            # A final line without its newline that parses whole: the Python path.
            self._path = record.path
            self._pending = self._with_time(record)
        return True

    def _with_time(self, record: CaptureRecord) -> CaptureRecord:
        # A line without a receive time takes the previous line's.
        if record.recv_ts_ns >= 0 or self.session.last_recv_ts_ns < 0:
            return record
        return CaptureRecord(
            record.path, record.line, self.session.last_recv_ts_ns, record.frame, record.kind
        )

    def _other_line(self, line: bytes, number: int) -> list[Event]:
        """A line the session's reader handed back as not a received frame in this format."""
        if self._format != LINES_KRAKEN:
            kind = foreign_line_kind(self._format, line)
            if kind == "disconnect":
                return self.session.disconnected(self.session.last_recv_ts_ns)
            if kind == "sent":
                self.reader.report.sent += 1
            elif kind == "bad":
                self.session.frames += 1
                self.session.bad_frames += 1
                name = LINE_FORMAT_NAMES[self._format]
                return [BadFrame(f"not a {name} capture line: {line[:60]!r}", -1)]
            return []
        events: list[Event] = []
        for record in self.reader.read_line(self._path, number, line):
            record = self._with_time(record)
            if record.kind == "frame" and record.recv_ts_ns > self.time_ns >= 0:
                # Another time form (epoch seconds, RFC 3339): applied in time order.
                self._pending = record
                continue
            events.extend(self._apply_record(record))
        return events

    def _apply_record(self, record: CaptureRecord) -> list[Event]:
        session = self.session
        if record.kind == "checkpoint":
            before = session.frames
            events = self.replayer._apply_checkpoint(record, session)
            self._synthetic += session.frames - before
            if any(isinstance(event, BookChanged) for event in events):
                self.checkpoints_applied += 1
            if not self.emit:
                events = [e for e in events if not isinstance(e, BookChanged)]
            return events
        carry = session.last_recv_ts_ns
        events = session.receive(record.frame, record.recv_ts_ns)
        if record.recv_ts_ns < 0:
            session.resume_time(carry)
        elif record.recv_ts_ns > self.time_ns:
            self.time_ns = record.recv_ts_ns
        return events

    def _emit(self, line: int, events: list[Event]) -> tuple[CaptureRecord, list[Event]]:
        record = CaptureRecord(self._path, line, self.session.last_recv_ts_ns, b"")
        for event in events:
            if isinstance(event, Subscribed):
                self.subscriptions[(event.channel, event.symbol)] = event.depth
        if self.main:
            self.bad += self.replayer._report(record, events)
        return record, events

    def _report_notes(self) -> None:
        notes = self.reader.report.notes
        if len(notes) > self._notes_seen:
            if self.main:
                self.replayer._report_notes(notes[self._notes_seen :])
            self._notes_seen = len(notes)

    def finish(self) -> None:
        """Read to the end."""
        for _ in self.steps():
            pass


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
            segment order, e.g. ``find_segments(base)``), or folders: every capture inside, in
            time order (:func:`~bookengine.capture.expand_inputs`). Our own captures,
            tardis.dev raw data-feed slices and cryptofeed raw recordings are recognised by
            their lines.
        instruments, precisions, depth, implementation_name: as for :func:`replay`.
        symbols: only these symbols' book, level3 and trade frames are read (the others are
            skipped by the line reader before scanning, so a filter makes replay faster);
            None: all.
        on_problem: called with the line and a message for every bad frame, invalid book
            message, checksum mismatch, torn line, truncated or damaged stream.
        progress: a progress bar on stderr; None: only when stderr is a terminal.
        checkpoint_every_s: while ``book_at`` moves forward it keeps the state of every book
            this often (capture time), so a later, earlier ``t`` restarts from there instead
            of from the first line. None: never.

    Receive times: a frame without a timestamp takes the time of the frame before it; the
    capture's times are expected to be non-decreasing (they are when recorded by one client).

    Every view (``run``, ``records``, ``events``, ``aevents``, ``sample``, ``snapshots``,
    ``book_at``) is one pass of the same loop (:class:`_Pass`) over the session's line reader.
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
        self.paths = expand_inputs(paths)
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
        self._pass: _Pass | None = None
        self._cursor: _Pass | None = None
        self.mismatches: list[ChecksumMismatch] = []
        self._checkpoints: list[_Checkpoint] = []

    @property
    def reader(self) -> CaptureReader | None:
        """The capture reader of the latest full pass."""
        return None if self._pass is None else self._pass.reader

    @property
    def frames(self) -> int:
        return 0 if self._pass is None else self._pass.frames

    @property
    def bad(self) -> int:
        return 0 if self._pass is None else self._pass.bad

    @property
    def checkpoints_applied(self) -> int:
        return 0 if self._pass is None else self._pass.checkpoints_applied

    def _new_session(self) -> KrakenSession:
        session = KrakenSession(
            instruments=self._instruments.copy() if self._instruments is not None else None,
            precisions=self.precisions,
            depth=self.depth,
            implementation_name=self.implementation_name,
        )
        if self.symbols is not None:
            session.set_symbols(self.symbols)
        return session

    def new_pass(
        self,
        *,
        emit: bool,
        trades: bool,
        label: str = "replay",
        session: KrakenSession | None = None,
        level3_effects: bool = False,
    ) -> _Pass:
        """The one loop over the captures through a fresh session (the main pass).

        Args:
            emit: a :class:`BookChanged` per applied book message (False: books only).
            trades: a :class:`Trades` event per trade frame (False: counted only).
            session: replay into this session instead of a fresh one.
            level3_effects: level3 events carry what each message did to the queues.
        """
        self.session = self._new_session() if session is None else session
        if level3_effects:
            self.session.record_effects(True)
        self.mismatches = []
        self._pass = _Pass(self, self.session, emit=emit, trades=trades, main=True, label=label)
        return self._pass

    def _report_notes(self, notes: Sequence[CaptureNote]) -> None:
        if self.on_problem is None:
            return
        for note in notes:
            self.on_problem(CaptureRecord(note.path, note.line, -1, b"", note.kind), note.message)

    def _report(self, record: CaptureRecord, events: Sequence[Event]) -> int:
        """Report the problems among ``events`` (main pass); return how many frames were bad."""
        bad = 0
        for event in events:
            message = None
            if isinstance(event, BadFrame):
                bad += 1
                message = event.error
            elif isinstance(event, BookInvalid):
                bad += 1
                message = f"{event.key}: {event.reason}"
            elif isinstance(event, ChecksumMismatch):
                self.mismatches.append(event)
                message = event.message
            if message is not None and self.on_problem is not None:
                self.on_problem(record, message)
        return bad

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
        run = self._pass
        report = run.reader.report if run is not None else None
        if report is not None:
            report.frames = run.frames if run is not None else 0
        return ReplayResult(
            self.frames,
            self.bad,
            self.session.books,
            list(report.notes) if report is not None else [],
            report.sent if report is not None else 0,
            self.checkpoints_applied,
            list(report.headers) if report is not None else [],
            skipped=self.session.filtered_frames,
            mismatches=list(self.mismatches),
        )

    # -- full passes ---------------------------------------------------------------------------

    def run(self) -> ReplayResult:
        """Replay everything at full speed; return the counts and final books.

        Books are applied and counted in compiled code without an event per message.
        """
        self.new_pass(emit=False, trades=False).finish()
        return self._result()

    @property
    def result(self) -> ReplayResult:
        """Counts and books of the latest full pass (so far, while one is running)."""
        return self._result()

    def records(self, pace: float | None = None) -> Iterator[tuple[CaptureRecord, list[Event]]]:
        """Each line that produced events, with those events, from a fresh session.

        The record names the line (file, number, receive time); its ``frame`` is empty: the
        events say what the line did.

        Args:
            pace: None: as fast as possible; otherwise a speed factor over the recorded
                receive times (1.0: real time, 10.0: ten times faster): the lines of each
                receive time are read when that time comes (``time.sleep`` in between).
        """
        run = self.new_pass(emit=True, trades=True)
        if pace is None:
            yield from run.steps()
            return
        for delay, steps in self._paced(run, _Pacer(pace)):
            if delay > 0.0005:
                time.sleep(delay)
            yield from steps

    def _paced(
        self, run: _Pass, pacer: _Pacer
    ) -> Iterator[tuple[float, Iterator[tuple[CaptureRecord, list[Event]]]]]:
        """(delay, lines of the next receive time) pairs: pacing is a walk over time stops."""
        yield 0.0, run.steps(-1)  # lines without a receive time, before the first one
        while not run.done:
            next_ts = self.session.next_recv_ts_ns
            yield pacer.delay(next_ts), run.steps(next_ts)

    def events(self, pace: float | None = None) -> Iterator[Event]:
        """Every event of a fresh replay (see :meth:`records` for ``pace``).

        Books in :class:`BookChanged` events are live: read them before the next event.
        """
        for _, events in self.records(pace):
            yield from events

    async def aevents(self, pace: float | None = None) -> AsyncIterator[Event]:
        """:meth:`events` for asyncio: waits with ``asyncio.sleep``, never blocks the loop."""
        run = self.new_pass(emit=True, trades=True)
        pacer = None if pace is None else _Pacer(pace)
        count = 0
        batches = [(0.0, run.steps())] if pacer is None else self._paced(run, pacer)
        for delay, steps in batches:
            if delay > 0.0005:
                await asyncio.sleep(delay)
            for _, events in steps:
                count += 1
                if count % 256 == 0:
                    await asyncio.sleep(0)  # let other tasks run during a fast replay
                for event in events:
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

        Complexity: one pass over the captures (books applied in compiled code between grid
        times) plus O(levels) per row.
        """
        if every_ns <= 0:
            raise ValueError(f"every_ns must be > 0, got {every_ns}")
        run = self.new_pass(emit=False, trades=False, label="sample")
        builder = _SampleBuilder(levels)
        for _ in run.steps(-1):  # lines without a receive time, before the first one
            pass
        t = start_ns
        if t is None:
            first = self.session.next_recv_ts_ns
            if run.done or first < 0:
                run.finish()
                return builder.build()
            t = -(-first // every_ns) * every_ns
        while end_ns is None or t <= end_ns:
            for _ in run.steps(t):
                pass
            if run.done and end_ns is None and t > run.time_ns:
                break
            self._sample_row(builder, t, keys)
            t += every_ns
        run.finish()
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
        run = self.new_pass(emit=True, trades=False, label="snapshots")
        builder = _SampleBuilder(levels)
        wanted = None if keys is None else set(keys)
        books = self.session.books
        for _, events in run.steps():
            for event in events:
                if isinstance(event, BookChanged) and (wanted is None or event.key in wanted):
                    state = books.get(event.key)
                    if state is None:
                        books = self.session.books
                        state = books.get(event.key)
                    builder.add(event.recv_ts_ns, event.key, state, event.is_snapshot)
        return builder.build()

    # -- books in time -------------------------------------------------------------------------

    def book_at(self, t_ns: int, key: str) -> Any:
        """The book ``key`` as of receive time ``t_ns`` (after every frame received at or
        before ``t_ns``), as a new book owned by the caller; None if it did not exist then.

        Complexity: a cursor stays where the last call stopped, so calls with non-decreasing
        ``t_ns`` cost one pass over the captures in total (sort your times); books are applied
        in compiled code between calls. An earlier ``t_ns`` restarts from the latest in-memory
        checkpoint at or before it (taken every ``checkpoint_every_s`` of capture time while
        the cursor moves forward), else from the first line. Each call also copies the book:
        O(its levels or orders).
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

    def _restart(self, t_ns: int) -> _Pass:
        checkpoint = None
        for candidate in self._checkpoints:
            if candidate.time_ns <= t_ns:
                checkpoint = candidate
        session = self._new_session()
        if checkpoint is None:
            return _Pass(self, session, emit=False, trades=False, main=False)
        cursor = _Pass(
            self, session, emit=False, trades=False, main=False, start=checkpoint.position
        )
        cursor.subscriptions = dict(checkpoint.subscriptions)
        self._restore(session, checkpoint)
        cursor.time_ns = checkpoint.time_ns
        return cursor

    def _advance(self, cursor: _Pass, t_ns: int) -> None:
        # Read up to t_ns, stopping on the way at whole multiples of checkpoint_every_ns of
        # capture time to keep the books (each stop moves on by at least one interval).
        every = self.checkpoint_every_ns
        reached = cursor.time_ns
        while True:
            target = t_ns
            if every is not None and cursor.time_ns >= 0:
                due = (max(cursor.time_ns, reached) // every + 1) * every
                target = min(due, t_ns)
            for _ in cursor.steps(target):
                pass
            if target >= t_ns or cursor.done:
                return
            self._keep_checkpoint(cursor)
            reached = target

    def _keep_checkpoint(self, cursor: _Pass) -> None:
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
    effects: each line's receive time and events, never its frame.

    For the consumers that read what each level3 message did to the queues (analytics, the
    exporters). ``session``: replay into this one instead of a fresh one.
    """
    run = replayer.new_pass(emit=True, trades=True, session=session, level3_effects=True)
    for record, events in run.steps():
        yield record.recv_ts_ns, events
