"""Differential property tests: an independent model of a Kraken publisher (tests/helpers_l2.py)
renders real v2 and v1 frames; both implementations apply every frame and must agree with each
other and with the model's window after every message."""

from __future__ import annotations

import random
from typing import Any

from helpers_l2 import NUMBER_STYLES, KrakenPublisher, Message, fixed_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookengine import implementation

IMPLS = [implementation("cython"), implementation("python")]

SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

depths = st.sampled_from([10, 10, 25, 25, 100, 1000])
caps = st.sampled_from([None, None, None, 1, 3, 9, 12])


class Subscriber:
    """One implementation's scanner and book, fed frames."""

    def __init__(self, impl: Any, book: Any) -> None:
        self.scanner = impl.FrameScanner()
        self.book = book

    def apply(self, frame: str | bytes) -> bool:
        self.scanner.scan(frame)
        return bool(self.book.apply_scanned(self.scanner))


def assert_book_is_window(book: Any, message: Message) -> None:
    book._check()
    assert book.bids() == message.window_bids
    assert book.asks() == message.window_asks
    assert book.checksum() == message.checksum
    assert book.bid_levels == len(message.window_bids)
    assert book.ask_levels == len(message.window_asks)
    assert book.best_bid() == (message.window_bids[0] if message.window_bids else None)
    assert book.best_ask() == (message.window_asks[0] if message.window_asks else None)


def assert_same_books(books: list[Any]) -> None:
    first = books[0]
    for other in books[1:]:
        assert other.bids() == first.bids()
        assert other.asks() == first.asks()
        assert other.checksum() == first.checksum()
        assert other.bids_array().tolist() == first.bids_array().tolist()


def messages(publisher: KrakenPublisher, steps: int, resnapshot_rate: float) -> list[Message]:
    out = [publisher.snapshot()]
    for _ in range(steps):
        if publisher.rng.random() < resnapshot_rate:
            out.append(publisher.snapshot())  # a resync: the book starts over
        else:
            out.append(publisher.update())
    return out


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    depth=depths,
    cap=st.one_of(caps, st.just(0)),
    pp=st.integers(0, 8),
    qp=st.integers(0, 10),
    steps=st.integers(1, 40),
    styles=st.lists(st.sampled_from(NUMBER_STYLES), min_size=1, max_size=5, unique=True),
    string_rate=st.sampled_from([0.0, 0.3, 1.0]),
    quote_checksum=st.booleans(),
)
def test_v2_streams(
    seed: int,
    depth: int,
    cap: int | None,
    pp: int,
    qp: int,
    steps: int,
    styles: list[str],
    string_rate: float,
    quote_checksum: bool,
) -> None:
    rng = random.Random(seed)
    publisher = KrakenPublisher(rng, depth, pp, qp, max_levels=cap)
    symbol = "SYM/USD"
    subscribers = [Subscriber(impl, impl.L2Book(symbol, depth, pp, qp)) for impl in IMPLS]
    api_books = [impl.L2Book(symbol, depth, pp, qp) for impl in IMPLS]
    for message in messages(publisher, steps, 0.05):
        frame = publisher.v2_frame(
            symbol,
            message,
            styles=styles,
            string_rate=string_rate,
            quote_checksum=quote_checksum,
        )
        for subscriber in subscribers:
            # every v2 message carries a checksum: each one must verify
            assert subscriber.apply(frame) is True
            assert_book_is_window(subscriber.book, message)
        # the same levels through the Python-object API, as padded decimal text
        bids = [(fixed_text(p, pp), fixed_text(q, qp)) for p, q in message.plain("bid")]
        asks = [(fixed_text(p, pp), fixed_text(q, qp)) for p, q in message.plain("ask")]
        for book in api_books:
            apply = book.apply_snapshot if message.is_snapshot else book.apply_update
            assert apply(bids, asks, checksum=message.checksum) is True
            assert_book_is_window(book, message)
        assert_same_books([s.book for s in subscribers] + api_books)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    depth=depths,
    cap=caps,
    pp=st.integers(0, 8),
    qp=st.integers(0, 10),
    steps=st.integers(1, 40),
)
def test_v1_streams(seed: int, depth: int, cap: int | None, pp: int, qp: int, steps: int) -> None:
    rng = random.Random(seed)
    publisher = KrakenPublisher(rng, depth, pp, qp, max_levels=cap)
    pair = "XBT/USD"
    # v1: no precision given; the book takes the wire decimals of the first snapshot
    subscribers = [Subscriber(impl, impl.L2Book(pair, depth)) for impl in IMPLS]
    for message in messages(publisher, steps, 0.05):
        frame = publisher.v1_frame(pair, message)
        for subscriber in subscribers:
            # v1 snapshots carry no checksum; updates carry "c"
            assert subscriber.apply(frame) is (not message.is_snapshot)
            assert (subscriber.book.price_precision, subscriber.book.qty_precision) == (pp, qp)
            assert_book_is_window(subscriber.book, message)
        assert_same_books([s.book for s in subscribers])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), depth=st.sampled_from([10, 25]))
def test_two_symbols_interleaved_share_nothing(seed: int, depth: int) -> None:
    """One scanner per implementation serves two books, frames interleaved at random."""
    rng = random.Random(seed)
    publishers = {
        "AAA/USD": KrakenPublisher(random.Random(rng.random()), depth, 1, 8),
        "BBB/EUR": KrakenPublisher(random.Random(rng.random()), depth, 5, 2, max_levels=4),
    }
    books = {
        impl.name: (
            impl.FrameScanner(),
            {symbol: impl.L2Book(symbol, depth, p.pp, p.qp) for symbol, p in publishers.items()},
        )
        for impl in IMPLS
    }
    pending = {symbol: [p.snapshot()] for symbol, p in publishers.items()}
    for _ in range(60):
        symbol = rng.choice(sorted(publishers))
        publisher = publishers[symbol]
        message = pending[symbol].pop() if pending[symbol] else publisher.update()
        frame = publisher.v2_frame(symbol, message)
        for scanner, by_symbol in books.values():
            scanner.scan(frame)
            assert scanner.symbol == symbol
            assert by_symbol[symbol].apply_scanned(scanner) is True
            assert_book_is_window(by_symbol[symbol], message)
    for symbol in publishers:
        assert_same_books([by_symbol[symbol] for _, by_symbol in books.values()])
