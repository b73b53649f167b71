"""The recorder and the reader: round trips, crash safety, rotation, headers, redaction."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bookengine.capture import (
    FORMAT_VERSION,
    REDACTED,
    CaptureHeader,
    CaptureReader,
    Recorder,
    find_segments,
    read_frames,
    redact_request,
    segment_path,
)
from bookengine.errors import CaptureError
from bookengine.replay import replay

from .helpers import Recording

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SUFFIXES = [".jsonl", ".jsonl.gz", ".jsonl.zst"]


def frames(
    n: int, start_ns: int = 1_700_000_000_000_000_000, step_ns: int = 1_000_000
) -> list[tuple[int, bytes]]:
    """``n`` distinct small frames (hardly compressible) with increasing receive times."""
    return [
        (
            start_ns + i * step_ns,
            b'{"channel":"heartbeat","n":%d,"pad":"%s"}'
            % (i, hashlib.sha256(b"%d" % i).hexdigest()[: 8 + i % 24].encode()),
        )
        for i in range(n)
    ]


def decoded(path: Path) -> bytes:
    """A capture file's text, whatever its compression."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        import io

        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        )
        return bytes(reader.read())
    return data


def iter_headers(paths: list[Path]) -> list[CaptureHeader]:
    reader = CaptureReader(paths, kinds=())
    list(reader)
    return reader.report.headers


def read_all(paths: list[Path]) -> tuple[list, CaptureReader]:
    reader = CaptureReader(paths, kinds=("frame", "sent", "header", "checkpoint", "torn"))
    return list(reader), reader


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_keeps_every_frame_request_and_header(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"cap{suffix}"
    sent = '{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"]},"req_id":7}'
    with Recorder(path, url="ws://127.0.0.1:1/v2", subscriptions=[{"channel": "book"}]) as rec:
        rec.write_sent(5, sent)
        for ts, frame in frames(50):
            rec.write_frame(ts, frame)
    assert rec.segments == [path]
    records, reader = read_all([path])
    assert [(r.recv_ts_ns, r.frame) for r in records if r.kind == "frame"] == frames(50)
    assert [(r.recv_ts_ns, r.frame.decode()) for r in records if r.kind == "sent"] == [(5, sent)]
    (header,) = reader.report.headers
    assert (header.version, header.segment, header.previous) == (FORMAT_VERSION, 1, None)
    assert header.url == "ws://127.0.0.1:1/v2"
    assert header.subscriptions == ({"channel": "book"},)
    assert reader.report.notes == []
    # The default reader yields received frames only, as before headers existed.
    assert [(r.recv_ts_ns, r.frame) for r in read_frames([path])] == frames(50)


def test_bare_frame_files_and_timestamp_forms_still_read(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_bytes(
        b'{"a":1}\n'
        b'1690730998.343415\t{"b":2}\n'
        b'2023-07-30T15:29:58.343415Z\t{"c":3}\n'
        b"\n"
        b"# a comment\n"
        b"12\t[1,2]"  # no final newline, but whole: read
    )
    got = [(r.line, r.recv_ts_ns, r.frame) for r in read_frames([path])]
    assert got == [
        (1, -1, b'{"a":1}'),
        (2, 1690730998343415000, b'{"b":2}'),
        (3, 1690730998343415000, b'{"c":3}'),
        (6, 12, b"[1,2]"),
    ]


def test_bundled_fixture_replays_as_before() -> None:
    result = replay([DATA / "v2-book-btcusd-depth10.jsonl"], precisions={"BTC/USD": (1, 8)})
    assert result.ok and result.notes == []
    assert result.books["book:BTC/USD"].checksums_checked == 510


# -- crash safety ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_truncation_at_every_offset_loses_only_the_tail(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"small{suffix}"
    expected = frames(6)
    # Flush after every line: each line is its own gzip sync point / zstd frame.
    with Recorder(path, flush_lines=1) as rec:
        rec.write_sent(1, '{"method":"ping","req_id":1}')
        for ts, frame in expected:
            rec.write_frame(ts, frame)
    data = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    complete_lines = decoded(path).count(b"\n")
    seen_counts = set()
    for offset in range(len(data) + 1):
        cut.write_bytes(data[:offset])
        problems: list[str] = []
        result = replay([cut], on_problem=lambda record, message, out=problems: out.append(message))
        got = [(r.recv_ts_ns, r.frame) for r in read_frames([cut])]
        # Every complete line that made it to disk is read, in order; nothing else.
        assert got == expected[: len(got)], offset
        assert result.frames == len(got) and result.bad_frames == 0, offset
        seen_counts.add(len(got))
        text = decoded(cut) if suffix == ".jsonl" or offset == len(data) else None
        if text is not None and text and not text.endswith(b"\n"):
            # A cut line is torn unless it is whole but for its newline.
            last = text.rsplit(b"\n", 1)[-1]
            body = (last.partition(b"\t")[2] or last).removeprefix(b">")
            try:
                whole = isinstance(json.loads(body.removeprefix(b"#bookengine ")), dict)
            except ValueError:
                whole = False
            assert whole or any("torn final line ignored" in p for p in problems), offset
        if suffix == ".jsonl.gz" and 0 < offset < len(data):
            # zstd: a cut between two frames is a valid, shorter file; gzip never is.
            assert any(
                "torn final line" in p or "ends early" in p or "damaged" in p for p in problems
            ), offset
    assert seen_counts == set(range(len(expected) + 1))
    assert complete_lines == len(expected) + 2  # header + request + frames


KILL_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
from bookengine.capture import Recorder
rec = Recorder(sys.argv[1], flush_lines=50, flush_seconds=0.05)
i = 0
while True:
    rec.write_frame(1_700_000_000_000_000_000 + i, b'{{"channel":"heartbeat","n":%d}}' % i)
    i += 1
    if i % 100 == 0:
        time.sleep(0.001)
"""


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_killed_recorder_leaves_a_readable_capture(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"killed{suffix}"
    errors = tmp_path / "stderr.txt"
    with (
        errors.open("wb") as stderr,
        subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT.format(root=str(ROOT)), str(path)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        ) as process,
    ):
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (not path.exists() or path.stat().st_size < 4000):
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
    assert path.stat().st_size >= 4000, errors.read_text()
    problems: list[str] = []
    result = replay([path], on_problem=lambda record, message: problems.append(message))
    got = [r.frame for r in read_frames([path])]
    assert len(got) >= 50
    assert got == [b'{"channel":"heartbeat","n":%d}' % i for i in range(len(got))]
    assert result.bad_frames == 0 and result.ok
    if suffix == ".jsonl.gz":  # the stream was never finished: said so, clearly
        assert any("ends early" in p for p in problems), problems
    # (zstd: every flush ends a frame, so a kill between flushes leaves a valid shorter file)


def test_damaged_gzip_is_read_up_to_the_damage(tmp_path: Path) -> None:
    path = tmp_path / "damaged.jsonl.gz"
    with Recorder(path, flush_lines=1) as rec:
        for ts, frame in frames(20):
            rec.write_frame(ts, frame)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    problems: list[str] = []
    result = replay([path], on_problem=lambda record, message: problems.append(message))
    got = [(r.recv_ts_ns, r.frame) for r in read_frames([path])]
    assert got == frames(20)[: len(got)] and len(got) < 20
    assert any("damaged" in p for p in problems)
    assert not result.ok  # damage is not an interrupted recording


# -- rotation ----------------------------------------------------------------------------------


def test_segment_names_are_predictable(tmp_path: Path) -> None:
    assert segment_path("a/btc.jsonl.gz", 3) == Path("a/btc.0003.jsonl.gz")
    assert segment_path("day.btc.jsonl.zst", 12) == Path("day.btc.0012.jsonl.zst")
    assert segment_path("cap", 1) == Path("cap.0001")
    assert segment_path("cap.jsonl", 10000) == Path("cap.10000.jsonl")
    for n in (1, 2, 10, 10000):
        segment_path(tmp_path / "x.jsonl.gz", n).write_bytes(b"")
    (tmp_path / "x.jsonl.gz").write_bytes(b"")
    (tmp_path / "x.0003.jsonl").write_bytes(b"")
    assert [p.name for p in find_segments(tmp_path / "x.jsonl.gz")] == [
        "x.0001.jsonl.gz",
        "x.0002.jsonl.gz",
        "x.0010.jsonl.gz",
        "x.10000.jsonl.gz",
    ]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_rotation_by_size(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"size{suffix}"
    expected = frames(400)
    with Recorder(path, max_bytes=3000, flush_lines=10) as rec:
        for ts, frame in expected:
            rec.write_frame(ts, frame)
    assert rec.segments == find_segments(path)
    assert len(rec.segments) >= 3
    assert rec.segments[0].name == f"size.0001{suffix}"
    records, reader = read_all(rec.segments)
    assert [(r.recv_ts_ns, r.frame) for r in records if r.kind == "frame"] == expected
    headers = reader.report.headers
    assert [h.segment for h in headers] == list(range(1, len(rec.segments) + 1))
    assert [h.previous for h in headers] == [None] + [p.name for p in rec.segments[:-1]]
    limit = 3000 + 2000  # a segment overshoots by at most about one flush of output
    assert all(p.stat().st_size < limit for p in rec.segments[:-1])


def test_rotation_by_time_follows_the_receive_clock(tmp_path: Path) -> None:
    path = tmp_path / "time.jsonl.gz"
    expected = frames(100, step_ns=50_000_000)  # 5 s of frames, 20 per second
    with Recorder(path, max_seconds=1.0) as rec:
        for ts, frame in expected:
            rec.write_frame(ts, frame)
    assert len(rec.segments) == 5
    per_segment = [[r for r in read_frames([segment])] for segment in rec.segments]
    assert [len(s) for s in per_segment] == [20] * 5
    for records in per_segment:
        assert records[-1].recv_ts_ns - records[0].recv_ts_ns < 1_000_000_000
    assert [(r.recv_ts_ns, r.frame) for s in per_segment for r in s] == expected
    # A restarted recorder numbers on; it never overwrites a segment.
    with Recorder(path, max_seconds=1.0) as again:
        again.write_frame(1, b"{}")
    assert again.segments[0].name == "time.0006.jsonl.gz"
    (header,) = iter_headers(again.segments)
    assert header.segment == 6


def test_recorder_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "exists.jsonl"
    path.write_bytes(b"keep me\n")
    with pytest.raises(CaptureError, match="refusing to overwrite"):
        Recorder(path).write_frame(1, b"{}")
    assert path.read_bytes() == b"keep me\n"
    with Recorder(path, overwrite=True) as rec:
        rec.write_frame(1, b"{}")
    assert [r.frame for r in read_frames([path])] == [b"{}"]


def test_rotated_recording_replays_whole_and_segment_by_segment(recording: Recording) -> None:
    whole = replay(recording.segments)
    assert whole.ok and whole.checkpoints_applied == 0
    for key, (bids, asks, checksum) in recording.live.items():
        book = whole.books[key].book
        assert (book.bids(), book.asks(), book.checksum()) == (bids, asks, checksum)
    for segment in recording.segments[1:]:
        alone = replay([segment])
        assert alone.ok, segment
        assert alone.checkpoints_applied == len(recording.live)
        assert set(alone.books) == set(recording.live)
    last = replay(recording.segments[-1:])
    for key, (bids, asks, checksum) in recording.live.items():
        book = last.books[key].book
        assert (book.bids(), book.asks(), book.checksum()) == (bids, asks, checksum)


# -- headers -----------------------------------------------------------------------------------


def test_header_round_trip_and_extra_fields() -> None:
    header = CaptureHeader(1, "0.1.0", 2, 123, "ws://x/v2", ({"channel": "book"},), "a.0001")
    line = header.to_line()
    assert line.startswith(b"#bookengine {") and line.endswith(b"}\n")
    parsed = CaptureHeader.parse(line.rstrip(b"\n"))
    assert parsed == header
    extra = CaptureHeader.parse(b'#bookengine {"version":1,"segment":1,"started_ns":5,"note":"x"}')
    assert extra.extra == {"note": "x"} and extra.url is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"#bookengine {not json", "malformed JSON"),
        (b"#bookengine [1]", "expected a JSON object"),
        (b'#bookengine {"segment":1}', "'version' must be an int"),
        (b'#bookengine {"version":99}', "newer than this bookengine reads"),
        (b'#bookengine {"version":1,"segment":"2"}', "'segment' must be an int"),
        (b'#bookengine {"version":1,"subscriptions":{}}', "'subscriptions' must be a list"),
    ],
)
def test_bad_headers_are_clear_errors(tmp_path: Path, line: bytes, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(line + b"\n" + b'{"a":1}\n')
    with pytest.raises(CaptureError, match=re.escape(message)) as error:
        list(read_frames([path]))
    assert f"{path}:1" in str(error.value)


def test_a_torn_header_is_a_torn_line_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "torn.jsonl"
    path.write_bytes(b'#bookengine {"version":1,"segm')
    _, reader = read_all([path])
    assert [note.kind for note in reader.report.notes] == ["torn"]


# -- redaction ---------------------------------------------------------------------------------


def test_redact_request() -> None:
    text, found = redact_request(
        '{"method":"subscribe","params":{"channel":"level3","token":"T0K\\"x","depth":10},'
        '"req_id":1.50}'
    )
    assert text == (
        '{"method":"subscribe","params":{"channel":"level3","token":"<redacted>","depth":10},'
        '"req_id":1.50}'
    )
    assert found == ['T0K"x']
    text, _ = redact_request("not json SECRETVALUE", ["SECRETVALUE"])
    assert text == f"not json {REDACTED}"
    text, found = redact_request('{"otp": 123456, "secret": "s"}')
    assert text == '{"otp": "<redacted>", "secret": "<redacted>"}' and found == ["123456", "s"]


def test_level3_recording_never_holds_token_or_secret(recording: Recording) -> None:
    assert recording.tokens, "the level3 subscription was not recorded"
    secrets = [*recording.tokens, recording.api_secret, recording.api_key]
    sent = []
    for segment in recording.segments:
        text = decoded(segment)
        for secret in secrets:
            assert secret.encode() not in text, (segment, secret)
        sent += [r for r in CaptureReader([segment], kinds=("sent",))]
    level3 = [json.loads(r.frame) for r in sent if b'"level3"' in r.frame]
    assert level3 and all(m["params"]["token"] == REDACTED for m in level3)


def test_received_frames_are_scrubbed_of_known_secrets(tmp_path: Path) -> None:
    path = tmp_path / "scrub.jsonl"
    with Recorder(path, redact=["S3CRET", None]) as rec:
        rec.write_sent(1, '{"params":{"token":"TOKEN123"}}')
        rec.write_frame(2, b'{"echo":"TOKEN123","s":"S3CRET"}')
    text = path.read_bytes()
    assert b"TOKEN123" not in text and b"S3CRET" not in text


def test_recorder_lines_are_whole_even_for_odd_frames(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    with Recorder(path) as rec:
        rec.write_frame(1, '{"a":"x\ny"}')  # a raw newline never splits a line
    (record,) = read_frames([path])
    assert record.frame == b'{"a":"x\\ny"}'


def test_zstd_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.jsonl.zst"
    path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(CaptureError, match="needs the 'zstandard' package"):
        list(read_frames([path]))


def test_flush_interval_bounds_what_a_kill_can_lose(tmp_path: Path) -> None:
    path = tmp_path / "timed.jsonl.gz"
    rec = Recorder(path, flush_lines=10_000, flush_seconds=0.05)
    rec.write_frame(1, b'{"n":1}')
    time.sleep(0.06)
    rec.write_frame(2, b'{"n":2}')  # the interval passed: both lines are on disk now
    size = os.path.getsize(path)
    assert [r.frame for r in read_frames([path])] == [b'{"n":1}', b'{"n":2}']
    rec.close()
    assert os.path.getsize(path) > size


def test_lines_without_a_time_are_bare(tmp_path: Path) -> None:
    path = tmp_path / "bare.jsonl"
    with Recorder(path, max_seconds=1.0) as rec:
        rec.write_frame(-1, b'{"a":1}')
        rec.write_sent(-1, '{"method":"ping"}')
        rec.write_frame(5, b'{"b":2}')
    records, _ = read_all(rec.segments)
    assert [(r.kind, r.recv_ts_ns, r.frame) for r in records if r.kind != "header"] == [
        ("frame", -1, b'{"a":1}'),
        ("sent", -1, b'{"method":"ping"}'),
        ("frame", 5, b'{"b":2}'),
    ]
    assert replay([]).frames == 0
