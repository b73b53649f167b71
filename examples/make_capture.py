"""Record the small capture the queue analytics example replays (``examples/data/``).

Starts the simulator in this process (loopback only), connects a :class:`KrakenFeed` to it
(``level3`` + ``book`` + ``trade`` for BTC/USD, and the private ``executions`` channel), places
a few own orders through the simulator's Kraken-style ``add_order``/``cancel_order`` while the
engine runs, and writes every received frame as ``recv_ts_ns<TAB>frame`` lines, gzipped.

    .venv/bin/python examples/make_capture.py [--seconds 6] [--out examples/data/...]

The engine is stepped by this script (``manual=True``) at a fixed pace, so the market itself is
a function of the seed; receive times are real.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bookengine.auth import fetch_token
from bookengine.feed import KrakenFeed
from bookengine.sim import Simulator

SYMBOL = "BTC/USD"
OUT = Path(__file__).resolve().parent / "data" / "sim_capture.jsonl.gz"


async def record(seconds: float, out: Path, seed: int, rate: float) -> int:
    lines: list[bytes] = []

    def on_frame(recv_ts_ns: int, frame: bytes) -> None:
        lines.append(b"%d\t%s\n" % (recv_ts_ns, frame))

    async with Simulator([SYMBOL], manual=True, seed=seed, target_levels=60) as sim:
        feed = KrakenFeed(
            book=[SYMBOL],
            level3=[SYMBOL],
            trade=[SYMBOL],
            depth=10,
            level3_depth=10,
            url=sim.url_v2,
            level3_url=sim.url_level3,
            rest_url=sim.rest_url,
            auth_url=sim.url_auth,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            track_own_orders=True,
            on_frame=on_frame,
            liveness_s=30.0,
        )
        async with feed:
            await feed.wait_connected(10)
            await asyncio.sleep(0.5)  # snapshots in
            token = await asyncio.to_thread(fetch_token, sim.rest_url, sim.api_key, sim.api_secret)
            engine = sim.engines[SYMBOL]
            async with connect(sim.url_auth) as trader:

                async def send(method: str, params: dict[str, Any]) -> Any:
                    await trader.send(
                        json.dumps({"method": method, "params": {**params, "token": token}})
                    )
                    while True:
                        answer = json.loads(await trader.recv())
                        if answer.get("method") == method:
                            return answer

                loop = asyncio.get_running_loop()
                start = loop.time()
                steps = 0
                own: list[str] = []
                while (elapsed := loop.time() - start) < seconds:
                    due = int(elapsed * rate) - steps
                    for _ in range(max(0, due)):
                        sim.step(SYMBOL)
                        steps += 1
                        # Every ~300 steps an own order joins a level near the touch; the
                        # deeper ones are cancelled 150 steps later if they still rest.
                        if steps % 300 == 50:
                            side = "buy" if (steps // 300) % 2 == 0 else "sell"
                            best = engine.best_bid() if side == "buy" else engine.best_ask()
                            assert best is not None
                            if len(own) % 2:  # every other one rests 3 ticks off the touch
                                best += -3 if side == "buy" else 3
                            answer = await send(
                                "add_order",
                                {
                                    "order_type": "limit",
                                    "side": side,
                                    "limit_price": f"{best // 10}.{best % 10}",
                                    "order_qty": "0.05",
                                    "symbol": SYMBOL,
                                },
                            )
                            own.append(answer["result"]["order_id"])
                        if (
                            steps % 300 == 200
                            and len(own) % 2 == 0
                            and own
                            and own[-1] in sim.own_order_ids()
                        ):
                            await send("cancel_order", {"order_id": [own[-1]]})
                    await asyncio.sleep(0.002)
            await asyncio.sleep(1.0)  # the last frames and trades in
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wb", compresslevel=9) as f:
        f.writelines(lines)
    return len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rate", type=float, default=250.0, help="engine steps per second")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    count = asyncio.run(record(args.seconds, args.out, args.seed, args.rate))
    print(f"{args.out}: {count} frames, {args.out.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
