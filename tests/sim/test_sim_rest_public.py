"""Kraken's public REST on the simulator: AssetPairs, Assets, Time, SystemStatus.

The values must agree with the ``instrument`` channel (both come from the simulator's specs), and
python-kraken-sdk's own REST client must read them unmodified.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import connect

from bookengine.sim import Simulator
from bookengine.timestamps import parse_rfc3339_ns

from .helpers import Client, is_channel, run

PAIR_KEYS = {
    "altname",
    "wsname",
    "aclass_base",
    "base",
    "aclass_quote",
    "quote",
    "lot",
    "cost_decimals",
    "pair_decimals",
    "lot_decimals",
    "lot_multiplier",
    "leverage_buy",
    "leverage_sell",
    "fees",
    "fees_maker",
    "fee_volume_currency",
    "margin_call",
    "margin_stop",
    "ordermin",
    "costmin",
    "tick_size",
    "status",
}


def _get(url: str, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, json.loads(response.read(), parse_float=Decimal)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_asset_pairs_all_and_by_name() -> None:
    async def body() -> None:
        async with Simulator(rate=1) as sim:
            base = sim.rest_url + "/0/public/AssetPairs"
            status, answer = await asyncio.to_thread(_get, base)
            assert status == 200 and answer["error"] == []
            assert list(answer["result"]) == ["XXBTZUSD", "XETHZUSD", "XDGUSD", "PEPEUSD"]
            btc = answer["result"]["XXBTZUSD"]
            assert set(btc) == PAIR_KEYS
            assert (btc["altname"], btc["wsname"], btc["base"], btc["quote"]) == (
                "XBTUSD",
                "XBT/USD",
                "XXBT",
                "ZUSD",
            )
            assert (btc["pair_decimals"], btc["lot_decimals"], btc["cost_decimals"]) == (1, 8, 5)
            assert (btc["tick_size"], btc["ordermin"], btc["costmin"]) == ("0.1", "0.0001", "0.5")
            assert btc["status"] == "online" and btc["fees_maker"][0] == [0, Decimal("0.16")]
            doge = answer["result"]["XDGUSD"]
            assert doge["tick_size"] == "0.0000001" and doge["pair_decimals"] == 7
            # By v2 name and wsname the answer is keyed as requested; by altname/id, by id.
            for query, keys in (
                ("BTC/USD", ["BTC/USD"]),
                ("XBT/USD", ["XBT/USD"]),
                ("XBTUSD", ["XXBTZUSD"]),
                ("XXBTZUSD", ["XXBTZUSD"]),
                ("PEPE/USD,XDGUSD", ["PEPE/USD", "XDGUSD"]),
            ):
                status, answer = await asyncio.to_thread(_get, f"{base}?pair={query}")
                assert status == 200 and list(answer["result"]) == keys, (query, answer)
            for method in ("GET", "POST"):
                status, answer = await asyncio.to_thread(_get, f"{base}?pair=NOPE/USD", method)
                assert (status, answer) == (200, {"error": ["EQuery:Unknown asset pair"]})
            status, answer = await asyncio.to_thread(_get, f"{base}?pair=BTC/USD,NOPEUSD")
            assert answer == {"error": ["EQuery:Unknown asset pair"]}
            status, answer = await asyncio.to_thread(_get, sim.rest_url + "/0/public/Nope")
            assert (status, answer) == (404, {"error": ["EGeneral:Unknown method"]})

    run(body())


def test_assets_time_and_system_status() -> None:
    async def body() -> None:
        async with Simulator(rate=1) as sim:
            url = sim.rest_url + "/0/public/"
            _, answer = await asyncio.to_thread(_get, url + "Assets")
            assert answer["error"] == [] and list(answer["result"]) == [
                "XXBT",
                "ZUSD",
                "XETH",
                "XXDG",
                "PEPE",
            ]
            assert answer["result"]["XXBT"] == {
                "aclass": "currency",
                "altname": "XBT",
                "decimals": 10,
                "display_decimals": 5,
                "status": "enabled",
            }
            _, answer = await asyncio.to_thread(_get, url + "Assets?asset=XBT,ZUSD")
            assert list(answer["result"]) == ["XXBT", "ZUSD"]
            _, answer = await asyncio.to_thread(_get, url + "Assets?asset=NOPE")
            assert answer == {"error": ["EQuery:Unknown asset"]}
            _, answer = await asyncio.to_thread(_get, url + "Time")
            assert abs(answer["result"]["unixtime"] - time.time()) < 5
            assert answer["result"]["rfc1123"].endswith(" +0000")
            _, answer = await asyncio.to_thread(_get, url + "SystemStatus")
            assert answer["result"]["status"] == "online"
            assert parse_rfc3339_ns(answer["result"]["timestamp"]) > 0
            sim.inject("maintenance")
            _, answer = await asyncio.to_thread(_get, url + "SystemStatus")
            assert answer["result"]["status"] == "maintenance"
            _, answer = await asyncio.to_thread(_get, url + "AssetPairs?pair=BTC/USD")
            assert answer["result"]["BTC/USD"]["status"] == "maintenance"

    run(body())


def test_rest_agrees_with_instrument_channel() -> None:
    async def body() -> None:
        async with Simulator(rate=1) as sim, connect(sim.url_v2) as ws:
            client = Client(ws)
            await client.send({"method": "subscribe", "params": {"channel": "instrument"}})
            snapshot = (await client.until(is_channel("instrument", "snapshot")))[0]["data"]
            _, answer = await asyncio.to_thread(_get, sim.rest_url + "/0/public/AssetPairs")
            rest = {info["wsname"]: info for info in answer["result"].values()}
            assert len(rest) == len(snapshot["pairs"]) == 4
            for pair in snapshot["pairs"]:
                _, named = await asyncio.to_thread(
                    _get, sim.rest_url + "/0/public/AssetPairs?pair=" + pair["symbol"]
                )
                info = named["result"][pair["symbol"]]
                assert info == rest[info["wsname"]]
                assert info["pair_decimals"] == pair["price_precision"]
                assert info["lot_decimals"] == pair["qty_precision"]
                assert info["cost_decimals"] == pair["cost_precision"]
                assert Decimal(info["tick_size"]) == pair["tick_size"] == pair["price_increment"]
                assert Decimal(info["ordermin"]) == pair["qty_min"]
                assert Decimal(info["costmin"]) == pair["cost_min"]
                assert info["status"] == pair["status"]
            _, answer = await asyncio.to_thread(_get, sim.rest_url + "/0/public/Assets")
            by_alt = {info["altname"]: info for info in answer["result"].values()}
            for asset in snapshot["assets"]:
                alt = {"BTC": "XBT", "DOGE": "XDG"}.get(asset["id"], asset["id"])
                assert by_alt[alt]["decimals"] == asset["precision"]
                assert by_alt[alt]["display_decimals"] == asset["precision_display"]

    run(body())


def test_python_kraken_sdk_market_reads_asset_pairs() -> None:
    from kraken.spot import Market

    async def body() -> None:
        async with Simulator(rate=1) as sim:
            market = Market(url=sim.rest_url)
            info = await asyncio.to_thread(market.get_asset_pairs, pair="ETH/USD")
            assert info["ETH/USD"]["pair_decimals"] == 2 and info["ETH/USD"]["lot_decimals"] == 8
            status = await asyncio.to_thread(market.get_system_status)
            assert status["status"] == "online"

    run(body())
