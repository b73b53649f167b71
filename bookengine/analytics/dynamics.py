"""Queue dynamics: how fast queues deplete, how likely a resting order is to fill, who rests.

Three parts:

* :class:`QueueFlow`: a rolling window of what happened at each level (fills and cancels, from
  the classified level3 stream, by level index before the change; adds by side), with rates.
* :class:`FillModel`: time to fill and probability of fill within a horizon for a queue
  position, from those rates.
* :func:`level_stats` and :func:`order_ages`: the book's queues as they are now (sizes, ages,
  concentration).

The fill model (assumptions, stated once):

1. Whatever removes quantity ahead of a resting order (fills at the front, cancels of orders
   ahead) arrives as a Poisson process of rate ``lambda`` (events per second), estimated from
   the window: fills at the order's level plus the level's cancels scaled by the share of the
   level that is ahead of the order (cancels assumed spread over the queue pro rata).
2. Each event removes an exponentially distributed quantity of mean ``m`` (the window's mean
   event size, fills and cancels weighted by their rates), independent of everything else.
3. The order is filled once the removed quantity reaches ``X = qty_ahead + qty``. This treats
   cancels as able to consume the order's own quantity too, a simplification that is small
   while ``qty`` is small against ``qty_ahead``; orders arriving behind never matter (FIFO).
4. Rates are stationary over the horizon.

With exponential sizes the number of events needed is ``K = 1 + Poisson(X / m)`` (the
events that fall short of ``X`` form a Poisson process of rate ``1/m`` along the quantity axis),
so ``E[T] = (1 + X/m) / lambda`` and ``P(T <= h) = sum_k P(K = k) P(N(h) >= k)`` with
``N(h) ~ Poisson(lambda h)``. Both are exact under the assumptions; the assumptions are not.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ..units import with_units
from .classify import CANCEL_LABELS, FILL_LABELS, Classification
from .tables import Table

SECOND_NS = 1_000_000_000


# -- the fill model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FillModel:
    """Poisson arrivals of depletion events with exponential sizes (see the module docstring).

    Args:
        rate_per_s: depletion events per second ahead of the order (``lambda``).
        mean_size: mean quantity removed per event (mantissa units, ``m``).
    """

    rate_per_s: float
    mean_size: float

    def expected_time_s(self, qty_to_deplete: float) -> float:
        """Expected seconds until ``qty_to_deplete`` is removed (inf without flow).

        ``E[T] = (1 + X/m) / lambda``; 0 when nothing is left to deplete.
        """
        if qty_to_deplete <= 0:
            return 0.0
        if self.rate_per_s <= 0 or self.mean_size <= 0:
            return math.inf
        return (1.0 + qty_to_deplete / self.mean_size) / self.rate_per_s

    def probability_within(self, qty_to_deplete: float, horizon_s: float) -> float:
        """Probability that ``qty_to_deplete`` is removed within ``horizon_s`` seconds."""
        if qty_to_deplete <= 0:
            return 1.0
        if self.rate_per_s <= 0 or self.mean_size <= 0 or horizon_s <= 0:
            return 0.0
        a = qty_to_deplete / self.mean_size  # events short of X: Poisson(a)
        mu = self.rate_per_s * horizon_s  # events within the horizon: Poisson(mu)
        k_max = math.ceil(max(a, mu) + 12.0 * math.sqrt(max(a, mu)) + 40.0)
        j = np.arange(k_max, dtype=np.float64)  # j = K - 1
        p_k = _poisson_pmf(j, a)  # P(K = j + 1)
        # P(N >= j + 1) = 1 - P(N <= j)
        cdf_n = np.cumsum(_poisson_pmf(j, mu))
        survival = np.clip(1.0 - cdf_n, 0.0, 1.0)
        return float(min(1.0, max(0.0, float(np.dot(p_k, survival)))))


def _poisson_pmf(k: npt.NDArray[np.float64], mean: float) -> npt.NDArray[np.float64]:
    if mean <= 0:
        out = np.zeros_like(k)
        out[k == 0] = 1.0
        return out
    log_factorial = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1.0, len(k))))))
    return np.asarray(np.exp(k * math.log(mean) - mean - log_factorial[: len(k)]))


# -- flow over a window -------------------------------------------------------------------------


class FlowRates(NamedTuple):
    """Event rates at one level of one side over the flow window."""

    side: str
    level: int
    window_s: float
    fills_per_s: float
    fill_qty_per_s: float
    cancels_per_s: float
    cancel_qty_per_s: float
    mean_fill_qty: float
    mean_cancel_qty: float
    adds_per_s: float
    """Adds on the whole side (adds are not broken down by level)."""


@dataclass(frozen=True)
class FillEstimate:
    """Time to fill and fill probability of one queue position, with the model behind them."""

    qty_ahead: int
    qty: int
    level_qty: int
    expected_time_s: float
    probability: float
    """Probability of a complete fill within ``horizon_s``."""
    horizon_s: float
    model: FillModel
    rates: FlowRates


class QueueFlow:
    """What depleted each queue lately, per symbol: a rolling window of classified changes.

    Args:
        window_ns: how far back rates look (receive time).

    Fills and cancels are recorded by the level index their order had before the change (0 =
    touch), so "depletion at the front" of level ``i`` is the fill rate at index ``i``.
    """

    def __init__(self, window_ns: int = 60 * SECOND_NS) -> None:
        if window_ns <= 0:
            raise ValueError("window_ns must be > 0")
        self.window_ns = window_ns
        # (recv_ts_ns, side, level, kind, qty); kind 0 fill, 1 cancel, 2 add
        self._events: deque[tuple[int, str, int, int, int]] = deque()
        self._columns: tuple[Any, ...] | None = None
        """A window handed over as columns (see _restore), made into entries on first use."""
        self._first_ns = -1
        self._last_ns = -1

    def _note_time(self, t_ns: int) -> None:
        if self._columns is not None:
            self._load()
        if t_ns < 0:
            return
        if self._first_ns < 0:
            self._first_ns = t_ns
        self._last_ns = max(self._last_ns, t_ns)
        horizon = self._last_ns - self.window_ns
        events = self._events
        while events and events[0][0] < horizon:
            events.popleft()

    def _restore(self, columns: tuple[Any, ...], first_ns: int, last_ns: int) -> None:
        """Take the window another keeper built (the compiled trade join of a run): columns
        ``(recv_ts_ns, side code, level, kind, qty)``, made into entries on first use."""
        self._events = deque()
        self._columns = columns
        self._first_ns = first_ns
        self._last_ns = last_ns

    def _load(self) -> None:
        if self._columns is not None:
            times, sides, levels, kinds, qtys = (column.tolist() for column in self._columns)
            names = ("bid", "ask")
            self._events = deque(
                zip(times, [names[s] for s in sides], levels, kinds, qtys, strict=True)
            )
            self._columns = None

    def window(self) -> list[tuple[int, str, int, int, int]]:
        """The entries in the window, oldest first: ``(recv_ts_ns, side, level, kind, qty)``
        with kind 0 fill, 1 cancel, 2 add (level -1 for adds)."""
        self._load()
        return list(self._events)

    def observe(self, t_ns: int) -> None:
        """Advance the window's clock (call for every message, even without events)."""
        self._note_time(t_ns)

    def add_classification(self, decision: Classification) -> None:
        """Record a decided fill or cancel (requeues move orders; they deplete nothing)."""
        change = decision.change
        if decision.label in FILL_LABELS:
            kind = 0
        elif decision.label in CANCEL_LABELS:
            kind = 1
        else:
            return
        self._note_time(change.recv_ts_ns)
        self._events.append(
            (change.recv_ts_ns, change.side, change.level_index, kind, change.removed)
        )

    def add_add(self, t_ns: int, side: str, qty: int = 0) -> None:
        """Record an order added on ``side`` (counted; its size is not used)."""
        self._note_time(t_ns)
        self._events.append((t_ns, side, -1, 2, qty))

    @property
    def span_s(self) -> float:
        """Seconds of flow the window holds (less than the window early on)."""
        if self._first_ns < 0:
            return 0.0
        return min(self.window_ns, self._last_ns - self._first_ns) / SECOND_NS

    def rates(self, side: str, level: int = 0) -> FlowRates:
        """Rates at ``level`` of ``side`` over the window (0 for all when it is empty).

        Raises:
            ValueError: ``side`` is not ``"bid"``/``"ask"``.
        """
        if side not in ("bid", "ask"):
            raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")
        self._load()
        span = self.span_s
        fills = fill_qty = cancels = cancel_qty = adds = 0
        for _, event_side, event_level, kind, qty in self._events:
            if event_side != side:
                continue
            if kind == 2:
                adds += 1
            elif event_level != level:
                continue
            elif kind == 0:
                fills += 1
                fill_qty += qty
            else:
                cancels += 1
                cancel_qty += qty
        per = 1.0 / span if span > 0 else 0.0
        return FlowRates(
            side,
            level,
            span,
            fills * per,
            fill_qty * per,
            cancels * per,
            cancel_qty * per,
            fill_qty / fills if fills else 0.0,
            cancel_qty / cancels if cancels else 0.0,
            adds * per,
        )

    def fill_estimate(
        self,
        side: str,
        level: int,
        qty_ahead: int,
        qty: int,
        level_qty: int,
        horizon_s: float,
    ) -> FillEstimate:
        """Expected time to fill and fill probability within ``horizon_s`` for a position.

        Args:
            side, level: where the order rests (level index 0 = touch).
            qty_ahead, qty, level_qty: its queue position (mantissas), e.g. from
                ``queue_position``.
        """
        rates = self.rates(side, level)
        others = max(level_qty - qty, 0)
        share_ahead = qty_ahead / others if others > 0 else 0.0
        cancels_ahead = rates.cancels_per_s * share_ahead
        rate = rates.fills_per_s + cancels_ahead
        mean = (
            (rates.fills_per_s * rates.mean_fill_qty + cancels_ahead * rates.mean_cancel_qty) / rate
            if rate > 0
            else 0.0
        )
        model = FillModel(rate, mean)
        target = qty_ahead + qty
        return FillEstimate(
            qty_ahead,
            qty,
            level_qty,
            model.expected_time_s(target),
            model.probability_within(target, horizon_s),
            horizon_s,
            model,
            rates,
        )


# -- the book as it is ------------------------------------------------------------------------


def _side_code(side: str) -> int:
    if side == "bid":
        return 0
    if side == "ask":
        return 1
    raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")


def order_ages(book: Any, now_ns: int) -> Table:
    """Every resting order of an L3 book with its age.

    Args:
        book: an ``L3Book`` (either implementation).
        now_ns: the time to measure ages at (e.g. the last message's engine or receive time).

    Returns:
        A :class:`Table` of new arrays, one row per order in ``orders_arrays()`` order (bids
        best level first, then asks; front of each queue first): ``symbol`` str, ``side`` int8
        (0 bid, 1 ask), ``level`` int32, ``position`` int32, ``price`` and ``qty`` float64 in
        real units beside their exact int64 mantissas ``price_m`` and ``qty_m``, ``timestamp``
        (UTC datetime64[ns], NaT when absent), ``timestamp_ns`` int64 and ``age_ns`` int64
        (``now_ns - timestamp_ns``; -1 when the order carried no timestamp). Kraken's order
        timestamp is the time it was inserted or last amended, so an amended order is as old as
        its amend.
    """
    arrays = book.orders_arrays()
    stamps = arrays["timestamp_ns"]
    ages = np.where(stamps >= 0, now_ns - stamps, -1).astype(np.int64)
    columns, scales = with_units(
        {
            "symbol": np.full(len(stamps), book.symbol, dtype=object),
            "side": arrays["side"],
            "level": arrays["level"],
            "position": arrays["position"],
            "price": arrays["price"],
            "qty": arrays["qty"],
            "timestamp_ns": stamps,
            "age_ns": ages,
        },
        prices=("price",),
        qtys=("qty",),
        price_scale=book.price_precision,
        qty_scale=book.qty_precision,
        times={"timestamp_ns": "timestamp"},
    )
    return Table(columns, scales=scales)


def hhi(sizes: npt.ArrayLike) -> float:
    """Herfindahl-Hirschman index of order sizes: sum of squared shares, in (0, 1].

    1 means one order holds the whole level; ``1/n`` means ``n`` equal orders. NaN for an
    empty or zero-size level. Computed with Python ints (exact squares), one float division.
    """
    values = [int(v) for v in np.asarray(sizes).ravel()]
    total = sum(values)
    if total <= 0:
        return float("nan")
    return sum(v * v for v in values) / (total * total)


def level_stats(book: Any, side: str, levels: int = 10, now_ns: int | None = None) -> Table:
    """Per level of one side of an L3 book: totals, queue concentration and ages.

    Args:
        book: an ``L3Book``.
        side: ``"bid"`` or ``"ask"``.
        levels: best levels to describe.
        now_ns: time for ages; None leaves the age columns at -1.

    Returns:
        A :class:`Table` (new arrays, one row per level, best first): ``symbol`` str,
        ``level`` int32, ``price``, ``qty``, ``front_qty`` float64 in real units beside their
        exact int64 mantissas (``price_m``, ``qty_m``, ``front_qty_m``), ``orders`` int64,
        ``hhi`` float64 (size concentration, see :func:`hhi`), ``max_share`` float64 (largest
        order / level qty), ``mean_age_ns`` and ``oldest_age_ns`` int64 (-1 when unknown).

    Raises:
        ValueError: bad side or negative ``levels``.
    """
    code = _side_code(side)
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    arrays = book.orders_arrays()
    mask = (arrays["side"] == code) & (arrays["level"] < levels)
    level = arrays["level"][mask]
    qty = arrays["qty"][mask]
    price = arrays["price"][mask]
    stamps = arrays["timestamp_ns"][mask]
    count = int(level.max()) + 1 if len(level) else 0
    out: dict[str, list[Any]] = {
        name: []
        for name in (
            "level",
            "price",
            "qty",
            "front_qty",
            "orders",
            "hhi",
            "max_share",
            "mean_age_ns",
            "oldest_age_ns",
        )
    }
    starts = np.searchsorted(level, np.arange(count + 1))
    for index in range(count):
        lo, hi = int(starts[index]), int(starts[index + 1])
        sizes = qty[lo:hi]
        total = int(sum(int(v) for v in sizes))
        out["level"].append(index)
        out["price"].append(int(price[lo]))
        out["qty"].append(total)
        out["front_qty"].append(int(sizes[0]))
        out["orders"].append(hi - lo)
        out["hhi"].append(hhi(sizes))
        out["max_share"].append(int(sizes.max()) / total if total else float("nan"))
        known = stamps[lo:hi][stamps[lo:hi] >= 0]
        if now_ns is None or not len(known):
            out["mean_age_ns"].append(-1)
            out["oldest_age_ns"].append(-1)
        else:
            ages = now_ns - known
            out["mean_age_ns"].append(int(ages.mean()))
            out["oldest_age_ns"].append(int(ages.max()))
    dtypes = {
        "level": np.int32,
        "hhi": np.float64,
        "max_share": np.float64,
    }
    exact = {name: np.array(v, dtype=dtypes.get(name, np.int64)) for name, v in out.items()}
    columns, scales = with_units(
        {"symbol": np.full(count, book.symbol, dtype=object), **exact},
        prices=("price",),
        qtys=("qty", "front_qty"),
        price_scale=book.price_precision,
        qty_scale=book.qty_precision,
    )
    return Table(columns, scales=scales)
