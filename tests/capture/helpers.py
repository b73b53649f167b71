"""Make real captures offline: a ``KrakenFeed`` against the simulator, recorded by ``Recorder``.

``record_sim`` runs the simulator, a feed on its public (``instrument`` + ``book``) and level3
endpoints, and a plain WebSocket client on the ``trade`` channel (the feed has no trade
subscription), all written by one :class:`~bookengine.capture.Recorder`. It returns what the
live feed held at the end, to compare replays with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bookengine.capture import Recorder, session_checkpoint
from bookengine.feed import KrakenFeed
from bookengine.sim import Simulator

FAST = {
    "liveness_s": 2.0,
    "ping_interval_s": 0.5,
    "reconnect_policy": {"immediate": 1, "floor_s": 0.2, "cap_s": 0.5},
    "resync_backoff_s": (0.2, 1.0),
    "resync_timeout_s": 1.0,
}


@dataclass
class Recording:
    """What ``record_sim`` made and saw."""

    segments: list[Path]
    live: dict[str, Any]
    """Book key -> (bids, asks, checksum) of the live feed at the end."""
    api_key: str
    api_secret: str
    tokens: list[str] = field(default_factory=list)
    """level3 tokens the sim issued (seen in sent requests before redaction)."""
    frames: int = 0


def record_sim(
    path: Path,
    *,
    seconds: float = 2.0,
    book: Sequence[str] = ("BTC/USD", "ETH/USD"),
    level3: Sequence[str] = ("BTC/USD",),
    trades: Sequence[str] = ("BTC/USD",),
    depth: int = 10,
    rate: float = 300.0,
    seed: int = 21,
    **recorder_options: Any,
) -> Recording:
    """Record ``seconds`` of simulated Kraken into ``path`` (suffix picks the compression)."""
    result: dict[str, Any] = {}

    async def main() -> None:
        async with Simulator(seed=seed, rate=rate) as sim:
            tokens: list[str] = []
            feed: KrakenFeed | None = None

            def checkpoint() -> list[tuple[dict[str, Any], str]]:
                assert feed is not None
                return session_checkpoint(feed.books(), feed.instruments)

            recorder = Recorder(
                path,
                url=sim.url_v2,
                subscriptions=[{"channel": "book", "symbols": list(book), "depth": depth}],
                checkpoint=checkpoint,
                redact=[sim.api_key, sim.api_secret],
                **recorder_options,
            )

            def on_send(ts_ns: int, request: str) -> None:
                token = json.loads(request).get("params", {}).get("token")
                if token:
                    tokens.append(token)
                recorder.write_sent(ts_ns, request)

            feed = KrakenFeed(
                book=book,
                level3=level3,
                depth=depth,
                level3_depth=10,
                url=sim.url_v2,
                level3_url=sim.url_level3,
                rest_url=sim.rest_url,
                api_key=sim.api_key,
                api_secret=sim.api_secret,
                on_frame=recorder.write_frame,
                on_send=on_send,
                **FAST,
            )
            trade_task = None
            try:
                async with feed:
                    await feed.wait_connected(20)
                    if trades:
                        trade_task = asyncio.ensure_future(
                            _trades(sim.url_v2, trades, recorder, on_send)
                        )
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(feed.__anext__(), 0.2)
                # Read after the feed closed: frames still arriving during the close
                # handshake are both recorded and applied (the books keep their state).
                result["live"] = {
                    key: (state.book.bids(), state.book.asks(), state.book.checksum())
                    for key, state in feed.books().items()
                    if state.book is not None
                }
            finally:
                if trade_task is not None:
                    trade_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await trade_task
                recorder.close()
            result["recording"] = Recording(
                list(recorder.segments),
                result["live"],
                sim.api_key,
                sim.api_secret,
                tokens,
                recorder.frames,
            )

    asyncio.run(asyncio.wait_for(main(), 60))
    recording: Recording = result["recording"]
    return recording


async def _trades(url: str, symbols: Sequence[str], recorder: Recorder, on_send: Any) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, proxy=None) as ws:
        request = json.dumps(
            {"method": "subscribe", "params": {"channel": "trade", "symbol": list(symbols)}}
        )
        on_send(time.time_ns(), request)
        await ws.send(request)
        while True:
            frame = await ws.recv(decode=False)
            recorder.write_frame(time.time_ns(), frame)
