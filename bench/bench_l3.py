"""Benchmark of the L3 (``level3``) book: events/s applied, messages/s verified, bytes/order.

A program, not a test: seeded, warmed up, repeated, medians, ratios against peers measured in
the same run. Usage::

    .venv/bin/python bench/bench_l3.py               # full run (~1M events per depth)
    .venv/bin/python bench/bench_l3.py --quick       # a smoke run
    .venv/bin/python bench/bench_l3.py --write       # also (re)write bench/README_l3.md

Streams. ``tests/l3/publisher.py`` (the independent model the differential tests use) turns a
seeded random exchange into raw Kraken ``level3`` frames: adds, cancels, in-place modifies
(partial fills, size changes), price amends and trades at the touch; truncation and backfill
as Kraken does them; a CRC32 on every message computed from the model. The exchange keeps a
steady book of about 1.25 x depth levels per side, queues reverting to ~6 orders; 60% of the
activity lands near the touch (exponential, mean 5 levels), 40% anywhere in the book. Streams
are cached under ``bench/out/`` (gitignored).

Measured, per depth (100 and 1000), over the same frames:

* ``verified``: ``scanner.scan(frame); book.apply_scanned(scanner)`` with the checksum in
  every frame (the production path: every checksum verified);
* ``applied``: the same frames with the checksum field removed (no verification);
* ``scan``: the scanner alone, so the book's own share can be derived.

Each repeat runs every variant once (round robin, after a warm-up round) and the medians are
reported. Times are the process's CPU time: on an idle machine that equals wall time, and on
a shared one (this project's is) it leaves out the time other processes held the CPU.

Peers in the same run: the pure-Python reference (on a prefix of the stream) and the
``order-book`` package. ``order-book`` has no L3 mode (no order index, no queue semantics, no
L3 checksum: its checksum over nested dicts is not Kraken's); it is measured the way
cryptofeed uses it for L3 books: levels holding ``{order_id: Decimal}`` dicts plus a Python
order map, frames decoded with orjson, the L3 checksum computed in Python.

Memory: the compiled core's C structures are invisible to tracemalloc; bytes per resting order
come from the core's own pool accounting (``_memory_stats``) and, as a cross-check, the RSS
growth of the process while a book of 1,000,000 resting orders is built.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# One BLAS thread: numpy's idle worker threads would compete with the measured loop.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from l3.publisher import ASK, BID, Publisher, kraken_id  # noqa: E402

import bookengine  # noqa: E402
from bookengine.checksum import level3_checksum  # noqa: E402

OUT = ROOT / "bench" / "out"
SYMBOL = "BTC/USD"
PRICE_PRECISION, QTY_PRECISION = 1, 8
CHECKSUM_FIELD = re.compile(rb'"checksum":\d+,')
CLOCK = time.process_time
"""CPU time of this (single-threaded) process: on an idle machine the same as wall time; on a
shared one it leaves out the time other processes held the CPU."""
STREAM_VERSION = 3
"""Part of the cache file name: bump it when the generator changes."""


# -- streams -----------------------------------------------------------------------------------


def _rank(rng: random.Random, levels: int) -> int:
    """Which level (0 = touch) an event lands on: mostly near the touch, some anywhere."""
    if rng.random() < 0.6:
        return min(int(rng.expovariate(0.2)), levels - 1)
    return rng.randrange(levels + levels // 2)


QUEUE_TARGET = 6
"""Orders a level's queue reverts to: adds and cancels at a level balance around it."""


def _exchange_event(pub: Publisher, rng: random.Random, levels: int) -> None:
    """One exchange event at a level picked by :func:`_rank` (touch-biased).

    Trades 8% (at the touch), in-place modifies 17%, price amends 5%; the other 70% add to
    or cancel from the chosen level, the add share leaning toward ``QUEUE_TARGET`` orders so
    queue lengths revert to it wherever the activity is. A rank past the book's last level,
    or 10% of adds, go to a fresh price near that rank: levels appear and (emptied by
    cancels and trades) disappear, which exercises truncation and backfill.
    """
    side = rng.randrange(2)
    book = pub.full[side]
    rank = _rank(rng, levels)
    if rank >= len(book):
        pub.add(side, pub.price_near(side, rank), _qty(rng))
        return
    level = book.values()[rank]
    orders = list(level)
    roll = rng.random()
    if roll < 0.08:
        front = next(iter(book.values()[0].values()))[0]
        pub.trade(side, max(1, int(front * rng.uniform(0.2, 2.5))))
    elif roll < 0.25:
        order_id = orders[0] if rng.random() < 0.5 else rng.choice(orders)
        pub.modify(order_id, _qty(rng))
    elif roll < 0.30:
        order_id = rng.choice(orders)
        price = pub.price_near(side, _rank(rng, levels))
        if price != pub.where[order_id][1]:
            pub.move(order_id, price, _qty(rng))
    else:
        lean = max(-1.0, min(1.0, (QUEUE_TARGET - len(orders)) / QUEUE_TARGET))
        if rng.random() < 0.5 + 0.4 * lean:
            price = pub.where[orders[0]][1] if rng.random() < 0.9 else pub.price_near(side, rank)
            pub.add(side, price, _qty(rng))
        else:
            pub.delete(rng.choice(orders))


def _qty(rng: random.Random) -> int:
    return int(rng.lognormvariate(17.0, 1.5)) + 1  # ~0.24 BTC median at 8 decimals


def generate(depth: int, events: int, seed: int) -> tuple[bytes, list[bytes]]:
    """A snapshot frame and update frames (checksum in each) carrying about ``events``."""
    rng = random.Random(seed)
    pub = Publisher(
        SYMBOL, depth, PRICE_PRECISION, QTY_PRECISION, seed=seed, odd_ids=0.0, number_style="number"
    )
    levels = int(depth * 1.25) + 10
    for side in (ASK, BID):
        for rank in range(levels):
            for _ in range(rng.randint(1, 2 * QUEUE_TARGET - 1)):
                pub.add(side, pub.price_near(side, rank, anchor=600_000), _qty(rng))
    snapshot = pub.snapshot()
    pub.events = 0
    frames = []
    while pub.events < events:
        for _ in range(rng.choice((1, 1, 1, 1, 2, 2, 3))):
            _exchange_event(pub, rng, levels)
        frames.append(pub.flush())
    return snapshot, frames


def load_stream(depth: int, events: int, seed: int) -> tuple[bytes, list[bytes], int]:
    """The cached stream for these parameters (generated on first use)."""
    path = OUT / f"l3-v{STREAM_VERSION}-depth{depth}-events{events}-seed{seed}.jsonl.gz"
    if not path.exists():
        started = time.perf_counter()
        snapshot, frames = generate(depth, events, seed)
        OUT.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with gzip.open(tmp, "wb", compresslevel=1) as out:
            out.write(b"\n".join([snapshot, *frames]))
        tmp.rename(path)
        print(f"  generated {path.name} in {time.perf_counter() - started:.0f} s", flush=True)
    with gzip.open(path, "rb") as stream:
        snapshot, *frames = stream.read().split(b"\n")
    count = sum(frame.count(b'"event"') for frame in frames)
    return snapshot, frames, count


# -- runners -----------------------------------------------------------------------------------


def run_bookengine(
    name: str,
    depth: int,
    snapshot: bytes,
    frames: Sequence[bytes],
    apply: bool = True,
    effects: int = 0,
) -> float:
    """Seconds to scan (and apply) ``frames`` on a fresh book built from ``snapshot``.

    ``effects``: 1 records the effects of each message (``record_effects``), 2 also builds
    them (``effects()``, as a session with ``level3_effects`` does for every message).
    """
    impl = bookengine.implementation(name)
    scanner = impl.FrameScanner()
    book = impl.L3Book(SYMBOL, depth, PRICE_PRECISION, QTY_PRECISION)
    book.record_effects = effects > 0
    scanner.scan(snapshot)
    book.apply_scanned(scanner)
    scan, apply_scanned, built = scanner.scan, book.apply_scanned, book.effects
    gc.collect()
    gc.disable()
    try:
        started = CLOCK()
        if effects == 2:
            for frame in frames:
                scan(frame)
                apply_scanned(scanner)
                built()
        elif apply:
            for frame in frames:
                scan(frame)
                apply_scanned(scanner)
        else:
            for frame in frames:
                scan(frame)
        return CLOCK() - started
    finally:
        gc.enable()


def run_buffer(depth: int, snapshot: bytes, frames: Sequence[bytes]) -> float:
    """Seconds for ``KrakenSession.receive_buffer`` over the stream as capture bytes: the
    replay path of ``bookengine replay`` (lines stay in C; no Python call per message)."""
    from bookengine.kraken.session import KrakenSession

    data = b"\n".join([snapshot, *frames]) + b"\n"
    session = KrakenSession(precisions={SYMBOL: (PRICE_PRECISION, QTY_PRECISION)}, depth=depth)
    gc.collect()
    gc.disable()
    try:
        started = CLOCK()
        session.receive_buffer(data)
        elapsed = CLOCK() - started
    finally:
        gc.enable()
    state = next(iter(session.books.values()))
    if session.fast_path_frames < len(frames) or state.checksum_mismatches or state.stale:
        raise AssertionError(f"replay path: {session.fast_path_frames} fast, {state.summary()}")
    return elapsed


def run_order_book(depth: int, snapshot: bytes, frames: Sequence[bytes], verify: bool) -> float:
    """cryptofeed-style L3 on ``order-book``: levels of ``{order_id: Decimal}``, an order map.

    ``max_depth`` is not used: order-book evicts at insert time, Kraken truncates once per
    message (a level pushed out and brought back within one message is never backfilled).
    """
    from decimal import Decimal

    import orjson
    from order_book import OrderBook

    book = OrderBook()
    sides = {"bids": book.bids, "asks": book.asks}
    where: dict[str, Decimal] = {}
    scale_p, scale_q = 10**PRICE_PRECISION, 10**QTY_PRECISION

    def apply(message: dict[str, Any]) -> None:
        data = message["data"][0]
        if message["type"] == "snapshot":
            for levels in sides.values():
                for price in [levels.index(i)[0] for i in range(len(levels))]:
                    del levels[price]
            where.clear()
        for side, levels in sides.items():
            for e in data[side]:
                order_id, event = e["order_id"], e.get("event", "add")
                price, qty = Decimal(str(e["limit_price"])), Decimal(str(e["order_qty"]))
                if event != "add":
                    old = where.pop(order_id)
                    level = levels[old]
                    if event == "modify" and qty and old == price:
                        level[order_id] = qty  # a dict keeps the key's place: queue kept
                        where[order_id] = price
                        continue
                    del level[order_id]
                    if not level:
                        del levels[old]
                    if event == "delete" or not qty:
                        continue
                if price in levels:
                    levels[price][order_id] = qty
                else:
                    levels[price] = {order_id: qty}
                where[order_id] = price
            while len(levels) > depth:  # Kraken: truncate after the message
                price, level = levels.index(len(levels) - 1)
                for order_id in level:
                    del where[order_id]
                del levels[price]
        if verify and "checksum" in data:
            top = {
                s: [levels.index(i) for i in range(min(10, len(levels)))]
                for s, levels in sides.items()
            }
            computed = level3_checksum(
                *(
                    [
                        (int(p * scale_p), [int(q * scale_q) for q in lv.values()])
                        for p, lv in top[s]
                    ]
                    for s in ("asks", "bids")
                )
            )
            if computed != data["checksum"]:
                raise AssertionError("order-book replica diverged from the stream")

    apply(orjson.loads(snapshot))
    gc.collect()
    gc.disable()
    try:
        started = CLOCK()
        for frame in frames:
            apply(orjson.loads(frame))
        return CLOCK() - started
    finally:
        gc.enable()


# -- memory ------------------------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_per_order(orders: int) -> dict[str, Any]:
    """Build a compiled book of ``orders`` resting orders; measure pools and RSS growth."""
    impl = bookengine.implementation("cython")
    per_level, per_message = 500, 1000
    levels_per_side = -(-orders // (2 * per_level))
    book = impl.L3Book(SYMBOL, levels_per_side + 10, PRICE_PRECISION, QTY_PRECISION)
    scanner = impl.FrameScanner()
    gc.collect()
    rss_before = rss_bytes()
    # Built by update messages of 1,000 adds, as a live book grows; Kraken-shaped ids.
    for start in range(0, orders, per_message):
        entries: dict[int, list[bytes]] = {BID: [], ASK: []}
        for n in range(start, min(orders, start + per_message)):
            side, level = divmod(n // per_level, levels_per_side)
            price = 500_000 - 1 - level if side == BID else 500_000 + level
            entries[side].append(
                b'{"event":"add","order_id":"%s","limit_price":%d.%d,"order_qty":0.5,'
                b'"timestamp":"2024-01-08T12:26:39.526146327Z"}'
                % (kraken_id(n).encode(), price // 10, price % 10)
            )
        scanner.scan(
            b'{"channel":"level3","type":"update","data":[{"symbol":"BTC/USD",'
            b'"bids":[%s],"asks":[%s]}]}' % (b",".join(entries[BID]), b",".join(entries[ASK]))
        )
        book.apply_scanned(scanner)
    del scanner
    gc.collect()
    rss_after = rss_bytes()
    stats = book._memory_stats()
    assert stats["resting_orders"] == orders, stats
    book._check()
    return {
        "orders": orders,
        "stats": stats,
        "pool_bytes_per_order": stats["total"] / orders,
        "rss_bytes_per_order": (rss_after - rss_before) / orders,
    }


def measure_memory_in_subprocess(orders: int) -> dict[str, Any]:
    """Run :func:`memory_per_order` in a fresh interpreter: RSS growth is only meaningful
    where no freed heap (from loading streams) is waiting to be reused."""
    import json

    output = subprocess.run(
        [sys.executable, __file__, "--memory-only", str(orders)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(output.splitlines()[-1]))


def reference_bytes_per_order(orders: int) -> float:
    """tracemalloc bytes per resting order of the pure-Python reference book."""
    import tracemalloc

    impl = bookengine.implementation("python")
    entries = [
        {
            "order_id": kraken_id(i),
            "limit_price": f"{50000 - i // 500}.0",
            "order_qty": "0.5",
            "timestamp": "2024-01-08T12:26:39.526146327Z",
        }
        for i in range(orders)
    ]
    tracemalloc.start()
    book = impl.L3Book(SYMBOL, orders // 500 + 10, PRICE_PRECISION, QTY_PRECISION)
    before = tracemalloc.get_traced_memory()[0]
    book.apply_snapshot(entries, [])
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(book) == orders
    return (after - before) / orders


# -- report ------------------------------------------------------------------------------------


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


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--depths", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-messages", type=int, default=20_000)
    parser.add_argument("--memory-orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small stream, 2 repeats")
    parser.add_argument("--write", action="store_true", help="write bench/README_l3.md")
    parser.add_argument("--memory-only", type=int, metavar="ORDERS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        import json

        print(json.dumps(memory_per_order(args.memory_only)))
        return
    if args.quick:
        args.events, args.repeats = 50_000, 2
        args.reference_messages, args.memory_orders = 5_000, 100_000
    info = machine()
    print(f"machine: {info}", flush=True)
    rows: list[dict[str, Any]] = []
    for depth in args.depths:
        snapshot, frames, events = load_stream(depth, args.events, args.seed)
        bare = [CHECKSUM_FIELD.sub(b"", frame) for frame in frames]
        messages = len(frames)
        n_ref = min(messages, args.reference_messages)
        ref_events = sum(frame.count(b'"event"') for frame in frames[:n_ref])
        print(
            f"depth {depth}: {messages:,} messages, {events:,} events "
            f"({events / messages:.2f} per message)",
            flush=True,
        )
        few = max(1, args.repeats // 2)
        ref_frames, ref_bare = frames[:n_ref], bare[:n_ref]
        full, prefix = (messages, events), (n_ref, ref_events)
        runs: dict[str, tuple[tuple[int, int], int, Callable[..., float], tuple[Any, ...]]] = {
            "cython verified": (
                full,
                args.repeats,
                run_bookengine,
                ("cython", depth, snapshot, frames),
            ),
            "cython applied": (
                full,
                args.repeats,
                run_bookengine,
                ("cython", depth, snapshot, bare),
            ),
            "cython + effects": (
                full,
                args.repeats,
                run_bookengine,
                ("cython", depth, snapshot, frames, True, 1),
            ),
            "cython + effects()": (
                full,
                args.repeats,
                run_bookengine,
                ("cython", depth, snapshot, frames, True, 2),
            ),
            "cython scan only": (
                full,
                args.repeats,
                run_bookengine,
                ("cython", depth, snapshot, frames, False),
            ),
            "replay path verified": (full, args.repeats, run_buffer, (depth, snapshot, frames)),
            "replay path applied": (full, args.repeats, run_buffer, (depth, snapshot, bare)),
            "python verified": (
                prefix,
                few,
                run_bookengine,
                ("python", depth, snapshot, ref_frames),
            ),
            "python applied": (prefix, few, run_bookengine, ("python", depth, snapshot, ref_bare)),
            "order-book verified": (
                prefix,
                few,
                run_order_book,
                (depth, snapshot, ref_frames, True),
            ),
            "order-book applied": (prefix, few, run_order_book, (depth, snapshot, ref_bare, False)),
        }
        # Round robin: every repeat runs each variant once, so load swings on a shared
        # machine touch all variants alike. Round 0 is the warm-up.
        samples: dict[str, list[float]] = {label: [] for label in runs}
        for round_ in range(args.repeats + 1):
            for label, (_, repeats, run, run_args) in runs.items():
                if round_ <= repeats:
                    seconds = run(*run_args)
                    if round_:
                        samples[label].append(seconds)
        timings = {}
        for label, ((n_msg, n_ev), _, _, _) in runs.items():
            seconds = statistics.median(samples[label])
            timings[label] = (n_msg, n_ev, seconds)
            print(
                f"  {label:22} {rate(n_msg, seconds):>12} msg/s {rate(n_ev, seconds):>12} "
                f"events/s  ({seconds / n_msg * 1e6:.3f} us/msg)",
                flush=True,
            )
        frame_bytes = sum(map(len, frames)) / messages
        rows.append(
            {
                "depth": depth,
                "messages": messages,
                "events": events,
                "frame_bytes": frame_bytes,
                "timings": timings,
            }
        )
    print("memory ...", flush=True)
    memory = measure_memory_in_subprocess(args.memory_orders)
    ref_bytes = reference_bytes_per_order(min(args.memory_orders, 200_000))
    print(
        f"  compiled: {memory['pool_bytes_per_order']:.1f} B/order (pools), "
        f"{memory['rss_bytes_per_order']:.1f} B/order (RSS growth); {memory['stats']}"
    )
    print(f"  reference: {ref_bytes:.0f} B/order (tracemalloc)")
    info["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report = render(info, rows, memory, ref_bytes, args)
    print(report)
    save_results(info, rows, memory, ref_bytes)
    if args.write:
        (ROOT / "bench" / "README_l3.md").write_text(report)
        print("wrote bench/README_l3.md")


def save_results(
    info: dict[str, str], rows: list[dict[str, Any]], memory: dict[str, Any], ref_bytes: float
) -> None:
    """Raw numbers as JSON under bench/out/ (medians in seconds, counts)."""
    import json

    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    results = {
        "machine": info,
        "depths": [
            {
                "depth": row["depth"],
                "messages": row["messages"],
                "events": row["events"],
                "frame_bytes": row["frame_bytes"],
                "runs": {
                    label: {"messages": n_msg, "events": n_ev, "median_seconds": seconds}
                    for label, (n_msg, n_ev, seconds) in row["timings"].items()
                },
            }
            for row in rows
        ],
        "memory": memory,
        "reference_bytes_per_order": ref_bytes,
    }
    (OUT / f"results_l3_{stamp}.json").write_text(json.dumps(results, indent=1))


def render(
    info: dict[str, str],
    rows: list[dict[str, Any]],
    memory: dict[str, Any],
    ref_bytes: float,
    args: argparse.Namespace,
) -> str:
    lines = [
        "## L3 (level3)",
        "",
        f"Machine: {info['cpu']}, {info['nproc']} CPUs, Python {info['python']}, commit "
        f"`{info['commit']}`{' (with uncommitted changes)' if info['dirty'] == 'yes' else ''}; "
        f"load average {info['load']} at start, {info['load_end']} at the end. "
        f"`bench/bench_l3.py --seed {args.seed}`: {args.repeats} timed repeats after a "
        "warm-up, variants interleaved round robin, medians of the process CPU time (the "
        "machine is shared: CPU time leaves out the time other processes held the CPU); "
        "the reference and order-book run on the first "
        f"{args.reference_messages:,} messages of each stream. Reproduce with "
        "`.venv/bin/python bench/bench_l3.py --write` (streams are generated once and cached "
        "in `bench/out/`).",
        "",
        "| depth | implementation | messages/s verified | events/s verified "
        "| events/s applied (no checksum) | vs reference (verified) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        t = row["timings"]
        ref_msg = t["python verified"][0] / t["python verified"][2]
        if "replay path verified" in t:
            n_msg, n_ev, verified = t["replay path verified"]
            applied = t["replay path applied"][2]
            lines.append(
                f"| {row['depth']} | bookengine, replay path (`receive_buffer`) "
                f"| {rate(n_msg, verified)} | {rate(n_ev, verified)} | {rate(n_ev, applied)} "
                f"| {n_msg / verified / ref_msg:.1f}x |"
            )
        for name in ("cython", "python", "order-book"):
            n_msg, n_ev, verified = t[f"{name} verified"]
            applied = t[f"{name} applied"][2]
            label = {
                "cython": "bookengine compiled (scan + apply_scanned per message)",
                "python": "bookengine reference",
                "order-book": "order-book 0.6.1, cryptofeed-style",
            }[name]
            lines.append(
                f"| {row['depth']} | {label} | {rate(n_msg, verified)} | {rate(n_ev, verified)} "
                f"| {rate(n_ev, applied)} | {n_msg / verified / ref_msg:.1f}x |"
            )
    lines += [
        "",
        "Compiled core, split of the cost per message (medians, microseconds):",
        "",
        "| depth | events/message | scan | apply | checksum | total verified "
        "| apply-only events/s (scan excluded) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        t = row["timings"]
        n_msg, n_ev = row["messages"], row["events"]
        scan, applied, verified = (
            t[k][2] / n_msg * 1e6 for k in ("cython scan only", "cython applied", "cython verified")
        )
        lines.append(
            f"| {row['depth']} | {n_ev / n_msg:.2f} | {scan:.3f} | {applied - scan:.3f} "
            f"| {verified - applied:.3f} | {verified:.3f} "
            f"| {n_ev / ((applied - scan) * n_msg / 1e6):,.0f} |"
        )
    lines += [
        "",
        "Peers. The reference is the pure-Python oracle (sortedcontainers + dicts): to verify "
        "it renders the digits of every order of the top 10 levels per side in Python on "
        "every message. `order-book` has no L3 mode: no order index, no queue semantics and "
        "no L3 checksum (its checksum over nested dicts is not Kraken's: 1404567939 instead of "
        "1063832831 on the documented example). It is run as cryptofeed runs L3 books on it: "
        "`{order_id: Decimal}` dicts as level values, a Python order map, frames decoded by "
        "orjson, the L3 checksum computed in Python (its C sorted dict sorts lazily, so "
        "reading the top 10 after a change re-sorts that side).",
    ]
    lines += targets(rows, memory)
    s = memory["stats"]
    lines += [
        "",
        f"Memory, compiled core, a book of {memory['orders']:,} resting orders "
        f"(Kraken-shaped ids, 500 per level): **{memory['pool_bytes_per_order']:.1f} bytes per "
        f"order** from the core's pool accounting (orders {s['orders']:,} B = "
        f"{s['order_slot_bytes']} B per slot in 1024-slot chunks, id index {s['index']:,} B, "
        f"levels and ladders {s['levels']:,} B, undo log and parse scratch {s['scratch']:,} B); "
        f"the process RSS grew by {memory['rss_bytes_per_order']:.1f} bytes per order while it "
        f"was built. The reference holds {ref_bytes:.0f} bytes per order (tracemalloc, "
        f"{min(args.memory_orders, 200_000):,} orders).",
        "",
    ]
    return "\n".join(lines) + "\n"


def targets(rows: list[dict[str, Any]], memory: dict[str, Any]) -> list[str]:
    """The issue's targets against what was measured, and what limits each number."""
    lines = ["", "Targets of the issue against this run (compiled core):", ""]
    for row in rows:
        t, n_msg, n_ev = row["timings"], row["messages"], row["events"]
        scan, applied, verified = (
            t[k][2] for k in ("cython scan only", "cython applied", "cython verified")
        )
        book_only = n_ev / (applied - scan)
        replay = t.get("replay path applied", (0, 0, applied))[2]
        replay_verified = t.get("replay path verified", (0, 0, verified))[2]
        best_verified, best_applied = min(verified, replay_verified), min(applied, replay)
        if n_ev / best_applied >= 5e6:
            verdict = "met"
        else:
            verdict = "met by the book alone" if book_only >= 5e6 else "not met"
        lines.append(
            f"* depth {row['depth']}: **{n_msg / best_verified:,.0f} messages/s verified** "
            f"(target 1,000,000: {'met' if n_msg / best_verified >= 1e6 else 'not met'}; "
            f"{n_msg / replay_verified:,.0f} on the replay path, {n_msg / verified:,.0f} "
            "calling scan + apply_scanned per message); "
            f"**{n_ev / best_applied:,.0f} events/s applied** from raw frames, scanning "
            f"included ({n_ev / replay:,.0f} replay path, {n_ev / applied:,.0f} per-message "
            f"calls), and {book_only:,.0f} events/s for the book's own work with the scan "
            f"excluded (target 5,000,000: {verdict}). "
            f"Per message: scan {scan / n_msg * 1e6:.2f} us "
            f"(frames average {row['frame_bytes']:.0f} bytes), book "
            f"{(applied - scan) / n_msg * 1e6:.2f} us ({(applied - scan) / n_ev * 1e6:.2f} us "
            f"per event), checksum {(verified - applied) / n_msg * 1e6:.2f} us."
        )
    per_order = memory["pool_bytes_per_order"]
    scan_share = [
        row["timings"]["cython scan only"][2] / row["timings"]["cython verified"][2] for row in rows
    ]
    per_event = [
        (row["timings"]["cython applied"][2] - row["timings"]["cython scan only"][2])
        / row["events"]
        * 1e6
        for row in rows
    ]
    checksum = [
        (row["timings"]["cython verified"][2] - row["timings"]["cython applied"][2])
        / row["messages"]
        * 1e6
        for row in rows
    ]
    lines += [
        f"* **{per_order:.1f} bytes per resting order** (target 64: "
        f"{'met' if per_order <= 64 else 'not met'}).",
        "",
        "What limits the rates: every message pays a fixed cost before its first event: the "
        "frame scan (Kraken's layout read by literal comparisons in `_core/scan.pyx`, "
        f"{min(scan_share):.0%} to {max(scan_share):.0%} of the verified path here) and, in the "
        "per-message loop, two Python-level calls (`scan`, `apply_scanned`); the replay path "
        "(`KrakenSession.receive_buffer`, what `bookengine replay` runs) walks the lines in C "
        "and drops those calls. With under two events per message, that floor, not the book, "
        "caps events/s from raw frames. The book's own work is "
        f"{min(per_event):.2f} to {max(per_event):.2f} us per event: numbers and timestamps "
        "through fast paths for the shapes Kraken sends (the scanner's parsers for anything "
        "else), the Kraken id packed into 88 bits and looked up in an open-addressing index, "
        "the queue change and its undo log. At depth 1000 the book (about 15,000 resting "
        "orders in ~1 MB of pool, index and levels) is far larger than the first-level cache "
        "and shares the second with the frame stream, so an event there also waits on a few "
        "cache misses (the id's index bucket is prefetched while the rest of the message is "
        "parsed; the level search gallops from the touch). "
        f"Verification costs {min(checksum):.2f} to {max(checksum):.2f} us per message: "
        "the digits of a level changed at the front or back of its queue are patched in place, "
        "others re-rendered; each side's top-10 digits are one contiguous block, copied again "
        "only from the first position a change touched (every change records it, so a message "
        "that leaves the top 10 alone costs two comparisons), and only the blocks that changed "
        "are re-hashed with the PCLMUL-folded CRC-32 of `_core/checksum.pyx`.",
    ]
    return lines


if __name__ == "__main__":
    main()
