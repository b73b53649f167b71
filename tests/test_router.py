"""The compiled replay fast path changes nothing but speed.

``KrakenSession.receive_buffer`` (router for healthy v2 books, ``receive`` for the rest) must
leave exactly the books, counters and events that ``receive`` line by line leaves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bookengine.instruments import Instruments
from bookengine.kraken.events import BookChanged, Event
from bookengine.kraken.session import KrakenSession

DATA = Path(__file__).parent / "data"
INSTRUMENTS = Instruments.from_file(DATA / "v2-instrument-snapshot.jsonl")


def _lines() -> list[bytes]:
    v2 = (DATA / "v2-book-btcusd-depth10.jsonl").read_bytes().splitlines()
    v1 = (DATA / "v1-book-xbtusd-depth10.jsonl").read_bytes().splitlines()
    lines: list[bytes] = []
    for index, line in enumerate(v2):
        if index % 3 == 0:
            line = b"%d\t%s" % (1_690_000_000_000_000_000 + index, line)  # integer ns
        elif index % 7 == 0:
            pass  # a bare frame: it takes the receive time of the line before it
        lines.append(line)
        if index < len(v1):
            lines.append(v1[index])  # v1 frames interleaved: session path
    # Trouble in the middle: a corrupted checksum, garbage, a blank line, a heartbeat, and
    # a crossed book; later a fresh snapshot brings BTC/USD back.
    bad_checksum = json.loads(v2[100])
    bad_checksum["data"][0]["checksum"] = 1
    lines.insert(150, json.dumps(bad_checksum).encode())
    lines.insert(160, b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[')
    lines.insert(170, b"")
    lines.insert(180, b'{"channel":"heartbeat"}')
    lines.append(v2[0])  # snapshot: BTC/USD healthy again
    lines.append(_crossed_update(v2[0]))  # verifies, but leaves the book crossed
    lines.append(v2[0])
    negative = json.loads(v2[1])
    negative["data"][0]["asks"][0]["qty"] = -1  # refused before any change
    lines.append(json.dumps(negative).encode())
    lines.append(v2[0])
    lines.extend(v2[1:50])
    return lines


def _crossed_update(snapshot: bytes) -> bytes:
    """A bid above the best ask, with the checksum the crossed book really has (reference)."""
    from bookengine import implementation

    reference = implementation("python")
    scanner = reference.FrameScanner()
    scanner.scan(snapshot)
    book = reference.L2Book("BTC/USD", 10, 1, 8)
    book.apply_scanned(scanner)
    book.apply_update([("99999.0", "1")], [])
    update = {
        "channel": "book",
        "type": "update",
        "data": [
            {
                "symbol": "BTC/USD",
                "bids": [{"price": 99999.0, "qty": 1}],
                "asks": [],
                "checksum": book.checksum(),
            }
        ],
    }
    return json.dumps(update).encode()


def _state(session: KrakenSession) -> dict[str, Any]:
    out = {}
    for key, state in session.books.items():
        book = state.book
        out[key] = (
            state.summary(),
            state.invalid_messages,
            state.skipped_while_stale,
            state.resyncs,
            state.stale,
            None if book is None else (book.bids(), book.asks(), book.checksum()),
        )
    return {"books": out, "frames": session.frames, "bad": session.bad_frames}


def test_buffer_path_equals_line_by_line() -> None:
    lines = _lines()
    slow = KrakenSession(instruments=INSTRUMENTS, implementation_name="cython")
    slow_events: list[tuple[int, str]] = []
    recv_ts_ns = -1
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if b"\t" in line:
            from bookengine.capture import parse_recv_ts

            head, line = line.split(b"\t", 1)
            recv_ts_ns = parse_recv_ts(head)
        for event in slow.receive(line, recv_ts_ns):
            if not isinstance(event, BookChanged):
                slow_events.append((number, type(event).__name__))

    fast = KrakenSession(instruments=INSTRUMENTS, implementation_name="cython")
    fast_events: list[tuple[int, str]] = []

    def collect(number: int, events: list[Event]) -> None:
        fast_events.extend(
            (number, type(e).__name__) for e in events if not isinstance(e, BookChanged)
        )

    assert fast.receive_buffer(b"\n".join(lines) + b"\n", on_events=collect) == len(lines)
    assert _state(fast) == _state(slow)
    assert fast_events == slow_events
    # The stream really exercised the failure paths.
    kinds = {name for _, name in slow_events}
    assert {"ChecksumMismatch", "BadFrame", "BookInvalid"} <= kinds
    assert fast.books["book:BTC/USD"].checksum_mismatches == 1
    assert fast.fast_path_frames > 100  # the 19-digit integer times took the compiled path


@pytest.mark.parametrize("name", ["v2-book-btcusd-depth10.jsonl", "v1-book-xbtusd-depth10.jsonl"])
def test_fixture_captures_verify_through_the_buffer_path(name: str) -> None:
    session = KrakenSession(instruments=INSTRUMENTS, implementation_name="cython")
    session.receive_buffer((DATA / name).read_bytes())
    (state,) = session.books.values()
    assert state.checksums_checked in (510, 979)
    assert state.checksum_mismatches == 0


@pytest.mark.parametrize(
    "stamp",
    [
        b"1690000000000000000",  # 19 digits: every time since 2001
        b"7",  # one digit is a time too
        b"169000000000000000x",  # a letter in the time
        b"9223372036854775807",  # int64's largest
        b"9223372036854775808",  # beyond int64: not a time; the capture layer reports the line
        b"12345678901234567890",
        b"1690000000.5",  # seconds: the capture layer's time forms
    ],
)
def test_receive_times_the_line_reader_reads_itself(stamp: bytes, tmp_path: Path) -> None:
    from bookengine.capture import split_recv_ts
    from bookengine.replay import Replayer

    lines = [
        b"%s\t%s" % (stamp, line)
        for line in (DATA / "v2-book-btcusd-depth10.jsonl").read_bytes().splitlines()[:20]
    ]
    slow = KrakenSession(instruments=INSTRUMENTS, implementation_name="cython")
    for line in lines:
        slow.receive(*reversed(split_recv_ts(line)))
    integer_ns = stamp.isdigit() and int(stamp) < 2**63
    session = KrakenSession(instruments=INSTRUMENTS, implementation_name="cython")
    session.receive_buffer(b"\n".join(lines) + b"\n")
    assert (session.fast_path_frames > 0) == integer_ns
    if integer_ns:
        assert _state(session) == _state(slow)
        assert session.last_recv_ts_ns == slow.last_recv_ts_ns
    else:
        assert session.bad_frames == len(lines)  # not received frames to the session alone
    # Through the capture layer every form is read, and gives the frame-by-frame books.
    path = tmp_path / "capture.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    replayer = Replayer([path], instruments=INSTRUMENTS, implementation_name="cython")
    result = replayer.run()
    assert _state(replayer.session)["books"] == _state(slow)["books"]
    assert result.bad_frames == slow.bad_frames


# -- level3 books ------------------------------------------------------------------------------


def _level3_lines() -> list[bytes]:
    """A level3 stream with a bad checksum, an unknown order, a crossing and a resnapshot."""
    import random

    from tests.l3.publisher import ASK, BID, Publisher

    publisher = Publisher(symbol="BTC/USD", depth=10, seed=9, odd_ids=0.05)
    rng = random.Random(9)
    ids: list[str] = []

    def add() -> None:
        side = rng.choice((BID, ASK))
        ids.append(publisher.add(side, publisher.price_near(side, rng.randrange(14)), 10**6))

    for _ in range(80):
        add()
    frames = [publisher.snapshot()]
    for index in range(300):
        roll = rng.random()
        if roll < 0.5 or len(ids) < 20:
            add()
        elif roll < 0.75:
            publisher.modify(rng.choice(ids), rng.randint(1, 10**7))
        else:
            publisher.delete(ids.pop(rng.randrange(len(ids))))
        frames.append(publisher.flush())
        if index == 100:
            frames.append(
                b'{"channel":"level3","type":"update","data":[{"symbol":"BTC/USD",'
                b'"checksum":1,"bids":[],"asks":[]}]}'
            )  # nothing changes, but the checksum is wrong
            frames.append(publisher.snapshot())
        if index == 150:
            frames.append(
                b'{"channel":"level3","type":"update","data":[{"symbol":"BTC/USD","bids":[{"event":'
                b'"delete","order_id":"ONOSUCH-ORDER-XXXXXX","limit_price":1,"order_qty":1}],'
                b'"asks":[]}]}'
            )  # an unknown order: refused, then stale until the snapshot
            frames.append(publisher.snapshot())
    return [b"%d\t%s" % (1_700_000_000_000_000_000 + n, f) for n, f in enumerate(frames)]


def test_level3_buffer_path_equals_line_by_line() -> None:
    from bookengine.capture import split_recv_ts

    lines = _level3_lines()
    precisions = {"BTC/USD": (1, 8)}
    slow = KrakenSession(precisions=precisions, depth=10, implementation_name="cython")
    slow_events = []
    for number, line in enumerate(lines, 1):
        for event in slow.receive(*reversed(split_recv_ts(line))):
            if not isinstance(event, BookChanged):
                slow_events.append((number, type(event).__name__))
    fast = KrakenSession(precisions=precisions, depth=10, implementation_name="cython")
    fast_events: list[tuple[int, str]] = []

    def collect(number: int, events: list[Event]) -> None:
        fast_events.extend(
            (number, type(e).__name__) for e in events if not isinstance(e, BookChanged)
        )

    fast.receive_buffer(b"\n".join(lines) + b"\n", on_events=collect)
    assert _state(fast) == _state(slow)
    assert fast_events == slow_events
    assert {"ChecksumMismatch", "BookInvalid"} <= {name for _, name in slow_events}
    assert fast.fast_path_frames > 250
    fast_book, slow_book = fast.book("level3:BTC/USD"), slow.book("level3:BTC/USD")
    for name, column in slow_book.orders_arrays(order_ids=True).items():
        assert column.tolist() == fast_book.orders_arrays(order_ids=True)[name].tolist(), name


def test_receive_time_prefixes_of_every_length_and_flaw() -> None:
    # The reader takes the first sixteen digits eight at a time: every length from 1 to 21
    # digits, and a non-digit at every place, must read as a plain digit loop reads them.
    import random

    rng = random.Random(7)
    snapshot, update = (DATA / "v2-book-btcusd-depth10.jsonl").read_bytes().splitlines()[:2]
    for length in range(1, 22):
        for flaw in [-1, *range(length)]:
            digits = bytearray(rng.choice(b"0123456789") for _ in range(length))
            if flaw >= 0:
                digits[flaw] = rng.choice(b"/:a.- \x00\xff")
            stamp = bytes(digits)
            session = KrakenSession(instruments=INSTRUMENTS, implementation_name="cython")
            session.receive_buffer(b"%s\n%s\t%s\n" % (snapshot, stamp, update))
            is_time = flaw < 0 and length <= 19 and int(stamp) < 2**63
            assert (session.fast_path_frames == 1) == is_time, stamp  # the update's line
            if is_time:
                assert session.last_recv_ts_ns == int(stamp), stamp
