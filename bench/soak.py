"""Soak: the live feed against the simulator at a high rate with seeded random faults.

For ``--seconds`` the simulator publishes ``--rate`` events per second per symbol (book on
every default symbol, level3 on one) while a seeded schedule injects faults every 0.5-3 s:
dropped connections, stalls past the liveness limit, corrupt levels, malformed frames,
maintenance windows, rate-limited subscribes and refused upgrades. Then the faults stop and
the run checks, printing a report (``--json`` for the raw numbers):

* every book is exact: not stale, and verified further checksums after the last fault; then,
  with the exchange frozen (maintenance: no order flow), every book equals the exchange's own
  top levels exactly;
* memory is flat: RSS growth after the first quarter of the run stays under ``--rss-bound-mib``;
* nothing leaked: after the feed closes, no task of it is left (``asyncio.all_tasks()``), the
  simulator sees no connection, and after the simulator closes the open file descriptors are
  those of before.

``make soak SOAK_SECONDS=300`` runs it; tests/hardening/test_soak.py runs a ~20 s version.
Exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from bookengine.feed import KrakenFeed  # noqa: E402
from bookengine.kraken.events import BookChanged, Event  # noqa: E402
from bookengine.sim import DEFAULT_SYMBOLS, Simulator  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
FAULTS = ("drop", "stall", "corrupt", "malformed", "maintenance", "ratelimit", "refuse")

FEED_OPTIONS: dict[str, Any] = {
    "liveness_s": 1.0,
    "ping_interval_s": 0.5,
    "reconnect_policy": {"immediate": 2, "floor_s": 0.2, "cap_s": 1.0},
    "resync_backoff_s": (0.2, 1.0),
    "resync_timeout_s": 1.0,
    "attempt_budget": (10_000, 600.0),
}


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class SoakReport:
    """What a soak did and found; ``problems`` is empty when every check passed."""

    seconds: float
    seed: int
    rate: float
    faults: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    books: dict[str, dict[str, Any]] = field(default_factory=dict)
    rss_warm_mib: float = 0.0
    rss_peak_mib: float = 0.0
    rss_end_mib: float = 0.0
    rss_samples_mib: list[float] = field(default_factory=list)
    fds_before: int = 0
    fds_after: int = 0
    tasks_left: list[str] = field(default_factory=list)
    connections_left: int = -1
    problems: list[str] = field(default_factory=list)

    @property
    def rss_growth_mib(self) -> float:
        return round(self.rss_peak_mib - self.rss_warm_mib, 2)


async def _faults(sim: Simulator, rng: random.Random, counts: collections.Counter[str]) -> None:
    symbols = list(sim.symbols)
    while True:
        await asyncio.sleep(rng.uniform(0.5, 3.0))
        kind = rng.choice(FAULTS)
        if kind in ("drop", "malformed"):
            sim.inject(kind)
        elif kind == "stall":
            sim.inject(kind, seconds=rng.uniform(0.5, 2.0))  # past liveness_s half the time
        elif kind == "corrupt":
            sim.inject(kind, symbol=rng.choice(symbols))
        elif kind == "maintenance":
            sim.inject(kind, seconds=rng.uniform(0.3, 1.5))
        else:
            sim.inject(kind, count=rng.randint(1, 2))
        counts[kind] += 1


async def _consume(feed: KrakenFeed, counts: collections.Counter[str]) -> None:
    async for event in feed:
        counts[type(event).__name__] += 1


def _verified(feed: KrakenFeed) -> dict[str, int]:
    return {key: state.checksums_checked for key, state in feed.books().items()}


def _exact(feed: KrakenFeed, keys: set[str]) -> bool:
    books = feed.books()
    return all(
        key in books and books[key].book is not None and not books[key].stale for key in keys
    )


async def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def soak(
    seconds: float = 300.0,
    *,
    seed: int = 1,
    rate: float = 1000.0,
    book_depth: int = 10,
    level3_symbols: tuple[str, ...] = ("BTC/USD",),
    rss_bound_mib: float = 16.0,
    settle_timeout: float = 30.0,
    on_event: Any = None,
    record: Path | None = None,
) -> SoakReport:
    report = SoakReport(seconds, seed, rate)
    problems = report.problems
    rng = random.Random(seed)
    fault_counts: collections.Counter[str] = collections.Counter()
    event_counts: collections.Counter[str] = collections.Counter()
    report.fds_before = open_fds()
    symbols = tuple(DEFAULT_SYMBOLS)
    keys = {f"book:{s}" for s in symbols} | {f"level3:{s}" for s in level3_symbols}
    sim = Simulator(seed=seed, rate=rate, idle_timeout=10.0, connect_limit=None)
    capture = record.open("wb") if record is not None else None

    def on_frame(recv_ts_ns: int, frame: bytes) -> None:
        assert capture is not None
        capture.write(b"%d\t%s\n" % (recv_ts_ns, frame))

    async with sim:
        feed = KrakenFeed(
            book=symbols,
            level3=level3_symbols,
            depth=book_depth,
            url=sim.url_v2,
            level3_url=sim.url_level3,
            rest_url=sim.rest_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            on_event=on_event,
            on_frame=on_frame if capture is not None else None,
            **FEED_OPTIONS,
        )
        async with feed:
            consumer = asyncio.ensure_future(_consume(feed, event_counts))
            if not await _wait(lambda: _exact(feed, keys), settle_timeout):
                problems.append(f"books never became exact at start: {feed.summary()}")
            faults = asyncio.ensure_future(_faults(sim, rng, fault_counts))
            started = time.monotonic()
            samples: list[tuple[float, int]] = []
            while (elapsed := time.monotonic() - started) < seconds:
                await asyncio.sleep(min(1.0, max(0.0, seconds - elapsed)))
                samples.append((time.monotonic() - started, rss_bytes()))
            faults.cancel()
            await asyncio.gather(faults, return_exceptions=True)
            # Recovery: the system back online, every book exact and verifying again.
            sim.inject("online")
            after_faults = _verified(feed)
            recovered = await _wait(
                lambda: (
                    _exact(feed, keys)
                    and all(_verified(feed).get(k, 0) >= after_faults.get(k, 0) + 5 for k in keys)
                ),
                settle_timeout,
            )
            if not recovered:
                problems.append(f"books did not recover after the faults: {feed.summary()}")
            # Freeze the exchange and compare every book with the engine's own levels.
            sim.inject("maintenance")
            await asyncio.sleep(1.0)
            await _wait(lambda: _exact(feed, keys), settle_timeout)
            await asyncio.sleep(0.5)
            for key, state in sorted(feed.books().items()):
                engine = sim.engines[state.symbol]
                depth = state.depth or book_depth
                book = state.book
                entry = {
                    "messages": state.messages,
                    "checksums_checked": state.checksums_checked,
                    "checksum_mismatches": state.checksum_mismatches,
                    "invalid_messages": state.invalid_messages,
                    "resyncs": state.resyncs,
                    "stale": state.stale,
                }
                report.books[key] = entry
                if key not in keys:
                    continue
                if book is None or state.stale:
                    problems.append(f"{key}: no exact book at the end ({entry})")
                    continue
                expected = (engine.levels(True, depth), engine.levels(False, depth))
                if (book.bids(), book.asks()) != expected:
                    problems.append(f"{key}: book differs from the exchange's at the end")
                entry["exact"] = (book.bids(), book.asks()) == expected
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
            metrics = feed.metrics
            report.metrics = {
                "messages": metrics.messages,
                "checksums_verified": metrics.checksums_verified,
                "mismatches": metrics.mismatches,
                "resyncs": metrics.resyncs,
                "reconnects": metrics.reconnects,
                "bad_frames": metrics.bad_frames,
            }
        # The feed is closed: none of its tasks may be left, nor any connection.
        await asyncio.sleep(0)
        current = asyncio.current_task()
        leftover = [
            t
            for t in asyncio.all_tasks()
            if t is not current and not (t.get_name() or "").startswith("sim-")
        ]
        if not await _wait(lambda: sim.connection_count == 0, 5.0):
            problems.append(f"{sim.connection_count} connections still open after close")
        report.connections_left = sim.connection_count
        await asyncio.sleep(0.2)
        leftover = [t for t in leftover if not t.done()]
        # The server's own connection handlers end with the connections; a client task would not.
        report.tasks_left = [repr(t.get_coro()) for t in leftover]
        if leftover:
            problems.append(f"tasks left after the feed closed: {report.tasks_left}")
    if capture is not None:
        capture.close()
    await asyncio.sleep(0.1)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if others:
        problems.append(f"tasks left after the simulator closed: {[repr(t) for t in others]}")
    report.fds_after = open_fds()
    if report.fds_after > report.fds_before:
        problems.append(f"file descriptors: {report.fds_before} before, {report.fds_after} after")
    report.faults = dict(fault_counts)
    report.events = dict(event_counts)
    if samples:
        warm_at = max(1, len(samples) // 4)
        warm = samples[warm_at - 1][1]
        report.rss_warm_mib = round(warm / MIB, 2)
        report.rss_peak_mib = round(max(rss for _, rss in samples[warm_at - 1 :]) / MIB, 2)
        report.rss_end_mib = round(samples[-1][1] / MIB, 2)
        report.rss_samples_mib = [round(rss / MIB, 2) for _, rss in samples]
        if report.rss_growth_mib > rss_bound_mib:
            problems.append(f"RSS grew {report.rss_growth_mib} MiB after warm-up")
    if sum(fault_counts.values()) == 0 and seconds >= 5:
        problems.append("no fault was injected")
    if not event_counts.get(BookChanged.__name__):
        problems.append("no book changed")
    if record is not None:
        problems.extend(replay_differences(record))
    return report


def replay_differences(path: Path) -> list[str]:
    """Replay a recorded soak with both implementations: every book must come out the same
    (messages, verified checksums, mismatches and final levels). A difference points at the
    core, not at the network or the simulator."""
    from bookengine.replay import replay

    results = {name: replay([path], implementation_name=name) for name in ("cython", "python")}
    problems = []
    compiled, reference = results["cython"].books, results["python"].books
    for key in sorted(set(compiled) | set(reference)):
        a, b = compiled.get(key), reference.get(key)
        view = [
            None
            if s is None
            else (
                s.messages,
                s.checksums_checked,
                s.checksum_mismatches,
                s.invalid_messages,
                None if s.book is None else (s.book.bids(), s.book.asks()),
            )
            for s in (a, b)
        ]
        if view[0] != view[1]:
            problems.append(
                f"replay of {path}: {key} differs: cython {view[0]!r:.300}, python {view[1]!r:.300}"
            )
    return problems


def _print(report: SoakReport) -> None:
    print(f"soak: {report.seconds:.0f} s, seed {report.seed}, rate {report.rate:.0f}/s per symbol")
    print(f"faults injected: {report.faults}")
    print(f"feed: {report.metrics}")
    for key, record in report.books.items():
        print(f"  {key:<16} {record}")
    print(
        f"RSS: warm {report.rss_warm_mib} MiB, peak {report.rss_peak_mib} MiB, end "
        f"{report.rss_end_mib} MiB (growth after warm-up {report.rss_growth_mib} MiB)"
    )
    print(
        f"leaks: tasks left {len(report.tasks_left)}, connections left "
        f"{report.connections_left}, fds {report.fds_before} -> {report.fds_after}"
    )
    print("OK" if not report.problems else "PROBLEMS:\n  " + "\n  ".join(report.problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s per symbol")
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--rss-bound-mib", type=float, default=16.0)
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument(
        "--record",
        type=Path,
        help="write every frame received here, then replay it with both implementations",
    )
    args = parser.parse_args(argv)
    event_types: collections.Counter[str] = collections.Counter()

    def count(event: Event) -> None:
        event_types[type(event).__name__] += 1

    report = asyncio.run(
        soak(
            args.seconds,
            seed=args.seed,
            rate=args.rate,
            book_depth=args.depth,
            rss_bound_mib=args.rss_bound_mib,
            on_event=count,
            record=args.record,
        )
    )
    report.events = dict(event_types)
    _print(report)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=1) + "\n")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
