"""python-kraken-sdk's ``SpotOrderBookClient``, unmodified, against ``bookengine sim``.

The client loads each pair's precisions from REST (``Market.get_asset_pairs``, here the
simulator's ``/0/public/AssetPairs``: no stub), keeps its book by truncating after every entry
and validates every update's checksum with its own code. Its failure path (``on_book_update``
with ``{"error": "Checksum mismatch ..."}``) is counted and must stay at zero.

Configuration only: ``WS_URL`` (the class attribute its constructor reads; it appends ``/v2``)
and its ``Market`` pointed at the simulator's REST URL (the client builds ``Market()`` with
Kraken's URL and offers no parameter for it).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import pytest

from .helpers import run
from .simproc import sim_process

SYMBOLS = ["BTC/USD", "ETH/USD", "DOGE/USD", "PEPE/USD"]


def _run_sdk(depth: int, seconds: float, rate: int, seed: int) -> dict[str, Any]:
    from kraken.spot import Market, SpotOrderBookClient

    counts: collections.Counter[str] = collections.Counter()
    with sim_process("--rate", str(rate), "--seed", str(seed), "--idle-timeout", "0") as sim:

        class Book(SpotOrderBookClient):
            WS_URL = sim.ws_base

            async def on_book_update(self, pair: str, message: dict[str, Any]) -> None:
                if "error" in message:
                    counts["checksum failures"] += 1
                    counts[f"failures {pair}"] += 1
                elif message.get("type") == "update":
                    counts["updates"] += 1
                    counts[f"updates {pair}"] += 1
                elif message.get("type") == "snapshot":
                    counts["snapshots"] += 1

        async def body() -> dict[str, Any]:
            client = Book(depth=depth)
            # The client's private REST client, re-made with the simulator's URL (no stub).
            client._SpotOrderBookClient__market = Market(url=sim.rest_url)  # type: ignore[attr-defined]
            await client.start()
            try:
                await client.add_book(pairs=SYMBOLS)
                await asyncio.sleep(seconds)
                assert not client.exception_occur
                books = {pair: client.get(pair) for pair in SYMBOLS}
            finally:
                await client.close()
            return books

        books = run(body(), timeout=seconds + 60)
    for pair, book in books.items():
        assert book is not None and book["valid"], pair
        assert len(book["bid"]) == len(book["ask"]) == depth, (pair, counts)
    return dict(counts)


@pytest.mark.parametrize(("depth", "seconds"), [(10, 60.0), (25, 4.0), (100, 4.0)])
def test_spot_orderbook_client_has_no_checksum_failures(depth: int, seconds: float) -> None:
    """The issue's bar: depth 10, four symbols, a minute, zero failures (depth 25/100 short)."""
    counts = _run_sdk(depth, seconds, rate=100, seed=depth)
    assert counts.get("checksum failures", 0) == 0, counts
    assert counts["snapshots"] == len(SYMBOLS), counts
    for symbol in SYMBOLS:
        # Every symbol was checked many times (100 steps/s per symbol, most publish).
        assert counts[f"updates {symbol}"] > 30 * seconds, counts
