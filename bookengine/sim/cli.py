"""``bookengine sim``: run the local Kraken stand-in until interrupted.

Prints the WebSocket URLs (v2, level3, v1), the REST URLs (public market data, token) and the
API key/secret the token endpoint accepts, then serves until Ctrl-C / SIGTERM (or ``--duration``
seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from ..auth import TOKEN_PATH
from ..errors import CaptureError
from .faults import Fault, parse_fault
from .playback import CaptureServer
from .server import LOOPBACK, Simulator
from .specs import DEFAULT_SYMBOLS


def _fault(text: str) -> Fault:
    try:
        return parse_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _limit(text: str) -> tuple[int, float] | None:
    if text.lower() in ("none", "off", "0"):
        return None
    count, sep, seconds = text.partition("/")
    try:
        return int(count), float(seconds) if sep else 600.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected COUNT/SECONDS, got {text!r}") from None


def build_parser(prog: str = "bookengine sim") -> argparse.ArgumentParser:
    """The ``bookengine sim`` argument parser (for embedding in the top-level command)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a deterministic Kraken-compatible exchange on 127.0.0.1.",
    )
    parser.add_argument("--host", default=LOOPBACK, help="must be 127.0.0.1 (default)")
    parser.add_argument("--port", type=int, default=0, help="WebSocket port (0: any free port)")
    parser.add_argument("--rest-port", type=int, default=0, help="token REST port (0: any)")
    parser.add_argument(
        "--symbols",
        nargs="+",
        default=None,
        metavar="SYMBOL",
        help=f"v2 symbols, space or comma separated (default: {' '.join(DEFAULT_SYMBOLS)})",
    )
    parser.add_argument(
        "--rate", type=float, default=200.0, help="engine events per second per symbol (0: max)"
    )
    parser.add_argument("--seed", type=int, default=1, help="global seed (default 1)")
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="KIND[:SYMBOL][=VALUE]@TIME",
        help="schedule a fault, e.g. corrupt:BTC/USD@3s, stall=2@10s (repeatable)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        help="close connections silent for this many seconds (0: never; default 60)",
    )
    parser.add_argument(
        "--connect-limit",
        type=_limit,
        default=(150, 600.0),
        metavar="COUNT/SECONDS",
        help="HTTP 429 beyond COUNT upgrades per SECONDS (default 150/600; 'off' to disable)",
    )
    parser.add_argument(
        "--number-style",
        choices=("plain", "exponent"),
        default="plain",
        help="v2 number rendering (default plain: 0.001, 4.0)",
    )
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument(
        "--from-capture",
        nargs="+",
        default=None,
        metavar="FILE",
        help="serve these recorded frames (capture format, .gz/.zst) instead of simulated "
        "ones: each subscriber gets its stream from the start, re-stamped to now",
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="X",
        help="with --from-capture: recorded time / X between frames (default 1; 'max': as "
        "fast as the client reads)",
    )
    return parser


def _speed(text: str) -> float | None:
    if text.lower() in ("max", "0"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'max', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"speed must be positive, got {text!r}")
    return value


def _symbols(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part for value in values for part in value.split(",") if part]


def _banner(sim: Simulator, out: TextIO) -> None:
    rate = f"{sim.rate:g}/s per symbol" if sim.rate else "as fast as possible"
    lines = [
        f"bookengine sim: seed {sim.seed}, {rate}, symbols {' '.join(sim.symbols)}",
        f"  v2 public   {sim.url_v2}",
        f"  level3      {sim.url_level3}   (subscribe with params.token)",
        f"  v1 public   {sim.url_v1}",
        f"  REST public {sim.rest_url}/0/public/  (AssetPairs, Assets, Time, SystemStatus)",
        f"  REST token  POST {sim.rest_url}{TOKEN_PATH}",
        f"  API key     {sim.api_key}",
        f"  API secret  {sim.api_secret}",
    ]
    lines.extend(f"  fault       {fault}" for fault in sim.faults)
    print("\n".join(lines), file=out, flush=True)


def _capture_banner(server: CaptureServer, out: TextIO) -> None:
    speed = "as fast as possible" if server.speed is None else f"speed {server.speed:g}"
    lines = [
        f"bookengine sim: playing a capture, {speed}",
        f"  v2 public   {server.url_v2}",
        f"  level3      {server.url_level3}   (subscribe with params.token)",
        f"  v1 public   {server.url_v1}",
        f"  REST public {server.rest_url}/0/public/  (AssetPairs, Assets, Time, SystemStatus)",
        f"  REST token  POST {server.rest_url}{TOKEN_PATH}",
        f"  API key     {server.api_key}",
        f"  API secret  {server.api_secret}",
    ]
    lines.extend(
        f"  stream      {stream.label}: {len(stream.frames)} frames"
        for stream in server.capture.streams.values()
    )
    print("\n".join(lines), file=out, flush=True)


async def _serve_capture(args: argparse.Namespace, out: TextIO, stop: asyncio.Event) -> None:
    async with CaptureServer(
        args.from_capture,
        speed=args.speed,
        port=args.port,
        rest_port=args.rest_port,
        seed=args.seed,
        idle_timeout=args.idle_timeout or None,
        log=lambda line: print(f"bookengine sim: {line}", file=out, flush=True),
    ) as server:
        _capture_banner(server, out)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), args.duration)
        print(f"bookengine sim: stopping; sent {server.counters['frames']} frames", file=out)


async def _serve(args: argparse.Namespace, out: TextIO) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not every platform lets a loop own signals; Ctrl-C then ends asyncio.run instead.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    if args.from_capture:
        try:
            await _serve_capture(args, out, stop)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(signum)
        return
    async with Simulator(
        symbols=_symbols(args.symbols),
        rate=args.rate,
        seed=args.seed,
        host=args.host,
        port=args.port,
        rest_port=args.rest_port,
        faults=args.fault,
        idle_timeout=args.idle_timeout or None,
        connect_limit=args.connect_limit,
        number_style=args.number_style,
    ) as sim:
        _banner(sim, out)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), args.duration)
        print(f"bookengine sim: stopping; sent {sim.counters['frames']} frames", file=out)
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signum)


def main(argv: list[str] | None = None) -> int:
    """Run ``bookengine sim`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.host not in (LOOPBACK, "localhost"):
        parser.error(f"--host must be {LOOPBACK}: the simulator never listens elsewhere")
    if args.from_capture and (args.fault or args.symbols):
        parser.error("--from-capture plays recorded frames: --fault and --symbols do not apply")
    try:
        asyncio.run(_serve(args, sys.stdout))
    except KeyboardInterrupt:
        return 0
    except (ValueError, OSError, CaptureError) as exc:
        print(f"bookengine sim: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
