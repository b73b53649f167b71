"""Message shapes and request handling, checked against the protocol reference."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import connect

from bookengine.auth import fetch_token
from bookengine.sim import Simulator, is_order_id
from bookengine.timestamps import parse_epoch_ns, parse_rfc3339_ns

from .helpers import PLAIN_NUMBER, Client, is_channel, is_method, number_texts, run

V1_PRICE = re.compile(r"[0-9]+\.[0-9]{5}")  # XBT/USD prices: 5 decimals on v1
V1_VOLUME = re.compile(r"[0-9]+\.[0-9]{8}")


def _rfc3339(text: Any) -> None:
    assert isinstance(text, str) and parse_rfc3339_ns(text) > 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def _check_ack(
    message: dict[str, Any], method: str, req_id: int | None, result: dict[str, Any]
) -> None:
    keys = {"method", "result", "success", "time_in", "time_out"} | (
        {"req_id"} if req_id else set()
    )
    assert set(message) == keys, message
    assert message["method"] == method and message["success"] is True
    assert message.get("req_id") == req_id
    assert message["result"] == result
    _rfc3339(message["time_in"])
    _rfc3339(message["time_out"])
    assert parse_rfc3339_ns(message["time_in"]) <= parse_rfc3339_ns(message["time_out"])


def _check_error(
    message: dict[str, Any], error: str, method: str | None, req_id: int | None, symbol: str | None
) -> None:
    keys = {"error", "success", "time_in", "time_out"}
    keys |= {"method"} if method else set()
    keys |= {"req_id"} if req_id is not None else set()
    keys |= {"symbol"} if symbol else set()
    assert set(message) == keys, message
    assert message["success"] is False and message["error"] == error
    assert message.get("method") == method and message.get("req_id") == req_id
    assert message.get("symbol") == symbol
    _rfc3339(message["time_in"])


def test_v2_status_acks_snapshots_updates_trades_and_pong() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD", "ETH/USD"], rate=300, seed=2) as sim,
            connect(sim.url_v2) as ws,
        ):
            client = Client(ws)
            status = (await client.until(is_channel("status")))[0]
            assert set(status) == {"channel", "type", "data"} and status["type"] == "update"
            (data,) = status["data"]
            assert set(data) == {"api_version", "connection_id", "system", "version"}
            assert data["api_version"] == "v2" and data["system"] == "online"
            assert isinstance(data["connection_id"], int) and 2**63 < data["connection_id"] < 2**64

            await client.send({"method": "ping", "req_id": 101})
            pong = (await client.until(is_method("pong")))[0]
            assert (
                set(pong) == {"method", "req_id", "time_in", "time_out"} and pong["req_id"] == 101
            )
            _rfc3339(pong["time_in"])
            await client.send({"method": "ping"})
            pong = (await client.until(is_method("pong")))[0]
            assert set(pong) == {"method", "time_in", "time_out"}

            await client.send(
                {"method": "subscribe", "params": {"channel": "instrument"}, "req_id": 3}
            )
            ack = (await client.until(is_method("subscribe")))[0]
            _check_ack(
                ack | {"result": {k: v for k, v in ack["result"].items() if k != "warnings"}},
                "subscribe",
                3,
                {"channel": "instrument", "snapshot": True},
            )
            instrument = (await client.until(is_channel("instrument", "snapshot")))[0]
            pairs = {p["symbol"]: p for p in instrument["data"]["pairs"]}
            assert set(pairs) == {"BTC/USD", "ETH/USD"}
            for spec in sim.specs.values():
                pair = pairs[spec.symbol]
                assert pair["price_precision"] == spec.price_precision
                assert pair["qty_precision"] == spec.qty_precision
                assert pair["price_increment"] == Decimal(1).scaleb(-spec.price_precision)
                assert pair["qty_increment"] == Decimal(1).scaleb(-spec.qty_precision)
                assert {"base", "quote", "status", "qty_min", "cost_precision"} <= set(pair)
            assert {a["id"] for a in instrument["data"]["assets"]} == {"BTC", "ETH", "USD"}

            await client.send(
                {
                    "method": "subscribe",
                    "params": {
                        "channel": "book",
                        "symbol": ["BTC/USD", "ETH/USD"],
                        "depth": 25,
                    },
                    "req_id": 7,
                }
            )
            for symbol in ("BTC/USD", "ETH/USD"):
                ack = (await client.until(is_method("subscribe")))[0]
                _check_ack(
                    ack,
                    "subscribe",
                    7,
                    {"channel": "book", "depth": 25, "snapshot": True, "symbol": symbol},
                )
                snap = (await client.until(is_channel("book", "snapshot")))[0]
                (book,) = snap["data"]
                assert set(book) == {"symbol", "bids", "asks", "checksum", "timestamp"}
                assert book["symbol"] == symbol and len(book["bids"]) == len(book["asks"]) == 25
                for level in book["bids"] + book["asks"]:
                    assert set(level) == {"price", "qty"}
                    assert _is_number(level["price"]) and _is_number(level["qty"])
                prices = [lv["price"] for lv in book["bids"]]
                assert prices == sorted(prices, reverse=True)
                asks = [lv["price"] for lv in book["asks"]]
                assert asks == sorted(asks) and prices[0] < asks[0]
                assert isinstance(book["checksum"], int) and 0 <= book["checksum"] < 2**32
                _rfc3339(book["timestamp"])

            zero_seen = False
            for _ in range(100):
                frame = await client.recv()
                message = Client.loads(frame)
                if message.get("channel") != "book":
                    continue
                assert message["type"] == "update"
                (book,) = message["data"]
                assert set(book) == {"symbol", "bids", "asks", "checksum", "timestamp"}
                assert book["bids"] or book["asks"]
                for text in number_texts(frame):
                    assert PLAIN_NUMBER.fullmatch(text), text
                zero_seen |= any(lv["qty"] == 0 for lv in book["bids"] + book["asks"])
            assert zero_seen

            await client.send(
                {
                    "method": "unsubscribe",
                    "params": {
                        "channel": "book",
                        "symbol": ["BTC/USD", "ETH/USD"],
                        "depth": 25,
                    },
                    "req_id": 8,
                }
            )
            acks = []
            for _ in range(2):
                ack, _ = await client.until(is_method("unsubscribe"))
                acks.append(ack)
            for symbol, ack in zip(("BTC/USD", "ETH/USD"), acks, strict=True):
                _check_ack(
                    ack,
                    "unsubscribe",
                    8,
                    {"channel": "book", "depth": 25, "snapshot": True, "symbol": symbol},
                )
            # Nothing more for the book once both acks are in (frames already queued aside).
            await client.send({"method": "ping", "req_id": 9})
            _, skipped = await client.until(is_method("pong", req_id=9))
            await asyncio.sleep(0.2)
            await client.send({"method": "ping", "req_id": 10})
            _, skipped = await client.until(is_method("pong", req_id=10))
            assert not [f for f in skipped if '"channel":"book"' in f]

            await client.send(
                {
                    "method": "subscribe",
                    "params": {"channel": "trade", "symbol": ["BTC/USD"]},
                    "req_id": 11,
                }
            )
            ack = (await client.until(is_method("subscribe")))[0]
            _check_ack(
                ack,
                "subscribe",
                11,
                {"channel": "trade", "snapshot": True, "symbol": "BTC/USD"},
            )
            snap = (await client.until(is_channel("trade", "snapshot")))[0]
            update = (await client.until(is_channel("trade", "update")))[0]
            for trade in snap["data"] + update["data"]:
                assert set(trade) == {
                    "symbol",
                    "side",
                    "price",
                    "qty",
                    "ord_type",
                    "trade_id",
                    "timestamp",
                }
                assert trade["side"] in ("buy", "sell") and trade["ord_type"] in (
                    "market",
                    "limit",
                )
                assert isinstance(trade["trade_id"], int) and _is_number(trade["qty"])
                _rfc3339(trade["timestamp"])
            ids = [t["trade_id"] for t in snap["data"] + update["data"]]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)

    run(body())


def test_v2_request_errors() -> None:
    async def body() -> None:
        async with Simulator(symbols=["BTC/USD"], rate=5, seed=2) as sim, connect(sim.url_v2) as ws:
            client = Client(ws)

            async def error_for(request: Any, raw: bool = False) -> dict[str, Any]:
                await (ws.send(request) if raw else client.send(request))
                message, _ = await client.until(
                    lambda m: isinstance(m, dict) and m.get("success") is False
                )
                return dict(message)

            await client.send(
                {
                    "method": "subscribe",
                    "params": {"channel": "book", "symbol": ["XBT/USD", "BTC/USD"]},
                    "req_id": 1,
                }
            )
            _check_error(
                (await client.until(is_method("subscribe")))[0],
                "Currency pair not supported XBT/USD",
                "subscribe",
                1,
                "XBT/USD",
            )
            ack = (await client.until(is_method("subscribe")))[0]
            assert ack["success"] is True and ack["result"]["symbol"] == "BTC/USD"

            error = await error_for(
                {
                    "method": "subscribe",
                    "params": {"channel": "book", "symbol": ["BTC/USD"]},
                    "req_id": 2,
                }
            )
            _check_error(error, "Already subscribed", "subscribe", 2, "BTC/USD")
            error = await error_for(
                {
                    "method": "subscribe",
                    "params": {
                        "channel": "trade",
                        "symbol": ["BTC/USD", "ETH/EUR"],
                        "depth": 10,
                    },
                    "req_id": 3,
                }
            )
            _check_error(error, "Currency pair not supported ETH/EUR", "subscribe", 3, "ETH/EUR")
            for depth in (42, 0, True, "10"):
                error = await error_for(
                    {
                        "method": "subscribe",
                        "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": depth},
                        "req_id": 4,
                    }
                )
                _check_error(error, "Subscription depth not supported", "subscribe", 4, "BTC/USD")
            unsubscribe = {
                "method": "unsubscribe",
                "params": {"channel": "trade", "symbol": ["BTC/USD"]},
                "req_id": 5,
            }
            await client.send(unsubscribe)  # subscribed by req 3: acknowledged
            ack = (await client.until(is_method("unsubscribe")))[0]
            _check_ack(ack, "unsubscribe", 5, {"channel": "trade", "symbol": "BTC/USD"})
            error = await error_for(unsubscribe)
            _check_error(error, "Subscription Not Found", "unsubscribe", 5, "BTC/USD")
            error = await error_for(
                {
                    "method": "subscribe",
                    "params": {"channel": "level3", "symbol": ["BTC/USD"], "token": "x"},
                    "req_id": 6,
                }
            )
            assert (
                error["error"].startswith("Channel level3 not supported") and error["req_id"] == 6
            )
            error = await error_for(
                {
                    "method": "subscribe",
                    "params": {"channel": "ohlc", "symbol": ["BTC/USD"]},
                    "req_id": 7,
                }
            )
            assert "ohlc" in error["error"] and error["method"] == "subscribe"
            error = await error_for(
                {"method": "subscribe", "params": {"channel": "book"}, "req_id": 8}
            )
            assert error["error"].startswith("EGeneral:Invalid arguments") and error["req_id"] == 8
            error = await error_for({"method": "subscribe", "req_id": 9})
            assert error["error"].startswith("EGeneral:Invalid arguments") and error["req_id"] == 9
            error = await error_for({"method": "add_order", "req_id": 10})
            _check_error(error, "Method not found", "add_order", 10, None)
            error = await error_for("{not json", raw=True)
            _check_error(error, "Malformed request", None, None, None)
            error = await error_for("[1, 2]", raw=True)
            _check_error(error, "Malformed request", None, None, None)
            error = await error_for(b"\x00\x01", raw=True)
            _check_error(error, "Malformed request", None, None, None)
            error = await error_for({"req_id": 11})
            _check_error(error, "Malformed request", None, 11, None)
            # The connection survived all of it.
            await client.send({"method": "ping", "req_id": 12})
            await client.until(is_method("pong", req_id=12))

    run(body())


def test_level3_token_and_shapes() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["ETH/USD"], rate=300, seed=3) as sim,
            connect(sim.url_level3, max_size=1 << 24) as ws,
        ):
            client = Client(ws)
            for params, expected in (
                ({}, "EGeneral:Invalid arguments:token"),
                ({"token": "forged"}, "ESession:Invalid session"),
            ):
                await client.send(
                    {
                        "method": "subscribe",
                        "params": {"channel": "level3", "symbol": ["ETH/USD"], **params},
                        "req_id": 5,
                    }
                )
                _check_error(
                    (await client.until(is_method("subscribe")))[0],
                    expected,
                    "subscribe",
                    5,
                    None,
                )
            await client.send(
                {
                    "method": "subscribe",
                    "params": {"channel": "book", "symbol": ["ETH/USD"]},
                    "req_id": 6,
                }
            )
            error = (await client.until(is_method("subscribe")))[0]
            assert error["success"] is False and "book" in error["error"]

            token = await asyncio.to_thread(fetch_token, sim.rest_url, sim.api_key, sim.api_secret)
            await client.send(
                {
                    "method": "subscribe",
                    "params": {
                        "channel": "level3",
                        "symbol": ["ETH/USD", "BTC/USD"],
                        "depth": 100,
                        "token": token,
                    },
                    "req_id": 7,
                }
            )
            ack = (await client.until(is_method("subscribe")))[0]
            _check_ack(
                ack,
                "subscribe",
                7,
                {"channel": "level3", "depth": 100, "snapshot": True, "symbol": "ETH/USD"},
            )
            snap = (await client.until(is_channel("level3", "snapshot")))[0]
            error = (await client.until(is_method("subscribe")))[0]
            _check_error(error, "Currency pair not supported BTC/USD", "subscribe", 7, "BTC/USD")
            (book,) = snap["data"]
            assert set(book) == {"symbol", "checksum", "bids", "asks", "timestamp"}
            levels = {o["limit_price"] for o in book["bids"]}
            assert len(levels) == 100
            for order in book["bids"] + book["asks"]:
                assert set(order) == {"order_id", "limit_price", "order_qty", "timestamp"}
                assert is_order_id(order["order_id"])
                _rfc3339(order["timestamp"])
                assert len(order["timestamp"].split(".")[1]) == 10  # 9 digits + "Z"
            events: set[str] = set()
            for _ in range(200):
                frame = await client.recv()
                message = Client.loads(frame)
                if message.get("channel") != "level3":
                    continue
                (book,) = message["data"]
                assert set(book) == {"symbol", "checksum", "bids", "asks", "timestamp"}
                for order in book["bids"] + book["asks"]:
                    assert set(order) == {
                        "event",
                        "order_id",
                        "limit_price",
                        "order_qty",
                        "timestamp",
                    }
                    events.add(order["event"])
                for text in number_texts(frame):
                    assert PLAIN_NUMBER.fullmatch(text), text
            assert events == {"add", "modify", "delete"}
            await client.send(
                {
                    "method": "unsubscribe",
                    "params": {"channel": "level3", "symbol": ["ETH/USD"], "token": token},
                    "req_id": 8,
                }
            )
            ack = (await client.until(is_method("unsubscribe")))[0]
            _check_ack(ack, "unsubscribe", 8, {"channel": "level3", "symbol": "ETH/USD"})

    run(body())


def test_heartbeat_only_when_subscribed_and_idle() -> None:
    async def body() -> None:
        async with Simulator(symbols=["BTC/USD"], rate=0.2, seed=1, heartbeat_interval=0.3) as sim:
            for url, heartbeat in (
                (sim.url_v2, {"channel": "heartbeat"}),
                (sim.url_v1, {"event": "heartbeat"}),
            ):
                async with connect(url) as ws:
                    client = Client(ws)
                    await client.recv()  # status
                    await client.send(
                        {"method": "ping"} if url == sim.url_v2 else {"event": "ping"}
                    )
                    await client.recv()  # pong
                    try:
                        frame = await client.recv(timeout=0.8)
                    except asyncio.TimeoutError:
                        frame = None
                    assert frame is None  # no subscription: no heartbeat
                    if url == sim.url_v2:
                        await client.send(
                            {
                                "method": "subscribe",
                                "params": {"channel": "book", "symbol": ["BTC/USD"]},
                            }
                        )
                    else:
                        await client.send(
                            {
                                "event": "subscribe",
                                "pair": ["XBT/USD"],
                                "subscription": {"name": "book"},
                            }
                        )
                    loop = asyncio.get_running_loop()
                    await client.until(lambda m, hb=heartbeat: m == hb, timeout=2.0)
                    start = loop.time()
                    await client.until(lambda m, hb=heartbeat: m == hb, timeout=2.0)
                    assert loop.time() - start >= 0.15  # about one per interval, not a flood

    run(body())


def test_v1_shapes() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD"], rate=400, seed=8) as sim,
            connect(sim.url_v1) as ws,
        ):
            client = Client(ws)
            status = Client.loads(await client.recv())
            assert set(status) == {"connectionID", "event", "status", "version"}
            assert status["event"] == "systemStatus" and status["status"] == "online"
            assert status["connectionID"] > 2**63
            await client.send({"event": "ping", "reqid": 42})
            assert Client.loads(await client.recv()) == {"event": "pong", "reqid": 42}

            await client.send(
                {
                    "event": "subscribe",
                    "pair": ["XBT/USD", "BTC/USD"],
                    "subscription": {"name": "book", "depth": 10},
                    "reqid": 7,
                }
            )
            ack = Client.loads(await client.recv())
            assert set(ack) == {
                "channelID",
                "channelName",
                "event",
                "pair",
                "reqid",
                "status",
                "subscription",
            }
            assert (
                ack["status"] == "subscribed"
                and ack["channelName"] == "book-10"
                and ack["pair"] == "XBT/USD"
            )
            assert ack["subscription"] == {"depth": 10, "name": "book"} and ack["reqid"] == 7
            snapshot = Client.loads(await client.recv())
            error = Client.loads(await client.recv())
            assert error == {
                "errorMessage": "Currency pair not supported BTC/USD",
                "event": "subscriptionStatus",
                "pair": "BTC/USD",
                "reqid": 7,
                "status": "error",
                "subscription": {"depth": 10, "name": "book"},
            }
            assert snapshot[0] == ack["channelID"] and snapshot[-2:] == ["book-10", "XBT/USD"]
            assert set(snapshot[1]) == {"as", "bs"} and len(snapshot) == 4
            for price, volume, stamp in snapshot[1]["as"] + snapshot[1]["bs"]:
                assert V1_PRICE.fullmatch(price) and V1_VOLUME.fullmatch(volume)
                assert parse_epoch_ns(stamp) > 0 and re.fullmatch(r"[0-9]+\.[0-9]{6}", stamp)
            republished = both = 0
            for _ in range(400):
                message = Client.loads(await client.recv())
                if not isinstance(message, list):
                    continue
                payloads = message[1:-2]
                assert message[-2:] == ["book-10", "XBT/USD"] and 1 <= len(payloads) <= 2
                assert "c" in payloads[-1] and all("c" not in p for p in payloads[:-1])
                assert re.fullmatch(r"[0-9]+", payloads[-1]["c"])
                both += len(payloads) == 2
                for payload in payloads:
                    for key, levels in payload.items():
                        if key == "c":
                            continue
                        assert key in ("a", "b")
                        for level in levels:
                            assert len(level) in (3, 4) and V1_PRICE.fullmatch(level[0])
                            assert V1_VOLUME.fullmatch(level[1])
                            if len(level) == 4:
                                assert level[3] == "r"
                                republished += 1
            # Two-sided frames are rare (TWO_SIDED_SHARE; test_sim_fidelity counts them).
            assert republished > 0 and both <= 4

            for request, text in (
                (
                    {
                        "event": "subscribe",
                        "pair": ["XBT/USD"],
                        "subscription": {"name": "book", "depth": 42},
                    },
                    "Subscription depth not supported",
                ),
                (
                    {
                        "event": "subscribe",
                        "pair": ["XBT/USD"],
                        "subscription": {"name": "book", "depth": 10},
                    },
                    "Already subscribed",
                ),
                (
                    {
                        "event": "unsubscribe",
                        "pair": ["XBT/USD"],
                        "subscription": {"name": "book", "depth": 25},
                    },
                    None,
                ),
                (
                    {
                        "event": "unsubscribe",
                        "pair": ["XBT/USD"],
                        "subscription": {"name": "book", "depth": 10},
                    },
                    "Subscription Not Found",
                ),
                (
                    {
                        "event": "subscribe",
                        "pair": ["XBT/USD"],
                        "subscription": {"name": "ohlc"},
                    },
                    "Subscription name invalid",
                ),
            ):
                await client.send(request)
                message, _ = await client.until(
                    lambda m: isinstance(m, dict) and m.get("event") == "subscriptionStatus"
                )
                if text is None:
                    assert (
                        message["status"] == "unsubscribed" and message["channelName"] == "book-10"
                    )
                else:
                    assert message["status"] == "error" and message["errorMessage"] == text
            await ws.send("nope")
            message, _ = await client.until(
                lambda m: isinstance(m, dict) and m.get("event") == "error"
            )
            assert message == {"errorMessage": "Malformed request", "event": "error"}

    run(body())


def test_snapshot_false_sends_updates_only() -> None:
    async def body() -> None:
        async with (
            Simulator(symbols=["BTC/USD"], rate=300, seed=9) as sim,
            connect(sim.url_v2) as ws,
        ):
            client = Client(ws)
            await client.send(
                {
                    "method": "subscribe",
                    "params": {"channel": "book", "symbol": ["BTC/USD"], "snapshot": False},
                    "req_id": 1,
                }
            )
            ack, _ = await client.until(is_method("subscribe"))
            assert ack["result"] == {
                "channel": "book",
                "depth": 10,
                "snapshot": False,
                "symbol": "BTC/USD",
            }
            first, _ = await client.until(is_channel("book"))
            assert first["type"] == "update"
            # Incremental from the subscription point: a few levels, not a whole window.
            (book,) = first["data"]
            assert len(book["bids"]) + len(book["asks"]) < 10

    run(body())


def test_unknown_simulated_symbol_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="XBT/USD"):
        Simulator(symbols=["XBT/USD"])
