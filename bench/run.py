"""Run the benchmark programs (``make bench``, ``bookengine bench``): L2, L3, the live path and
the capture shapes.

Options every program understands (``--quick``, ``--repeats R``) go to each of them; anything
for one program only goes through ``--l2 "..."``, ``--l3 "..."`` or ``--captures "..."`` (the
L2 program counts ``--messages`` and takes ``--depth``, the L3 one counts ``--events`` and takes
``--depths``, the capture suite takes ``--messages`` and ``--record-seconds``)::

    python bench/run.py --quick
    python bench/run.py --repeats 7 --l2 "--messages 200000 --depth 100" --l3 "--events 200000"
    make bench BENCH_ARGS="--quick"

Each program runs in its own process, so one's allocations and warm caches do not colour the
other's numbers. Each prints its own tables; at the end a summary puts the figures of this run
next to the targets of issue 9 (throughput, ratios to the peers, memory, live latency) and of
issue 13 (the capture shapes: ``bench_captures.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROGRAMS = {
    "l2": "bench_l2.py",
    "l3": "bench_l3.py",
    "live": "bench_live.py",
    "captures": "bench_captures.py",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small streams, 2 repeats")
    parser.add_argument("--repeats", type=int, help="timed rounds per program")
    parser.add_argument("--only", choices=sorted(PROGRAMS), help="run one program")
    for key in PROGRAMS:
        parser.add_argument(f"--{key}", default="", metavar="ARGS", help=f"extra {key} arguments")
    args = parser.parse_args(argv)
    common = (["--quick"] if args.quick else []) + (
        ["--repeats", str(args.repeats)] if args.repeats else []
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    status = 0
    started = time.time()
    live: list[dict[str, Any]] | None = None
    for key, name in PROGRAMS.items():
        if args.only and key != args.only:
            continue
        program = HERE / name
        if not program.exists():
            print(f"{name}: not present, skipped", file=sys.stderr)
            continue
        command = [sys.executable, str(program), *common, *shlex.split(getattr(args, key))]
        print(f"== {' '.join(command[1:])}", file=sys.stderr, flush=True)
        if key == "live":
            # Its table comes from its JSON (printed here), so the summary can use the numbers.
            result = subprocess.run(
                [*command, "--json"], env=env, check=False, text=True, stdout=subprocess.PIPE
            )
            returncode = result.returncode
            if returncode == 0:
                live = json.loads(result.stdout)
                print_live(live)
        else:
            returncode = subprocess.run(command, env=env, check=False).returncode
        if returncode:
            print(f"{name} failed with exit status {returncode}", file=sys.stderr)
            status = status or returncode
    print_summary(
        newest("results_l2_", started),
        newest("results_l3_", started),
        live,
        newest("results_captures_", started),
    )
    return status


# -- the summary against the targets ---------------------------------------------------


def newest(prefix: str, since: float) -> dict[str, Any] | None:
    """The results file a program wrote during this run, if any."""
    files = [p for p in (HERE / "out").glob(f"{prefix}*.json") if p.stat().st_mtime >= since]
    if not files:
        return None
    data: dict[str, Any] = json.loads(max(files, key=lambda p: p.stat().st_mtime).read_text())
    return data


def print_live(runs: list[dict[str, Any]]) -> None:
    print("\nlive path against `bookengine sim` (its own process)")
    print(
        f"{'phase':<11} {'msg/s':>9} {'proc p50':>9} {'proc p99':>9} {'deliv p50':>10} "
        f"{'deliv p99':>10} {'socket p50':>11} {'socket p99':>11} {'CPU/msg':>9} {'mismatch':>8}"
    )
    for r in runs:
        print(
            f"{r['phase']:<11} {r['messages_per_s']:>9.0f} {r['processing_p50_us']:>7.1f}µs "
            f"{r['processing_p99_us']:>7.1f}µs {r['delivery_p50_us']:>8.1f}µs "
            f"{r['delivery_p99_us']:>8.1f}µs {r.get('socket_p50_us', 0):>9.1f}µs "
            f"{r.get('socket_p99_us', 0):>9.1f}µs {r.get('cpu_us_per_msg', 0):>7.1f}µs "
            f"{r['mismatches']:>8}"
        )
    print(
        "proc: ws.recv returned -> session done; deliv: ws.recv returned -> the consumer has "
        "the event; socket: bytes read from the socket -> the consumer has the event"
    )


def _l2_rate(l2: dict[str, Any], depth: int, name: str) -> float | None:
    for block in l2.get("results", []):
        if block.get("depth") == depth:
            for row in block.get("rows", []):
                if row.get("name") == name:
                    return float(row["median_rate"])
    return None


def _l2_best_peer(l2: dict[str, Any], depth: int) -> tuple[str, float] | None:
    peers = [
        (row["name"], float(row["median_rate"]))
        for block in l2.get("results", [])
        if block.get("depth") == depth
        for row in block.get("rows", [])
        if not row["name"].startswith("bookengine") and row["name"] != "python-kraken-sdk"
    ]
    return max(peers, key=lambda item: item[1]) if peers else None


def _number(value: float) -> str:
    """A target as written in the issues: 2,000,000 or 1.3."""
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:g}"


def print_summary(
    l2: dict[str, Any] | None,
    l3: dict[str, Any] | None,
    live: list[dict[str, Any]] | None,
    captures: dict[str, Any] | None = None,
) -> None:
    rows: list[tuple[str, str, str, bool | None]] = []

    def add(what: str, value: float | None, unit: str, target: float, higher: bool = True) -> None:
        if value is None:
            rows.append((what, "not measured", f"{_number(target)}{unit}", None))
            return
        met = value >= target if higher else value <= target
        rows.append(
            (
                what,
                f"{value:,.2f}{unit}"
                if value < 10 and unit == "x"
                else (f"{value:,.1f}{unit}" if value < 100 else f"{value:,.0f}{unit}"),
                f"{'>=' if higher else '<='} {_number(target)}{unit}",
                met,
            )
        )

    if l2 is not None:
        for depth, target in ((100, 2_000_000), (1000, 1_500_000)):
            buffer = _l2_rate(l2, depth, "bookengine session, buffer")
            add(f"L2 d{depth} replay from raw bytes, msg/s", buffer, "", target)
            add(
                f"L2 d{depth} compiled loop (scan + apply per call), msg/s",
                _l2_rate(l2, depth, "bookengine compiled"),
                "",
                target,
            )
            add(
                f"L2 d{depth} `bookengine replay` of a file, msg/s",
                _l2_rate(l2, depth, "bookengine replay, file"),
                "",
                target,
            )
            peer = _l2_best_peer(l2, depth)
            if buffer is not None and peer is not None:
                add(f"L2 d{depth} x best peer ({peer[0]})", buffer / peer[1], "x", 15)
            sdk = _l2_rate(l2, depth, "python-kraken-sdk")
            if buffer is not None and sdk is not None:
                add(f"L2 d{depth} x python-kraken-sdk", buffer / sdk, "x", 100)
    if l3 is not None:
        for block in l3.get("depths", []):
            runs, depth = block["runs"], block["depth"]
            scan = runs.get("cython scan only")
            for label, verified_key, applied_key in (
                ("replay path", "replay path verified", "replay path applied"),
                ("scan + apply per call", "cython verified", "cython applied"),
            ):
                verified, applied = runs.get(verified_key), runs.get(applied_key)
                if verified:
                    add(
                        f"L3 d{depth} messages/s verified, {label}",
                        verified["messages"] / verified["median_seconds"],
                        "",
                        1_000_000,
                    )
                if applied:
                    add(
                        f"L3 d{depth} events/s applied from raw frames, {label}",
                        applied["events"] / applied["median_seconds"],
                        "",
                        5_000_000,
                    )
            applied = runs.get("cython applied")
            if applied and scan:
                add(
                    f"L3 d{depth} events/s applied, book work (scan excluded)",
                    applied["events"] / (applied["median_seconds"] - scan["median_seconds"]),
                    "",
                    5_000_000,
                )
        memory = l3.get("memory", {})
        add(
            "L3 bytes per resting order", memory.get("pool_bytes_per_order"), " B", 64, higher=False
        )
    if live is not None:
        latency = next((r for r in live if r.get("phase") == "latency"), None)
        if latency is not None:
            add(
                "live: frame received -> book verified, p50",
                latency["processing_p50_us"],
                " µs",
                10,
                higher=False,
            )
            add(
                "live: frame received -> event delivered, p50",
                latency["delivery_p50_us"],
                " µs",
                10,
                higher=False,
            )
    if captures is not None:
        # bench_captures.py writes the figures its targets are judged on (issue 13)
        for item in captures.get("summary", []):
            add(item["what"], item["value"], item["unit"], item["target"], item["higher"])
    if not rows:
        return
    width = max(len(row[0]) for row in rows)
    print("\nsummary: this run against the targets of issues 9 and 13 (one core, same machine)")
    for what, value, goal, met in rows:
        verdict = "" if met is None else ("met" if met else "NOT met")
        print(f"  {what:<{width}}  {value:>14}  target {goal:<14} {verdict}")


if __name__ == "__main__":
    sys.exit(main())
