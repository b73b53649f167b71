"""Live: the feed (level3 + trade + executions) against the simulator tracks own orders.

An own order placed with ``add_order`` on the simulator's private path is announced on
``executions``; the feed's analytics tracks it in the level3 book with the engine's exact queue
position, and reports its outcome from the trade join: one order is filled by a market order,
another cancelled.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect

from bookengine.analytics import OrderOutcome, QueueChanged
from bookengine.auth import fetch_token
from bookengine.feed import KrakenFeed
from bookengine.sim import Simulator

from .test_sim_trading import SYMBOL, is_method, price_text, run, until


def _engine_position(sim: Simulator, order_id: str) -> tuple[int, int, int]:
    """(orders ahead, qty ahead, level qty) in the engine itself: the truth."""
    engine = sim.engines[SYMBOL]
    order = engine.order(order_id)
    assert order is not None
    level = engine.side(order.side == "buy").level(order.price)
    assert level is not None
    ahead = qty = 0
    for other in level.orders.values():
        if other.order_id == order_id:
            break
        ahead += 1
        qty += other.qty
    return ahead, qty, level.qty


def test_feed_tracks_own_orders_to_their_outcomes() -> None:
    async def body() -> None:
        async with Simulator([SYMBOL], manual=True, seed=21, target_levels=40) as sim:
            events: list[Any] = []
            feed = KrakenFeed(
                level3=[SYMBOL],
                url=sim.url_v2,
                level3_url=sim.url_level3,
                rest_url=sim.rest_url,
                auth_url=sim.url_auth,
                api_key=sim.api_key,
                api_secret=sim.api_secret,
                track_own_orders=True,
                on_event=events.append,
                liveness_s=30.0,
            )
            assert feed.trade_symbols == (SYMBOL,)  # the trade join needs the trades
            analytics = feed.analytics
            assert analytics is not None

            async def wait_for(predicate: Callable[[Any], bool], timeout: float = 20.0) -> Any:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + timeout
                while loop.time() < deadline:
                    for event in events:
                        if predicate(event):
                            return event
                    await asyncio.sleep(0.02)
                raise AssertionError("timed out waiting for an event")

            async with feed:
                await feed.wait_connected(30)
                await wait_for(lambda e: getattr(e, "key", "") == f"level3:{SYMBOL}")
                token = await asyncio.to_thread(
                    fetch_token, sim.rest_url, sim.api_key, sim.api_secret
                )
                engine = sim.engines[SYMBOL]
                async with connect(sim.url_auth) as trader:

                    async def add(side: str, order_type: str, qty: str, price: int = 0) -> str:
                        params: dict[str, Any] = {
                            "order_type": order_type,
                            "side": side,
                            "order_qty": qty,
                            "symbol": SYMBOL,
                            "token": token,
                        }
                        if order_type == "limit":
                            params["limit_price"] = price_text(price)
                        await trader.send(json.dumps({"method": "add_order", "params": params}))
                        answer = await until(trader, is_method("add_order"))
                        assert answer["success"], answer
                        return str(answer["result"]["order_id"])

                    bid = engine.best_bid()
                    assert bid is not None
                    # 1. Joins the back of the best bid: tracked with the engine's position.
                    first = await add("buy", "limit", "0.07", bid)
                    started = await wait_for(
                        lambda e: isinstance(e, QueueChanged) and e.order_id == first
                    )
                    assert started.cause == "tracked" and started.qty == 7_000_000
                    ahead, qty_ahead, level_qty = _engine_position(sim, first)
                    assert (started.orders_ahead, started.qty_ahead) == (ahead, qty_ahead)
                    assert started.level_qty == level_qty and started.qty_behind == 0
                    assert analytics.tracked[first].own
                    # 2. Another own order deeper, then cancelled.
                    second = await add("buy", "limit", "0.03", bid - 4)
                    await wait_for(lambda e: isinstance(e, QueueChanged) and e.order_id == second)
                    await trader.send(
                        json.dumps(
                            {
                                "method": "cancel_order",
                                "params": {"order_id": [second], "token": token},
                            }
                        )
                    )
                    await until(trader, is_method("cancel_order"))
                    # 3. A market sell of the whole best level fills the first order.
                    level = engine.bids.level(bid)
                    assert level is not None
                    sell = level.qty
                    await add("sell", "market", f"{sell // 10**8}.{sell % 10**8:08d}")
                    for _ in range(10):  # time passes: undecided reductions get decided
                        sim.step(SYMBOL)
                        await asyncio.sleep(0.1)
                    filled = await wait_for(
                        lambda e: isinstance(e, OrderOutcome) and e.order_id == first and e.final
                    )
                    cancelled = await wait_for(
                        lambda e: isinstance(e, OrderOutcome) and e.order_id == second and e.final
                    )
            assert (filled.outcome, filled.filled_qty, filled.remaining_qty) == (
                "filled",
                7_000_000,
                0,
            )
            assert (cancelled.outcome, cancelled.filled_qty) == ("cancelled", 0)
            # The private channel agrees with the trade join.
            assert analytics.tracked[first].exec_status == "filled"
            assert analytics.tracked[first].exec_filled == "0.07"
            assert analytics.tracked[second].exec_status == "canceled"
            fills = [
                c for c in analytics.classifications if c.change.order_id == first and c.is_fill
            ]
            assert fills and sum(c.traded_qty for c in fills) == 7_000_000

    run(body(), timeout=90.0)
