"""Where the compiled L2 loop spends its time, per message: dispatch, scan, apply, checksum.

Two independent views of the same loop (``scanner.scan(frame); book.apply_scanned(scanner)``)
over the benchmark stream:

1. Timing variants (no special tools): the loop with trivial C calls, scan only, scan + apply on
   frames whose ``checksum`` field was removed (so nothing is verified), and the full loop.
   Differences give the cost of each stage; medians of interleaved repeats, thread CPU time.
   The checksum stage is what verification adds on average: the book recomputes the CRC32
   only when a message changed its top 10 levels and reuses the last value otherwise.

2. Sampling (``--perf``, Linux ``perf`` with DWARF call chains, attached to this process only
   while the loop runs): samples grouped by the function they land in; time in libc's
   ``memmove``/``memcpy`` is charged to the bookengine function that called it.

3. Instruction counts (``--callgrind``, valgrind): the replay fast path
   (``BookRouter.apply_lines`` over the stream as one buffer, no Python per message) run under
   callgrind, counting only inside ``apply_lines``; instructions per message by stage. Counts
   do not depend on what else the machine is doing, so they compare two builds exactly.

Usage::

    python bench/profile_l2.py [--messages N] [--depth 100] [--repeats R] [--perf]
                               [--callgrind [--callgrind-messages N]]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's BLAS threads are noise here
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import gen_l2
from gen_l2 import PRICE_PRECISION, QTY_PRECISION, SYMBOL

import bookengine

_CHECKSUM_FIELD = re.compile(rb'"checksum":\d+,')


def variants(depth: int) -> dict[str, Callable[[list[bytes]], None]]:
    """Loops that differ by one stage each."""
    impl = bookengine.implementation("cython")

    def floor1(frames: list[bytes]) -> None:
        scanner = impl.FrameScanner()
        for frame in frames:
            callable(frame)
        del scanner

    def floor2(frames: list[bytes]) -> None:
        scanner = impl.FrameScanner()
        for frame in frames:
            callable(frame)
            callable(scanner)

    def scan_only(frames: list[bytes]) -> None:
        scan = impl.FrameScanner().scan
        for frame in frames:
            scan(frame)

    def full(frames: list[bytes]) -> None:
        scanner = impl.FrameScanner()
        book = impl.L2Book(SYMBOL, depth, PRICE_PRECISION, QTY_PRECISION)
        scan = scanner.scan
        apply = book.apply_scanned
        for frame in frames:
            scan(frame)
            apply(scanner)

    return {"floor1": floor1, "floor2": floor2, "scan": scan_only, "full": full}


def time_variants(depth: int, frames: list[bytes], repeats: int) -> dict[str, float]:
    """Median ns of thread CPU time per message of each variant (interleaved repeats)."""
    plain = variants(depth)
    stripped = [_CHECKSUM_FIELD.sub(b"", frame) for frame in frames]
    jobs: list[tuple[str, Callable[[list[bytes]], None], list[bytes]]] = [
        ("floor1", plain["floor1"], frames),
        ("floor2", plain["floor2"], frames),
        ("scan", plain["scan"], frames),
        ("scan_nock", plain["scan"], stripped),
        ("full_nock", plain["full"], stripped),
        ("full", plain["full"], frames),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in jobs}
    for _name, job, batch in jobs:  # warm-up
        job(batch[: len(batch) // 10 or 1])
    for _ in range(repeats):
        for name, job, batch in jobs:
            start = time.thread_time_ns()
            job(batch)
            samples[name].append((time.thread_time_ns() - start) / len(batch))
    return {name: statistics.median(values) for name, values in samples.items()}


def breakdown(ns: dict[str, float]) -> list[tuple[str, float]]:
    """Stages per message; they add up to the full loop."""
    scan = ns["scan"] - ns["floor1"]
    second_call = ns["floor2"] - ns["floor1"]
    apply = ns["full_nock"] - ns["scan_nock"] - second_call
    checksum = ns["full"] - ns["full_nock"] - (ns["scan"] - ns["scan_nock"])
    return [
        ("Python dispatch (for loop + 2 calls)", ns["floor2"]),
        ("scan (JSON walk, spans, validation)", scan),
        ("apply (numbers, ladders, truncate)", apply),
        ("checksum (digits + CRC32 of top 10+10, when the top 10 changed)", checksum),
        ("total (full loop)", ns["full"]),
    ]


# -- perf ---------------------------------------------------------------------------------------

CATEGORIES = [
    # (stage, symbol fragments): a sample belongs to the first stage any frame of its stack
    # matches, so a helper is charged to the stage that called it, whatever its name
    ("checksum: CRC32", ("crc32",)),
    ("checksum: digits and rendering", ("L2BookCore__checksum", "write_digits")),
    ("scan: checksum field", ("FrameScanner__scan_checksum",)),
    ("apply: number parsing", ("parse_mantissa",)),
    ("apply: truncate", ("ladder_truncate",)),
    ("apply: ladder find/set/remove", ("_6ladder_",)),
    ("scan: JSON walk", ("_4scan_",)),
    ("apply: L2Book glue (checks, calls)", ("_6l2book_",)),
]


def _sample_category(stack: list[tuple[str, str]]) -> str:
    """The stage a sample belongs to (see CATEGORIES), from its call stack, leaf first."""
    leaf_symbol, leaf_dso = stack[0]
    for name, needles in CATEGORIES:
        if any(needle in symbol for symbol, _dso in stack for needle in needles):
            if "libpython" in leaf_dso:
                return f"{name} (in CPython API: objects)"
            if "memmove" in leaf_symbol or "memcpy" in leaf_symbol:
                return f"{name} (in memcpy/memmove)"
            return name
    if "libpython" in leaf_dso or "python3" in leaf_dso or leaf_dso == "inlined":
        return "Python dispatch: eval loop, calls"
    if "kernel" in leaf_dso:
        return "kernel"
    return f"other ({Path(leaf_dso).name or '?'})"


_FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")


def perf_profile(depth: int, frames: list[bytes], seconds_hint: float) -> Counter[str] | None:
    """Sample the full loop with ``perf record`` attached to this process; None without perf."""
    perf = shutil.which("perf")
    if perf is None:
        print("perf not found: skipping the sampling view", file=sys.stderr)
        return None
    loop = variants(depth)["full"]
    loop(frames[:1000])
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "perf.data"
        recorder = subprocess.Popen(
            [perf, "record", "-q", "-F", "999", "--call-graph", "dwarf,8192", "-o", str(data),
             "-p", str(os.getpid())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(1.0)  # let perf attach
        if recorder.poll() is not None:
            print(f"perf record failed: {recorder.stderr.read().decode()[:300]}", file=sys.stderr)
            return None
        deadline = time.perf_counter() + max(seconds_hint, 3.0)
        while time.perf_counter() < deadline:
            loop(frames)
        recorder.send_signal(signal.SIGINT)
        recorder.wait()
        script = subprocess.run(
            [perf, "script", "-i", str(data), "-F", "ip,sym,dso"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    counts: Counter[str] = Counter()
    for block in script.split("\n\n"):
        stack = [m.groups() for m in map(_FRAME.match, block.splitlines()) if m]
        if stack:
            counts[_sample_category(stack)] += 1
    return counts


# -- callgrind ----------------------------------------------------------------------------------

# Compiled functions by stage (first match wins; the C file and function name callgrind shows).
STAGES = [
    ("checksum: CRC32", ("crc32", "be_crc32_fold", "mmintrin.h")),
    ("checksum: digits, windows", ("render_window", "write_digits", "L2BookCore__checksum")),
    ("numbers: text -> mantissa", ("parse_mantissa",)),
    ("apply: ladders, truncate", ("ladder.c",)),
    ("apply: book glue", ("l2book.c",)),
    ("scan: frame layout, JSON", ("scan.c",)),
    ("line loop: split, route, counts", ("router.c", "memchr", "object.h")),
]


def callgrind_child(depth: int, messages: int) -> None:
    """The loop that ``--callgrind`` counts: one apply_lines call over the whole stream."""
    from bookengine._core.router import BookRouter
    from bookengine._core.scan import BOOK

    frames = gen_l2.load_frames(depth, messages)
    impl = bookengine.implementation("cython")
    book = impl.L2Book(SYMBOL, depth, PRICE_PRECISION, QTY_PRECISION)
    scanner = impl.FrameScanner()
    scanner.scan(frames[0])
    book.apply_scanned(scanner)
    router = BookRouter()
    router.add(SYMBOL, book)
    _, reason = router.apply_lines(b"\n".join(frames[1:]) + b"\n")
    counts = router.take_counts()[(BOOK, SYMBOL)]
    assert reason == 0 and counts[0] == counts[1] == len(frames) - 1, (reason, counts)


def callgrind_profile(depth: int, messages: int) -> list[tuple[str, float]] | None:
    """Instructions per message by stage, or None without valgrind."""
    valgrind, annotate = shutil.which("valgrind"), shutil.which("callgrind_annotate")
    if valgrind is None or annotate is None:
        print("valgrind not found: skipping the instruction counts", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
             "--toggle-collect=*BookRouter_*apply_lines*", sys.executable, __file__,
             "--callgrind-child", "--depth", str(depth), "--messages", str(messages)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        report = subprocess.run(
            [annotate, "--inclusive=no", "--auto=no", str(out)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    totals: Counter[str] = Counter()
    for line in report.splitlines():
        match = re.match(r"^\s*([\d,]+)\s+(?:\([\d.\s]+%\)\s+)?(\S.*)$", line)
        if match is None or "PROGRAM TOTALS" in line or "file:function" in line:
            continue
        count, where = int(match.group(1).replace(",", "")), match.group(2)
        stage = next((name for name, keys in STAGES if any(k in where for k in keys)), "other")
        totals[stage] += count
    updates = messages - 1
    return [(name, totals[name] / updates) for name, _ in [*STAGES, ("other", ())]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--depth", type=int, nargs="+", default=[100])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--perf", action="store_true", help="also sample with Linux perf")
    parser.add_argument(
        "--callgrind", action="store_true", help="also count instructions with valgrind"
    )
    parser.add_argument("--callgrind-messages", type=int, default=20_000)
    parser.add_argument("--callgrind-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.callgrind_child:
        callgrind_child(args.depth[0], args.messages)
        return 0
    for depth in args.depth:
        frames = gen_l2.load_frames(depth, args.messages)
        ns = time_variants(depth, frames, args.repeats)
        print(f"\n### compiled loop, depth {depth}, {len(frames) - 1:,} updates, "
              f"medians of {args.repeats}\n")  # fmt: skip
        print("| stage | ns/message | share |")
        print("|---|---:|---:|")
        total = ns["full"]
        for name, value in breakdown(ns):
            print(f"| {name} | {value:,.0f} | {value / total * 100:.0f}% |")
        print(
            "\nraw variants (ns/message): "
            + ", ".join(f"{name} {value:,.0f}" for name, value in ns.items())
        )
        if args.perf:
            counts = perf_profile(depth, frames, total * len(frames) / 1e9 * 3)
            if counts:
                samples = sum(counts.values())
                print(f"\n| perf samples, depth {depth} ({samples:,}) | share | ns/message |")
                print("|---|---:|---:|")
                for name, count in counts.most_common():
                    share = count / samples
                    print(f"| {name} | {share * 100:.1f}% | {share * total:,.0f} |")
        if args.callgrind:
            stages = callgrind_profile(depth, args.callgrind_messages)
            if stages:
                whole = sum(value for _, value in stages)
                print(
                    f"\n| callgrind, replay fast path, depth {depth} "
                    f"({args.callgrind_messages:,} messages) | instructions/message | share |"
                )
                print("|---|---:|---:|")
                for name, value in stages:
                    print(f"| {name} | {value:,.0f} | {value / whole * 100:.0f}% |")
                print(f"| total | {whole:,.0f} | 100% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
