"""Render ``docs/watch.svg``: the ``bookengine watch`` screen, live from the simulator.

Runs the local simulator (127.0.0.1, no internet) with two depth-10 books and a level3 book,
watches it for a few seconds through the real feed, then draws the full-screen view into a
110 x 40 virtual terminal recorded by rich and saved as SVG.

    python examples/watch_screenshot.py [OUT.svg]
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from rich.console import Console

from bookengine.feed import KrakenFeed
from bookengine.health import Health
from bookengine.sim import Simulator
from bookengine.tui import render_view

WIDTH, HEIGHT = 110, 40


async def capture(seconds: float) -> Console:
    async with Simulator(seed=7, rate=100.0) as sim:
        health = Health(url=sim.url_v2, subscribed={"book": ["BTC/USD", "ETH/USD"]})
        feed = KrakenFeed(
            book=["BTC/USD", "ETH/USD"],
            depth=10,
            url=sim.url_v2,
            on_event=health.on_event,
            on_frame=health.on_frame,
        )
        started = time.monotonic()
        async with feed:
            deadline = started + seconds
            async for _ in feed:
                if time.monotonic() >= deadline:
                    break
            console = Console(
                record=True, width=WIDTH, height=HEIGHT, force_terminal=True,
                color_system="truecolor", file=open("/dev/null", "w"),  # noqa: SIM115
            )  # fmt: skip
            console.print(
                render_view(
                    feed.books(),
                    width=WIDTH,
                    height=HEIGHT,
                    elapsed_s=time.monotonic() - started,
                    metrics=feed.metrics,
                    health=health,
                )
            )
    return console


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/watch.svg")
    console = asyncio.run(capture(4.0))
    out.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(out), title="bookengine watch BTC/USD ETH/USD (simulator)")
    print(out)


if __name__ == "__main__":
    main()
