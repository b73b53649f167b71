"""Wire fidelity: entry order, two-sided frequency, and a client that truncates after every entry.

Kraken lists a side's deletions before its other entries (real captures: every side carrying
both, v2 116 of 116 and v1 218 of 221 with the other 3 being a level's own updates before its
deletion; ``scripts/measure_fixtures.py``), so a client that truncates to the depth after every
entry verifies every checksum. The simulator must give such clients the same guarantee.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import connect

from bookengine.checksum import book_checksum
from bookengine.sim import Simulator

from .helpers import loads, run
from .truncating_client import TruncatingBook

SYMBOLS = ["BTC/USD", "ETH/USD", "DOGE/USD", "PEPE/USD"]


def _ten_asks() -> list[tuple[str, str]]:
    return [(f"{price}.0", "1.0") for price in range(101, 111)]


def _expected_after_whole_message() -> int:
    # Whole-message rule: 100 inserted, 105 deleted, then truncate: 100..104, 106..110.
    prices = [100, 101, 102, 103, 104, 106, 107, 108, 109, 110]
    return book_checksum([(p * 10, 10) for p in prices], [])


def test_truncating_client_fails_on_insert_before_delete_v2() -> None:
    """The old simulator order (better level first, deletion after) breaks this client."""
    expected = _expected_after_whole_message()
    for entries, ok in (
        ([("100.0", "1.0"), ("105.0", "0.0")], False),  # insert first: 110 dropped, then 9 left
        ([("105.0", "0.0"), ("100.0", "1.0")], True),  # Kraken's order
    ):
        book = TruncatingBook(10, 1, 1)
        book.apply([], _ten_asks())
        book.on_v2(
            {
                "bids": [],
                "asks": [{"price": p, "qty": q} for p, q in entries],
                "checksum": expected,
            },
            snapshot=False,
        )
        assert (book.verified, book.failed) == ((1, 0) if ok else (0, 1))
        assert len(book.asks) == (10 if ok else 9)


def test_truncating_client_fails_on_insert_before_delete_v1() -> None:
    expected = _expected_after_whole_message()
    for entries, ok in (
        ([["100.0", "1.0", "1.0"], ["105.0", "0.0", "1.0"]], False),
        ([["105.0", "0.0", "1.0"], ["100.0", "1.0", "1.0"]], True),
    ):
        book = TruncatingBook(10, 1, 1)
        book.on_v1([1, {"as": [[p, q, "1.0"] for p, q in _ten_asks()], "bs": []}, "book-10", "X"])
        book.on_v1([1, {"a": entries, "c": str(expected)}, "book-10", "X"])
        assert (book.verified, book.failed) == ((1, 0) if ok else (0, 1))


def _deletions_first(entries: list[Any], qty: Any) -> bool | None:
    """None when the side lacks a deletion or another entry; else whether deletions lead."""
    zero = [i for i, e in enumerate(entries) if qty(e) == 0]
    other = [i for i, e in enumerate(entries) if qty(e) != 0]
    if not zero or not other:
        return None
    return max(zero) < min(other)


def test_truncating_client_verifies_every_simulator_checksum() -> None:
    """v2 depths 10 and 25, v1 depth 10, four symbols, 400 steps/s per symbol, 4500+ messages."""
    stats: dict[str, int] = {
        "v2 verified": 0,
        "v2 failed": 0,
        "v1 verified": 0,
        "v1 failed": 0,
        "v2 updates": 0,
        "v2 two-sided": 0,
        "v1 updates": 0,
        "v1 two-sided": 0,
        "sides with deletion and other": 0,
        "deletion not first": 0,
        "crossed": 0,
    }

    async def v2_client(url: str, depth: int, stop: asyncio.Event) -> None:
        precisions = {"BTC/USD": (1, 8), "ETH/USD": (2, 8), "DOGE/USD": (7, 8), "PEPE/USD": (9, 5)}
        books = {s: TruncatingBook(depth, *precisions[s]) for s in SYMBOLS}
        async with connect(url, max_size=None) as ws:
            await ws.send(
                json.dumps(
                    {
                        "method": "subscribe",
                        "params": {"channel": "book", "symbol": SYMBOLS, "depth": depth},
                    }
                )
            )
            while not stop.is_set():
                message = loads(await asyncio.wait_for(ws.recv(), 5))
                if message.get("channel") != "book":
                    continue
                for data in message["data"]:
                    update = message["type"] == "update"
                    if update:
                        stats["v2 updates"] += 1
                        stats["v2 two-sided"] += bool(data["bids"] and data["asks"])
                        for side in ("bids", "asks"):
                            first = _deletions_first(data[side], lambda e: e["qty"])
                            if first is not None:
                                stats["sides with deletion and other"] += 1
                                stats["deletion not first"] += not first
                    books[data["symbol"]].on_v2(data, snapshot=not update)
        stats["v2 verified"] += sum(b.verified for b in books.values())
        stats["v2 failed"] += sum(b.failed for b in books.values())
        stats["crossed"] += sum(b.crossed for b in books.values())

    async def v1_client(url: str, stop: asyncio.Event) -> None:
        books: dict[int, TruncatingBook] = {}
        decimals = {"XBT/USD": (5, 8), "ETH/USD": (5, 8), "XDG/USD": (8, 8), "PEPE/USD": (9, 5)}
        async with connect(url, max_size=None) as ws:
            await ws.send(
                json.dumps(
                    {
                        "event": "subscribe",
                        "pair": list(decimals),
                        "subscription": {"name": "book", "depth": 10},
                    }
                )
            )
            while not stop.is_set():
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if isinstance(message, dict):
                    continue
                channel = message[0]
                if channel not in books:
                    books[channel] = TruncatingBook(10, *decimals[message[-1]])
                payloads = message[1:-2]
                if not any("as" in p or "bs" in p for p in payloads):
                    stats["v1 updates"] += 1
                    stats["v1 two-sided"] += len(payloads) == 2
                    for payload in payloads:
                        for side in ("a", "b"):
                            first = _deletions_first(payload.get(side, []), lambda e: float(e[1]))
                            if first is not None:
                                stats["sides with deletion and other"] += 1
                                stats["deletion not first"] += not first
                books[channel].on_v1(message)
        stats["v1 verified"] += sum(b.verified for b in books.values())
        stats["v1 failed"] += sum(b.failed for b in books.values())
        stats["crossed"] += sum(b.crossed for b in books.values())

    async def body() -> None:
        async with Simulator(symbols=SYMBOLS, rate=400, seed=11, idle_timeout=None) as sim:
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(v2_client(sim.url_v2, 10, stop)),
                asyncio.create_task(v2_client(sim.url_v2, 25, stop)),
                asyncio.create_task(v1_client(sim.url_v1, stop)),
            ]
            # Until enough messages were checked (about 2 s on an idle machine), at most 30 s.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while loop.time() < deadline and (
                stats["v2 updates"] < 3000 or stats["v1 updates"] < 1500
            ):
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.gather(*tasks)
            stats["splits"] = sim.counters["l2.split"]

    run(body(), timeout=60)
    assert stats["v2 failed"] == 0 and stats["v1 failed"] == 0, stats
    # A step split into two messages never leaves the book crossed in between.
    assert stats["crossed"] == 0, stats
    assert stats["v2 verified"] >= 3000 and stats["v1 verified"] >= 1500, stats
    assert stats["deletion not first"] == 0 and stats["sides with deletion and other"] > 100, stats
    # Two-sided messages: rare, as in Kraken's captures (v1 1 of 979; v2 0 of 509).
    assert stats["splits"] > 0, stats
    assert stats["v2 two-sided"] <= stats["v2 updates"] // 200, stats
    assert stats["v1 two-sided"] <= stats["v1 updates"] // 200, stats
