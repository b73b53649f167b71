"""Our own clients close with 1000 (normal closure), not 1011 (internal error)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from bookengine.feed import KrakenFeed
from bookengine.sim import Simulator

from .helpers import run

ROOT = Path(__file__).resolve().parent.parent.parent


async def _closes(sim: Simulator) -> dict[str, int]:
    # The server notices the close after the client returns; give it a moment.
    for _ in range(100):
        if sim.connection_count == 0:
            break
        await asyncio.sleep(0.02)
    return {k: v for k, v in sim.counters.items() if k.startswith("close.")}


def test_feed_close_sends_1000() -> None:
    async def body() -> None:
        async with Simulator(symbols=["BTC/USD"], rate=200) as sim:
            async with KrakenFeed(book=["BTC/USD"], url=sim.url_v2) as feed:
                await feed.wait_connected(5)
                async for _ in feed:
                    break
            assert await _closes(sim) == {"close.1000": 1}

    run(body())


def test_watch_duration_closes_with_1000() -> None:
    async def body() -> None:
        async with Simulator(symbols=["BTC/USD", "ETH/USD"], rate=200) as sim:
            result = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "bookengine",
                    "watch",
                    "BTC/USD",
                    "ETH/USD",
                    "--url",
                    sim.url_v2,
                    "--duration",
                    "1.5",
                    "--json",
                ],
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            books = json.loads(result.stdout)["books"]
            assert all(book["checksums_checked"] > 0 for book in books.values())
            assert await _closes(sim) == {"close.1000": 1}

    run(body(), timeout=90)
