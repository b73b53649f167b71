"""Hand-built cases for each Kraken level3 rule, the documented checksum and the queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bookengine import BookError, ChecksumError, Implementation, PrecisionError, ProtocolError
from bookengine.checksum import level3_checksum
from bookengine.numbers import mantissa_text, parse_mantissa

from .helpers import SYMBOL, apply_frame, book_state, frame, o, queue

DATA = Path(__file__).parent.parent / "data"
DOC_FRAME = (DATA / "docs-v2-level3-guide-btcusd.jsonl").read_bytes().strip()
DOC_CHECKSUM = 1063832831
T1 = "2024-01-08T12:26:39.526146327Z"
T1_NS = 1704716799526146327
T2 = "2024-01-08T12:26:40Z"
T2_NS = 1704716800000000000


def new_book(impl: Implementation, depth: int = 10) -> Any:
    assert impl.L3Book is not None
    return impl.L3Book(SYMBOL, depth, 1, 8)


def seeded(impl: Implementation, depth: int = 10) -> Any:
    """Bids 100.0 (A1 A2 A3), 99.9 (B1); asks 100.1 (C1 C2), 100.5 (D1)."""
    book = new_book(impl, depth)
    book.apply_snapshot(
        [
            o("A1", "100.0", "1", ts=T1),
            o("A2", "100.0", "2"),
            o("A3", "100.0", "3"),
            o("B1", "99.9", "0.5"),
        ],
        [o("C1", "100.1", "1.5"), o("C2", "100.1", "0.25"), o("D1", "100.5", "4")],
    )
    book._check()
    return book


# -- the documented checksum --------------------------------------------------------------------


def test_doc_checksum_through_apply_scanned(impl: Implementation) -> None:
    book = new_book(impl)
    assert apply_frame(impl, book, DOC_FRAME) is True
    book._check()
    assert book.checksum() == DOC_CHECKSUM
    assert (len(book), book.bid_levels, book.ask_levels) == (35, 10, 10)
    assert not book.needs_resync


def test_doc_checksum_through_apply_snapshot(impl: Implementation) -> None:
    data = json.loads(DOC_FRAME)["data"][0]
    book = new_book(impl)
    assert book.apply_snapshot(data["bids"], data["asks"], data["checksum"]) is True
    assert book.checksum() == DOC_CHECKSUM
    assert book.order_count == 35


def test_doc_checksum_covers_queue_order(impl: Implementation) -> None:
    # Same orders, two of one level swapped: same L2 book, different L3 checksum.
    data = json.loads(DOC_FRAME)["data"][0]
    bids = data["bids"]
    bids[0], bids[1] = bids[1], bids[0]
    book = new_book(impl)
    with pytest.raises(ChecksumError):
        book.apply_snapshot(bids, data["asks"], DOC_CHECKSUM)
    assert book.needs_resync
    assert book.order_count == 35  # applied, then found different


def test_checksum_rule_matches_the_plain_python_statement(impl: Implementation) -> None:
    book = seeded(impl)
    expected = level3_checksum(
        [(1001, [150000000, 25000000]), (1005, [400000000])],
        [(1000, [100000000, 200000000, 300000000]), (999, [50000000])],
    )
    assert book.checksum() == expected


# -- event rules --------------------------------------------------------------------------------


def test_add_joins_the_back_of_its_level(impl: Implementation) -> None:
    book = seeded(impl)
    book.apply_update([o("A4", "100.0", "4", "add")], [])
    assert queue(book, "bid", 1000) == [
        ("A1", 100000000),
        ("A2", 200000000),
        ("A3", 300000000),
        ("A4", 400000000),
    ]
    book.apply_update([o("N1", "99.5", "1", "add")], [])  # a new level
    assert book.bids() == [(1000, 1000000000), (999, 50000000), (995, 100000000)]
    book._check()


def test_modify_at_the_same_price_keeps_the_place(impl: Implementation) -> None:
    book = seeded(impl)
    book.apply_update([o("A1", "100.0", "0.4", "modify", T2)], [])
    assert queue(book, "bid", 1000) == [("A1", 40000000), ("A2", 200000000), ("A3", 300000000)]
    info = book.order("A1")
    assert info is not None and info.position == 0 and info.timestamp_ns == T2_NS
    book.apply_update([o("A3", "100.0", "9", "modify")], [])  # a size increase, at the back
    assert queue(book, "bid", 1000)[2] == ("A3", 900000000)
    assert book.bids(1) == [(1000, 40000000 + 200000000 + 900000000)]
    book._check()


def test_modify_without_timestamp_keeps_the_old_one(impl: Implementation) -> None:
    book = seeded(impl)
    book.apply_update([o("A1", "100.0", "0.5", "modify")], [])
    info = book.order("A1")
    assert info is not None and info.timestamp_ns == T1_NS
    assert book.order("A2") is not None and book.order("A2").timestamp_ns == -1


def test_modify_at_another_price_moves_to_the_back(impl: Implementation) -> None:
    book = seeded(impl)
    book.apply_update([o("A1", "99.9", "1", "modify", T2)], [])
    assert queue(book, "bid", 1000) == [("A2", 200000000), ("A3", 300000000)]
    assert queue(book, "bid", 999) == [("B1", 50000000), ("A1", 100000000)]
    info = book.order("A1")
    assert info is not None
    assert (info.price, info.level_index, info.position, info.timestamp_ns) == (999, 1, 1, T2_NS)
    # to a new level, emptying the old one
    book.apply_update([o("B1", "99.0", "0.5", "modify")], [])
    book.apply_update([o("A1", "99.1", "1", "modify")], [])
    assert book.bids() == [(1000, 500000000), (991, 100000000), (990, 50000000)]
    book._check()


def test_modify_to_zero_removes_the_order(impl: Implementation) -> None:
    book = seeded(impl)
    book.apply_update([o("B1", "99.9", "0", "modify")], [o("C1", "100.1", "0", "modify")])
    assert "B1" not in book and book.order("B1") is None
    assert book.bids() == [(1000, 600000000)]
    assert queue(book, "ask", 1001) == [("C2", 25000000)]
    book._check()


def test_delete_removes_and_an_empty_level_disappears(impl: Implementation) -> None:
    book = seeded(impl)
    book.apply_update([o("A2", "100.0", "2", "delete")], [o("D1", "100.5", "4", "delete")])
    assert queue(book, "bid", 1000) == [("A1", 100000000), ("A3", 300000000)]
    assert book.asks() == [(1001, 175000000)]
    assert book.level_orders("ask", 1005) == []
    assert len(book) == 5
    book._check()


def test_delete_then_add_of_the_same_id_in_one_message(impl: Implementation) -> None:
    book = seeded(impl)
    book.apply_update([o("A1", "100.0", "1", "delete"), o("A1", "100.0", "7", "add")], [])
    assert queue(book, "bid", 1000)[-1] == ("A1", 700000000)
    book._check()


def test_snapshot_replaces_the_book(impl: Implementation) -> None:
    book = seeded(impl)
    book.apply_snapshot([o("Z1", "50.0", "1")], [o("A1", "60.0", "1")])
    assert book.bids() == [(500, 100000000)] and book.asks() == [(600, 100000000)]
    assert "A2" not in book and book.order("A1") is not None
    assert book.order("A1").side == "ask"
    book._check()


def test_truncation_drops_orders_and_backfill_brings_them_back(impl: Implementation) -> None:
    book = seeded(impl, depth=2)
    # A new ask level inside the window pushes 100.5 (D1) out; its id leaves the index.
    book.apply_update([], [o("F1", "100.2", "1", "add")])
    assert book.asks() == [(1001, 175000000), (1002, 100000000)]
    assert "D1" not in book and book.order("D1") is None and len(book) == 7
    # Kraken backfills D1 with an add once 100.2 is gone: accepted, not a duplicate.
    book.apply_update([], [o("F1", "100.2", "1", "delete"), o("D1", "100.5", "4", "add")])
    assert book.asks() == [(1001, 175000000), (1005, 400000000)]
    book._check()
    # An add beyond the window is applied, then truncated in the same message.
    book.apply_update([], [o("G1", "101.0", "1", "add")])
    assert "G1" not in book and book.ask_levels == 2
    # Truncation happens once per message, after all its events: a level that is briefly
    # third and then second survives.
    book.apply_update([o("H1", "99.8", "1", "add"), o("B1", "99.9", "0.5", "delete")], [])
    assert book.bids() == [(1000, 600000000), (998, 100000000)]
    book._check()


def test_depth_counts_levels_not_orders(impl: Implementation) -> None:
    book = new_book(impl, depth=1)
    bids = [o(f"B{i}", "10.0", "1") for i in range(300)] + [o("X", "9.0", "1")]
    book.apply_snapshot(bids, [])
    assert len(book) == 300 and book.bid_levels == 1
    book._check()


def test_message_without_checksum_returns_false(impl: Implementation) -> None:
    book = seeded(impl)
    assert book.apply_update([o("A9", "100.0", "1", "add")], []) is False
    expected = level3_checksum(
        [(1001, [150000000, 25000000]), (1005, [400000000])],
        [(1000, [100000000, 200000000, 300000000, 200000000]), (999, [50000000])],
    )
    assert book.apply_update([o("A9", "100.0", "2", "modify")], [], expected) is True


def test_thin_and_empty_books(impl: Implementation) -> None:
    book = new_book(impl)
    assert book.checksum() == level3_checksum([], [])
    assert book.best_bid() is None and book.best_ask() is None
    assert book.bids() == [] and book.bids_array().shape == (0, 2)
    assert book.apply_snapshot([], [o("A", "1.0", "1")], level3_checksum([(10, [10**8])], []))
    assert book.best_ask() == (10, 10**8) and book.best_bid() is None
    arrays = book.orders_arrays()
    assert {k: v.tolist() for k, v in arrays.items()} == {
        "side": [1],
        "price": [10],
        "qty": [10**8],
        "position": [0],
        "level": [0],
        "timestamp_ns": [-1],
    }
    book.apply_update([], [o("A", "1.0", "1", "delete")])
    assert len(book) == 0 and book.orders_arrays()["price"].shape == (0,)
    book._check()


# -- queries ------------------------------------------------------------------------------------


def test_queue_position(impl: Implementation) -> None:
    book = seeded(impl)
    assert tuple(book.queue_position("A1")) == (0, 0, 500000000, 3, 600000000)
    assert tuple(book.queue_position("A2")) == (1, 100000000, 300000000, 3, 600000000)
    assert tuple(book.queue_position("A3")) == (2, 300000000, 0, 3, 600000000)
    position = book.queue_position("A3")
    assert position.orders_ahead == 2 and position.level_qty == 600000000
    assert book.queue_position("nope") is None


def test_order_info(impl: Implementation) -> None:
    book = seeded(impl)
    info = book.order("C2")
    assert info == ("C2", "ask", 1001, 25000000, -1, 0, 1)
    assert info.side == "ask" and info.level_index == 0 and info.position == 1
    assert book.order("D1").level_index == 1
    assert book.order("B1") == ("B1", "bid", 999, 50000000, -1, 1, 0)
    assert book.order("missing") is None and "missing" not in book and "C2" in book
    assert 3 not in book


def test_l2_view_equals_an_l2_book(impl: Implementation) -> None:
    data = json.loads(DOC_FRAME)["data"][0]
    book = new_book(impl)
    book.apply_snapshot(data["bids"], data["asks"])
    # The L2 book gets the per-price sums, computed here independently (exactly, as mantissas).
    sums: dict[str, dict[str, int]] = {"bids": {}, "asks": {}}
    for side in ("bids", "asks"):
        for entry in data[side]:
            qty = parse_mantissa(entry["order_qty"], 8)
            price = entry["limit_price"]
            sums[side][price] = sums[side].get(price, 0) + qty
    l2 = impl.L2Book(SYMBOL, 10, 1, 8)
    l2.apply_snapshot(
        [(p, mantissa_text(q, 8)) for p, q in sums["bids"].items()],
        [(p, mantissa_text(q, 8)) for p, q in sums["asks"].items()],
    )
    assert book.bids() == l2.bids() and book.asks() == l2.asks()
    assert book.bids(3) == l2.bids(3) and book.asks(0) == l2.asks(0) == []
    assert np.array_equal(book.bids_array(), l2.bids_array())
    assert np.array_equal(book.asks_array(4), l2.asks_array(4))
    assert book.bids_array().dtype == np.int64 and book.asks_array(4).shape == (4, 2)
    assert book.best_bid() == l2.best_bid() and book.best_ask() == l2.best_ask()
    assert (book.bid_levels, book.ask_levels) == (l2.bid_levels, l2.ask_levels)
    assert book.qty_at("bid", 449394) == l2.qty_at("bid", 449394) > 0
    assert book.qty_at("ask", 1) == 0
    with pytest.raises(ValueError):
        book.bids(-1)
    with pytest.raises(ValueError):
        book.qty_at("buy", 1)


def test_orders_arrays_shape_and_dtypes(impl: Implementation) -> None:
    book = seeded(impl)
    arrays = book.orders_arrays()
    expected = {
        "side": np.int8,
        "price": np.int64,
        "qty": np.int64,
        "position": np.int32,
        "level": np.int32,
        "timestamp_ns": np.int64,
    }
    assert {k: v.dtype for k, v in arrays.items()} == {k: np.dtype(v) for k, v in expected.items()}
    assert all(v.shape == (7,) for v in arrays.values())
    assert arrays["side"].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert arrays["price"].tolist() == [1000, 1000, 1000, 999, 1001, 1001, 1005]
    assert arrays["position"].tolist() == [0, 1, 2, 0, 0, 1, 0]
    assert arrays["level"].tolist() == [0, 0, 0, 1, 0, 0, 1]
    assert arrays["timestamp_ns"].tolist()[0] == T1_NS
    ids = book.orders_arrays(order_ids=True)["order_id"].tolist()
    assert ids == ["A1", "A2", "A3", "B1", "C1", "C2", "D1"]
    arrays["qty"][0] = 0  # the caller owns the arrays
    assert book.order("A1").qty == 100000000


def test_display_mixin(impl: Implementation) -> None:
    book = seeded(impl)
    assert book.spread() == 1 and not book.is_crossed()
    assert book.levels_text("bid", 1) == [("100.0", "6.00000000")]


# -- order ids ----------------------------------------------------------------------------------


ODD_IDS = [
    "x",  # short
    "12345678",  # exactly 8 bytes
    "123456789",  # 9 bytes: heap
    "OTCFZG-YOE2Q-LQKNM3",  # Kraken
    "otcfzg-yoe2q-lqknm3",  # Kraken-like, lowercase
    "OTCFZG-YOE2Q-LQKNM",  # one short
    "OTCFZG_YOE2Q_LQKNM3",  # wrong separators
    "O" * 19,
    "ZZZZZZ-ZZZZZ-ZZZZZZ",  # largest packed value
    "000000-00000-000000",  # smallest packed value
    "ordre-é-1",  # non-ASCII
    "a-very-long-client-order-identifier-" * 4,
    "\x00\x00",  # NUL bytes stay significant
    "\x00",
]


def test_every_id_shape_round_trips(impl: Implementation) -> None:
    book = new_book(impl)
    bids = [o(order_id, "10.0", str(i + 1)) for i, order_id in enumerate(ODD_IDS)]
    book.apply_snapshot(bids, [])
    assert [order_id for order_id, _ in queue(book, "bid", 100)] == ODD_IDS
    assert book.orders_arrays(order_ids=True)["order_id"].tolist() == ODD_IDS
    for i, order_id in enumerate(ODD_IDS):
        assert book.queue_position(order_id).orders_ahead == i
    book.apply_update([o(order_id, "10.0", "1", "delete") for order_id in ODD_IDS[::2]], [])
    assert [order_id for order_id, _ in queue(book, "bid", 100)] == ODD_IDS[1::2]
    book._check()


def test_json_escapes_in_order_ids(impl: Implementation) -> None:
    # "\u004f" is "O": the escaped and the plain spelling name the same order.
    data = frame("snapshot", [o("OTCFZG-YOE2Q-LQKNM3", "10.0", "1")], []).replace(
        b'"OTCFZG', b'"\\u004fTCFZG'
    )
    book = new_book(impl)
    apply_frame(impl, book, data)
    assert "OTCFZG-YOE2Q-LQKNM3" in book
    apply_frame(impl, book, frame("update", [o("OTCFZG-YOE2Q-LQKNM3", "10.0", "1", "delete")], []))
    assert len(book) == 0


def test_ids_with_escapes_and_surrogates(impls: list[Implementation]) -> None:
    """Ids with JSON escapes and non-ASCII text (frames) or lone surrogates (Python API)
    work, and name the same orders in both books."""
    escaped = ["é" * 10, "tab\there", 'quote"d', "back\\slash", "日本", "e\u0301"]
    surrogates = ["\ud800", "a\udcff"]
    states = []
    for impl in impls:
        book = new_book(impl)
        apply_frame(impl, book, frame("snapshot", [o(i, "10.0", "1") for i in escaped], []))
        book.apply_update([o(i, "10.0", "1", "add") for i in surrogates], [])
        book.apply_update([o(escaped[0], "10.0", "2", "modify")], [])
        assert [order_id for order_id, _ in queue(book, "bid", 100)] == escaped + surrogates
        assert all(order_id in book for order_id in escaped + surrogates)
        book._check()
        states.append(book_state(book))
    assert all(state == states[0] for state in states)


def test_order_ids_must_be_utf8(impl: Implementation) -> None:
    data = frame("snapshot", [o("xx-id", "10.0", "1")], []).replace(b"xx-id", b"\xff-id")
    data = data.replace(b"\\xff", b"\xff")
    scanner = impl.FrameScanner()
    try:
        scanner.scan(data)
    except ProtocolError:
        return  # the scanner refuses the frame: fine too
    book = new_book(impl)
    with pytest.raises(ProtocolError, match="order_id"):
        book.apply_scanned(scanner)
    assert len(book) == 0 and book.needs_resync


def test_many_orders_reuse_slots(impl: Implementation) -> None:
    book = new_book(impl, depth=5)
    for round_ in range(3):
        adds = [o(f"R{round_}-{i}", f"{10 + i % 7}.0", "1", "add") for i in range(500)]
        book.apply_update(adds, [])
        book._check()
        book.apply_update(
            [
                o(a["order_id"], a["limit_price"], "1", "delete")
                for a in adds
                if a["order_id"] in book
            ],
            [],
        )
        assert len(book) == 0
        book._check()


# -- construction -------------------------------------------------------------------------------


def test_constructor_validation(impl: Implementation) -> None:
    assert impl.L3Book is not None
    for depth in (0, -1, True, 1.5, "10"):
        with pytest.raises(BookError):
            impl.L3Book(SYMBOL, depth, 1, 8)
    for precision in (-1, 19, None, 1.0):
        with pytest.raises(PrecisionError):
            impl.L3Book(SYMBOL, 10, precision, 8)
    book = impl.L3Book(SYMBOL, 1000, 4, 8)
    assert (book.symbol, book.depth, book.price_precision, book.qty_precision) == (
        SYMBOL,
        1000,
        4,
        8,
    )
    assert not book.needs_resync and len(book) == 0


def test_clear(impl: Implementation) -> None:
    book = seeded(impl)
    book.clear()
    assert len(book) == 0 and book.bids() == [] and "A1" not in book
    book._check()
    book.apply_update([o("A1", "100.0", "1", "add")], [])
    assert len(book) == 1


@pytest.mark.parametrize("levels", [1, 2, 3, 7, 8, 9, 64, 300])
def test_every_level_is_found_at_every_rank(impl: Implementation, levels: int) -> None:
    """Level look-ups (galloping from the touch in the compiled core) find every level of a
    deep side and nothing between, above or below them."""
    book = new_book(impl, depth=1000)
    bids = [o(f"B{i}", f"{1000 - 2 * i}.0", "1") for i in range(levels)]
    asks = [o(f"A{i}", f"{1001 + 2 * i}.0", str(i + 1)) for i in range(levels)]
    book.apply_snapshot(bids, asks)
    for i in range(levels):
        assert book.qty_at("bid", (1000 - 2 * i) * 10) == 100_000_000
        assert book.qty_at("bid", (999 - 2 * i) * 10) == 0
        assert book.qty_at("ask", (1001 + 2 * i) * 10) == (i + 1) * 100_000_000
        assert book.qty_at("ask", (1002 + 2 * i) * 10) == 0
        assert book.level_orders("ask", (1001 + 2 * i) * 10)[0][0] == f"A{i}"
    assert book.qty_at("bid", 10_010) == book.qty_at("bid", 1) == 0
    assert book.qty_at("ask", 10_000) == book.qty_at("ask", 10**9) == 0
    # an add at each rank joins the existing level
    for i in range(levels):
        book.apply_update([o(f"C{i}", f"{1000 - 2 * i}.0", "1", "add")], [])
        assert book.qty_at("bid", (1000 - 2 * i) * 10) == 200_000_000
    book._check()
