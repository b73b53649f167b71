"""L2 book rules one by one, on both implementations, with hand-computed expectations.

Every rule runs through both ways in: a scanned frame (``apply_scanned``) and the Python-object
API (``apply_snapshot`` / ``apply_update``). Checksums are compared with
``bookengine.checksum.book_checksum`` (the plain statement of Kraken's rule) and with
hand-written CRC32 inputs.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from bookengine import Implementation
from bookengine.checksum import book_checksum
from bookengine.errors import BookError, ChecksumError, PrecisionError, ProtocolError

Text = tuple[str, str]


@pytest.fixture(params=["scanned", "api"])
def path(request: pytest.FixtureRequest) -> str:
    """How messages reach the book: a scanned v2 frame, or the Python-object API."""
    return str(request.param)


def v2_frame(
    symbol: str, snapshot: bool, bids: Sequence[Text], asks: Sequence[Text], checksum: int | None
) -> str:
    def levels(side: Sequence[Text]) -> str:
        return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in side) + "]"

    body = f'"symbol":"{symbol}","bids":{levels(bids)},"asks":{levels(asks)}'
    if checksum is not None:
        body += f',"checksum":{checksum}'
    kind = "snapshot" if snapshot else "update"
    return f'{{"channel":"book","type":"{kind}","data":[{{{body}}}]}}'


class Driver:
    """Sends messages to one book by one path and checks invariants after each."""

    def __init__(self, impl: Implementation, path: str, book: Any) -> None:
        self.impl = impl
        self.path = path
        self.book = book
        self.scanner = impl.FrameScanner()

    def send(
        self,
        snapshot: bool,
        bids: Sequence[Text] = (),
        asks: Sequence[Text] = (),
        checksum: int | None = None,
    ) -> bool:
        if self.path == "scanned":
            self.scanner.scan(v2_frame(self.book.symbol, snapshot, bids, asks, checksum))
            verified = self.book.apply_scanned(self.scanner)
        elif snapshot:
            verified = self.book.apply_snapshot(list(bids), list(asks), checksum=checksum)
        else:
            verified = self.book.apply_update(list(bids), list(asks), checksum=checksum)
        self.book._check()
        return bool(verified)

    def snapshot(self, bids: Sequence[Text] = (), asks: Sequence[Text] = (), **kw: Any) -> bool:
        return self.send(True, bids, asks, **kw)

    def update(self, bids: Sequence[Text] = (), asks: Sequence[Text] = (), **kw: Any) -> bool:
        return self.send(False, bids, asks, **kw)


def driver(impl: Implementation, path: str, depth: int = 10, pp: int = 2, qp: int = 3) -> Driver:
    return Driver(impl, path, impl.L2Book("T/USD", depth, pp, qp))


# Prices at pp=2, quantities at qp=3 (mantissas in the expectations).
SNAPSHOT_BIDS = [("100.5", "1"), ("100.25", "2.5"), ("99", "0.125")]
SNAPSHOT_ASKS = [("101", "3"), ("101.75", "0.001"), ("102.1", "10")]
BIDS = [(10050, 1000), (10025, 2500), (9900, 125)]
ASKS = [(10100, 3000), (10175, 1), (10210, 10000)]


def test_snapshot_builds_the_book(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    assert d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS) is False  # no checksum: nothing verified
    assert d.book.bids() == BIDS
    assert d.book.asks() == ASKS


def test_snapshot_replaces_everything(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    d.snapshot([("50", "1")], [("60", "2")])
    assert d.book.bids() == [(5000, 1000)]
    assert d.book.asks() == [(6000, 2000)]
    d.snapshot([], [])
    assert d.book.bids() == [] and d.book.asks() == [] and len(d.book) == 0


def test_snapshot_levels_in_any_order_are_sorted(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    d.snapshot(SNAPSHOT_BIDS[::-1], [SNAPSHOT_ASKS[1], SNAPSHOT_ASKS[2], SNAPSHOT_ASKS[0]])
    assert d.book.bids() == BIDS and d.book.asks() == ASKS


def test_update_replaces_the_quantity_it_is_not_a_delta(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    d.update([("100.5", "7")], [("101.75", "0.002")])
    assert d.book.bids() == [(10050, 7000), (10025, 2500), (9900, 125)]
    assert d.book.asks() == [(10100, 3000), (10175, 2), (10210, 10000)]


def test_update_inserts_new_levels_in_price_order(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    d.update([("100.3", "1"), ("100.75", "2"), ("1", "3")], [("100.9", "4"), ("200", "5")])
    assert d.book.bids() == [(10075, 2000), (10050, 1000), (10030, 1000), (10025, 2500),
                             (9900, 125), (100, 3000)]  # fmt: skip
    assert d.book.asks() == [(10090, 4000), (10100, 3000), (10175, 1), (10210, 10000),
                             (20000, 5000)]  # fmt: skip


@pytest.mark.parametrize("zero", ["0", "0.0", "0.000", "0e5", "0.0E-3", '"0"', '"0.00000000"'])
def test_zero_quantity_deletes(impl: Implementation, path: str, zero: str) -> None:
    d = driver(impl, path)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    # the API path takes the text without JSON quotes
    qty = zero if path == "scanned" else zero.strip('"')
    d.update([("100.25", qty)], [("101", qty)])
    assert d.book.bids() == [BIDS[0], BIDS[2]]
    assert d.book.asks() == ASKS[1:]


def test_deleting_an_unknown_level_is_a_no_op(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    d.update([("100.4", "0"), ("1", "0")], [("101.01", "0")])
    assert d.book.bids() == BIDS and d.book.asks() == ASKS
    empty = driver(impl, path)
    empty.snapshot([], [])
    empty.update([("1", "0")], [("2", "0")])
    assert len(empty.book) == 0


def test_entries_apply_in_array_order_last_wins(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    d.update(
        [
            ("100.5", "5"),
            ("100.5", "6"),  # set then set: 6
            ("100.25", "1"),
            ("100.25", "0"),  # set then delete: gone
            ("99", "0"),
            ("99", "4"),  # delete then set: 4
            ("98", "1"),
            ("98", "0"),  # new level set then deleted: never there
            ("97", "0"),
            ("97", "2"),  # unknown level deleted then set: 2
        ],
        [("101", "0"), ("101", "0"), ("101.75", "9"), ("101.75", "0"), ("101.75", "8")],
    )
    assert d.book.bids() == [(10050, 6000), (9900, 4000), (9700, 2000)]
    assert d.book.asks() == [(10175, 8000), (10210, 10000)]


def test_bids_and_asks_are_independent(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    d.snapshot([("100", "1")], [("200", "1")])
    # a delete on one side never touches the other
    d.update([("200", "0")], [("100", "0")])
    assert d.book.bids() == [(10000, 1000)] and d.book.asks() == [(20000, 1000)]


def test_truncation_a_better_level_pushes_the_worst_out(impl: Implementation, path: str) -> None:
    d = driver(impl, path, depth=3)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    d.update([("100.6", "1")], [("100.9", "2")])
    assert d.book.bids() == [(10060, 1000), (10050, 1000), (10025, 2500)]
    assert d.book.asks() == [(10090, 2000), (10100, 3000), (10175, 1)]
    # a level worse than the window is dropped at once
    d.update([("1", "1")], [("999", "1")])
    assert d.book.bids() == [(10060, 1000), (10050, 1000), (10025, 2500)]
    assert d.book.asks() == [(10090, 2000), (10100, 3000), (10175, 1)]


def test_truncation_deleted_inner_level_then_backfill(impl: Implementation, path: str) -> None:
    d = driver(impl, path, depth=3)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    # Kraken deletes a level inside the window and sends the level entering from beyond
    d.update([("100.25", "0"), ("98.5", "4")], [("101.75", "0"), ("103", "0.5")])
    assert d.book.bids() == [(10050, 1000), (9900, 125), (9850, 4000)]
    assert d.book.asks() == [(10100, 3000), (10210, 10000), (10300, 500)]


def test_truncation_happens_after_the_whole_message(impl: Implementation, path: str) -> None:
    d = driver(impl, path, depth=2)
    d.snapshot([("10", "1"), ("9", "2")], [("20", "1"), ("21", "2")])
    # Inserted then deleted within one message: the worst level must survive, which it would
    # not if the book were truncated after each entry.
    d.update([("11", "5"), ("11", "0")], [("19", "5"), ("19", "0")])
    assert d.book.bids() == [(1000, 1000), (900, 2000)]
    assert d.book.asks() == [(2000, 1000), (2100, 2000)]
    d.update([("11", "5"), ("12", "6"), ("11", "0")], [("19", "5"), ("18", "6"), ("19", "0")])
    assert d.book.bids() == [(1200, 6000), (1000, 1000)]
    assert d.book.asks() == [(1800, 6000), (2000, 1000)]


def test_snapshot_deeper_than_depth_is_truncated(impl: Implementation, path: str) -> None:
    d = driver(impl, path, depth=2)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    assert d.book.bids() == BIDS[:2] and d.book.asks() == ASKS[:2]
    assert (d.book.bid_levels, d.book.ask_levels, len(d.book)) == (2, 2, 4)


# -- checksum -----------------------------------------------------------------------------------


def crc(text: str) -> int:
    return zlib.crc32(text.encode()) & 0xFFFFFFFF


def test_checksum_is_kraken_crc32_of_digits(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    # asks ascending then bids descending, price then qty, digits of the mantissa
    text = "10100" + "3000" + "10175" + "1" + "10210" + "10000"
    text += "10050" + "1000" + "10025" + "2500" + "9900" + "125"
    assert d.book.checksum() == crc(text) == book_checksum(ASKS, BIDS)
    assert d.update([("99", "0.125")], checksum=crc(text)) is True


def test_documented_btcusd_guide_checksum(impl: Implementation, path: str) -> None:
    bids = [("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000"),
            ("45281.0", "0.10000000"), ("45280.3", "1.54592586"), ("45279.0", "0.07990000"),
            ("45277.6", "0.03310103"), ("45277.5", "0.30000000"), ("45277.3", "1.54602737"),
            ("45276.6", "0.15445238")]  # fmt: skip
    asks = [("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109"),
            ("45289.6", "1.54560911"), ("45290.2", "0.15890660"), ("45291.8", "1.54553491"),
            ("45294.7", "0.04454749"), ("45296.1", "0.35380000"), ("45297.5", "0.09945542"),
            ("45299.5", "0.18772827")]  # fmt: skip
    book = impl.L2Book("BTC/USD", 10, 1, 8)
    d = Driver(impl, path, book)
    # the wire drops trailing zeros: send them stripped, the book pads at the precision
    stripped = [(p, q.rstrip("0")) for p, q in bids]
    assert d.snapshot(stripped, asks, checksum=3310070434) is True
    assert book.checksum() == 3310070434


@pytest.mark.parametrize("levels", [0, 1, 3])
def test_thin_books_checksum_over_what_exists(impl: Implementation, path: str, levels: int) -> None:
    bids = [(f"{100 - i}.5", f"{i + 1}") for i in range(levels)]
    asks = [(f"{101 + i}.25", f"0.{i + 1}") for i in range(levels)]
    d = driver(impl, path)
    expected_bids = [((100 - i) * 100 + 50, (i + 1) * 1000) for i in range(levels)]
    expected_asks = [((101 + i) * 100 + 25, (i + 1) * 100) for i in range(levels)]
    expected = book_checksum(expected_asks, expected_bids)
    assert d.snapshot(bids, asks, checksum=expected) is True
    assert d.book.bids() == expected_bids and d.book.asks() == expected_asks
    # one side thin, the other empty
    assert d.snapshot(bids, [], checksum=book_checksum([], expected_bids)) is True
    assert d.snapshot([], asks, checksum=book_checksum(expected_asks, [])) is True
    if levels == 0:
        assert d.book.checksum() == crc("") == 0


@pytest.mark.parametrize("depth", [25, 100])
def test_deep_books_checksum_only_the_top_10(impl: Implementation, path: str, depth: int) -> None:
    count = depth + 5
    bids = [(f"{5000 - i}", f"{i + 1}") for i in range(count)]
    asks = [(f"{5001 + i}", f"{i + 2}") for i in range(count)]
    d = driver(impl, path, depth=depth, pp=0, qp=0)
    top_bids = [(5000 - i, i + 1) for i in range(10)]
    top_asks = [(5001 + i, i + 2) for i in range(10)]
    expected = book_checksum(top_asks, top_bids)
    # pitfall 7: hashing every subscribed level gives another value
    all_levels = crc(
        "".join(f"{5001 + i}{i + 2}" for i in range(depth))
        + "".join(f"{5000 - i}{i + 1}" for i in range(depth))
    )
    assert expected != all_levels
    assert expected == crc(
        "".join(f"{5001 + i}{i + 2}" for i in range(10))
        + "".join(f"{5000 - i}{i + 1}" for i in range(10))
    )
    assert d.snapshot(bids, asks, checksum=expected) is True
    assert (d.book.bid_levels, d.book.ask_levels) == (depth, depth)
    assert d.book.bids()[-1] == (5000 - depth + 1, depth)
    # a change beyond the top 10 leaves the checksum as it was
    assert d.update([(f"{5000 - 15}", "77")], checksum=expected) is True
    assert d.book.qty_at("bid", 5000 - 15) == 77


def test_checksum_of_int64_sized_mantissas(impl: Implementation, path: str) -> None:
    big = (1 << 63) - 1
    bids = [(str(big - 1 - i), str(big - i)) for i in range(10)]
    asks = [(str(big - i), str(big)) for i in range(1)]
    d = driver(impl, path, pp=0, qp=0)
    expected = book_checksum([(big, big)], [(big - 1 - i, big - i) for i in range(10)])
    assert d.snapshot(bids, asks, checksum=expected) is True


def test_checksum_mismatch_raises_after_applying(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    right = book_checksum([(10100, 3000), (10175, 1), (10210, 10000)], [(10050, 5000), *BIDS[1:]])
    with pytest.raises(ChecksumError) as info:
        d.update([("100.5", "5")], checksum=right ^ 1)
    assert (info.value.expected, info.value.computed) == (right ^ 1, right)
    assert "T/USD" in str(info.value)
    # the documented contract: the message was applied, the caller resyncs
    assert d.book.bids()[0] == (10050, 5000)
    d.book._check()


def test_checksum_of_an_empty_book(impl: Implementation) -> None:
    assert impl.L2Book("T/USD", 10, 2, 3).checksum() == 0


# -- queries ------------------------------------------------------------------------------------


def test_queries(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    book = d.book
    assert (book.best_bid(), book.best_ask(), book.spread()) == (None, None, None)
    assert (len(book), book.bid_levels, book.ask_levels) == (0, 0, 0)
    assert book.is_crossed() is False
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    assert book.best_bid() == (10050, 1000)
    assert book.best_ask() == (10100, 3000)
    assert book.spread() == 50
    assert book.is_crossed() is False
    assert book.qty_at("bid", 10025) == 2500
    assert book.qty_at("ask", 10175) == 1
    assert book.qty_at("bid", 10100) == 0  # an ask price
    assert book.qty_at("ask", 1) == 0
    assert (len(book), book.bid_levels, book.ask_levels) == (6, 3, 3)
    assert book.bids(2) == BIDS[:2] and book.asks(0) == [] and book.asks(99) == ASKS
    with pytest.raises(ValueError):
        book.bids(-1)
    with pytest.raises(ValueError):
        book.qty_at("buy", 10025)
    d.snapshot([], SNAPSHOT_ASKS)
    assert book.best_bid() is None and book.spread() is None and book.best_ask() == ASKS[0]


def test_arrays_are_int64_copies(impl: Implementation, path: str) -> None:
    d = driver(impl, path)
    empty = d.book.bids_array()
    assert empty.dtype == np.int64 and empty.shape == (0, 2)
    d.snapshot(SNAPSHOT_BIDS, SNAPSHOT_ASKS)
    bids, asks = d.book.bids_array(), d.book.asks_array()
    assert bids.dtype == np.int64 and asks.dtype == np.int64
    assert bids.shape == (3, 2) and asks.shape == (3, 2)
    assert bids.tolist() == [list(level) for level in BIDS]
    assert asks.tolist() == [list(level) for level in ASKS]
    assert d.book.bids_array(2).shape == (2, 2) and d.book.asks_array(0).shape == (0, 2)
    bids[:] = 0
    asks[0, 1] = 42
    assert d.book.bids() == BIDS and d.book.asks() == ASKS
    # the array does not follow later messages either
    before = d.book.bids_array()
    d.update([("100.5", "0")])
    assert before.tolist() == [list(level) for level in BIDS]
    assert d.book.bids_array().shape == (2, 2)


def test_text_and_decimal_rendering(impl: Implementation, path: str) -> None:
    book = impl.L2Book("BTC/USD", 10, 1, 8)
    d = Driver(impl, path, book)
    d.snapshot([("29430.2", "0.001"), ("29430", "4.0")], [("29430.3", "8.25215653")])
    assert book.levels_text("bid") == [("29430.2", "0.00100000"), ("29430.0", "4.00000000")]
    assert book.levels_text("ask", 1) == [("29430.3", "8.25215653")]
    assert book.levels_text("bid", 0) == []
    assert book.price_text(294302) == "29430.2"
    assert book.price_text(5) == "0.5"
    assert book.qty_text(100000) == "0.00100000"
    assert book.qty_text(0) == "0.00000000"
    assert book.price_decimal(294302) == Decimal("29430.2")
    assert str(book.price_decimal(294300)) == "29430.0"
    assert book.qty_decimal(100000) == Decimal("0.001")
    with pytest.raises(ValueError):
        book.levels_text("both")
    whole = impl.L2Book("X/Y", 10, 0, 0)
    assert whole.price_text(42) == "42" and whole.qty_text(7) == "7"


# -- v1 scale inference -------------------------------------------------------------------------


def v1_snapshot(asks: list[list[str]], bids: list[list[str]], pair: str = "X/Y") -> str:
    return json.dumps([336, {"as": asks, "bs": bids}, "book-10", pair])


def test_v1_scale_comes_from_the_first_snapshot(impl: Implementation) -> None:
    book = impl.L2Book("XBT/USD", 10)
    assert (book.price_precision, book.qty_precision) == (None, None)
    scanner = impl.FrameScanner()
    scanner.scan(
        v1_snapshot(
            [["27918.70000", "0.50000000", "1.0"]],
            [["27918.60000", "1.25000000", "1.0"], ["27918.5", "2.5", "1.0"]],
            "XBT/USD",
        )
    )
    assert book.apply_scanned(scanner) is False
    book._check()
    assert (book.price_precision, book.qty_precision) == (5, 8)
    assert book.asks() == [(2791870000, 50000000)]
    assert book.bids() == [(2791860000, 125000000), (2791850000, 250000000)]
    # the v1 checksum hashes the wire strings, which these digits are
    text = "2791870000" + "50000000" + "2791860000" + "125000000" + "2791850000" + "250000000"
    assert book.checksum() == crc(text)
    update = '[336,{"b":[["27918.60000","0.00000000","2.0"]],"c":"%d"},"book-10","XBT/USD"]'
    scanner.scan(update % crc("2791870000" + "50000000" + "2791850000" + "250000000"))
    assert book.apply_scanned(scanner) is True
    # more decimals than the wire scale is an error
    scanner.scan('[336,{"b":[["27918.600001","1.0","2.0"]]},"book-10","XBT/USD"]')
    with pytest.raises(PrecisionError):
        book.apply_scanned(scanner)


def test_v1_scale_is_the_largest_written_in_the_snapshot(impl: Implementation) -> None:
    book = impl.L2Book("X/Y", 10)
    scanner = impl.FrameScanner()
    scanner.scan(v1_snapshot([["2", "1", "1.0"], ["2.125", "3.5", "1.0"]], [["1.5", "0.25", "1"]]))
    book.apply_scanned(scanner)
    assert (book.price_precision, book.qty_precision) == (3, 2)
    assert book.asks() == [(2000, 100), (2125, 350)] and book.bids() == [(1500, 25)]


def test_v1_precision_is_fixed_by_the_first_snapshot_only(impl: Implementation) -> None:
    book = impl.L2Book("X/Y", 10)
    scanner = impl.FrameScanner()
    scanner.scan(v1_snapshot([["2.00", "1.0", "1"]], []))
    book.apply_scanned(scanner)
    scanner.scan(v1_snapshot([["2.0", "1", "1"]], []))  # fewer decimals: same scale
    book.apply_scanned(scanner)
    assert (book.price_precision, book.qty_precision) == (2, 1)
    assert book.asks() == [(200, 10)]


def test_v1_update_before_any_snapshot_is_refused(impl: Implementation) -> None:
    book = impl.L2Book("X/Y", 10)
    scanner = impl.FrameScanner()
    scanner.scan('[336,{"a":[["2.00","1.0","1"]],"c":"1"},"book-10","X/Y"]')
    with pytest.raises(PrecisionError, match="snapshot"):
        book.apply_scanned(scanner)
    assert book.price_precision is None and len(book) == 0
    with pytest.raises(PrecisionError):
        book.apply_update([("2.00", "1.0")], [])


def test_v1_precision_through_the_python_api(impl: Implementation) -> None:
    book = impl.L2Book("X/Y", 10)
    book.apply_snapshot([("1.50", "0.001")], [("2.5", "1")])
    assert (book.price_precision, book.qty_precision) == (2, 3)
    assert book.bids() == [(150, 1)] and book.asks() == [(250, 1000)]


def test_v1_refused_first_snapshot_fixes_no_precision(impl: Implementation) -> None:
    book = impl.L2Book("X/Y", 10)
    scanner = impl.FrameScanner()
    scanner.scan(v1_snapshot([["2.00", "-1.0", "1"]], []))
    with pytest.raises(PrecisionError):
        book.apply_scanned(scanner)
    assert (book.price_precision, book.qty_precision) == (None, None)
    scanner.scan(v1_snapshot([["2.000", "1.0", "1"]], []))
    book.apply_scanned(scanner)
    assert (book.price_precision, book.qty_precision) == (3, 1)


def test_v1_scale_beyond_18_digits_is_refused(impl: Implementation) -> None:
    book = impl.L2Book("X/Y", 10)
    scanner = impl.FrameScanner()
    scanner.scan(v1_snapshot([["0.0000000000000000001", "1.0", "1"]], []))
    with pytest.raises(PrecisionError):
        book.apply_scanned(scanner)
    assert book.price_precision is None and len(book) == 0


def test_v1_empty_first_snapshot_does_not_fix_the_scale(impl: Implementation) -> None:
    # An empty book shows no decimals; fixing scale 0 from it would break every later checksum
    # of this book (the v1 checksum hashes the 5-decimal wire strings).
    book = impl.L2Book("X/Y", 10)
    scanner = impl.FrameScanner()
    scanner.scan(v1_snapshot([], []))
    book.apply_scanned(scanner)
    scanner.scan(v1_snapshot([["27918.70000", "0.50000000", "1"]], []))
    book.apply_scanned(scanner)
    assert (book.price_precision, book.qty_precision) == (5, 8)
    assert book.checksum() == crc("2791870000" + "50000000")


# -- construction and validation ----------------------------------------------------------------


@pytest.mark.parametrize("depth", [0, -1, True, "10", 1.5, None])
def test_bad_depth(impl: Implementation, depth: Any) -> None:
    with pytest.raises(BookError, match="depth"):
        impl.L2Book("X/Y", depth, 1, 8)


@pytest.mark.parametrize(
    ("pp", "qp"),
    [(1, None), (None, 8), (19, 8), (1, 19), (-1, 8), (1.0, 8), (True, 8), ("1", 8)],
)
def test_bad_precision(impl: Implementation, pp: Any, qp: Any) -> None:
    with pytest.raises(PrecisionError):
        impl.L2Book("X/Y", 10, pp, qp)


def test_good_construction(impl: Implementation) -> None:
    book = impl.L2Book("X/Y", 7, 0, 18)
    assert (book.symbol, book.depth, book.price_precision, book.qty_precision) == (
        "X/Y",
        7,
        0,
        18,
    )
    assert book.bids() == [] and book.asks() == []
    book._check()


def test_frames_of_another_symbol_or_channel_are_refused(impl: Implementation) -> None:
    book = impl.L2Book("BTC/USD", 10, 1, 8)
    scanner = impl.FrameScanner()
    scanner.scan(v2_frame("ETH/USD", True, [("1", "1")], [], None))
    with pytest.raises(ProtocolError, match="ETH/USD"):
        book.apply_scanned(scanner)
    scanner.scan('{"channel":"heartbeat"}')
    with pytest.raises(ProtocolError):
        book.apply_scanned(scanner)
    assert len(book) == 0


def test_check_holds_through_a_busy_sequence(impl: Implementation, path: str) -> None:
    # many inserts and deletes at both ends of a small-depth book
    d = driver(impl, path, depth=5, pp=0, qp=0)
    d.snapshot([(str(100 - i), "1") for i in range(5)], [(str(101 + i), "1") for i in range(5)])
    expected_bids = {100 - i: 1 for i in range(5)}
    for step in range(60):
        price = 90 + (step * 7) % 11
        qty = 0 if step % 3 == 0 else step
        d.update([(str(price), str(qty))])
        if qty:
            expected_bids[price] = qty
        else:
            expected_bids.pop(price, None)
        kept = sorted(expected_bids, reverse=True)[:5]
        expected_bids = {p: expected_bids[p] for p in kept}
        assert d.book.bids() == [(p, expected_bids[p]) for p in kept]
