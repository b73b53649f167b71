"""Capture files: one raw Kraken WebSocket frame per line, optionally ``recv_ts<TAB>frame``.

Files may be plain or gzip-compressed (by the ``.gz`` suffix). The receive timestamp may be
integer nanoseconds, decimal epoch seconds (``1690730998.343415``) or RFC 3339; it is kept as
integer nanoseconds. A frame never contains a raw TAB or newline (JSON escapes them), so the
first TAB on a line separates the two fields without ambiguity.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import CaptureError, ProtocolError
from .timestamps import parse_epoch_ns, parse_rfc3339_ns


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One line of a capture."""

    path: str
    line: int
    """1-based line number."""
    recv_ts_ns: int
    """Receive time in ns since the epoch; -1 when the line has no timestamp."""
    frame: bytes


def parse_recv_ts(text: bytes) -> int:
    """A capture line's timestamp field -> ns since the epoch.

    Raises:
        CaptureError: the field is none of the accepted forms.
    """
    try:
        value = text.decode("ascii").strip()
        if value.isdigit():
            return int(value)
        if "T" in value or "t" in value:
            return parse_rfc3339_ns(value)
        return parse_epoch_ns(value)
    except (UnicodeDecodeError, ProtocolError):
        raise CaptureError(f"bad receive timestamp {text[:40]!r}") from None


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile is an IO[bytes]
    return path.open("rb")


def read_frames(paths: Iterable[str | Path]) -> Iterator[CaptureRecord]:
    """Yield every non-blank line of the given captures, in order, as :class:`CaptureRecord`.

    A line whose timestamp prefix is malformed is yielded with ``recv_ts_ns = -1`` and its whole
    text as the frame, so the caller counts it as a bad frame with its file and line number.

    Raises:
        CaptureError: a file cannot be opened or decompressed.
    """
    for raw_path in paths:
        path = Path(raw_path)
        try:
            handle = _open(path)
        except OSError as exc:
            raise CaptureError(f"{path}: cannot open: {exc.strerror or exc}") from None
        with handle:
            try:
                for number, line in enumerate(handle, 1):
                    line = line.rstrip(b"\r\n")
                    if not line.strip():
                        continue
                    recv_ts_ns = -1
                    tab = line.find(b"\t")
                    if tab >= 0:
                        try:
                            recv_ts_ns = parse_recv_ts(line[:tab])
                            line = line[tab + 1 :]
                        except CaptureError:
                            pass
                    yield CaptureRecord(str(path), number, recv_ts_ns, line)
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise CaptureError(f"{path}: cannot read: {exc}") from None
