"""``bookengine sim --from-capture``: real captures served to our own clients, every checksum kept.

Counts of checksums per fixture (tests/data, see /work/shared/fixtures/README.md): v2 BTC/USD
depth 10: 510; v1 XBT/USD depth 10: 979; Kraken's documented examples: 1 or 2 each.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from bookengine.feed import KrakenFeed
from bookengine.sim.playback import Capture, CaptureFormatError, CaptureServer, restamp_v1
from bookengine.timestamps import parse_epoch_ns, parse_rfc3339_ns

from .helpers import Client, is_channel, is_method, run

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"
INSTRUMENTS = DATA / "v2-instrument-snapshot.jsonl"

# (files, symbol, protocol, channel, depth, checksums the fixture carries)
FIXTURES = [
    (["v2-book-btcusd-depth10.jsonl"], "BTC/USD", "v2", "book", 10, 510),
    (["v1-book-xbtusd-depth10.jsonl"], "XBT/USD", "v1", "book", 10, 979),
    (["docs-v2-book-guide-btcusd.jsonl"], "BTC/USD", "v2", "book", 10, 1),
    (["docs-v2-book-reference-maticusd.jsonl"], "MATIC/USD", "v2", "book", 10, 2),
    (["docs-v2-level3-guide-btcusd.jsonl"], "BTC/USD", "v2", "level3", 10, 1),
    (["docs-v1-book-guide.jsonl"], "XBT/USD", "v1", "book", 1000, 1),
]


async def _feed_summary(
    server: CaptureServer, symbol: str, protocol: str, channel: str, depth: int
) -> dict[str, Any]:
    options: dict[str, Any]
    if protocol == "v1":
        options = {"book": [symbol], "depth": depth, "protocol": "v1", "url": server.url_v1}
    elif channel == "level3":
        options = {
            "level3": [symbol],
            "level3_depth": depth,
            "url": server.url_v2,
            "level3_url": server.url_level3,
            "rest_url": server.rest_url,
            "api_key": server.api_key,
            "api_secret": server.api_secret,
        }
    else:
        options = {"book": [symbol], "depth": depth, "url": server.url_v2}
    async with KrakenFeed(**options) as feed:

        async def consume() -> None:
            async for _ in feed:
                if server.counters["capture_end"]:
                    # Frames sent before the end may still be on their way: drain a moment.
                    await asyncio.sleep(0.2)
                    return

        await asyncio.wait_for(consume(), 30)
        books: dict[str, Any] = feed.summary()["books"]
    return books


@pytest.mark.parametrize(("files", "symbol", "protocol", "channel", "depth", "checksums"), FIXTURES)
def test_feed_verifies_every_checksum_of_each_fixture(
    files: list[str], symbol: str, protocol: str, channel: str, depth: int, checksums: int
) -> None:
    async def body() -> None:
        paths = [DATA / name for name in files] + ([INSTRUMENTS] if protocol == "v2" else [])
        async with CaptureServer(paths, speed=None) as server:
            books = await _feed_summary(server, symbol, protocol, channel, depth)
        (book,) = books.values()
        assert book["checksums_checked"] == checksums, book
        assert book["checksum_mismatches"] == 0 and book["resyncs"] == 0, book
        assert book["depth"] == depth and book["symbol"] == symbol

    run(body(), timeout=60)


@pytest.mark.parametrize(("files", "symbol", "protocol", "channel", "depth", "checksums"), FIXTURES)
def test_watch_cli_verifies_every_checksum_of_each_fixture(
    files: list[str], symbol: str, protocol: str, channel: str, depth: int, checksums: int
) -> None:
    """``bookengine watch --json`` against ``bookengine sim --from-capture`` (two processes)."""
    from .simproc import sim_process

    paths = [str(DATA / name) for name in files] + ([str(INSTRUMENTS)] if protocol == "v2" else [])
    with sim_process("--from-capture", *paths, "--speed", "max") as sim:
        args = ["watch", symbol, "--depth", str(depth), "--duration", "2", "--json"]
        if protocol == "v1":
            args += ["--v1", "--url", sim.url_v1]
        else:
            args += ["--url", sim.url_v2]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        if channel == "level3":
            key, secret = sim.banner_value("API key"), sim.banner_value("API secret")
            args += ["--level3", "--level3-url", sim.url_v2.replace("/v2", "/l3/v2")]
            args += ["--rest-url", sim.rest_url]
            env.update(KRAKEN_API_KEY=key, KRAKEN_API_SECRET=secret)
        result = subprocess.run(
            [sys.executable, "-m", "bookengine", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    (book,) = json.loads(result.stdout)["books"].values()
    assert book["checksums_checked"] == checksums, book
    assert book["checksum_mismatches"] == 0 and book["resyncs"] == 0, book


def test_requests_answered_like_the_exchange_and_restamped() -> None:
    async def body() -> None:
        paths = [DATA / "v2-book-btcusd-depth10.jsonl", INSTRUMENTS]
        lines: list[str] = []
        async with (
            CaptureServer(paths, speed=None, log=lines.append) as server,
            connect(server.url_v2) as ws,
        ):
            client = Client(ws)
            await client.until(is_channel("status"))
            await client.send({"method": "ping", "req_id": 5})
            assert (await client.until(is_method("pong")))[0]["req_id"] == 5
            await client.send(
                {"method": "subscribe", "params": {"channel": "book", "symbol": ["ETH/USD"]}}
            )
            error = (await client.until(lambda m: m.get("success") is False))[0]
            assert error["error"] == "Currency pair not supported ETH/USD"
            assert error["symbol"] == "ETH/USD"
            # Depth 25 asked: the ack says what the capture holds (10).
            await client.send(
                {
                    "method": "subscribe",
                    "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 25},
                    "req_id": 9,
                }
            )
            ack = (await client.until(is_method("subscribe")))[0]
            assert ack["success"] is True and ack["result"]["depth"] == 10
            snapshot = (await client.until(is_channel("book", "snapshot")))[0]
            # Numbers keep their recorded text.
            assert snapshot["data"][0]["bids"][0]["price"] == Decimal("29430.2")
            update = (await client.until(is_channel("book", "update")))[0]
            stamp = parse_rfc3339_ns(update["data"][0]["timestamp"])
            assert abs(stamp - time.time_ns()) < 60 * 10**9  # moved from 2023 to now
            await client.send(
                {"method": "unsubscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}}
            )
            unsub = (await client.until(is_method("unsubscribe")))[0]
            assert unsub["success"] is True
            await client.send(
                {"method": "unsubscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}}
            )
            again = (await client.until(lambda m: m.get("success") is False))[0]
            assert again["error"] == "Subscription Not Found"

    run(body())


def test_paced_at_recorded_speed_and_end_is_logged(tmp_path: Path) -> None:
    """recv_ts pacing: 3 frames 0.5 s apart at speed 2 take about 0.5 s; then the end line."""
    source = (DATA / "v2-book-btcusd-depth10.jsonl").read_text().splitlines()[:3]
    capture = tmp_path / "three.jsonl.gz"
    base = 1_700_000_000_000_000_000
    text = "".join(f"{base + i * 500_000_000}\t{line}\n" for i, line in enumerate(source))
    capture.write_bytes(gzip.compress(text.encode()))

    async def body() -> None:
        lines: list[str] = []
        async with (
            CaptureServer([capture, INSTRUMENTS], speed=2.0, log=lines.append) as server,
            connect(server.url_v2) as ws,
        ):
            client = Client(ws)
            await client.send(
                {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}}
            )
            loop = asyncio.get_running_loop()
            await client.until(is_channel("book", "snapshot"))
            started = loop.time()
            await client.until(is_channel("book", "update"))
            await client.until(is_channel("book", "update"))
            elapsed = loop.time() - started
            assert 0.4 < elapsed < 1.5, elapsed
            for _ in range(50):
                if lines:
                    break
                await asyncio.sleep(0.02)
            assert lines and lines[0].startswith("capture ended: v2 book BTC/USD depth 10 after 3")
            # The connection stays open: heartbeats follow.
            await client.until(is_channel("heartbeat"), timeout=3)

    run(body())


def test_v1_restamp_keeps_digits_and_sets_channel() -> None:
    frame = (
        '[336,{"b":[["27117.40000","0.00000000","1693415330.886651"]],"c":"1"},"book-10","XBT/USD"]'
    )
    out = restamp_v1(frame, 1_000_000_000, 42)
    assert out.startswith("[42,{") and '"1693415331.886651"' in out
    assert parse_epoch_ns("1693415331.886651") - parse_epoch_ns("1693415330.886651") == 10**9


def test_capture_without_playable_frames_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "status.jsonl"
    empty.write_text('{"channel":"heartbeat"}\n')
    with pytest.raises(CaptureFormatError, match=r"status\.jsonl: no v2 book"):
        Capture.load([empty])
    result = subprocess.run(
        [sys.executable, "-m", "bookengine", "sim", "--from-capture", str(empty)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "no v2 book/level3/trade" in result.stderr


def test_trade_stream_is_played_and_restamped(tmp_path: Path) -> None:
    capture = tmp_path / "trades.jsonl"
    trades = [
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
        f'"price":29430.{i},"qty":0.001,"ord_type":"market","trade_id":{i},'
        f'"timestamp":"2023-07-30T15:30:0{i}.000000Z"}}]}}'
        for i in range(3)
    ]
    capture.write_text("\n".join(trades) + "\n")

    async def body() -> None:
        async with CaptureServer([capture], speed=None) as server, connect(server.url_v2) as ws:
            client = Client(ws)
            await client.send(
                {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}}
            )
            ack = (await client.until(is_method("subscribe")))[0]
            assert ack["result"] == {"channel": "trade", "snapshot": True, "symbol": "BTC/USD"}
            seen = []
            for _ in range(3):
                message = (await client.until(is_channel("trade")))[0]
                seen.append(message["data"][0])
            assert [t["trade_id"] for t in seen] == [0, 1, 2]
            stamps = [parse_rfc3339_ns(t["timestamp"]) for t in seen]
            assert stamps[1] - stamps[0] == stamps[2] - stamps[1] == 10**9  # gaps kept
            assert abs(stamps[0] - time.time_ns()) < 60 * 10**9

    run(body())


def test_cli_speed_and_conflicting_options() -> None:
    from bookengine.sim.cli import build_parser, main

    parser = build_parser()
    assert parser.parse_args(["--from-capture", "a.jsonl", "--speed", "max"]).speed is None
    assert parser.parse_args(["--from-capture", "a.jsonl", "--speed", "2.5"]).speed == 2.5
    assert parser.parse_args(["--from-capture", "a.jsonl"]).speed == 1.0
    with pytest.raises(SystemExit):
        parser.parse_args(["--speed", "-1"])
    with pytest.raises(SystemExit):
        main(["--from-capture", "a.jsonl", "--fault", "drop@1s"])
