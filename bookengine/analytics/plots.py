"""Pictures of books and queues (matplotlib, optional: ``pip install 'bookengine[plot]'``).

* :func:`depth_chart`: cumulative quantity against price, both sides of one book;
* :func:`heatmap`: resting quantity per price over time (from a :class:`LevelSampler`);
* :func:`queue_trajectory`: a tracked order's quantity ahead and behind over time, with its
  outcome.

Each function draws on the given ``ax`` (or a new figure) and returns the ``Axes``. Prices and
quantities are shown in decimal units (mantissa / 10**precision); times in seconds from the
first sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .tables import require

SECOND_NS = 1_000_000_000


def _pyplot() -> Any:
    return require("matplotlib.pyplot", "plot", "bookengine.analytics.plots")


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize)
    return ax


def depth_chart(book: Any, levels: int = 50, ax: Any = None, *, title: str | None = None) -> Any:
    """Cumulative depth of both sides of ``book`` (``L2Book`` or ``L3Book``).

    Args:
        levels: levels per side to draw.

    Returns:
        The matplotlib ``Axes``.

    Raises:
        ImportError: matplotlib is not installed.
    """
    ax = _axes(ax, (8, 4.5))
    pp = 10.0 ** -(book.price_precision or 0)
    qp = 10.0 ** -(book.qty_precision or 0)
    for side, levels_, color in (
        ("bids", book.bids(levels), "tab:green"),
        ("asks", book.asks(levels), "tab:red"),
    ):
        if not levels_:
            continue
        prices = np.array([p for p, _ in levels_], dtype=np.float64) * pp
        depth = np.cumsum(np.array([q for _, q in levels_], dtype=np.float64)) * qp
        ax.step(prices, depth, where="post", color=color, label=side)
        ax.fill_between(prices, depth, step="post", alpha=0.25, color=color)
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.set_xlabel("price")
    ax.set_ylabel("cumulative quantity")
    ax.set_title(title or f"{book.symbol} depth ({levels} levels per side)")
    ax.legend()
    return ax


def heatmap(
    samples: dict[str, Any],
    price_precision: int,
    qty_precision: int,
    ax: Any = None,
    *,
    title: str = "order book heatmap",
    log: bool = True,
) -> Any:
    """Resting quantity per price level over time, with the best bid and ask drawn on top.

    Args:
        samples: :meth:`LevelSampler.arrays` (``t_ns``, ``bid_price``, ``bid_qty``,
            ``ask_price``, ``ask_qty``); a regular time grid (``every_ns``) reads best.
        price_precision, qty_precision: the symbol's scales (for decimal axes).
        log: colour on a log scale of quantity (blank: nothing rests there).

    Returns:
        The matplotlib ``Axes``.

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: no samples.
    """
    t = np.asarray(samples["t_ns"])
    if not len(t):
        raise ValueError("no samples to draw")
    prices = np.concatenate([samples["bid_price"], samples["ask_price"]], axis=1)
    qtys = np.concatenate([samples["bid_qty"], samples["ask_qty"]], axis=1)
    present = qtys > 0
    low, high = int(prices[present].min()), int(prices[present].max())
    # One row per tick, or per bin of ticks when the range is wide (at most ~1000 rows).
    ticks = max(1, -(-(high - low + 1) // 1000))
    grid = np.zeros(((high - low) // ticks + 1, len(t)), dtype=np.float64)
    rows, cols = np.nonzero(present)
    np.add.at(
        grid,
        ((prices[rows, cols] - low) // ticks, rows),
        qtys[rows, cols] * 10.0**-qty_precision,
    )
    shown = np.where(grid > 0, grid, np.nan)  # empty prices stay blank
    norm = None
    if log:
        colors = require("matplotlib.colors", "plot", "bookengine.analytics.plots")
        present_qty = grid[grid > 0]
        norm = colors.LogNorm(vmin=float(present_qty.min()), vmax=float(present_qty.max()))
    ax = _axes(ax, (10, 5))
    seconds = (t - t[0]) / SECOND_NS
    step = 10.0**-price_precision
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
    bid = samples["bid_price"][:, 0].astype(np.float64)
    ask = samples["ask_price"][:, 0].astype(np.float64)
    bid[samples["bid_qty"][:, 0] == 0] = np.nan
    ask[samples["ask_qty"][:, 0] == 0] = np.nan
    ax.plot(seconds, bid * step, color="white", lw=0.8, label="best bid")
    ax.plot(seconds, ask * step, color="orange", lw=0.8, label="best ask")
    colorbar = ax.figure.colorbar(image, ax=ax)
    colorbar.set_label("resting quantity" + (" (log scale)" if log else ""))
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_xlabel("seconds")
    ax.set_ylabel("price")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return ax


def queue_trajectory(
    tracked: Any, qty_precision: int, ax: Any = None, *, title: str | None = None
) -> Any:
    """A tracked order's queue over time: quantity ahead, its own quantity, quantity behind.

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
    t = history["recv_ts_ns"]
    if not len(t):
        raise ValueError(f"order {tracked.order_id} has no queue history")
    ax = _axes(ax, (9, 4))
    seconds = (t - t[0]) / SECOND_NS
    scale = 10.0**-qty_precision
    ahead = history["qty_ahead"] * scale
    own = history["qty"] * scale
    behind = history["qty_behind"] * scale
    ax.stackplot(
        seconds,
        ahead,
        own,
        behind,
        labels=("qty ahead", "the order", "qty behind"),
        colors=("tab:blue", "tab:orange", "lightgray"),
        step="post",
    )
    outcome = tracked.outcome
    if outcome is not None:
        end = (outcome.recv_ts_ns - t[0]) / SECOND_NS
        ax.axvline(end, color="black", ls="--", lw=1)
        ax.annotate(
            outcome.outcome,
            (end, float(ahead[-1] + own[-1])),
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("seconds since tracking began")
    ax.set_ylabel("quantity")
    ax.set_title(title or f"{tracked.symbol} {tracked.side} {tracked.order_id}")
    ax.legend(loc="upper right", fontsize="small")
    return ax
