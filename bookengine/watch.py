"""Live commands: ``watch`` (terminal view / JSON summary), ``record`` and ``demo``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from .feed import LEVEL3_URL, V1_URL, V2_URL, KrakenFeed
from .kraken.events import BookChanged, ChecksumMismatch, ConnectionLost, Event, ResyncRequested


def _fmt_us(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.1f}µs"


def render(feed: KrakenFeed, started: float, levels: int = 5) -> str:
    """The terminal view: top levels, spread, checksums, message rate, latency per book."""
    elapsed = max(1e-9, time.monotonic() - started)
    metrics = feed.metrics
    lines = [
        f"bookengine watch  {elapsed:6.1f}s  {metrics.messages / elapsed:8.0f} msg/s  "
        f"verified {metrics.checksums_verified}  mismatches {metrics.mismatches}  "
        f"resyncs {metrics.resyncs}  reconnects {metrics.reconnects}  "
        f"latency p50 {_fmt_us(metrics.processing_ns.percentile(50))} "
        f"p99 {_fmt_us(metrics.processing_ns.percentile(99))}",
    ]
    for key, state in sorted(feed.books().items()):
        book = state.book
        status = "STALE: " + state.stale_reason if state.stale else "exact"
        lines.append("")
        lines.append(
            f"{key}  depth {state.depth}  {state.messages} msgs  "
            f"{state.checksums_checked} verified  {state.checksum_mismatches} failed  [{status}]"
        )
        if book is None:
            lines.append("  waiting for snapshot")
            continue
        spread = book.spread()
        extra = f"  orders {len(book)}" if state.channel == "level3" else ""
        lines.append(f"  spread {'-' if spread is None else book.price_text(spread)}{extra}")
        bids = book.levels_text("bid", levels)
        asks = book.levels_text("ask", levels)
        for row in range(max(len(bids), len(asks))):
            left = f"{bids[row][1]} @ {bids[row][0]}" if row < len(bids) else ""
            right = f"{asks[row][0]} x {asks[row][1]}" if row < len(asks) else ""
            lines.append(f"  {left:>32}   {right:<32}")
    return "\n".join(lines)


async def watch(
    feed: KrakenFeed,
    *,
    duration_s: float | None,
    as_json: bool,
    refresh_s: float = 0.5,
    out: IO[str] | None = None,
) -> dict[str, Any]:
    """Run ``feed`` for ``duration_s`` (forever when None), showing the view unless ``as_json``.

    Returns:
        The feed's summary (``replay --json`` shape plus reconnects and resyncs per book).
    """
    out = out or sys.stdout
    started = time.monotonic()
    tty = out.isatty()
    async with feed:
        deadline = None if duration_s is None else started + duration_s

        async def consume() -> None:
            async for event in feed:
                _log_event(event, as_json, out, tty)

        consumer = asyncio.ensure_future(consume())
        try:
            while deadline is None or time.monotonic() < deadline:
                wait = (
                    refresh_s if deadline is None else min(refresh_s, deadline - time.monotonic())
                )
                done, _ = await asyncio.wait({consumer}, timeout=max(0.0, wait))
                if done:
                    consumer.result()  # a fatal feed error surfaces here
                    break
                if not as_json:
                    view = render(feed, started)
                    out.write(("\x1b[H\x1b[2J" + view + "\n") if tty else (view + "\n\n"))
                    out.flush()
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
    return feed.summary()


def _log_event(event: Event, as_json: bool, out: IO[str], tty: bool) -> None:
    if as_json or isinstance(event, BookChanged):
        return
    if isinstance(event, ChecksumMismatch | ResyncRequested | ConnectionLost) and not tty:
        print(f"# {event}", file=sys.stderr)


def _live_feed(symbols: Sequence[str], *, depth: int, level3: bool, **options: Any) -> KrakenFeed:
    """The feed of ``watch``/``record``: ``symbols`` as L2 books, or as level3 books."""
    return KrakenFeed(
        book=() if level3 else symbols,
        level3=symbols if level3 else (),
        depth=depth if not level3 else 10,
        level3_depth=depth if level3 else 10,
        **options,
    )


def run_watch(
    symbols: Sequence[str],
    *,
    depth: int,
    level3: bool,
    url: str | None,
    level3_url: str | None,
    rest_url: str | None,
    api_key: str | None,
    api_secret: str | None,
    protocol: str,
    beta: bool,
    duration_s: float | None,
    as_json: bool,
) -> int:
    """``bookengine watch``: exit 0 when every book ended exact (no mismatch left unrepaired)."""
    feed = _live_feed(
        symbols,
        depth=depth,
        level3=level3,
        protocol=protocol,
        beta=beta,
        url=url,
        level3_url=level3_url,
        rest_url=rest_url,
        api_key=api_key,
        api_secret=api_secret,
    )
    try:
        summary = asyncio.run(watch(feed, duration_s=duration_s, as_json=as_json))
    except KeyboardInterrupt:
        return 130
    if as_json:
        print(json.dumps(summary))
    return 0 if all(_exact(feed, key) for key in summary["books"]) else 1


def _exact(feed: KrakenFeed, key: str) -> bool:
    state = feed.books().get(key)
    return state is not None and state.book is not None and not state.stale


def run_record(
    symbols: Sequence[str],
    output: str,
    *,
    depth: int,
    level3: bool,
    url: str | None,
    level3_url: str | None,
    rest_url: str | None,
    api_key: str | None,
    api_secret: str | None,
    protocol: str,
    duration_s: float | None,
    rotate_bytes: int | None = None,
    rotate_seconds: float | None = None,
    trades: bool = False,
) -> int:
    """``bookengine record``: a crash-safe capture (see :class:`~bookengine.capture.Recorder`).

    Frames are ``recv_ts_ns<TAB>frame`` lines (the replay format), sent requests
    ``sent_ts_ns<TAB>>request`` with the level3 token redacted; each segment opens with a
    ``#bookengine`` header. The suffix picks the compression (``.gz``, ``.zst``); with
    ``rotate_bytes`` / ``rotate_seconds`` the output is split into numbered segments, each
    starting with checkpoints of the live books so it also replays on its own. SIGTERM and
    Ctrl-C end the recording cleanly; a SIGKILL loses at most the last second.
    """
    import signal

    from .capture import Recorder, session_checkpoint

    feed: KrakenFeed | None = None

    def checkpoint() -> list[tuple[dict[str, Any], str]]:
        return [] if feed is None else session_checkpoint(feed.books(), feed.instruments)

    subscriptions: list[dict[str, Any]] = []
    public_url = url or (V1_URL if protocol == "v1" else V2_URL)
    if level3:
        subscriptions.append({"url": public_url, "channel": "instrument", "symbols": []})
        subscriptions.append(
            {
                "url": level3_url or LEVEL3_URL,
                "channel": "level3",
                "symbols": list(symbols),
                "depth": depth,
            }
        )
    else:
        if protocol == "v2":
            subscriptions.append({"url": public_url, "channel": "instrument", "symbols": []})
        subscriptions.append(
            {"url": public_url, "channel": "book", "symbols": list(symbols), "depth": depth}
        )
    recorder = Recorder(
        output,
        max_bytes=rotate_bytes,
        max_seconds=rotate_seconds,
        url=public_url,
        subscriptions=subscriptions,
        header_extra={"protocol": protocol},
        checkpoint=checkpoint,
        redact=[api_key, api_secret],
        overwrite=True,  # as before rotation existed: one named file is replaced
    )
    feed = _live_feed(
        symbols,
        depth=depth,
        level3=level3,
        protocol=protocol,
        url=url,
        level3_url=level3_url,
        rest_url=rest_url,
        api_key=api_key,
        api_secret=api_secret,
        # level3 captures need the trades to tell fills from cancels later (analytics, export)
        trade=symbols if level3 or trades else (),
        on_frame=recorder.write_frame,
        on_send=recorder.write_sent,
    )

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # finish the segment cleanly, as Ctrl-C does

    try:
        previous: Any = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        asyncio.run(watch(feed, duration_s=duration_s, as_json=True))
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        recorder.close()
    where = ", ".join(str(path) for path in recorder.segments) or str(output)
    print(f"recorded {recorder.frames} frames to {where}", file=sys.stderr)
    return 0


def run_demo(duration_s: float = 12.0) -> int:
    """``bookengine demo``: the simulator in-process, watched live, with a corrupted level."""
    from .sim import Simulator

    async def main() -> dict[str, Any]:
        async with Simulator(seed=7, rate=100.0) as sim:
            feed = KrakenFeed(
                book=["BTC/USD", "ETH/USD"],
                level3=["BTC/USD"],
                depth=10,
                url=sim.url_v2,
                level3_url=sim.url_level3,
                rest_url=sim.rest_url,
                api_key=sim.api_key,
                api_secret=sim.api_secret,
            )

            async def sabotage() -> None:
                # Halfway through, the exchange sends one wrong level: the checksum catches it
                # and only that book is resynced.
                await asyncio.sleep(duration_s / 2)
                sim.inject("corrupt", symbol="ETH/USD")

            task = asyncio.ensure_future(sabotage())
            try:
                return await watch(feed, duration_s=duration_s, as_json=False)
            finally:
                task.cancel()

    print(
        "bookengine demo: a local Kraken-compatible exchange, watched live; "
        f"ETH/USD gets a corrupted level after {duration_s / 2:.0f}s\n"
    )
    summary = asyncio.run(main())
    print(json.dumps(summary, indent=2))
    ok = all(book["checksum_mismatches"] <= book["resyncs"] for book in summary["books"].values())
    return 0 if ok else 1
