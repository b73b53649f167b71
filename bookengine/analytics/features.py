"""L2 features of a book: mid, spread, microprice, imbalance, OFI, VWAP/slippage, pressure.

Every function takes any book with ``bids(n)``/``asks(n)`` returning ``(price, qty)`` int
mantissas best first: an ``L2Book``, or an ``L3Book`` through its aggregated view. Inputs are
exact. Prices come back in price units (``mid_price`` of a 65009.0/65009.1 book is 65009.05,
float64, computed exactly on the mantissas and divided once by ``10**price_precision``);
``spread`` and OFI stay exact int mantissas; ratios (imbalance, pressure) are unitless floats.
Quantity *arguments* (``vwap``/``slippage`` ``qty``) are exact quantity mantissas.

:class:`FeatureSampler` turns a stream of books into a columnar :class:`~.tables.Table`,
per event or on a time grid aligned to whole intervals (the same grid as
``Replayer.sample`` and ``export --every-ms``, so they join on time); :func:`sample_features`
does it over a capture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..kraken.events import BookChanged
from ..units import scaled, to_datetime, to_float, unit
from .tables import Table

NAN = float("nan")


def _top(book: Any) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    bids, asks = book.bids(1), book.asks(1)
    return (bids[0] if bids else None), (asks[0] if asks else None)


def _price_unit(book: Any) -> float:
    return unit(getattr(book, "price_precision", None) or 0)


def _mid_m(book: Any) -> float:
    bid, ask = _top(book)
    if bid is None or ask is None:
        return NAN
    return (bid[0] + ask[0]) / 2


def _microprice_m(book: Any) -> float:
    bid, ask = _top(book)
    if bid is None or ask is None:
        return NAN
    (pb, qb), (pa, qa) = bid, ask
    return (pb * qa + pa * qb) / (qb + qa)


def _vwap_m(book: Any, side: str, qty: int) -> tuple[float, int]:
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if qty <= 0:
        raise ValueError(f"qty must be positive, got {qty}")
    levels = book.asks() if side == "buy" else book.bids()
    cost = filled = 0
    for price, level_qty in levels:
        take = min(int(level_qty), qty - filled)
        cost += int(price) * take
        filled += take
        if filled == qty:
            break
    return (cost / filled if filled else NAN), filled


def _slippage_m(book: Any, side: str, qty: int) -> float:
    price, filled = _vwap_m(book, side, qty)
    if filled < qty:
        return NAN
    mid = _mid_m(book)
    return price - mid if side == "buy" else mid - price


def mid_price(book: Any) -> float:
    """(best bid + best ask) / 2 in price units (e.g. 65009.05); NaN when a side is empty.

    The half-sum is exact on the mantissas; one division by ``10**price_precision``.
    """
    bid, ask = _top(book)
    if bid is None or ask is None:
        return NAN
    return (bid[0] + ask[0]) / (2 * _price_unit(book))


def spread(book: Any) -> int | None:
    """Best ask - best bid as an exact price mantissa; None when a side is empty."""
    bid, ask = _top(book)
    if bid is None or ask is None:
        return None
    return int(ask[0] - bid[0])


def microprice(book: Any) -> float:
    """Size-weighted mid: ``(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)``.

    Leans towards the side with *less* quantity (the price more likely to move). Price units
    (65009.07, not the mantissa 6500907); NaN when a side is empty. The products are exact
    Python ints; one division.
    """
    bid, ask = _top(book)
    if bid is None or ask is None:
        return NAN
    (pb, qb), (pa, qa) = bid, ask
    return (pb * qa + pa * qb) / ((qb + qa) * _price_unit(book))


def imbalance(book: Any, levels: int = 1) -> float:
    """``(bid qty - ask qty) / (bid qty + ask qty)`` over the best ``levels`` of each side.

    In [-1, 1]: positive when bids outweigh asks. NaN when both sides are empty.
    """
    qb = sum(int(q) for _, q in book.bids(levels))
    qa = sum(int(q) for _, q in book.asks(levels))
    total = qb + qa
    return (qb - qa) / total if total else NAN


def book_pressure(book: Any, levels: int = 5) -> float:
    """Distance-weighted imbalance: each level's qty weighted by 1 / its distance from the mid.

    ``(B - A) / (B + A)`` with ``B = sum(q_i / (mid - p_i))`` over bid levels and
    ``A = sum(q_i / (p_i - mid))`` over ask levels (distances in price mantissa units), so
    quantity near the touch counts most. In [-1, 1]; NaN when a side is empty.
    """
    mid = _mid_m(book)
    if math.isnan(mid):
        return NAN
    weight_bid = sum(q / (mid - p) for p, q in book.bids(levels))
    weight_ask = sum(q / (p - mid) for p, q in book.asks(levels))
    total = weight_bid + weight_ask
    return (weight_bid - weight_ask) / total if total else NAN


def vwap(book: Any, side: str, qty: int) -> tuple[float, int]:
    """Average price of taking ``qty`` from the book: a ``buy`` walks the asks, a ``sell`` the
    bids, best first.

    Args:
        qty: the quantity to take, as an exact quantity mantissa (``10**qty_precision`` per
            unit).

    Returns:
        ``(vwap, filled)``: the volume-weighted price in price units (NaN when nothing could
        be filled) and the quantity mantissa the visible book could fill (< ``qty`` when it is
        too thin). The cost is summed exactly in Python ints; one division.

    Raises:
        ValueError: ``side`` not ``buy``/``sell`` or ``qty`` not positive.
    """
    price, filled = _vwap_m(book, side, qty)
    return price / _price_unit(book), filled


def slippage(book: Any, side: str, qty: int) -> float:
    """How much worse than the mid taking ``qty`` (a quantity mantissa) is: ``vwap - mid`` for
    a buy, ``mid - vwap`` for a sell, in price units (>= half the spread). NaN when the book
    cannot fill it.
    """
    return _slippage_m(book, side, qty) / _price_unit(book)


class OrderFlowImbalance:
    """Order flow imbalance of Cont, Kukanov and Stoikov (2014), per book change.

    For consecutive best quotes ``(Pb, qb, Pa, qa)`` -> ``(Pb', qb', Pa', qa')``::

        e = 1[Pb' >= Pb] qb' - 1[Pb' <= Pb] qb - 1[Pa' <= Pa] qa' + 1[Pa' >= Pa] qa

    (bid quantity arriving or the bid moving up adds; ask quantity arriving or the ask moving
    down subtracts). With ``levels > 1`` the same term is summed over the first ``levels``
    price levels of each side, level by level (multi-level OFI). Exact int mantissas.
    """

    def __init__(self, levels: int = 1) -> None:
        if levels < 1:
            raise ValueError("levels must be >= 1")
        self.levels = levels
        self._previous: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None = None

    def update(self, book: Any) -> int:
        """The OFI contribution of the change to ``book`` since the previous call (0 first)."""
        bids, asks = list(book.bids(self.levels)), list(book.asks(self.levels))
        previous, self._previous = self._previous, (bids, asks)
        if previous is None:
            return 0
        total = 0
        for index in range(self.levels):
            total += _ofi_term(previous[0], bids, index, True)
            total += _ofi_term(previous[1], asks, index, False)
        return total

    def reset(self) -> None:
        """Forget the previous book (after a gap or resync)."""
        self._previous = None


def _ofi_term(old: list[tuple[int, int]], new: list[tuple[int, int]], i: int, bid: bool) -> int:
    if i >= len(old) or i >= len(new):
        return 0  # a missing level contributes nothing: its change is not observable
    (p0, q0), (p1, q1) = old[i], new[i]
    if bid:
        return (q1 if p1 >= p0 else 0) - (q0 if p1 <= p0 else 0)
    return -(q1 if p1 <= p0 else 0) + (q0 if p1 >= p0 else 0)


# -- sampling ---------------------------------------------------------------------------------


def grid_start(t_ns: int, every_ns: int) -> int:
    """The first grid time at or after ``t_ns``: grids are whole multiples of ``every_ns``
    since the epoch (the convention of ``Replayer.sample``, ``export --every-ms`` and the
    samplers here), so samples of different sources share their times and join on them."""
    return -(-t_ns // every_ns) * every_ns


_INT_COLUMNS = ("best_bid", "best_ask", "bid_qty", "ask_qty", "spread")


class FeatureSampler:
    """Features of one book over time, per change or on a fixed grid, as columns.

    Args:
        levels: depth of ``imbalance_k``, ``pressure`` and the level columns.
        sizes: quantities (mantissas) for ``vwap_buy_<i>``/``slippage_buy_<i>`` (and sell).
        every_ns: None: one row per :meth:`add`; otherwise one row per grid time (a whole
            multiple of ``every_ns`` since the epoch, from the first change on) holding the
            book as of that time (the last change at or before it); OFI then sums the changes
            within each interval. :meth:`finish` adds the grid times up to an end time.
        ofi_levels: levels of the OFI (1: Cont-Kukanov-Stoikov's best quotes).

    Columns of :meth:`table` (new arrays, one row per sample):

    * ``time`` datetime64[ns] UTC and ``t_ns`` int64 (exact): the change's receive time, or
      the grid time; ``symbol``: the book's symbol;
    * ``best_bid``, ``best_ask``, ``spread`` float64 price units; ``bid_qty``, ``ask_qty``
      float64 quantity units; NaN when a side is empty;
    * ``best_bid_m``, ``best_ask_m``, ``bid_qty_m``, ``ask_qty_m``, ``spread_m``: the same as
      exact int64 mantissas (masked, i.e. null, when a side is empty);
    * ``ofi`` float64 quantity units, ``ofi_m`` int64 exact: OFI of the change (per change) or
      summed over the interval (grid);
    * ``mid``, ``microprice`` float64 price units; ``imbalance_1``, ``imbalance_k``,
      ``pressure`` unitless float64 (NaN when undefined);
    * ``vwap_buy_<i>``, ``slippage_buy_<i>``, ``vwap_sell_<i>``, ``slippage_sell_<i>`` float64
      price units for each size ``i`` (index into ``sizes``).
    """

    def __init__(
        self,
        levels: int = 5,
        sizes: Sequence[int] = (),
        every_ns: int | None = None,
        ofi_levels: int = 1,
    ) -> None:
        if every_ns is not None and every_ns <= 0:
            raise ValueError("every_ns must be > 0")
        self.levels = levels
        self.sizes = tuple(int(s) for s in sizes)
        self.every_ns = every_ns
        self.symbol: str | None = None
        self.price_precision = 0
        self.qty_precision = 0
        self._ofi = OrderFlowImbalance(ofi_levels)
        self._rows: list[tuple[Any, ...]] = []
        self._last: tuple[Any, ...] | None = None
        self._next_ns: int | None = None
        self._ofi_sum = 0

    def _features(self, book: Any, t_ns: int, ofi: int) -> tuple[Any, ...]:
        bid, ask = _top(book)
        row: list[Any] = [
            t_ns,
            bid[0] if bid else -1,
            ask[0] if ask else -1,
            bid[1] if bid else -1,
            ask[1] if ask else -1,
            ask[0] - bid[0] if bid and ask else -1,
            ofi,
            _mid_m(book),
            _microprice_m(book),
            imbalance(book, 1),
            imbalance(book, self.levels),
            book_pressure(book, self.levels),
        ]
        for size in self.sizes:
            for side in ("buy", "sell"):
                price, filled = _vwap_m(book, side, size)
                row.append(price if filled == size else NAN)
                row.append(_slippage_m(book, side, size))
        return tuple(row)

    def _emit_until(self, limit: int) -> None:
        # Rows for the grid times < limit: the book as it was before the change at ``limit``.
        assert self.every_ns is not None and self._next_ns is not None
        while self._next_ns < limit and self._last is not None:
            self._rows.append((self._next_ns, *self._last[1:6], self._ofi_sum, *self._last[7:]))
            self._ofi_sum = 0
            self._next_ns += self.every_ns

    def add(self, book: Any, t_ns: int) -> None:
        """Record ``book`` as it is after a change received at ``t_ns`` (non-decreasing)."""
        if self.symbol is None:
            self.symbol = str(getattr(book, "symbol", "") or "")
            self.price_precision = getattr(book, "price_precision", None) or 0
            self.qty_precision = getattr(book, "qty_precision", None) or 0
        ofi = self._ofi.update(book)
        if self.every_ns is None:
            self._rows.append(self._features(book, t_ns, ofi))
            return
        if self._next_ns is None:
            self._next_ns = grid_start(t_ns, self.every_ns)
        self._emit_until(t_ns)
        self._ofi_sum += ofi
        self._last = self._features(book, t_ns, 0)
        if self._next_ns == t_ns:
            self._emit_until(t_ns + 1)

    def finish(self, end_ns: int) -> None:
        """Grid sampling: add the grid times up to ``end_ns`` (inclusive; e.g. the last
        receive time of the capture) with the book as of its last change."""
        if self.every_ns is not None and self._next_ns is not None:
            self._emit_until(end_ns + 1)

    def reset_ofi(self) -> None:
        """Restart the OFI (after a resync: the change across a gap is not flow)."""
        self._ofi.reset()

    @property
    def column_names(self) -> list[str]:
        """The columns of :meth:`table`, in order."""
        names = ["time", "t_ns", "symbol"]
        names += [*_INT_COLUMNS, "mid", "microprice"]
        names += ["ofi", "imbalance_1", "imbalance_k", "pressure"]
        for index in range(len(self.sizes)):
            for side in ("buy", "sell"):
                names += [f"vwap_{side}_{index}", f"slippage_{side}_{index}"]
        names += [f"{name}_m" for name in _INT_COLUMNS] + ["ofi_m"]
        return names

    def table(self) -> Table:
        """Everything sampled so far as a :class:`Table` (new arrays; see the class doc)."""

        width = 12 + 4 * len(self.sizes)
        columns = list(zip(*self._rows, strict=True)) if self._rows else [()] * width
        n = len(self._rows)
        ints = {
            name: np.array(columns[index + 1], dtype=np.int64).reshape(n)
            for index, name in enumerate((*_INT_COLUMNS, "ofi"))
        }
        t_ns = np.array(columns[0], dtype=np.int64).reshape(n)
        pp, qp = self.price_precision, self.qty_precision
        out: dict[str, Any] = {
            "time": to_datetime(t_ns),
            "t_ns": t_ns,
            "symbol": np.full(n, self.symbol or "", dtype=object),
        }
        masks: dict[str, Any] = {}
        for name in _INT_COLUMNS:
            missing = ints[name] < 0
            scale = qp if name.endswith("qty") else pp
            out[name] = to_float(ints[name], scale, missing)
            masks[f"{name}_m"] = missing
        out["mid"] = scaled(np.array(columns[7], dtype=np.float64).reshape(n), pp)
        out["microprice"] = scaled(np.array(columns[8], dtype=np.float64).reshape(n), pp)
        out["ofi"] = to_float(ints["ofi"], qp)
        for index, name in enumerate(("imbalance_1", "imbalance_k", "pressure")):
            out[name] = np.array(columns[9 + index], dtype=np.float64).reshape(n)
        position = 12
        for index in range(len(self.sizes)):
            for side in ("buy", "sell"):
                for kind in ("vwap", "slippage"):
                    values = np.array(columns[position], dtype=np.float64).reshape(n)
                    out[f"{kind}_{side}_{index}"] = scaled(values, pp)
                    position += 1
        scales: dict[str, int] = {}
        for name in (*_INT_COLUMNS, "ofi"):
            out[f"{name}_m"] = ints[name]
            scales[f"{name}_m"] = qp if name.endswith("qty") or name == "ofi" else pp
        return Table(out, masks=masks, scales=scales)


def sample_features(
    source: Iterable[Any] | Sequence[str | Path],
    key: str,
    *,
    levels: int = 5,
    sizes: Sequence[int] = (),
    every_ns: int | None = None,
    ofi_levels: int = 1,
    precisions: dict[str, tuple[int, int]] | None = None,
) -> Table:
    """Features of the book ``key`` (``"book:BTC/USD"`` or ``"level3:BTC/USD"``) over a stream.

    Args:
        source: capture file paths (replayed through a new session), or an iterable of
            session events (e.g. ``Replayer.events()`` or a list collected live).
        precisions: for captures without an ``instrument`` frame.

    Other arguments as :class:`FeatureSampler`. A snapshot (a resync) restarts the OFI. On a
    grid the last row is the last grid time at or before the stream's last receive time.
    """
    sampler = FeatureSampler(levels, sizes, every_ns, ofi_levels)
    items = list(source) if isinstance(source, list | tuple) else source
    if isinstance(items, list | tuple) and items and isinstance(items[0], str | Path):
        from ..replay import Replayer

        replayer = Replayer(items, precisions=precisions, progress=False)
        events: Iterable[Any] = replayer.events()
    else:
        events = items
    last_ns = -1
    for event in events:
        last_ns = max(last_ns, getattr(event, "recv_ts_ns", -1))
        if isinstance(event, BookChanged) and event.key == key:
            if event.is_snapshot:
                sampler.reset_ofi()
            sampler.add(event.book, event.recv_ts_ns)
    sampler.finish(last_ns)
    return sampler.table()


class LevelSampler:
    """Top ``levels`` of each side over time, for heatmaps and depth studies.

    Args:
        levels: levels per side.
        every_ns: None: a row per change; otherwise a row per grid time (whole multiples of
            ``every_ns`` since the epoch, as everywhere), the book as of then.

    :meth:`arrays` returns new int64 mantissa arrays: ``t_ns`` (n,), ``bid_price``,
    ``bid_qty``, ``ask_price``, ``ask_qty`` (n, levels), 0 where a side has fewer levels (a
    real level always has qty > 0); ``symbol``, ``price_precision`` and ``qty_precision`` are
    those of the first book added (for :func:`~.plots.heatmap`).
    """

    def __init__(self, levels: int = 20, every_ns: int | None = None) -> None:
        self.levels = levels
        self.every_ns = every_ns
        self._t: list[int] = []
        self._rows: list[np.ndarray[Any, np.dtype[np.int64]]] = []
        self._last: np.ndarray[Any, np.dtype[np.int64]] | None = None
        self._next_ns: int | None = None
        self.symbol: str | None = None
        self.price_precision = 0
        self.qty_precision = 0

    def _snapshot(self, book: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
        row = np.zeros((4, self.levels), dtype=np.int64)
        for offset, levels in ((0, book.bids(self.levels)), (2, book.asks(self.levels))):
            for index, (price, qty) in enumerate(levels):
                row[offset, index] = price
                row[offset + 1, index] = qty
        return row

    def add(self, book: Any, t_ns: int) -> None:
        """Record ``book`` after a change received at ``t_ns``."""
        if self.symbol is None:
            self.symbol = str(getattr(book, "symbol", "") or "")
            self.price_precision = getattr(book, "price_precision", None) or 0
            self.qty_precision = getattr(book, "qty_precision", None) or 0
        snapshot = self._snapshot(book)
        if self.every_ns is None:
            self._t.append(t_ns)
            self._rows.append(snapshot)
            return
        if self._next_ns is None:
            self._next_ns = grid_start(t_ns, self.every_ns)
        while self._next_ns < t_ns and self._last is not None:
            self._t.append(self._next_ns)
            self._rows.append(self._last)
            self._next_ns += self.every_ns
        self._last = snapshot
        if self._next_ns == t_ns:
            self._t.append(t_ns)
            self._rows.append(snapshot)
            self._next_ns += self.every_ns

    def arrays(self) -> dict[str, np.ndarray[Any, np.dtype[np.int64]]]:
        """The samples (see the class docstring for shapes)."""
        stack = (
            np.stack(self._rows) if self._rows else np.zeros((0, 4, self.levels), dtype=np.int64)
        )
        return {
            "t_ns": np.array(self._t, dtype=np.int64),
            "bid_price": np.ascontiguousarray(stack[:, 0, :]),
            "bid_qty": np.ascontiguousarray(stack[:, 1, :]),
            "ask_price": np.ascontiguousarray(stack[:, 2, :]),
            "ask_qty": np.ascontiguousarray(stack[:, 3, :]),
        }

    def table(self) -> Table:
        """The samples as a :class:`Table`, one row per sample: ``time`` (UTC), ``t_ns``,
        ``symbol``, then per side and level ``K`` (1 = best) ``bid_price_K``, ``bid_qty_K``,
        ``ask_price_K``, ``ask_qty_K`` float64 in real units (NaN: no level there), then the
        exact int64 ``*_m`` mantissas (masked where there is no level)."""
        arrays = self.arrays()
        t_ns = arrays["t_ns"]
        n = len(t_ns)
        out: dict[str, Any] = {
            "time": to_datetime(t_ns),
            "t_ns": t_ns,
            "symbol": np.full(n, self.symbol or "", dtype=object),
        }
        exact: dict[str, Any] = {}
        masks: dict[str, Any] = {}
        scales: dict[str, int] = {}
        for side in ("bid", "ask"):
            for level in range(self.levels):
                missing = arrays[f"{side}_qty"][:, level] == 0
                for kind, scale in (("price", self.price_precision), ("qty", self.qty_precision)):
                    name = f"{side}_{kind}_{level + 1}"
                    values = arrays[f"{side}_{kind}"][:, level]
                    out[name] = to_float(values, scale, missing)
                    exact[f"{name}_m"] = values.copy()
                    masks[f"{name}_m"] = missing
                    scales[f"{name}_m"] = scale
        out.update(exact)
        return Table(out, masks=masks, scales=scales)
