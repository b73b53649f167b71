"""Bad input: every refused message names its entry, leaves the book exactly as it was and
sets ``needs_resync``; both implementations refuse it with the words written in MESSAGES."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bookengine import (
    ChecksumError,
    CrossedBookError,
    Implementation,
    OrderError,
    PrecisionError,
    ProtocolError,
)

from .helpers import SYMBOL, apply_frame, book_state, frame, o

BASE_BIDS = [
    o("A1", "100.0", "1", ts="2024-01-08T12:26:39.5Z"),
    o("A2", "100.0", "2"),
    o("A3", "100.0", "3"),
    o("B1", "99.9", "0.5"),
]
BASE_ASKS = [o("C1", "100.1", "1.5"), o("C2", "100.1", "0.25"), o("D1", "100.5", "4")]

# name -> (type, bids, asks, error class, fragments of the message)
CASES: dict[str, tuple[str, list[dict[str, Any]], list[dict[str, Any]], type, list[str]]] = {
    "unknown modify": (
        "update",
        [],
        [o("X9", "100.1", "1", "modify")],
        OrderError,
        ["asks[0] order X9", "modify of an order that is not in the book"],
    ),
    "unknown delete after a valid one": (
        "update",
        [o("A1", "100.0", "1", "delete"), o("X9", "100.0", "1", "delete")],
        [],
        OrderError,
        ["bids[1] order X9", "delete of an order"],
    ),
    "duplicate add": (
        "update",
        [o("A2", "100.0", "1", "add")],
        [],
        OrderError,
        ["bids[0] order A2", "duplicate add", "bid side"],
    ),
    "duplicate add on the other side": (
        "update",
        [],
        [o("A2", "100.2", "1", "add")],
        OrderError,
        ["asks[0] order A2", "duplicate add", "bid side"],
    ),
    "add of quantity 0": (
        "update",
        [o("N1", "99.0", "0", "add")],
        [],
        OrderError,
        ["bids[0] order N1", "order_qty 0"],
    ),
    "modify on the wrong side": (
        "update",
        [o("C1", "100.1", "1", "modify")],
        [],
        OrderError,
        ["bids[0] order C1", "wrong side", "ask side"],
    ),
    "delete on the wrong side": (
        "update",
        [],
        [o("B1", "99.9", "1", "delete")],
        OrderError,
        ["asks[0] order B1", "wrong side"],
    ),
    "crossing add": (
        "update",
        [o("N1", "100.1", "1", "add")],
        [],
        CrossedBookError,
        ["bids[0] order N1", "best bid 100.1 >= best ask 100.1"],
    ),
    "crossing move": (
        "update",
        [],
        [o("D1", "99.9", "4", "modify")],
        CrossedBookError,
        ["asks[0] order D1", "best bid 100.0 >= best ask 99.9"],
    ),
    "crossing after the asks it would meet are gone": (
        "update",
        [o("N1", "100.6", "1", "add")],
        [o("C1", "100.1", "1.5", "delete"), o("C2", "100.1", "0.25", "delete")],
        CrossedBookError,
        ["bids[0] order N1", "best bid 100.6 >= best ask 100.5"],
    ),
    "crossed snapshot": (
        "snapshot",
        [o("S1", "101.0", "1")],
        [o("S2", "100.0", "1"), o("S3", "102.0", "1")],
        CrossedBookError,
        ["asks[0] order S2", "best bid 101.0 >= best ask 100.0"],
    ),
    "duplicate in a snapshot": (
        "snapshot",
        [o("S1", "99.0", "1"), o("S1", "98.0", "1")],
        [],
        OrderError,
        ["bids[1] order S1", "duplicate add"],
    ),
    "quantity 0 in a snapshot": (
        "snapshot",
        [o("S1", "99.0", "0")],
        [],
        OrderError,
        ["bids[0] order S1", "order_qty 0"],
    ),
    "snapshot entry that is not an add": (
        "snapshot",
        [o("S1", "99.0", "1", "modify")],
        [],
        ProtocolError,
        ["bids[0] order S1", "snapshot"],
    ),
    "price with too many decimals": (
        "update",
        [o("N1", "99.05", "1", "add")],
        [],
        PrecisionError,
        ["bids[0] order N1: limit_price", "99.05"],
    ),
    "negative quantity": (
        "update",
        [o("A1", "100.0", "-1", "modify")],
        [],
        PrecisionError,
        ["bids[0] order A1: order_qty", "negative"],
    ),
    "quantity beyond int64": (
        "update",
        [o("N1", "99.0", "100000000000", "add")],
        [],
        PrecisionError,
        ["bids[0] order N1: order_qty", "overflows"],
    ),
    "price that is not a number": (
        "update",
        [],
        [o("N1", "abc", "1", "add")],
        PrecisionError,
        ["asks[0] order N1: limit_price"],
    ),
    "level total beyond int64": (
        "update",
        [o("N1", "99.0", "90000000000", "add"), o("N2", "99.0", "90000000000", "add")],
        [],
        PrecisionError,
        ["bids[1] order N2", "total quantity at 99.0 would overflow int64"],
    ),
    "level total beyond int64 by a modify": (
        "update",
        [o("N1", "99.0", "90000000000", "add"), o("A1", "99.0", "90000000000", "modify")],
        [],
        PrecisionError,
        ["bids[1] order A1", "would overflow"],
    ),
    "month 13": (
        "update",
        [o("N1", "99.0", "1", "add", "2024-13-01T00:00:00Z")],
        [],
        ProtocolError,
        ["bids[0] order N1: timestamp", "2024-13-01"],
    ),
    "timestamp that is not one": (
        "update",
        [],
        [o("N1", "101.0", "1", "add", "yesterday")],
        ProtocolError,
        ["asks[0] order N1: timestamp"],
    ),
    "error after many changes (rollback)": (
        "update",
        [
            o("A1", "100.0", "5", "modify", "2030-01-01T00:00:00Z"),  # in place, new time
            o("A3", "99.9", "3", "modify"),  # move to the back of another level
            o("B1", "99.9", "0.5", "delete"),  # a level that now holds A3
            o("N1", "99.5", "1", "add"),  # a new level
            o("N2", "100.0", "1", "add"),
            o("N2", "100.0", "1", "delete"),
            o("A1", "100.0", "1", "delete"),
            o("A2", "100.0", "1", "delete"),  # empties 100.0: level gone
            o("A2", "99.7", "1", "add"),  # the same id again, elsewhere
        ],
        [
            o("C1", "100.1", "0", "modify"),
            o("D1", "100.2", "4", "modify"),  # move, empties 100.5
            o("X9", "100.1", "1", "delete"),  # unknown: undo everything above
        ],
        OrderError,
        ["asks[2] order X9"],
    ),
}


def seeded(impl: Implementation, depth: int = 10) -> Any:
    assert impl.L3Book is not None
    book = impl.L3Book(SYMBOL, depth, 1, 8)
    book.apply_snapshot(BASE_BIDS, BASE_ASKS)
    return book


def refuse(impl: Implementation, route: str, name: str) -> BaseException:
    """Apply case ``name`` through ``route`` ("frame" or "python"); check what must hold."""
    kind, bids, asks, error, fragments = CASES[name]
    book = seeded(impl)
    before = book_state(book)
    with pytest.raises(error) as caught:
        if route == "frame":
            apply_frame(impl, book, frame(kind, bids, asks))
        elif kind == "snapshot":
            book.apply_snapshot(bids, asks)
        else:
            book.apply_update(bids, asks)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert str(caught.value).startswith(SYMBOL)
    assert book_state(book) == before, "a refused message changed the book"
    assert book.needs_resync
    book._check()
    # The book keeps working; the next snapshot clears the flag.
    book.apply_update([o("N7", "99.0", "1", "add")], [])
    assert book.needs_resync and "N7" in book
    book.apply_snapshot(BASE_BIDS, BASE_ASKS)
    assert not book.needs_resync
    book._check()
    return caught.value


@pytest.mark.parametrize("route", ["frame", "python"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_message_changes_nothing(impl: Implementation, route: str, name: str) -> None:
    refuse(impl, route, name)


# The whole message each case must be refused with (after "BTC/USD: "), written out here. Both
# implementations build their messages from bookengine.core_types, so comparing one with the
# other would hold by construction; comparing each with this text does not (a wrong entry
# index, order id, price text or builder in either implementation, or a change of the shared
# words, fails).
MESSAGES = {
    "add of quantity 0": "bids[0] order N1: add with order_qty 0 (a resting order has a quantity)",
    "crossed snapshot": (
        "asks[0] order S2: the book would be crossed: best bid 101.0 >= best ask 100.0"
    ),
    "crossing add": (
        "bids[0] order N1: the book would be crossed: best bid 100.1 >= best ask 100.1"
    ),
    "crossing after the asks it would meet are gone": (
        "bids[0] order N1: the book would be crossed: best bid 100.6 >= best ask 100.5"
    ),
    "crossing move": (
        "asks[0] order D1: the book would be crossed: best bid 100.0 >= best ask 99.9"
    ),
    "delete on the wrong side": (
        "asks[0] order B1: delete on the wrong side: the order rests on the bid side"
    ),
    "duplicate add": "bids[0] order A2: duplicate add: the order already rests on the bid side",
    "duplicate add on the other side": (
        "asks[0] order A2: duplicate add: the order already rests on the bid side"
    ),
    "duplicate in a snapshot": (
        "bids[1] order S1: duplicate add: the order already rests on the bid side"
    ),
    "error after many changes (rollback)": (
        "asks[2] order X9: delete of an order that is not in the book"
    ),
    "level total beyond int64": "bids[1] order N2: total quantity at 99.0 would overflow int64",
    "level total beyond int64 by a modify": (
        "bids[1] order A1: total quantity at 99.0 would overflow int64"
    ),
    "modify on the wrong side": (
        "bids[0] order C1: modify on the wrong side: the order rests on the ask side"
    ),
    "month 13": (
        "bids[0] order N1: timestamp: not an RFC 3339 timestamp (no such date or time): "
        "'2024-13-01T00:00:00Z'"
    ),
    "negative quantity": "bids[0] order A1: order_qty: negative value '-1'",
    "price that is not a number": "asks[0] order N1: limit_price: 'abc' is not a decimal number",
    "price with too many decimals": (
        "bids[0] order N1: limit_price: '99.05' has more fractional digits than the scale 1"
    ),
    "quantity 0 in a snapshot": (
        "bids[0] order S1: add with order_qty 0 (a resting order has a quantity)"
    ),
    "quantity beyond int64": (
        "bids[0] order N1: order_qty: '100000000000' overflows int64 at scale 8"
    ),
    "snapshot entry that is not an add": (
        "bids[0] order S1: a snapshot holds resting orders, not modify events"
    ),
    "timestamp that is not one": (
        "asks[0] order N1: timestamp: not an RFC 3339 timestamp: 'yesterday'"
    ),
    "unknown delete after a valid one": (
        "bids[1] order X9: delete of an order that is not in the book"
    ),
    "unknown modify": "asks[0] order X9: modify of an order that is not in the book",
}


def test_every_case_has_its_message() -> None:
    assert set(MESSAGES) == set(CASES)


@pytest.mark.parametrize("route", ["frame", "python"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_implementation_refuses_with_the_expected_words(
    impl: Implementation, route: str, name: str
) -> None:
    assert str(refuse(impl, route, name)) == f"{SYMBOL}: {MESSAGES[name]}"


def test_checksum_mismatch_applies_and_flags(impl: Implementation) -> None:
    book = seeded(impl)
    with pytest.raises(ChecksumError) as caught:
        book.apply_update([o("N1", "99.0", "1", "add")], [], 12345)
    assert caught.value.expected == 12345 and caught.value.computed == book.checksum()
    assert "N1" in book and book.needs_resync
    with pytest.raises(ChecksumError):
        apply_frame(impl, book, frame("snapshot", BASE_BIDS, BASE_ASKS, checksum=1))
    assert book.needs_resync and "N1" not in book  # a snapshot that fails its checksum
    apply_frame(impl, book, frame("snapshot", BASE_BIDS, BASE_ASKS, checksum=book.checksum()))
    assert not book.needs_resync


def test_refused_snapshot_keeps_the_old_book(impl: Implementation) -> None:
    book = seeded(impl)
    before = book_state(book)
    with pytest.raises(OrderError):
        book.apply_snapshot([o("S1", "1.0", "1"), o("S2", "1.0", "1"), o("S1", "1.0", "1")], [])
    assert book_state(book) == before and book.needs_resync


def test_routing_errors_leave_the_flag_alone(impl: Implementation) -> None:
    book = seeded(impl)
    scanner = impl.FrameScanner()
    scanner.scan(frame("update", [o("N1", "99.0", "1", "add")], [], symbol="ETH/USD"))
    with pytest.raises(ProtocolError, match="ETH/USD"):
        book.apply_scanned(scanner)
    scanner.scan(b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[]}]}')
    with pytest.raises(ProtocolError, match="not a level3 frame"):
        book.apply_scanned(scanner)
    assert not book.needs_resync and len(book) == 7


def test_missing_fields_in_a_frame_are_refused_by_the_scanner(impl: Implementation) -> None:
    scanner = impl.FrameScanner()
    for entry in ({"order_id": "N1", "limit_price": "1.0"}, {"limit_price": "1", "order_qty": "1"}):
        with pytest.raises(ProtocolError, match=r"bids\[0\]"):
            scanner.scan(frame("snapshot", [entry], []))
    with pytest.raises(ProtocolError, match="needs 'event'"):
        scanner.scan(frame("update", [o("N1", "1.0", "1")], []))


PYTHON_API_CASES: dict[str, tuple[list[Any], type, str]] = {
    "missing order_qty": (
        [{"order_id": "N1", "limit_price": "1", "event": "add"}],
        ProtocolError,
        "bids[0]: needs 'order_qty'",
    ),
    "missing event": ([o("N1", "99.0", "1")], ProtocolError, "needs 'event'"),
    "unknown event": ([o("N1", "99.0", "1", "replace")], ProtocolError, "bids[0].event"),
    "empty order id": ([o("", "99.0", "1", "add")], ProtocolError, "bids[0].order_id"),
    "order id not a str": (
        [{**o("x", "99.0", "1", "add"), "order_id": 7}],
        ProtocolError,
        "order_id",
    ),
    "not a mapping": ([("N1", "99.0", "1")], ProtocolError, "expected a mapping"),
    "float price": ([{**o("N1", "x", "1", "add"), "limit_price": 99.0}], TypeError, "not exact"),
    "timestamp not text": (
        [{**o("N1", "99.0", "1", "add"), "timestamp": 5}],
        ProtocolError,
        "timestamp",
    ),
}


@pytest.mark.parametrize("name", sorted(PYTHON_API_CASES))
def test_python_api_refusals(impl: Implementation, name: str) -> None:
    bids, error, fragment = PYTHON_API_CASES[name]
    book = seeded(impl)
    before = book_state(book)
    with pytest.raises(error, match=None) as caught:
        book.apply_update(bids, [])
    assert fragment in str(caught.value)
    assert book_state(book) == before and book.needs_resync


def test_python_api_accepts_ints_and_decimals(impl: Implementation) -> None:
    book = seeded(impl)
    book.apply_update(
        [{"event": "add", "order_id": "N1", "limit_price": Decimal("99.0"), "order_qty": 2}], []
    )
    assert book.order("N1") == ("N1", "bid", 990, 200000000, -1, 2, 0)


@pytest.mark.parametrize("checksum", [-1, 2**32, "123", 1.0, True])
def test_python_api_checksum_argument(impl: Implementation, checksum: Any) -> None:
    book = seeded(impl)
    before = book_state(book)
    with pytest.raises(ProtocolError, match="checksum"):
        book.apply_update([o("N1", "99.0", "1", "add")], [], checksum)
    assert book_state(book) == before and book.needs_resync


def test_sides_must_be_sequences(impl: Implementation) -> None:
    book = seeded(impl)
    with pytest.raises(ProtocolError, match="'bids' must be a sequence"):
        book.apply_update(o("N1", "99.0", "1", "add"), [])
    assert book.needs_resync and len(book) == 7
