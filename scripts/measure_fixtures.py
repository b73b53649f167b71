"""Count wire facts in real Kraken captures (evidence for docs/simulator-fidelity.md).

Usage: python scripts/measure_fixtures.py [FILE...]   (default: the real captures in tests/data)

Prints, per file: frames by kind, update frames carrying both sides, and per side of an update
that holds both a deletion (qty 0) and a non-deletion, whether every deletion comes first; how
many of those non-deletions are priced better than the deleted level; republish flags; key
orders of the objects. Numbers are compared as decimal strings (never floats).
"""

from __future__ import annotations

import collections
import json
import sys
from decimal import Decimal
from pathlib import Path

from bookengine.checksum import book_checksum

V2_PRECISION = (1, 8)
"""BTC/USD price and qty precision (tests/data/v2-instrument-snapshot.jsonl)."""
V1_DECIMALS = (5, 8)
"""XBT/USD v1 wire decimals (price, qty): the checksum hashes the wire digits."""

DEFAULT = ("tests/data/v2-book-btcusd-depth10.jsonl", "tests/data/v1-book-xbtusd-depth10.jsonl")


def _frames(path: Path) -> list[object]:
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        _, tab, rest = line.partition("\t")
        out.append(json.loads(rest if tab else line, parse_float=Decimal, parse_int=Decimal))
    return out


def _side_order(
    entries: list[tuple[Decimal, Decimal]], is_bid: bool, c: collections.Counter[str]
) -> None:
    deletes = [i for i, (_, q) in enumerate(entries) if q == 0]
    others = [i for i, (_, q) in enumerate(entries) if q != 0]
    if not deletes or not others:
        return
    c["sides with deletion and non-deletion"] += 1
    if max(deletes) < min(others):
        c["  deletions all first"] += 1
    else:
        c["  a non-deletion before a deletion"] += 1
    worst_deleted = (
        max(entries[i][0] for i in deletes) if not is_bid else min(entries[i][0] for i in deletes)
    )
    better = [
        i
        for i in others
        if (entries[i][0] > worst_deleted if is_bid else entries[i][0] < worst_deleted)
    ]
    if better:
        c["  with a non-deletion priced better than a deleted level"] += 1


def _mantissa(value: Decimal, scale: int) -> int:
    return int(value.scaleb(scale))


class _TruncatingBook:
    """A client book that truncates to ``depth`` after every entry (python-kraken-sdk's rule)."""

    def __init__(self, depth: int, scale_p: int, scale_q: int) -> None:
        self.depth = depth
        self.scales = (scale_p, scale_q)
        self.sides: dict[str, dict[Decimal, Decimal]] = {"a": {}, "b": {}}

    def apply(self, side: str, entries: list[tuple[Decimal, Decimal]]) -> None:
        levels = self.sides[side]
        for price, qty in entries:
            if qty == 0:
                levels.pop(price, None)
            else:
                levels[price] = qty
            for extra in sorted(levels, reverse=side == "b")[self.depth :]:
                del levels[extra]

    def checksum(self) -> int:
        sp, sq = self.scales
        asks = [
            (_mantissa(p, sp), _mantissa(self.sides["a"][p], sq)) for p in sorted(self.sides["a"])
        ]
        bids = [
            (_mantissa(p, sp), _mantissa(self.sides["b"][p], sq))
            for p in sorted(self.sides["b"], reverse=True)
        ]
        return book_checksum(asks[:10], bids[:10])


def measure(path: Path) -> collections.Counter[str]:
    c: collections.Counter[str] = collections.Counter()
    book: _TruncatingBook | None = None
    for frame in _frames(path):
        if isinstance(frame, dict):
            kind = frame.get("channel") or frame.get("event") or frame.get("method")
            c[f"frame {kind}:{frame.get('type', '')}"] += 1
            if frame.get("channel") == "book" and frame.get("type") == "snapshot":
                book = _TruncatingBook(10, V2_PRECISION[0], V2_PRECISION[1])
                for data in frame["data"]:
                    book.apply("b", [(lv["price"], lv["qty"]) for lv in data["bids"]])
                    book.apply("a", [(lv["price"], lv["qty"]) for lv in data["asks"]])
            if frame.get("channel") == "book" and frame.get("type") == "update":
                for data in frame["data"]:
                    bids = [(lv["price"], lv["qty"]) for lv in data["bids"]]
                    asks = [(lv["price"], lv["qty"]) for lv in data["asks"]]
                    c["v2 book updates"] += 1
                    if bids and asks:
                        c["v2 updates with both bids and asks"] += 1
                    c["v2 data keys " + ",".join(data)] += 1
                    _side_order(bids, True, c)
                    _side_order(asks, False, c)
                    if book is not None:
                        book.apply("b", bids)
                        book.apply("a", asks)
                        ok = book.checksum() == int(data["checksum"])
                        c[f"per-entry truncation checksums {'ok' if ok else 'FAILED'}"] += 1
        elif isinstance(frame, list):
            payloads = [p for p in frame[1:-2] if isinstance(p, dict)]
            if any("as" in p or "bs" in p for p in payloads):
                c["v1 snapshots"] += 1
                depth = int(str(frame[-2]).split("-")[1])
                book = _TruncatingBook(depth, *V1_DECIMALS)
                for p in payloads:
                    for key, side in (("as", "a"), ("bs", "b")):
                        book.apply(side, [(Decimal(e[0]), Decimal(e[1])) for e in p.get(key, [])])
                continue
            c["v1 updates"] += 1
            c["v1 update payload keys " + "|".join(",".join(p) for p in payloads)] += 1
            if any("a" in p for p in payloads) and any("b" in p for p in payloads):
                c["v1 updates with both a and b"] += 1
            for p in payloads:
                for side in ("a", "b"):
                    if side in p:
                        entries = [(Decimal(e[0]), Decimal(e[1])) for e in p[side]]
                        c["v1 republish entries"] += sum(
                            1 for e in p[side] if len(e) > 3 and e[3] == "r"
                        )
                        _side_order(entries, side == "b", c)
                        if book is not None:
                            book.apply(side, entries)
            checksum = next((p["c"] for p in payloads if "c" in p), None)
            if book is not None and checksum is not None:
                ok = book.checksum() == int(checksum)
                c[f"per-entry truncation checksums {'ok' if ok else 'FAILED'}"] += 1
    return c


def main(argv: list[str]) -> int:
    for name in argv or DEFAULT:
        print(name)
        for key, value in sorted(measure(Path(name)).items()):
            print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
