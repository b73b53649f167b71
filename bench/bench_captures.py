"""Capture-shape benchmark (issue 13, item 5): ``bookengine replay`` on the shapes users bring,
side by side with the peers on the same files, printed as one table against the issue's targets.

Inputs (seeded; generated once and cached under ``--cache``, default ``bench/out/captures/``,
in files whose names hold every parameter):

* a v2 ``book`` capture, 2 symbols (BTC/USD, and ETH/USD from a second seed of the same
  generator), depth 100, ``--messages`` book messages in all, interleaved one by one, made by
  ``gen_l2.L2StreamGenerator``; written as

  - ``raw``: one frame per line, no receive times (the fixtures', the README's, most
    third-party captures' shape);
  - ``recv_ts``: ``recv_ts_ns<TAB>frame`` lines (the recorder's and ``bench_l2.py``'s shape);
  - ``raw + trades``: the raw lines with v2 ``trade`` frames interleaved (17% of the lines; the
    simulator's trade frame layout, which is Kraken's: ``symbol, side, price, qty, ord_type,
    trade_id, timestamp``; 1 to 3 trades per frame);
  - ``raw .gz`` and ``raw .zst``: the raw file compressed;

* ``recording``: ``bookengine record --trades`` of the seeded simulator (4 symbols, depth
  100, ``--record-seconds`` at ``--rate``), run in a subprocess against an in-process
  ``bookengine.sim.Simulator``; and its level3 twin, ``bookengine record --level3`` of the same
  simulator (4 symbols, depth 100, trades always on);
* ``--symbols`` replays of the 4-symbol recording (one symbol, two symbols). A row whose
  command does not take ``--symbols`` (or whose ``Replayer`` has no ``symbols``) says ``n/a``.

Each shape is measured two ways:

* ``bookengine replay --json FILE`` as a whole process: wall time, minus the wall time of
  ``python -c "import bookengine.cli, bookengine.replay"`` (interpreter start and the imports
  the command needs before it reads a byte), both medians of the rounds; the exit status must
  be 0;
* in-process ``bookengine.replay.replay([FILE])`` (``Replayer(..., symbols=...).run()`` for the
  filtered rows): the process's CPU time, median of the rounds. This is "processing" and the
  figure the targets are judged on. A round runs all of these back to back before the CLI and
  the peers, and a ratio (vs fastest, x raw, vs unfiltered, analytics x replay) is the median
  over the rounds of the ratio within each round: the two sides share the VM's minute.

Peers read the same file's lines (decompressing, dropping a ``recv_ts<TAB>`` prefix, header and
sent-request lines) and skip every frame that is not a v2 ``book`` message: ``order-book +
orjson`` (bmoscon's C book, int mantissas, Kraken checksum verified per message, as in
``bench_l2.py``) and ``python-kraken-sdk``'s ``SpotOrderBookClient`` driven offline (as in
``bench_l2.py``). They run on a prefix of the file (``--peer-lines``, ``--sdk-lines``; their
rate is steady once the snapshots are in) and cannot read level3 frames (``n/a``). Their rate
and bookengine's ratio to it are per book message, reading the file included.

Analytics: ``BookAnalytics(keep_classifications=False).run([level3 recording])`` (the line
reader hands every level3 message and trade to the compiled trade join) against
``replay([level3 recording])`` alone, CPU time, same rounds; beside it, keeping the decisions
and making the classifications table, and (one round) the event path
``BookAnalytics().replay``, which the compiled join must agree with (checked).

The process pins itself to one CPU (``os.sched_setaffinity``; its subprocesses inherit it)
before the timed rounds (``--no-pin`` to skip). Usage::

    python bench/bench_captures.py [--quick] [--repeats R] [--messages N] [--record-seconds S]
                                   [--cache DIR] [--json FILE] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import inspect
import itertools
import json
import os
import platform
import queue
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any, cast

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))

import gen_l2  # noqa: E402

SUITE_VERSION = 1
"""Bump when a generated input changes: cached files carry it in their name."""
DEPTH = 100
SYMBOLS_2 = ("BTC/USD", "ETH/USD")
SYMBOLS_4 = ("BTC/USD", "ETH/USD", "DOGE/USD", "PEPE/USD")
SEED = 20240108
TRADE_SHARE = 0.17
"""Share of the lines that are trade frames in the ``raw + trades`` shape."""
START_RECV_NS = 1_704_715_200_000_000_000

# The targets (issue 13, "Targets").
RAW_RATE = 2_000_000
RAW_VS_ORDER_BOOK = 15.0
SHAPE_SPREAD = 1.3
TRADES_SPREAD = 1.5
LEVEL3_LINES = 1_000_000
ANALYTICS_RATIO = 1.5


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- inputs -------------------------------------------------------------------------------------


def _stream(seed: int, messages: int, symbol: str) -> Iterator[bytes]:
    """One symbol's book stream (snapshot + ``messages`` updates) from gen_l2's generator."""
    generator = gen_l2.L2StreamGenerator(DEPTH, seed)
    old = f'"symbol":"{gen_l2.SYMBOL}"'.encode()
    new = f'"symbol":"{symbol}"'.encode()
    for index in range(messages + 1):
        frame = generator.snapshot() if index == 0 else generator.update()
        yield frame if symbol == gen_l2.SYMBOL else frame.replace(old, new, 1)


_TS_KEY = b'"timestamp":"'


def _trade_frame(rng: random.Random, symbol: str, price: int, trade_id: int, ts: bytes) -> bytes:
    """A v2 ``trade`` update in the layout the simulator (and Kraken) sends."""
    render = gen_l2.render_number
    trades = []
    for _ in range(rng.choice((1, 1, 1, 1, 2, 2, 3))):
        trade_id += 1
        side = "buy" if rng.random() < 0.5 else "sell"
        qty = int(10 ** rng.uniform(4.0, 8.5))
        trades.append(
            f'{{"symbol":"{symbol}","side":"{side}",'
            f'"price":{render(price + rng.randint(-3, 3), gen_l2.PRICE_PRECISION)},'
            f'"qty":{render(qty, gen_l2.QTY_PRECISION)},'
            f'"ord_type":"{"market" if rng.random() < 0.7 else "limit"}",'
            f'"trade_id":{trade_id},"timestamp":"{ts.decode()}"}}'
        )
    return ('{"channel":"trade","type":"update","data":[' + ",".join(trades) + "]}").encode()


def make_two_symbol(cache: Path, messages: int) -> dict[str, Path]:
    """The 2-symbol depth-100 book capture in its five shapes (cached)."""
    stem = f"book2_d{DEPTH}_n{messages}_s{SEED}_v{SUITE_VERSION}"
    paths = {
        "raw": cache / f"{stem}_raw.jsonl",
        "recv_ts": cache / f"{stem}_recv_ts.jsonl",
        "raw + trades": cache / f"{stem}_trades.jsonl",
        "raw .gz": cache / f"{stem}_raw.jsonl.gz",
        "raw .zst": cache / f"{stem}_raw.jsonl.zst",
    }
    if all(path.exists() for path in paths.values()):
        return paths
    log(f"generating {stem} ({messages:,} book messages, 2 symbols)...")
    started = time.perf_counter()
    half = messages // 2
    streams = [
        _stream(SEED + offset, half - 1 + (offset == 0) * (messages % 2), symbol)
        for offset, symbol in enumerate(SYMBOLS_2)
    ]
    rng = random.Random(f"bench-captures-trades-{SEED}")
    per_book = TRADE_SHARE / (1 - TRADE_SHARE)  # trade lines per book line
    price = {symbol: gen_l2.START_PRICE for symbol in SYMBOLS_2}
    trade_id = {symbol: 10_000_000 * (index + 1) for index, symbol in enumerate(SYMBOLS_2)}
    partial = {name: path.with_name(path.name + ".partial") for name, path in paths.items()}
    import zstandard

    with (
        partial["raw"].open("wb") as raw,
        partial["recv_ts"].open("wb") as stamped,
        partial["raw + trades"].open("wb") as traded,
    ):
        recv_ns = START_RECV_NS
        for pair in itertools.zip_longest(*streams):
            for symbol, frame in zip(SYMBOLS_2, pair, strict=True):
                if frame is None:
                    continue
                recv_ns += 1000 + rng.randrange(50_000)
                raw.write(frame + b"\n")
                stamped.write(b"%d\t%s\n" % (recv_ns, frame))
                traded.write(frame + b"\n")
                at = frame.rfind(_TS_KEY) + len(_TS_KEY)
                ts = frame[at : frame.index(b'"', at)]
                price[symbol] += rng.randint(-2, 2)
                if rng.random() < per_book:
                    trade_id[symbol] += 3
                    traded.write(_trade_frame(rng, symbol, price[symbol], trade_id[symbol], ts))
                    traded.write(b"\n")
    data = partial["raw"].read_bytes()
    with gzip.open(partial["raw .gz"], "wb", compresslevel=6) as out:
        out.write(data)
    partial["raw .zst"].write_bytes(zstandard.ZstdCompressor(level=3).compress(data))
    for name, path in paths.items():
        os.replace(partial[name], path)
    log(f"  {time.perf_counter() - started:.1f} s")
    return paths


def record_with_sim(path: Path, *, level3: bool, seconds: float, rate: float, seed: int) -> None:
    """``bookengine record`` (a subprocess) of an in-process simulator into ``path``."""
    from bookengine.sim import Simulator

    ready: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        async with Simulator(
            symbols=list(SYMBOLS_4), seed=seed, rate=rate or None, idle_timeout=None
        ) as sim:
            ready.put(sim)
            while not stop.is_set():
                await asyncio.sleep(0.05)

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # surfaced to the caller below
            ready.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    sim = ready.get(timeout=30)
    if isinstance(sim, BaseException):
        raise sim
    try:
        env = dict(os.environ, KRAKEN_API_KEY=sim.api_key, KRAKEN_API_SECRET=sim.api_secret)
        command = [
            sys.executable,
            "-m",
            "bookengine",
            "record",
            *SYMBOLS_4,
            "--depth",
            str(DEPTH),
            "--url",
            sim.url_v2,
            "--duration",
            f"{seconds:g}",
            "-o",
            str(path),
        ]
        if level3:
            command += ["--level3", "--level3-url", sim.url_level3, "--rest-url", sim.rest_url]
        else:
            command += ["--trades"]
        result = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"bookengine record failed ({result.returncode}): {result.stderr}")
    finally:
        stop.set()
        thread.join(15)


def make_recordings(cache: Path, seconds: float, rate: float) -> dict[str, Path]:
    """The 4-symbol ``record --trades`` recording and its ``--level3`` twin (cached)."""
    out: dict[str, Path] = {}
    for kind, level3 in (("recording", False), ("level3 recording", True)):
        name = "l3" if level3 else "trades"
        path = (
            cache
            / f"rec_{name}_4sym_d{DEPTH}_t{seconds:g}_r{rate:g}_s{SEED}_v{SUITE_VERSION}.jsonl"
        )
        if not path.exists():
            log(f"recording {path.name} ({seconds:g} s of the simulator at rate {rate:g})...")
            started = time.perf_counter()
            partial = path.with_name(path.name + ".partial.jsonl")
            partial.unlink(missing_ok=True)
            record_with_sim(partial, level3=level3, seconds=seconds, rate=rate, seed=SEED % 1000)
            os.replace(partial, path)
            log(f"  {time.perf_counter() - started:.1f} s")
        out[kind] = path
    return out


# -- reading lines (peers and counting) ---------------------------------------------------------


def open_lines(path: Path) -> IO[bytes]:
    """The file's decompressed bytes as a binary stream (iterate for lines)."""
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    if path.name.endswith(".zst"):
        import io

        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(path.open("rb")))
    return path.open("rb")


def frames_of(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Frames of capture lines: receive-time prefix dropped, headers and sent requests skipped."""
    for line in lines:
        if line[:1] == b"#":
            continue
        tab = line.find(b"\t", 0, 24)
        frame = line[tab + 1 :] if tab >= 0 else line
        if frame[:1] == b">":
            continue
        yield frame


def count(path: Path) -> dict[str, int]:
    lines = trades = level3 = book = 0
    with open_lines(path) as stream:
        for line in stream:
            lines += 1
            if b'"channel":"trade"' in line:
                trades += 1
            elif b'"channel":"book"' in line:
                book += 1
            elif b'"channel":"level3"' in line:
                level3 += 1
    return {"lines": lines, "trade_lines": trades, "book_lines": book, "level3_lines": level3}


def instrument_precisions(path: Path) -> dict[str, tuple[int, int]]:
    """symbol -> (price, qty) precision from a recording's ``instrument`` snapshot."""
    with open_lines(path) as stream:
        for frame in frames_of(iter(stream)):
            if frame.startswith(b'{"channel":"instrument","type":"snapshot"'):
                pairs = json.loads(frame)["data"]["pairs"]
                return {p["symbol"]: (p["price_precision"], p["qty_precision"]) for p in pairs}
    return {}


# -- the peers ----------------------------------------------------------------------------------


@dataclass
class PeerRun:
    seconds: float
    messages: int
    failures: int


def order_book_peer(path: Path, precisions: dict[str, tuple[int, int]], limit: int) -> PeerRun:
    """bmoscon's ``order-book`` fed by orjson (int mantissas), one book per symbol."""
    import orjson
    from order_book import OrderBook  # type: ignore[import-not-found]

    loads = orjson.loads
    books: dict[str, Any] = {}
    scales = {s: (10**p, 10**q) for s, (p, q) in precisions.items()}
    messages = failures = 0
    started = time.process_time()
    with open_lines(path) as stream:
        for frame in frames_of(itertools.islice(stream, limit)):
            if b'"channel":"book"' not in frame[:40]:
                continue  # the peer skips what it cannot use (after looking at it)
            message = loads(frame)
            if message.get("channel") != "book":
                continue
            data = message["data"][0]
            symbol = data["symbol"]
            book = books.get(symbol)
            if book is None or message["type"] == "snapshot":
                book = books[symbol] = OrderBook(max_depth=DEPTH, checksum_format="KRAKEN")
            price_scale, qty_scale = scales[symbol]
            for side, levels in ((book.bids, data["bids"]), (book.asks, data["asks"])):
                for level in levels:
                    price = round(level["price"] * price_scale)
                    qty = round(level["qty"] * qty_scale)
                    if qty:
                        side[price] = qty
                    elif price in side:
                        del side[price]
            book.bids.truncate()
            book.asks.truncate()
            messages += 1
            if book.checksum() != data["checksum"]:
                failures += 1
    return PeerRun(time.process_time() - started, messages, failures)


def kraken_sdk_peer(path: Path, precisions: dict[str, tuple[int, int]], limit: int) -> PeerRun:
    """python-kraken-sdk's ``SpotOrderBookClient`` offline (network edges cut as in bench_l2)."""
    import kraken.spot.orderbook as sdk_orderbook
    from kraken.spot import SpotOrderBookClient
    from kraken.spot.websocket import connectors as sdk_connectors

    class OfflineMarket:
        def get_asset_pairs(self, pair: str) -> dict[str, dict[str, int]]:
            price, qty = precisions[pair]
            return {pair: {"pair_decimals": price, "lot_decimals": qty}}

    class OfflineBookClient(SpotOrderBookClient):
        resubscribes = 0

        async def on_book_update(self, pair: str, message: dict[str, Any]) -> None:
            pass

        async def remove_book(self, pairs: list[str]) -> None:
            self.resubscribes += 1

        async def add_book(self, pairs: list[str]) -> None:
            pass

    async def no_sleep(seconds: float) -> None:
        pass

    async def drive() -> PeerRun:
        client = OfflineBookClient(depth=DEPTH)
        try:
            setattr(client, "_SpotOrderBookClient__market", OfflineMarket())  # noqa: B010
            manage = getattr(client._pub_conn, "_manage_subscriptions")  # noqa: B009
            on_message = client.on_message
            sdk_log = sdk_connectors.LOG
            loads = json.loads
            messages = 0
            started = time.process_time()
            with open_lines(path) as stream:
                for frame in frames_of(itertools.islice(stream, limit)):
                    message = loads(frame)  # what its connector does with every frame
                    sdk_log.debug(message)
                    manage(message)
                    await on_message(message)
                    if isinstance(message, dict) and message.get("channel") == "book":
                        messages += 1
            seconds = time.process_time() - started
        finally:
            await client.close()
        return PeerRun(seconds, messages, client.resubscribes)

    # the client waits 3 s before resubscribing after a mismatch: not part of the book work
    saved = getattr(sdk_orderbook, "asyncio_sleep")  # noqa: B009
    setattr(sdk_orderbook, "asyncio_sleep", no_sleep)  # noqa: B010
    try:
        return asyncio.run(drive())
    finally:
        setattr(sdk_orderbook, "asyncio_sleep", saved)  # noqa: B010


PeerFunction = Callable[[Path, dict[str, tuple[int, int]], int], PeerRun]


def available_peers(
    args: argparse.Namespace,
) -> tuple[list[tuple[str, PeerFunction, int]], list[str]]:
    """The peers importable here (name, function, line limit) and the names of the others."""
    import importlib

    peers: list[tuple[str, PeerFunction, int]] = []
    missing: list[str] = []
    for name, modules, function, limit in (
        ("order-book", ("order_book", "orjson"), order_book_peer, args.peer_lines),
        ("sdk", ("kraken",), kraken_sdk_peer, args.sdk_lines),
    ):
        try:
            for module in modules:
                importlib.import_module(module)
        except ImportError:
            missing.append(name)
        else:
            peers.append((name, function, limit))
    return peers, missing


# -- bookengine ---------------------------------------------------------------------------------


def cli_supports_symbols() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "bookengine", "replay", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "--symbols" in result.stdout


def replayer_supports_symbols() -> bool:
    from bookengine.replay import Replayer

    return "symbols" in inspect.signature(Replayer).parameters


def precision_args(precisions: dict[str, tuple[int, int]] | None) -> list[str]:
    args: list[str] = []
    for symbol, (price, qty) in sorted((precisions or {}).items()):
        args += ["--precision", f"{symbol}={price}/{qty}"]
    return args


def timed_child(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Wall seconds and CPU seconds (user + system) of a child process, and its result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result


def run_cli(path: Path, extra: list[str]) -> tuple[float, float, dict[str, Any]]:
    """Wall and CPU seconds of ``bookengine replay --json`` and its summary (must exit 0)."""
    command = [sys.executable, "-m", "bookengine", "replay", "--json", *extra, str(path)]
    wall, cpu, result = timed_child(command)
    if result.returncode:
        raise RuntimeError(
            f"{' '.join(command[2:])}: exit status {result.returncode}: "
            f"{result.stderr.decode(errors='replace')[-500:]}"
        )
    summary: dict[str, Any] = json.loads(result.stdout)
    return wall, cpu, summary


def startup_seconds() -> tuple[float, float]:
    """Wall and CPU seconds of the baseline subtracted from each CLI run."""
    wall, cpu, result = timed_child(
        [sys.executable, "-c", "import bookengine.cli, bookengine.replay"]
    )
    result.check_returncode()
    return wall, cpu


def run_inprocess(
    path: Path, precisions: dict[str, tuple[int, int]] | None, symbols: list[str] | None
) -> tuple[float, Any]:
    """CPU seconds of an in-process replay and its result."""
    from bookengine.replay import Replayer, replay

    started = time.process_time()
    if symbols is None:
        result = replay([path], precisions=precisions)
    else:
        result = Replayer([path], precisions=precisions, symbols=symbols, progress=False).run()
    return time.process_time() - started, result


def read_only(path: Path) -> float:
    """CPU seconds of reading ``path`` as the replay does, without reading a frame: the
    capture reader's raw chunks (decompressed, cut at line ends), each dropped at once."""
    from bookengine.capture import CaptureReader

    started = time.process_time()
    for _ in CaptureReader([path], kinds=("raw",)):
        pass
    return time.process_time() - started


def fingerprint(result: Any) -> dict[str, tuple[int, int, int]]:
    return {
        key: (state.messages, state.checksums_checked, state.book.checksum())
        for key, state in sorted(result.books.items())
    }


def run_analytics(path: Path, *, table: bool = False) -> tuple[float, Any]:
    """CPU seconds of ``BookAnalytics().run`` over ``path`` (with ``table``: keeping every
    decision and making the classifications table) and the analytics."""
    from bookengine.analytics import BookAnalytics

    started = time.process_time()
    analytics = BookAnalytics(keep_classifications=table).run([path])
    if table:
        analytics.classifications_table()
    return time.process_time() - started, analytics


def run_analytics_events(path: Path) -> tuple[float, Any]:
    """CPU seconds of the event path (``BookAnalytics().replay``, every event consumed)."""
    from bookengine.analytics import BookAnalytics

    started = time.process_time()
    analytics = BookAnalytics(keep_classifications=False)
    for _ in analytics.replay([path]):
        pass
    return time.process_time() - started, analytics


# -- the suite ----------------------------------------------------------------------------------


@dataclass
class Shape:
    name: str
    path: Path
    group: str
    """Shapes of one group hold the same books ("2sym" for the generated capture)."""
    precisions: dict[str, tuple[int, int]] | None = None
    symbols: list[str] | None = None
    peers: bool = True
    counts: dict[str, int] = field(default_factory=dict)
    book_msgs: int = 0
    cli: list[float] = field(default_factory=list)
    cli_cpu: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    reading: list[float] = field(default_factory=list)
    """CPU seconds of reading the file alone (decompressed, cut at line ends, no frame read)."""
    peer_runs: dict[str, list[PeerRun]] = field(default_factory=dict)
    cli_note: str = ""
    inproc_note: str = ""
    fingerprint: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def build_shapes(args: argparse.Namespace) -> list[Shape]:
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    two = make_two_symbol(cache, args.messages)
    recordings = make_recordings(cache, args.record_seconds, args.rate)
    precisions2 = {symbol: (gen_l2.PRICE_PRECISION, gen_l2.QTY_PRECISION) for symbol in SYMBOLS_2}
    shapes = [Shape(name, path, "2sym", precisions2) for name, path in two.items()]
    rec = recordings["recording"]
    shapes.append(Shape("recording 4 sym + trades", rec, "rec"))
    shapes.append(Shape("  --symbols BTC/USD", rec, "rec", symbols=["BTC/USD"]))
    shapes.append(Shape("  --symbols BTC/USD,ETH/USD", rec, "rec", symbols=list(SYMBOLS_2)))
    shapes.append(
        Shape("level3 recording 4 sym", recordings["level3 recording"], "l3", peers=False)
    )
    for shape in shapes:  # the recordings carry their instrument snapshot: no precisions given
        shape.counts = count(shape.path)
    return shapes


def run_suite(args: argparse.Namespace) -> dict[str, Any]:
    shapes = build_shapes(args)
    cli_symbols = cli_supports_symbols()
    lib_symbols = replayer_supports_symbols()
    peer_precisions = {
        shape.name: shape.precisions or instrument_precisions(shape.path) for shape in shapes
    }
    peers, missing = available_peers(args)
    for name in missing:
        log(f"peer {name}: not installed (pip install -e '.[bench]'), its columns say so")
    if args.pin and hasattr(os, "sched_setaffinity"):
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        log(f"pinned to CPU {cpu} (subprocesses inherit it)")

    # warm-up: one untimed replay per shape, checks and counts
    reference: dict[str, dict[str, tuple[int, int, int]]] = {}
    for shape in shapes:
        if shape.symbols is not None and not lib_symbols:
            shape.inproc_note = "n/a (no Replayer symbols)"
        else:
            _, result = run_inprocess(shape.path, shape.precisions, shape.symbols)
            if not result.ok:
                raise AssertionError(f"{shape.name}: replay not ok")
            shape.fingerprint = fingerprint(result)
            shape.book_msgs = sum(state.messages for state in result.books.values())
            if shape.symbols is None:
                reference.setdefault(shape.group, shape.fingerprint)
                if shape.fingerprint != reference[shape.group]:
                    raise AssertionError(f"{shape.name}: books differ from the group's first shape")
            else:
                whole = reference[shape.group]
                wanted = {k: v for k, v in whole.items() if k.split(":", 1)[1] in shape.symbols}
                if shape.fingerprint != wanted:
                    raise AssertionError(f"{shape.name}: filtered books differ from the whole")
        if shape.symbols is not None and not cli_symbols:
            shape.cli_note = "n/a (no --symbols)"
    log("checks: every shape replays with 0 mismatches; shapes of one capture give equal books")
    analytics: list[float] = []
    analytics_table: list[float] = []
    l3 = next(shape for shape in shapes if shape.group == "l3")
    # The compiled run and the event path must decide alike (the differential tests hold
    # them together; this checks the benchmark's own file).
    _, compiled = run_analytics(l3.path)
    events_seconds, event_path = run_analytics_events(l3.path)
    if compiled.classifier.stats != event_path.classifier.stats:
        raise AssertionError(
            f"analytics: run() and replay() differ: {compiled.classifier.stats} "
            f"vs {event_path.classifier.stats}"
        )
    analytics_decisions = compiled.classifier.stats.decided
    log("checks: BookAnalytics.run and BookAnalytics.replay decide alike on the level3 recording")
    baseline: list[tuple[float, float]] = []
    if not args.quick:
        startup_seconds()  # warm-up (page cache, bytecode)

    loadavg = [round(os.getloadavg()[0], 2)]
    for round_ in range(args.repeats):
        # The in-process replays first, back to back (a few seconds): the ratios the targets
        # are judged on compare the runs of one round, so a slow minute of this shared VM
        # weighs on both sides of each ratio. The analytics run right after the replay of
        # their file.
        for shape in shapes:
            if not shape.inproc_note:
                seconds, _ = run_inprocess(shape.path, shape.precisions, shape.symbols)
                shape.cpu.append(seconds)
                if shape is l3:
                    analytics.append(run_analytics(l3.path)[0])
        analytics_table.append(run_analytics(l3.path, table=True)[0])
        for shape in shapes:
            if shape.group == "2sym":
                shape.reading.append(read_only(shape.path))
        baseline.append(startup_seconds())
        for shape in shapes:
            if not shape.cli_note:
                extra = precision_args(shape.precisions)
                if shape.symbols is not None:
                    extra += ["--symbols", ",".join(shape.symbols)]
                seconds, cpu_seconds, summary = run_cli(shape.path, extra)
                if summary.get("bad_frames"):
                    raise AssertionError(f"{shape.name}: {summary['bad_frames']} bad frames")
                shape.cli.append(seconds)
                shape.cli_cpu.append(cpu_seconds)
            if shape.peers and shape.symbols is None:
                precisions = peer_precisions[shape.name]
                for name, peer, limit in peers:
                    run = peer(shape.path, precisions, limit)
                    shape.peer_runs.setdefault(name, []).append(run)
        log(f"round {round_ + 1}/{args.repeats} done")
    loadavg.append(round(os.getloadavg()[0], 2))
    return {
        "shapes": shapes,
        "baseline": statistics.median(wall for wall, _ in baseline),
        "baseline_cpu": statistics.median(cpu for _, cpu in baseline),
        "loadavg": loadavg,
        "analytics": statistics.median(analytics),
        "analytics_rounds": analytics,
        "analytics_table": statistics.median(analytics_table),
        "analytics_events_path": events_seconds,
        "analytics_decisions": analytics_decisions,
        "cli_symbols": cli_symbols,
        "missing_peers": missing,
    }


# -- the table ----------------------------------------------------------------------------------


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def peer_rate(shape: Shape, name: str) -> tuple[float | None, int]:
    runs = shape.peer_runs.get(name)
    if not runs:
        return None, 0
    rate = statistics.median(run.messages / run.seconds for run in runs if run.seconds > 0)
    return rate, max(run.failures for run in runs)


def table(report: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    shapes: list[Shape] = report["shapes"]
    baseline: float = report["baseline"]
    rows: list[dict[str, Any]] = []
    by_name = {shape.name: shape for shape in shapes}
    # Seconds per book message of the unfiltered L2 shapes, round by round; a ratio is the
    # median over the rounds of the ratio within each round (its replays ran back to back).
    per_msg: dict[str, list[float]] = {
        shape.name: [seconds / shape.book_msgs for seconds in shape.cpu]
        for shape in shapes
        if shape.cpu and shape.book_msgs and shape.symbols is None and shape.group != "l3"
    }
    fastest = [min(costs) for costs in zip(*per_msg.values(), strict=True)] if per_msg else []

    def paired(costs: list[float], against: list[float]) -> float:
        return statistics.median(a / b for a, b in zip(costs, against, strict=True))

    for shape in shapes:
        cpu = median(shape.cpu)
        cli = median(shape.cli)
        net = None if cli is None else cli - baseline  # may be <= 0 on tiny inputs
        cli_cpu = median(shape.cli_cpu)
        net_cpu = None if cli_cpu is None else cli_cpu - report["baseline_cpu"]
        rate = None if cpu is None or not shape.book_msgs else shape.book_msgs / cpu
        ratio = paired(per_msg[shape.name], fastest) if shape.name in per_msg else None
        ob_rate, ob_fail = peer_rate(shape, "order-book")
        sdk_rate, sdk_fail = peer_rate(shape, "sdk")
        targets: list[tuple[str, bool]] = []
        if shape.name == "raw" and rate is not None:
            targets.append((f">= {RAW_RATE / 1e6:.1f} M msg/s", rate >= RAW_RATE))
            if ob_rate:
                targets.append(
                    (f">= {RAW_VS_ORDER_BOOK:.0f}x order-book", rate / ob_rate >= RAW_VS_ORDER_BOOK)
                )
        if ratio is not None:
            limit = TRADES_SPREAD if shape.counts["trade_lines"] else SHAPE_SPREAD
            targets.append((f"<= {limit}x fastest", ratio <= limit))
        if shape.name == "raw + trades" and shape.name in per_msg and "raw" in per_msg:
            vs_raw = paired(per_msg[shape.name], per_msg["raw"])
            targets.append((f"<= {TRADES_SPREAD}x raw ({vs_raw:.2f}x)", vs_raw <= TRADES_SPREAD))
        least_vs_raw = None
        if shape.reading and "raw" in by_name and by_name["raw"].reading:
            # The raw replay already pays for reading the raw file; this shape pays at least
            # the raw replay plus what its own reading costs beyond the raw file's (per
            # message, round by round).
            raw = by_name["raw"]
            least_vs_raw = statistics.median(
                1 + (read / shape.book_msgs - raw_read / raw.book_msgs) / (raw_cpu / raw.book_msgs)
                for read, raw_read, raw_cpu in zip(shape.reading, raw.reading, raw.cpu, strict=True)
            )
        vs_unfiltered = None
        if shape.symbols is not None and shape.cpu:
            whole = by_name["recording 4 sym + trades"].cpu
            if whole:
                vs_unfiltered = paired(shape.cpu, whole)
                targets.append((f"<= unfiltered ({vs_unfiltered:.2f}x)", vs_unfiltered <= 1))
        if shape.group == "l3" and cpu is not None:
            lines_rate = shape.counts["lines"] / cpu
            targets.append((f">= 1 M lines/s ({_rate(lines_rate)})", lines_rate >= LEVEL3_LINES))
        rows.append(
            {
                "shape": shape.name,
                "lines": shape.counts["lines"],
                "book_msgs": shape.book_msgs,
                "trade_lines": shape.counts["trade_lines"],
                "bytes": shape.path.stat().st_size,
                "cli_seconds_net": net,
                # below 10 ms the difference is start-up noise, not a rate
                "cli_rate": shape.book_msgs / net if net and net >= 0.01 else None,
                "cli_note": shape.cli_note,
                "cli_cpu_seconds_net": net_cpu,
                "seconds": cpu,
                "reading_seconds": median(shape.reading),
                "least_vs_raw": least_vs_raw,
                "rate": rate,
                "inproc_note": shape.inproc_note,
                "vs_fastest": ratio,
                "vs_unfiltered": vs_unfiltered,
                "order_book_rate": ob_rate,
                "order_book_failures": ob_fail,
                "order_book_missing": "order-book" in report["missing_peers"],
                "sdk_rate": sdk_rate,
                "sdk_failures": sdk_fail,
                "sdk_missing": "sdk" in report["missing_peers"],
                "peers": shape.peers and shape.symbols is None,
                "targets": [(text, ok) for text, ok in targets],
            }
        )
    l3 = next(shape for shape in shapes if shape.group == "l3")
    analytics = report["analytics"]
    analytics_ratio = paired(report["analytics_rounds"], l3.cpu) if l3.cpu else None
    rows.append(
        {
            "shape": "analytics over level3 recording",
            "lines": l3.counts["lines"],
            "book_msgs": l3.book_msgs,
            "trade_lines": l3.counts["trade_lines"],
            "bytes": l3.path.stat().st_size,
            "cli_seconds_net": None,
            "cli_rate": None,
            "cli_note": "-",
            "cli_cpu_seconds_net": None,
            "seconds": analytics,
            "rate": l3.book_msgs / analytics if analytics else None,
            "inproc_note": "",
            "vs_fastest": None,
            "order_book_rate": None,
            "sdk_rate": None,
            "peers": False,
            "analytics_vs_replay": analytics_ratio,
            "targets": []
            if analytics_ratio is None
            else [
                (
                    f"<= {ANALYTICS_RATIO}x replay ({analytics_ratio:.2f}x)",
                    analytics_ratio <= ANALYTICS_RATIO,
                )
            ],
        }
    )
    return render(rows), rows


LEGEND = """\
* CLI wall s (net): wall time of `bookengine replay --json FILE` (a subprocess) minus {wall:.3f} s,
  the wall time of `python -c "import bookengine.cli, bookengine.replay"` (interpreter start and
  the imports the command needs); CLI CPU s (net): its user + system CPU time minus the
  baseline's ({cpu:.3f} s); CLI msg/s: book (or level3) messages over CLI wall s (net).
* seconds: CPU time of the in-process `replay([FILE])` (`Replayer(symbols=...).run()` when
  filtered); msg/s: book (or level3) messages per second of it. The targets are judged on these.
  Each round runs every in-process replay back to back, then the CLI and the peers.
* vs fastest: seconds per book message over that of the fastest unfiltered L2 shape of the same
  round, the median over the rounds (so are "x raw", "unfiltered" and the analytics' "x
  replay": a ratio within each round, its median). On this shared VM a minute can run 30%
  slower than the next; the two sides of a ratio share their minute.
* peers: book messages per CPU second on a prefix of the same file (reading it included),
  frames they cannot use skipped; x: bookengine's in-process msg/s over the peer's.
"""


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The figures the targets are judged on, for ``run.py``'s summary."""
    by_name = {row["shape"].strip(): row for row in rows}
    items: list[dict[str, Any]] = []

    def add(what: str, value: float | None, unit: str, target: float, higher: bool) -> None:
        items.append(
            {"what": what, "value": value, "unit": unit, "target": target, "higher": higher}
        )

    raw = by_name["raw"]
    add("captures: raw frames, replay msg/s", raw["rate"], "", RAW_RATE, True)
    if raw["rate"] and raw["order_book_rate"]:
        add(
            "captures: raw x order-book + orjson",
            raw["rate"] / raw["order_book_rate"],
            "x",
            RAW_VS_ORDER_BOOK,
            True,
        )
    plain = [r for r in rows if r["vs_fastest"] is not None and not r["trade_lines"]]
    if plain:
        add(
            "captures: slowest book-only shape x fastest",
            max(r["vs_fastest"] for r in plain),
            "x",
            SHAPE_SPREAD,
            False,
        )
    traded = [r for r in rows if r["vs_fastest"] is not None and r["trade_lines"]]
    if traded:
        add(
            "captures: slowest shape with trades x fastest",
            max(r["vs_fastest"] for r in traded),
            "x",
            TRADES_SPREAD,
            False,
        )
    filtered = [r["vs_unfiltered"] for r in rows if r.get("vs_unfiltered") is not None]
    if filtered:
        add("captures: --symbols x no filter (slowest)", max(filtered), "x", 1.0, False)
    l3 = by_name["level3 recording 4 sym"]
    if l3["seconds"]:
        add(
            "captures: level3 recording lines/s",
            l3["lines"] / l3["seconds"],
            "",
            LEVEL3_LINES,
            True,
        )
    analytics = by_name["analytics over level3 recording"].get("analytics_vs_replay")
    add("captures: analytics x level3 replay", analytics, "x", ANALYTICS_RATIO, False)
    return items


def reading_table(rows: list[dict[str, Any]]) -> list[str]:
    """What reading each file costs before a frame is read, and the least time per message a
    shape can then take against the raw file: its decompression runs on the replay's one core."""
    read = [row for row in rows if row.get("least_vs_raw") is not None and row["seconds"]]
    if not read:
        return []
    out = [
        "| shape | reading s | replay s | reading / replay | least vs raw | vs fastest |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in read:
        vs = row.get("vs_fastest")
        out.append(
            f"| {row['shape'].strip()} | {row['reading_seconds']:.3f} | {row['seconds']:.3f} "
            f"| {row['reading_seconds'] / row['seconds']:.0%} | {row['least_vs_raw']:.2f}x "
            f"| {'-' if vs is None else f'{vs:.2f}x'} |"
        )
    return out


def render(rows: list[dict[str, Any]]) -> list[str]:
    header = (
        "| shape | lines | book msgs | trade lines | bytes | CLI wall s (net) | CLI CPU s (net) "
        "| CLI msg/s | seconds "
        "| msg/s | vs fastest | order-book+orjson msg/s | x | python-kraken-sdk msg/s | x "
        "| target | verdict |"
    )
    out = [header, "|---|" + "---:|" * 14 + "---|---|"]
    for row in rows:
        rate = row["rate"]

        def peer(key: str, row: dict[str, Any] = row, rate: Any = rate) -> str:
            value: float | None = row.get(f"{key}_rate")
            failures: int = row.get(f"{key}_failures", 0)
            if not row["peers"]:
                return "n/a | -"
            if row.get(f"{key}_missing"):
                return "not installed | -"
            if value is None:
                return "- | -"
            bad = f" ({failures} mismatches)" if failures else ""
            ratio = f"{rate / value:,.1f}x" if rate else "-"
            return f"{_rate(value)}{bad} | {ratio}"

        if row["cli_note"]:
            cli = f"{row['cli_note']} | - | -"
        else:
            net, net_cpu = row["cli_seconds_net"], row["cli_cpu_seconds_net"]
            cli = (
                f"{net:.3f} | {net_cpu:.3f} | {_rate(row['cli_rate'])}"
                if net is not None and net_cpu is not None
                else "- | - | -"
            )
        seconds = row["inproc_note"] or ("-" if row["seconds"] is None else f"{row['seconds']:.3f}")
        vs = row.get("vs_fastest")
        targets = row["targets"]
        verdict = "-" if not targets else ("PASS" if all(ok for _, ok in targets) else "FAIL")
        out.append(
            f"| {row['shape'].strip()} | {row['lines']:,} | {row['book_msgs']:,} "
            f"| {row['trade_lines']:,} | {row['bytes']:,} | {cli} | {seconds} | {_rate(rate)} "
            f"| {'-' if vs is None else f'{vs:.2f}x'} "
            f"| {peer('order_book')} | {peer('sdk')} "
            f"| {'; '.join(text for text, _ in targets) or '-'} | {verdict} |"
        )
    return out


def machine() -> dict[str, Any]:
    def command(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in command("lscpu").splitlines()
            if line.startswith("Model name:")
        ),
        platform.processor(),
    )
    versions = {}
    for package in ("Cython", "order-book", "orjson", "python-kraken-sdk"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": model,
        "nproc": command("nproc") or str(os.cpu_count()),
        "python": platform.python_version(),
        "commit": command("git", "-C", str(REPO), "describe", "--always", "--dirty"),
        "packages": versions,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, 1 round (smoke test)")
    parser.add_argument("--repeats", type=int, help="rounds, medians reported (default 3; quick 1)")
    parser.add_argument("--messages", type=int, default=400_000, help="book messages, 2-symbol")
    parser.add_argument("--record-seconds", type=float, default=40.0, help="per recording")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="simulator events/s per symbol (0: max)"
    )
    parser.add_argument("--peer-lines", type=int, default=100_000, help="order-book's prefix")
    parser.add_argument("--sdk-lines", type=int, default=8_000, help="python-kraken-sdk's prefix")
    parser.add_argument("--cache", type=Path, default=gen_l2.OUT_DIR / "captures")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin a CPU")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = min(args.messages, 6_000)
        args.record_seconds = min(args.record_seconds, 0.6)
        args.rate = args.rate or 300.0
        args.peer_lines = min(args.peer_lines, 3_000)
        args.sdk_lines = min(args.sdk_lines, 300)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    info = machine()
    report = run_suite(args)
    lines, rows = table(report)
    print(f"\n## Capture shapes: bookengine replay, depth 100, {args.repeats} round(s), medians\n")
    print(
        f"Machine: {info['cpu']}, nproc {info['nproc']}, Python {info['python']}, commit "
        f"{info['commit']}; 1-minute load average {report['loadavg'][0]} / "
        f"{report['loadavg'][1]} before / after the timed rounds.\n"
    )
    print(LEGEND.format(wall=report["baseline"], cpu=report["baseline_cpu"]))
    print("\n".join(lines))
    reading = reading_table(rows)
    if reading:
        print(
            '\nReading alone: CPU seconds of `CaptureReader([FILE], kinds=("raw",))` iterated '
            "(the file read, decompressed and cut at line ends as the replay reads it, no frame "
            'read), medians of the same rounds. "least vs raw": the raw replay plus the '
            "reading a shape costs beyond the raw file's, over the raw replay (per message, "
            "within each round, the median): no reader on one core does better.\n"
        )
        print("\n".join(reading))
    l3_cpu = median(next(shape for shape in report["shapes"] if shape.group == "l3").cpu)
    print(
        f"\nanalytics: {report['analytics_decisions']:,} fill/cancel decisions over the level3 "
        f"recording. BookAnalytics(keep_classifications=False).run: {report['analytics']:.3f} s; "
        f"keeping them and making the classifications table: {report['analytics_table']:.3f} s "
        f"({report['analytics_table'] / l3_cpu:.2f}x the replay); the event path "
        f"(BookAnalytics().replay, every event consumed, one round): "
        f"{report['analytics_events_path']:.3f} s ({report['analytics_events_path'] / l3_cpu:.1f}x)"
    )
    out = args.json or gen_l2.OUT_DIR / f"results_captures_{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()
    }
    document = {
        "machine": info,
        "args": settings,
        "baseline_seconds": report["baseline"],
        "rows": rows,
        "summary": summary(rows),
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    log(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
