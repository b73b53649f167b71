"""Live commands: ``watch`` (terminal view / JSON summary), ``record`` and ``demo``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from .boundary import CLIError, ExitCode
from .feed import LEVEL3_URL, V1_BETA_URL, V1_URL, V2_BETA_URL, V2_URL, KrakenFeed
from .health import Health, sidecar_path, write_json_atomic
from .kraken.events import ChecksumMismatch, ConnectionLost, Event, ResyncRequested
from .tui import plain_lines


def _fmt_us(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.1f}µs"


def render(feed: KrakenFeed, started: float, levels: int = 5) -> str:
    """A plain-text view of every book (for logs and non-terminal output)."""
    return "\n".join(plain_lines(feed.books(), time.monotonic() - started))


async def watch(
    feed: KrakenFeed,
    *,
    duration_s: float | None,
    as_json: bool,
    refresh_s: float = 0.5,
    out: IO[str] | None = None,
    health: Health | None = None,
    health_every_s: float | None = None,
    on_tick: Callable[[], None] | None = None,
    title: str = "bookengine watch",
    console: Any = None,
) -> dict[str, Any]:
    """Run ``feed`` for ``duration_s`` (forever when None) and show it.

    On a terminal (and not ``as_json``): the full-screen view (:mod:`bookengine.tui`); ``q``
    quits. Otherwise plain lines (one per book, every ``plain_every_s``), or nothing with
    ``as_json``. With ``health``: its line goes to stderr every ``health_every_s`` (when the
    full-screen view is not showing it) and the run stops as soon as ``health.failure()``
    says so. ``on_tick`` is called at every refresh (the recorder's sidecars).

    Returns:
        The feed's summary (``replay --json`` shape plus reconnects and resyncs per book).
    """
    out = out or sys.stdout
    started = time.monotonic()
    full_screen = not as_json and (console is not None or out.isatty())
    view = None
    if full_screen:
        from rich.console import Console

        from .tui import LiveView

        view = LiveView(console or Console(file=out), title=title)
    loop = asyncio.get_running_loop()
    async with feed:
        deadline = None if duration_s is None else started + duration_s

        async def consume() -> None:
            async for event in feed:
                if view is None:
                    _log_event(event, health)

        consumer = asyncio.ensure_future(consume())
        next_health = started + (health_every_s or 0.0)
        next_plain = started
        screen = view.running(loop) if view is not None else contextlib.nullcontext()
        try:
            with screen:
                while deadline is None or time.monotonic() < deadline:
                    wait = refresh_s
                    if deadline is not None:
                        wait = min(refresh_s, deadline - time.monotonic())
                    done, _ = await asyncio.wait({consumer}, timeout=max(0.0, wait))
                    if done:
                        consumer.result()  # a fatal feed error surfaces here
                        break
                    if on_tick is not None:
                        on_tick()
                    if health is not None and health.failure() is not None:
                        break
                    now = time.monotonic()
                    if view is not None:
                        view.update(
                            feed.books(), started=started, metrics=feed.metrics, health=health
                        )
                        if view.quit:
                            break
                    elif not as_json and now >= next_plain:
                        next_plain = now + max(1.0, refresh_s)
                        out.write("\n".join(plain_lines(feed.books(), now - started)) + "\n")
                        out.flush()
                    if (
                        health is not None
                        and health_every_s
                        and view is None
                        and now >= next_health
                    ):
                        next_health = now + health_every_s
                        print(health.line(), file=sys.stderr, flush=True)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
    return feed.summary()


def _log_event(event: Event, health: Health | None) -> None:
    """Problems as they happen, one line each on stderr (the full-screen view shows them)."""
    if isinstance(event, ChecksumMismatch):
        print(f"# {event.message}", file=sys.stderr)
    elif isinstance(event, ResyncRequested):
        print(f"# {event.key}: resync requested (attempt {event.attempt})", file=sys.stderr)
    elif isinstance(event, ConnectionLost) and (health is None or health.ever_connected):
        print(f"# connection lost: {event.url}: {event.reason}", file=sys.stderr)


def _live_feed(symbols: Sequence[str], *, depth: int, level3: bool, **options: Any) -> KrakenFeed:
    """The feed of ``watch``/``record``: ``symbols`` as L2 books, or as level3 books."""
    return KrakenFeed(
        book=() if level3 else symbols,
        level3=symbols if level3 else (),
        depth=depth if not level3 else 10,
        level3_depth=depth if level3 else 10,
        **options,
    )


def _requested(symbols: Sequence[str], level3: bool, protocol: str, trades: bool) -> dict[str, Any]:
    requested: dict[str, list[str]] = {}
    if protocol == "v2":
        requested["instrument"] = []
    requested["level3" if level3 else "book"] = list(symbols)
    if trades or level3:
        requested["trade"] = list(symbols)
    return requested


def _public_url(url: str | None, protocol: str, beta: bool = False) -> str:
    if url:
        return url
    if protocol == "v1":
        return V1_BETA_URL if beta else V1_URL
    return V2_BETA_URL if beta else V2_URL


def _check_failure(health: Health) -> None:
    failure = health.failure()
    if failure is not None:
        raise CLIError(failure[1], failure[0])


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
    max_silence_s: float | None = None,
    health_every_s: float | None = None,
) -> int:
    """``bookengine watch``: 0 when every book ended exact and nothing mismatched.

    Raises:
        CLIError: the run failed (see :meth:`Health.failure`): no connection, not a Kraken
            endpoint, a refused subscription, silence beyond ``max_silence_s``.
    """
    health = Health(
        url=_public_url(url, protocol, beta),
        subscribed=_requested(symbols, level3, protocol, False),
        max_silence_s=max_silence_s,
    )
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
        on_event=health.on_event,
        on_frame=health.on_frame,
    )
    summary = asyncio.run(
        watch(
            feed,
            duration_s=duration_s,
            as_json=as_json,
            health=health,
            health_every_s=health_every_s,
        )
    )
    if as_json:
        print(json.dumps(summary))
    _check_failure(health)
    if health.mismatches or health.bad_frames:
        print(
            f"bookengine watch: {health.mismatches} checksum mismatches, {health.bad_frames} "
            "bad frames during the run",
            file=sys.stderr,
        )
        return ExitCode.DATA
    return 0 if all(_exact(feed, key) for key in summary["books"]) else ExitCode.DATA


def _exact(feed: KrakenFeed, key: str) -> bool:
    state = feed.books().get(key)
    return state is not None and state.book is not None and not state.stale


class _Sidecars:
    """``<segment>.health.json`` next to every segment of a recording, kept up to date."""

    def __init__(self, recorder: Any, health: Health, output: str, every_s: float = 5.0) -> None:
        self.recorder = recorder
        self.health = health
        self.output = output
        self.every_s = every_s
        self._starts: list[int] = []  # segment i began at _starts[i] (ns, as first seen)
        self._next = 0.0

    def tick(self, force: bool = False) -> None:
        segments = self.recorder.segments
        now_ns = time.time_ns()
        grew = len(segments) > len(self._starts)
        while len(self._starts) < len(segments):
            if len(self._starts) > 0:
                self._write(len(self._starts) - 1, "closed")  # the segment before: final
            self._starts.append(now_ns if self._starts else self.health.started_ns)
        if force or grew or time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every_s
            if segments:
                self._write(len(segments) - 1, "recording")

    def close(self, exit_code: int, failure: str | None) -> None:
        self.tick()
        status = "failed" if exit_code else "closed"
        if self.recorder.segments:
            self._write(len(self.recorder.segments) - 1, status, exit_code)
        else:  # nothing was recorded: the sidecar of the file that was never written says why
            value = self.health.sidecar(segment=None, status=status, exit_code=exit_code)
            write_json_atomic(sidecar_path(self.output), value)

    def _write(self, index: int, status: str, exit_code: int | None = None) -> None:
        segment = self.recorder.segments[index]
        since = self._starts[index] if index else None
        until = self._starts[index + 1] if index + 1 < len(self._starts) else None
        value = self.health.sidecar(
            segment=str(segment),
            since_ns=since,
            until_ns=until,
            status=status,
            exit_code=exit_code,
        )
        write_json_atomic(sidecar_path(segment), value)


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
    max_silence_s: float | None = None,
    health_every_s: float | None = 60.0,
) -> int:
    """``bookengine record``: a crash-safe capture (see :class:`~bookengine.capture.Recorder`).

    Frames are ``recv_ts_ns<TAB>frame`` lines (the replay format), sent requests
    ``sent_ts_ns<TAB>>request`` with the level3 token redacted; each segment opens with a
    ``#bookengine`` header. The suffix picks the compression (``.gz``, ``.zst``); with
    ``rotate_bytes`` / ``rotate_seconds`` the output is split into numbered segments, each
    starting with checkpoints of the live books so it also replays on its own. SIGTERM and
    Ctrl-C end the recording cleanly; a SIGKILL loses at most the last second.

    Next to each segment, ``<segment>.health.json`` (:meth:`Health.sidecar`) says what was
    subscribed, acknowledged and refused, and every gap, resync and mismatch with its time;
    it is rewritten atomically every few seconds, when the segment closes and at exit.
    The health line goes to stderr every ``health_every_s``.

    Returns:
        0 clean; 1 when a checksum mismatched or a frame was bad during the run.

    Raises:
        CLIError: the run failed (no connection, not a Kraken endpoint, refused
            subscription, silence beyond ``max_silence_s``); the sidecar says why.
    """
    import signal

    from .capture import Recorder, session_checkpoint

    if output.endswith(".zst"):
        import zstandard  # noqa: F401  # fail now (one line), not at the first frame

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
    health = Health(
        url=public_url,
        subscribed=_requested(symbols, level3, protocol, trades),
        max_silence_s=max_silence_s,
    )
    write_frame = recorder.write_frame
    on_frame_health = health.on_frame

    def on_frame(recv_ts_ns: int, frame: bytes) -> None:
        write_frame(recv_ts_ns, frame)
        on_frame_health(recv_ts_ns, frame)

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
        on_frame=on_frame,
        on_send=recorder.write_sent,
        on_event=health.on_event,
    )
    sidecars = _Sidecars(recorder, health, output)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # finish the segment cleanly, as Ctrl-C does

    try:
        previous: Any = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        asyncio.run(
            watch(
                feed,
                duration_s=duration_s,
                as_json=True,
                health=health,
                health_every_s=health_every_s,
                on_tick=sidecars.tick,
            )
        )
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        recorder.close()
    failure = health.failure()
    if failure is not None:
        code = failure[0]
    elif health.mismatches or health.bad_frames:
        code = ExitCode.DATA
    else:
        code = ExitCode.OK
    sidecars.close(int(code), None if failure is None else failure[1])
    if recorder.segments and failure is None:
        where = ", ".join(str(path) for path in recorder.segments)
        print(f"recorded {recorder.frames} frames to {where}", file=sys.stderr)
    # Ctrl-C / SIGTERM is how a recording is meant to end: not a failure in itself.
    _check_failure(health)
    if code:
        print(
            f"bookengine record: {health.mismatches} checksum mismatches, {health.bad_frames} "
            "bad frames during the recording (see the .health.json sidecar)",
            file=sys.stderr,
        )
    return int(code)


def run_demo(duration_s: float = 12.0) -> int:
    """``bookengine demo``: the simulator in-process, watched live, with a corrupted level."""
    from .sim import Simulator

    async def main() -> dict[str, Any]:
        async with Simulator(seed=7, rate=100.0) as sim:
            health = Health(
                url=sim.url_v2,
                subscribed={
                    "instrument": [],
                    "book": ["BTC/USD", "ETH/USD"],
                    "level3": ["BTC/USD"],
                },
            )
            feed = KrakenFeed(
                book=["BTC/USD", "ETH/USD"],
                level3=["BTC/USD"],
                depth=10,
                url=sim.url_v2,
                level3_url=sim.url_level3,
                rest_url=sim.rest_url,
                api_key=sim.api_key,
                api_secret=sim.api_secret,
                on_event=health.on_event,
                on_frame=health.on_frame,
            )

            async def sabotage() -> None:
                # Halfway through, the exchange sends one wrong level: the checksum catches it
                # and only that book is resynced.
                await asyncio.sleep(duration_s / 2)
                sim.inject("corrupt", symbol="ETH/USD")

            task = asyncio.ensure_future(sabotage())
            try:
                return await watch(
                    feed,
                    duration_s=duration_s,
                    as_json=False,
                    health=health,
                    title="bookengine demo (simulator)",
                )
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
