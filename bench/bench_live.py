"""Live path benchmark: frame received -> book verified -> event delivered, against the simulator.

The simulator runs in its own process (``bookengine sim``) so that its work does not count
against the feed; on a 2-core machine the two processes get a core each. Two phases:

* latency: a moderate rate (no queueing), p50/p99 of
  - processing: ``ws.recv`` returned -> session done (book applied, CRC32 verified), and
  - delivery: ``ws.recv`` returned -> the consumer's ``async for`` got the event;
* throughput: the simulator as fast as it can go on one connection; messages/s verified.

Run: ``python bench/bench_live.py [--seconds S] [--rate R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bookengine import IMPLEMENTATION  # noqa: E402
from bookengine.feed import KrakenFeed  # noqa: E402
from bookengine.kraken.events import BookChanged  # noqa: E402

SYMBOLS = ["BTC/USD", "ETH/USD", "DOGE/USD", "PEPE/USD"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_sim(rate: float, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bookengine",
            "sim",
            "--port",
            str(port),
            "--rate",
            str(rate),
            "--seed",
            "42",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the simulator did not start")


def _watch_socket_reads() -> list[int]:
    """Record perf_counter_ns() at every read from a websockets connection's socket.

    The feed's latencies start when ``ws.recv`` returns a frame; this gives the time the bytes
    reached the process (before websockets parses them), for the ``socket ->`` column.
    """
    from websockets.asyncio.connection import Connection

    reads: list[int] = []
    original = Connection.data_received

    def data_received(self: Connection, data: bytes) -> None:
        reads.append(time.perf_counter_ns())
        original(self, data)

    Connection.data_received = data_received  # type: ignore[method-assign]
    return reads


def _socket_to_delivered(reads: list[int], delivered: list[tuple[int, int]]) -> list[int]:
    # An event's frame came with the last socket read before the session started on it
    # (recv_ts_ns, a wall-clock stamp, mapped onto perf_counter_ns).
    offset = time.time_ns() - time.perf_counter_ns()
    out = []
    for delivered_ns, recv_ts_ns in delivered:
        index = bisect.bisect_right(reads, recv_ts_ns - offset) - 1
        if index >= 0:
            out.append(delivered_ns - reads[index])
    return sorted(out)


async def _run(port: int, seconds: float, depth: int) -> dict[str, Any]:
    feed = KrakenFeed(book=SYMBOLS, depth=depth, url=f"ws://127.0.0.1:{port}/v2")
    delivered = 0
    reads = _watch_socket_reads()
    delivered_at: list[tuple[int, int]] = []
    async with feed:
        await feed.wait_connected(timeout=20)
        # warm-up: let snapshots arrive and caches settle
        warm_until = time.monotonic() + 1.0
        async for _ in feed:
            if time.monotonic() > warm_until:
                break
        start_messages = feed.metrics.messages
        feed.metrics.processing_ns.__init__()  # type: ignore[misc]
        feed.metrics.delivery_ns.__init__()  # type: ignore[misc]
        started = time.monotonic()
        cpu_started = time.process_time()
        reads.clear()
        async for event in feed:
            if isinstance(event, BookChanged):
                delivered_at.append((time.perf_counter_ns(), event.recv_ts_ns))
                delivered += 1
            if time.monotonic() - started >= seconds:
                break
        elapsed = time.monotonic() - started
        cpu = time.process_time() - cpu_started
        socket = _socket_to_delivered(reads, delivered_at)
        messages = feed.metrics.messages - start_messages
        metrics = feed.metrics
        return {
            "messages_per_s": messages / elapsed,
            "cpu_us_per_msg": cpu / max(1, messages) * 1e6,
            "delivered_per_s": delivered / elapsed,
            "processing_p50_us": (metrics.processing_ns.percentile(50) or 0) / 1000,
            "processing_p99_us": (metrics.processing_ns.percentile(99) or 0) / 1000,
            "delivery_p50_us": (metrics.delivery_ns.percentile(50) or 0) / 1000,
            "delivery_p99_us": (metrics.delivery_ns.percentile(99) or 0) / 1000,
            "socket_p50_us": socket[len(socket) // 2] / 1000 if socket else 0.0,
            "socket_p99_us": socket[int(0.99 * len(socket))] / 1000 if socket else 0.0,
            "mismatches": metrics.mismatches,
            "verified": metrics.checksums_verified,
        }


def phase(name: str, rate: float, seconds: float, depth: int) -> dict[str, Any]:
    port = _free_port()
    sim = _start_sim(rate, port)
    try:
        result = asyncio.run(_run(port, seconds, depth))
    finally:
        sim.terminate()
        sim.wait(10)
    result["phase"] = name
    result["sim_rate_per_symbol"] = rate
    result["depth"] = depth
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=250.0, help="latency phase, per symbol")
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 s per phase")
    parser.add_argument("--repeats", type=int, default=1, help="runs per phase (median)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 2.0
    results = []
    for name, rate in (("latency", args.rate), ("throughput", 0.0)):
        runs = [phase(name, rate, args.seconds, args.depth) for _ in range(max(1, args.repeats))]
        runs.sort(key=lambda r: r["processing_p50_us"])
        results.append(runs[len(runs) // 2])  # the median run by processing latency
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"bookengine live path ({IMPLEMENTATION}), {len(SYMBOLS)} symbols on one connection, "
        f"depth {args.depth}, simulator in its own process"
    )
    print(
        f"{'phase':<11} {'msg/s':>9} {'proc p50':>9} {'proc p99':>9} {'deliv p50':>10} "
        f"{'deliv p99':>10} {'socket p50':>11} {'socket p99':>11} {'CPU/msg':>8} {'mismatch':>8}"
    )
    for r in results:
        print(
            f"{r['phase']:<11} {r['messages_per_s']:>9.0f} {r['processing_p50_us']:>7.1f}µs "
            f"{r['processing_p99_us']:>7.1f}µs {r['delivery_p50_us']:>8.1f}µs "
            f"{r['delivery_p99_us']:>8.1f}µs {r['socket_p50_us']:>9.1f}µs "
            f"{r['socket_p99_us']:>9.1f}µs {r['cpu_us_per_msg']:>6.1f}µs {r['mismatches']:>8}"
        )
    print(
        "proc: ws.recv returned -> session done; deliv: ws.recv returned -> the consumer has "
        "the event; socket: bytes read from the socket (before websockets parses them) -> the "
        "consumer has the event; CPU/msg: this process's CPU time per message"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
