"""Where orders stand in their queues, live or over a replay, and what became of them.

:func:`queue_position` answers for one order of one L3 book. :class:`BookAnalytics` follows a
stream: it reads what a :class:`~bookengine.kraken.session.KrakenSession` reports
(:meth:`BookAnalytics.consume` of the session's events; ``analytics.receive(frame, recv_ts_ns,
session)`` does ``session.receive`` then ``consume``) and never reads a frame itself. The
session records level3 effects for it: each level3 ``BookChanged`` says what every entry did
to the queues (:class:`~bookengine.kraken.events.OrderEffect`). From that it

* builds an :class:`~bookengine.analytics.classify.L3Change` for every delete/modify (the
  order's queue place before the change included) and lets the
  :class:`~bookengine.analytics.classify.FillClassifier` decide fill or cancel against the
  public trades (``Trades`` events) of the same stream;
* follows tracked orders (:meth:`BookAnalytics.track`, or every own order announced on the
  private ``executions`` channel, ``Executions`` events): a
  :class:`~bookengine.analytics.events.QueueChanged` whenever the place changes, an
  :class:`~bookengine.analytics.events.OrderOutcome` when the trade join has decided what
  happened;
* keeps a :class:`~bookengine.analytics.dynamics.QueueFlow` per symbol for rates and fill
  estimates.

The books stay exact and untouched: analytics only reads them (``order``, ``queue_position``,
``orders_arrays``). Cost per level3 message: O(1) per effect (the book measured the queue
places while applying the message) plus O(orders ahead) per tracked order of that symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..capture import CaptureRecord
from ..errors import OrderError
from ..instruments import Instruments
from ..kraken.events import (
    BookChanged,
    BookInvalid,
    ChecksumMismatch,
    Event,
    ExecutionReport,
    Executions,
    Trades,
)
from ..kraken.session import KrakenSession
from ..units import with_units
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
    decisions_table,
)
from .dynamics import FillEstimate, QueueFlow
from .events import AnalyticsEvent, OrderOutcome, QueueChanged
from .tables import Table

SECOND_NS = 1_000_000_000


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
    price_precision: int | None = None
    """The symbol's scales (known once the order is seen in its book)."""
    qty_precision: int | None = None
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
        """Every place it held, one row per change (new arrays).

        Columns: ``time`` (UTC datetime64[ns]) and ``recv_ts_ns``; ``price``, ``qty``,
        ``qty_ahead``, ``qty_behind``, ``level_qty`` float64 in real units beside their exact
        int64 mantissas (``price_m``...; only the mantissas while the scales are not known);
        ``orders_ahead``, ``level_orders`` int64.
        """
        exact = {name: np.array(v, dtype=np.int64) for name, v in self._rows.items()}
        columns, scales = with_units(
            exact,
            prices=("price",),
            qtys=("qty", "qty_ahead", "qty_behind", "level_qty"),
            price_scale=self.price_precision,
            qty_scale=self.qty_precision,
            times={"recv_ts_ns": "time"},
        )
        return Table(columns, scales=scales)


@dataclass
class AnalyticsStats:
    """Counters of a :class:`BookAnalytics`."""

    frames: int = 0
    """Calls of :meth:`BookAnalytics.consume` (one per frame live); after a compiled
    :meth:`BookAnalytics.run`, the frames the session read."""
    level3_messages: int = 0
    trades: int = 0
    executions: int = 0
    changes: int = 0
    refused_messages: int = 0
    """level3 messages the session refused (their changes were dropped with them)."""


@dataclass(slots=True)
class _Message:
    """What one applied level3 message did, read from its effects."""

    is_snapshot: bool
    deleted: set[str]
    moved: dict[str, int]
    """order id -> new price, for orders re-queued by this message."""


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

    Usage over a capture, every decision at once (the compiled trade join: see :meth:`run`)::

        analytics = BookAnalytics().run(["capture.jsonl"])
        print(analytics.classifications_table().to_pandas())

    or event by event (orders followed, queue places as they change)::

        analytics = BookAnalytics()
        for event in analytics.replay(["capture.jsonl"]):
            ...
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
        self._windows = (
            int(match_window_s * SECOND_NS),
            int(trade_wait_s * SECOND_NS),
            int(trade_keep_s * SECOND_NS),
        )
        self.flow_window_ns = int(flow_window_s * SECOND_NS)
        self.track_own_orders = track_own_orders
        self.keep_classifications = keep_classifications
        self.on_event = on_event
        self.run_path = ""
        """How the last :meth:`run` went: ``"join"`` (the compiled trade join) or ``"events:
        <why>"`` (the event path, and why)."""
        self._reset()

    def _reset(self) -> None:
        """Everything learnt from a stream forgotten (the settings kept)."""
        self.classifier = FillClassifier(*self._windows)
        self._classifications: list[Classification] = []
        self._joined: dict[str, Any] | None = None
        """Decisions of the compiled join not made into objects yet (see classifications)."""
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
        self._sessions: list[KrakenSession] = []
        self._ahead_of: dict[int, tuple[L3Change, list[str]]] = {}
        self._outbox: list[AnalyticsEvent] = []
        self._seq = 0
        self._now = -1

    @property
    def classifications(self) -> list[Classification]:
        """Every decision so far, in decision order (with ``keep_classifications``).

        After :meth:`run` the decisions are kept as columns and made into objects on first
        use here; :meth:`classifications_table` reads the columns without making them.
        """
        if self._joined is not None:
            self._classifications.extend(_joined_classifications(self._joined))
            self._joined = None
        return self._classifications

    # -- feeding -------------------------------------------------------------------------------

    def receive(
        self, frame: bytes | str, recv_ts_ns: int = -1, session: KrakenSession | None = None
    ) -> list[Event | AnalyticsEvent]:
        """Apply one frame through ``session`` (or the default one) and analyse its events.

        Returns:
            The session's events for the frame followed by the analytics events they caused.

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
        """:meth:`receive` with the session's apply step given (the feed passes its own).

        The first time a session is seen it is switched to record level3 effects
        (:meth:`KrakenSession.record_effects`): analytics reads them instead of the frame.
        """
        if session not in self._sessions:
            self._sessions.append(session)
            session.record_effects(True)
        events = apply(frame, recv_ts_ns)
        return [*events, *self.consume(events, recv_ts_ns)]

    def consume(
        self, events: Sequence[Event], recv_ts_ns: int | None = None
    ) -> list[AnalyticsEvent]:
        """Analyse the events a session produced for one frame; return the analytics events.

        Reads level3 ``BookChanged`` events (with ``effects``: the session must record them,
        ``KrakenSession(level3_effects=True)``), ``Trades``, ``Executions``, and the refusals
        of level3 messages (``BookInvalid``, ``ChecksumMismatch``); never a frame.

        Args:
            recv_ts_ns: the frame's receive time: pending fill/cancel decisions whose wait is
                over are made at it (call once per frame, even one without events, for the
                decisions to come at the same frames as live). None: the latest receive time
                among ``events``.
        """
        self.stats.frames += 1
        if recv_ts_ns is None:
            recv_ts_ns = max((getattr(e, "recv_ts_ns", -1) for e in events), default=-1)
        if recv_ts_ns >= 0:
            self._now = max(self._now, recv_ts_ns)
        out = self._outbox
        self._outbox = []
        # Each event is taken as its own frame: what is due at its receive time is decided
        # first, from what came before it; then its data is added (and what it settles, e.g. a
        # trade moving the watermark, decided). So the decisions do not depend on how frames
        # are grouped into calls (one per frame live, several per call in a replay).
        for event in events:
            if isinstance(event, BookChanged):
                key = event.key
                if key.startswith("level3:"):
                    self._books[event.symbol] = event.book
                    out.extend(self._poll(event.recv_ts_ns))
                    out.extend(self._on_level3(event, event.recv_ts_ns))
                    out.extend(self._poll(-1))
                else:
                    self._l2_books[event.symbol] = event.book
            elif isinstance(event, Trades):
                if not event.is_snapshot:  # the last 50 trades on subscribe: history, not news
                    out.extend(self._poll(event.recv_ts_ns))
                    self.stats.trades += len(event.trades)
                    self.classifier.add_trades(event.trades)
                    out.extend(self._poll(-1))
            elif isinstance(event, Executions):
                out.extend(self._on_executions(event.reports, recv_ts_ns))
            elif isinstance(event, BookInvalid | ChecksumMismatch) and event.key.startswith(
                "level3:"
            ):
                self.stats.refused_messages += 1  # its changes were dropped with it
        out.extend(self._poll(recv_ts_ns))
        if self.on_event is not None:
            for made in out:
                self.on_event(made)
        return out

    def _poll(self, recv_ts_ns: int) -> list[AnalyticsEvent]:
        """Decisions due at ``recv_ts_ns`` (-1: at the latest time seen)."""
        return self._decide(self.classifier.poll(recv_ts_ns if recv_ts_ns >= 0 else None))

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
        instruments: Instruments | None = None,
        precisions: Mapping[str, tuple[int, int]] | None = None,
        symbols: Iterable[str] | None = None,
        on_problem: Callable[[CaptureRecord, str], None] | None = None,
    ) -> Iterator[Event | AnalyticsEvent]:
        """Replay captures and analyse the session's events (a view over
        :class:`bookengine.replay.Replayer`: headers, checkpoints and torn lines are handled
        there); the session records level3 effects.

        Args:
            session: the session to replay into (default: a new ``KrakenSession``).
            flush: decide what is still pending at the end (see :meth:`flush`).
            instruments, precisions, symbols, on_problem: as for
                :class:`~bookengine.replay.Replayer` (a capture without the ``instrument``
                channel needs its precisions; other symbols are skipped unread; ``on_problem``
                hears of every torn line, truncated or damaged stream, bad frame and refused
                message).

        Yields:
            The session's and the analytics' events, in order.
        """
        from ..replay import Replayer, effects_pass

        consume = self.consume
        replayer = Replayer(
            paths,
            instruments=instruments,
            precisions=precisions,
            symbols=symbols,
            on_problem=on_problem,
            progress=False,
        )
        for recv_ts_ns, events in effects_pass(replayer, session):
            yield from events
            yield from consume(events, recv_ts_ns)
        if flush:
            yield from self.flush()

    def run(
        self,
        paths: Iterable[str | Path],
        session: KrakenSession | None = None,
        *,
        instruments: Instruments | None = None,
        precisions: Mapping[str, tuple[int, int]] | None = None,
        symbols: Iterable[str] | None = None,
        on_problem: Callable[[CaptureRecord, str], None] | None = None,
    ) -> BookAnalytics:
        """Replay captures and analyse them to the end: the decisions, counters, flows and
        books :meth:`replay` would leave, without an event per message.

        With the compiled core and nothing that needs Python per message, the line reader hands
        every level3 message and trade frame straight to the compiled trade join
        (:class:`bookengine._core.tradejoin.TradeJoin`), which decides as :meth:`replay` does
        (the differential tests hold the two together). Otherwise (the pure-Python reference,
        orders followed, ``on_event``, a ``session`` given, a fresh analytics not given) this is
        :meth:`replay` consumed to the end. A capture with own orders on the ``executions``
        channel while ``track_own_orders`` is on is followed on that path too: the run starts
        over there when the first such frame appears.

        Args:
            session: replay into this session (the event path).
            instruments, precisions, symbols, on_problem: as for :meth:`replay`.

        Returns:
            ``self``: read :attr:`classifications`, :meth:`classifications_table`,
            :meth:`flow`, :attr:`stats`, :attr:`classifier` ``.stats``.
        """
        from .._impl import implementation
        from ..replay import Replayer

        paths = list(paths)
        options: dict[str, Any] = {
            "instruments": instruments,
            "precisions": precisions,
            "symbols": symbols,
            "on_problem": on_problem,
        }
        join_type = implementation().TradeJoin
        if join_type is None:
            why = "the pure-Python reference runs"
        elif session is not None:
            why = "a session was given"
        elif self.on_event is not None:
            why = "on_event wants every event"
        elif self.stats != AnalyticsStats() or self.tracked or self._sessions:
            why = "this analytics has consumed a stream or follows orders already"
        else:
            why = ""
        if why or join_type is None:
            return self._run_events(paths, session, why, options)
        match_window_ns, wait_ns, keep_ns = self._windows
        join = join_type(
            match_window_ns, wait_ns, keep_ns, self.flow_window_ns, self.keep_classifications
        )
        replayer = Replayer(paths, progress=False, **options)
        run = replayer.new_pass(emit=False, trades=False, level3_effects=True)
        if run.session.impl.TradeJoin is None:
            why = "the replay runs on the pure-Python reference"
            return self._run_events(paths, None, why, options)
        run.session.set_sink(join)
        try:
            for record, events in run.steps():
                # Lines the session read itself (snapshots, control frames, other layouts):
                # their events, handed to the join as the reader hands it the rest.
                for event in events:
                    if isinstance(event, BookChanged):
                        if event.key.startswith("level3:"):
                            join.level3(
                                event.symbol, event.book, event.recv_ts_ns, event.is_snapshot
                            )
                    elif isinstance(event, Trades):
                        if not event.is_snapshot:
                            join.add_trades(event.symbol, event.trades, event.recv_ts_ns)
                    elif isinstance(event, Executions):
                        if self.track_own_orders:
                            raise _FollowOrders
                        self._on_executions(event.reports, record.recv_ts_ns)
                    elif isinstance(event, BookInvalid | ChecksumMismatch) and event.key.startswith(
                        "level3:"
                    ):
                        self.stats.refused_messages += 1
            join.flush()
        except _FollowOrders:
            self._reset()
            return self._run_events(paths, None, "the capture has own orders to follow", options)
        finally:
            run.session.set_sink(None)
        self._absorb(join, run.session)
        self.run_path = "join"
        return self

    def _run_events(
        self,
        paths: list[str | Path],
        session: KrakenSession | None,
        why: str,
        options: dict[str, Any],
    ) -> BookAnalytics:
        for _ in self.replay(paths, session, **options):
            pass
        self.run_path = f"events: {why}"
        return self

    def _absorb(self, join: Any, session: KrakenSession) -> None:
        """Take over what the compiled join learnt (the state :meth:`replay` would leave)."""
        stats = self.classifier.stats
        stats.trades = join.trades
        stats.changes = join.changes
        stats.decided = join.decided
        stats.ambiguous = join.ambiguous
        stats.unmatched_trades = join.unmatched_trades
        stats.labels = join.labels
        self.stats.frames = session.frames
        self.stats.level3_messages = join.level3_messages
        self.stats.trades = join.trades
        self.stats.changes = join.changes
        for symbol in join.symbols:
            window = join.flow_window(symbol)
            if window is not None:
                columns, first_ns, last_ns = window
                self.flow(symbol)._restore(columns, first_ns, last_ns)
        for state in session.books.values():
            if state.book is not None:
                books = self._books if state.channel == "level3" else self._l2_books
                books[state.symbol] = state.book
        if session.last_recv_ts_ns >= 0:
            self._now = max(self._now, session.last_recv_ts_ns)
        if self.keep_classifications:
            self._joined = join.columns()

    # -- level3 messages -------------------------------------------------------------------------

    def _on_level3(self, changed: BookChanged, recv_ts_ns: int) -> list[AnalyticsEvent]:
        self.stats.level3_messages += 1
        symbol = changed.symbol
        book = changed.book
        flow = self._flows.get(symbol) or self.flow(symbol)
        flow.observe(recv_ts_ns)
        out: list[AnalyticsEvent] = []
        message = _Message(changed.is_snapshot, set(), {})
        if not changed.is_snapshot:
            self._seq += 1
            seq = self._seq
            changes: list[L3Change] = []
            added: list[str] = []
            # Per level: (place, qty before, qty after, left) of the entries seen so far.
            levels: dict[tuple[str, int], list[tuple[int, int, int, bool]]] = {}
            for effect in changed.effects:
                action = effect.action
                if action == "add":
                    added.append(effect.side)
                    continue
                if action == "truncate":
                    continue
                # An effect's place is the one just before its entry; a change's is the one
                # before the message: undo what the earlier entries at its level did.
                ahead, qty_ahead = effect.orders_ahead, effect.qty_ahead
                level_key = (effect.side, effect.price)
                earlier = levels.get(level_key)
                if earlier is None:
                    earlier = levels[level_key] = []
                else:
                    for place, before, after, left in reversed(earlier):
                        if left:
                            if place <= ahead:
                                ahead += 1
                                qty_ahead += before
                        elif place < ahead:
                            qty_ahead += before - after
                earlier.append(
                    (effect.orders_ahead, effect.qty_before, effect.qty_after, action != "modify")
                )
                new_price: int | None = None
                if action == "delete":
                    message.deleted.add(effect.order_id)
                elif action == "requeue":
                    new_price = message.moved[effect.order_id] = effect.new_price
                changes.append(
                    L3Change(
                        symbol,
                        effect.order_id,
                        effect.side,
                        effect.price,
                        effect.event,
                        effect.qty_before,
                        effect.qty_after,
                        effect.message_ts_ns,
                        recv_ts_ns,
                        ahead,
                        qty_ahead,
                        True,
                        new_price,
                        effect.level_index,
                        seq,
                    )
                )
            if changes:
                self._attribute(symbol, changes)
                self.stats.changes += len(changes)
                out.extend(self._decide(self.classifier.add_changes(changes)))
            for side in added:
                flow.add_add(recv_ts_ns, side)
        following = self._following.get(symbol)
        if not following:
            return out
        for tracked in list(following.values()):
            if tracked.status == "pending":
                if tracked.order_id in book:
                    out.extend(self._start(tracked, book, recv_ts_ns, "tracked"))
                continue
            if tracked.status != "resting":
                continue
            out.extend(self._refresh(tracked, book, message, recv_ts_ns))
        return out

    def _attribute(self, symbol: str, changes: list[L3Change]) -> None:
        """Front flags, and which tracked orders each change was ahead of."""
        # Front: every order ahead also left in this message (a sweep fills front first).
        gone_ahead: dict[tuple[str, int], list[int]] = {}
        for change in changes:
            if change.qty_after == 0 or change.new_price is not None:
                gone_ahead.setdefault((change.side, change.price), []).append(change.orders_ahead)
        for change in changes:
            ahead = gone_ahead.get((change.side, change.price), [])
            change.front = sum(1 for a in ahead if a < change.orders_ahead) == change.orders_ahead
        following = self._following.get(symbol)
        if not following:
            return
        positions = {
            t.order_id: (t.side, t.price, t.last.orders_ahead if t.last else 0)
            for t in following.values()
            if t.status == "resting"
        }
        if not positions:
            return
        for change in changes:
            ids = [
                order_id
                for order_id, (side, price, orders_ahead) in positions.items()
                if side == change.side
                and price == change.price
                and change.orders_ahead < orders_ahead
                and order_id != change.order_id
            ]
            if ids:
                self._ahead_of[id(change)] = (change, ids)

    def _refresh(
        self, tracked: TrackedOrder, book: Any, pending: _Message, recv_ts_ns: int
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
        tracked.price_precision = book.price_precision
        tracked.qty_precision = book.qty_precision
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
                self._classifications.append(decision)
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

    # -- trades and own orders -----------------------------------------------------------------

    def _on_executions(
        self, reports: Sequence[ExecutionReport], recv_ts_ns: int
    ) -> list[AnalyticsEvent]:
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
        """:attr:`classifications` as columns (see :func:`classifications_table`), with real
        units from the books' precisions."""
        precisions = {
            symbol: (book.price_precision, book.qty_precision)
            for symbol, book in self._books.items()
            if book is not None
        }
        if self._joined is not None and not self._classifications:
            return decisions_table(_joined_texts(self._joined), precisions)
        return classifications_table(self.classifications, precisions)


class _FollowOrders(Exception):
    """A compiled run met own orders to follow: the run starts over on the event path."""


_SIDES = ("bid", "ask")
_EVENTS = {2: "modify", 3: "delete"}


def _joined_texts(columns: dict[str, Any]) -> dict[str, Any]:
    """The compiled join's columns with their codes as the words of the event path."""
    from .._core.tradejoin import LABEL_WORDS, REASONS

    def words(codes: Any, table: Sequence[str]) -> Any:
        return np.array(table, dtype=object)[codes]

    return {
        **columns,
        "symbol": words(columns["symbol"], columns["symbols"]),
        "side": words(columns["side"], _SIDES),
        "label": words(columns["label"], LABEL_WORDS),
        "reason": words(columns["reason"], REASONS),
    }


def _joined_classifications(columns: dict[str, Any]) -> list[Classification]:
    """The compiled join's decisions as the event path's objects."""
    lists = {
        name: value.tolist() for name, value in _joined_texts(columns).items() if name != "symbols"
    }
    out = []
    for k in range(len(lists["seq"])):
        change = L3Change(
            lists["symbol"][k],
            lists["order_id"][k],
            lists["side"][k],
            lists["price"][k],
            _EVENTS[lists["event"][k]],
            lists["qty_before"][k],
            lists["qty_after"][k],
            lists["timestamp_ns"][k],
            lists["recv_ts_ns"][k],
            lists["orders_ahead"][k],
            lists["qty_ahead"][k],
            lists["front"][k],
            lists["new_price"][k] if lists["requeue"][k] else None,
            lists["level_index"][k],
            lists["seq"][k],
        )
        out.append(
            Classification(
                change,
                lists["label"][k],
                lists["traded_qty"][k],
                lists["trade_ids"][k],
                lists["ambiguous"][k],
                lists["reason"][k],
            )
        )
    return out


__all__ = [
    "MS",
    "AnalyticsStats",
    "BookAnalytics",
    "QueueInfo",
    "TrackedOrder",
    "UnknownOrderError",
    "queue_position",
]
