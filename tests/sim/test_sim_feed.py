"""Every checksum the simulator sends over its sockets, verified by independent clients.

All four symbols at every depth of every API until each stream has verified enough updates;
precisions come from the simulator's own ``instrument`` snapshot (v2) or from the wire (v1).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bookengine._reference.l2book import L2BookCore
from bookengine._reference.scan import FrameScanner
from bookengine.auth import fetch_token
from bookengine.core_types import KIND_BOOK, KIND_LEVEL3, KIND_V1_BOOK
from bookengine.sim import BOOK_DEPTHS, DEFAULT_SYMBOLS, LEVEL3_DEPTHS, Simulator
from bookengine.timestamps import parse_rfc3339_ns

from .helpers import (
    PLAIN_NUMBER,
    Client,
    L3Consumer,
    is_channel,
    number_texts,
    reference_l3,
    run,
)

RATE = 250.0
"""Engine steps per second per symbol: clients in this same process keep up with it."""
MAX_SECONDS = 15.0
"""Give up waiting for enough updates after this long (a loaded machine is slower)."""
EACH = 150
"""Updates every (depth, symbol) book stream must verify: 20 streams, 3,000+ checksums."""
EACH_L3 = 100
"""Updates every (depth, symbol) level3 stream must verify: 12 streams."""
MAX_SIZE = 1 << 24  # level3 depth-1000 snapshots are several hundred kB


async def _precisions(sim: Simulator) -> dict[str, tuple[int, int]]:
    async with connect(sim.url_v2) as ws:
        client = Client(ws)
        await client.send({"method": "subscribe", "params": {"channel": "instrument"}, "req_id": 1})
        message, _ = await client.until(is_channel("instrument", "snapshot"))
    return {
        pair["symbol"]: (pair["price_precision"], pair["qty_precision"])
        for pair in message["data"]["pairs"]
    }


async def _pump(ws: ClientConnection, handle: Any, done: Any, seconds: float) -> None:
    """Feed every frame to ``handle`` until ``done()`` or ``seconds`` have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not done() and (left := deadline - loop.time()) > 0:
        try:
            frame = await asyncio.wait_for(ws.recv(), left)
        except asyncio.TimeoutError:
            return
        assert isinstance(frame, str)
        handle(frame)


def _enough(updates: Counter[Any], streams: int, each: int) -> Any:
    """``done`` for :func:`_pump`: every stream has at least ``each`` updates."""
    return lambda: len(updates) == streams and min(updates.values()) >= each


def test_v2_book_checksums_every_depth_every_symbol() -> None:
    async def body() -> tuple[Counter[tuple[int, str]], int]:
        async with Simulator(rate=RATE, seed=4) as sim:
            precisions = await _precisions(sim)
            assert set(precisions) == set(DEFAULT_SYMBOLS)
            books: dict[tuple[int, str], L2BookCore] = {}
            updates: Counter[tuple[int, str]] = Counter()
            scanner = FrameScanner()
            numbers = 0

            def handler(depth: int) -> Any:
                def handle(frame: str) -> None:
                    nonlocal numbers
                    if scanner.scan(frame) != KIND_BOOK:
                        return
                    book = books[(depth, scanner.symbol)]
                    assert book.apply_scanned(scanner)  # raises ChecksumError on mismatch
                    assert scanner.timestamp_ns > 0
                    for text in number_texts(frame):
                        assert PLAIN_NUMBER.fullmatch(text), text
                        numbers += 1
                    if not scanner.is_snapshot:
                        updates[(depth, scanner.symbol)] += 1

                return handle

            async with contextlib_all(sim.url_v2, len(BOOK_DEPTHS)) as sockets:
                for depth, ws in zip(BOOK_DEPTHS, sockets, strict=True):
                    for symbol, (pp, qp) in precisions.items():
                        books[(depth, symbol)] = L2BookCore(symbol, depth, pp, qp)
                    await Client(ws).send(
                        {
                            "method": "subscribe",
                            "params": {
                                "channel": "book",
                                "symbol": list(precisions),
                                "depth": depth,
                            },
                            "req_id": depth,
                        }
                    )
                done = _enough(updates, len(books), EACH)
                await asyncio.gather(
                    *(
                        _pump(ws, handler(d), done, MAX_SECONDS)
                        for d, ws in zip(BOOK_DEPTHS, sockets, strict=True)
                    )
                )
            for (depth, _symbol), book in books.items():
                assert book.bid_levels == book.ask_levels == depth  # the books stay full
            return updates, numbers

    updates, numbers = run(body())
    assert set(updates) == {(d, s) for d in BOOK_DEPTHS for s in DEFAULT_SYMBOLS}
    assert min(updates.values()) >= EACH, updates
    assert numbers > 10_000


def test_v1_book_checksums_every_depth_every_pair() -> None:
    async def body() -> Counter[tuple[int, str]]:
        async with Simulator(rate=RATE, seed=5) as sim:
            pairs = [spec.v1_pair for spec in sim.specs.values()]
            books: dict[tuple[str, str], L2BookCore] = {}
            updates: Counter[tuple[int, str]] = Counter()
            scanner = FrameScanner()

            def handle(frame: str) -> None:
                if scanner.scan(frame) != KIND_V1_BOOK:
                    return
                key = (scanner.channel_name, scanner.symbol)
                if scanner.is_snapshot:
                    depth = int(scanner.channel_name.removeprefix("book-"))
                    books[key] = L2BookCore(scanner.symbol, depth)  # precision from the wire
                verified = books[key].apply_scanned(scanner)
                assert verified != scanner.is_snapshot  # v1 snapshots carry no checksum
                if not scanner.is_snapshot:
                    updates[(books[key].depth, scanner.symbol)] += 1

            async with contextlib_all(sim.url_v1, len(BOOK_DEPTHS)) as sockets:
                for depth, ws in zip(BOOK_DEPTHS, sockets, strict=True):
                    await Client(ws).send(
                        {
                            "event": "subscribe",
                            "pair": pairs,
                            "subscription": {"name": "book", "depth": depth},
                        }
                    )
                done = _enough(updates, len(BOOK_DEPTHS) * len(pairs), EACH)
                await asyncio.gather(*(_pump(ws, handle, done, MAX_SECONDS) for ws in sockets))
            assert books[("book-10", "XBT/USD")].price_precision == 5
            return updates

    updates = run(body())
    assert len(updates) == len(BOOK_DEPTHS) * len(DEFAULT_SYMBOLS)
    assert min(updates.values()) >= EACH, updates


def test_level3_checksums_every_depth_every_symbol() -> None:
    async def body() -> Counter[tuple[int, str]]:
        async with Simulator(rate=RATE, seed=6) as sim:
            precisions = await _precisions(sim)
            token = await asyncio.to_thread(fetch_token, sim.rest_url, sim.api_key, sim.api_secret)
            consumers: dict[tuple[int, str], tuple[L3Consumer, Any]] = {}
            updates: Counter[tuple[int, str]] = Counter()
            scanner = FrameScanner()
            kinds: Counter[int] = Counter()

            def handler(depth: int) -> Any:
                def handle(frame: str) -> None:
                    if scanner.scan(frame) != KIND_LEVEL3:
                        return
                    consumer, other = consumers[(depth, scanner.symbol)]
                    consumer.apply_scanned(scanner)
                    if other is not None:
                        other.apply_scanned(scanner)
                    for entry in scanner.bids + scanner.asks:
                        kinds[entry.event] += 1
                        parse_rfc3339_ns(entry.timestamp)
                    if not scanner.is_snapshot:
                        updates[(depth, scanner.symbol)] += 1

                return handle

            async with contextlib_all(sim.url_level3, len(LEVEL3_DEPTHS)) as sockets:
                for depth, ws in zip(LEVEL3_DEPTHS, sockets, strict=True):
                    for symbol, (pp, qp) in precisions.items():
                        consumers[(depth, symbol)] = (
                            L3Consumer(symbol, depth, pp, qp),
                            reference_l3(symbol, depth, pp, qp),
                        )
                    await Client(ws).send(
                        {
                            "method": "subscribe",
                            "params": {
                                "channel": "level3",
                                "symbol": list(precisions),
                                "depth": depth,
                                "token": token,
                            },
                            "req_id": depth,
                        }
                    )
                done = _enough(updates, len(consumers), EACH_L3)
                await asyncio.gather(
                    *(
                        _pump(ws, handler(d), done, MAX_SECONDS)
                        for d, ws in zip(LEVEL3_DEPTHS, sockets, strict=True)
                    )
                )
            assert len(kinds) == 3  # add, modify and delete all occurred
            return updates

    updates = run(body())
    assert len(updates) == len(LEVEL3_DEPTHS) * len(DEFAULT_SYMBOLS)
    assert min(updates.values()) >= EACH_L3, updates


def test_exponent_number_style_still_verifies() -> None:
    async def body() -> int:
        async with (
            Simulator(symbols=["PEPE/USD"], rate=RATE, seed=7, number_style="exponent") as sim,
            connect(sim.url_v2) as ws,
        ):
            client = Client(ws)
            await client.send(
                {"method": "subscribe", "params": {"channel": "book", "symbol": ["PEPE/USD"]}}
            )
            book = L2BookCore("PEPE/USD", 10, 9, 5)
            scanner = FrameScanner()
            exponents = 0

            def handle(frame: str) -> None:
                nonlocal exponents
                if scanner.scan(frame) == KIND_BOOK:
                    book.apply_scanned(scanner)
                    exponents += sum("e-" in text for text in number_texts(frame))

            await _pump(ws, handle, lambda: exponents > 10, MAX_SECONDS)
            return exponents

    assert run(body()) > 10


class contextlib_all:
    """Open ``count`` client connections to ``url``; close them all on exit."""

    def __init__(self, url: str, count: int) -> None:
        self.url = url
        self.count = count
        self.sockets: list[ClientConnection] = []

    async def __aenter__(self) -> list[ClientConnection]:
        for _ in range(self.count):
            # max_queue=None: keep reading while the test stops receiving, so the close
            # handshake is not stuck behind unread frames.
            self.sockets.append(await connect(self.url, max_size=MAX_SIZE, max_queue=None))
        return self.sockets

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets))
