"""Pictures of books, features and queues (matplotlib, optional: `bookengine[plot]`).

* :func:`depth_chart`: cumulative quantity against price, both sides of one book;
* :func:`heatmap`: resting quantity per price over time (from a :class:`LevelSampler`);
* :func:`queue_trajectory`: a tracked order's quantity ahead and behind over time, with its
  outcome;
* :func:`features`: mid, microprice and the touch, the spread, imbalance and OFI of a
  :class:`FeatureSampler` table over time.

Each function draws on the given ``ax`` (or a new figure sized for a notebook) and returns
the ``Axes`` (``features``: the ``Figure``). Every picture is titled with its symbol and time
range (UTC) and labels its axes with units: prices in the quote currency, quantities in the
base currency (``BTC/USD``: USD and BTC), times in seconds after the first sample, whose UTC
time the axis label gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..units import to_float, unit
from .tables import require

SECOND_NS = 1_000_000_000


def _pyplot() -> Any:
    return require("matplotlib.pyplot", "plot", "bookengine.analytics.plots")


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize, layout="constrained")
    return ax


def units(symbol: str | None) -> tuple[str, str]:
    """``"BTC/USD"`` -> ``("BTC", "USD")``: the quantity and price units of a symbol."""
    if symbol and "/" in symbol:
        base, _, quote = symbol.partition("/")
        return base, quote
    return "base units", "quote units"


def clock(t_ns: int) -> str:
    """ns since the epoch -> ``2023-07-30 12:00:01.250 UTC`` (ms shown)."""
    seconds, fraction = divmod(int(t_ns), SECOND_NS)
    when = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return f"{when:%Y-%m-%d %H:%M:%S}.{fraction // 1_000_000:03d} UTC"


def time_range(start_ns: int, end_ns: int) -> str:
    """``2023-07-30 12:00:00.000 – 12:00:31.500 UTC`` (the date once when it is one day)."""
    start, end = clock(start_ns), clock(end_ns)
    if start[:10] == end[:10]:
        end = end[11:]
    return f"{start.removesuffix(' UTC')} – {end}"


def _seconds_label(start_ns: int) -> str:
    return f"seconds after {clock(start_ns)}"


def depth_chart(
    book: Any,
    levels: int = 50,
    ax: Any = None,
    *,
    title: str | None = None,
    time_ns: int | None = None,
) -> Any:
    """Cumulative depth of both sides of ``book`` (``L2Book`` or ``L3Book``).

    Args:
        levels: levels per side to draw.
        time_ns: when the book was as shown (receive time; in the title).

    Returns:
        The matplotlib ``Axes``.

    Raises:
        ImportError: matplotlib is not installed.
    """
    ax = _axes(ax, (8, 4.5))
    base, quote = units(book.symbol)
    pp, qp = book.price_precision or 0, book.qty_precision or 0
    for side, levels_, color in (
        ("bids", book.bids(levels), "tab:green"),
        ("asks", book.asks(levels), "tab:red"),
    ):
        if not levels_:
            continue
        prices = to_float([p for p, _ in levels_], pp)
        depth = to_float(np.cumsum(np.array([q for _, q in levels_], dtype=np.int64)), qp)
        ax.step(prices, depth, where="post", color=color, label=side, marker=".", ms=3)
        ax.fill_between(prices, depth, step="post", alpha=0.25, color=color)
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.set_xlabel(f"price ({quote})")
    ax.set_ylabel(f"cumulative quantity ({base})")
    when = f", {clock(time_ns)}" if time_ns is not None else ""
    ax.set_title(title or f"{book.symbol} depth, {levels} levels per side{when}")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def heatmap(
    samples: Any,
    price_precision: int | None = None,
    qty_precision: int | None = None,
    ax: Any = None,
    *,
    symbol: str | None = None,
    title: str | None = None,
    log: bool = True,
) -> Any:
    """Resting quantity per price level over time, with the best bid and ask drawn on top.

    Args:
        samples: a :class:`~.features.LevelSampler` (its symbol and precisions are used), or
            its :meth:`~.features.LevelSampler.arrays` (``t_ns``, ``bid_price``, ``bid_qty``,
            ``ask_price``, ``ask_qty``); a regular time grid (``every_ns``) reads best.
        price_precision, qty_precision: the symbol's scales (needed with plain arrays).
        symbol: for the title and units (default: the sampler's).
        log: colour on a log scale of quantity (blank: nothing rests there).

    Returns:
        The matplotlib ``Axes``.

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: no samples, or no precisions for plain arrays.
    """
    if hasattr(samples, "arrays"):
        symbol = symbol or samples.symbol
        price_precision = samples.price_precision if price_precision is None else price_precision
        qty_precision = samples.qty_precision if qty_precision is None else qty_precision
        samples = samples.arrays()
    if price_precision is None or qty_precision is None:
        raise ValueError("heatmap of plain arrays needs price_precision and qty_precision")
    t = np.asarray(samples["t_ns"])
    if not len(t):
        raise ValueError("no samples to draw")
    base, quote = units(symbol)
    prices = np.concatenate([samples["bid_price"], samples["ask_price"]], axis=1)
    qtys = np.concatenate([samples["bid_qty"], samples["ask_qty"]], axis=1)
    present = qtys > 0
    if not present.any():
        raise ValueError("no resting quantity in the samples")
    low, high = int(prices[present].min()), int(prices[present].max())
    # One row per tick, or per bin of ticks when the range is wide (at most ~1000 rows).
    ticks = max(1, -(-(high - low + 1) // 1000))
    grid = np.zeros(((high - low) // ticks + 1, len(t)), dtype=np.float64)
    rows, cols = np.nonzero(present)
    np.add.at(
        grid,
        ((prices[rows, cols] - low) // ticks, rows),
        to_float(qtys[rows, cols], qty_precision),
    )
    shown = np.where(grid > 0, grid, np.nan)  # empty prices stay blank
    norm = None
    if log:
        colors = require("matplotlib.colors", "plot", "bookengine.analytics.plots")
        present_qty = grid[grid > 0]
        norm = colors.LogNorm(vmin=float(present_qty.min()), vmax=float(present_qty.max()))
    ax = _axes(ax, (10, 5))
    seconds = (t - t[0]) / SECOND_NS
    step = 1 / unit(price_precision)
    extent = (
        float(seconds[0]),
        float(seconds[-1]) if len(seconds) > 1 else 1.0,
        (low - 0.5) * step,
        (low + grid.shape[0] * ticks - 0.5) * step,
    )
    image = ax.imshow(
        shown,
        aspect="auto",
        origin="lower",
        extent=extent,
        cmap="viridis",
        norm=norm,
        interpolation="nearest",
    )
    ax.set_facecolor("black")
    bid = to_float(samples["bid_price"][:, 0], price_precision, samples["bid_qty"][:, 0] == 0)
    ask = to_float(samples["ask_price"][:, 0], price_precision, samples["ask_qty"][:, 0] == 0)
    ax.plot(seconds, bid, color="white", lw=0.8, label="best bid")
    ax.plot(seconds, ask, color="orange", lw=0.8, label="best ask")
    colorbar = ax.figure.colorbar(image, ax=ax)
    colorbar.set_label(f"resting quantity ({base})" + (", log scale" if log else ""))
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_xlabel(_seconds_label(int(t[0])))
    ax.set_ylabel(f"price ({quote})")
    ax.set_title(title or f"{symbol or 'order book'} resting quantity, {time_range(t[0], t[-1])}")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def queue_trajectory(
    tracked: Any, qty_precision: int, ax: Any = None, *, title: str | None = None
) -> Any:
    """A tracked order's queue over time: quantity ahead, its own quantity, quantity behind.

    The last state is drawn up to the outcome (or, while the order still rests, for a tenth
    of the tracked span, at least a second), so an order with one change shows its life too;
    every change is marked.

    Args:
        tracked: a :class:`~bookengine.analytics.queue.TrackedOrder`.
        qty_precision: the symbol's qty scale.

    Returns:
        The matplotlib ``Axes``.

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: the order has no history yet.
    """
    history = tracked.history()
    t = np.asarray(history["recv_ts_ns"], dtype=np.int64)
    if not len(t):
        raise ValueError(f"order {tracked.order_id} has no queue history")
    base, _ = units(tracked.symbol)
    ax = _axes(ax, (9, 4))
    # The exact mantissas (``_m``; the plain names before the scales were known).
    exact = {
        name: history.get(f"{name}_m", history[name]) for name in ("qty_ahead", "qty", "qty_behind")
    }
    ahead = to_float(exact["qty_ahead"], qty_precision)
    own = to_float(exact["qty"], qty_precision)
    behind = to_float(exact["qty_behind"], qty_precision)
    outcome = tracked.outcome
    if outcome is not None and outcome.recv_ts_ns > t[-1]:
        end_ns = int(outcome.recv_ts_ns)
    else:
        end_ns = int(t[-1] + max(SECOND_NS, (t[-1] - t[0]) // 10))
    # The last state lasts until the end: repeat it there (a step plot needs a width).
    times = np.append(t, end_ns)
    seconds = (times - t[0]) / SECOND_NS
    ax.stackplot(
        seconds,
        np.append(ahead, ahead[-1]),
        np.append(own, own[-1]),
        np.append(behind, behind[-1]),
        labels=("qty ahead", "the order", "qty behind"),
        colors=("tab:blue", "tab:orange", "lightgray"),
        step="post",
    )
    ax.plot(seconds[:-1], ahead + own, ls="none", marker="o", ms=3, color="black", label="changes")
    if outcome is not None:
        end = (outcome.recv_ts_ns - t[0]) / SECOND_NS
        ax.axvline(end, color="black", ls="--", lw=1)
        ax.annotate(
            outcome.outcome,
            (end, float(ahead[-1] + own[-1])),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
        )
    ax.set_xlim(0, float(seconds[-1]))
    ax.set_xlabel(_seconds_label(int(t[0])))
    ax.set_ylabel(f"quantity ({base})")
    ax.set_title(
        title
        or f"{tracked.symbol} {tracked.side} order {tracked.order_id}\n{time_range(t[0], end_ns)}"
    )
    ax.legend(loc="upper right", fontsize="small")
    return ax


def features(
    table: Any,
    *,
    title: str | None = None,
    figsize: tuple[float, float] = (10, 7),
    columns: Sequence[str] = ("imbalance_1", "imbalance_k"),
) -> Any:
    """Three panels over time from a :class:`~.features.FeatureSampler` table: best bid and
    ask with mid and microprice; the spread; the imbalance ``columns`` with OFI (bars, right
    axis).

    Returns:
        The matplotlib ``Figure`` (its axes: ``fig.axes``).

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: an empty table.
    """
    t = np.asarray(table["t_ns"], dtype=np.int64)
    if not len(t):
        raise ValueError("no feature rows to draw")
    symbol = str(table["symbol"][0]) if "symbol" in table and len(table["symbol"]) else None
    base, quote = units(symbol)
    seconds = (t - t[0]) / SECOND_NS
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=figsize, sharex=True, layout="constrained")
    prices, spread, flow = axes
    prices.plot(seconds, table["best_bid"], color="tab:green", lw=0.8, label="best bid")
    prices.plot(seconds, table["best_ask"], color="tab:red", lw=0.8, label="best ask")
    prices.plot(seconds, table["mid"], color="black", lw=1, label="mid")
    prices.plot(seconds, table["microprice"], color="tab:purple", lw=1, ls="--", label="microprice")
    prices.ticklabel_format(axis="y", useOffset=False, style="plain")
    prices.set_ylabel(f"price ({quote})")
    prices.legend(loc="upper left", fontsize="small", ncols=4)
    spread.plot(seconds, table["spread"], color="tab:gray", drawstyle="steps-post")
    spread.set_ylabel(f"spread ({quote})")
    for name in columns:
        flow.plot(seconds, table[name], lw=0.9, label=name.replace("_", " "))
    flow.set_ylim(-1.05, 1.05)
    flow.set_ylabel("imbalance (-1..1)")
    ofi = flow.twinx()
    width = float(np.median(np.diff(seconds))) * 0.8 if len(seconds) > 1 else 0.1
    ofi.bar(seconds, table["ofi"], width=width, color="tab:orange", alpha=0.4, label="OFI")
    ofi.set_ylabel(f"OFI ({base})")
    handles = flow.get_legend_handles_labels()
    more = ofi.get_legend_handles_labels()
    flow.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize="small")
    flow.set_xlabel(_seconds_label(int(t[0])))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"{symbol or 'book'} L2 features, {time_range(t[0], t[-1])}")
    return fig
