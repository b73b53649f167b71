"""Bad input never corrupts a book: every bad frame gives a clear error naming what was wrong,
and the book stays exactly as it was. In a session, only the book concerned goes stale, the
others keep verifying, and a later snapshot recovers it."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from typing import Any

import pytest
from helpers_l2 import KrakenPublisher, fixed_text

from bookengine import Implementation
from bookengine.errors import PrecisionError, ProtocolError
from bookengine.kraken.events import BadFrame, BookChanged, BookInvalid, ResyncRequested
from bookengine.kraken.session import KrakenSession

SYMBOL = "BTC/USD"  # price precision 1, qty precision 8


def frame(bids: str = "[]", asks: str = "[]", extra: str = "", symbol: str = SYMBOL) -> str:
    return (
        f'{{"channel":"book","type":"update","data":[{{"symbol":"{symbol}","bids":{bids},'
        f'"asks":{asks}{extra}}}]}}'
    )


GOOD_UPDATE = frame(
    '[{"price":29430.2,"qty":7},{"price":29429,"qty":1}]', '[{"price":29431,"qty":2}]'
)

# (id, frame, error class, regex the message must match)
BAD_FRAMES: list[tuple[str, str | bytes, type[Exception], str]] = [
    ("malformed-json", GOOD_UPDATE.replace('"asks":', '"asks"'), ProtocolError, "JSON"),
    ("truncated", GOOD_UPDATE[: len(GOOD_UPDATE) // 2], ProtocolError, "JSON"),
    ("trailing-garbage", GOOD_UPDATE + "]", ProtocolError, "JSON"),
    ("missing-price", frame('[{"qty":1}]'), ProtocolError, r"bids\[0\].*price"),
    ("missing-qty", frame(asks='[{"price":29431}]'), ProtocolError, r"asks\[0\].*qty"),
    (
        "missing-symbol",
        '{"channel":"book","type":"update","data":[{"bids":[],"asks":[]}]}',
        ProtocolError,
        "symbol",
    ),
    ("missing-data", '{"channel":"book","type":"update"}', ProtocolError, "data"),
    ("price-object", frame('[{"price":{},"qty":1}]'), ProtocolError, r"bids\[0\]\.price"),
    ("price-array", frame('[{"price":[1],"qty":1}]'), ProtocolError, r"bids\[0\]\.price"),
    ("price-bool", frame('[{"price":true,"qty":1}]'), ProtocolError, r"bids\[0\]\.price"),
    ("price-null", frame('[{"price":null,"qty":1}]'), ProtocolError, r"bids\[0\]\.price"),
    ("qty-object", frame(asks='[{"price":29431,"qty":{"a":1}}]'), ProtocolError, r"asks\[0\]\.qty"),
    ("bids-string", frame('"29430.2"'), ProtocolError, "bids"),
    ("entry-not-object", frame("[[29430.2,1]]"), ProtocolError, r"bids\[0\]"),
    (
        "negative-qty",
        frame(asks='[{"price":29431,"qty":-1}]'),
        PrecisionError,
        r"asks\[0\]\.qty.*negative",
    ),
    (
        "negative-price",
        frame('[{"price":-29430.2,"qty":1}]'),
        PrecisionError,
        r"bids\[0\]\.price.*negative",
    ),
    (
        "too-many-decimals",
        frame('[{"price":29430.25,"qty":1}]'),
        PrecisionError,
        r"bids\[0\]\.price.*fractional",
    ),
    (
        "qty-too-precise",
        frame('[{"price":29430,"qty":0.000000001}]'),
        PrecisionError,
        r"bids\[0\]\.qty.*fractional",
    ),
    (
        "int64-overflow",
        frame(asks='[{"price":29431,"qty":92233720368.54775808}]'),
        PrecisionError,
        r"asks\[0\]\.qty.*overflow",
    ),
    (
        "price-not-a-number",
        frame('[{"price":"29430.2x","qty":1}]'),
        PrecisionError,
        r"bids\[0\]\.price.*not a decimal",
    ),
    (
        "bad-entry-after-good-ones",
        frame(
            '[{"price":29430.2,"qty":7},{"price":29429,"qty":1},{"price":29428,"qty":1},'
            '{"price":29427,"qty":0.123456789}]',
            '[{"price":29431,"qty":2}]',
        ),
        PrecisionError,
        r"bids\[3\]\.qty",
    ),
    (
        "bad-ask-after-good-bids",
        frame('[{"price":29430.2,"qty":7}]', '[{"price":29431,"qty":2},{"price":29432,"qty":-2}]'),
        PrecisionError,
        r"asks\[1\]\.qty",
    ),
    (
        "other-symbol",
        frame('[{"price":29430.2,"qty":7}]', symbol="ETH/USD"),
        ProtocolError,
        "ETH/USD",
    ),
    ("checksum-negative", frame(extra=',"checksum":-1'), ProtocolError, "checksum"),
    ("checksum-too-big", frame(extra=',"checksum":4294967296'), ProtocolError, "checksum"),
    ("checksum-float", frame(extra=',"checksum":1.5'), ProtocolError, "checksum"),
    ("checksum-text", frame(extra=',"checksum":"abc"'), ProtocolError, "checksum"),
    ("checksum-null", frame(extra=',"checksum":null'), ProtocolError, "checksum"),
    ("checksum-bool", frame(extra=',"checksum":true'), ProtocolError, "checksum"),
    (
        "not-utf8",
        frame('[{"price":29430.2,"qty":7}]').encode().replace(b"BTC", b"B\xffC"),
        ProtocolError,
        "(?i)utf-8|json",
    ),
]


def new_book(impl: Implementation) -> tuple[Any, Any]:
    book = impl.L2Book(SYMBOL, 10, 1, 8)
    scanner = impl.FrameScanner()
    scanner.scan(
        '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD",'
        '"bids":[{"price":29430.2,"qty":0.5},{"price":29430.1,"qty":1}],'
        '"asks":[{"price":29430.3,"qty":2},{"price":29435,"qty":0.001}]}]}'
    )
    book.apply_scanned(scanner)
    return book, scanner


def state(book: Any) -> tuple[Any, ...]:
    return (book.bids(), book.asks(), book.checksum(), book.bid_levels, book.ask_levels)


EXPECTED_STATE = (
    [(294302, 50_000_000), (294301, 100_000_000)],
    [(294303, 200_000_000), (294350, 100_000)],
)


def test_the_good_update_changes_the_book(impl: Implementation) -> None:
    # guards the bad cases below: the same entries, valid, do change the book
    book, scanner = new_book(impl)
    assert (book.bids(), book.asks()) == EXPECTED_STATE
    scanner.scan(GOOD_UPDATE)
    book.apply_scanned(scanner)
    assert book.bids() == [(294302, 700_000_000), (294301, 100_000_000), (294290, 100_000_000)]
    assert book.asks() == [(294303, 200_000_000), (294310, 200_000_000), (294350, 100_000)]


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [case[1:] for case in BAD_FRAMES],
    ids=[case[0] for case in BAD_FRAMES],
)
def test_bad_frame_leaves_the_book_unchanged(
    impl: Implementation, bad: str | bytes, error: type[Exception], message: str
) -> None:
    book, scanner = new_book(impl)
    before = state(book)
    with pytest.raises(error, match=message):
        scanner.scan(bad)
        book.apply_scanned(scanner)
    assert state(book) == before
    assert (book.bids(), book.asks()) == EXPECTED_STATE
    book._check()
    # and the book still takes the next good message
    scanner.scan(GOOD_UPDATE)
    book.apply_scanned(scanner)
    assert book.bids()[0] == (294302, 700_000_000)


@pytest.mark.parametrize(
    ("bids", "asks", "message"),
    [
        ([("29430.2", "7"), ("29429", "-1")], [], r"bids\[1\]\.qty"),
        ([("29430.2", "7")], [("29431", "2"), ("29432.55", "1")], r"asks\[1\]\.price"),
        ([("29430.2", "1e20")], [], r"bids\[0\]\.qty.*overflow"),
        ([("", "1")], [], r"bids\[0\]\.price"),
    ],
)
def test_python_api_is_atomic_too(
    impl: Implementation, bids: list[tuple[str, str]], asks: list[tuple[str, str]], message: str
) -> None:
    book, _ = new_book(impl)
    before = state(book)
    with pytest.raises(PrecisionError, match=message):
        book.apply_update(bids, asks)
    assert state(book) == before
    with pytest.raises(PrecisionError):
        book.apply_snapshot(bids, asks)
    assert state(book) == before


@pytest.mark.parametrize("value", [29430.2, True, None])
def test_python_api_refuses_floats(impl: Implementation, value: Any) -> None:
    book, _ = new_book(impl)
    before = state(book)
    with pytest.raises(TypeError):
        book.apply_update([(value, "1")], [])
    assert state(book) == before


def test_v1_update_before_any_snapshot(impl: Implementation) -> None:
    book = impl.L2Book("XBT/USD", 10)
    scanner = impl.FrameScanner()
    scanner.scan(
        '[336,{"b":[["27119.90000","13.54109952","1693415330.621700"]],"c":"1"},"book-10",'
        '"XBT/USD"]'
    )
    with pytest.raises(PrecisionError, match="snapshot"):
        book.apply_scanned(scanner)
    assert len(book) == 0 and book.price_precision is None


# -- the session ------------------------------------------------------------------------------

A, B = "BTC/USD", "ETH/USD"
KEY_A, KEY_B = "book:BTC/USD", "book:ETH/USD"


class Scenario:
    """Two symbols interleaved through one session, each from an independent publisher model."""

    def __init__(self, impl: Implementation, seed: int = 7) -> None:
        self.session = KrakenSession(
            precisions={A: (1, 8), B: (2, 8)}, depth=10, implementation_name=impl.name
        )
        self.publishers = {
            A: KrakenPublisher(random.Random(seed), 10, 1, 8, duplicate_rate=0.0),
            B: KrakenPublisher(random.Random(seed + 1), 10, 2, 8, duplicate_rate=0.0),
        }
        self.now = 0

    def receive(self, frame: str | bytes) -> list[Any]:
        self.now += 1_000_000
        return self.session.receive(frame, self.now)

    def send(self, symbol: str, snapshot: bool = False) -> list[Any]:
        publisher = self.publishers[symbol]
        message = publisher.snapshot() if snapshot else publisher.update()
        return self.receive(publisher.v2_frame(symbol, message))

    def stale(self, key: str) -> bool:
        return bool(self.session.books[key].stale)

    def book_state(self, key: str) -> tuple[Any, ...]:
        return state(self.session.book(key))

    def run(self, steps: int, stale_a: bool = False) -> None:
        """Alternate updates; B always verifies, A verifies unless it is stale (then skipped)."""
        for step in range(steps):
            symbol = A if step % 2 == 0 else B
            events = self.send(symbol)
            if symbol == A and stale_a:
                assert events == [], events
                continue
            assert [type(e) for e in events] == [BookChanged], events
            assert events[0].checksum_verified is True
            assert events[0].key == (KEY_A if symbol == A else KEY_B)
            events[0].book._check()

    def start(self) -> None:
        for symbol in (A, B):
            (event,) = self.send(symbol, snapshot=True)
            assert isinstance(event, BookChanged) and event.checksum_verified
        self.run(6)


def describe(event: Any) -> str:
    return str(getattr(event, "error", "")) + str(getattr(event, "reason", ""))


def bad_after_good(scenario: Scenario) -> str:
    # two good bids at the top of A's book (they would change it), then a bad one
    best, _ = scenario.session.book(KEY_A).best_bid()
    good = [(fixed_text(best, 1), "7"), (fixed_text(best - 1, 1), "1")]
    bids = ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in good)
    return frame(f'[{bids},{{"price":{fixed_text(best - 2, 1)},"qty":-1}}]')


# (id, bad frame for A, does it concern book A (A goes stale), regex for the event text)
SESSION_CASES: list[tuple[str, str | Callable[[Scenario], str], bool, str]] = [
    (
        "malformed-json",
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",',
        False,
        "JSON",
    ),
    ("truncated", GOOD_UPDATE[:60], False, "JSON"),
    ("missing-symbol", '{"channel":"book","type":"update","data":[{"bids":[]}]}', False, "symbol"),
    ("missing-data", '{"channel":"book","type":"update"}', False, "data"),
    ("nested-100", '{"channel":"book","x":' + "[" * 100 + "]" * 100 + "}", False, ""),
    ("missing-price", frame('[{"qty":1}]'), True, "price"),
    ("missing-qty", frame('[{"price":29430.2}]'), True, "qty"),
    ("price-object", frame('[{"price":{},"qty":1}]'), True, "price"),
    ("price-array", frame('[{"price":[],"qty":1}]'), True, "price"),
    ("price-bool", frame('[{"price":false,"qty":1}]'), True, "price"),
    ("price-null", frame('[{"price":null,"qty":1}]'), True, "price"),
    ("bids-string", frame('"x"'), True, "bids"),
    ("checksum-not-uint32", frame(extra=',"checksum":-5'), True, "checksum"),
    ("negative-qty", frame('[{"price":29430.2,"qty":-1}]'), True, "negative"),
    ("too-many-decimals", frame('[{"price":29430.25,"qty":1}]'), True, "fractional"),
    ("int64-overflow", frame('[{"price":29430.2,"qty":1e12}]'), True, "overflow"),
    ("bad-entry-after-good-ones", bad_after_good, True, r"bids\[2\]\.qty"),
]


@pytest.mark.parametrize(
    ("bad", "concerns_a", "message"),
    [case[1:] for case in SESSION_CASES],
    ids=[case[0] for case in SESSION_CASES],
)
def test_session_isolates_a_bad_frame(
    impl: Implementation, bad: str | Callable[[Scenario], str], concerns_a: bool, message: str
) -> None:
    scenario = Scenario(impl)
    scenario.start()
    if callable(bad):
        bad = bad(scenario)
    before_a, before_b = scenario.book_state(KEY_A), scenario.book_state(KEY_B)
    bad_frames = scenario.session.bad_frames
    events = scenario.receive(bad)  # never raises
    problems = [e for e in events if isinstance(e, BadFrame | BookInvalid)]
    assert len(problems) == 1, events
    assert any(re.search(message, describe(e)) for e in problems), events
    if isinstance(problems[0], BookInvalid):
        assert problems[0].key == KEY_A
    else:
        assert scenario.session.bad_frames == bad_frames + 1
    # the books are exactly as they were
    assert scenario.book_state(KEY_A) == before_a
    assert scenario.book_state(KEY_B) == before_b
    # only the book the frame was for goes stale
    assert scenario.stale(KEY_A) is concerns_a
    assert scenario.stale(KEY_B) is False
    scenario.run(8, stale_a=concerns_a)
    assert scenario.stale(KEY_B) is False
    # a fresh snapshot of A recovers it; both keep verifying
    (event,) = scenario.send(A, snapshot=True)
    assert isinstance(event, BookChanged) and event.is_snapshot and event.checksum_verified
    assert scenario.stale(KEY_A) is False
    scenario.run(6)


def test_session_unknown_symbol(impl: Implementation) -> None:
    scenario = Scenario(impl)
    scenario.start()
    before_a, before_b = scenario.book_state(KEY_A), scenario.book_state(KEY_B)
    snapshot = frame('[{"price":0.5,"qty":1}]', symbol="XRP/USD").replace("update", "snapshot")
    events = scenario.receive(snapshot)
    (invalid,) = [e for e in events if isinstance(e, BookInvalid)]
    assert invalid.key == "book:XRP/USD"
    assert "XRP/USD" in invalid.reason and "precision" in invalid.reason
    assert scenario.session.book("book:XRP/USD") is None
    assert scenario.book_state(KEY_A) == before_a and scenario.book_state(KEY_B) == before_b
    assert not scenario.stale(KEY_A) and not scenario.stale(KEY_B)
    # its updates are dropped quietly (one episode, one event) while A and B keep verifying
    assert scenario.receive(frame('[{"price":0.5,"qty":2}]', symbol="XRP/USD")) == []
    scenario.run(6)


def test_session_v1_update_before_snapshot_then_recovery(impl: Implementation) -> None:
    scenario = Scenario(impl)
    scenario.start()
    pair_publisher = KrakenPublisher(random.Random(3), 10, 5, 8, duplicate_rate=0.0)
    first = pair_publisher.snapshot()
    update = pair_publisher.update()
    events = scenario.receive(pair_publisher.v1_frame("XBT/USD", update))
    (invalid,) = [e for e in events if isinstance(e, BookInvalid)]
    assert invalid.key == "book-10:XBT/USD" and "snapshot" in invalid.reason
    assert scenario.stale("book-10:XBT/USD")
    scenario.run(4)
    snapshot = pair_publisher.snapshot()
    assert snapshot.window_bids != first.window_bids or snapshot.window_asks != first.window_asks
    (changed,) = scenario.receive(pair_publisher.v1_frame("XBT/USD", snapshot))
    assert isinstance(changed, BookChanged) and changed.key == "book-10:XBT/USD"
    assert not scenario.stale("book-10:XBT/USD")
    for _ in range(5):
        (changed,) = scenario.receive(pair_publisher.v1_frame("XBT/USD", pair_publisher.update()))
        assert isinstance(changed, BookChanged) and changed.checksum_verified
    scenario.run(4)


def test_session_resyncs_only_the_bad_book_once(impl: Implementation) -> None:
    scenario = Scenario(impl)
    session = scenario.session
    session.subscribe("book", [A, B], depth=10)
    session.requests_to_send(0)
    for symbol in (A, B):
        ack = {
            "method": "subscribe",
            "result": {"channel": "book", "depth": 10, "snapshot": True, "symbol": symbol},
            "success": True,
            "req_id": 1,
        }
        scenario.receive(json.dumps(ack))
    scenario.start()
    events = scenario.receive(frame('[{"price":29430.2,"qty":-1}]'))
    resyncs = [e for e in events if isinstance(e, ResyncRequested)]
    assert [(e.key, e.symbol) for e in resyncs] == [(KEY_A, A)]
    requests = [json.loads(r) for r in session.requests_to_send(scenario.now)]
    assert requests and all(r["params"]["symbol"] == [A] for r in requests)
    assert {r["method"] for r in requests} == {"unsubscribe", "subscribe"}
    # a second bad frame in the same episode asks for nothing more
    events = scenario.receive(frame('[{"price":29430.2,"qty":-1}]'))
    assert not [e for e in events if isinstance(e, ResyncRequested)]
    assert session.requests_to_send(scenario.now) == []


NASTY: dict[str, str | bytes] = {
    "bad-utf8-symbol": frame('[{"price":29430.2,"qty":1}]').encode().replace(b"BTC", b"B\xffC"),
    "5000-digit-price-text": frame('[{"price":"0.' + "0" * 5000 + '1","qty":1}]'),
    "5000-digit-price": frame('[{"price":' + "9" * 5000 + ',"qty":1}]'),
    "deep-nesting-in-book": frame(extra=',"deep":' + "[" * 100_000 + "]" * 100_000),
    "deep-nesting": "[" * 100_000,
    "nan": frame(extra=',"x":NaN'),
    "binary": b"\xff\xfe",
    "empty": b"",
}


@pytest.mark.parametrize("bad", list(NASTY.values()), ids=list(NASTY))
def test_session_never_raises(impl: Implementation, bad: str | bytes) -> None:
    scenario = Scenario(impl)
    scenario.start()
    before_b = scenario.book_state(KEY_B)
    events = scenario.receive(bad)
    assert [e for e in events if isinstance(e, BadFrame | BookInvalid)], events
    assert scenario.book_state(KEY_B) == before_b and not scenario.stale(KEY_B)
    scenario.run(2, stale_a=scenario.stale(KEY_A))


def test_escaped_symbol_is_the_same_book(impl: Implementation) -> None:
    # "BTC\/USD" is JSON for "BTC/USD": the frame belongs to book A and verifies
    scenario = Scenario(impl)
    scenario.start()
    publisher = scenario.publishers[A]
    text = publisher.v2_frame(A, publisher.update()).replace('"BTC/USD"', r'"BTC\/USD"')
    events = scenario.receive(text)
    assert [type(e) for e in events] == [BookChanged], events
    assert events[0].key == KEY_A and events[0].checksum_verified
    scenario.run(4)
