"""Memory over long replays: RSS must stay flat after warm-up (no leak in the core or session).

Workloads (each in a fresh state, RSS sampled from /proc/self/statm as it runs):

* ``buffer``: a real v2 book capture (tests/data, 510 lines, every checksum verifying) plus a
  malformed line and a checksum mismatch per pass, replayed again and again through
  ``KrakenSession.receive_buffer`` (the compiled fast path, its hand-offs and resyncs).
* ``receive``: the same lines through ``KrakenSession.receive`` one by one (events built).
* ``l3``: an L3 book at depth 1000 with steady add/delete/modify churn of ever-new order ids
  (Kraken-shaped and long ones), some refused messages (unknown order: rollback) and a
  checksum every 100 messages, through the scanner and ``apply_scanned``.
* ``v1``: v1 book frames (tests/data) through the scanner and an L2 book.

Run: ``PYTHONPATH=. .venv/bin/python bench/bench_memory.py [--messages 3000000]``; prints per
workload the RSS after warm-up, at the end, the growth and the growth per million messages,
and writes ``bench/out/memory_<timestamp>.json``. tests/hardening/test_memory.py runs a short
version of each with a bound on the growth.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


@dataclass
class MemoryRun:
    """RSS samples of one workload."""

    workload: str
    implementation: str
    messages: int
    seconds: float
    warm_rss: int
    """RSS once the warm-up (the first ``warmup`` fraction of the messages) is done."""
    end_rss: int
    peak_rss: int
    samples: list[tuple[int, int]]
    """(messages done, RSS bytes)."""

    @property
    def growth(self) -> int:
        """Most RSS gained after warm-up (bytes)."""
        return self.peak_rss - self.warm_rss

    def summary(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "implementation": self.implementation,
            "messages": self.messages,
            "seconds": round(self.seconds, 2),
            "messages_per_s": round(self.messages / self.seconds) if self.seconds else None,
            "warm_rss_mib": round(self.warm_rss / MIB, 2),
            "end_rss_mib": round(self.end_rss / MIB, 2),
            "growth_kib": round(self.growth / 1024, 1),
            "growth_bytes_per_million": round(
                self.growth / max(1, self.messages * (1 - WARMUP)) * 1_000_000
            ),
        }


WARMUP = 0.2


def measure(
    workload: str, impl: str, messages: int, chunks: Iterator[int], samples: int = 50
) -> MemoryRun:
    """Drive ``chunks`` (each call does some messages and returns how many) to ``messages``."""
    gc.collect()
    done = 0
    warm_rss = peak = 0
    out: list[tuple[int, int]] = []
    step = max(1, messages // samples)
    next_sample = step
    started = time.perf_counter()
    warm_at = int(messages * WARMUP)
    for count in chunks:
        done += count
        if done >= next_sample or done >= messages:
            rss = rss_bytes()
            out.append((done, rss))
            next_sample += step
            if done >= warm_at:
                if not warm_rss:
                    gc.collect()
                    warm_rss = rss_bytes()
                peak = max(peak, rss)
        if done >= messages:
            break
    elapsed = time.perf_counter() - started
    gc.collect()
    end = rss_bytes()
    return MemoryRun(workload, impl, done, elapsed, warm_rss, end, max(peak, end), out)


# -- workloads -----------------------------------------------------------------------------------


def capture_lines() -> list[bytes]:
    """One pass: a real capture, a malformed line, a mismatch (then the next pass resyncs)."""
    lines = (DATA / "v2-book-btcusd-depth10.jsonl").read_bytes().splitlines()
    lines.insert(200, b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[')
    lines.insert(
        400,
        b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],'
        b'"checksum":1}]}',
    )
    return [b"%d\t%s" % (1690730998343415000 + i, line) for i, line in enumerate(lines)]


def buffer_chunks(impl: str) -> Iterator[int]:
    from bookengine.kraken.session import KrakenSession

    lines = capture_lines()
    data = b"\n".join(lines) + b"\n"
    session = KrakenSession(precisions={"BTC/USD": (1, 8)}, implementation_name=impl)
    events = 0

    def count(_: int, batch: list[Any]) -> None:
        nonlocal events
        events += len(batch)

    while True:
        session.receive_buffer(data, on_events=count)
        yield len(lines)


def receive_chunks(impl: str) -> Iterator[int]:
    from bookengine.kraken.session import KrakenSession

    frames = [line.split(b"\t", 1) for line in capture_lines()]
    pairs = [(frame, int(ts)) for ts, frame in frames]
    session = KrakenSession(precisions={"BTC/USD": (1, 8)}, implementation_name=impl)
    while True:
        for frame, ts in pairs:
            session.receive(frame, ts)
        yield len(pairs)


def v1_chunks(impl: str) -> Iterator[int]:
    from bookengine import implementation

    chosen = implementation(impl)
    frames = (DATA / "v1-book-xbtusd-depth10.jsonl").read_bytes().splitlines()
    scanner = chosen.FrameScanner()
    while True:
        book = chosen.L2Book("XBT/USD", 10)
        for frame in frames:
            try:
                if scanner.scan(frame) == 3:
                    book.apply_scanned(scanner)
            except Exception:
                book = chosen.L2Book("XBT/USD", 10)
        yield len(frames)


def l3_chunks(impl: str, batch: int = 200, state: dict[str, Any] | None = None) -> Iterator[int]:
    """Steady churn: each message deletes the two oldest orders and adds two new ones.

    ``state["book"]`` is set to the book (for tests that look inside it).
    """
    from collections import deque

    from bookengine import implementation

    chosen = implementation(impl)
    assert chosen.L3Book is not None
    book = chosen.L3Book("BTC/USD", 1000, 1, 8)
    if state is not None:
        state["book"] = book
    scanner = chosen.FrameScanner()
    live: deque[tuple[str, str, int]] = deque()
    counter = 0

    def new_order() -> tuple[str, str, int]:
        nonlocal counter
        counter += 1
        side = "bids" if counter % 2 else "asks"
        level = (counter * 7919) % 300
        price = 50000 - 1 - level if side == "bids" else 50000 + 1 + level
        if counter % 5:
            order_id = f"O{counter % 99991:05d}-{(counter * 31) % 99991:05d}-{counter % 10**6:06d}"
        else:
            order_id = f"client-order-with-a-long-id-{counter}"
        return side, order_id, price

    def entry(event: str, order_id: str, price: int, qty: str) -> str:
        return (
            f'{{"event":"{event}","order_id":"{order_id}","limit_price":"{price // 10}.'
            f'{price % 10}","order_qty":"{qty}","timestamp":"2024-01-08T12:26:39.526146327Z"}}'
        )

    snapshot: dict[str, list[str]] = {"bids": [], "asks": []}
    for _ in range(4000):
        side, order_id, price = new_order()
        live.append((side, order_id, price))
        snapshot[side].append(
            entry("add", order_id, price, "1.00000000").replace('"event":"add",', "")
        )
    frame = (
        '{"channel":"level3","type":"snapshot","data":[{"symbol":"BTC/USD",'
        f'"bids":[{",".join(snapshot["bids"])}],"asks":[{",".join(snapshot["asks"])}]}}]}}'
    ).encode()
    scanner.scan(frame)
    book.apply_scanned(scanner)
    messages = 0
    while True:
        for _ in range(batch):
            messages += 1
            sides: dict[str, list[str]] = {"bids": [], "asks": []}
            for _ in range(2):
                side, order_id, price = live.popleft()
                sides[side].append(entry("delete", order_id, price, "1.00000000"))
                side, order_id, price = new_order()
                live.append((side, order_id, price))
                sides[side].append(entry("add", order_id, price, "2.00000000"))
            side, order_id, price = live[len(live) // 2]
            sides[side].append(entry("modify", order_id, price, "0.50000000"))
            frame = (
                '{"channel":"level3","type":"update","data":[{"symbol":"BTC/USD",'
                f'"bids":[{",".join(sides["bids"])}],"asks":[{",".join(sides["asks"])}]}}]}}'
            ).encode()
            scanner.scan(frame)
            book.apply_scanned(scanner)
            if messages % 50 == 0:  # refused: an add then an unknown order; rolled back
                side, order_id, price = new_order()
                refused = (
                    '{"channel":"level3","type":"update","data":[{"symbol":"BTC/USD","bids":[],'
                    f'"asks":[{entry("add", order_id, 50001, "1")},'
                    f"{entry('delete', 'ONOPE-NOPE0-NOPE00', 60000, '1')}]}}]}}"
                ).encode()
                scanner.scan(refused)
                try:
                    book.apply_scanned(scanner)
                except Exception:
                    pass
                else:
                    raise AssertionError("the unknown order was accepted")
            if messages % 100 == 0:
                book.checksum()
                book.orders_arrays(order_ids=True)
        yield batch


WORKLOADS: dict[str, Callable[[str], Iterator[int]]] = {
    "buffer": buffer_chunks,
    "receive": receive_chunks,
    "l3": l3_chunks,
    "v1": v1_chunks,
}


def run(workload: str, impl: str, messages: int) -> MemoryRun:
    return measure(workload, impl, messages, WORKLOADS[workload](impl))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3_000_000)
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--implementation", default="cython", choices=("cython", "python"))
    args = parser.parse_args()
    results = []
    for workload in args.workloads:
        count = args.messages if workload in ("buffer",) else args.messages // 3
        result = run(workload, args.implementation, count)
        results.append(result)
        s = result.summary()
        print(
            f"{workload:<8} {s['messages']:>9} msgs {s['seconds']:>7}s {s['messages_per_s']:>9}/s "
            f"RSS warm {s['warm_rss_mib']:>7} MiB end {s['end_rss_mib']:>7} MiB "
            f"growth {s['growth_kib']:>8} KiB ({s['growth_bytes_per_million']} B per million)",
            flush=True,
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "commit": commit,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "python": platform.python_version(),
        "results": [r.summary() | {"samples": asdict(r)["samples"]} for r in results],
    }
    path = out / f"memory_{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
