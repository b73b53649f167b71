"""Benchmark of the analytics: what queue tracking, the fill/cancel join and L2 features cost
per message on top of the books.

A program, not a test: seeded, warmed up, repeated, medians, ratios against the session alone
measured in the same run. Usage::

    .venv/bin/python bench/bench_analytics.py            # full run
    .venv/bin/python bench/bench_analytics.py --quick    # a smoke run
    .venv/bin/python bench/bench_analytics.py --write    # also write bench/README_analytics.md

Stream: :class:`bookengine.analytics.evaluate.SimStream`: the simulator's matching engine
(seeded) rendered by the simulator's own wire code into v2 ``level3`` (depth 10), ``book``
(depth 10) and ``trade`` frames, one engine step every 5 ms of synthetic time, the book kept
near 60 levels per side. A step makes about one level3 message, one book message and, for
about a fifth of the steps, one trade message.

Variants, each over the same frames from a fresh session (all frames count as messages):

* ``session``: ``KrakenSession.receive`` alone (books applied, checksums verified);
* ``analytics``: through ``BookAnalytics.receive``: the session records level3 effects (the
  queue place of every order each message touched, measured by the book as it applies it),
  analytics reads them and the ``Trades`` events: the trade join, the queue flow;
* ``+track``: the same while following 20 resting orders (re-tracked as they finish);
* ``+features``: the same plus a ``FeatureSampler`` (5 levels, two VWAP sizes) on every L2
  book change.

Times are the process's CPU time (single thread); each repeat runs every variant once (round
robin, after a warm-up round); medians are reported, per message and per level3 message.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bookengine._impl import compiled_available  # noqa: E402
from bookengine.analytics import BookAnalytics, FeatureSampler  # noqa: E402
from bookengine.analytics.evaluate import SimStream  # noqa: E402
from bookengine.kraken.events import BookChanged  # noqa: E402

CLOCK = time.process_time
OUT = ROOT / "bench" / "out"
TRACKED = 20


def make_frames(steps: int, seed: int) -> tuple[list[tuple[int, bytes]], dict[str, int]]:
    stream = SimStream(seed=seed)
    frames = [(recv, frame.encode()) for recv, frame in stream.frames(steps)]
    counts = {
        "frames": len(frames),
        "level3": sum(b'"level3"' in f for _, f in frames),
        "book": sum(b'"channel":"book"' in f for _, f in frames),
        "trade": sum(b'"channel":"trade"' in f for _, f in frames),
    }
    return frames, counts


def run_session(frames: Sequence[tuple[int, bytes]], impl: str) -> float:
    stream = SimStream()
    session = stream.session(impl)
    start = CLOCK()
    for recv, frame in frames:
        session.receive(frame, recv)
    return CLOCK() - start


def run_analytics(
    frames: Sequence[tuple[int, bytes]], impl: str, track: bool, features: bool
) -> float:
    stream = SimStream()
    session = stream.session(impl)
    analytics = BookAnalytics(session, keep_classifications=False)
    sampler = FeatureSampler(levels=5, sizes=(5_000_000, 50_000_000)) if features else None
    receive = analytics.receive
    start = CLOCK()
    for recv, frame in frames:
        events = receive(frame, recv)
        for event in events:
            if not isinstance(event, BookChanged):
                continue
            if sampler is not None and event.key.startswith("book:"):
                sampler.add(event.book, recv)
            elif track and event.key.startswith("level3:"):
                active = len(analytics.following())
                if active < TRACKED:
                    _track_some(analytics, event.book, TRACKED - active)
    analytics.flush()
    return CLOCK() - start


def _track_some(analytics: BookAnalytics, book: Any, count: int) -> None:
    for side, best in (("bid", book.best_bid()), ("ask", book.best_ask())):
        if best is None or count <= 0:
            continue
        for order_id, _, _ in book.level_orders(side, best[0]):
            if count <= 0:
                break
            if order_id not in analytics.tracked:
                analytics.track(order_id)
                count -= 1


def machine() -> dict[str, str]:
    def sh(*command: str) -> str:
        try:
            return subprocess.run(
                command, capture_output=True, text=True, check=True, cwd=ROOT
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in sh("lscpu").splitlines()
            if line.startswith("Model name")
        ),
        platform.processor() or "?",
    )
    return {
        "cpu": model,
        "nproc": sh("nproc"),
        "python": platform.python_version(),
        "commit": sh("git", "rev-parse", "--short", "HEAD"),
        "dirty": "yes" if sh("git", "status", "--porcelain", "--", "bookengine") else "no",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true", help="write bench/README_analytics.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 4_000, 2
    frames, counts = make_frames(args.steps, args.seed)
    impls = ["cython", "python"] if compiled_available() else ["python"]
    variants: dict[str, Callable[[Sequence[tuple[int, bytes]], str], float]] = {
        "session": run_session,
        "analytics": lambda f, i: run_analytics(f, i, False, False),
        "+track": lambda f, i: run_analytics(f, i, True, False),
        "+features": lambda f, i: run_analytics(f, i, True, True),
    }
    results: dict[str, dict[str, float]] = {}
    for impl in impls:
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for run in variants.values():  # warm-up round
            run(frames[: len(frames) // 10], impl)
        for _ in range(args.repeats):
            for name, run in variants.items():
                timings[name].append(run(frames, impl))
        results[impl] = {name: statistics.median(values) for name, values in timings.items()}
    info = machine()
    rows = []
    for impl, medians in results.items():
        base = medians["session"]
        for name, seconds in medians.items():
            rows.append(
                {
                    "implementation": impl,
                    "variant": name,
                    "seconds": seconds,
                    "us_per_message": seconds / counts["frames"] * 1e6,
                    "us_per_level3": seconds / counts["level3"] * 1e6,
                    "added_us_per_message": (seconds - base) / counts["frames"] * 1e6,
                    "ratio": seconds / base,
                }
            )
    report = {"machine": info, "stream": {"steps": args.steps, **counts}, "rows": rows}
    OUT.mkdir(exist_ok=True)
    (OUT / "results_analytics.json").write_text(json.dumps(report, indent=2))
    text = render(report, args)
    print(text)
    if args.write:
        (ROOT / "bench" / "README_analytics.md").write_text(text)
    return 0


def render(report: dict[str, Any], args: argparse.Namespace) -> str:
    m, s = report["machine"], report["stream"]
    lines = [
        "# Analytics benchmark",
        "",
        "`bench/bench_analytics.py`: the cost of `bookengine.analytics` per message, on top of",
        "the session (books applied, every checksum verified). See the program's docstring for",
        "the stream and the variants.",
        "",
        f"Machine: {m['cpu']}, {m['nproc']} cores, Python {m['python']}, commit {m['commit']}"
        f" (uncommitted changes in bookengine: {m['dirty']}), load {m['load']}.",
        f"Stream: {s['steps']:,} engine steps -> {s['frames']:,} frames ({s['level3']:,} level3,"
        f" {s['book']:,} book, {s['trade']:,} trade); median of {args.repeats} repeats, CPU time.",
        "",
        "| implementation | variant | µs / message | µs / level3 message | added µs / message |"
        " × session |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['implementation']} | {row['variant']} | {row['us_per_message']:.2f} |"
            f" {row['us_per_level3']:.2f} | {row['added_us_per_message']:.2f} |"
            f" {row['ratio']:.2f} |"
        )
    lines += [
        "",
        "Reading it: `analytics` adds the books' effects recording (a queue walk per",
        "delete/modify entry, O(min(orders ahead, behind)) in C for the compiled book), one",
        "`L3Change` per delete/modify and the trade join, reading events only; `+track` adds",
        f"a `queue_position` per tracked order ({TRACKED}) per level3 message; `+features` a",
        "feature row per L2 change (Python arithmetic over 5 levels and two VWAP walks).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
