"""Seeded generator of a realistic Kraken v2 ``book`` stream (BTC/USD) for the L2 benchmark.

The generator keeps a full book per side (the subscribed window plus a deeper hidden book) and
derives every message the way Kraken publishes them (protocol reference, sections 1.4 and 2):

* a snapshot of ``depth`` levels per side, best first, then updates of 1 to 4 levels;
* changes cluster near the touch (geometric distance in rank or ticks), with a thin uniform tail
  over the whole window: quantity changes, new levels (some inside the spread), deletions;
* a deletion inside the window is followed, in the same message, by the level that now enters
  the window from the hidden book (the backfill); a level pushed out by a better one gets no
  message (the client truncates), and the hidden book is replenished and trimmed silently;
* now and then the same price appears twice in one message (the last entry wins);
* numbers are JSON numbers with trailing zeros stripped (``0.001``, ``4.0``, ``29430.2``),
  timestamps RFC 3339 with microseconds, and every message carries the CRC32 of the model's
  top 10 levels per side.

Frames are written one per line (raw bytes) to ``bench/out/`` under a name holding every
parameter, with a JSON sidecar; a cached stream of N messages also serves any shorter request
(the generator is sequential, so a prefix of a longer stream *is* the shorter stream). A new
stream is checked while it is written: a prefix is replayed through the reference
implementation in lockstep (every checksum must verify) and the whole subscribed window of the
replayed book is compared with the model at regular intervals.

Usage::

    python bench/gen_l2.py [--messages N] [--depth 100 1000] [--seed S] [--verify N] [--force]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bookengine.checksum import book_checksum

GENERATOR_VERSION = 1
"""Bump when the stream changes: cached files carry it in their name."""
SYMBOL = "BTC/USD"
PRICE_PRECISION = 1
QTY_PRECISION = 8
DEFAULT_MESSAGES = 1_000_000
DEFAULT_SEED = 20240108
DEFAULT_VERIFY = 20_000
OUT_DIR = Path(__file__).resolve().parent / "out"

HIDDEN_MIN = 40
"""Levels per side kept beyond the subscribed window, at least (so backfill is real)..."""
HIDDEN_MAX = 160
"""...and at most (the far end is trimmed silently)."""
START_PRICE = 300_000
"""Mid price mantissa at start: 30000.0 USD at price precision 1."""
START_TS_US = 1_704_715_200_000_000
"""2024-01-08T12:00:00Z, in microseconds."""

_ENTRY_BUDGET = (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 4)
"""Levels per update message (about 55% one, 25% two, 15% three, 5% four)."""
_ROUND_QTYS = (
    100_000,  # 0.001
    1_000_000,  # 0.01
    2_000_000,  # 0.02
    10_000_000,  # 0.1
    25_000_000,  # 0.25
    50_000_000,  # 0.5
    80_000_000,  # 0.8
    100_000_000,  # 1.0
    200_000_000,  # 2.0
    400_000_000,  # 4.0
)


def render_number(mantissa: int, scale: int) -> str:
    """Kraken's v2 rendering of a JSON number: trailing zeros stripped, at least one decimal.

    ``render_number(294302, 1) == "29430.2"``, ``render_number(100000, 8) == "0.001"``,
    ``render_number(400000000, 8) == "4.0"``, ``render_number(0, 8) == "0.0"``.
    """
    whole, fraction = divmod(mantissa, 10**scale)
    digits = f"{fraction:0{scale}d}".rstrip("0") or "0"
    return f"{whole}.{digits}"


class _Side:
    """One side of the full book. ``keys`` ascend and index 0 is the best level.

    The key is the price for asks and minus the price for bids, so "better" is "smaller" on
    both sides and a level's rank is its index.
    """

    __slots__ = ("keys", "qty", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys: list[int] = []
        self.qty: dict[int, int] = {}

    def price(self, key: int) -> int:
        return self.sign * key

    def top(self, n: int) -> list[tuple[int, int]]:
        """Best ``n`` levels as (price, qty) mantissas, best first."""
        qty = self.qty
        sign = self.sign
        return [(sign * key, qty[key]) for key in self.keys[:n]]


class L2StreamGenerator:
    """Generates one symbol's v2 ``book`` stream for a subscription at ``depth``.

    Args:
        depth: the subscribed depth (levels per side in the window).
        seed: seeds the only random source; the same (depth, seed) gives the same bytes.
    """

    def __init__(self, depth: int, seed: int) -> None:
        self.depth = depth
        self.rng = random.Random(f"bookengine-l2-{GENERATOR_VERSION}-{depth}-{seed}")
        self.bids = _Side(-1)
        self.asks = _Side(1)
        self.ts_us = START_TS_US
        self._ts_second = -1
        self._ts_prefix = ""
        # Levels pushed out of the window during the current message: the client still holds
        # them until it truncates, so deleting one from the hidden book must be sent.
        self._pushed: set[int] = set()
        self.stats = {"entries": 0, "backfills": 0, "duplicates": 0, "deletes": 0, "inserts": 0}
        self._build()

    # -- model ---------------------------------------------------------------------------------

    def _build(self) -> None:
        rng = self.rng
        size = self.depth + (HIDDEN_MIN + HIDDEN_MAX) // 2
        for side, first in ((self.asks, START_PRICE + 1), (self.bids, -(START_PRICE - 1))):
            key = first
            for _ in range(size):
                side.keys.append(key)
                side.qty[key] = self._random_qty()
                key += 1 + int(rng.expovariate(0.7))

    def _random_qty(self) -> int:
        rng = self.rng
        if rng.random() < 0.2:
            return rng.choice(_ROUND_QTYS)
        # log-uniform from 0.0001 to 10 BTC, all 8 decimals significant
        return int(10 ** rng.uniform(4.0, 9.0))

    def _near_rank(self, window: int) -> int:
        rng = self.rng
        if rng.random() < 0.9:
            rank = int(rng.expovariate(0.28))  # geometric, mean about 3
            if rank < window:
                return rank
        return rng.randrange(window)

    def _set(self, side: _Side, key: int, qty: int, entries: list[tuple[int, int]]) -> None:
        """Set the quantity at ``key`` (inserting it when new), emitting what Kraken sends."""
        depth = self.depth
        keys = side.keys
        if key in side.qty:
            side.qty[key] = qty
            if bisect.bisect_left(keys, key) < depth:
                entries.append((side.price(key), qty))
            return
        at = bisect.bisect_left(keys, key)
        keys.insert(at, key)
        side.qty[key] = qty
        self.stats["inserts"] += 1
        if at < depth:
            entries.append((side.price(key), qty))
            if len(keys) > depth:
                # the window's worst level is pushed out: no message, the client truncates
                self._pushed.add(keys[depth])

    def _delete(self, side: _Side, rank: int, entries: list[tuple[int, int]]) -> None:
        """Delete the level at ``rank``; inside the window, also send the backfill level."""
        depth = self.depth
        keys = side.keys
        key = keys.pop(rank)
        del side.qty[key]
        self.stats["deletes"] += 1
        if rank < depth:
            entries.append((side.price(key), 0))
            if len(keys) >= depth:
                backfill = keys[depth - 1]
                entries.append((side.price(backfill), side.qty[backfill]))
                self._pushed.discard(backfill)
                self.stats["backfills"] += 1
        elif key in self._pushed:
            # still in the client's book (pushed out this message, not yet truncated)
            entries.append((side.price(key), 0))
            self._pushed.discard(key)

    def _new_key(self, side: _Side, other: _Side) -> int:
        """A price (as a key) for a new level: mostly a few ticks behind the touch."""
        rng = self.rng
        keys = side.keys
        best = keys[0]
        limit = -other.keys[0]  # keys must stay > limit: never cross the other side
        roll = rng.random()
        if roll < 0.12 and best - limit > 1:
            return rng.randrange(limit + 1, best)  # inside the spread: a new touch
        if roll < 0.92:
            return best + int(rng.expovariate(0.16))  # near the touch, mean about 6 ticks
        edge = keys[min(self.depth, len(keys)) - 1]
        return rng.randint(best, edge)  # anywhere in the window

    def _maintain(self, side: _Side) -> None:
        """Keep the hidden book between HIDDEN_MIN and HIDDEN_MAX levels (never visible)."""
        keys = side.keys
        low = self.depth + HIDDEN_MIN
        while len(keys) < low:
            key = keys[-1] + 1 + int(self.rng.expovariate(0.7))
            keys.append(key)
            side.qty[key] = self._random_qty()
        high = self.depth + HIDDEN_MAX
        while len(keys) > high:
            del side.qty[keys.pop()]

    # -- messages ------------------------------------------------------------------------------

    def _timestamp(self) -> str:
        self.ts_us += 1 + int(self.rng.expovariate(1 / 4000))  # mean 4 ms between messages
        second, micros = divmod(self.ts_us, 1_000_000)
        if second != self._ts_second:
            self._ts_second = second
            self._ts_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._ts_prefix}.{micros:06d}Z"

    def checksum(self) -> int:
        """Kraken CRC32 of the model's window (top 10 asks ascending, top 10 bids descending)."""
        return book_checksum(self.asks.top(10), self.bids.top(10))

    def _frame(self, kind: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> bytes:
        pp, qp = PRICE_PRECISION, QTY_PRECISION
        bid_text = ",".join(
            f'{{"price":{render_number(p, pp)},"qty":{render_number(q, qp)}}}' for p, q in bids
        )
        ask_text = ",".join(
            f'{{"price":{render_number(p, pp)},"qty":{render_number(q, qp)}}}' for p, q in asks
        )
        return (
            f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{SYMBOL}",'
            f'"bids":[{bid_text}],"asks":[{ask_text}],"checksum":{self.checksum()},'
            f'"timestamp":"{self._timestamp()}"}}]}}'
        ).encode("ascii")

    def snapshot(self) -> bytes:
        """The snapshot frame: ``depth`` levels per side, best first."""
        return self._frame("snapshot", self.bids.top(self.depth), self.asks.top(self.depth))

    def update(self) -> bytes:
        """The next update frame (1 to 4 levels, plus a fix-up in rare corner cases)."""
        rng = self.rng
        depth = self.depth
        budget = rng.choice(_ENTRY_BUDGET)
        entries: dict[int, list[tuple[int, int]]] = {id(self.bids): [], id(self.asks): []}
        count = 0
        last: tuple[_Side, int] | None = None
        self._pushed.clear()
        while count < budget:
            side, other = (self.bids, self.asks) if rng.random() < 0.5 else (self.asks, self.bids)
            out = entries[id(side)]
            before = len(out)
            roll = rng.random()
            if last is not None and roll < 0.04:
                # the same price again in this message: the last entry must win
                side, key = last
                out = entries[id(side)]
                before = len(out)
                limit = -(self.asks if side is self.bids else self.bids).keys[0]
                if key in side.qty or key > limit:
                    self._set(side, key, self._random_qty(), out)
                    self.stats["duplicates"] += 1
            elif roll < 0.45:
                rank = self._near_rank(min(depth, len(side.keys)))
                key = side.keys[rank]
                qty = self._random_qty()
                while qty == side.qty[key]:
                    qty = self._random_qty()
                self._set(side, key, qty, out)
                last = (side, key)
            elif roll < 0.73 or budget - count < 2:
                key = self._new_key(side, other)
                self._set(side, key, self._random_qty(), out)
                last = (side, key)
            else:
                rank = self._near_rank(min(depth, len(side.keys)))
                last = (side, side.keys[rank])
                self._delete(side, rank, out)
            count += len(out) - before
        self._maintain(self.bids)
        self._maintain(self.asks)
        bids, asks = entries[id(self.bids)], entries[id(self.asks)]
        self.stats["entries"] += len(bids) + len(asks)
        return self._frame("update", bids, asks)

    def window(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The subscribed window (bids, asks) as (price, qty) mantissas, best first."""
        return self.bids.top(self.depth), self.asks.top(self.depth)


# -- cache ------------------------------------------------------------------------------------


def cache_path(depth: int, messages: int, seed: int) -> Path:
    """The cache file of a stream: snapshot plus ``messages`` updates, one frame per line."""
    symbol = SYMBOL.replace("/", "-")
    return OUT_DIR / f"l2_{symbol}_d{depth}_n{messages}_s{seed}_v{GENERATOR_VERSION}.jsonl"


def _cached(depth: int, messages: int, seed: int) -> Path | None:
    """The smallest verified cache file holding at least ``messages`` updates, if any."""
    best: tuple[int, Path] | None = None
    pattern = cache_path(depth, 0, seed).name.replace("_n0_", "_n*_")
    for path in OUT_DIR.glob(pattern):
        meta = _read_meta(path)
        if meta is None or not meta.get("verified"):
            continue
        count = meta["messages"]
        if not isinstance(count, int):
            continue
        if count >= messages and (best is None or count < best[0]):
            best = (count, path)
    return None if best is None else best[1]


def _read_meta(path: Path) -> dict[str, object] | None:
    try:
        meta: dict[str, object] = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return meta


def generate(
    depth: int,
    messages: int,
    seed: int = DEFAULT_SEED,
    verify: int = DEFAULT_VERIFY,
    log: bool = True,
) -> Path:
    """Write a stream to the cache and verify its prefix; returns the file.

    The first ``verify`` updates are replayed through the reference implementation while they
    are written: every checksum must verify, and every 1,000 messages the replayed book's whole
    window must equal the model's. Any difference deletes the file and raises.
    """
    import bookengine
    from bookengine.errors import ChecksumError

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = cache_path(depth, messages, seed)
    temporary = path.with_suffix(".tmp")
    generator = L2StreamGenerator(depth, seed)
    reference = bookengine.implementation("python")
    scanner = reference.FrameScanner()
    book = reference.L2Book(SYMBOL, depth, PRICE_PRECISION, QTY_PRECISION)
    verify = min(verify, messages)
    started = time.perf_counter()
    checked = 0
    try:
        with temporary.open("wb") as out:
            for index in range(messages + 1):
                frame = generator.snapshot() if index == 0 else generator.update()
                out.write(frame)
                out.write(b"\n")
                if index <= verify:
                    scanner.scan(frame)
                    try:
                        if not book.apply_scanned(scanner):
                            raise AssertionError(f"message {index}: no checksum verified")
                    except ChecksumError as exc:
                        raise AssertionError(f"generator bug at message {index}: {exc}") from exc
                    checked += 1
                    if index % 1000 == 0 or index == verify:
                        bids, asks = generator.window()
                        if book.bids() != bids or book.asks() != asks:
                            raise AssertionError(
                                f"generator bug at message {index}: window differs from model"
                            )
                if log and index and index % 100_000 == 0:
                    rate = index / (time.perf_counter() - started)
                    print(f"  depth {depth}: {index:,} messages ({rate:,.0f}/s)", file=sys.stderr)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
    meta = {
        "symbol": SYMBOL,
        "price_precision": PRICE_PRECISION,
        "qty_precision": QTY_PRECISION,
        "depth": depth,
        "messages": messages,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "verified": True,
        "verified_messages": checked - 1,
        "verified_with": "bookengine reference (pure Python) implementation",
        "stats": generator.stats,
        "bytes": path.stat().st_size,
        "seconds": round(time.perf_counter() - started, 1),
        "python": platform.python_version(),
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def ensure_stream(
    depth: int, messages: int, seed: int = DEFAULT_SEED, verify: int = DEFAULT_VERIFY
) -> Path:
    """A verified cache file with at least ``messages`` updates, generating it if needed."""
    path = _cached(depth, messages, seed)
    if path is None:
        print(f"generating {messages:,} updates at depth {depth} (seed {seed})...", file=sys.stderr)
        path = generate(depth, messages, seed, verify)
    return path


def load_frames(depth: int, messages: int, seed: int = DEFAULT_SEED) -> list[bytes]:
    """The snapshot and the first ``messages`` updates as raw frames (bytes, no newline)."""
    path = ensure_stream(depth, messages, seed)
    meta = _read_meta(path) or {}
    with path.open("rb") as lines:
        if meta.get("messages") == messages:
            frames = lines.read().split(b"\n")
            if frames and not frames[-1]:
                frames.pop()
            return frames
        return [line.rstrip(b"\n") for line in itertools.islice(lines, messages + 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--depth", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--verify",
        type=int,
        default=DEFAULT_VERIFY,
        help="updates replayed through the reference implementation while generating",
    )
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    args = parser.parse_args(argv)
    for depth in args.depth:
        if args.force:
            path = generate(depth, args.messages, args.seed, args.verify)
        else:
            path = ensure_stream(depth, args.messages, args.seed, args.verify)
        meta = _read_meta(path) or {}
        size = meta.get("bytes", 0)
        megabytes = size / 1e6 if isinstance(size, int) else 0.0
        print(f"{path}  ({megabytes:,.1f} MB, {meta.get('stats')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
