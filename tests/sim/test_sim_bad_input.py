"""Bad requests get Kraken-like errors, never a crash: a seeded fuzzer over request shapes."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from bookengine.auth import fetch_token
from bookengine.sim import Simulator
from bookengine.sim.server import _Connection

from .helpers import run

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    10.0,
    1e9,
    "10",
    "",
    "x" * 300,
    [],
    [10],
    {},
    {"a": 1},
    [1, 2],
    [None],
]
# Each field mostly draws plausible values, so that odd ones meet otherwise valid requests.
CHANNELS: list[Any] = ["book", "level3", "trade", "instrument", "heartbeat", "ohlc", 3, None]
SYMBOLS: list[Any] = [["BTC/USD"], ["BTC/USD"], ["XBT/USD"], ["BTC/USD", "BTC/USD"], "BTC/USD"]
DEPTHS: list[Any] = [10, 25, 100, 1000, 10.0, True, "10", -1, 42, None]
SNAPSHOTS: list[Any] = [True, False, "no", None, 1]
PAIRS: list[Any] = [["XBT/USD"], ["XBT/USD", "ETH/USD"], ["BTC/USD"], "XBT/USD", [1]]


def _pick(rng: random.Random, plausible: list[Any]) -> Any:
    return rng.choice(plausible) if rng.random() < 0.85 else rng.choice(ODD_VALUES)


def _v2_request(rng: random.Random, token: str) -> Any:
    if rng.random() < 0.05:
        return rng.choice(ODD_VALUES)
    params: dict[str, Any] = {}
    for key, choices in (
        ("channel", CHANNELS),
        ("symbol", SYMBOLS),
        ("depth", DEPTHS),
        ("snapshot", SNAPSHOTS),
        ("token", [token, token, "forged"]),
    ):
        if rng.random() < 0.85:
            params[key] = _pick(rng, choices)
    request: dict[str, Any] = {
        "method": _pick(rng, ["subscribe", "subscribe", "unsubscribe", "ping", "add_order"])
    }
    if rng.random() < 0.95:
        request["params"] = params if rng.random() < 0.95 else rng.choice(ODD_VALUES)
    if rng.random() < 0.7:
        request["req_id"] = _pick(rng, [1, 2**40])
    return request


def _v1_request(rng: random.Random, token: str) -> Any:
    del token
    if rng.random() < 0.05:
        return rng.choice(ODD_VALUES)
    subscription = {"name": _pick(rng, ["book", "book", "ohlc"]), "depth": _pick(rng, DEPTHS)}
    request: dict[str, Any] = {
        "event": _pick(rng, ["subscribe", "subscribe", "unsubscribe", "ping", "heartbeat"]),
        "pair": _pick(rng, PAIRS),
        "subscription": subscription if rng.random() < 0.95 else rng.choice(ODD_VALUES),
    }
    if rng.random() < 0.7:
        request["reqid"] = _pick(rng, [1, 2**40])
    return request


def test_fuzzed_requests_always_get_an_answer_and_never_crash() -> None:
    async def body() -> None:
        async with Simulator(symbols=["BTC/USD"], rate=20, seed=1) as sim:
            token = await asyncio.to_thread(fetch_token, sim.rest_url, sim.api_key, sim.api_secret)
            rng = random.Random(1234)
            for api, make in (("v2", _v2_request), ("level3", _v2_request), ("v1", _v1_request)):
                # A connection without a socket: the request handlers only enqueue frames.
                conn = _Connection(None, api, 2**63 + 1, asyncio.Queue())  # type: ignore[arg-type]
                sim._connections[conn] = None
                for _ in range(2000):
                    before = conn.queue.qsize()
                    raw = json.dumps(make(rng, token))
                    sim._on_message(conn, raw if rng.random() < 0.95 else raw[:-1])
                    assert conn.queue.qsize() > before, raw  # every request is answered
                while not conn.queue.empty():
                    frame = conn.queue.get_nowait()
                    json.loads(frame)  # every answer is JSON
                sim._forget(conn)
            assert sim.counters["internal_error"] == 0

    run(body())
