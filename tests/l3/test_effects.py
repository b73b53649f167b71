"""What an applied level3 update did to the queues (``record_effects`` / ``effects()``).

Every test runs on both implementations; the differential machine in ``test_differential.py``
compares their effects over random flows.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bookengine import BookError, Implementation, implementation
from bookengine.kraken.events import BookChanged, OrderEffect
from bookengine.kraken.session import KrakenSession

from .helpers import SYMBOL, EffectMirror, apply_frame, arrays_state, frame, o

T1 = "2024-01-02T03:04:05.000000006Z"
T1_NS = 1704164645000000006
MESSAGE_TS = "2024-01-02T03:04:05.5Z"
MESSAGE_TS_NS = 1704164645500000000


def _book(impl: Implementation, depth: int = 10, record: bool = True) -> Any:
    """Bids 100.0: A 3, B 4, C 5; 99.0: D 1. Asks 101.0: E 2, F 6; 102.0: G 7."""
    book = impl.L3Book(SYMBOL, depth, 1, 0)
    book.record_effects = record
    bids = [o("A", "100.0", "3"), o("B", "100.0", "4"), o("C", "100.0", "5"), o("D", "99.0", "1")]
    asks = [o("E", "101.0", "2"), o("F", "101.0", "6"), o("G", "102.0", "7")]
    apply_frame(impl, book, frame("snapshot", bids, asks))
    assert book.effects() == ()  # a snapshot has no per-order effects
    return book


def _update(impl: Implementation, book: Any, bids: list[Any], asks: list[Any]) -> Any:
    apply_frame(impl, book, frame("update", bids, asks))
    return book.effects()


def _effect(
    action: str,
    event: str,
    side: str,
    order_id: str,
    price: int,
    new_price: int,
    qty_before: int,
    qty_after: int,
    orders_ahead: int,
    qty_ahead: int,
    level_index: int,
    timestamp_ns: int = -1,
    message_ts_ns: int = -1,
) -> OrderEffect:
    return OrderEffect(
        action,
        event,
        side,
        order_id,
        price,
        new_price,
        qty_before,
        qty_after,
        orders_ahead,
        qty_ahead,
        level_index,
        timestamp_ns,
        message_ts_ns,
    )


def test_each_action(impl: Implementation) -> None:
    book = _book(impl)
    effects = _update(
        impl,
        book,
        [
            o("B", "100.0", "2", "modify", T1),  # a fill: keeps its place
            o("A", "100.0", "3", "delete"),
            o("H", "99.0", "8", "add", T1),
            o("C", "99.5", "5", "modify"),  # a new price: the back of a new level
        ],
        [o("F", "101.0", "0", "modify")],  # modify to 0 removes it
    )
    assert effects == (
        _effect("modify", "modify", "bid", "B", 1000, 1000, 4, 2, 1, 3, 0, T1_NS),
        _effect("delete", "delete", "bid", "A", 1000, -1, 3, 0, 0, 0, 0),
        _effect("add", "add", "bid", "H", 990, 990, 0, 8, 1, 1, 1, T1_NS),
        _effect("requeue", "modify", "bid", "C", 1000, 995, 5, 5, 1, 2, 0),
        _effect("delete", "modify", "ask", "F", 1010, -1, 6, 0, 1, 2, 0),
    )
    assert effects is book.effects()  # built once per message
    assert all(isinstance(e, OrderEffect) for e in effects)


def test_places_equal_queue_position_before_the_message(impl: Implementation) -> None:
    """A one-entry message: the effect's place is ``queue_position`` just before it."""
    for order_id, price, event in [
        ("A", "100.0", "delete"),
        ("B", "100.0", "delete"),
        ("C", "100.0", "delete"),
        ("B", "100.0", "modify"),
        ("C", "98.0", "modify"),
        ("F", "101.0", "delete"),
    ]:
        book = _book(impl)
        before = book.queue_position(order_id)
        info = book.order(order_id)
        side = info.side
        entry = o(order_id, price, "1", event)
        (effect,) = _update(impl, book, [entry] if side == "bid" else [], [entry] * (side == "ask"))
        assert (effect.orders_ahead, effect.qty_ahead) == (before.orders_ahead, before.qty_ahead)
        assert effect.level_index == info.level_index
        assert (effect.price, effect.qty_before) == (info.price, info.qty)


def test_requeue_rules(impl: Implementation) -> None:
    book = _book(impl)
    # Delete and add again under the same id in one message: the delete is a requeue (new
    # price and quantity from the re-add), the add an add at the back of its level.
    effects = _update(impl, book, [o("A", "100.0", "3", "delete"), o("A", "100.0", "9", "add")], [])
    assert [(e.action, e.event) for e in effects] == [("requeue", "delete"), ("add", "add")]
    assert (effects[0].new_price, effects[0].qty_after, effects[0].orders_ahead) == (1000, 9, 0)
    assert (effects[1].orders_ahead, effects[1].qty_ahead) == (2, 9)  # B and C ahead now
    assert book.queue_position("A").orders_ahead == 2
    # A same-price increase keeps the place (the book's rule): a modify, not a requeue.
    (effect,) = _update(impl, book, [o("B", "100.0", "40", "modify")], [])
    assert (effect.action, effect.qty_before, effect.qty_after) == ("modify", 4, 40)
    assert book.queue_position("B").orders_ahead == 0
    # A delete without a re-add, and a modify to 0, are deletes; a re-add in a later message
    # is a plain add.
    assert _update(impl, book, [o("C", "100.0", "5", "delete")], [])[0].action == "delete"
    assert _update(impl, book, [o("C", "100.0", "5", "add")], [])[0].action == "add"


def test_truncation_effects(impl: Implementation) -> None:
    book = _book(impl, depth=2)
    # A better bid level pushes 99.0 (D) out of the depth: D is truncated after the entries.
    effects = _update(impl, book, [o("H", "100.5", "1", "add")], [])
    assert effects == (
        _effect("add", "add", "bid", "H", 1005, 1005, 0, 1, 0, 0, 0),
        _effect("truncate", "", "bid", "D", 990, -1, 1, 0, 0, 0, 2),
    )
    assert "D" not in book
    # Two orders of one dropped level: places as the level was when it was dropped.
    effects = _update(impl, book, [], [o("I", "100.8", "1", "add")])
    assert [
        (e.action, e.order_id, e.orders_ahead, e.qty_ahead, e.level_index) for e in effects
    ] == [
        ("add", "I", 0, 0, 0),
        ("truncate", "G", 0, 0, 2),
    ]


def test_timestamps(impl: Implementation) -> None:
    book = _book(impl)
    data = json.loads(frame("update", [o("A", "100.0", "1", "modify", T1)], []))
    data["data"][0]["timestamp"] = MESSAGE_TS
    (effect,) = (apply_frame(impl, book, json.dumps(data).encode()), book.effects())[1]
    assert (effect.timestamp_ns, effect.message_ts_ns) == (T1_NS, MESSAGE_TS_NS)
    # The Python-object API has no message timestamp.
    book.apply_update([o("A", "100.0", "2", "modify")], [])
    assert book.effects()[0].message_ts_ns == -1


def test_refused_message_leaves_no_effects(impl: Implementation) -> None:
    book = _book(impl)
    assert _update(impl, book, [o("A", "100.0", "1", "modify")], [])
    with pytest.raises(BookError):  # valid entries, then an unknown order: rolled back
        _update(impl, book, [o("B", "100.0", "1", "delete"), o("X", "100.0", "1", "delete")], [])
    assert book.effects() == ()
    assert _update(impl, book, [o("B", "100.0", "1", "modify")], [])
    with pytest.raises(BookError):  # refused while parsing (a bad number)
        _update(impl, book, [o("B", "100.05", "1", "modify")], [])
    assert book.effects() == ()
    with pytest.raises(BookError):  # a crossing result
        _update(impl, book, [o("Z", "105.0", "1", "add")], [])
    assert book.effects() == ()


def test_off_by_default_and_switchable(impl: Implementation) -> None:
    book = _book(impl, record=False)
    assert book.record_effects is False
    assert _update(impl, book, [o("A", "100.0", "1", "modify")], []) == ()
    book.record_effects = True
    assert len(_update(impl, book, [o("A", "100.0", "2", "modify")], [])) == 1
    book.record_effects = False
    assert _update(impl, book, [o("A", "100.0", "3", "modify")], []) == ()
    book.record_effects = True
    _update(impl, book, [o("A", "100.0", "4", "modify")], [])
    book.clear()
    assert book.effects() == ()


def test_effects_rebuild_the_book(impl: Implementation) -> None:
    """Applied to a copy of the orders, a message's effects give the book after it."""
    book = _book(impl, depth=3)
    mirror = EffectMirror()
    mirror.reset(book)
    messages = [
        (
            [o("A", "100.0", "3", "delete"), o("A", "99.0", "3", "add")],
            [o("E", "103.0", "2", "modify")],
        ),
        (
            [o("J", "100.2", "1", "add"), o("K", "100.1", "1", "add")],
            [o("F", "101.0", "1", "modify")],
        ),
        (
            [o("B", "100.0", "4", "delete"), o("C", "100.0", "5", "delete")],
            [o("L", "100.9", "5", "add")],
        ),
    ]
    for bids, asks in messages:
        mirror.apply(_update(impl, book, bids, asks))
        assert mirror.state() == arrays_state(book)


def test_session_attaches_effects(impl: Implementation) -> None:
    snapshot = frame(
        "snapshot", [o("A", "100.0", "3"), o("B", "100.0", "4")], [o("E", "101.0", "2")]
    )
    update = frame("update", [o("A", "100.0", "1", "modify")], [])
    ack = json.dumps(
        {
            "method": "subscribe",
            "success": True,
            "result": {"channel": "level3", "symbol": SYMBOL, "depth": 10},
        }
    ).encode()

    def changed(session: KrakenSession, data: bytes) -> BookChanged:
        (event,) = [e for e in session.receive(data, 5) if isinstance(e, BookChanged)]
        return event

    plain = KrakenSession(precisions={SYMBOL: (1, 0)}, implementation_name=impl.name)
    plain.receive(ack, 1)
    changed(plain, snapshot)
    assert changed(plain, update).effects == ()  # off by default
    plain.record_effects(True)  # switches the books it holds already
    assert changed(plain, update).effects[0].order_id == "A"

    session = KrakenSession(
        precisions={SYMBOL: (1, 0)}, implementation_name=impl.name, level3_effects=True
    )
    session.receive(ack, 1)
    assert changed(session, snapshot).effects == ()  # snapshots: is_snapshot tells
    (effect,) = changed(session, update).effects
    assert (effect.action, effect.qty_before, effect.qty_after) == ("modify", 3, 1)
    session.record_effects(False)
    assert changed(session, update).effects == ()


def test_sink_effects_keep_what_the_trade_join_reads() -> None:
    # With a compiled sink attached (the pure build takes none), an add records its side
    # alone and no truncation is recorded; every other effect is the whole one, requeues
    # included (a delete and an add of one id in one message).
    impl = implementation("cython")
    whole, lean = _book(impl, depth=2), _book(impl, depth=2)
    lean.sink_effects = True
    messages = [
        ([o("A", "100.0", "3", "delete"), o("A", "99.5", "3", "add")], []),  # a requeue
        ([o("J", "100.2", "1", "add"), o("B", "100.0", "2", "modify")], []),  # a level cut
        ([], [o("E", "101.0", "2", "delete"), o("H", "100.9", "5", "add")]),
    ]
    actions: set[str] = set()
    for bids, asks in messages:
        full = _update(impl, whole, bids, asks)
        trimmed = _update(impl, lean, bids, asks)
        assert whole.checksum() == lean.checksum()
        actions |= {effect.action for effect in full}
        expected = [effect for effect in full if effect.action != "truncate"]
        assert len(trimmed) == len(expected)
        for got, want in zip(trimmed, expected, strict=True):
            if want.action == "add":
                assert (got.action, got.side, got.price) == (want.action, want.side, want.price)
            else:
                assert got == want
    assert {"requeue", "truncate", "add", "modify", "delete"} <= actions  # all were met
