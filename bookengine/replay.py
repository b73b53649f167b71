"""Replay captures through the same session and core as the live feed.

``replay(paths)`` feeds every line of the captures, in order, to one
:class:`~bookengine.kraken.session.KrakenSession` and returns its books and counts. Bad lines
are counted and reported with their file and line number; replay goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .capture import CaptureRecord, read_frames
from .instruments import Instruments
from .kraken.events import BadFrame, BookInvalid, ChecksumMismatch, Event
from .kraken.session import BookState, KrakenSession


@dataclass
class ReplayResult:
    """What a replay saw: frame counts and every book's final state."""

    frames: int
    bad_frames: int
    books: dict[str, BookState]

    @property
    def checksum_mismatches(self) -> int:
        return sum(state.checksum_mismatches for state in self.books.values())

    @property
    def ok(self) -> bool:
        """True when no checksum mismatched and no frame was bad."""
        return self.bad_frames == 0 and self.checksum_mismatches == 0

    def summary(self) -> dict[str, Any]:
        """The ``bookengine replay --json`` object."""
        return {
            "frames": self.frames,
            "bad_frames": self.bad_frames,
            "books": {key: state.summary() for key, state in sorted(self.books.items())},
        }


def replay_events(
    paths: Iterable[str | Path], session: KrakenSession
) -> Iterator[tuple[CaptureRecord, list[Event]]]:
    """Feed each capture line to ``session``; yield the line and the events it produced."""
    for record in read_frames(paths):
        yield record, session.receive(record.frame, record.recv_ts_ns)


def replay(
    paths: Iterable[str | Path],
    *,
    instruments: Instruments | None = None,
    precisions: Mapping[str, tuple[int, int]] | None = None,
    depth: int | None = None,
    implementation_name: str | None = None,
    on_problem: Callable[[CaptureRecord, str], None] | None = None,
) -> ReplayResult:
    """Replay captures and return the final books.

    Args:
        paths: capture files (plain or .gz), replayed in the order given.
        instruments: precisions read beforehand (e.g. ``Instruments.from_file``).
        precisions: ``symbol -> (price_precision, qty_precision)``; overrides ``instruments``.
        depth: depth for books whose subscription ack is not in the capture (v2); default: the
            smallest Kraken depth that holds the snapshot.
        on_problem: called with the line and a message for every bad frame, invalid book
            message and checksum mismatch.
    """
    session = KrakenSession(
        instruments=instruments,
        precisions=precisions,
        depth=depth,
        implementation_name=implementation_name,
    )
    bad = 0
    for record, events in replay_events(paths, session):
        for event in events:
            message = None
            if isinstance(event, BadFrame):
                bad += 1
                message = event.error
            elif isinstance(event, BookInvalid):
                bad += 1
                message = f"{event.key}: {event.reason}"
            elif isinstance(event, ChecksumMismatch):
                message = (
                    f"{event.key}: checksum mismatch: Kraken sent {event.expected}, "
                    f"book gives {event.computed}"
                )
            if message is not None and on_problem is not None:
                on_problem(record, message)
    return ReplayResult(session.frames, bad, session.books)
