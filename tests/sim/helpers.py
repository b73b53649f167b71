"""Test oracles and socket helpers for the simulator tests (independent of the code under test).

The L3 consumer here rebuilds level3 queues from raw frames by Kraken's client rules with its
own data structures; only the frame scanner and the CRC32 rule are shared with the library.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import re
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection

from bookengine._reference.scan import FrameScanner
from bookengine.checksum import level3_checksum
from bookengine.core_types import EVENT_ADD, EVENT_DELETE, EVENT_MODIFY, KIND_LEVEL3
from bookengine.errors import ChecksumError
from bookengine.numbers import parse_mantissa

T = TypeVar("T")

PLAIN_NUMBER = re.compile(r"(0|[1-9][0-9]*)(\.([0-9]*[1-9]|0))?")
"""A JSON number as Kraken prints it: no exponent, no trailing fractional zeros (``4.0`` ok)."""

_NUMBER_FIELDS = re.compile(r'"(price|qty|limit_price|order_qty)":([^,}\]]+)')


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run an async test body with an overall timeout (pytest-asyncio is not used)."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def loads(text: str | bytes) -> Any:
    """JSON with exact numbers: decimals become ``Decimal``, never floats."""
    return json.loads(text, parse_float=Decimal)


def number_texts(frame: str) -> list[str]:
    """The raw texts of every price/qty number in a v2 frame."""
    return [match.group(2) for match in _NUMBER_FIELDS.finditer(frame)]


class Client:
    """A thin JSON wrapper over a websockets client connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    loads = staticmethod(loads)

    async def send(self, message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float = 5.0) -> str:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(frame, str)
        return frame

    async def until(
        self, predicate: Callable[[Any], bool], timeout: float = 5.0, limit: int = 100_000
    ) -> tuple[Any, list[str]]:
        """Receive until a decoded frame satisfies ``predicate``; return it and the skipped."""
        skipped: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for _ in range(limit):
            frame = await self.recv(max(0.01, deadline - loop.time()))
            message = loads(frame)
            if predicate(message):
                return message, skipped
            skipped.append(frame)
        raise AssertionError("predicate never matched")


def is_method(method: str, **fields: Any) -> Callable[[Any], bool]:
    def predicate(message: Any) -> bool:
        return (
            isinstance(message, dict)
            and message.get("method") == method
            and all(message.get(k) == v for k, v in fields.items())
        )

    return predicate


def is_channel(channel: str, kind: str | None = None) -> Callable[[Any], bool]:
    def predicate(message: Any) -> bool:
        return (
            isinstance(message, dict)
            and message.get("channel") == channel
            and (kind is None or message.get("type") == kind)
        )

    return predicate


class L3Consumer:
    """An independent level3 client: per-order queues, Kraken's rules, L3 checksum check.

    Rules: snapshot replaces; ``add`` appends to its level's queue; ``modify`` sets the qty in
    place; ``delete`` removes (and the level when empty); after the message each side keeps its
    best ``depth`` price levels; then the checksum over the top 10 levels must match.
    Inconsistent events (duplicate add, unknown modify/delete) raise AssertionError.
    """

    def __init__(self, symbol: str, depth: int, price_precision: int, qty_precision: int) -> None:
        self.symbol = symbol
        self.depth = depth
        self.pp = price_precision
        self.qp = qty_precision
        self.sides: dict[bool, dict[int, dict[str, int]]] = {True: {}, False: {}}
        self.where: dict[str, tuple[bool, int]] = {}
        self.scanner = FrameScanner()
        self.verified = 0

    def apply(self, frame: str | bytes) -> None:
        """Scan and apply one level3 frame."""
        assert self.scanner.scan(frame) == KIND_LEVEL3
        self.apply_scanned(self.scanner)

    def apply_scanned(self, scanner: FrameScanner) -> None:
        """Apply the level3 frame held by ``scanner``."""
        assert scanner.kind == KIND_LEVEL3
        assert scanner.symbol == self.symbol
        if scanner.is_snapshot:
            self.sides = {True: {}, False: {}}
            self.where = {}
        for is_bid, entries in ((True, scanner.bids), (False, scanner.asks)):
            levels = self.sides[is_bid]
            for entry in entries:
                price = parse_mantissa(entry.price, self.pp)
                qty = parse_mantissa(entry.qty, self.qp)
                order_id = entry.order_id
                if entry.event == EVENT_ADD:
                    assert order_id not in self.where, f"duplicate add {order_id}"
                    levels.setdefault(price, {})[order_id] = qty
                    self.where[order_id] = (is_bid, price)
                else:
                    assert self.where.get(order_id) == (is_bid, price), f"unknown {order_id}"
                    if entry.event == EVENT_MODIFY:
                        levels[price][order_id] = qty
                    else:
                        assert entry.event == EVENT_DELETE
                        del levels[price][order_id]
                        del self.where[order_id]
                        if not levels[price]:
                            del levels[price]
        for is_bid, levels in self.sides.items():
            if len(levels) > self.depth:
                ranked = sorted(levels, reverse=is_bid)
                for price in ranked[self.depth :]:
                    for order_id in levels.pop(price):
                        del self.where[order_id]
        if scanner.checksum >= 0:
            computed = self.checksum()
            if computed != scanner.checksum:
                raise ChecksumError(self.symbol, scanner.checksum, computed)
            self.verified += 1

    def levels(self, is_bid: bool, n: int | None = None) -> list[tuple[int, list[int]]]:
        """Levels best first as (price, [qty of each order in queue order])."""
        levels = self.sides[is_bid]
        if n is None:
            prices = sorted(levels, reverse=is_bid)
        else:
            prices = heapq.nlargest(n, levels) if is_bid else heapq.nsmallest(n, levels)
        return [(p, list(levels[p].values())) for p in prices]

    def checksum(self) -> int:
        return level3_checksum(self.levels(False, 10), self.levels(True, 10))


def reference_l3(symbol: str, depth: int, pp: int, qp: int) -> Any | None:
    """``bookengine._reference.l3book.L3BookCore`` when another engineer has provided it."""
    try:
        from bookengine._reference.l3book import L3BookCore  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return L3BookCore(symbol, depth, pp, qp)
    except TypeError:
        return None
