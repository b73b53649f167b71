"""Where orders stand in their queues, live or over a replay, and what became of them.

:func:`queue_position` answers for one order of one L3 book. :class:`BookAnalytics` follows a
stream: it sits between the frames and a :class:`~bookengine.kraken.session.KrakenSession`
(``analytics.receive(frame, recv_ts_ns, session)`` instead of ``session.receive``), so it sees
each level3 message with the book *before* and *after* it. From that it

* builds an :class:`~bookengine.analytics.classify.L3Change` for every delete/modify (the
  order's queue place before the message included) and lets the
  :class:`~bookengine.analytics.classify.FillClassifier` decide fill or cancel against the
  public ``trade`` frames of the same stream;
* follows tracked orders (:meth:`BookAnalytics.track`, or every own order announced on the
  private ``executions`` channel): a :class:`~bookengine.analytics.events.QueueChanged`
  whenever the place changes, an :class:`~bookengine.analytics.events.OrderOutcome` when the
  trade join has decided what happened;
* keeps a :class:`~bookengine.analytics.dynamics.QueueFlow` per symbol for rates and fill
  estimates.

The books stay exact and untouched: analytics only reads them (``order``, ``queue_position``,
``orders_arrays``). Cost per level3 message: one extra scan of the frame plus O(orders ahead)
per delete/modify entry and per tracked order of that symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np

from ..errors import BookError, OrderError
from ..kraken.events import BookChanged, Event
from ..kraken.session import KrakenSession
from ..numbers import parse_mantissa
from .classify import (
    CANCEL_LABELS,
    FILL,
    FILL_LABELS,
    MS,
    PARTIAL_FILL,
    REQUEUE,
    Classification,
    FillClassifier,
    L3Change,
    classifications_table,
)
from .dynamics import FillEstimate, QueueFlow
from .events import AnalyticsEvent, OrderOutcome, QueueChanged
from .frames import ExecutionReport, frame_channel, parse_executions, parse_trades
from .tables import Table

SECOND_NS = 1_000_000_000
_KIND_LEVEL3 = 2
_EVENT_ADD, _EVENT_MODIFY, _EVENT_DELETE = 1, 2, 3


class UnknownOrderError(OrderError, KeyError):
    """The order id is not resting in the book(s) asked about."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class QueueInfo(NamedTuple):
    """One order's place in its queue (returned by :func:`queue_position`)."""

    order_id: str
    side: str
    """``"bid"`` or ``"ask"``."""
    price: int
    qty: int
    level_index: int
    """0 for the best level of its side."""
    orders_ahead: int
    qty_ahead: int
    qty_behind: int
    level_orders: int
    level_qty: int
    timestamp_ns: int
    """Kraken's order timestamp (insert or last amend), -1 when absent."""
    time_in_queue_ns: int
    """``now_ns - timestamp_ns``; -1 when either is unknown."""


def queue_position(book: Any, order_id: str, now_ns: int | None = None) -> QueueInfo:
    """Where ``order_id`` stands in its level's queue of an L3 book.

    Args:
        book: an ``L3Book`` (either implementation).
        order_id: Kraken order id.
        now_ns: time for ``time_in_queue_ns`` (ns since the epoch); None: -1.

    Raises:
        UnknownOrderError: the order is not in the book (never rested there, left, or is
            beyond the subscribed depth).

    Cost: O(orders ahead of it).
    """
    info = book.order(order_id)
    position = book.queue_position(order_id)
    if info is None or position is None:
        raise UnknownOrderError(f"{book.symbol}: order {order_id} is not in the book")
    stamp = info.timestamp_ns
    age = now_ns - stamp if now_ns is not None and stamp >= 0 else -1
    return QueueInfo(
        order_id,
        info.side,
        info.price,
        info.qty,
        info.level_index,
        position.orders_ahead,
        position.qty_ahead,
        position.qty_behind,
        position.level_orders,
        position.level_qty,
        stamp,
        age,
    )


# -- tracked orders ---------------------------------------------------------------------------

_HISTORY_COLUMNS = (
    "recv_ts_ns",
    "price",
    "qty",
    "orders_ahead",
    "qty_ahead",
    "qty_behind",
    "level_orders",
    "level_qty",
)


@dataclass
class TrackedOrder:
    """One followed order: its latest place, its history, and what became of it."""

    order_id: str
    symbol: str
    side: str = ""
    price: int = 0
    qty: int = 0
    own: bool = False
    """Announced on the private ``executions`` channel (one of the user's orders)."""
    status: str = "pending"
    """``pending`` (not in the book yet), ``resting``, ``leaving`` (deleted, outcome awaited),
    or a final :data:`~bookengine.analytics.events.OUTCOMES` value."""
    entered_ns: int = -1
    """When it entered its current queue (Kraken timestamp, else first seen receive time)."""
    first_seen_ns: int = -1
    filled_qty: int = 0
    """Filled quantity according to the trade join."""
    filled_ahead_qty: int = 0
    """Quantity ahead of it that left by fills (the front depleting)."""
    cancelled_ahead_qty: int = 0
    """Quantity ahead of it that left by cancels and reductions."""
    exec_filled: str | None = None
    """Own orders: ``cum_qty`` as the executions channel last reported it (exact text)."""
    exec_status: str | None = None
    """Own orders: the executions channel's last ``order_status``."""
    outcome: OrderOutcome | None = None
    """The final outcome, once decided."""
    last: QueueChanged | None = None
    _rows: dict[str, list[int]] = field(
        default_factory=lambda: {name: [] for name in _HISTORY_COLUMNS}, repr=False
    )

    @property
    def active(self) -> bool:
        return self.status in ("pending", "resting")

    def _append(self, event: QueueChanged) -> None:
        self.last = event
        rows = self._rows
        for name in _HISTORY_COLUMNS:
            rows[name].append(getattr(event, name))

    def history(self) -> Table:
        """Every place it held, one row per change: new int64 arrays.

        Columns: ``recv_ts_ns``, ``price``, ``qty``, ``orders_ahead``, ``qty_ahead``,
        ``qty_behind``, ``level_orders``, ``level_qty`` (mantissas for prices and quantities).
        """
        return Table({name: np.array(v, dtype=np.int64) for name, v in self._rows.items()})


@dataclass
class AnalyticsStats:
    """Counters of a :class:`BookAnalytics`."""

    frames: int = 0
    level3_messages: int = 0
    trades: int = 0
    executions: int = 0
    changes: int = 0
    refused_messages: int = 0
    """level3 messages the session refused (their changes were dropped with them)."""
    bad_frames: int = 0
    """trade/executions frames analytics could not read (the session judges the others)."""


@dataclass(slots=True)
class _Entry:
    side: str
    event: int
    order_id: str
    price: int
    qty: int


@dataclass(slots=True)
class _Pending:
    """A level3 message scanned before the session applied it."""

    symbol: str
    is_snapshot: bool
    timestamp_ns: int
    changes: list[L3Change]
    ahead_of: dict[int, list[str]]
    """index into ``changes`` -> tracked order ids it was ahead of."""
    deleted: set[str]
    moved: dict[str, int]
    """order id -> new price, for orders re-queued by this message."""
    added: list[_Entry]


class BookAnalytics:
    """Queue positions, fill/cancel decisions and queue flow over a stream of frames.

    Args:
        session: the default session for :meth:`receive` (a feed passes its own per frame).
        match_window_s, trade_wait_s, trade_keep_s: the trade join's windows
            (:class:`~bookengine.analytics.classify.FillClassifier`).
        flow_window_s: window of :class:`~bookengine.analytics.dynamics.QueueFlow` rates.
        track_own_orders: follow every open order the ``executions`` channel announces.
        keep_classifications: keep every decision in :attr:`classifications` (a research
            replay wants them; a long live run may not: the flow and the tracked orders get
            them either way).
        on_event: called with every analytics event as it is made.

    Usage over a capture::

        analytics = BookAnalytics()
        for event in analytics.replay(["capture.jsonl"]):
            ...
        print(analytics.classifications_table().to_pandas())
    """

    def __init__(
        self,
        session: KrakenSession | None = None,
        *,
        match_window_s: float = 0.05,
        trade_wait_s: float = 0.5,
        trade_keep_s: float = 2.0,
        flow_window_s: float = 60.0,
        track_own_orders: bool = True,
        keep_classifications: bool = True,
        on_event: Callable[[AnalyticsEvent], None] | None = None,
    ) -> None:
        self.session = session
        self.classifier = FillClassifier(
            int(match_window_s * SECOND_NS),
            int(trade_wait_s * SECOND_NS),
            int(trade_keep_s * SECOND_NS),
        )
        self.flow_window_ns = int(flow_window_s * SECOND_NS)
        self.track_own_orders = track_own_orders
        self.keep_classifications = keep_classifications
        self.on_event = on_event
        self.classifications: list[Classification] = []
        self.tracked: dict[str, TrackedOrder] = {}
        """Every order tracked so far (active and finished), by id."""
        self._following: dict[str, dict[str, TrackedOrder]] = {}
        """symbol -> tracked orders not finished yet (pending, resting, leaving)."""
        self.own_orders: dict[str, ExecutionReport] = {}
        """Own orders by id: the latest executions record of each."""
        self.stats = AnalyticsStats()
        self._books: dict[str, Any] = {}
        self._l2_books: dict[str, Any] = {}
        self._flows: dict[str, QueueFlow] = {}
        self._scanners: dict[str, Any] = {}
        self._parsers: dict[str, Callable[[str, int], int]] = {}
        self._sessions: list[KrakenSession] = []
        self._ahead_of: dict[int, tuple[L3Change, list[str]]] = {}
        self._outbox: list[AnalyticsEvent] = []
        self._seq = 0
        self._now = -1

    # -- feeding -------------------------------------------------------------------------------

    def receive(
        self, frame: bytes | str, recv_ts_ns: int = -1, session: KrakenSession | None = None
    ) -> list[Event | AnalyticsEvent]:
        """Apply one frame through ``session`` (or the default one) and analyse it.

        Returns:
            The session's events for the frame followed by the analytics events it caused.

        Raises:
            ValueError: no session given and none by default.
        """
        session = session or self.session
        if session is None:
            raise ValueError("give a session (BookAnalytics(session=...) or receive(..., session))")
        return self.process(frame, recv_ts_ns, session, session.receive)

    def process(
        self,
        frame: bytes | str,
        recv_ts_ns: int,
        session: KrakenSession,
        apply: Callable[[bytes | str, int], list[Event]],
    ) -> list[Event | AnalyticsEvent]:
        """:meth:`receive` with the session's apply step given (for wrappers of a session)."""
        self.stats.frames += 1
        if session not in self._sessions:
            self._sessions.append(session)
        data = frame.encode() if isinstance(frame, str) else bytes(frame)
        pending = self._before_level3(data, session) if b'"level3"' in data else None
        events = apply(frame, recv_ts_ns)
        for event in events:
            if isinstance(event, BookChanged):
                book_channel, _, symbol = event.key.partition(":")
                if book_channel == "level3":
                    self._books[symbol] = event.book
                else:
                    self._l2_books[symbol] = event.book
        if recv_ts_ns >= 0:
            self._now = max(self._now, recv_ts_ns)
        out = self._outbox
        self._outbox = []
        if pending is not None:
            out.extend(self._after_level3(pending, events, recv_ts_ns))
        else:
            channel = frame_channel(data)
            if channel == "trade":
                self._on_trades(data, recv_ts_ns, session)
            elif channel == "executions":
                out.extend(self._on_executions(data, recv_ts_ns))
        out.extend(self._decide(self.classifier.poll(recv_ts_ns if recv_ts_ns >= 0 else None)))
        if self.on_event is not None:
            for made in out:
                self.on_event(made)
        return [*events, *out]

    def flush(self) -> list[AnalyticsEvent]:
        """Decide every pending fill/cancel now (end of a replay) and return the events."""
        out = self._outbox
        self._outbox = []
        out.extend(self._decide(self.classifier.flush()))
        if self.on_event is not None:
            for event in out:
                self.on_event(event)
        return out

    def replay(
        self,
        paths: Iterable[str | Path],
        session: KrakenSession | None = None,
        *,
        flush: bool = True,
    ) -> Iterator[Event | AnalyticsEvent]:
        """Replay captures through a session with this analytics in between.

        Uses :func:`bookengine.replay.replay_events` (headers, checkpoints and torn lines are
        handled there); every frame goes through :meth:`process`.

        Args:
            session: the session to replay into (default: a new ``KrakenSession``).
            flush: decide what is still pending at the end (see :meth:`flush`).

        Yields:
            The session's and the analytics' events, in order.
        """
        from ..replay import replay_events

        base = session if session is not None else KrakenSession()
        hooked = cast(KrakenSession, _HookedSession(base, self))
        for _, events in replay_events(paths, hooked):
            yield from events
        if flush:
            yield from self.flush()

    # -- level3 messages -------------------------------------------------------------------------

    def _scanner(self, session: KrakenSession) -> Any:
        scanner = self._scanners.get(session.impl.name)
        if scanner is None:
            scanner = self._scanners[session.impl.name] = session.impl.FrameScanner()
        return scanner

    def _book_of(self, session: KrakenSession, symbol: str) -> Any:
        # The session replaces a book object only through a snapshot, whose BookChanged
        # refreshes this cache before any update can need it.
        book = self._books.get(symbol)
        return book if book is not None else session.book(f"level3:{symbol}")

    def _before_level3(self, data: bytes, session: KrakenSession) -> _Pending | None:
        scanner = self._scanner(session)
        try:
            if scanner.scan(data) != _KIND_LEVEL3:
                return None
        except BookError:
            return None  # the session reports it
        symbol = scanner.symbol
        stamp = scanner.timestamp_ns
        if scanner.is_snapshot:
            return _Pending(symbol, True, stamp, [], {}, set(), {}, [])
        book = self._book_of(session, symbol)
        if book is None:
            return _Pending(symbol, False, stamp, [], {}, set(), {}, [])
        pp, qp = book.price_precision, book.qty_precision
        parse = self._parser(session)
        entries: list[_Entry] = []
        sides = (("bid", scanner.bids), ("ask", scanner.asks))
        deleting = {
            item.order_id for _, items in sides for item in items if item.event == _EVENT_DELETE
        }
        try:
            for side, items in sides:
                for item in items:
                    # Numbers are parsed only where used: deletes carry nothing new, adds
                    # matter only when they re-add a deleted id (a requeue).
                    event = item.event
                    if event == _EVENT_MODIFY or (
                        event == _EVENT_ADD and item.order_id in deleting
                    ):
                        price, qty = parse(item.price, pp), parse(item.qty, qp)
                    else:
                        price = qty = -1
                    entries.append(_Entry(side, event, item.order_id, price, qty))
        except (BookError, TypeError):
            # A malformed entry: the session refuses the message (counted after it).
            return _Pending(symbol, False, stamp, [], {}, set(), {}, [])
        added = [e for e in entries if e.event == _EVENT_ADD]
        added_ids = {e.order_id: e for e in added}
        changes: list[L3Change] = []
        deleted: set[str] = set()
        moved: dict[str, int] = {}
        tracked_here = [
            t for t in self._following.get(symbol, {}).values() if t.status == "resting"
        ]
        for entry in entries:
            if entry.event == _EVENT_ADD:
                continue
            info = book.order(entry.order_id)
            position = book.queue_position(entry.order_id)
            if info is None or position is None:
                # An unknown order: the session refuses the message (counted after it).
                return _Pending(symbol, False, stamp, [], {}, set(), {}, [])
            new_price: int | None = None
            qty_after = 0 if entry.event == _EVENT_DELETE else entry.qty
            if entry.event == _EVENT_DELETE:
                readded = added_ids.get(entry.order_id)
                if readded is not None:
                    new_price, qty_after = readded.price, readded.qty
                else:
                    deleted.add(entry.order_id)
            elif entry.qty == 0:
                deleted.add(entry.order_id)  # Kraken: modify to 0 removes the order
            elif entry.price != info.price:
                new_price = entry.price
            if new_price is not None:
                moved[entry.order_id] = new_price
            changes.append(
                L3Change(
                    symbol,
                    entry.order_id,
                    entry.side,
                    info.price,
                    "delete" if entry.event == _EVENT_DELETE else "modify",
                    info.qty,
                    qty_after,
                    stamp,
                    -1,
                    position.orders_ahead,
                    position.qty_ahead,
                    True,
                    new_price,
                    info.level_index,
                )
            )
        # Front: every order ahead also left in this message (a sweep fills front first).
        gone_ahead: dict[tuple[str, int], list[int]] = {}
        for change in changes:
            if change.qty_after == 0 or change.new_price is not None:
                gone_ahead.setdefault((change.side, change.price), []).append(change.orders_ahead)
        for change in changes:
            ahead = gone_ahead.get((change.side, change.price), [])
            change.front = sum(1 for a in ahead if a < change.orders_ahead) == change.orders_ahead
        ahead_of: dict[int, list[str]] = {}
        if tracked_here:
            positions = {
                t.order_id: (t.side, t.price, t.last.orders_ahead if t.last else 0)
                for t in tracked_here
            }
            for index, change in enumerate(changes):
                ids = [
                    order_id
                    for order_id, (side, price, orders_ahead) in positions.items()
                    if side == change.side
                    and price == change.price
                    and change.orders_ahead < orders_ahead
                    and order_id != change.order_id
                ]
                if ids:
                    ahead_of[index] = ids
        return _Pending(symbol, False, stamp, changes, ahead_of, deleted, moved, added)

    def _after_level3(
        self, pending: _Pending, events: Sequence[Event], recv_ts_ns: int
    ) -> list[AnalyticsEvent]:
        key = f"level3:{pending.symbol}"
        changed = next((e for e in events if isinstance(e, BookChanged) and e.key == key), None)
        if changed is None:
            self.stats.refused_messages += 1
            return []
        self.stats.level3_messages += 1
        book = changed.book
        symbol = pending.symbol
        flow = self.flow(symbol)
        flow.observe(recv_ts_ns)
        out: list[AnalyticsEvent] = []
        if not pending.is_snapshot:
            self._seq += 1
            for change in pending.changes:
                change.recv_ts_ns = recv_ts_ns
                change.seq = self._seq
            for index, ids in pending.ahead_of.items():
                change = pending.changes[index]
                self._ahead_of[id(change)] = (change, ids)
            self.stats.changes += len(pending.changes)
            out.extend(self._decide(self.classifier.add_changes(pending.changes)))
            for entry in pending.added:
                flow.add_add(recv_ts_ns, entry.side)
        for tracked in list(self._following.get(symbol, {}).values()):
            if tracked.status == "pending":
                if tracked.order_id in book:
                    out.extend(self._start(tracked, book, recv_ts_ns, "tracked"))
                continue
            if tracked.status != "resting":
                continue
            out.extend(self._refresh(tracked, book, pending, recv_ts_ns))
        return out

    def _refresh(
        self, tracked: TrackedOrder, book: Any, pending: _Pending, recv_ts_ns: int
    ) -> list[AnalyticsEvent]:
        order_id = tracked.order_id
        position = book.queue_position(order_id)
        if position is None:
            if pending.is_snapshot:
                return [self._finish(tracked, "unknown", False, recv_ts_ns)]
            if order_id in pending.deleted:
                tracked.status = "leaving"  # the trade join decides: filled or cancelled
                return []
            return [self._finish(tracked, "out_of_view", False, recv_ts_ns)]
        out: list[AnalyticsEvent] = []
        cause = "snapshot" if pending.is_snapshot else "book"
        if order_id in pending.moved:
            info = book.order(order_id)
            out.append(self._outcome(tracked, "moved", False, False, recv_ts_ns))
            tracked.price = info.price
            tracked.entered_ns = info.timestamp_ns if info.timestamp_ns >= 0 else recv_ts_ns
            cause = "moved"
        qty = position.level_qty - position.qty_ahead - position.qty_behind
        last = tracked.last
        if (
            last is not None
            and cause == "book"
            and last.qty == qty
            and last.qty_ahead == position.qty_ahead
            and last.orders_ahead == position.orders_ahead
            and last.level_qty == position.level_qty
            and last.level_orders == position.level_orders
        ):
            return out
        tracked.qty = qty
        out.append(self._changed(tracked, position, recv_ts_ns, cause))
        return out

    def _changed(
        self, tracked: TrackedOrder, position: Any, recv_ts_ns: int, cause: str
    ) -> QueueChanged:
        entered = tracked.entered_ns
        event = QueueChanged(
            tracked.order_id,
            tracked.symbol,
            tracked.side,
            tracked.price,
            position.level_qty - position.qty_ahead - position.qty_behind,
            position.orders_ahead,
            position.qty_ahead,
            position.qty_behind,
            position.level_orders,
            position.level_qty,
            recv_ts_ns - entered if entered >= 0 and recv_ts_ns >= 0 else -1,
            recv_ts_ns,
            cause,
        )
        tracked._append(event)
        return event

    def _start(
        self, tracked: TrackedOrder, book: Any, recv_ts_ns: int, cause: str
    ) -> list[AnalyticsEvent]:
        info = book.order(tracked.order_id)
        position = book.queue_position(tracked.order_id)
        tracked.side = info.side
        tracked.price = info.price
        tracked.qty = info.qty
        tracked.status = "resting"
        now = recv_ts_ns if recv_ts_ns >= 0 else self._now
        tracked.first_seen_ns = now
        tracked.entered_ns = info.timestamp_ns if info.timestamp_ns >= 0 else now
        return [self._changed(tracked, position, now, cause)]

    # -- decisions ---------------------------------------------------------------------------------

    def _decide(self, decisions: list[Classification]) -> list[AnalyticsEvent]:
        out: list[AnalyticsEvent] = []
        for decision in decisions:
            change = decision.change
            if self.keep_classifications:
                self.classifications.append(decision)
            self.flow(change.symbol).add_classification(decision)
            attributed = self._ahead_of.pop(id(change), None)
            if attributed is not None:
                for order_id in attributed[1]:
                    tracked = self.tracked.get(order_id)
                    if tracked is None:
                        continue
                    if decision.label in FILL_LABELS:
                        tracked.filled_ahead_qty += change.removed
                    elif decision.label in CANCEL_LABELS:
                        tracked.cancelled_ahead_qty += change.removed
            tracked = self.tracked.get(change.order_id)
            if tracked is None or decision.label == REQUEUE:
                continue
            if decision.is_fill:
                tracked.filled_qty += change.removed
            when = change.recv_ts_ns
            if tracked.status == "leaving" and change.qty_after == 0:
                if decision.label == FILL:
                    outcome = "filled"
                elif tracked.filled_qty > 0:
                    outcome = "partially_filled"
                else:
                    outcome = "cancelled"
                out.append(self._finish(tracked, outcome, decision.ambiguous, when))
            elif decision.label == PARTIAL_FILL and tracked.active:
                out.append(
                    self._outcome(tracked, "partially_filled", False, decision.ambiguous, when)
                )
        return out

    def _outcome(
        self, tracked: TrackedOrder, outcome: str, final: bool, ambiguous: bool, recv_ts_ns: int
    ) -> OrderOutcome:
        entered = tracked.entered_ns
        remaining = 0 if final else tracked.qty
        return OrderOutcome(
            tracked.order_id,
            tracked.symbol,
            outcome,
            final,
            tracked.filled_qty,
            remaining,
            ambiguous,
            recv_ts_ns,
            recv_ts_ns - entered if entered >= 0 and recv_ts_ns >= 0 else -1,
        )

    def _finish(
        self, tracked: TrackedOrder, outcome: str, ambiguous: bool, recv_ts_ns: int
    ) -> OrderOutcome:
        event = self._outcome(tracked, outcome, True, ambiguous, recv_ts_ns)
        tracked.status = outcome
        tracked.outcome = event
        following = self._following.get(tracked.symbol)
        if following is not None and following.get(tracked.order_id) is tracked:
            del following[tracked.order_id]
        return event

    def _parser(self, session: KrakenSession) -> Callable[[str, int], int]:
        parser = self._parsers.get(session.impl.name)
        if parser is None:
            parser = parse_mantissa
            if session.impl.name == "cython":  # the compiled parser: same rules, faster
                from .._core.scan import parse_number

                parser = parse_number
            self._parsers[session.impl.name] = parser
        return parser

    # -- trades and own orders -----------------------------------------------------------------

    def _precisions(self, session: KrakenSession) -> Callable[[str], tuple[int, int] | None]:
        def lookup(symbol: str) -> tuple[int, int] | None:
            book = self._books.get(symbol)
            if book is not None:
                return int(book.price_precision), int(book.qty_precision)
            instrument = session.instruments.get(symbol)
            if instrument is None:
                return None
            return instrument.price_precision, instrument.qty_precision

        return lookup

    def _on_trades(self, data: bytes, recv_ts_ns: int, session: KrakenSession) -> None:
        try:
            trades = parse_trades(data, recv_ts_ns, self._precisions(session))
        except (BookError, TypeError):
            self.stats.bad_frames += 1
            return
        if trades:
            self.stats.trades += len(trades)
            self.classifier.add_trades(trades)

    def _on_executions(self, data: bytes, recv_ts_ns: int) -> list[AnalyticsEvent]:
        try:
            reports = parse_executions(data, recv_ts_ns)
        except BookError:
            self.stats.bad_frames += 1
            return []
        out: list[AnalyticsEvent] = []
        for report in reports:
            self.stats.executions += 1
            previous = self.own_orders.get(report.order_id)
            symbol = report.symbol or (previous.symbol if previous is not None else None)
            self.own_orders[report.order_id] = report
            tracked = self.tracked.get(report.order_id)
            if tracked is not None:
                tracked.own = True
                if report.order_status:
                    tracked.exec_status = report.order_status
                if report.cum_qty is not None:
                    tracked.exec_filled = str(report.cum_qty)
            open_now = report.exec_type in ("new", "trade") and report.order_status in (
                "new",
                "partially_filled",
                "",
            )
            if tracked is not None and tracked.status == "pending":
                # Never rested (filled or cancelled before its level3 add): the private
                # channel is the only witness, and it is exact.
                if report.exec_type == "filled":
                    tracked.filled_qty = tracked.qty
                    out.append(self._finish(tracked, "filled", False, recv_ts_ns))
                elif report.exec_type in ("canceled", "expired"):
                    out.append(self._finish(tracked, "cancelled", False, recv_ts_ns))
            if (
                self.track_own_orders
                and open_now
                and tracked is None
                and symbol is not None
                and report.order_type != "market"
            ):
                out.extend(self._track(report.order_id, symbol, own=True, recv_ts_ns=recv_ts_ns))
                mine = self.tracked.get(report.order_id)
                if mine is not None:
                    mine.exec_status = report.order_status or None
                    mine.exec_filled = None if report.cum_qty is None else str(report.cum_qty)
        return out

    # -- public queries ------------------------------------------------------------------------

    def flow(self, symbol: str) -> QueueFlow:
        """The :class:`QueueFlow` of ``symbol`` (created empty on first use)."""
        flow = self._flows.get(symbol)
        if flow is None:
            flow = self._flows[symbol] = QueueFlow(self.flow_window_ns)
        return flow

    def book(self, symbol: str) -> Any:
        """The latest level3 book of ``symbol`` seen in the stream, or None."""
        return self._books.get(symbol)

    def l2_book(self, symbol: str) -> Any:
        """The latest ``book`` (L2) of ``symbol`` seen in the stream, or None."""
        return self._l2_books.get(symbol)

    def queue_position(self, order_id: str, symbol: str | None = None) -> QueueInfo:
        """:func:`queue_position` in the level3 book that holds ``order_id``.

        ``time_in_queue_ns`` is measured at the latest receive time seen.

        Raises:
            UnknownOrderError: no level3 book of the stream holds the order.
        """
        book = self._find(order_id, symbol)
        return queue_position(book, order_id, self._now if self._now >= 0 else None)

    def _find(self, order_id: str, symbol: str | None) -> Any:
        if symbol is None:
            books = list(self._books.values())
        else:
            books = [self._books[symbol]] if symbol in self._books else []
        for book in books:
            if order_id in book:
                return book
        where = f"the level3 book of {symbol}" if symbol is not None else "any level3 book"
        raise UnknownOrderError(f"order {order_id} is not resting in {where}")

    def track(self, order_id: str, symbol: str | None = None) -> TrackedOrder:
        """Follow ``order_id``: a :class:`QueueChanged` at every change, then its outcome.

        Args:
            symbol: where the order will rest. With it, an order not (yet) in the book is
                tracked from the moment it is added (an own order just sent); without it,
                the order must be resting in a level3 book of the stream.

        Raises:
            UnknownOrderError: no symbol given and no book holds the order.
        """
        self._outbox.extend(self._track(order_id, symbol, own=False, recv_ts_ns=self._now))
        return self.tracked[order_id]

    def _track(
        self, order_id: str, symbol: str | None, *, own: bool, recv_ts_ns: int
    ) -> list[AnalyticsEvent]:
        existing = self.tracked.get(order_id)
        if existing is not None and existing.active:
            existing.own = existing.own or own
            return []
        if symbol is None:
            book = self._find(order_id, None)
            symbol = str(book.symbol)
        tracked = TrackedOrder(order_id, symbol, own=own)
        self.tracked[order_id] = tracked
        self._following.setdefault(symbol, {})[order_id] = tracked
        book = self._books.get(symbol)
        if book is not None and order_id in book:
            return self._start(tracked, book, recv_ts_ns, "tracked")
        return []

    def following(self, symbol: str | None = None) -> list[TrackedOrder]:
        """Tracked orders not finished yet (pending, resting, or awaiting their outcome).

        Cost: O(such orders), not O(every order ever tracked).
        """
        if symbol is not None:
            return list(self._following.get(symbol, {}).values())
        return [t for orders in self._following.values() for t in orders.values()]

    def untrack(self, order_id: str) -> None:
        """Stop following ``order_id`` (its record is dropped).

        Raises:
            UnknownOrderError: it is not tracked.
        """
        tracked = self.tracked.pop(order_id, None)
        if tracked is None:
            raise UnknownOrderError(f"order {order_id} is not tracked")
        self._following.get(tracked.symbol, {}).pop(order_id, None)

    def fill_estimate(self, order_id: str, horizon_s: float) -> FillEstimate:
        """Expected time to fill and probability of fill within ``horizon_s`` for a resting
        order, from its queue place and its symbol's recent flow (see
        :mod:`bookengine.analytics.dynamics` for the model and its assumptions).

        Raises:
            UnknownOrderError: no level3 book holds the order.
        """
        info = self.queue_position(order_id)
        book = self._find(order_id, None)
        return self.flow(str(book.symbol)).fill_estimate(
            info.side, info.level_index, info.qty_ahead, info.qty, info.level_qty, horizon_s
        )

    def classifications_table(self) -> Table:
        """:attr:`classifications` as columns (see :func:`classifications_table`)."""
        return classifications_table(self.classifications)


class _HookedSession:
    """A session whose ``receive`` goes through :meth:`BookAnalytics.process`.

    Replay code calls ``session.receive``; this proxy lets it feed analytics without knowing.
    Every other attribute is the wrapped session's own (same books, same counters).
    """

    def __init__(self, base: KrakenSession, analytics: BookAnalytics) -> None:
        self._base = base
        self._analytics = analytics

    def receive(self, frame: bytes | str, recv_ts_ns: int = -1) -> list[Any]:
        return self._analytics.process(frame, recv_ts_ns, self._base, self._base.receive)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


__all__ = [
    "MS",
    "AnalyticsStats",
    "BookAnalytics",
    "QueueInfo",
    "TrackedOrder",
    "UnknownOrderError",
    "queue_position",
]
