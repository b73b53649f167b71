"""Capture files: the recorder that writes them and the reader that replays them.

A capture is text, one line per item, plain or compressed by suffix (``.gz`` gzip, ``.zst``
zstd, anything else plain)::

    #bookengine {"version": 1, "library": "0.1.0", "segment": 1, "started_ns": ..., ...}
    #checkpoint {"kind": "book", "key": "book:BTC/USD", ...}<TAB>{"channel":"book",...}
    1704716806000000000<TAB>{"channel":"status","type":"update",...}
    1704716806000100000<TAB>>{"method":"subscribe","params":{...,"token":"<redacted>"}}
    1704716806000200000<TAB>{"channel":"book","type":"snapshot",...}

Line forms (a reader that knows nothing of this module can skip every line starting with ``#``
or whose frame starts with ``>``):

* ``recv_ts<TAB>frame`` or a bare ``frame``: one raw WebSocket frame as received. The
  timestamp may be integer ns, decimal epoch seconds (``1690730998.343415``) or RFC 3339; it
  is kept as integer ns. A frame never contains a raw TAB or newline (JSON escapes them), so
  the first TAB separates the two fields without ambiguity.
* ``recv_ts<TAB>>request``: a request this client *sent* (``>`` is never the first byte of a
  JSON text). Credentials are redacted before writing: ``"token": "<redacted>"``; an API
  secret is never written anywhere.
* ``#bookengine {json}``: the header, first line of every segment written by
  :class:`Recorder` (see :class:`CaptureHeader`). Files without one (older captures, captures
  from other tools) read as before.
* ``#checkpoint {meta}<TAB>frame``: state at the start of a rotated segment, as synthetic
  frames in Kraken's own wire format: an ``instrument`` snapshot (precisions) and one book
  snapshot per live book (with its CRC32). Replay feeds them to the session only for books it
  does not already hold, so a segment replays on its own and a full sequence replays exactly
  as recorded.
* any other line starting with ``#`` is a comment.

Crash safety: the recorder writes whole lines and flushes them to the OS every
``flush_lines`` lines or ``flush_seconds`` (gzip: a ``Z_SYNC_FLUSH``; zstd: the frame is
ended, so every flushed prefix of the file is itself a valid zstd file). A killed recorder
leaves complete lines plus at most one torn final line; the reader reports that line as torn
(not as a bad frame) and reads a gzip/zstd stream that ends early up to its last decodable
byte, reporting the truncation.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .core_types import LINES_CRYPTOFEED, LINES_KRAKEN, LINES_TARDIS
from .errors import CaptureError, ProtocolError
from .numbers import INT64_MAX, mantissa_text
from .timestamps import format_rfc3339_ns, parse_epoch_ns, parse_rfc3339_ns

FORMAT_VERSION = 1
"""Version of the header/checkpoint/request line forms this module writes and reads."""
HEADER_PREFIX = b"#bookengine "
CHECKPOINT_PREFIX = b"#checkpoint "
SENT_MARKER = b">"
REDACTED = "<redacted>"
SECRET_KEYS = frozenset({"token", "secret", "api_secret", "password", "otp", "signature"})
"""Request fields whose values are replaced by ``"<redacted>"`` before a request is written."""

MIN_SCRUB_LENGTH = 8
"""Secret values found in requests are scrubbed from every later line when this long."""

_CHUNK = 1 << 20

try:  # the compiled core counts lines with memchr; bytes.count walks byte by byte
    from ._core.router import count_lines as _count_lines
except ImportError:  # pure-Python install

    def _count_lines(data: bytes, start: int = 0, end: int = -1) -> int:
        return data.count(b"\n", start, len(data) if end < 0 else end)


def _inflater() -> Any:
    """ISA-L's inflate (zlib's API at about twice the speed; the research, test and bench
    extras install it) or zlib: both read every gzip file the same way."""
    try:
        from isal import isal_zlib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - the plain install
        return zlib
    return isal_zlib


_INFLATE = _inflater()

_COMPRESSED = (".gz", ".zst")
_CAPTURE_SUFFIXES = (".jsonl", ".json", ".ndjson", ".txt", ".log", ".capture")


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One line of a capture."""

    path: str
    line: int
    """1-based line number."""
    recv_ts_ns: int
    """Receive (or send) time in ns since the epoch; -1 when the line has no timestamp."""
    frame: bytes
    kind: str = "frame"
    """``"frame"`` (received), ``"sent"`` (a request, without its ``>``), ``"header"`` (the
    header's JSON), ``"checkpoint"`` (``meta<TAB>frame``, see :func:`parse_checkpoint`),
    ``"torn"`` (an unparseable final line without newline) or ``"raw"`` (whole lines, starting
    at ``line``: see :class:`CaptureReader`)."""
    start: int = 0
    """``"raw"``: the lines are ``frame[start:end]`` (the decoded chunk, not copied)."""
    end: int = -1
    """-1: to the end of ``frame``."""


@dataclass(frozen=True)
class CaptureHeader:
    """The ``#bookengine {...}`` line opening each segment written by :class:`Recorder`.

    JSON fields: ``version`` (int, the format version), ``library`` (bookengine version),
    ``segment`` (1-based), ``started_ns`` (wall clock when the segment was opened),
    ``previous`` (file name of the previous segment or null), ``url`` and ``subscriptions``
    (what the recorder was asked to record: ``[{"url", "channel", "symbols", "depth"}]``),
    plus any extra fields the writer added (kept in :attr:`extra`).
    """

    version: int
    library: str
    segment: int
    started_ns: int
    url: str | None = None
    subscriptions: tuple[Mapping[str, Any], ...] = ()
    previous: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    path: str = ""

    def to_line(self) -> bytes:
        """The header as one capture line (with its newline)."""
        body: dict[str, Any] = {
            "version": self.version,
            "library": self.library,
            "segment": self.segment,
            "started_ns": self.started_ns,
            "previous": self.previous,
            "url": self.url,
            "subscriptions": list(self.subscriptions),
        }
        for key, value in self.extra.items():
            body.setdefault(key, value)
        return HEADER_PREFIX + _dumps(body).encode() + b"\n"

    @classmethod
    def parse(cls, line: bytes, path: str = "", number: int = 0) -> CaptureHeader:
        """Parse a ``#bookengine {...}`` line.

        Raises:
            CaptureError: not a header, malformed JSON, a missing or mistyped field, or a
                format version newer than this library reads.
        """
        where = f"{path}:{number}" if path else "header"
        if not line.startswith(HEADER_PREFIX):
            raise CaptureError(f"{where}: not a '#bookengine' header line")
        try:
            body = json.loads(line[len(HEADER_PREFIX) :])
        except (ValueError, UnicodeDecodeError) as exc:
            raise CaptureError(f"{where}: bad capture header: malformed JSON: {exc}") from None
        if not isinstance(body, dict):
            raise CaptureError(f"{where}: bad capture header: expected a JSON object")
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CaptureError(f"{where}: bad capture header: 'version' must be an int >= 1")
        if version > FORMAT_VERSION:
            raise CaptureError(
                f"{where}: capture format version {version} is newer than this bookengine "
                f"reads (version {FORMAT_VERSION}): upgrade bookengine"
            )
        segment = body.get("segment", 1)
        started_ns = body.get("started_ns", -1)
        for name, value in (("segment", segment), ("started_ns", started_ns)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise CaptureError(f"{where}: bad capture header: '{name}' must be an int")
        subscriptions = body.get("subscriptions", [])
        if subscriptions is None:
            subscriptions = []
        if not isinstance(subscriptions, list) or not all(
            isinstance(s, dict) for s in subscriptions
        ):
            raise CaptureError(f"{where}: bad capture header: 'subscriptions' must be a list")
        url, previous, library = body.get("url"), body.get("previous"), body.get("library", "")
        if not all(isinstance(v, str | None) for v in (url, previous)) or not isinstance(
            library, str
        ):
            raise CaptureError(f"{where}: bad capture header: url/previous/library must be text")
        known = {"version", "library", "segment", "started_ns", "previous", "url"}
        extra = {k: v for k, v in body.items() if k not in known | {"subscriptions"}}
        return cls(
            version,
            library,
            segment,
            started_ns,
            url,
            tuple(subscriptions),
            previous,
            extra,
            path,
        )


@dataclass(frozen=True, slots=True)
class CaptureNote:
    """Something a reader skipped, and where: a torn line, a truncated or damaged stream."""

    path: str
    line: int
    """The torn line, or the last line read before a truncation or damage."""
    kind: str
    """``"torn"``, ``"truncated"`` or ``"corrupt"``."""
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class CaptureReport:
    """What a read of captures found besides frames (filled while iterating)."""

    headers: list[CaptureHeader] = field(default_factory=list)
    torn: list[CaptureRecord] = field(default_factory=list)
    """Final lines without newline that do not parse (an interrupted write): ignored."""
    notes: list[CaptureNote] = field(default_factory=list)
    """Torn lines, truncated streams (read up to their end: an interrupted recording) and
    damaged streams (read up to the damage), in reading order."""
    frames: int = 0
    sent: int = 0
    checkpoints: int = 0
    comments: int = 0

    @property
    def truncated(self) -> list[CaptureNote]:
        return [note for note in self.notes if note.kind == "truncated"]

    @property
    def corrupt(self) -> list[CaptureNote]:
        return [note for note in self.notes if note.kind == "corrupt"]


def parse_recv_ts(text: bytes) -> int:
    """A capture line's timestamp field -> ns since the epoch.

    Raises:
        CaptureError: the field is none of the accepted forms.
    """
    try:
        value = text.decode("ascii").strip()
        if value.isdigit():
            # int64 nanoseconds have at most 19 digits; longer text is not a time (and int()
            # of thousands of digits would raise ValueError, not say what is wrong).
            if len(value.lstrip("0")) > 19 or int(value) > INT64_MAX:
                raise CaptureError(f"receive timestamp out of the int64 range {text[:40]!r}")
            return int(value)
        if "T" in value or "t" in value:
            return parse_rfc3339_ns(value)
        return parse_epoch_ns(value)
    except (UnicodeDecodeError, ProtocolError):
        raise CaptureError(f"bad receive timestamp {text[:40]!r}") from None


def split_recv_ts(line: bytes) -> tuple[int, bytes]:
    """``recv_ts<TAB>frame`` -> ``(ns, frame)``; a line without a valid timestamp -> ``(-1, line)``.

    Integer nanoseconds (the recorder's form) take a fast path; the other forms go through
    :func:`parse_recv_ts`. A bad prefix leaves the whole line as the frame, so the reader of
    the frame reports it with its line number.
    """
    tab = line.find(b"\t")
    if tab < 0:
        return -1, line
    head = line[:tab]
    if head.isdigit() and len(head) < 19:  # surely int64 nanoseconds
        return int(head), line[tab + 1 :]
    try:
        return parse_recv_ts(head), line[tab + 1 :]
    except CaptureError:
        return -1, line


def parse_checkpoint(record: CaptureRecord) -> tuple[dict[str, Any], bytes]:
    """Split a ``checkpoint`` record into its metadata and its synthetic frame.

    Raises:
        CaptureError: the line is not ``{meta}<TAB>frame`` with a JSON object as meta.
    """
    meta_text, tab, frame = record.frame.partition(b"\t")
    try:
        meta = json.loads(meta_text)
    except (ValueError, UnicodeDecodeError):
        meta = None
    if not tab or not isinstance(meta, dict) or not frame:
        raise CaptureError(f"{record.path}:{record.line}: bad checkpoint line")
    return meta, frame


# -- line formats ----------------------------------------------------------------------------

LINE_FORMAT_NAMES = {
    LINES_KRAKEN: "bookengine",
    LINES_TARDIS: "tardis.dev",
    LINES_CRYPTOFEED: "cryptofeed",
}
FORMATS_ACCEPTED = (
    "bookengine (a raw frame, or recv_ts<TAB>frame, one a line), tardis.dev raw data feed "
    "('2023-07-30T15:30:00.0292860Z <frame>'), cryptofeed raw recording "
    "('<url> <-> <unix time>' header, '<unix time>: <frame>' lines)"
)
_TARDIS_LINE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z ")
_CRYPTOFEED_HEADER = re.compile(rb"\S+ <-> \d+(?:\.\d+)?")
_CRYPTOFEED_SENT = re.compile(rb"\S+ <- \d+(?:\.\d+)?: ")
_CRYPTOFEED_LINE = re.compile(rb"\d+(?:\.\d+)?: ")


def detect_line_format(line: bytes, path: str = "", number: int = 1) -> int:
    """The line format of a capture, from its first non-blank line.

    Raises:
        CaptureError: the line is in none of the formats read here (names the line and them).
    """
    line = line.rstrip(b"\r")
    if _TARDIS_LINE.match(line):
        return LINES_TARDIS
    if _CRYPTOFEED_HEADER.fullmatch(line) or _CRYPTOFEED_SENT.match(line):
        return LINES_CRYPTOFEED
    if _CRYPTOFEED_LINE.match(line) and line.partition(b": ")[2][:1] in (b"{", b"["):
        return LINES_CRYPTOFEED
    head = line.partition(b"\t")[0]
    if line[:1] in (b"{", b"[", b"#") or (b"\t" in line and head and head[:1].isdigit()):
        return LINES_KRAKEN
    raise CaptureError(
        f"{path}:{number}: not a capture line in any format read here: {line[:60]!r}; "
        f"accepted: {FORMATS_ACCEPTED}"
    )


def foreign_line_kind(line_format: int, line: bytes) -> str:
    """What a line the reader handed back is, in a foreign format.

    ``"disconnect"`` (tardis.dev: a blank line), ``"header"`` and ``"sent"`` (cryptofeed's
    connection header and sent requests), or ``"bad"``.
    """
    if line_format == LINES_TARDIS:
        return "disconnect" if not line.strip() else "bad"
    if _CRYPTOFEED_HEADER.fullmatch(line):
        return "header"
    if _CRYPTOFEED_SENT.match(line):
        return "sent"
    return "bad"


# -- reading ---------------------------------------------------------------------------------


class _Progress:
    """Compressed (on-disk) bytes consumed so far, for progress bars."""

    __slots__ = ("done", "total")

    def __init__(self) -> None:
        self.done = 0
        self.total = 0


def _decoded_chunks(path: Path, report: CaptureReport, progress: _Progress) -> Iterator[bytes]:
    """The file's decompressed bytes in chunks; stops at a truncation or damage (reported)."""
    suffix = path.suffix
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"{path}: cannot open: {exc.strerror or exc}") from None
    with handle:
        if suffix not in _COMPRESSED:
            while chunk := handle.read(_CHUNK):
                progress.done += len(chunk)
                yield chunk
            return
        # Decoded a chunk at a time (about _CHUNK bytes out per call), so each is read by the
        # line reader while it is still in the cache: gzip inflates at twice the speed into 1 MB
        # pieces as into 8 MB ones.
        if suffix == ".gz":
            make: Callable[[], Any] = lambda: _INFLATE.decompressobj(31)  # noqa: E731
            errors: tuple[type[Exception], ...] = (zlib.error, _INFLATE.error)
            name = "gzip"
            read_size = _CHUNK
            limit = _CHUNK  # output per call; the input left waits in unconsumed_tail
        else:
            zstandard = _zstandard(path)
            dctx = zstandard.ZstdDecompressor()
            # Output in one piece per call (its default pieces of 128 kB are joined: a copy).
            write_size = max(_CHUNK, 1 << 16)
            make = lambda: dctx.decompressobj(write_size=write_size)  # noqa: E731
            errors = (zstandard.ZstdError,)
            name = "zstd"
            read_size = max(1, _CHUNK // 8)  # no output limit: feed about a chunk's worth
            limit = 0
        decoder = make()
        fed = False  # the current gzip member / zstd frame got input
        consumed = 0  # compressed bytes before the current input
        decoded = 0
        while chunk := handle.read(read_size):
            progress.done += len(chunk)
            data = chunk
            while True:
                try:
                    out = decoder.decompress(data, limit) if limit else decoder.decompress(data)
                except errors as exc:
                    report.notes.append(
                        CaptureNote(
                            str(path),
                            0,
                            "corrupt",
                            f"{name} data damaged within compressed bytes {consumed}.."
                            f"{consumed + len(data)} ({decoded} bytes decoded before): {exc}; "
                            "the rest of the file is skipped",
                        )
                    )
                    return
                fed = fed or bool(data)
                if out:
                    decoded += len(out)
                    yield out
                if decoder.eof:
                    unused = decoder.unused_data
                    consumed += len(data) - len(unused)
                    data = unused.lstrip(b"\0")  # gzip allows zero padding after a member
                    consumed += len(unused) - len(data)
                    decoder, fed = make(), False
                    if not data:
                        break
                    continue
                tail = decoder.unconsumed_tail if limit else b""
                consumed += len(data) - len(tail)
                data = tail
                if not data and not (limit and len(out) == limit):
                    break  # (a full output may leave more inside the decoder: ask again)
        if fed:
            report.notes.append(
                CaptureNote(
                    str(path),
                    0,
                    "truncated",
                    f"{name} stream ends early (an interrupted recording?): read the "
                    f"{decoded} decodable bytes; the rest was never written",
                )
            )


def _zstandard(path: Path) -> Any:
    try:
        import zstandard
    except ImportError:
        raise CaptureError(
            f"{path}: reading .zst captures needs the 'zstandard' package "
            "(pip install 'bookengine[research]')"
        ) from None
    return zstandard


def _complete(line: bytes) -> bool:
    """True when an unterminated final line is nevertheless a whole item (parses)."""
    if HEADER_PREFIX.startswith(line) or CHECKPOINT_PREFIX.startswith(line):
        return False  # the start of a header or checkpoint line
    if line.startswith(HEADER_PREFIX):
        try:
            CaptureHeader.parse(line)
        except CaptureError:
            return False
        return True
    if line.startswith(CHECKPOINT_PREFIX):
        meta, separator, frame = line[len(CHECKPOINT_PREFIX) :].partition(b"\t")
        return bool(separator) and _is_json_container(meta) and _is_json_container(frame)
    if line.startswith(b"#"):
        return True
    tab = line.find(b"\t")
    if tab >= 0:
        line = line[tab + 1 :]
    if line.startswith(SENT_MARKER):
        line = line[1:]
    return _is_json_container(line)


def _is_json_container(text: bytes) -> bool:
    # A proper prefix of a JSON object or array is never itself one: a parse tells a whole
    # line from a torn one.
    try:
        return isinstance(json.loads(text), dict | list)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False


def _detect(body: bytes, path: str) -> int:
    """The line format of a file from its first lines (the first recognisable of five)."""
    error: CaptureError | None = None
    checked = 0
    for number, line in enumerate(body.split(b"\n", 64)[:64], 1):
        if not line.strip():
            continue
        try:
            return detect_line_format(line, path, number)
        except CaptureError as exc:
            error = error or exc
        checked += 1
        if checked == 5:
            break
    if error is not None:
        raise error
    return LINES_KRAKEN


def _drop_lines(data: bytes, start: int, end: int, count: int) -> tuple[int, int]:
    """Where the lines of ``data[start:end]`` go on without their first ``count`` (``end``
    when there are fewer), and how many went."""
    pos = start
    for dropped in range(count):
        newline = data.find(b"\n", pos, end)
        if newline < 0:
            return end, dropped
        pos = newline + 1
    return pos, count


def _first_lines(data: bytes, start: int, end: int, count: int = 64) -> bytes:
    """The first ``count`` lines of ``data[start:end]`` (what format detection reads)."""
    return data[start : _drop_lines(data, start, end, count)[0]]


class CaptureReader:
    """Iterate the lines of captures, in order, as :class:`CaptureRecord`.

    Args:
        paths: capture files (plain, ``.gz`` or ``.zst``), read in the order given.
        kinds: which record kinds to yield: any of ``"frame"``, ``"sent"``, ``"header"``,
            ``"checkpoint"``, ``"torn"``. Everything is counted in :attr:`report` whatever is
            yielded. ``"raw"`` (bulk replay) yields the decoded lines instead, as ``"raw"``
            records of whole lines (``line`` is the number of the first); the consumer hands
            each line it does not take itself to :meth:`read_line`, which classifies and
            counts it as this reader would. Torn final lines are handled as usual.
        start: ``(file_index, line)``: skip every line up to and including that line of that
            file (0-based file index, 1-based line): resume a read where it stopped.

    A line whose timestamp prefix is malformed is yielded as a frame with ``recv_ts_ns = -1``
    and its whole text, so the caller counts it as a bad frame with its file and line number.
    Cost: one pass over the decompressed bytes; a ``bytes.split`` per 1 MiB chunk and a few
    slices per line.

    Raises (while iterating):
        CaptureError: a file cannot be opened, a header is malformed or too new, or ``.zst``
            without the ``zstandard`` package. Torn final lines, truncated and damaged
            compressed streams are reported in :attr:`report`, not raised.
    """

    def __init__(
        self,
        paths: Iterable[str | Path],
        *,
        kinds: Iterable[str] = ("frame",),
        start: tuple[int, int] | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.kinds = frozenset(kinds)
        unknown = self.kinds - {"frame", "sent", "header", "checkpoint", "torn", "raw"}
        if unknown:
            raise ValueError(f"unknown record kinds {sorted(unknown)}")
        self.start = start
        self.line_format = LINES_KRAKEN
        """Line format of the file being read (``"raw"`` reads: detected from its first lines)."""
        self.report = CaptureReport()
        self.file_index = -1
        """Index in :attr:`paths` of the file being read."""
        self._progress = _Progress()

    @property
    def bytes_total(self) -> int:
        """On-disk size of all files (known once iteration starts)."""
        return self._progress.total

    @property
    def bytes_read(self) -> int:
        """On-disk bytes consumed so far."""
        return self._progress.done

    def __iter__(self) -> Iterator[CaptureRecord]:
        total = 0
        for path in self.paths:
            with contextlib.suppress(OSError):  # reported by the open, in order
                total += path.stat().st_size
        self._progress.total = total
        start_file, start_line = self.start if self.start is not None else (0, 0)
        for index, path in enumerate(self.paths):
            self.file_index = index
            if index < start_file:
                with contextlib.suppress(OSError):
                    self._progress.done += path.stat().st_size
                continue
            skip = start_line if index == start_file else 0
            yield from self._read(path, skip)

    def _read(self, path: Path, skip: int) -> Iterator[CaptureRecord]:
        report = self.report
        kinds = self.kinds
        want_frame, want_sent = "frame" in kinds, "sent" in kinds
        name = str(path)
        number = 0
        rest = b""
        notes_before = len(report.notes)
        raw = "raw" in kinds
        detected = not raw
        self.line_format = LINES_KRAKEN
        for chunk in _decoded_chunks(path, report, self._progress):
            if raw:
                # Whole lines only, up to the chunk's last newline, handed over in place (the
                # line reader reads frame[start:end]); only the line across two chunks is
                # copied, into a record of its own.
                cut = chunk.rfind(b"\n") + 1
                if not cut:
                    rest += chunk
                    continue
                start = 0
                if rest:
                    start = chunk.find(b"\n") + 1
                    head = rest + chunk[:start]
                    if not detected:
                        self.line_format = _detect(head + _first_lines(chunk, start, cut), name)
                        detected = True
                    if skip > number:
                        number += 1
                    else:
                        yield CaptureRecord(name, number + 1, -1, head, "raw")
                        number += 1
                rest = chunk[cut:]
                if start == cut:
                    continue
                if not detected:
                    self.line_format = _detect(_first_lines(chunk, start, cut), name)
                    detected = True
                if skip > number:
                    start, dropped = _drop_lines(chunk, start, cut, skip - number)
                    number += dropped
                    if start == cut:
                        continue
                yield CaptureRecord(name, number + 1, -1, chunk, "raw", start, cut)
                number += _count_lines(chunk, start, cut)
                continue
            if rest:
                chunk = rest + chunk
            lines = chunk.split(b"\n")
            rest = lines.pop()
            if skip > number:
                drop = min(skip - number, len(lines))
                number += drop
                lines = lines[drop:]
            for line in lines:
                number += 1
                if line.endswith(b"\r"):
                    line = line[:-1]
                if not line or line[0] == 0x23:  # '#'
                    if line:
                        record = self._special(name, number, line)
                        if record is not None:
                            yield record
                    continue
                recv_ts_ns, line = split_recv_ts(line)
                if line[:1] == SENT_MARKER:
                    report.sent += 1
                    if want_sent:
                        yield CaptureRecord(name, number, recv_ts_ns, line[1:], "sent")
                    continue
                if not line.strip():
                    continue
                report.frames += 1
                if want_frame:
                    yield CaptureRecord(name, number, recv_ts_ns, line)
        stream_notes = report.notes[notes_before:]
        del report.notes[notes_before:]
        if raw and not detected and rest.strip():
            self.line_format = _detect(rest, name)
        if rest and number >= skip:
            number += 1
            line = rest[:-1] if rest.endswith(b"\r") else rest
            if raw and self.line_format != LINES_KRAKEN:
                # Other tools' lines carry no JSON test of completeness: read the line as is.
                yield CaptureRecord(name, number, -1, line + b"\n", "raw")
            elif line.strip():
                if _complete(line):
                    # A whole item that merely lacks its newline (a hand-made file): read it.
                    yield from self._read_one(name, number, line)
                else:
                    torn = CaptureRecord(name, number, -1, line, "torn")
                    report.torn.append(torn)
                    report.notes.append(
                        CaptureNote(
                            name,
                            number,
                            "torn",
                            f"torn final line ignored ({len(line)} bytes, no newline)",
                        )
                    )
                    if "torn" in kinds:
                        yield torn
        for note in stream_notes:
            report.notes.append(CaptureNote(note.path, number, note.kind, note.message))

    def read_line(self, path: str, number: int, line: bytes) -> Iterator[CaptureRecord]:
        """One line of a ``"raw"`` record (without its newline), classified and counted."""
        if line.endswith(b"\r"):
            line = line[:-1]
        if line:
            yield from self._read_one(path, number, line)

    def _read_one(self, name: str, number: int, line: bytes) -> Iterator[CaptureRecord]:
        """One non-empty line: the rules of ``_read``'s loop (which has them inline for speed)."""
        if line[0] == 0x23:
            record = self._special(name, number, line)
            if record is not None:
                yield record
            return
        recv_ts_ns, line = split_recv_ts(line)
        if line[:1] == SENT_MARKER:
            self.report.sent += 1
            if "sent" in self.kinds:
                yield CaptureRecord(name, number, recv_ts_ns, line[1:], "sent")
            return
        if not line.strip():
            return  # a receive time and nothing after it
        self.report.frames += 1
        if "frame" in self.kinds:
            yield CaptureRecord(name, number, recv_ts_ns, line)

    def _special(self, name: str, number: int, line: bytes) -> CaptureRecord | None:
        report = self.report
        if line.startswith(HEADER_PREFIX):
            header = CaptureHeader.parse(line, name, number)
            report.headers.append(header)
            if "header" in self.kinds:
                return CaptureRecord(
                    name, number, header.started_ns, line[len(HEADER_PREFIX) :], "header"
                )
            return None
        if line.startswith(CHECKPOINT_PREFIX):
            report.checkpoints += 1
            if "checkpoint" in self.kinds:
                record = CaptureRecord(name, number, -1, line[len(CHECKPOINT_PREFIX) :], "")
                meta, _ = parse_checkpoint(record)
                recv_ts_ns = meta.get("recv_ts_ns", -1)
                if not isinstance(recv_ts_ns, int):
                    recv_ts_ns = -1
                return CaptureRecord(name, number, recv_ts_ns, record.frame, "checkpoint")
            return None
        report.comments += 1
        return None


def read_frames(
    paths: Iterable[str | Path],
    *,
    report: CaptureReport | None = None,
    sent: bool = False,
) -> Iterator[CaptureRecord]:
    """Yield every received frame of the given captures, in order, as :class:`CaptureRecord`.

    Header, checkpoint and comment lines are skipped; sent requests too unless ``sent``. A
    torn final line (no newline, does not parse) is not yielded: it is recorded in
    ``report.torn``, like truncated or damaged compressed streams (see :class:`CaptureReader`).

    Raises:
        CaptureError: a file cannot be opened, or a header is malformed.
    """
    reader = CaptureReader(paths, kinds=("frame", "sent") if sent else ("frame",))
    if report is not None:
        reader.report = report
    return iter(reader)


# -- segment names ---------------------------------------------------------------------------


def _split_name(path: Path) -> tuple[str, str]:
    """``btc.jsonl.gz`` -> (``btc``, ``.jsonl.gz``): where a segment number goes."""
    name = path.name
    suffix = ""
    for compressed in _COMPRESSED:
        if name.endswith(compressed):
            name, suffix = name[: -len(compressed)], compressed
            break
    for kind in _CAPTURE_SUFFIXES:
        if name.endswith(kind) and len(name) > len(kind):
            return name[: -len(kind)], kind + suffix
    return name, suffix


def segment_path(base: str | Path, segment: int) -> Path:
    """The file of segment ``segment`` (1-based) of a rotated recording named ``base``.

    ``segment_path("day/btc.jsonl.gz", 3) == Path("day/btc.0003.jsonl.gz")``: the number (at
    least 4 digits) goes before the capture suffixes (``.jsonl``, ``.json``, ``.ndjson``,
    ``.txt``, ``.log``, ``.capture``) and the compression suffix (``.gz``, ``.zst``).
    """
    if segment < 1:
        raise ValueError(f"segments are numbered from 1, got {segment}")
    base = Path(base)
    stem, suffix = _split_name(base)
    return base.with_name(f"{stem}.{segment:04d}{suffix}")


def find_segments(base: str | Path) -> list[Path]:
    """The existing segments of the rotated recording ``base``, in segment order."""
    base = Path(base)
    stem, suffix = _split_name(base)
    pattern = re.compile(re.escape(stem) + r"\.([0-9]{4,})" + re.escape(suffix) + r"\Z")
    found: list[tuple[int, Path]] = []
    directory = base.parent
    if directory.is_dir():
        for entry in directory.iterdir():
            match = pattern.match(entry.name)
            if match:
                found.append((int(match.group(1)), entry))
    return [path for _, path in sorted(found)]


# -- inputs ----------------------------------------------------------------------------------


def is_capture_name(name: str) -> bool:
    """A file name a capture folder's listing takes: a capture suffix (``.jsonl``, ``.json``,
    ``.ndjson``, ``.txt``, ``.log``, ``.capture``), optionally ``.gz``/``.zst``; not hidden."""
    if name.startswith((".", "_")):
        return False
    for compressed in _COMPRESSED:
        if name.endswith(compressed):
            name = name[: -len(compressed)]
            break
    return name.endswith(_CAPTURE_SUFFIXES)


def _first_recv_ts(path: Path, limit: int = 1 << 16) -> int:
    """The first receive time in the first ``limit`` bytes of a capture; -1 when none."""
    try:
        if path.name.endswith(".gz"):
            import gzip

            with gzip.open(path, "rb") as stream:
                head = stream.read(limit)
        elif path.name.endswith(".zst"):
            with path.open("rb") as raw:
                reader = _zstandard(path).ZstdDecompressor().stream_reader(raw)
                head = reader.read(limit)
        else:
            with path.open("rb") as stream:
                head = stream.read(limit)
    except (OSError, EOFError, CaptureError):
        return -1
    except Exception:  # a damaged compressed stream: its reader reports it later
        return -1
    for line in head.split(b"\n")[:-1] or head.split(b"\n"):
        ts, _ = split_recv_ts(line)
        if ts >= 0:
            return ts
        for separator in (b": ", b" "):
            field = line.split(separator, 1)[0]
            if 0 < len(field) <= 40 and field[:1].isdigit():
                try:
                    return parse_recv_ts(field)
                except CaptureError:
                    pass
    return -1


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Capture paths with folders expanded: every capture file inside a folder (recursively,
    hidden files and unknown suffixes skipped, see :func:`is_capture_name`), in time order
    (first receive time in the file, then name; files without receive times first, by name:
    instrument lists and other reference data).
    Files given by name are kept as given, in the order given.

    Raises:
        CaptureError: a folder holds no capture file.
    """
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = [
                entry
                for entry in path.rglob("*")
                if entry.is_file()
                and is_capture_name(entry.name)
                and not any(part.startswith(".") for part in entry.relative_to(path).parts)
            ]
            if not found:
                raise CaptureError(
                    f"{path}: a folder with no capture files (names ending in "
                    f"{', '.join(_CAPTURE_SUFFIXES)}, optionally .gz or .zst)"
                )
            keyed = []
            for entry in found:
                ts = _first_recv_ts(entry)
                keyed.append((ts >= 0, ts, str(entry.relative_to(path)), entry))
            out.extend(entry for *_, entry in sorted(keyed))
        else:
            out.append(path)  # a missing file is reported by the reader, with its name
    return out


# -- writing ---------------------------------------------------------------------------------


class _Sink:
    """A segment file: plain, gzip or zstd; ``size`` counts bytes handed to the OS."""

    def __init__(self, path: Path, overwrite: bool, level: int | None) -> None:
        self.path = path
        try:
            self._file: BinaryIO = path.open("wb" if overwrite else "xb", buffering=0)
        except FileExistsError:
            raise CaptureError(
                f"{path}: exists; refusing to overwrite a capture (remove it or pick a name)"
            ) from None
        except OSError as exc:
            raise CaptureError(f"{path}: cannot create: {exc.strerror or exc}") from None
        self.size = 0
        self._pending: list[bytes] = []
        self.kind = path.suffix if path.suffix in _COMPRESSED else ""
        self._zstd: Any = None
        if self.kind == ".gz":
            self._gzip = zlib.compressobj(6 if level is None else level, zlib.DEFLATED, 31)
        elif self.kind == ".zst":
            zstandard = _zstandard(path)
            self._zstd = zstandard.ZstdCompressor(level=3 if level is None else level)
            self._zstd_flush = zstandard.COMPRESSOBJ_FLUSH_FINISH
            self._zobj = self._zstd.compressobj()

    def write(self, data: bytes) -> None:
        self._pending.append(data)

    def flush(self, final: bool = False) -> None:
        """Hand pending lines to the OS: whole lines, decodable up to here."""
        data = b"".join(self._pending)
        self._pending.clear()
        if self.kind == ".gz":
            data = self._gzip.compress(data) + self._gzip.flush(
                zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH
            )
        elif self.kind == ".zst":
            if not data and not final:
                return
            # End the zstd frame: a later kill cannot make the bytes written so far unreadable.
            data = self._zobj.compress(data) + self._zobj.flush(self._zstd_flush)
            self._zobj = self._zstd.compressobj()
        if data:
            view = memoryview(data)
            while view:
                written = self._file.write(view)
                if written is None:  # pragma: no cover - only for non-blocking files
                    continue
                view = view[written:]
            self.size += len(data)

    def fsync(self) -> None:
        os.fsync(self._file.fileno())

    def close(self) -> None:
        try:
            self.flush(final=True)
        finally:
            self._file.close()


_SECRET_FIELD = re.compile(
    r'"(' + "|".join(sorted(SECRET_KEYS)) + r')"(\s*:\s*)("(?:[^"\\]|\\.)*"|[^\s,}\]]+)'
)


def redact_request(request: str | bytes, secrets: Iterable[str] = ()) -> tuple[str, list[str]]:
    """A sent request with its credentials replaced by ``"<redacted>"``.

    The values of fields named in :data:`SECRET_KEYS` are redacted in place (the rest of the
    text is kept byte for byte), and so is any occurrence of a value in ``secrets``, even in a
    request that is not JSON.

    Returns:
        The request text to write, and the secret values found (e.g. the level3 token), so
        the caller can scrub them from anything else it writes.
    """
    text = request.decode("utf-8", "replace") if isinstance(request, bytes) else request
    found: list[str] = []

    def scrub(match: re.Match[str]) -> str:
        value = match.group(3)
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        if value:
            found.append(value)
        return f'"{match.group(1)}"{match.group(2)}"{REDACTED}"'

    text = _SECRET_FIELD.sub(scrub, text)
    # Found values are scrubbed elsewhere in the text too when long enough to be unambiguous.
    for secret in [*(f for f in found if len(f) >= MIN_SCRUB_LENGTH), *secrets]:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text, found


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _sanitize_url(url: str | None) -> str | None:
    # Never keep credentials that may ride in a URL (user:pass@, ?token=...).
    if url is None:
        return None
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Recorder:
    """Write a crash-safe, optionally rotated and compressed capture.

    Use as ``on_frame`` / ``on_send`` callbacks of :class:`~bookengine.feed.KrakenFeed`::

        with Recorder("btc.jsonl.zst", max_seconds=3600) as recorder:
            feed = KrakenFeed(book=["BTC/USD"], on_frame=recorder.write_frame,
                              on_send=recorder.write_sent)

    Args:
        path: output file; the suffix picks the compression (``.gz``, ``.zst``, else plain).
            With rotation the segments are ``segment_path(path, n)`` (``btc.0001.jsonl.zst``,
            ...), numbered on after any existing ones; without rotation ``path`` itself.
        max_bytes: start a new segment once this many bytes are on disk (compressed bytes for
            compressed files, so a segment may overshoot by one flush interval of output).
        max_seconds: start a new segment when a line's timestamp is this far past the
            segment's start.
        url, subscriptions: written in each segment's header.
        header_extra: more JSON fields for the header.
        checkpoint: called at each rotation; returns ``(meta, frame)`` pairs to write as
            ``#checkpoint`` lines (:func:`session_checkpoint` builds them from live books).
            The recorder adds an ``instrument`` checkpoint of the precisions it saw itself.
        redact: secret values (API key, secret) scrubbed from every line if they ever occur.
        flush_lines, flush_seconds: hand lines to the OS after this many lines or seconds
            (default: plain files every line; compressed every 1000 lines or 1 s).
        fsync: also ``fsync`` on each flush (survives power loss, not just a killed process).
        overwrite: replace an existing file instead of refusing (unrotated recordings only).
        level: compression level (gzip 0-9, default 6; zstd 1-22, default 3).
        clock_ns: wall clock for ``started_ns`` (tests inject one).

    Raises:
        CaptureError: the file exists (and not ``overwrite``) or cannot be created.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int | None = None,
        max_seconds: float | None = None,
        url: str | None = None,
        subscriptions: Sequence[Mapping[str, Any]] = (),
        header_extra: Mapping[str, Any] | None = None,
        checkpoint: Callable[[], Iterable[tuple[Mapping[str, Any], bytes | str]]] | None = None,
        redact: Iterable[str | None] = (),
        flush_lines: int | None = None,
        flush_seconds: float = 1.0,
        fsync: bool = False,
        overwrite: bool = False,
        level: int | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        from . import __version__

        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
        self.path = Path(path)
        self.rotating = max_bytes is not None or max_seconds is not None
        self.max_bytes = max_bytes
        self.max_ns = None if max_seconds is None else int(max_seconds * 1e9)
        self.url = _sanitize_url(url)
        self.subscriptions = [dict(s) for s in subscriptions]
        for subscription in self.subscriptions:
            if "url" in subscription:
                subscription["url"] = _sanitize_url(subscription["url"])
        self.header_extra = dict(header_extra or {})
        self.checkpoint = checkpoint
        self._secrets: list[str] = [s for s in redact if s]
        self._secret_bytes = [s.encode() for s in self._secrets]
        compressed = self.path.suffix in _COMPRESSED
        self.flush_lines = flush_lines if flush_lines is not None else (1000 if compressed else 1)
        self.flush_seconds = flush_seconds
        self.fsync = fsync
        self.overwrite = overwrite
        self.level = level
        self.library = __version__
        self._clock_ns = clock_ns
        self.segments: list[Path] = []
        """Files written so far, in order."""
        self.frames = 0
        self.sent = 0
        self._sink: _Sink | None = None
        self._segment = 0
        if self.rotating:
            existing = find_segments(self.path)
            if existing:
                stem, suffix = _split_name(self.path)
                self._segment = int(existing[-1].name[len(stem) + 1 : -len(suffix) or None])
        self._segment_started_ns = 0
        self._lines_since_flush = 0
        self._last_flush = time.monotonic()
        self._last_ts_ns = -1
        self._precisions: dict[str, tuple[int, int]] = {}
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Finish the current segment (complete gzip/zstd stream) and close it. Idempotent."""
        self._closed = True
        if self._sink is not None:
            sink, self._sink = self._sink, None
            sink.close()

    def flush(self) -> None:
        """Hand every written line to the OS now (and fsync if asked)."""
        if self._sink is not None:
            self._sink.flush()
            if self.fsync:
                self._sink.fsync()
        self._lines_since_flush = 0
        self._last_flush = time.monotonic()

    # -- writing ---------------------------------------------------------------------------

    def write_frame(self, recv_ts_ns: int, frame: bytes | str) -> None:
        """Record one received frame (the ``on_frame`` callback)."""
        data = frame.encode() if isinstance(frame, str) else bytes(frame)
        for secret in self._secret_bytes:
            if secret in data:
                data = data.replace(secret, REDACTED.encode())
        if b"\n" in data:  # never in JSON text; a line must stay one line
            data = data.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
        if b'"instrument"' in data:
            self._note_instruments(data)
        if recv_ts_ns >= 0:
            self._write(recv_ts_ns, b"%d\t%s\n" % (recv_ts_ns, data))
        else:  # no receive time: a bare frame line
            self._write(recv_ts_ns, data + b"\n")
        self.frames += 1

    __call__ = write_frame

    def write_sent(self, sent_ts_ns: int, request: bytes | str) -> None:
        """Record one request sent to the exchange (the ``on_send`` callback), redacted."""
        text, found = redact_request(request, self._secrets)
        for secret in found:
            if len(secret) >= MIN_SCRUB_LENGTH and secret not in self._secrets:
                self._secrets.append(secret)
                self._secret_bytes.append(secret.encode())
        data = text.encode().replace(b"\r", b"\\r").replace(b"\n", b"\\n")
        if sent_ts_ns >= 0:
            self._write(sent_ts_ns, b"%d\t>%s\n" % (sent_ts_ns, data))
        else:
            self._write(sent_ts_ns, b">%s\n" % data)
        self.sent += 1

    def _write(self, ts_ns: int, line: bytes) -> None:
        if self._closed:
            raise CaptureError(f"{self.path}: recorder is closed")
        sink = self._sink
        if sink is None:
            sink = self._open(ts_ns)
        elif self.rotating and (
            (self.max_bytes is not None and sink.size >= self.max_bytes)
            or (
                self.max_ns is not None
                and ts_ns >= 0
                and ts_ns - self._segment_started_ns >= self.max_ns
            )
        ):
            sink.close()
            sink = self._open(ts_ns)
        sink.write(line)
        if ts_ns >= 0:
            self._last_ts_ns = ts_ns
        self._lines_since_flush += 1
        if (
            self._lines_since_flush >= self.flush_lines
            or time.monotonic() - self._last_flush >= self.flush_seconds
        ):
            self.flush()

    def _open(self, ts_ns: int) -> _Sink:
        previous = self.segments[-1].name if self.segments else None
        self._segment += 1
        path = segment_path(self.path, self._segment) if self.rotating else self.path
        sink = _Sink(path, self.overwrite and not self.rotating, self.level)
        self._sink = sink
        self.segments.append(path)
        started_ns = self._clock_ns()
        # Time rotation follows the lines' own clock (recv_ts) when they carry one.
        self._segment_started_ns = ts_ns if ts_ns >= 0 else started_ns
        header = CaptureHeader(
            FORMAT_VERSION,
            self.library,
            self._segment,
            started_ns,
            self.url,
            tuple(self.subscriptions),
            previous,
            self.header_extra,
        )
        sink.write(header.to_line())
        if previous is not None:
            self._write_checkpoints(sink)
        sink.flush()
        return sink

    def _write_checkpoints(self, sink: _Sink) -> None:
        at = self._last_ts_ns
        items: list[tuple[Mapping[str, Any], bytes | str]] = []
        if self.checkpoint is not None:
            items.extend(self.checkpoint())
        if self._precisions:
            # Every pair this recorder saw (a superset of what the books need: trades too).
            items = [item for item in items if item[0].get("kind") != "instrument"]
            items.insert(0, ({"kind": "instrument"}, instrument_frame(self._precisions)))
        for meta, frame in items:
            body = dict(meta)
            body.setdefault("recv_ts_ns", at)
            data = frame.encode() if isinstance(frame, str) else frame
            sink.write(CHECKPOINT_PREFIX + _dumps(body).encode() + b"\t" + data + b"\n")

    def _note_instruments(self, frame: bytes) -> None:
        # Precisions seen so far, so a later segment can be replayed on its own.
        try:
            message = json.loads(frame)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(message, dict) or message.get("channel") != "instrument":
            return
        data = message.get("data")
        pairs = data.get("pairs") if isinstance(data, dict) else None
        for pair in pairs if isinstance(pairs, list) else []:
            if isinstance(pair, dict):
                symbol = pair.get("symbol")
                pp, qp = pair.get("price_precision"), pair.get("qty_precision")
                if isinstance(symbol, str) and isinstance(pp, int) and isinstance(qp, int):
                    self._precisions[symbol] = (pp, qp)


# -- checkpoints: live state as Kraken-format snapshot frames ---------------------------------


def instrument_frame(precisions: Mapping[str, tuple[int, int]]) -> str:
    """A minimal v2 ``instrument`` snapshot frame giving these precisions."""
    pairs = [
        {"symbol": symbol, "price_precision": pp, "qty_precision": qp}
        for symbol, (pp, qp) in sorted(precisions.items())
    ]
    return _dumps({"channel": "instrument", "type": "snapshot", "data": {"pairs": pairs}})


def book_snapshot_frame(state: Any) -> str | None:
    """A Kraken-format snapshot frame of a session book (``BookState``), or None if it has none.

    v2 ``book``: a ``book`` snapshot with the book's CRC32; ``level3``: a ``level3`` snapshot
    (every order, queue order, timestamps) with its CRC32; v1: a ``book-N`` snapshot array.
    Numbers are written at the book's precision, as JSON strings, so nothing is rounded.
    """
    book = state.book
    if book is None:
        return None
    pp, qp = book.price_precision or 0, book.qty_precision or 0
    symbol = json.dumps(state.symbol)
    if state.protocol == "v1":
        sides = []
        for key, levels in (("as", book.asks()), ("bs", book.bids())):
            entries = ",".join(
                f'["{mantissa_text(p, pp)}","{mantissa_text(q, qp)}","0.000000"]' for p, q in levels
            )
            sides.append(f'"{key}":[{entries}]')
        channel_name = state.key.partition(":")[0]
        return f'[0,{{{",".join(sides)}}},"{channel_name}",{symbol}]'
    if state.channel == "level3":
        columns = book.orders_arrays(order_ids=True)
        bids: list[str] = []
        asks: list[str] = []
        for side, price, qty, ts, order_id in zip(
            columns["side"].tolist(),
            columns["price"].tolist(),
            columns["qty"].tolist(),
            columns["timestamp_ns"].tolist(),
            columns["order_id"].tolist(),
            strict=True,
        ):
            entry = (
                f'{{"order_id":{json.dumps(order_id)},"limit_price":"{mantissa_text(price, pp)}"'
                f',"order_qty":"{mantissa_text(qty, qp)}"'
                + (f',"timestamp":"{format_rfc3339_ns(ts)}"' if ts >= 0 else "")
                + "}"
            )
            (bids if side == 0 else asks).append(entry)
        return (
            f'{{"channel":"level3","type":"snapshot","data":[{{"symbol":{symbol},'
            f'"bids":[{",".join(bids)}],"asks":[{",".join(asks)}],'
            f'"checksum":{book.checksum()}}}]}}'
        )
    levels = {
        name: ",".join(
            f'{{"price":"{mantissa_text(p, pp)}","qty":"{mantissa_text(q, qp)}"}}'
            for p, q in side_levels
        )
        for name, side_levels in (("bids", book.bids()), ("asks", book.asks()))
    }
    return (
        f'{{"channel":"book","type":"snapshot","data":[{{"symbol":{symbol},'
        f'"bids":[{levels["bids"]}],"asks":[{levels["asks"]}],"checksum":{book.checksum()}}}]}}'
    )


def session_checkpoint(
    books: Mapping[str, Any], instruments: Any = None
) -> list[tuple[dict[str, Any], str]]:
    """Checkpoint items ``(meta, frame)`` for every exact book (``BookState``) given.

    Books that are stale or not built yet are left out: replay rebuilds them from their next
    snapshot, as the live feed did. ``instruments`` (an :class:`~bookengine.instruments.
    Instruments`) adds an ``instrument`` item with the precisions of the books' symbols.
    """
    items: list[tuple[dict[str, Any], str]] = []
    precisions: dict[str, tuple[int, int]] = {}
    for key, state in sorted(books.items()):
        if state.book is None or state.stale:
            continue
        frame = book_snapshot_frame(state)
        if frame is None:
            continue
        if instruments is not None and state.protocol == "v2":
            instrument = instruments.get(state.symbol)
            if instrument is not None:
                precisions[state.symbol] = (instrument.price_precision, instrument.qty_precision)
        meta = {
            "kind": "book",
            "key": key,
            "channel": state.channel,
            "protocol": state.protocol,
            "symbol": state.symbol,
            "depth": state.depth,
        }
        items.append((meta, frame))
    if precisions:
        items.insert(0, ({"kind": "instrument"}, instrument_frame(precisions)))
    return items


def subscribe_ack_frame(channel: str, symbol: str, depth: int | None) -> str:
    """A v2 subscribe acknowledgement: tells a session the depth of a book it rebuilds."""
    result: dict[str, Any] = {"channel": channel, "symbol": symbol, "snapshot": True}
    if depth is not None:
        result["depth"] = depth
    return _dumps({"method": "subscribe", "result": result, "success": True})
