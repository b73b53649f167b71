"""L2 order book benchmark: replay a Kraken v2 ``book`` stream from raw bytes, every checksum
verified, and compare bookengine with the existing Python pipelines in the same process.

Rows (each replays the same frames; each builds its book from the snapshot, applies every
update, truncates to the depth and verifies the CRC32 of every message it is able to):

* ``bookengine compiled``: ``FrameScanner.scan`` + ``L2Book.apply_scanned`` (the raw loop).
* ``bookengine session``: ``KrakenSession.receive(frame, recv_ts_ns)`` (routing, events, health).
* ``bookengine reference``: the pure-Python oracle, same loop (on a prefix: it is slow).
* ``python-kraken-sdk``: its ``SpotOrderBookClient`` driven offline, per frame exactly what its
  websocket connector does (``json.loads``, subscription bookkeeping, ``await on_message``);
  no socket, the REST precision lookup answered locally, resubscription replaced by a counter.
* ``order-book + orjson``: bmoscon's C ``OrderBook`` with its ``KRAKEN`` checksum, frames parsed
  by orjson, prices and quantities as int mantissas (``round(x * 10**precision)``): the fastest
  form whose ``str()`` gives the digits Kraken hashes.
* ``order-book + json Decimal``: the same book the way cryptofeed feeds it (``Decimal`` from the
  number text), quantized to the instrument precision so the checksum matches.

Method: one process; a warm-up replay per row; then ``--repeats`` rounds, each replaying every
row once (row order rotated per round); the table reports medians. Slow rows replay a prefix
sized from their warm-up speed (``--budget`` seconds per replay). Before timing, every row must
verify a valid prefix with zero failures and must catch one deliberately corrupted checksum.
Results (and the machine) are written to ``bench/out/results_l2_*.json``.

Usage::

    python bench/bench_l2.py [--messages N] [--repeats R] [--depth 100 1000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import ctypes
import gc
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's idle BLAS threads are noise here
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import gen_l2
from gen_l2 import PRICE_PRECISION, QTY_PRECISION, SYMBOL

REPO = Path(__file__).resolve().parent.parent

# -- rows ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one replay did: CPU and wall time of the loop, checksums verified, failures seen."""

    cpu_seconds: float
    """CPU time of this thread: what the loop costs on one core, whoever else runs."""
    seconds: float
    """Wall-clock time (the same on an idle machine; more on a busy one)."""
    verified: int
    failures: int
    book: Any = None


class Stopwatch:
    """Thread CPU time and wall time of the timed section."""

    __slots__ = ("cpu", "wall")

    def __init__(self) -> None:
        self.cpu = time.thread_time()
        self.wall = time.perf_counter()

    def stop(self) -> tuple[float, float]:
        return time.thread_time() - self.cpu, time.perf_counter() - self.wall


class Unavailable(Exception):
    """A row cannot run here (peer not installed, API missing); the message says why."""


@dataclass
class Row:
    """One implementation under test."""

    name: str
    replay: Callable[[Any], Outcome]
    """Builds a fresh book, replays the frames (snapshot first), returns the outcome."""
    full: bool
    """True: replays all messages; False: a prefix sized from its warm-up speed."""
    verifies_snapshot: bool = True
    """False when the implementation checks the checksum of updates only."""
    note: str = ""
    c_heap: bool = False
    """True when the book lives in C memory that tracemalloc does not see."""
    samples: list[Outcome] = field(default_factory=list)
    messages: int = 0
    memory: dict[str, int] = field(default_factory=dict)
    corrupted_detected: int | None = None
    prepare: Callable[[list[bytes]], Any] | None = None
    """Turns the frames into this row's input once, outside timing and memory accounting."""

    def run(self, frames: list[bytes]) -> Outcome:
        """Prepare (untimed) and replay."""
        return self.replay(self.input(frames))

    def input(self, frames: list[bytes]) -> Any:
        return frames if self.prepare is None else self.prepare(frames)


def bookengine_row(name: str, depth: int) -> Row:
    import bookengine
    from bookengine.errors import ChecksumError

    try:
        impl = bookengine.implementation(name)
    except ImportError as exc:
        raise Unavailable(f"not built ({exc})") from None

    def replay(frames: list[bytes]) -> Outcome:
        scanner = impl.FrameScanner()
        book = impl.L2Book(SYMBOL, depth, PRICE_PRECISION, QTY_PRECISION)
        scan = scanner.scan
        apply = book.apply_scanned
        unverified = failures = 0
        watch = Stopwatch()
        for frame in frames:
            scan(frame)
            try:
                if not apply(scanner):
                    unverified += 1
            except ChecksumError:
                failures += 1
        cpu, wall = watch.stop()
        return Outcome(cpu, wall, len(frames) - unverified - failures, failures, book)

    label = "compiled" if name == "cython" else "reference"
    return Row(
        f"bookengine {label}",
        replay,
        full=name == "cython",
        note="scan + apply_scanned" + ("" if name == "cython" else " (pure Python)"),
        c_heap=name == "cython",
    )


def session_row(depth: int) -> Row:
    try:
        from bookengine.kraken.events import ChecksumMismatch
        from bookengine.kraken.session import KrakenSession
    except ImportError as exc:
        raise Unavailable(f"bookengine.kraken.session not importable ({exc})") from None

    def replay(frames: list[bytes]) -> Outcome:
        session = KrakenSession(precisions={SYMBOL: (PRICE_PRECISION, QTY_PRECISION)}, depth=depth)
        session.subscribe("book", [SYMBOL], depth=depth)
        receive = session.receive
        recv_ts_ns = 1_704_715_200_000_000_000
        failures = 0
        watch = Stopwatch()
        for frame in frames:
            recv_ts_ns += 1000
            for event in receive(frame, recv_ts_ns):
                if type(event) is ChecksumMismatch:
                    failures += 1
        cpu, wall = watch.stop()
        # After a mismatch the book is stale (updates skipped) until the resync snapshot.
        state = next(iter(session.books.values()))
        return Outcome(cpu, wall, state.checksums_checked - failures, failures, session)

    return Row(
        "bookengine session",
        replay,
        full=True,
        note="KrakenSession.receive(frame, recv_ts_ns)",
        c_heap=True,
    )


def session_buffer_row(depth: int) -> Row:
    try:
        from bookengine.kraken.events import ChecksumMismatch
        from bookengine.kraken.session import KrakenSession
    except ImportError as exc:
        raise Unavailable(f"bookengine.kraken.session not importable ({exc})") from None
    if not hasattr(KrakenSession, "receive_buffer"):
        raise Unavailable("KrakenSession.receive_buffer not available")

    def prepare(frames: list[bytes]) -> bytes:
        return b"\n".join(frames) + b"\n"  # what reading a capture file gives

    def replay(data: bytes) -> Outcome:
        session = KrakenSession(precisions={SYMBOL: (PRICE_PRECISION, QTY_PRECISION)}, depth=depth)
        session.subscribe("book", [SYMBOL], depth=depth)
        failures = 0

        def on_events(line: int, events: list[Any]) -> None:
            nonlocal failures
            failures += sum(type(event) is ChecksumMismatch for event in events)

        watch = Stopwatch()
        session.receive_buffer(data, on_events=on_events)
        cpu, wall = watch.stop()
        state = next(iter(session.books.values()))
        return Outcome(cpu, wall, state.checksums_checked - failures, failures, session)

    return Row(
        "bookengine session, buffer",
        replay,
        full=True,
        note="KrakenSession.receive_buffer(capture bytes): the replay batch path, one call "
        "for the whole stream, no per-message events",
        c_heap=True,
        prepare=prepare,
    )


def replay_file_row(depth: int) -> Row:
    try:
        from bookengine.replay import Replayer
    except ImportError as exc:
        raise Unavailable(f"bookengine.replay not importable ({exc})") from None

    def prepare(frames: list[bytes]) -> Path:
        # A capture as the recorder writes it: "recv_ts_ns<TAB>frame" lines.
        folder = Path(tempfile.mkdtemp(prefix="bench_l2_"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "capture.jsonl"
        recv_ts_ns = 1_704_715_200_000_000_000
        with path.open("wb") as out:
            for frame in frames:
                recv_ts_ns += 1000
                out.write(b"%d\t%s\n" % (recv_ts_ns, frame))
        return path

    def replay(path: Path) -> Outcome:
        replayer = Replayer(
            [path], precisions={SYMBOL: (PRICE_PRECISION, QTY_PRECISION)}, depth=depth
        )
        watch = Stopwatch()
        result = replayer.run()
        cpu, wall = watch.stop()
        state = next(iter(result.books.values()))
        failures = state.checksum_mismatches
        return Outcome(cpu, wall, state.checksums_checked - failures, failures, replayer.session)

    return Row(
        "bookengine replay, file",
        replay,
        full=True,
        note="Replayer(capture file).run(), what `bookengine replay` runs: reading the file "
        "(page cache) included",
        c_heap=True,
        prepare=prepare,
    )


def kraken_sdk_row(depth: int) -> Row:
    try:
        import kraken.spot.orderbook as sdk_orderbook
        from kraken.spot import SpotOrderBookClient
        from kraken.spot.websocket import connectors as sdk_connectors
    except ImportError:
        raise Unavailable("not installed (pip install python-kraken-sdk)") from None
    version = metadata.version("python-kraken-sdk")

    class OfflineMarket:
        """Answers the REST AssetPairs lookup the client makes for its checksum precision."""

        def get_asset_pairs(self, pair: str) -> dict[str, dict[str, int]]:
            return {pair: {"pair_decimals": PRICE_PRECISION, "lot_decimals": QTY_PRECISION}}

    class OfflineBookClient(SpotOrderBookClient):  # type: ignore[misc]
        """The SDK's client with its network edges cut; its book logic is untouched."""

        resubscribes = 0

        async def on_book_update(self, pair: str, message: dict[str, Any]) -> None:
            pass  # the documented override point: the user's code would run here

        async def remove_book(self, pairs: list[str]) -> None:
            # Called exactly when __validate_checksum found a mismatch (then add_book).
            self.resubscribes += 1

        async def add_book(self, pairs: list[str]) -> None:
            pass

    async def no_sleep(seconds: float) -> None:
        pass  # the client waits 3 s before resubscribing after a mismatch

    def replay(frames: list[bytes]) -> Outcome:
        async def drive() -> tuple[tuple[float, float], Any]:
            # constructed inside the loop: the client's REST base wants a running event loop
            client = OfflineBookClient(depth=depth)
            try:
                client._SpotOrderBookClient__market = OfflineMarket()
                manage = client._pub_conn._manage_subscriptions
                on_message = client.on_message
                log = sdk_connectors.LOG  # the connector logs every message at debug level
                loads = json.loads
                watch = Stopwatch()
                for frame in frames:
                    # the connector's receive path: json.loads, LOG.debug, bookkeeping, callback
                    message = loads(frame)
                    log.debug(message)
                    manage(message)
                    await on_message(message)
                times = watch.stop()
            finally:
                await client.close()  # the REST base's aiohttp session (never used)
            return times, client

        saved = sdk_orderbook.asyncio_sleep
        sdk_orderbook.asyncio_sleep = no_sleep
        try:
            (cpu, wall), client = asyncio.run(drive())
        finally:
            sdk_orderbook.asyncio_sleep = saved
        book = client.get(SYMBOL)
        if book is None or len(book["bid"]) != depth:
            raise AssertionError("python-kraken-sdk did not build the book")
        # The client verifies every update's checksum; it does not check the snapshot's.
        failures = client.resubscribes
        return Outcome(cpu, wall, len(frames) - 1 - failures, failures, client)

    return Row(
        "python-kraken-sdk",
        replay,
        full=False,
        verifies_snapshot=False,
        note=f"{version}: SpotOrderBookClient.on_message, json.loads (float) + str formatting",
    )


def order_book_row(depth: int, parser: str) -> Row:
    try:
        from order_book import OrderBook
    except ImportError:
        raise Unavailable("not installed (pip install order-book)") from None
    version = metadata.version("order-book")

    if parser == "orjson":
        try:
            import orjson
        except ImportError:
            raise Unavailable("orjson not installed (pip install orjson)") from None
        orjson_version = metadata.version("orjson")
        loads = orjson.loads
        price_scale = 10**PRICE_PRECISION
        qty_scale = 10**QTY_PRECISION

        def price_of(value: float) -> Any:
            return round(value * price_scale)

        def qty_of(value: float) -> Any:
            return round(value * qty_scale)

        note = (
            f"{version} + orjson {orjson_version}: int mantissas round(x * 10**p) "
            "(exact while a number has <= 15 significant digits)"
        )
    else:
        price_exp = Decimal(1).scaleb(-PRICE_PRECISION)
        qty_exp = Decimal(1).scaleb(-QTY_PRECISION)

        def loads(frame: bytes) -> Any:
            return json.loads(frame, parse_float=Decimal)

        def price_of(value: Decimal) -> Any:
            return value.quantize(price_exp)

        def qty_of(value: Decimal) -> Any:
            return value.quantize(qty_exp)

        note = f"{version} + json(parse_float=Decimal), quantized: cryptofeed's way, exact"

    def replay(frames: list[bytes]) -> Outcome:
        book = OrderBook(max_depth=depth, checksum_format="KRAKEN")
        bids = book.bids
        asks = book.asks
        failures = 0
        watch = Stopwatch()
        for frame in frames:
            data = loads(frame)["data"][0]
            for side, levels in ((bids, data["bids"]), (asks, data["asks"])):
                for level in levels:
                    price = price_of(level["price"])
                    qty = qty_of(level["qty"])
                    if qty:
                        side[price] = qty
                    elif price in side:  # deleting an unknown level is a no-op
                        del side[price]
            # Kraken truncates after the whole message (max_depth_strict would sort per level)
            bids.truncate()
            asks.truncate()
            if book.checksum() != data["checksum"]:
                failures += 1
        cpu, wall = watch.stop()
        return Outcome(cpu, wall, len(frames) - failures, failures, book)

    name = "order-book + orjson" if parser == "orjson" else "order-book + json Decimal"
    return Row(name, replay, full=False, note=note)


def make_rows(depth: int, wanted: set[str]) -> tuple[list[Row], list[tuple[str, str]]]:
    """The rows that can run here, and (name, reason) for those that cannot."""
    factories: list[tuple[str, Callable[[], Row]]] = [
        ("bookengine compiled", lambda: bookengine_row("cython", depth)),
        ("bookengine session", lambda: session_row(depth)),
        ("bookengine session, buffer", lambda: session_buffer_row(depth)),
        ("bookengine replay, file", lambda: replay_file_row(depth)),
        ("bookengine reference", lambda: bookengine_row("python", depth)),
        ("python-kraken-sdk", lambda: kraken_sdk_row(depth)),
        ("order-book + orjson", lambda: order_book_row(depth, "orjson")),
        ("order-book + json Decimal", lambda: order_book_row(depth, "Decimal")),
    ]
    rows: list[Row] = []
    missing: list[tuple[str, str]] = []
    for name, factory in factories:
        if wanted and not any(word in name for word in wanted):
            continue
        try:
            rows.append(factory())
        except Unavailable as exc:
            missing.append((name, str(exc)))
    missing.append(
        (
            "cryptofeed",
            "skipped: its Kraken feed speaks only the v1 protocol (wss://ws.kraken.com, array "
            "frames, 'as'/'bs'/'c' keys) and cannot consume v2 frames; its book is order-book "
            "with Decimal, i.e. the 'order-book + json Decimal' row",
        )
    )
    return rows, missing


# -- checks -------------------------------------------------------------------------------------


def corrupt_checksum(frame: bytes) -> bytes:
    """The frame with its checksum field changed (wrong by one)."""
    head, marker, tail = frame.partition(b'"checksum":')
    digits = tail[: len(tail) - len(tail.lstrip(b"0123456789"))]
    wrong = (int(digits) + 1) % (1 << 32)
    return head + marker + str(wrong).encode() + tail[len(digits) :]


def check_rows(rows: list[Row], frames: list[bytes], log: Callable[[str], None]) -> None:
    """Every row verifies a valid prefix with zero failures and catches one corrupted message."""
    prefix = frames[: min(len(frames), 1001)]
    target = len(prefix) // 2
    corrupted = list(prefix)
    corrupted[target] = corrupt_checksum(prefix[target])
    for row in rows:
        clean = row.run(prefix)
        expected = len(prefix) - (0 if row.verifies_snapshot else 1)
        if clean.failures or clean.verified != expected:
            raise AssertionError(
                f"{row.name}: {clean.failures} checksum failures and {clean.verified} checksums "
                f"verified (of {expected}) on a valid stream"
            )
        bad = row.run(corrupted)
        row.corrupted_detected = bad.failures
        if bad.failures != 1:
            raise AssertionError(
                f"{row.name}: a corrupted checksum gave {bad.failures} failures instead of 1"
            )
    log(f"  checks: {len(rows)} rows verify {len(prefix) - 1} updates, each catches 1 corruption")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc_in_use() -> int | None:
    """Bytes in use from glibc malloc (C allocations tracemalloc cannot see), or None."""
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


def measure_memory(row: Row, frames: list[bytes]) -> None:
    """Memory held by the row's book after replaying ``frames`` and the peak while replaying.

    tracemalloc sees Python allocations (objects, dicts, lists, and what C extensions allocate
    through the Python allocator); glibc's mallinfo2 sees what C code mallocs directly, like
    bookengine's ladders.
    """
    data = row.input(frames)
    gc.collect()
    c_before = _malloc_in_use()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    outcome = row.replay(data)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    c_after = _malloc_in_use()
    row.memory = {"python_retained": current - base, "python_peak": peak - base}
    if row.c_heap and c_before is not None and c_after is not None:
        row.memory["c_heap_retained"] = c_after - c_before
    del outcome


# -- running ------------------------------------------------------------------------------------


def nice_floor(value: float) -> int:
    """Largest 1, 2 or 5 times a power of ten not above ``value`` (prefix sizes read well)."""
    if value < 1:
        return 1
    power = 10 ** (len(str(int(value))) - 1)
    for step in (5, 2, 1):
        if step * power <= value:
            return step * power
    return power


def probe_rate(row: Row, frames: list[bytes]) -> float:
    """Messages per second of a row on growing prefixes, until one replay takes 0.1 s."""
    count = 200
    while True:
        probe = frames[: min(len(frames), count + 1)]
        seconds = row.run(probe).cpu_seconds
        if seconds >= 0.1 or len(probe) == len(frames) or count >= 20_000:
            return (len(probe) - 1) / seconds
        count *= 10


def run_depth(
    depth: int,
    messages: int,
    repeats: int,
    budget: float,
    wanted: set[str],
    log: Callable[[str], None],
) -> dict[str, Any]:
    frames = gen_l2.load_frames(depth, messages, gen_l2.DEFAULT_SEED)
    size_mb = sum(map(len, frames)) / 1e6
    log(f"depth {depth}: {len(frames) - 1:,} updates + snapshot, {size_mb:.0f} MB")
    load_before = os.getloadavg()
    rows, missing = make_rows(depth, wanted)
    usable: list[Row] = []
    for row in rows:
        try:
            row.run(frames[:50])
        except Exception as exc:  # a broken peer is reported, the run goes on
            missing.insert(0, (row.name, f"failed: {type(exc).__name__}: {exc}"))
        else:
            usable.append(row)
    rows = usable
    check_rows(rows, frames, log)

    # warm-up: a short probe sizes the prefix of the slow rows, then one untimed replay of
    # exactly what will be timed
    for row in rows:
        rate = probe_rate(row, frames)
        if row.full:
            row.messages = len(frames) - 1
        else:
            row.messages = min(len(frames) - 1, max(1000, nice_floor(rate * budget)))
        log(f"  warm-up {row.name}: {rate:,.0f} msg/s -> replays {row.messages:,} updates")
        row.run(frames[: row.messages + 1])

    prefixes = {row.name: row.input(frames[: row.messages + 1]) for row in rows}
    for repeat in range(repeats):
        order = rows[repeat % len(rows) :] + rows[: repeat % len(rows)]
        for row in order:
            gc.collect()
            outcome = row.replay(prefixes[row.name])
            outcome.book = None
            row.samples.append(outcome)
        log(f"  round {repeat + 1}/{repeats} done")

    load_after = os.getloadavg()
    for row in rows:
        # the book is at full depth from the snapshot on: a short replay shows its size
        measure_memory(row, frames[: min(row.messages, 2000) + 1])

    result = report_depth(depth, rows, missing)
    # Other processes on the machine skew every row; the load average says how busy it was.
    result["loadavg_1m"] = [round(load_before[0], 2), round(load_after[0], 2)]
    return result


def report_depth(depth: int, rows: list[Row], missing: list[tuple[str, str]]) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for row in rows:
        frames = row.messages + 1
        rates = [frames / sample.cpu_seconds for sample in row.samples]
        wall_rates = [frames / sample.seconds for sample in row.samples]
        results.append(
            {
                "name": row.name,
                "note": row.note,
                "messages": row.messages,
                "rates": rates,
                "median_rate": statistics.median(rates),
                "wall_rates": wall_rates,
                "median_wall_rate": statistics.median(wall_rates),
                "verified": row.samples[-1].verified,
                "failures": sum(sample.failures for sample in row.samples),
                "corrupted_detected": row.corrupted_detected,
                "memory": row.memory,
            }
        )
    compiled = next((r for r in results if r["name"] == "bookengine compiled"), None)
    for result in results:
        if compiled is not None:
            # ratio within each round (rows of a round run back to back), then the median
            result["vs_compiled"] = statistics.median(
                rate / base for rate, base in zip(result["rates"], compiled["rates"], strict=True)
            )
    return {"depth": depth, "rows": results, "missing": missing}


def format_depth(result: dict[str, Any]) -> str:
    depth = result["depth"]
    load = result.get("loadavg_1m")
    lines = [
        f"### depth {depth}",
        "",
        f"1-minute load average before/after the timed rounds: {load[0]} / {load[1]}"
        if load
        else "",
        "",
        "| implementation | updates replayed | msg/s | spread | µs/msg | vs compiled | "
        "compiled is | wall msg/s | checksums verified | failures |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        rates = row["rates"]
        median = row["median_rate"]
        spread = (max(rates) - min(rates)) / median * 100
        ratio = row.get("vs_compiled")
        lines.append(
            f"| {row['name']} | {row['messages']:,} | {median:,.0f} | ±{spread / 2:.1f}% "
            f"| {1e6 / median:,.2f} | "
            + (f"{ratio:.3f}x | {1 / ratio:,.1f}x" if ratio else "- | -")
            + f" | {row['median_wall_rate']:,.0f} | {row['verified']:,} | {row['failures']} |"
        )
    lines += [
        "",
        "msg/s: messages per second of thread CPU time, median of the rounds; spread: half the "
        "range of the rounds; vs compiled: median over rounds of the ratio within a round; wall "
        "msg/s: the same loop by the wall clock.",
        "",
        "| implementation | Python objects held (tracemalloc) | Python peak while replaying | "
        "C heap (mallinfo2) |",
        "|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        memory = row["memory"]
        c_heap = memory.get("c_heap_retained")
        lines.append(
            f"| {row['name']} | {memory['python_retained'] / 1024:,.1f} KiB "
            f"| {memory['python_peak'] / 1024:,.1f} KiB | "
            + ("-" if c_heap is None else f"{c_heap / 1024:,.1f} KiB")
            + " |"
        )
    lines.append("")
    for row in result["rows"]:
        lines.append(f"- {row['name']}: {row['note']}")
    for name, reason in result["missing"]:
        lines.append(f"- {name}: {reason}")
    return "\n".join(lines)


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
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    versions = {}
    for package in ("Cython", "numpy", "python-kraken-sdk", "order-book", "orjson", "cryptofeed"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    import bookengine

    # The compiled core changes under active development: name the exact build measured.
    digest = hashlib.sha256()
    for library in sorted((REPO / "bookengine" / "_core").glob("*.so")):
        digest.update(library.name.encode())
        digest.update(library.read_bytes())
    return {
        "nproc": _command("nproc") or str(os.cpu_count()),
        "cpu": model or platform.processor(),
        "ram_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "implementation": bookengine.IMPLEMENTATION,
        "commit": _command("git", "-C", str(REPO), "describe", "--always", "--dirty"),
        "build_sha256": digest.hexdigest()[:12],
        "platform": platform.platform(),
        "packages": versions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=gen_l2.DEFAULT_MESSAGES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--depth", type=int, nargs="+", default=[100, 1000])
    parser.add_argument(
        "--budget",
        type=float,
        default=3.0,
        help="seconds per replay for the rows that run a prefix (reference and peers)",
    )
    parser.add_argument("--only", nargs="*", default=[], help="run rows whose name has a word")
    parser.add_argument("--quick", action="store_true", help="20k messages, 2 repeats")
    parser.add_argument("--json", type=Path, help="where to write the results (default out/)")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = min(args.messages, 20_000)
        args.repeats = min(args.repeats, 2)
        args.budget = min(args.budget, 0.5)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    info = machine()
    log(f"machine: {info['cpu']}, {info['nproc']} CPUs, Python {info['python']}, {info['commit']}")
    results = [
        run_depth(depth, args.messages, args.repeats, args.budget, set(args.only), log)
        for depth in args.depth
    ]
    print(
        f"\n## L2 replay, {SYMBOL} (price precision {PRICE_PRECISION}, qty precision "
        f"{QTY_PRECISION}), {args.repeats} rounds, medians\n"
    )
    print(
        f"Machine: {info['cpu']}, nproc {info['nproc']}, {info['ram_gib']} GiB RAM, "
        f"Python {info['python']}, commit {info['commit']}, compiled core build "
        f"{info['build_sha256']} (sha256 of bookengine/_core/*.so)\n"
    )
    for result in results:
        print(format_depth(result))
        print()
    out = args.json or gen_l2.OUT_DIR / f"results_l2_{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": info,
                "messages": args.messages,
                "repeats": args.repeats,
                "seed": gen_l2.DEFAULT_SEED,
                "generator_version": gen_l2.GENERATOR_VERSION,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    log(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
