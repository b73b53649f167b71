"""Capture benchmarks: replay throughput from plain, gzip and zstd captures, export throughput,
and the speed-up of ``replay_many`` over 2 cores (local processes and Dask).

The capture is generated offline and deterministically (seeded) with the simulator's own
pieces: a matching engine per symbol, the per-subscriber L2/L3 windows and the wire encoders,
exactly what ``bookengine sim`` publishes, at a simulated 1 ms step. It holds an ``instrument``
snapshot, subscribe acks, ``book`` BTC/USD and ETH/USD at depth 100, ``level3`` BTC/USD at
depth 100, ``trade`` BTC/USD and heartbeats, with synthetic receive times. It is written once
by the :class:`~bookengine.capture.Recorder` (plain, gzip, zstd; and plain rotated into 4
segments with checkpoints, each replayable alone) and cached under ``bench/out/``.

Every timing is the median of ``--repeats`` rounds after one untimed warm-up round; results
of the plain, gzip and zstd replays are checked equal, and so are serial and parallel runs.

Usage::

    python bench/bench_capture.py [--seconds 60] [--repeats 3] [--quick] [--no-readme]
    python bench/bench_capture.py --render bench/out/results_capture_<stamp>.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(REPO))

from bookengine.capture import (  # noqa: E402
    CaptureReader,
    Recorder,
    find_segments,
    session_checkpoint,
)
from bookengine.kraken.session import KrakenSession  # noqa: E402
from bookengine.parallel import replay_many, split_by_symbol  # noqa: E402
from bookengine.replay import Replayer  # noqa: E402

GENERATOR_VERSION = 1
"""Bump when the generated capture changes: cached files carry it in their name."""
OUT = HERE / "out"
START_NS = 1_704_672_000_000_000_000  # 2024-01-08T00:00:00Z
STEP_NS = 1_000_000
BOOK_DEPTH = 100
LEVEL3_DEPTH = 100


# -- the capture -------------------------------------------------------------------------------


def generate(path: Path, seconds: float, seed: int) -> None:
    """Write the benchmark capture (plain, unrotated) to ``path``."""
    from bookengine.sim.engine import MatchingEngine, derive_seed
    from bookengine.sim.specs import spec_for
    from bookengine.sim.windows import L2Window, L3Window
    from bookengine.sim.wire import (
        number_renderer,
        v2_book,
        v2_heartbeat,
        v2_instrument,
        v2_level3,
        v2_trades,
    )

    render = number_renderer("plain")
    specs = {symbol: spec_for(symbol) for symbol in ("BTC/USD", "ETH/USD")}
    engines = {
        symbol: MatchingEngine(spec, derive_seed(seed, symbol), now_ns=START_NS)
        for symbol, spec in specs.items()
    }
    l2 = {symbol: L2Window(BOOK_DEPTH) for symbol in specs}
    l3 = L3Window(LEVEL3_DEPTH)
    with Recorder(path, overwrite=True, flush_lines=10_000) as recorder:
        now = START_NS
        write = recorder.write_frame
        write(now, v2_instrument(list(specs.values()), render, "online"))
        for symbol in specs:
            ack = {"channel": "book", "depth": BOOK_DEPTH, "snapshot": True, "symbol": symbol}
            write(now, json.dumps({"method": "subscribe", "result": ack, "success": True}))
        ack = {"channel": "level3", "depth": LEVEL3_DEPTH, "snapshot": True, "symbol": "BTC/USD"}
        write(now, json.dumps({"method": "subscribe", "result": ack, "success": True}))
        for symbol, spec in specs.items():
            bids, asks = l2[symbol].snapshot(engines[symbol])
            checksum = engines[symbol].checksum(BOOK_DEPTH)
            write(now, v2_book("snapshot", spec, bids, asks, checksum, now, render))
        bids3, asks3 = l3.snapshot(engines["BTC/USD"])
        checksum = engines["BTC/USD"].level3_checksum(LEVEL3_DEPTH)
        write(now, v2_level3("snapshot", specs["BTC/USD"], bids3, asks3, checksum, now, render))
        steps = int(seconds * 1e9 / STEP_NS)
        for step in range(steps):
            now = START_NS + (step + 1) * STEP_NS
            offset = 0
            for symbol, spec in specs.items():
                engine = engines[symbol]
                engine.step(now)
                changes = engine.drain()
                bids, asks = l2[symbol].update(engine, changes, now)
                if bids or asks:
                    offset += 1000
                    checksum = engine.checksum(BOOK_DEPTH)
                    write(now + offset, v2_book("update", spec, bids, asks, checksum, now, render))
                if symbol != "BTC/USD":
                    continue
                bids3, asks3 = l3.update(engine, changes, now)
                if bids3 or asks3:
                    offset += 1000
                    checksum = engine.level3_checksum(LEVEL3_DEPTH)
                    frame = v2_level3("update", spec, bids3, asks3, checksum, now, render)
                    write(now + offset, frame)
                if changes.trades:
                    offset += 1000
                    write(now + offset, v2_trades("update", spec, changes.trades, render))
            if step % 1000 == 999:
                write(now + offset + 1000, v2_heartbeat())


def prepare(seconds: float, seed: int) -> dict[str, Any]:
    """The cached captures (generated on first use): plain, gzip, zstd, rotated plain."""
    OUT.mkdir(exist_ok=True)
    stem = f"capture_s{seed}_{seconds:g}s_v{GENERATOR_VERSION}"
    plain = OUT / f"{stem}.jsonl"
    if not plain.exists():
        print(f"generating {plain.name} ({seconds:g} simulated s)...", file=sys.stderr)
        started = time.perf_counter()
        partial = plain.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        generate(partial, seconds, seed)
        partial.rename(plain)
        print(f"  {time.perf_counter() - started:.1f}s", file=sys.stderr)
    files = {"plain": plain}
    frames = [(r.recv_ts_ns, r.frame) for r in CaptureReader([plain])]
    for kind, suffix in (("gzip", ".jsonl.gz"), ("zstd", ".jsonl.zst")):
        path = OUT / f"{stem}{suffix}"
        if not path.exists():
            rewrite(frames, path)
        files[kind] = path
    rotated_base = OUT / f"{stem}_rotated" / "seg.jsonl"
    segments = find_segments(rotated_base)
    if len(segments) != 4:
        if rotated_base.parent.exists():
            shutil.rmtree(rotated_base.parent)
        rotated_base.parent.mkdir()
        span_s = (frames[-1][0] - frames[0][0]) / 1e9
        segments = rewrite(frames, rotated_base, max_seconds=span_s / 4 + 1e-6)
    return {"files": files, "segments": segments, "frames": len(frames)}


def rewrite(frames: list[tuple[int, bytes]], path: Path, **options: Any) -> list[Path]:
    """Record ``frames`` again through a Recorder fed by a live session (for checkpoints)."""
    session = KrakenSession()
    with Recorder(
        path,
        flush_lines=10_000,
        checkpoint=lambda: session_checkpoint(session.books, session.instruments),
        **options,
    ) as recorder:
        for recv_ts_ns, frame in frames:
            recorder.write_frame(recv_ts_ns, frame)  # as the feed: record, then apply
            session.receive(frame, recv_ts_ns)
    return list(recorder.segments)


# -- timing ------------------------------------------------------------------------------------


def median_time(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` rounds after one untimed warm-up; the last result."""
    times, results = interleaved({"run": run}, repeats)
    return times["run"], results["run"]


def interleaved(
    runs: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Median wall time of each run, rounds interleaved (a drifting machine load then colours
    every run alike); one untimed warm-up round first. Returns medians and last results."""
    results = {name: run() for name, run in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}, results


def fingerprint(result: Any) -> dict[str, Any]:
    return {
        key: (state.messages, state.checksums_checked, state.book.checksum())
        for key, state in sorted(result.books.items())
    }


def bench_replay(prepared: dict[str, Any], repeats: int) -> dict[str, Any]:
    files = prepared["files"]
    runs: dict[str, Callable[[], Any]] = {}
    for kind, path in files.items():
        runs[f"read {kind}"] = lambda p=path: sum(1 for _ in CaptureReader([p]))
        runs[f"replay {kind}"] = lambda p=path: Replayer([p], progress=False).run()
    times, results = interleaved(runs, repeats)
    reference = fingerprint(results["replay plain"])
    rows: dict[str, Any] = {}
    for kind, path in files.items():
        result = results[f"replay {kind}"]
        assert fingerprint(result) == reference, f"{kind}: replay differs from plain"
        assert result.ok, kind
        count = results[f"read {kind}"]
        read_s, replay_s = times[f"read {kind}"], times[f"replay {kind}"]
        size = path.stat().st_size
        rows[kind] = {
            "file_mb": round(size / 1e6, 1),
            "frames": count,
            "read_s": round(read_s, 3),
            "read_frames_per_s": round(count / read_s),
            "replay_s": round(replay_s, 3),
            "replay_frames_per_s": round(result.frames / replay_s),
            "replay_mb_per_s_on_disk": round(size / 1e6 / replay_s, 1),
        }
        print(f"replay {kind}: {rows[kind]}", file=sys.stderr)
    return rows


def bench_export(prepared: dict[str, Any], repeats: int) -> dict[str, Any]:
    from bookengine.export import export

    plain = prepared["files"]["plain"]
    frames = prepared["frames"]
    cases = {
        "l2 parquet, every message, 10 levels": {"what": "l2", "fmt": "parquet"},
        "l2 parquet, every 100 ms, 10 levels": {"what": "l2", "fmt": "parquet", "every_ns": 10**8},
        "l3 parquet": {"what": "l3", "fmt": "parquet"},
        "l3 LOBSTER, 10 levels": {"what": "l3", "fmt": "lobster"},
        "trades parquet": {"what": "trades", "fmt": "parquet"},
    }
    rows: dict[str, Any] = {}
    for name, options in cases.items():
        with tempfile.TemporaryDirectory() as tmp:

            def run(options: dict[str, Any] = options, tmp: str = tmp) -> list[Path]:
                return export(Replayer([plain], progress=False), tmp, levels=10, **options)

            seconds, files = median_time(run, repeats)
            out_rows = 0
            for path in files:
                if path.suffix == ".parquet":
                    import pyarrow.parquet as pq

                    out_rows += pq.read_metadata(path).num_rows
                elif "_message_" in path.name or "_orderbook_" in path.name:
                    out_rows += sum(1 for _ in path.open()) if "_message_" in path.name else 0
        rows[name] = {
            "seconds": round(seconds, 3),
            "frames_per_s": round(frames / seconds),
            "rows": out_rows,
            "rows_per_s": round(out_rows / seconds),
        }
        print(f"export {name}: {rows[name]}", file=sys.stderr)
    return rows


def bench_parallel(prepared: dict[str, Any], repeats: int) -> dict[str, Any]:
    plain = str(prepared["files"]["plain"])
    job_sets = {
        "2 equal jobs (the whole capture each)": [[plain], [plain]],
        "4 segments, a job each": [[str(p)] for p in prepared["segments"]],
        "2 symbols, a job each": split_by_symbol([plain], ["BTC/USD", "ETH/USD"]),
    }
    rows: dict[str, Any] = {}
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        Client = LocalCluster = None
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(
            ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver"))
        )
        client = None
        if Client is not None and LocalCluster is not None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
                )
            )
            client = stack.enter_context(Client(cluster))
        for name, items in job_sets.items():
            runs: dict[str, Callable[[], Any]] = {
                "serial": lambda items=items: replay_many(items, processes=1),
                "processes": lambda items=items: replay_many(items, processes=2),
                # A pool made once: its workers are started and warm.
                "warm pool": lambda items=items: replay_many(items, executor=pool),
            }
            if client is not None:
                runs["dask"] = lambda items=items: replay_many(items, executor=client)
            times, results = interleaved(runs, repeats)
            cpu_started = time.process_time()
            replay_many(items, processes=1)
            serial_cpu_s = time.process_time() - cpu_started
            for variant, result in results.items():
                assert result == results["serial"], (name, variant)
            serial_s = times["serial"]
            row: dict[str, Any] = {
                "serial_s": round(serial_s, 3),
                "serial_cpu_s": round(serial_cpu_s, 3),
                "processes_2_s": round(times["processes"], 3),
                "speedup_processes": round(serial_s / times["processes"], 2),
                "warm_pool_2_s": round(times["warm pool"], 3),
                "speedup_warm_pool": round(serial_s / times["warm pool"], 2),
            }
            if "dask" in times:
                row["dask_2_workers_s"] = round(times["dask"], 3)
                row["speedup_dask"] = round(serial_s / times["dask"], 2)
            rows[name] = row
            print(f"parallel {name}: {row}", file=sys.stderr)
    return rows


# -- report ------------------------------------------------------------------------------------


def _command(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    """The machine and versions a result was measured on."""
    model = ""
    for line in _command("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    versions = {}
    for package in ("numpy", "pyarrow", "zstandard", "dask", "distributed", "pandas"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    import bookengine

    digest = hashlib.sha256()
    for library in sorted((REPO / "bookengine" / "_core").glob("*.so")):
        digest.update(library.name.encode())
        digest.update(library.read_bytes())
    return {
        "nproc": _command("nproc") or str(os.cpu_count()),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "implementation": bookengine.IMPLEMENTATION,
        "commit": _command("git", "-C", str(REPO), "describe", "--always", "--dirty"),
        "build_sha256": digest.hexdigest()[:12],
        "platform": platform.platform(),
        "packages": versions,
    }


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Capture benchmarks (`bench/bench_capture.py`)",
        "",
        f"Machine: {m['cpu']}, {m['nproc']} CPUs, Python {m['python']}, {m['platform']}; "
        f"implementation `{m['implementation']}`, commit `{m['commit']}` (build "
        f"{m['build_sha256']}); " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + ".",
        "",
        f"Capture: {results['capture']['frames']:,} frames, {results['capture']['seconds']:g} "
        f"simulated seconds (seed {results['capture']['seed']}): `book` BTC/USD + ETH/USD depth "
        f"{BOOK_DEPTH}, `level3` BTC/USD depth {LEVEL3_DEPTH}, `trade` BTC/USD, generated with "
        "the simulator's engine and wire code. Medians of "
        f"{results['repeats']} rounds after a warm-up; "
        f"command: `python bench/bench_capture.py {results['argv']}`.",
        "",
        f"1-minute load average: {results['load_average_start']} at the start, "
        f"{results['load_average'][0]} at the end (other work on the machine colours the "
        "numbers, the parallel ones most).",
        "",
        "## Replay (one process, `Replayer(...).run()`, every checksum verified)",
        "",
        "| file | MB on disk | read only, frames/s | replay, frames/s | replay, MB/s on disk |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, row in results["replay"].items():
        lines.append(
            f"| {kind} | {row['file_mb']} | {row['read_frames_per_s']:,} | "
            f"{row['replay_frames_per_s']:,} | {row['replay_mb_per_s_on_disk']} |"
        )
    lines += [
        "",
        "## Export (from the plain capture, replay included)",
        "",
        "| export | seconds | capture frames/s | rows written | rows/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in results["export"].items():
        lines.append(
            f"| {name} | {row['seconds']} | {row['frames_per_s']:,} | {row['rows']:,} | "
            f"{row['rows_per_s']:,} |"
        )
    lines += [
        "",
        "## Parallel replay (`replay_many`, 2 workers; results checked equal to serial)",
        "",
        "| jobs | serial s (CPU s) | `processes=2` s | speed-up | warm 2-process pool s | "
        "speed-up | Dask 2 workers s | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results["parallel"].items():
        lines.append(
            f"| {name} | {row['serial_s']} ({row.get('serial_cpu_s', '-')}) | "
            f"{row['processes_2_s']} | "
            f"{row['speedup_processes']}x | {row['warm_pool_2_s']} | "
            f"{row['speedup_warm_pool']}x | {row.get('dask_2_workers_s', '-')} | "
            f"{row.get('speedup_dask', '-')}x |"
        )
    lines += [
        "",
        "`processes=2` includes starting the workers (forkserver) on every call; the warm pool "
        "(`executor=ProcessPoolExecutor(2)`, made once) and the Dask cluster (processes) are "
        "started outside the timing. A job per segment replays each rotated "
        "segment on its own from its `#checkpoint` lines; a job per symbol replays the whole "
        "capture but skips the other symbols' frames before scanning them (BTC/USD carries "
        "the level3 book, so the two jobs are unequal). A serial CPU time well below its wall "
        "time means other processes held the cores during the run.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=20240108)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10 simulated s, 1 repeat")
    parser.add_argument("--no-readme", action="store_true", help="do not write README_capture.md")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only rewrite the README from saved results"
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        text = markdown(json.loads(args.render.read_text()))
        (HERE / "README_capture.md").write_text(text)
        print(text)
        return 0
    if args.quick:
        args.seconds, args.repeats = 10.0, 1
    prepared = prepare(args.seconds, args.seed)
    results: dict[str, Any] = {
        "load_average_start": round(os.getloadavg()[0], 2),
        "machine": machine(),
        "argv": " ".join(argv if argv is not None else sys.argv[1:]),
        "repeats": args.repeats,
        "capture": {"frames": prepared["frames"], "seconds": args.seconds, "seed": args.seed},
    }
    results["replay"] = bench_replay(prepared, args.repeats)
    results["export"] = bench_export(prepared, args.repeats)
    results["parallel"] = bench_parallel(prepared, args.repeats)
    results["load_average"] = [round(os.getloadavg()[0], 2), "at the end (1 min)"]
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (OUT / f"results_capture_{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    if not args.no_readme:
        (HERE / "README_capture.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
