"""Each injectable fault, shown happening over real sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from bookengine._reference.l2book import L2BookCore
from bookengine._reference.scan import FrameScanner
from bookengine.auth import fetch_token
from bookengine.core_types import KIND_BOOK, KIND_LEVEL3, KIND_V1_BOOK
from bookengine.errors import ChecksumError
from bookengine.numbers import parse_mantissa
from bookengine.sim import Fault, Simulator

from .helpers import Client, L3Consumer, is_channel, is_method, loads, run


def _book_request(symbols: list[str], depth: int = 10) -> dict[str, Any]:
    return {"method": "subscribe", "params": {"channel": "book", "symbol": symbols, "depth": depth}}


def test_drop_aborts_every_connection() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD"], rate=50) as sim,
            connect(sim.url_v2) as v2,
            connect(sim.url_v1) as v1,
        ):
            await v2.recv()
            await v1.recv()
            assert sim.connection_count == 2
            sim.inject("drop")
            for ws in (v2, v1):
                with pytest.raises(ConnectionClosedError):
                    while True:
                        await asyncio.wait_for(ws.recv(), 2)
                assert ws.close_code in (None, 1006)
            await asyncio.sleep(0.05)
            assert sim.connection_count == 0 and sim.counters["fault.drop"] == 1

    run(body())


def test_stall_sends_nothing_then_resumes_in_order() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD"], rate=200, seed=3, heartbeat_interval=0.2) as sim,
            connect(sim.url_v2, max_queue=None) as ws,
        ):
            client = Client(ws)
            await client.send(_book_request(["BTC/USD"]))
            book = L2BookCore("BTC/USD", 10, 1, 8)
            scanner = FrameScanner()
            loop = asyncio.get_running_loop()

            async def frames(seconds: float) -> list[tuple[float, str]]:
                got = []
                end = loop.time() + seconds
                while (left := end - loop.time()) > 0:
                    try:
                        frame = await client.recv(left)
                    except asyncio.TimeoutError:
                        break
                    got.append((loop.time(), frame))
                return got

            before = await frames(0.3)
            sim.inject("stall", seconds=0.8)
            stalled_at = loop.time()
            await client.send({"method": "ping", "req_id": 77})  # answered only after
            after = await frames(1.5)
            # Frames normally arrive every few ms; the stall leaves one long silence (frames
            # already in flight when it began may still land just after it started).
            times = [stalled_at] + [t for t, _ in after]
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert before and after and max(gaps) >= 0.6, max(gaps)
            (pong_at,) = [t for t, frame in after if '"req_id":77' in frame]
            assert pong_at - stalled_at >= 0.7
            for _, frame in before + after:
                if scanner.scan(frame) == KIND_BOOK:
                    book.apply_scanned(scanner)  # the backlog still verifies, in order

    run(body())


def test_corrupt_breaks_one_symbol_until_resubscribed() -> None:
    """Manual stepping: the outcome is a function of the seed, not of timing."""

    async def body() -> None:
        async with Simulator(symbols=["BTC/USD", "ETH/USD"], manual=True, seed=4) as sim:
            token = await asyncio.to_thread(fetch_token, sim.rest_url, sim.api_key, sim.api_secret)
            async with (
                connect(sim.url_v2, max_queue=None) as v2,
                connect(sim.url_v1, max_queue=None) as v1,
                connect(sim.url_level3, max_size=1 << 24, max_queue=None) as l3,
            ):
                sockets = {"v2": v2, "v1": v1, "l3": l3}
                await Client(v2).send(_book_request(["BTC/USD", "ETH/USD"], 100))
                await Client(v1).send(
                    {
                        "event": "subscribe",
                        "pair": ["XBT/USD", "ETH/USD"],
                        "subscription": {"name": "book", "depth": 100},
                    }
                )
                await Client(l3).send(
                    {
                        "method": "subscribe",
                        "params": {
                            "channel": "level3",
                            "symbol": ["BTC/USD", "ETH/USD"],
                            "depth": 100,
                            "token": token,
                        },
                    }
                )
                scanner = FrameScanner()
                books: dict[tuple[str, str], Any] = {
                    ("v2", "BTC/USD"): L2BookCore("BTC/USD", 100, 1, 8),
                    ("v2", "ETH/USD"): L2BookCore("ETH/USD", 100, 2, 8),
                    ("v1", "XBT/USD"): L2BookCore("XBT/USD", 100),
                    ("v1", "ETH/USD"): L2BookCore("ETH/USD", 100),
                    ("l3", "BTC/USD"): L3Consumer("BTC/USD", 100, 1, 8),
                    ("l3", "ETH/USD"): L3Consumer("ETH/USD", 100, 2, 8),
                }
                outcomes: dict[tuple[str, str], list[bool]] = {key: [] for key in books}
                # The corrupted price (L2) or order id (L3) per book, while it is tracked.
                victims: dict[tuple[str, str], Any] = {}
                still_wrong: dict[tuple[str, str], int] = dict.fromkeys(books, 0)

                def victim_in_top10(key: tuple[str, str], victim: Any) -> bool:
                    book = books[key]
                    if key[0] == "l3":
                        where = book.where.get(victim)
                        return where is not None and any(
                            price == where[1] for price, _ in book.levels(where[0], 10)
                        )
                    return victim in [price for price, _ in book.bids(10)]

                def apply(api: str, frame: str) -> None:
                    if scanner.scan(frame) not in (KIND_BOOK, KIND_V1_BOOK, KIND_LEVEL3):
                        return
                    key = (api, scanner.symbol)
                    book = books[key]
                    try:
                        book.apply_scanned(scanner)
                        ok = True
                    except ChecksumError:
                        ok = False
                    outcomes[key].append(ok)
                    if api == "l3":
                        mentioned = [e.order_id for e in scanner.bids + scanner.asks]
                        last_bid = scanner.bids[-1].order_id if scanner.bids else None
                    else:
                        mentioned = [
                            parse_mantissa(e.price, book.price_precision)
                            for e in scanner.bids + scanner.asks
                        ]
                        last_bid = mentioned[len(scanner.bids) - 1] if scanner.bids else None
                    victim = victims.get(key)
                    if victim is None:
                        if not ok and key not in victims:  # the corrupting message
                            victims[key] = last_bid  # the wrong bid entry is appended last
                    elif victim in mentioned:
                        victims[key] = None  # a real change re-sent it: no longer tracked
                    elif victim_in_top10(key, victim):
                        assert not ok, key  # still wrong, and nothing repaired it
                        still_wrong[key] += 1

                async def sync() -> None:
                    """Receive everything sent so far: a pong comes after earlier frames."""
                    for api, ws in sockets.items():
                        client = Client(ws)
                        await client.send({"event": "ping"} if api == "v1" else {"method": "ping"})
                        pong = is_method("pong")
                        _, frames = await client.until(
                            lambda m, p=pong: (
                                p(m) or (isinstance(m, dict) and m.get("event") == "pong")
                            )
                        )
                        for frame in frames:
                            apply(api, frame)

                await sync()
                sim.step(count=60)
                await sync()
                assert all(outcomes.values()) and all(all(o) for o in outcomes.values())
                marks = {key: len(o) for key, o in outcomes.items()}

                sim.inject("corrupt", symbol="BTC/USD")
                sim.step(count=60)
                await sync()
                for key, results in outcomes.items():
                    fresh = results[marks[key] :]
                    if key[1] in ("BTC/USD", "XBT/USD"):
                        assert fresh[0] is False, key  # the very next message fails
                        assert still_wrong[key] > 0, key  # and the book stays wrong after it
                    else:
                        assert fresh and all(fresh), key  # the other symbol is untouched
                assert sim.counters["corrupted"] == 3

                # Resubscribing brings a fresh snapshot that verifies, and updates that do.
                await Client(v2).send(
                    {"method": "unsubscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}}
                )
                await Client(v2).send(_book_request(["BTC/USD"], 100))
                mark = len(outcomes[("v2", "BTC/USD")])
                sim.step(count=30)
                await sync()
                fresh = outcomes[("v2", "BTC/USD")][mark:]
                assert len(fresh) > 10 and all(fresh)

    run(body())


def test_malformed_frame_then_normal_traffic() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD"], rate=5, faults=["malformed@0.3s"]) as sim,
            connect(sim.url_v2) as v2,
            connect(sim.url_v1) as v1,
        ):
            for ws in (v2, v1):
                await ws.recv()  # status
                frame = await asyncio.wait_for(ws.recv(), 2)
                with pytest.raises(ValueError):
                    json.loads(frame)
            sim.inject("malformed")
            frame = await asyncio.wait_for(v2.recv(), 2)
            with pytest.raises(ValueError):
                json.loads(frame)
            await Client(v2).send({"method": "ping", "req_id": 1})
            pong = loads(await asyncio.wait_for(v2.recv(), 2))
            assert pong["method"] == "pong"
            assert sim.counters["fault.malformed"] == 2

    run(body())


def test_status_changes_pause_the_flow_and_come_back() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD"], rate=300, seed=5) as sim,
            connect(sim.url_v2, max_queue=None) as v2,
            connect(sim.url_v1) as v1,
        ):
            client = Client(v2)
            await client.until(is_channel("status"))
            await client.send(_book_request(["BTC/USD"]))
            await client.send(
                {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}}
            )
            await client.until(is_channel("book", "snapshot"))

            sim.inject("maintenance", seconds=0.4)
            status, _ = await client.until(is_channel("status"))
            assert status["data"][0]["system"] == "maintenance"
            v1_status, _ = await Client(v1).until(lambda m: m.get("status") == "maintenance")
            assert v1_status["event"] == "systemStatus"
            status, during = await client.until(is_channel("status"), timeout=2)
            assert status["data"][0]["system"] == "online"
            assert not [f for f in during if '"channel":"book"' in f or '"channel":"trade"' in f]
            await client.until(is_channel("book", "update"))  # flowing again

            sim.inject("cancel_only")
            await client.until(
                lambda m: m.get("channel") == "status" and m["data"][0]["system"] == "cancel_only"
            )
            count = sim.engines["BTC/USD"].order_count
            await asyncio.sleep(0.3)
            assert sim.engines["BTC/USD"].order_count < count  # only cancels
            sim.inject("online")
            status, during = await client.until(
                lambda m: m.get("channel") == "status" and m["data"][0]["system"] == "online"
            )
            assert any('"channel":"book"' in f for f in during)
            assert not [f for f in during if '"channel":"trade","type":"update"' in f]
            await client.until(is_channel("trade", "update"), timeout=3)

    run(body())


def test_ratelimit_refuses_the_next_subscribe() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD"], rate=5) as sim,
            connect(sim.url_v2) as v2,
            connect(sim.url_v1) as v1,
        ):
            client = Client(v2)
            sim.inject("ratelimit", count=2)
            request = _book_request(["BTC/USD"]) | {"req_id": 9}
            await client.send(request)
            error, _ = await client.until(is_method("subscribe"))
            assert error["success"] is False and error["error"] == "Exceeded msg rate"
            assert error["req_id"] == 9
            await Client(v1).send(
                {
                    "event": "subscribe",
                    "pair": ["XBT/USD"],
                    "subscription": {"name": "book"},
                    "reqid": 4,
                }
            )
            v1_error, _ = await Client(v1).until(lambda m: m.get("event") == "error")
            assert v1_error == {
                "errorMessage": "Exceeded msg rate",
                "event": "error",
                "reqid": 4,
            }
            await client.send(request)
            ack, _ = await client.until(is_method("subscribe"))
            assert ack["success"] is True

    run(body())


def test_idle_connections_are_closed_but_pinging_ones_stay() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD"], rate=5, idle_timeout=0.5) as sim,
            connect(sim.url_v2) as idle,
            connect(sim.url_v2) as busy,
        ):
            loop = asyncio.get_running_loop()
            start = loop.time()
            for _ in range(8):  # 1.2 s of pings every 0.15 s on one connection
                await Client(busy).send({"method": "ping"})
                await asyncio.sleep(0.15)
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(idle.recv(), 2)
            assert idle.close_code == 1000 and idle.close_reason == "Inactivity timeout"
            assert loop.time() - start < 2.0
            await Client(busy).send({"method": "ping", "req_id": 3})
            await Client(busy).until(is_method("pong", req_id=3))
            assert sim.counters["idle_close"] == 1

    run(body())


def test_connection_rate_limit_and_refuse_answer_429() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD"], rate=5, connect_limit=(2, 60.0)) as sim,
            connect(sim.url_v2),
            connect(sim.url_v1),
        ):
            with pytest.raises(InvalidStatus) as info:
                async with connect(sim.url_v2):
                    pass
            assert info.value.response.status_code == 429
        async with Simulator(symbols=["BTC/USD"], rate=5, connect_limit=None) as sim:
            sim.inject(Fault("refuse", count=1))
            with pytest.raises(InvalidStatus) as info:
                async with connect(sim.url_v2):
                    pass
            assert info.value.response.status_code == 429
            async with connect(sim.url_v2) as ws:
                await ws.recv()
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"ws://127.0.0.1:{sim.port}/nowhere"):
                    pass
            assert info.value.response.status_code == 404
            assert sim.counters["http.429"] == 1

    run(body())


def test_slow_consumer_is_dropped() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD"], rate=500, max_queue=30) as sim,
            connect(sim.url_v2) as ws,
        ):
            await Client(ws).send(_book_request(["BTC/USD"], 1000))
            sim.inject("stall", seconds=1.0)  # frames pile up in its queue
            with pytest.raises(ConnectionClosedError):
                while True:
                    await asyncio.wait_for(ws.recv(), 3)
            assert sim.counters["slow_consumer_drop"] == 1

    run(body())


def test_inject_validates_its_arguments() -> None:
    async def body() -> None:
        async with Simulator(symbols=["BTC/USD"], rate=1) as sim:
            for kwargs in (
                {"kind": "explode"},
                {"kind": "corrupt", "symbol": "DOGE/USD"},
                {"kind": "drop", "seconds": 1.0},
                {"kind": "stall", "count": 2},
                {"kind": "refuse", "count": 0},
            ):
                kind = kwargs.pop("kind")
                with pytest.raises(ValueError):
                    sim.inject(kind, **kwargs)  # type: ignore[arg-type]

    run(body())
    with pytest.raises(RuntimeError):
        Simulator(symbols=["BTC/USD"]).inject("drop")
    with pytest.raises(ValueError):
        Simulator(symbols=["BTC/USD"], faults=["corrupt:ETH/USD@1s"])
    with pytest.raises(ValueError):
        Simulator(host="0.0.0.0")
