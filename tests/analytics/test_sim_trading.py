"""The simulator's private side: add_order / cancel_order and the executions channel, and the
engine's ground truth (why each order changed; user orders untouched by synthetic flow)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect

from bookengine.auth import fetch_token
from bookengine.sim import Simulator
from bookengine.sim.engine import MatchingEngine, derive_seed
from bookengine.sim.specs import spec_for

T = TypeVar("T")
SYMBOL = "BTC/USD"


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def until(
    ws: ClientConnection, predicate: Callable[[Any], bool], timeout: float = 15.0
) -> Any:
    """The first decoded frame satisfying ``predicate`` (numbers as Decimal)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = await asyncio.wait_for(ws.recv(), max(0.01, deadline - loop.time()))
        message = json.loads(frame, parse_float=Decimal)
        if predicate(message):
            return message


def is_method(method: str) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, dict) and m.get("method") == method


def is_exec(kind: str | None = None) -> Callable[[Any], bool]:
    return lambda m: m.get("channel") == "executions" and (kind is None or m.get("type") == kind)


def price_text(mantissa: int) -> str:
    return f"{mantissa // 10}.{mantissa % 10}"  # BTC/USD: 1 decimal


async def _token(sim: Simulator) -> str:
    return await asyncio.to_thread(fetch_token, sim.rest_url, sim.api_key, sim.api_secret)


def test_add_cancel_and_executions() -> None:
    async def body() -> None:
        async with Simulator([SYMBOL], manual=True, seed=2, target_levels=40) as sim:
            token = await _token(sim)
            engine = sim.engines[SYMBOL]
            async with connect(sim.url_auth) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "method": "subscribe",
                            "params": {
                                "channel": "executions",
                                "token": token,
                                "snap_orders": True,
                            },
                            "req_id": 1,
                        }
                    )
                )
                ack = await until(ws, is_method("subscribe"))
                assert ack["success"] and ack["result"]["channel"] == "executions"
                snapshot = await until(ws, is_exec("snapshot"))
                assert snapshot["data"] == [] and snapshot["sequence"] == 1
                bid = engine.best_bid()
                assert bid is not None
                price = bid - 5
                await ws.send(
                    json.dumps(
                        {
                            "method": "add_order",
                            "params": {
                                "order_type": "limit",
                                "side": "buy",
                                "limit_price": float(price_text(price)),
                                "order_qty": 0.25,
                                "symbol": SYMBOL,
                                "order_userref": 7,
                                "token": token,
                            },
                            "req_id": 2,
                        }
                    )
                )
                answer = await until(ws, is_method("add_order"))
                assert answer["success"] and answer["req_id"] == 2
                order_id = answer["result"]["order_id"]
                assert answer["result"]["order_userref"] == 7
                update = await until(ws, is_exec("update"))
                records = update["data"]
                assert [r["exec_type"] for r in records] == ["pending_new", "new"]
                assert records[1]["order_status"] == "new"
                assert records[1]["limit_price"] == Decimal(price_text(price))
                assert records[1]["order_qty"] == Decimal("0.25")
                resting = engine.order(order_id)
                assert resting is not None and resting.price == price
                assert resting.qty == 25_000_000 and order_id in engine.user_orders
                assert sim.own_order_ids() == [order_id]
                await ws.send(
                    json.dumps(
                        {
                            "method": "cancel_order",
                            "params": {"order_id": [order_id], "token": token},
                            "req_id": 3,
                        }
                    )
                )
                answer = await until(ws, is_method("cancel_order"))
                assert answer["success"] and answer["result"]["order_id"] == order_id
                update = await until(ws, is_exec("update"))
                (record,) = update["data"]
                assert (record["exec_type"], record["order_status"], record["reason"]) == (
                    "canceled",
                    "canceled",
                    "User requested",
                )
                assert engine.order(order_id) is None and sim.own_order_ids() == []
                # Unknown order, missing token, a float where a number must be exact.
                await ws.send(
                    json.dumps(
                        {
                            "method": "cancel_order",
                            "params": {"order_id": [order_id], "token": token},
                            "req_id": 4,
                        }
                    )
                )
                error = await until(ws, is_method("cancel_order"))
                assert not error["success"] and error["error"] == "EOrder:Unknown order"
                await ws.send(
                    json.dumps({"method": "add_order", "params": {"symbol": SYMBOL}, "req_id": 5})
                )
                error = await until(ws, is_method("add_order"))
                assert not error["success"] and "token" in error["error"]
                await ws.send(
                    json.dumps(
                        {
                            "method": "add_order",
                            "params": {
                                "order_type": "limit",
                                "side": "buy",
                                "limit_price": "650.05",  # 2 decimals: BTC/USD has 1
                                "order_qty": "1",
                                "symbol": SYMBOL,
                                "token": token,
                            },
                            "req_id": 6,
                        }
                    )
                )
                error = await until(ws, is_method("add_order"))
                assert not error["success"] and error["error"] == "EOrder:Invalid price"
            async with connect(sim.url_v2) as public:
                await public.send(json.dumps({"method": "add_order", "params": {}, "req_id": 9}))
                error = await until(public, is_method("add_order"))
                assert not error["success"]  # trading only on the private path
            assert sim.counters["internal_error"] == 0

    run(body())


def test_fills_as_taker_and_as_maker() -> None:
    async def body() -> None:
        async with Simulator([SYMBOL], manual=True, seed=3, target_levels=40) as sim:
            token = await _token(sim)
            engine = sim.engines[SYMBOL]
            async with connect(sim.url_auth) as ws:
                await ws.send(
                    json.dumps(
                        {"method": "subscribe", "params": {"channel": "executions", "token": token}}
                    )
                )
                await until(ws, is_exec("snapshot"))
                ask = engine.best_ask()
                assert ask is not None

                async def add(side: str, price: int | None, qty: str, req_id: int) -> str:
                    params: dict[str, Any] = {
                        "order_type": "market" if price is None else "limit",
                        "side": side,
                        "order_qty": qty,
                        "symbol": SYMBOL,
                        "token": token,
                    }
                    if price is not None:
                        params["limit_price"] = price_text(price)
                    await ws.send(
                        json.dumps({"method": "add_order", "params": params, "req_id": req_id})
                    )
                    answer = await until(ws, is_method("add_order"))
                    assert answer["success"], answer
                    return str(answer["result"]["order_id"])

                # A resting own sell at a new best ask, then an own market buy that takes it.
                maker = await add("sell", ask - 1, "0.1", 1)
                await until(ws, is_exec("update"))
                taker = await add("buy", None, "0.1", 2)
                records = []
                while len(records) < 5:  # the taker: 3 records; the maker: 2
                    records += (await until(ws, is_exec("update")))["data"]
                by_order: dict[str, list[Any]] = {}
                for record in records:
                    by_order.setdefault(record["order_id"], []).append(record)
                taker_types = [r["exec_type"] for r in by_order[taker]]
                assert taker_types == ["pending_new", "trade", "filled"]
                maker_types = [r["exec_type"] for r in by_order[maker]]
                assert maker_types == ["trade", "filled"]
                trade = by_order[maker][0]
                assert trade["liquidity_ind"] == "m" and by_order[taker][1]["liquidity_ind"] == "t"
                assert trade["last_qty"] == Decimal("0.1")
                assert trade["last_price"] == Decimal(price_text(ask - 1))
                assert trade["cost"] == Decimal(price_text(ask - 1)) * Decimal("0.1")
                assert by_order[maker][1]["cum_qty"] == Decimal("0.1")
                assert engine.order(maker) is None and sim.own_order_ids() == []

    run(body())


def test_engine_ground_truth_and_protected_user_orders() -> None:
    spec = spec_for(SYMBOL)
    engine = MatchingEngine(spec, derive_seed(9, SYMBOL), target_levels=50, warmup_steps=200)
    engine.history = []
    bid = engine.best_bid()
    assert bid is not None
    mine, _ = engine.add_limit("buy", bid - 3, spec.lot_qty, 0, user=True)
    for step in range(3_000):
        engine.step(step)
    engine._check()
    reasons = {change.reason for change in engine.history}
    assert reasons == {"fill", "partial_fill", "cancel", "reduce", "requeue"}
    touching = [c for c in engine.history if c.order_id == mine]
    assert all(c.reason in ("fill", "partial_fill") for c in touching)  # never the flow's cancel
    fills = [c for c in engine.history if c.reason in ("fill", "partial_fill")]
    assert all(c.trade_id > 0 and c.qty_after < c.qty_before for c in fills)
    assert all(c.qty_after == 0 for c in engine.history if c.reason in ("fill", "cancel"))
    requeues = [c for c in engine.history if c.reason == "requeue"]
    assert all(c.new_price > 0 for c in requeues)
    # One change per order per step: (order id, time) is a key.
    keys = [(c.order_id, c.timestamp_ns) for c in engine.history]
    assert len(keys) == len(set(keys))
