"""The full-screen view (bookengine.tui), rendered headless to a virtual screen, and
``bookengine watch`` in a real pseudo-terminal against the simulator."""

from __future__ import annotations

import io
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bookengine.health import Health
from bookengine.kraken.events import ConnectionOpened
from bookengine.replay import replay
from bookengine.tui import LiveView, book_stats, plain_lines, render_view

from .conftest import simulator
from .helpers import CAPTURE, command, env

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def two_books(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two depth-10 books: the real BTC/USD capture, and the same frames as ETH/USD."""
    eth = tmp_path_factory.mktemp("eth") / "eth.jsonl"
    eth.write_text(CAPTURE.read_text().replace("BTC/USD", "ETH/USD"))
    result = replay([CAPTURE, eth], precisions={"BTC/USD": (1, 8), "ETH/USD": (1, 8)})
    assert result.ok and len(result.books) == 2
    return dict(result.books)


def virtual_screen(width: int = 110, height: int = 40) -> Console:
    return Console(
        file=io.StringIO(), width=width, height=height, force_terminal=True,
        color_system="truecolor",
    )  # fmt: skip


def connected_health() -> Health:
    health = Health(url="ws://127.0.0.1/v2", subscribed={"book": ["BTC/USD", "ETH/USD"]})
    health.on_event(ConnectionOpened("ws://127.0.0.1/v2", 1))
    return health


def test_two_depth10_books_fit_110x40_with_every_level_in_colour(
    two_books: dict[str, Any],
) -> None:
    console = virtual_screen()
    console.print(render_view(two_books, width=110, height=40, health=connected_health()))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[38;2;" in out or "\x1b[32m" in out  # colours
    text = ANSI.sub("", out)
    lines = text.splitlines()
    assert len(lines) <= 40
    assert all(len(line) <= 110 for line in lines)
    for key, state in two_books.items():
        book = state.book
        assert key in text
        rows = [line for line in lines if "│" in line]
        for side in ("bid", "ask"):
            levels = book.levels_text(side, 10)
            assert len(levels) == 10
            for price, qty in levels:
                assert any(price in row and qty in row for row in rows), (side, price, qty)
    assert text.count(" verified  depth 10 ") == 2  # a badge per book
    assert "spread 0.1" in text and "mid 29430.45" in text
    assert "microprice" in text and "imbalance" in text
    assert "health: connected" in text


def test_bids_green_asks_red(two_books: dict[str, Any]) -> None:
    console = virtual_screen()
    console.print(render_view(two_books, width=110, height=40))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    book = two_books["book:BTC/USD"].book
    bid_price = book.levels_text("bid", 1)[0][0]
    ask_price = book.levels_text("ask", 1)[0][0]
    # each price cell is styled on its own: bold green (32) bids, bold red (31) asks

    def codes(text: str) -> set[str]:
        match = re.search(r"\x1b\[([0-9;]*)m" + re.escape(text) + r"\x1b\[0m", out)
        assert match is not None, text
        return set(match.group(1).split(";"))

    assert "32" in codes(bid_price) and "31" in codes(ask_price)


def test_four_books_at_80x24_all_stay_on_screen(two_books: dict[str, Any]) -> None:
    books = dict(two_books)
    books["book:DOGE/USD"] = books["book:PEPE/USD"] = two_books["book:BTC/USD"]
    console = virtual_screen(80, 24)
    console.print(render_view(books, width=80, height=24, health=connected_health()))
    text = ANSI.sub("", console.file.getvalue())  # type: ignore[attr-defined]
    assert len(text.splitlines()) <= 24
    for key in books:
        assert key in text


def test_depth_25_shows_more_levels_when_the_screen_allows() -> None:
    result = replay([CAPTURE], precisions={"BTC/USD": (1, 8)}, depth=25)
    state = result.books["book:BTC/USD"]
    console = virtual_screen(110, 60)
    console.print(render_view({"book:BTC/USD": state}, width=110, height=60))
    text = ANSI.sub("", console.file.getvalue())  # type: ignore[attr-defined]
    shown = len(state.book.bids())
    assert shown > 10
    for price, _ in state.book.levels_text("bid", shown):
        assert price in text


def test_stale_book_badge_and_reason(two_books: dict[str, Any]) -> None:
    result = replay([CAPTURE], precisions={"BTC/USD": (2, 8)})
    stale = result.books["book:BTC/USD"]
    assert stale.stale
    console = virtual_screen()
    console.print(render_view({"book:BTC/USD": stale}, width=110, height=40))
    text = ANSI.sub("", console.file.getvalue())  # type: ignore[attr-defined]
    assert " stale " in text and "checksum mismatch" in text


def test_level3_shows_the_orders_at_the_touch_with_queue_positions() -> None:
    from .helpers import DATA

    result = replay([DATA / "docs-v2-level3-guide-btcusd.jsonl"], precisions={"BTC/USD": (1, 8)})
    state = result.books["level3:BTC/USD"]
    console = virtual_screen()
    console.print(render_view(result.books, width=110, height=40))
    text = ANSI.sub("", console.file.getvalue())  # type: ignore[attr-defined]
    best_bid = state.book.best_bid()[0]
    first = state.book.level_orders("bid", best_bid)[:2]
    line = next(line for line in text.splitlines() if "bid touch 44939.4:" in line)
    assert f"#1 {state.book.qty_text(first[0][1])} ({first[0][0][:6]})" in line
    assert f"#2 {state.book.qty_text(first[1][1])}" in line
    assert "ask touch 44939.5:" in text


def test_stats_are_exact_text(two_books: dict[str, Any]) -> None:
    stats = book_stats(two_books["book:BTC/USD"].book)
    assert stats["spread"] == "0.1" and stats["mid"] == "29430.45"
    assert float(stats["micro"]) == pytest.approx(29430.5, abs=0.01)
    assert -1 <= float(stats["imbalance"]) <= 1


def test_plain_lines_fallback(two_books: dict[str, Any]) -> None:
    lines = plain_lines(two_books, 1.5)
    assert len(lines) == 2
    assert lines[0].startswith("1.5s book:BTC/USD verified bid ")
    assert "\x1b" not in "".join(lines)


def test_live_view_uses_the_alternate_screen(two_books: dict[str, Any]) -> None:
    console = virtual_screen()
    view = LiveView(console)
    with view.running():
        for _ in range(5):
            view.update(two_books, started=time.monotonic(), metrics=None, health=None)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert out.count("\x1b[?1049h") == 1 and out.count("\x1b[?1049l") == 1
    # every redraw starts at the top-left (in place): no growing scrollback
    assert out.count("\x1b[H") >= 5


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def test_watch_in_a_terminal_and_q_quits(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    with simulator() as url:
        main, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 110, 0, 0))
        process = subprocess.Popen(
            command("watch", "BTC/USD", "ETH/USD", "--url", f"{url}/v2", "--duration", "60"),
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            env=dict(env(), TERM="xterm-256color", COLUMNS="110", LINES="40"),
            start_new_session=True,
        )
        os.close(secondary)
        try:
            screen = _read_until(main, b"book:ETH/USD", 30)
            screen += _read_until(main, b"verified", 10)
            assert b"\x1b[?1049h" in screen  # the alternate screen
            os.write(main, b"q")
            screen += _read_until(main, b"\x1b[?1049l", 10)
            assert process.wait(10) == 0
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            os.close(main)
    text = ANSI.sub("", screen.decode("utf-8", "replace"))
    assert "book:BTC/USD" in text and "book:ETH/USD" in text
    assert "Traceback" not in text
