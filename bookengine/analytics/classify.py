"""Fill or cancel? Join level3 ``delete``/``modify`` events with public trades.

Kraken's level3 channel says that an order left (``delete``) or shrank (``modify``), never why.
A resting order only loses quantity in two ways: a taker traded against it (a trade prints at
its price, on the public ``trade`` channel, with the maker's quantity) or its owner cancelled or
reduced it (nothing prints). So each quantity reduction is matched against trades:

* same symbol, same book side (a ``buy`` trade hits the asks), same price;
* engine times within ``match_window_ns`` of each other (the level3 message ``timestamp`` and
  the trade ``timestamp``; receive times when either is missing);
* the trade's quantity equals the reduction exactly (Kraken prints one trade per maker order
  matched, so a full fill deletes an order of exactly the printed size and a partial fill
  lowers it by exactly that size).

A matched reduction is a ``fill`` (delete) or ``partial_fill`` (modify); an unmatched one a
``cancel`` (delete) or ``reduce`` (modify down: an amend that keeps priority). An order that
moved (modify to another price, or a delete and add of the same id in one message: Kraken
re-queues on an amend up) is a ``requeue``, never a fill.

Ambiguity (``Classification.ambiguous``) is flagged, never hidden:

* two reductions of the same size at the same price and time compete for one trade (the one
  ahead in the queue gets it: price-time priority fills the front first);
* a matched order was not at the front of its queue (orders ahead of it still rest: fills
  take the front first, so the match is suspicious);
* no exact match, but trades printed at that price in the window (an inexact match is then
  used when the order was at the front, else the reduction is called a cancel).

Timing: trades and level3 come on different connections, so either may arrive first. A
reduction is decided ``wait_ns`` of receive time after it arrived, or earlier once the trade
stream of its symbol has passed its engine time by more than the window (trades arrive in
engine order). Trades are kept ``keep_ns`` of data time for late reductions.

Where the stream is polled does not change a decision: :class:`~bookengine.analytics.
BookAnalytics` polls before each frame's data at the frame's receive time (what is due then is
decided from what came before) and again after it (what the frame settled), and old trades age
by the receive time of the data, not of the polls. So a live feed (one call per frame,
heartbeats included), a replay (several frames per call) and the compiled join of
``BookAnalytics.run`` decide alike.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..kraken.events import Trade as TradePrint
from ..units import with_units
from .tables import Table

FILL = "fill"
PARTIAL_FILL = "partial_fill"
CANCEL = "cancel"
REDUCE = "reduce"
REQUEUE = "requeue"
LABELS = (FILL, PARTIAL_FILL, CANCEL, REDUCE, REQUEUE)
FILL_LABELS = frozenset({FILL, PARTIAL_FILL})
"""Labels that count as "traded" when the classifier is scored."""
CANCEL_LABELS = frozenset({CANCEL, REDUCE})

MS = 1_000_000


@dataclass(slots=True)
class L3Change:
    """One quantity change of a resting order seen in a level3 update, with the state before.

    Built by :class:`~bookengine.analytics.queue.BookAnalytics` from the message and the book
    as it was before the message; also constructible by hand (tests, other feeds).
    """

    symbol: str
    order_id: str
    side: str
    """``"bid"`` or ``"ask"``."""
    price: int
    """Price mantissa the order rested at before the change."""
    event: str
    """``"delete"`` or ``"modify"``."""
    qty_before: int
    qty_after: int
    """0 when the order left the book; for a requeue the re-queued quantity."""
    timestamp_ns: int = -1
    """Engine time of the level3 message (its ``timestamp``); -1 when absent."""
    recv_ts_ns: int = -1
    orders_ahead: int = 0
    """Orders ahead of it in its queue before the message."""
    qty_ahead: int = 0
    front: bool = True
    """True when every order ahead of it also lost quantity in the same message (or none was
    ahead): where a fill can happen under price-time priority."""
    new_price: int | None = None
    """For a requeue: the price it rests at afterwards (None otherwise)."""
    level_index: int = 0
    """0 for the best level of its side, just before the change (after the entries of the
    same message before it)."""
    seq: int = 0
    """Message counter (orders changes of one message together)."""

    @property
    def removed(self) -> int:
        """Quantity that left the book (0 for a requeue or an increase)."""
        if self.is_requeue:
            return 0
        return max(0, self.qty_before - self.qty_after)

    @property
    def is_requeue(self) -> bool:
        """Moved to another price, re-added under the same id, or increased (no fill possible)."""
        return self.new_price is not None or self.qty_after > self.qty_before


@dataclass(frozen=True, slots=True)
class Classification:
    """Why one :class:`L3Change` happened, as far as the public data tells."""

    change: L3Change
    label: str
    """``fill``, ``partial_fill``, ``cancel``, ``reduce`` or ``requeue``."""
    traded_qty: int
    """Quantity explained by matched trades (mantissa)."""
    trade_ids: tuple[int, ...]
    ambiguous: bool
    reason: str
    """Short text: how the label was decided."""

    @property
    def is_fill(self) -> bool:
        return self.label in FILL_LABELS


@dataclass(slots=True)
class _OpenTrade:
    trade: TradePrint
    remaining: int


@dataclass
class ClassifierStats:
    """Counters of a :class:`FillClassifier`."""

    trades: int = 0
    changes: int = 0
    decided: int = 0
    ambiguous: int = 0
    unmatched_trades: int = 0
    """Trades dropped after ``keep_ns`` without explaining any reduction (e.g. their maker
    order was outside the level3 depth, or the level3 stream had a gap)."""
    labels: dict[str, int] = field(default_factory=lambda: {label: 0 for label in LABELS})


class FillClassifier:
    """Sans-I/O trade join: feed changes and trades in any order, poll for decisions.

    Args:
        match_window_ns: largest engine-time distance between a trade and the reduction it
            explains (default 50 ms: Kraken stamps both from the matching engine).
        wait_ns: receive-time delay before a reduction is decided without a later trade
            (covers the trade connection lagging the level3 one; default 500 ms).
        keep_ns: how long an unmatched trade waits for its reduction (default 2 s).

    Cost: O(trades and pending reductions at the same price) per decision.
    """

    def __init__(
        self,
        match_window_ns: int = 50 * MS,
        wait_ns: int = 500 * MS,
        keep_ns: int = 2_000 * MS,
    ) -> None:
        if match_window_ns < 0 or wait_ns < 0 or keep_ns < 0:
            raise ValueError("windows must be >= 0")
        self.match_window_ns = match_window_ns
        self.wait_ns = wait_ns
        self.keep_ns = keep_ns
        self.stats = ClassifierStats()
        self._trades: dict[tuple[str, str, int], list[_OpenTrade]] = defaultdict(list)
        self._pending: deque[L3Change] = deque()
        self._by_key: dict[tuple[str, str, int], list[L3Change]] = defaultdict(list)
        self._trade_watermark: dict[str, int] = {}
        self._contested: set[int] = set()
        """ids of pending changes that lost a trade to an equally close rival."""
        self._expired_at = -1
        self._now = -1
        """Latest receive time seen (data and polls): when waits are over."""
        self._data_now = -1
        """Latest receive time of the data (trades and changes): when old trades go. Polls
        do not move it, so where a stream is polled (every frame live, every line with data in
        a replay) never changes which trades are kept."""

    # -- input ---------------------------------------------------------------------------------

    def add_trades(self, trades: Iterable[TradePrint]) -> None:
        """Remember trades (any order relative to the level3 changes they explain)."""
        for trade in trades:
            self.stats.trades += 1
            self._trades[(trade.symbol, trade.book_side, trade.price)].append(
                _OpenTrade(trade, trade.qty)
            )
            if trade.timestamp_ns >= 0:
                mark = self._trade_watermark.get(trade.symbol, -1)
                self._trade_watermark[trade.symbol] = max(mark, trade.timestamp_ns)
            self._now = max(self._now, trade.recv_ts_ns)
            self._data_now = max(self._data_now, trade.recv_ts_ns)

    def add_changes(self, changes: Iterable[L3Change]) -> list[Classification]:
        """Queue reductions for a decision; requeues are decided at once (returned)."""
        decided: list[Classification] = []
        for change in changes:
            self.stats.changes += 1
            self._now = max(self._now, change.recv_ts_ns)
            self._data_now = max(self._data_now, change.recv_ts_ns)
            if change.is_requeue:
                decided.append(self._decided(change, REQUEUE, 0, (), False, "moved or re-added"))
                continue
            if change.removed == 0:
                continue  # a modify that changed nothing: no decision to make
            self._pending.append(change)
            self._by_key[(change.symbol, change.side, change.price)].append(change)
        return decided

    @property
    def pending(self) -> int:
        """Reductions waiting for their decision."""
        return len(self._pending)

    # -- decisions -----------------------------------------------------------------------------

    def poll(self, now_recv_ns: int | None = None) -> list[Classification]:
        """Decide every reduction whose wait is over (receive time ``now_recv_ns``).

        Returns:
            New decisions, in the order the reductions arrived.
        """
        if now_recv_ns is not None and now_recv_ns > self._now:
            self._now = now_recv_ns
        if not self._pending and not self._trades:
            return []  # nothing to decide or expire (called for every frame)
        now = self._now
        decided: list[Classification] = []
        pending = self._pending
        while pending:
            change = pending[0]
            if not self._ready(change, now):
                break
            pending.popleft()
            decided.append(self._decide(change))
        # Old trades go in batches: a sweep every tenth of the keep time (of data time) is plenty.
        data_now = self._data_now
        if self._trades and data_now - self._expired_at >= self.keep_ns // 10:
            self._expired_at = data_now
            self._expire_trades(data_now)
        return decided

    def flush(self) -> list[Classification]:
        """Decide every pending reduction now (end of a replay)."""
        decided = []
        while self._pending:
            decided.append(self._decide(self._pending.popleft()))
        return decided

    def _ready(self, change: L3Change, now: int) -> bool:
        if change.recv_ts_ns >= 0 and now >= change.recv_ts_ns + self.wait_ns:
            return True
        mark = self._trade_watermark.get(change.symbol, -1)
        return change.timestamp_ns >= 0 and mark > change.timestamp_ns + self.match_window_ns

    def _distance(self, change: L3Change, trade: TradePrint) -> int:
        if change.timestamp_ns >= 0 and trade.timestamp_ns >= 0:
            return abs(trade.timestamp_ns - change.timestamp_ns)
        return abs(trade.recv_ts_ns - change.recv_ts_ns)

    @staticmethod
    def _rank(change: L3Change, distance: int) -> tuple[int, int, int]:
        # Closer in time first; at equal distance the message and queue order decide
        # (price-time priority: the front of the queue fills first).
        return (distance, change.seq, change.orders_ahead)

    def _decide(self, change: L3Change) -> Classification:
        key = (change.symbol, change.side, change.price)
        rivals = [other for other in self._by_key[key] if other is not change]
        self._by_key[key] = rivals
        if not rivals:
            del self._by_key[key]
        removed = change.removed
        window = self.match_window_ns
        candidates = [
            open_trade
            for open_trade in self._trades.get(key, ())
            if open_trade.remaining > 0 and self._distance(change, open_trade.trade) <= window
        ]
        exact: list[tuple[tuple[int, int, int], _OpenTrade, bool]] = []
        lost_tie = False
        for open_trade in candidates:
            if open_trade.remaining != removed:
                continue
            mine = self._rank(change, self._distance(change, open_trade.trade))
            contested = False
            taken = False
            for other in rivals:
                if other.removed != removed:
                    continue
                theirs = self._rank(other, self._distance(other, open_trade.trade))
                if theirs < mine:
                    taken = True
                    if theirs[0] == mine[0]:  # a tie in time, broken by queue order
                        lost_tie = True
                        self._contested.add(id(other))
                    break
                if theirs[0] == mine[0]:
                    contested = True
            if not taken:
                exact.append((mine, open_trade, contested))
        is_delete = change.event == "delete" or change.qty_after == 0
        lost_contest = id(change) in self._contested or lost_tie
        self._contested.discard(id(change))
        if exact:
            mine, best, contested = min(exact, key=lambda item: (item[0], item[1].trade.trade_id))
            best.remaining = 0
            if contested:
                for other in rivals:  # the losers of the tie are ambiguous too
                    if other.removed == removed and (self._distance(other, best.trade) == mine[0]):
                        self._contested.add(id(other))
            contested = contested or lost_contest
            ambiguous = contested or not change.front
            reason = "exact trade match"
            if contested:
                reason += "; a same-size reduction competed for it"
            if not change.front:
                reason += "; orders ahead still rest"
            return self._decided(
                change,
                FILL if is_delete else PARTIAL_FILL,
                removed,
                (best.trade.trade_id,),
                ambiguous,
                reason,
            )
        # Trades a rival matches exactly are reserved for it.
        reserved = {other.removed for other in rivals}
        loose = [t for t in candidates if t.remaining not in reserved]
        if loose and change.front and not lost_tie:
            loose.sort(key=lambda t: (self._distance(change, t.trade), t.trade.trade_id))
            traded = 0
            ids: list[int] = []
            for open_trade in loose:
                if traded >= removed:
                    break
                take = min(open_trade.remaining, removed - traded)
                open_trade.remaining -= take
                traded += take
                ids.append(open_trade.trade.trade_id)
            if 2 * traded >= removed:
                label = FILL if is_delete else PARTIAL_FILL
            else:
                label = CANCEL if is_delete else REDUCE
            return self._decided(
                change, label, traded, tuple(ids), True, "inexact trade match at the front"
            )
        if candidates and not lost_contest:
            return self._decided(
                change,
                CANCEL if is_delete else REDUCE,
                0,
                (),
                True,
                "trades printed at this price, none of this size",
            )
        if lost_contest:
            return self._decided(
                change,
                CANCEL if is_delete else REDUCE,
                0,
                (),
                True,
                "a same-size reduction ahead took the matching trade",
            )
        return self._decided(
            change, CANCEL if is_delete else REDUCE, 0, (), False, "no trade at this price"
        )

    def _decided(
        self,
        change: L3Change,
        label: str,
        traded: int,
        trade_ids: tuple[int, ...],
        ambiguous: bool,
        reason: str,
    ) -> Classification:
        self.stats.decided += 1
        self.stats.labels[label] += 1
        if ambiguous:
            self.stats.ambiguous += 1
        return Classification(change, label, traded, trade_ids, ambiguous, reason)

    def _expire_trades(self, now: int) -> None:
        if now < 0:
            return
        horizon = now - self.keep_ns
        for key in list(self._trades):
            kept: list[_OpenTrade] = []
            for open_trade in self._trades[key]:
                if open_trade.trade.recv_ts_ns >= horizon and open_trade.remaining > 0:
                    kept.append(open_trade)
                elif open_trade.remaining > 0 and key not in self._by_key:
                    self.stats.unmatched_trades += 1
                elif open_trade.remaining > 0:
                    kept.append(open_trade)  # a reduction at this price is still pending
            if kept:
                self._trades[key] = kept
            else:
                del self._trades[key]


# -- tables and scoring ----------------------------------------------------------------------


def classifications_table(
    classifications: Iterable[Classification],
    precisions: Mapping[str, tuple[int, int]] | None = None,
) -> Table:
    """Decisions as columns (new arrays, one row per decision).

    Columns: ``time`` (UTC datetime64[ns]) and ``recv_ts_ns``, ``timestamp_ns`` int64;
    ``price``, ``qty_before``, ``qty_after``, ``traded_qty``: with ``precisions`` (symbol ->
    price, qty precision) float64 in real units beside their exact int64 mantissas
    (``price_m``...; per-row scales when the symbols differ), without it the mantissas under
    those names; ``orders_ahead`` int64; ``ambiguous``, ``front`` bool; ``symbol``,
    ``order_id``, ``side``, ``label``, ``reason`` object (str).
    """
    rows = list(classifications)
    raw: dict[str, Any] = {
        "recv_ts_ns": [c.change.recv_ts_ns for c in rows],
        "timestamp_ns": [c.change.timestamp_ns for c in rows],
        "price": [c.change.price for c in rows],
        "qty_before": [c.change.qty_before for c in rows],
        "qty_after": [c.change.qty_after for c in rows],
        "traded_qty": [c.traded_qty for c in rows],
        "orders_ahead": [c.change.orders_ahead for c in rows],
        "ambiguous": [c.ambiguous for c in rows],
        "front": [c.change.front for c in rows],
        "label": [c.label for c in rows],
        "reason": [c.reason for c in rows],
    }
    for name in ("symbol", "order_id", "side"):
        raw[name] = [getattr(c.change, name) for c in rows]
    return decisions_table(raw, precisions)


DECISION_INTS = (
    "recv_ts_ns",
    "timestamp_ns",
    "price",
    "qty_before",
    "qty_after",
    "traded_qty",
    "orders_ahead",
)
DECISION_FLAGS = ("ambiguous", "front")
DECISION_TEXTS = ("symbol", "order_id", "side", "label", "reason")


def decisions_table(
    raw: Mapping[str, Any], precisions: Mapping[str, tuple[int, int]] | None = None
) -> Table:
    """The table of :func:`classifications_table` from its columns as sequences or arrays
    (``DECISION_INTS``, ``DECISION_FLAGS``, ``DECISION_TEXTS``): one place makes it, whoever
    made the decisions (the event path's objects or the compiled join's columns)."""
    columns: dict[str, Any] = {
        name: np.asarray(raw[name], dtype=np.int64) for name in DECISION_INTS
    }
    for name in DECISION_FLAGS:
        columns[name] = np.asarray(raw[name], dtype=bool)
    for name in DECISION_TEXTS:
        texts = np.empty(len(raw[name]), dtype=object)
        texts[:] = raw[name]
        columns[name] = texts
    symbols = columns["symbol"]
    price_scale: Any = None
    qty_scale: Any = None
    if precisions is not None and all(symbol in precisions for symbol in set(symbols)):
        price_scale = np.array([precisions[s][0] for s in symbols], dtype=np.int64)
        qty_scale = np.array([precisions[s][1] for s in symbols], dtype=np.int64)
    columns, scales = with_units(
        columns,
        prices=("price",),
        qtys=("qty_before", "qty_after", "traded_qty"),
        price_scale=price_scale,
        qty_scale=qty_scale,
        times={"recv_ts_ns": "time"},
    )
    return Table(columns, scales=scales)


@dataclass(frozen=True)
class ClassifierScore:
    """Precision/recall of the "traded" class against ground truth."""

    precision: float
    """Of the reductions called fills, the share that were fills."""
    recall: float
    """Of the true fills, the share called fills."""
    f1: float
    accuracy: float
    """Share of exactly right labels (fill/partial_fill/cancel/reduce/requeue)."""
    compared: int
    """Decisions that found their ground truth."""
    missing_truth: int
    ambiguous: int
    precision_unambiguous: float
    recall_unambiguous: float
    confusion: dict[tuple[str, str], int]
    """(true label, predicted label) -> count."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "accuracy": self.accuracy,
            "compared": self.compared,
            "missing_truth": self.missing_truth,
            "ambiguous": self.ambiguous,
            "precision_unambiguous": self.precision_unambiguous,
            "recall_unambiguous": self.recall_unambiguous,
            "confusion": {f"{t}->{p}": n for (t, p), n in sorted(self.confusion.items())},
        }


def score(
    classifications: Iterable[Classification], truth: Mapping[tuple[str, int], str]
) -> ClassifierScore:
    """Score decisions against ground truth labels.

    Args:
        truth: ``(order_id, engine timestamp_ns) -> label`` (e.g. from the simulator engine's
            ``history``, see :func:`truth_from_history`).

    Returns:
        Precision and recall of the traded class (``fill`` + ``partial_fill``), overall and
        over the unambiguous decisions; requeues are left out of both.
    """
    confusion: dict[tuple[str, str], int] = defaultdict(int)
    counts = {"tp": 0, "fp": 0, "fn": 0, "utp": 0, "ufp": 0, "ufn": 0}
    compared = missing = ambiguous = right = 0
    for c in classifications:
        expected = truth.get((c.change.order_id, c.change.timestamp_ns))
        if expected is None:
            missing += 1
            continue
        compared += 1
        ambiguous += c.ambiguous
        right += expected == c.label
        confusion[(expected, c.label)] += 1
        if REQUEUE in (expected, c.label):
            continue
        actual_fill = expected in FILL_LABELS
        said_fill = c.is_fill
        for prefix, counted in (("", True), ("u", not c.ambiguous)):
            if not counted:
                continue
            if said_fill and actual_fill:
                counts[prefix + "tp"] += 1
            elif said_fill:
                counts[prefix + "fp"] += 1
            elif actual_fill:
                counts[prefix + "fn"] += 1

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    precision = ratio(counts["tp"], counts["tp"] + counts["fp"])
    recall = ratio(counts["tp"], counts["tp"] + counts["fn"])
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    return ClassifierScore(
        precision,
        recall,
        f1,
        ratio(right, compared),
        compared,
        missing,
        ambiguous,
        ratio(counts["utp"], counts["utp"] + counts["ufp"]),
        ratio(counts["utp"], counts["utp"] + counts["ufn"]),
        dict(confusion),
    )


def truth_from_history(history: Iterable[Any]) -> dict[tuple[str, int], str]:
    """``(order_id, timestamp_ns) -> label`` from the simulator engine's ``OrderChange`` list.

    The engine's reasons are the classifier's labels (``fill``, ``partial_fill``, ``cancel``,
    ``reduce``, ``requeue``); each order changes at most once per engine step, and the step's
    level3 message carries the step's time, so the pair is a unique key.
    """
    return {(change.order_id, change.timestamp_ns): change.reason for change in history}
