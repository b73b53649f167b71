"""Why did a checksum mismatch? Cheap re-checks run once per mismatch (never per frame).

The session calls :func:`explain` where it creates a :class:`ChecksumMismatch`. The book has
already applied the failing message (Kraken's rule: apply, then compare), so it is the state
Kraken's CRC32 describes, give or take the fault. The re-checks, cheapest and most telling
first, each recompute Kraken's CRC32 (:mod:`bookengine.checksum`) on a variant of the book's
top 10 levels:

* another price and/or quantity precision (the digits Kraken hashes depend on the scale): a
  wrong ``--precision`` or a stale instrument snapshot;
* fewer levels per side (the checksum window is narrower than the book: depth or truncation);
* the book without one of its top levels (a level Kraken no longer has: truncated past the
  subscribed depth, or a delete that was missed);
* the book with one of the failing frame's levels removed or set again (a level the checksum
  implies that the book lacks, or holds with another quantity);
* time: the frame's receive time before the previous one (capture files in the wrong order) or
  long after it (frames missed in a gap).

The result is a plain sentence; the mismatch event also carries the book's top levels (exact
decimal text) and the raw frame(s) since the last verified state, bounded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..checksum import CHECKSUM_LEVELS, book_checksum, level3_checksum
from ..numbers import mantissa_text
from .events import ChecksumMismatch

MAX_FRAME_CHARS = 4000
"""A frame longer than this is cut (with a marker) in the mismatch's ``frames``."""

MAX_FRAMES = 4
"""Frames since the last verified state kept on a mismatch (one, in practice: every Kraken
book message carries a checksum, so the last verified state is the message before)."""

GAP_NS = 60 * 1_000_000_000
"""A receive-time gap this long before the failing frame is named as a likely cause."""

_MAX_PRECISION = 12

Level = tuple[int, int]


def explain(
    state: Any,
    expected: int,
    computed: int,
    recv_ts_ns: int,
    *,
    previous_recv_ts_ns: int = -1,
    frame: bytes | str | None = None,
    scanner: Any = None,
) -> ChecksumMismatch:
    """The :class:`ChecksumMismatch` for ``state``'s book, with its forensics.

    Args:
        state: the session's ``BookState`` (its ``book`` applied the failing message).
        expected: Kraken's checksum; ``computed``: the book's.
        recv_ts_ns: the failing frame's receive time (-1: unknown).
        previous_recv_ts_ns: the book's previous frame's receive time (-1: unknown).
        frame: the raw failing frame, when the caller has it.
        scanner: the scanner that read the failing frame (used when ``frame`` is None).
    """
    book = state.book
    frames: tuple[str, ...] = ()
    if frame is not None:
        frames = (_bounded(frame),)
    elif scanner is not None:
        frames = (_bounded(_frame_from_scanner(scanner)),)
    top: tuple[tuple[str, str, str], ...] = ()
    cause = ""
    try:
        if book is not None:
            top = top_levels(book)
            cause = likely_cause(
                book,
                expected,
                channel=state.channel,
                depth=state.depth,
                recv_ts_ns=recv_ts_ns,
                previous_recv_ts_ns=previous_recv_ts_ns,
                entries=_entries(scanner) if scanner is not None else _frame_entries(frame),
            )
    except Exception as exc:  # forensics must never turn a mismatch into a crash
        cause = f"(forensics failed: {type(exc).__name__}: {exc})"
    return ChecksumMismatch(
        state.key,
        state.symbol,
        expected,
        computed,
        recv_ts_ns,
        top_levels=top,
        frames=frames[:MAX_FRAMES],
        likely_cause=cause,
    )


def failed_line(data: bytes, end: int) -> bytes:
    """The line of ``data`` that ends just before offset ``end`` (the fast path's failure)."""
    stop = end - 1 if end > 0 and data[end - 1 : end] == b"\n" else end
    start = data.rfind(b"\n", 0, stop) + 1
    line = data[start:stop].rstrip(b"\r ")
    tab = line.find(b"\t")
    return line[tab + 1 :] if 0 < tab < 24 and line[:tab].isdigit() else line


def top_levels(book: Any, n: int = CHECKSUM_LEVELS) -> tuple[tuple[str, str, str], ...]:
    """The book's top ``n`` asks (best first) then bids, as ``(side, price, qty)`` text."""
    pp, qp = book.price_precision or 0, book.qty_precision or 0
    rows: list[tuple[str, str, str]] = []
    for side, levels in (("ask", book.asks(n)), ("bid", book.bids(n))):
        for price, qty in levels:
            rows.append((side, mantissa_text(price, pp), mantissa_text(qty, qp)))
    return tuple(rows)


def likely_cause(
    book: Any,
    expected: int,
    *,
    channel: str = "book",
    depth: int | None = None,
    recv_ts_ns: int = -1,
    previous_recv_ts_ns: int = -1,
    entries: Sequence[tuple[str, str, str]] | None = None,
) -> str:
    """The first re-check that explains Kraken's checksum ``expected``, as a sentence ("" if none).

    ``entries``: the failing frame's levels as ``(side, price text, qty text)``.
    """
    if recv_ts_ns >= 0 and previous_recv_ts_ns >= 0 and recv_ts_ns < previous_recv_ts_ns:
        back = (previous_recv_ts_ns - recv_ts_ns) / 1e9
        return (
            f"time went backwards by {back:.3f}s before this frame: capture files replayed "
            "in the wrong order?"
        )
    if channel == "level3":
        return _level3_cause(book, expected)
    pp, qp = book.price_precision, book.qty_precision
    asks, bids = book.asks(CHECKSUM_LEVELS), book.bids(CHECKSUM_LEVELS)
    if pp is not None and qp is not None:
        found = _precision_cause(asks, bids, pp, qp, expected)
        if found:
            return found
    for keep in range(CHECKSUM_LEVELS - 1, 0, -1):
        if book_checksum(asks[:keep], bids[:keep]) == expected:
            return (
                f"the checksum covers {keep} levels per side, not {CHECKSUM_LEVELS}: "
                f"depth is {keep}, not {depth}"
            )
    deeper_asks = book.asks(CHECKSUM_LEVELS + 1)
    deeper_bids = book.bids(CHECKSUM_LEVELS + 1)
    text = _text(book)
    for side, levels, other in (("ask", deeper_asks, bids), ("bid", deeper_bids, asks)):
        for index in range(min(len(levels), CHECKSUM_LEVELS)):
            without = levels[:index] + levels[index + 1 :]
            pair = (without, other) if side == "ask" else (other, without)
            if book_checksum(*pair) == expected:
                return (
                    f"the book holds a {side} level Kraken does not: {text(levels[index])} "
                    "(a missed delete, or a level kept past the subscribed depth)"
                )
    if entries and pp is not None and qp is not None:
        found = _entry_cause(asks, bids, entries, pp, qp, expected)
        if found:
            return found
    window = min(CHECKSUM_LEVELS, depth or CHECKSUM_LEVELS)
    for side, levels in (("bid", bids), ("ask", asks)):
        if 0 < len(levels) < window:
            return (
                f"the book holds only {len(levels)} {side} levels where the checksum covers "
                f"{window}: a level beyond the book's depth came into the window (a deeper "
                "subscription than the book's depth?) or a level was missed"
            )
    if recv_ts_ns >= 0 and previous_recv_ts_ns >= 0 and recv_ts_ns - previous_recv_ts_ns > GAP_NS:
        gap = (recv_ts_ns - previous_recv_ts_ns) / 1e9
        return f"a gap of {gap:.0f}s in receive times before this frame: frames were missed"
    return (
        "no cheap re-check explains it: a frame was missed or altered since the last verified state"
    )


def _precision_cause(asks: list[Level], bids: list[Level], pp: int, qp: int, expected: int) -> str:
    candidates = sorted(
        ((p, q) for p in range(_MAX_PRECISION + 1) for q in range(_MAX_PRECISION + 1)),
        key=lambda pq: (pq[0] != pp) + (pq[1] != qp),  # one precision off before both
    )
    for p, q in candidates:
        if (p, q) == (pp, qp):
            continue
        scaled_asks = _rescale(asks, pp, p, qp, q)
        scaled_bids = _rescale(bids, pp, p, qp, q)
        if scaled_asks is None or scaled_bids is None:
            continue
        if book_checksum(scaled_asks, scaled_bids) == expected:
            parts = []
            if p != pp:
                parts.append(f"price precision is {p}, not {pp}")
            if q != qp:
                parts.append(f"qty precision is {q}, not {qp}")
            return " and ".join(parts)
    return ""


def _rescale(levels: list[Level], pp: int, p: int, qp: int, q: int) -> list[Level] | None:
    out = []
    for price, qty in levels:
        new_price, new_qty = _scale(price, pp, p), _scale(qty, qp, q)
        if new_price is None or new_qty is None:
            return None
        out.append((new_price, new_qty))
    return out


def _scale(mantissa: int, old: int, new: int) -> int | None:
    if new >= old:
        return mantissa * int(10 ** (new - old))
    factor = int(10 ** (old - new))
    if mantissa % factor:
        return None  # the digits Kraken sent could not have been at this precision
    return mantissa // factor


def _entry_cause(
    asks: list[Level],
    bids: list[Level],
    entries: Sequence[tuple[str, str, str]],
    pp: int,
    qp: int,
    expected: int,
) -> str:
    from ..numbers import parse_mantissa

    for side, price_text, qty_text in entries:
        try:
            price = parse_mantissa(price_text, pp)
            qty = parse_mantissa(qty_text, qp)
        except Exception:
            continue
        levels = asks if side == "ask" else bids
        rest = [level for level in levels if level[0] != price]
        variants = [rest]
        if qty:
            variants.append(sorted([*rest, (price, qty)], reverse=side == "bid"))
        for variant in variants:
            pair = (variant, bids) if side == "ask" else (asks, variant)
            if book_checksum(*pair) == expected:
                held = next((lvl for lvl in levels if lvl[0] == price), None)
                state = "lacks" if held is None else "holds another quantity at"
                return (
                    f"the book {state} the {side} level {price_text} the checksum implies "
                    "(a frame for it was missed)"
                )
    return ""


def _level3_cause(book: Any, expected: int) -> str:
    pp, qp = book.price_precision, book.qty_precision
    if pp is None or qp is None:
        return ""

    def side(name: str, levels: list[Level], p: int, q: int) -> list[tuple[int, list[int]]] | None:
        out = []
        for price, _ in levels:
            qtys = [qty for _, qty, _ in book.level_orders(name, price)]
            scaled_price = _scale(price, pp, p)
            scaled = [_scale(qty, qp, q) for qty in qtys]
            if scaled_price is None or any(s is None for s in scaled):
                return None
            out.append((scaled_price, [s for s in scaled if s is not None]))
        return out

    asks, bids = book.asks(CHECKSUM_LEVELS), book.bids(CHECKSUM_LEVELS)
    for p in range(_MAX_PRECISION + 1):
        for q in range(_MAX_PRECISION + 1):
            if (p, q) == (pp, qp):
                continue
            a, b = side("ask", asks, p, q), side("bid", bids, p, q)
            if a is not None and b is not None and level3_checksum(a, b) == expected:
                parts = [f"price precision is {p}, not {pp}"] if p != pp else []
                if q != qp:
                    parts.append(f"qty precision is {q}, not {qp}")
                return " and ".join(parts)
    return "no cheap re-check explains it: an order event was missed or altered"


def _text(book: Any) -> Any:
    pp, qp = book.price_precision or 0, book.qty_precision or 0

    def text(level: Level) -> str:
        return f"{mantissa_text(level[0], pp)} x {mantissa_text(level[1], qp)}"

    return text


def _entries(scanner: Any) -> list[tuple[str, str, str]]:
    entries = []
    for side, items in (("bid", scanner.bids), ("ask", scanner.asks)):
        for entry in items:
            entries.append((side, str(entry.price), str(entry.qty)))
    return entries


def _frame_entries(frame: bytes | str | None) -> list[tuple[str, str, str]] | None:
    """A raw v2 book frame's levels (numbers as their text), or None when it is not one."""
    if frame is None:
        return None
    try:
        data = json.loads(frame, parse_float=str, parse_int=str)["data"][0]
        return [
            (side, str(level["price"]), str(level["qty"]))
            for side, key in (("bid", "bids"), ("ask", "asks"))
            for level in data.get(key, ())
        ]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def _frame_from_scanner(scanner: Any) -> str:
    """The failing frame as the scanner read it (the session's slow path keeps no raw text)."""
    entries = _entries(scanner)
    return json.dumps(
        {
            "scanned": True,
            "symbol": scanner.symbol,
            "type": "snapshot" if scanner.is_snapshot else "update",
            "bids": [[price, qty] for side, price, qty in entries if side == "bid"],
            "asks": [[price, qty] for side, price, qty in entries if side == "ask"],
            "checksum": scanner.checksum,
        }
    )


def _bounded(frame: bytes | str) -> str:
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    if len(text) > MAX_FRAME_CHARS:
        return text[:MAX_FRAME_CHARS] + f"... ({len(text)} chars)"
    return text
