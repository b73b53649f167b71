"""The full-screen view of ``bookengine watch`` and ``demo``, drawn with ``rich``.

:func:`render_view` builds one frame of the screen from the books (``BookState`` by key), the
feed's metrics and the run's :class:`~bookengine.health.Health`: a header (rate, latency,
connection health), then one panel per book, side by side and in rows as the terminal allows.
A panel shows the book's status badge (verified / stale / resyncing / waiting), spread, mid,
microprice and imbalance, then bids (green) and asks (red) level by level with cumulative depth
bars, as many levels as the book holds and the panel's height allows. Prices and quantities are
the book's exact decimal text; only the derived microprice and imbalance are floats. Level3
panels add the orders at the touch with their queue positions.

:class:`LiveView` runs it in ``rich.live.Live(screen=True)`` (the alternate screen: redrawn in
place, nothing added to the scrollback) and reads ``q`` from stdin in cbreak mode.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

MIN_PANEL_WIDTH = 54
"""Narrowest book panel: below this, fewer panels share a row."""
PANEL_OVERHEAD = 5
"""Lines of a panel that are not levels: two borders, two stats lines, the column header."""


def _bar(fraction: float, width: int, right: bool = False) -> str:
    """A bar ``fraction`` (0..1) of ``width`` cells in half-cell steps, growing from the left
    (asks) or from the right (``right``: bids, so that both sides grow away from the prices)."""
    halves = max(0, min(width * 2, round(fraction * width * 2)))
    if fraction > 0 and not halves:
        halves = 1  # a level is never invisible
    full, half = divmod(halves, 2)
    if right:
        return (("▐" if half else "") + "█" * full).rjust(width)
    return ("█" * full + ("▌" if half else "")).ljust(width)


def badge(state: Any) -> Text:
    """The book's status: verified, stale, resyncing or waiting for its snapshot."""
    if state.book is None and not state.stale:
        return Text(" waiting ", style="bold black on grey70")
    if state.stale:
        if state.resyncs:
            return Text(" resyncing ", style="bold black on yellow")
        return Text(" stale ", style="bold white on red")
    if state.checksums_checked:
        return Text(" verified ", style="bold black on green")
    return Text(" unverified ", style="bold black on grey70")


def book_stats(book: Any) -> dict[str, str]:
    """Spread and mid (exact decimal text), microprice and imbalance (floats) of the top."""
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None:
        return {"spread": "-", "mid": "-", "micro": "-", "imbalance": "-"}
    pp = book.price_precision or 0
    spread = book.price_text(ask[0] - bid[0])
    mid = (Decimal(bid[0] + ask[0]) / 2).scaleb(-pp)
    bid_qty, ask_qty = bid[1], ask[1]
    total = bid_qty + ask_qty
    if total:
        micro = (bid[0] * ask_qty + ask[0] * bid_qty) / total / 10**pp
        imbalance = (bid_qty - ask_qty) / total
        micro_text = f"{micro:.{pp + 2}f}"
        imbalance_text = f"{imbalance:+.3f}"
    else:
        micro_text = imbalance_text = "-"
    return {"spread": spread, "mid": f"{mid:f}", "micro": micro_text, "imbalance": imbalance_text}


def book_panel(key: str, state: Any, levels: int, width: int, height: int) -> Panel:
    """One book: ``levels`` rows at most, within ``width`` x ``height`` cells."""
    book = state.book
    title = Text.assemble(
        (f" {key} ", "bold"), badge(state), (f" depth {state.depth or '-'} ", "dim")
    )
    subtitle = Text(
        f" {state.messages} msgs  {state.checksums_checked} verified  "
        f"{state.checksum_mismatches} mismatched  {state.resyncs} resyncs ",
        style="dim",
    )
    parts: list[RenderableType] = []
    compact = height < PANEL_OVERHEAD + 3  # a small screen: levels first, stats in the border
    if book is None:
        reason = f": {state.stale_reason}" if state.stale and state.stale_reason else ""
        parts.append(Text(f"waiting for a snapshot{reason}", style="dim"))
        return Panel(Group(*parts), title=title, subtitle=subtitle, width=width, height=height)
    stats = book_stats(book)
    line = Text.assemble(
        ("spread ", "dim"),
        (stats["spread"], "bold"),
        ("  mid ", "dim"),
        (stats["mid"], "bold"),
        ("\nmicroprice ", "dim"),
        (stats["micro"], ""),
        ("  imbalance ", "dim"),
        (stats["imbalance"], "cyan"),
    )
    if state.stale and state.stale_reason:
        line.append(f"\n{state.stale_reason}", style="red")
    extra = 0
    touch = _touch_orders(book) if state.channel == "level3" and not compact else None
    if touch is not None:
        extra = touch.plain.count("\n") + 1
    if compact:
        subtitle = Text(
            f" spread {stats['spread']}  mid {stats['mid']}  imb {stats['imbalance']} ",
            style="dim",
        )
        room = max(0, height - 2)
    else:
        parts.append(line)
        room = max(0, height - PANEL_OVERHEAD - extra - (1 if state.stale else 0))
    rows = max(1, min(levels, room)) if room else 0
    bids = book.levels_text("bid", rows) if rows else []
    asks = book.levels_text("ask", rows) if rows else []
    bid_raw = book.bids(rows) if rows else []
    ask_raw = book.asks(rows) if rows else []
    cumulative_bids = _cumulative([qty for _, qty in bid_raw])
    cumulative_asks = _cumulative([qty for _, qty in ask_raw])
    biggest = max([*cumulative_bids[-1:], *cumulative_asks[-1:], 1])
    qty_width = max([len(q) for _, q in bids + asks] + [3])
    price_width = max([len(p) for p, _ in bids + asks] + [5])
    inner = width - 4
    bar_width = max(2, (inner - 2 * (qty_width + price_width) - 5) // 2)
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="left", no_wrap=True)  # bid depth bar
    table.add_column(justify="right", no_wrap=True)  # bid qty
    table.add_column(justify="right", no_wrap=True)  # bid price
    table.add_column(justify="left", no_wrap=True)  # ask price
    table.add_column(justify="left", no_wrap=True)  # ask qty
    table.add_column(justify="left", no_wrap=True)  # ask depth bar
    if not compact:
        table.add_row(
            Text("bids".rjust(bar_width), style="dim"),
            Text("qty", style="dim"),
            Text("price", style="dim"),
            Text("price", style="dim"),
            Text("qty", style="dim"),
            Text("asks", style="dim"),
        )
    for row in range(max(len(bids), len(asks))):
        cells: list[Text] = []
        if row < len(bids):
            price, qty = bids[row]
            bar = _bar(cumulative_bids[row] / biggest, bar_width, right=True)
            cells += [
                Text(bar, style="green4"),
                Text(qty, style="green"),
                Text(price, style="bold green"),
            ]
        else:
            cells += [Text(""), Text(""), Text("")]
        if row < len(asks):
            price, qty = asks[row]
            bar = _bar(cumulative_asks[row] / biggest, bar_width)
            cells += [
                Text(price, style="bold red"),
                Text(qty, style="red"),
                Text(bar, style="red3"),
            ]
        else:
            cells += [Text(""), Text(""), Text("")]
        table.add_row(*cells)
    parts.append(table)
    if touch is not None:
        parts.append(touch)
    return Panel(Group(*parts), title=title, subtitle=subtitle, width=width, height=height)


def _cumulative(values: list[int]) -> list[int]:
    out, total = [], 0
    for value in values:
        total += value
        out.append(total)
    return out


def _touch_orders(book: Any, per_side: int = 3) -> Text | None:
    """level3: the first orders in the queue at the best bid and ask (queue position 1..)."""
    if not hasattr(book, "level_orders"):
        return None
    text = Text()
    for side, best, style in (("bid", book.best_bid(), "green"), ("ask", book.best_ask(), "red")):
        if best is None:
            continue
        orders = book.level_orders(side, best[0])
        text.append(f"{side} touch {book.price_text(best[0])}: ", style=f"bold {style}")
        shown = [
            f"#{n} {book.qty_text(qty)} ({oid[:6]})" for n, (oid, qty, *_) in enumerate(orders, 1)
        ]
        more = len(shown) - per_side
        text.append(", ".join(shown[:per_side]) + (f" (+{more} more)" if more > 0 else ""))
        text.append("\n")
    text.rstrip()
    return text if text.plain else None


def header(title: str, elapsed_s: float, metrics: Any, health: Any, width: int) -> RenderableType:
    """Top line: rate, checks, latency; second line: the connection's health."""
    rate = metrics.messages / max(1e-9, elapsed_s) if metrics is not None else 0.0
    first = Text.assemble(
        (f" {title} ", "bold white on blue"),
        (f" {elapsed_s:6.1f}s  {rate:7.0f} msg/s", ""),
    )
    if metrics is not None:
        p50 = metrics.processing_ns.percentile(50)
        p99 = metrics.processing_ns.percentile(99)
        first.append(
            f"  verified {metrics.checksums_verified}  mismatches {metrics.mismatches}  "
            f"latency p50 {_us(p50)} p99 {_us(p99)}"
        )
    lines: list[RenderableType] = [first]
    if health is not None:
        style = "green" if health.connected else "bold red"
        status = Text(health.line(), style=style, overflow="ellipsis", no_wrap=True)
        if health.last_problem:
            status.append(f"  last: {health.last_problem}", style="yellow")
        lines.append(status)
    lines.append(Text("q quits", style="dim"))
    return Group(*lines)


def _us(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.1f}µs"


def render_view(
    books: Mapping[str, Any],
    *,
    width: int,
    height: int,
    title: str = "bookengine watch",
    elapsed_s: float = 0.0,
    metrics: Any = None,
    health: Any = None,
) -> RenderableType:
    """One screen: header, then the books in a grid that fits ``width`` x ``height``."""
    head = header(title, elapsed_s, metrics, health, width)
    head_lines = 3 if health is not None else 2
    keys = sorted(books)
    if not keys:
        return Group(head, Text("waiting for the first book...", style="dim"))
    columns = max(1, min(len(keys), width // MIN_PANEL_WIDTH))
    rows = math.ceil(len(keys) / columns)
    smallest = 3  # borders and one level (compact panels)
    panel_height = max(smallest, (height - head_lines) // rows)
    if rows * panel_height > height - head_lines and rows > 1:
        # Too many books for the screen: as many rows as fit, the rest named below.
        rows = max(1, (height - head_lines - 1) // smallest)
        panel_height = (height - head_lines - 1) // rows
    # No taller than the deepest book shown needs (level3 adds its touch lines).
    wanted = max(_panel_lines(books[key]) for key in keys[: rows * columns])
    panel_height = min(panel_height, wanted)
    panel_width = width // columns
    grid = Table.grid()
    for _ in range(columns):
        grid.add_column(width=panel_width, no_wrap=True)
    shown = keys[: rows * columns]
    for start in range(0, len(shown), columns):
        row_keys = shown[start : start + columns]
        panels: list[RenderableType] = []
        for key in row_keys:
            state = books[key]
            depth = state.depth or 10
            panels.append(book_panel(key, state, depth, panel_width, panel_height))
        panels += [Text("")] * (columns - len(panels))
        grid.add_row(*panels)
    parts: list[RenderableType] = [head, grid]
    hidden = keys[len(shown) :]
    if hidden:
        parts.append(
            Text(
                f"+{len(hidden)} more books (enlarge the terminal): {', '.join(hidden)}",
                style="yellow",
                overflow="ellipsis",
                no_wrap=True,
            )
        )
    return Group(*parts)


def _panel_lines(state: Any) -> int:
    book = state.book
    if book is None:
        return 3
    levels = max(len(book.bids(state.depth)), len(book.asks(state.depth)))
    extra = 2 if state.channel == "level3" else 0
    return PANEL_OVERHEAD + levels + extra + (1 if state.stale else 0)


class LiveView:
    """``rich.live.Live`` on the alternate screen, with ``q`` to quit (stdin in cbreak mode)."""

    def __init__(self, console: Console | None = None, title: str = "bookengine watch") -> None:
        self.console = console or Console()
        self.title = title
        self.quit = False
        self._live: Live | None = None

    @contextlib.contextmanager
    def running(self, loop: Any = None) -> Iterator[LiveView]:
        """Enter the alternate screen (and cbreak on a terminal stdin) for the block."""
        live = Live(console=self.console, screen=True, auto_refresh=False, transient=True)
        with _cbreak(sys.stdin, loop, self._key), live:
            self._live = live
            try:
                yield self
            finally:
                self._live = None

    def _key(self, char: str) -> None:
        if char in ("q", "Q", "\x03"):
            self.quit = True

    def update(
        self, books: Mapping[str, Any], *, started: float, metrics: Any, health: Any
    ) -> None:
        """Redraw with the current state."""
        if self._live is None:
            return
        width, height = self.console.size
        view = render_view(
            books,
            width=width,
            height=height,
            title=self.title,
            elapsed_s=time.monotonic() - started,
            metrics=metrics,
            health=health,
        )
        self._live.update(view, refresh=True)


@contextlib.contextmanager
def _cbreak(stream: IO[str], loop: Any, on_key: Any) -> Iterator[None]:
    """Read single keys from ``stream`` (a terminal) through the event loop, if there is one."""
    try:
        fd = stream.fileno()
        is_tty = stream.isatty()
    except (AttributeError, ValueError, OSError):
        is_tty = False
    if not is_tty or loop is None:
        yield
        return
    import os
    import termios
    import tty

    saved = termios.tcgetattr(fd)

    def readable() -> None:
        try:
            data = os.read(fd, 32).decode("utf-8", "replace")
        except OSError:
            return
        for char in data:
            on_key(char)

    try:
        tty.setcbreak(fd)
        loop.add_reader(fd, readable)
        yield
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def plain_lines(books: Mapping[str, Any], elapsed_s: float, health: Any = None) -> list[str]:
    """The view for a stdout that is not a terminal: one line per book (and one of health)."""
    lines = []
    if health is not None:
        lines.append(f"{elapsed_s:.1f}s {health.line()}")
    for key in sorted(books):
        state = books[key]
        book = state.book
        status = badge(state).plain.strip()
        if book is None:
            lines.append(f"{elapsed_s:.1f}s {key} {status}")
            continue
        bid, ask = book.best_bid(), book.best_ask()
        stats = book_stats(book)
        bid_text = "-" if bid is None else f"{book.qty_text(bid[1])} @ {book.price_text(bid[0])}"
        ask_text = "-" if ask is None else f"{book.price_text(ask[0])} x {book.qty_text(ask[1])}"
        lines.append(
            f"{elapsed_s:.1f}s {key} {status} bid {bid_text} ask {ask_text} spread "
            f"{stats['spread']} mid {stats['mid']} checksums {state.checksums_checked} "
            f"mismatches {state.checksum_mismatches}"
        )
    return lines
