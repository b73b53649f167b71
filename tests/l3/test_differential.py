"""Both implementations against an independent model, over random Kraken-like level3 flows.

The publisher (``publisher.py``) runs an exchange book and the subscriber's window; its frames
carry checksums computed by ``bookengine.checksum.level3_checksum`` from that model. Each
frame goes through both implementations' scanners and books, and after every message the
books must verify the checksum, equal the model's L2 view and queue positions, equal each
other order by order, and pass ``_check()``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from bookengine import BookError, implementation
from bookengine.numbers import mantissa_text

from .conftest import NAMES
from .helpers import EffectMirror, arrays_state, book_state, frame, o
from .publisher import ASK, BID, SIDE_WORDS, Publisher

SIDES = st.sampled_from([BID, ASK])
QTYS = st.one_of(st.integers(1, 10**9), st.integers(1, 10**12), st.just(1))


class Subscribers:
    """One scanner and book per implementation, fed the same frames."""

    def __init__(self, depth: int, price_precision: int, qty_precision: int) -> None:
        self.impls = [implementation(name) for name in NAMES]
        self.scanners = [impl.FrameScanner() for impl in self.impls]
        self.books = [
            impl.L3Book("BTC/USD", depth, price_precision, qty_precision)  # type: ignore[misc]
            for impl in self.impls
        ]
        for book in self.books:
            book.record_effects = True
        self.mirror = EffectMirror()
        self.messages = 0

    def send(self, frame: bytes, model: Publisher, full: bool = True) -> None:
        for scanner, book in zip(self.scanners, self.books, strict=True):
            scanner.scan(frame)
            assert book.apply_scanned(scanner) is True  # the model's checksum verified
        self.messages += 1
        # Both books report the same effects, and they rebuild the book from the last one.
        effects = [book.effects() for book in self.books]
        assert all(e == effects[-1] for e in effects), "the implementations' effects differ"
        if b'"snapshot"' in frame:
            assert effects[-1] == ()
            self.mirror.reset(self.books[-1])
        else:
            self.mirror.apply(effects[-1])
            if full:
                assert self.mirror.state() == arrays_state(self.books[-1])
        self.compare(model, full)

    def compare(self, model: Publisher, full: bool) -> None:
        expected = (model.l2(BID), model.l2(ASK))
        count = sum(len(orders) for side in (BID, ASK) for _, orders in model.levels(side))
        for book in self.books:
            assert (book.bids(), book.asks()) == expected
            assert book.checksum() == model.checksum()
            assert len(book) == book.order_count == count
            assert not book.needs_resync
        if not full:
            return
        for book in self.books:
            book._check()
        reference = self.books[-1].orders_arrays(order_ids=True)
        for book in self.books[:-1]:
            arrays = book.orders_arrays(order_ids=True)
            assert arrays.keys() == reference.keys()
            for name, column in arrays.items():
                assert column.dtype == reference[name].dtype, name
                assert np.array_equal(column, reference[name]), name
            assert np.array_equal(book.bids_array(), self.books[-1].bids_array())
            assert np.array_equal(book.asks_array(5), self.books[-1].asks_array(5))
        visible = model.visible_ids()
        # Front, back and a spread of orders in between; plus orders outside the window.
        picks = visible[:2] + visible[-2:] + visible[:: max(1, len(visible) // 7)]
        for order_id in picks:
            info = model.order(order_id)
            position = model.queue_position(order_id)
            for book in self.books:
                assert book.order(order_id) == info
                assert book.queue_position(order_id) == position
        for order_id in model.hidden_ids()[:4]:
            for book in self.books:
                assert book.order(order_id) is None and order_id not in book
        for side in (BID, ASK):
            for price, orders in list(model.levels(side))[:2]:
                for book in self.books:
                    assert book.level_orders(SIDE_WORDS[side], price) == orders


LATER = "2030-01-01T00:00:00.000000001Z"
"""A timestamp the refused message writes, so a rollback that forgets one is seen."""
POISONS = ["unknown", "duplicate", "zero add", "wrong side", "precision", "timestamp", "crossing"]


def refused_frame(model: Publisher, choices: list[int], poison: str, side: int) -> bytes | None:
    """An update frame of valid events on the window, then one ``poison`` entry at the end.

    The valid part deletes, modifies in place, moves and adds (fresh ids), each order touched
    once; prices come from ``price_near`` so nothing crosses. Returns None when the book is
    too small for the poison asked for.
    """
    entries: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    window = {
        s: [(p, oid, q) for p, orders in model.levels(s) for oid, q, _ in orders]
        for s in (BID, ASK)
    }
    touched: set[str] = set()
    sides: tuple[int, ...]
    if poison == "crossing":  # keep the asks whole so a huge bid surely crosses
        if not window[ASK]:
            return None
        sides = (BID,)
    else:
        sides = (BID, ASK)
    for n, choice in enumerate(choices):
        s = sides[choice % len(sides)]
        action = (choice >> 1) % 4
        price = model.price_near(s, (choice >> 3) % 20)
        if action == 3 or not window[s]:
            entries[s].append(o(f"fresh-{n}", _text(price, 1), "0.1", "add"))
            continue
        order_price, order_id, qty = window[s][(choice >> 8) % len(window[s])]
        if order_id in touched:
            continue
        touched.add(order_id)
        if action == 0:
            entries[s].append(o(order_id, _text(order_price, 1), _text(qty, 8), "delete"))
        elif action == 1:
            entries[s].append(o(order_id, _text(order_price, 1), "0.5", "modify", LATER))
        else:
            entries[s].append(o(order_id, _text(price, 1), "0.25", "modify", LATER))
    untouched = {s: [oid for _, oid, _ in window[s] if oid not in touched] for s in (BID, ASK)}
    if poison == "unknown":
        entries[side].append(o("never-seen", "1.0", "1", "delete"))
    elif poison == "duplicate":
        if not untouched[side]:
            return None
        entries[side].append(o(untouched[side][0], "1.0", "1", "add"))
    elif poison == "zero add":
        entries[side].append(o("zero", _text(model.price_near(side, 3), 1), "0", "add"))
    elif poison == "wrong side":
        if not untouched[1 - side]:
            return None
        entries[side].append(o(untouched[1 - side][0], "1.0", "1", "modify"))
    elif poison == "precision":
        entries[side].append(o("fine", "1.05", "1", "add"))
    elif poison == "timestamp":
        entries[side].append(o("late", "1.0", "1", "add", "2024-02-30T00:00:00Z"))
    else:
        top = max(p for p, _, _ in window[ASK])
        entries[BID].append(o("crosser", _text(top + 10, 1), "1", "add"))
    return frame("update", entries[BID], entries[ASK])


def _text(mantissa: int, scale: int) -> str:
    return mantissa_text(mantissa, scale)


class L3Flow(RuleBasedStateMachine):
    """Random exchange activity, published as level3 frames, applied by both books."""

    def __init__(self) -> None:
        super().__init__()
        self.model: Publisher
        self.subs: Subscribers

    @initialize(
        depth=st.sampled_from([1, 2, 3, 5, 10, 12]),
        levels=st.integers(0, 14),
        per_level=st.integers(1, 4),
        seed=st.integers(0, 2**16),
    )
    def start(self, depth: int, levels: int, per_level: int, seed: int) -> None:
        self.model = Publisher(depth=depth, seed=seed, odd_ids=0.1)
        rng = random.Random(seed)
        for side in (ASK, BID):
            for level in range(levels):
                price = self.model.price_near(side, 2 * level)
                for _ in range(rng.randint(1, per_level)):
                    self.model.add(side, price, rng.randint(1, 10**9))
        self.subs = Subscribers(depth, self.model.pp, self.model.qp)
        self.subs.send(self.model.snapshot(), self.model)

    def _maybe_send(self, send: bool) -> None:
        if send:
            self.subs.send(self.model.flush(), self.model)

    @rule(side=SIDES, offset=st.integers(0, 40), qty=QTYS, send=st.booleans())
    def add(self, side: int, offset: int, qty: int, send: bool) -> None:
        self.model.add(side, self.model.price_near(side, offset), qty)
        self._maybe_send(send)

    @rule(side=SIDES, rank=st.integers(0, 14), count=st.integers(1, 300), send=st.booleans())
    def stack(self, side: int, rank: int, count: int, send: bool) -> None:
        """Many orders at one level: deep queues."""
        levels = self.model.full[side]
        if rank < len(levels):
            price = -levels.keys()[rank] if side == BID else levels.keys()[rank]
        else:
            price = self.model.price_near(side, rank)
        for i in range(count):
            self.model.add(side, price, 1 + (i * 7919) % 10**6)
        self._maybe_send(send)

    @precondition(lambda self: self.model.where)
    @rule(pick=st.integers(0, 2**32), visible=st.booleans(), send=st.booleans())
    def cancel(self, pick: int, visible: bool, send: bool) -> None:
        ids = (self.model.visible_ids() if visible else None) or self.model.all_ids()
        self.model.delete(ids[pick % len(ids)])
        self._maybe_send(send)

    @precondition(lambda self: self.model.where)
    @rule(
        pick=st.integers(0, 2**32),
        where=st.sampled_from(["front", "back", "any"]),
        qty=QTYS,
        send=st.booleans(),
    )
    def amend(self, pick: int, where: str, qty: int, send: bool) -> None:
        """A quantity change in place, at the front or back of a queue or anywhere."""
        side = pick % 2
        levels = self.model.full[side] or self.model.full[1 - side]
        if not levels:
            return
        level = levels.values()[pick % len(levels)]
        ids = list(level)
        order_id = (
            ids[0] if where == "front" else ids[-1] if where == "back" else ids[pick % len(ids)]
        )
        self.model.modify(order_id, qty)
        self._maybe_send(send)

    @precondition(lambda self: self.model.where)
    @rule(pick=st.integers(0, 2**32), offset=st.integers(0, 30), qty=QTYS, send=st.booleans())
    def move(self, pick: int, offset: int, qty: int, send: bool) -> None:
        """A price amend: the order goes to the back of another level."""
        ids = self.model.all_ids()
        order_id = ids[pick % len(ids)]
        side, old_price = self.model.where[order_id]
        price = self.model.price_near(side, offset)
        if price == old_price:
            price = self.model.price_near(side, offset + 1)
        if price == old_price:
            return
        self.model.move(order_id, price, qty)
        self._maybe_send(send)

    @rule(side=SIDES, qty=st.integers(1, 3 * 10**9), send=st.booleans())
    def trade(self, side: int, qty: int, send: bool) -> None:
        """An aggressive order fills the front of the queues (front modifies and deletes)."""
        self.model.trade(side, qty)
        self._maybe_send(send)

    @rule(side=SIDES, levels=st.integers(1, 4), send=st.booleans())
    def sweep(self, side: int, levels: int, send: bool) -> None:
        """Whole best levels disappear: thin books and backfill of deeper levels."""
        for _ in range(levels):
            if not self.model.full[side]:
                break
            for order_id in list(self.model.full[side].values()[0]):
                self.model.delete(order_id)
        self._maybe_send(send)

    @rule(
        choices=st.lists(st.integers(0, 2**32), min_size=0, max_size=25),
        poison=st.sampled_from(POISONS),
        side=SIDES,
    )
    def refused_message(self, choices: list[int], poison: str, side: int) -> None:
        """Valid changes then one bad entry: the undo log must restore every byte."""
        self.subs.send(self.model.flush(), self.model)  # model and books in step
        data = refused_frame(self.model, choices, poison, side)
        if data is None:
            return
        before = [book_state(book) for book in self.subs.books]
        messages = set()
        for scanner, book in zip(self.subs.scanners, self.subs.books, strict=True):
            scanner.scan(data)
            with pytest.raises(BookError) as caught:
                book.apply_scanned(scanner)
            messages.add(str(caught.value))
            assert book.needs_resync
            assert book.effects() == ()  # rolled back: nothing happened
            book._check()
        assert len(messages) == 1, messages
        assert [book_state(book) for book in self.subs.books] == before
        self.subs.send(self.model.snapshot(), self.model)  # the resync

    @rule()
    def flush(self) -> None:
        self.subs.send(self.model.flush(), self.model)

    @rule()
    def resnapshot(self) -> None:
        self.subs.send(self.model.snapshot(), self.model)


L3Flow.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_l3_flow = L3Flow.TestCase


@pytest.mark.parametrize(
    ("seed", "depth", "messages"), [(1, 10, 2500), (2, 3, 2500), (3, 100, 800), (4, 1, 1500)]
)
def test_long_random_flow(seed: int, depth: int, messages: int) -> None:
    """Long seeded runs: many messages, book sizes drifting, every rule mixed in."""
    rng = random.Random(seed)
    model = Publisher(depth=depth, seed=seed)
    for side in (ASK, BID):
        for level in range(depth + 5):
            for _ in range(rng.randint(1, 3)):
                model.add(side, model.price_near(side, 2 * level), rng.randint(1, 10**9))
    subs = Subscribers(depth, model.pp, model.qp)
    subs.send(model.snapshot(), model)
    for message in range(messages):
        for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
            _random_event(model, rng)
        subs.send(model.flush(), model, full=message % 10 == 0)
    subs.compare(model, True)


def _random_event(model: Publisher, rng: random.Random) -> None:
    side = rng.randrange(2)
    roll = rng.random()
    levels = model.full[side]
    if roll < 0.35 or len(model.where) < 20:
        model.add(side, model.price_near(side, int(rng.expovariate(0.3))), rng.randint(1, 10**9))
    elif roll < 0.6:
        ids = model.all_ids()
        model.delete(
            ids[int(rng.expovariate(1 / 30)) % len(ids)] if rng.random() < 0.5 else rng.choice(ids)
        )
    elif roll < 0.75 and levels:
        level: Any = levels.values()[min(len(levels) - 1, int(rng.expovariate(0.5)))]
        order_id = rng.choice([next(iter(level)), list(level)[-1]])
        model.modify(order_id, rng.randint(1, 10**9))
    elif roll < 0.85:
        order_id = rng.choice(model.all_ids())
        side, old = model.where[order_id]
        price = model.price_near(side, int(rng.expovariate(0.3)))
        if price != old:
            model.move(order_id, price, rng.randint(1, 10**9))
    else:
        model.trade(side, rng.randint(1, 2 * 10**9))
