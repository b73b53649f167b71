"""Independent test helpers for L2 books: number rendering, Kraken frame builders and a model of
a Kraken publisher.

Nothing here imports the code under test except ``bookengine.checksum``, the plain statement of
Kraken's CRC32 rule that the brief allows as an oracle. Prices and quantities are int mantissas
at the symbol's scale everywhere.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from bookengine.checksum import book_checksum

Level = tuple[int, int]
"""(price mantissa, qty mantissa)."""

INT64_MAX = (1 << 63) - 1

NUMBER_STYLES = ("padded", "plain", "extra_zeros", "exponent", "int_exponent")


# -- numbers ------------------------------------------------------------------------------------


def fixed_text(mantissa: int, scale: int) -> str:
    """Plain decimal text with exactly ``scale`` fractional digits (v1 wire form)."""
    digits = str(mantissa).rjust(scale + 1, "0")
    if scale == 0:
        return digits
    return f"{digits[:-scale]}.{digits[-scale:]}"


def render_number(mantissa: int, scale: int, style: str, rng: random.Random | None = None) -> str:
    """Number text for ``mantissa * 10**-scale`` in one of the forms seen on Kraken's wire.

    ``padded``: ``29430.20``; ``plain``: trailing zeros dropped (``4.0``, ``0.001``, ``4``);
    ``extra_zeros``: more zeros than the scale; ``exponent``: ``5.325e-05`` (random e/E, sign,
    exponent zero padding); ``int_exponent``: ``294302e-1``.
    """
    rng = rng or random.Random(0)
    padded = fixed_text(mantissa, scale)
    if style == "padded":
        return padded
    if style == "extra_zeros":
        return (padded if scale else padded + ".") + "0" * rng.randint(1, 4)
    if style == "plain":
        if scale == 0:
            return padded if rng.random() < 0.5 else padded + ".0"
        whole, fraction = padded.split(".")
        fraction = fraction.rstrip("0")
        if fraction:
            return f"{whole}.{fraction}"
        return whole if rng.random() < 0.5 else whole + ".0"
    if style == "int_exponent":
        marker = rng.choice("eE")
        if scale == 0:
            return f"{mantissa}{marker}{rng.choice(['', '+', '-'])}0"
        return f"{mantissa}{marker}-{scale}"
    if style == "exponent":
        if mantissa == 0:
            return rng.choice(["0e0", "0.0E+5", "0e-3"])
        digits = str(mantissa)
        significant = digits.rstrip("0")
        stripped = len(digits) - len(significant)
        exponent = len(significant) - 1 + stripped - scale
        head = significant[0] + ("." + significant[1:] if len(significant) > 1 else "")
        sign = "-" if exponent < 0 else rng.choice(["", "+"])
        width = rng.choice([1, 2, 3])
        return f"{head}{rng.choice('eE')}{sign}{abs(exponent):0{width}d}"
    raise ValueError(style)


def number_value(text: str, as_string: bool) -> str:
    """The JSON text of a number field: a bare JSON number or a JSON string holding it."""
    return f'"{text}"' if as_string else text


# -- frames -------------------------------------------------------------------------------------


def v2_levels_json(
    levels: Sequence[Level],
    pp: int,
    qp: int,
    rng: random.Random,
    styles: Sequence[str] = NUMBER_STYLES,
    string_rate: float = 0.2,
) -> str:
    parts = []
    for price, qty in levels:
        p = number_value(
            render_number(price, pp, rng.choice(styles), rng), rng.random() < string_rate
        )
        q = number_value(
            render_number(qty, qp, rng.choice(styles), rng), rng.random() < string_rate
        )
        parts.append(f'{{"price":{p},"qty":{q}}}')
    return "[" + ",".join(parts) + "]"


def v2_book_frame(
    symbol: str,
    is_snapshot: bool,
    bids: Sequence[Level],
    asks: Sequence[Level],
    checksum: int | None,
    pp: int,
    qp: int,
    rng: random.Random | None = None,
    *,
    styles: Sequence[str] = NUMBER_STYLES,
    string_rate: float = 0.2,
    quote_checksum: bool = False,
) -> str:
    """A v2 ``book`` frame as Kraken sends it (numbers rendered at the given scales)."""
    rng = rng or random.Random(0)
    body = [
        f'"symbol":{json.dumps(symbol)}',
        f'"bids":{v2_levels_json(bids, pp, qp, rng, styles, string_rate)}',
        f'"asks":{v2_levels_json(asks, pp, qp, rng, styles, string_rate)}',
    ]
    if checksum is not None:
        body.append(f'"checksum":"{checksum}"' if quote_checksum else f'"checksum":{checksum}')
    body.append('"timestamp":"2023-07-30T15:30:00.123456Z"')
    kind = "snapshot" if is_snapshot else "update"
    return f'{{"channel":"book","type":"{kind}","data":[{{{",".join(body)}}}]}}'


def v1_levels(levels: Sequence[tuple[int, int, bool]], pp: int, qp: int) -> list[list[str]]:
    out = []
    for index, (price, qty, republish) in enumerate(levels):
        level = [fixed_text(price, pp), fixed_text(qty, qp), f"1690730998.{index:06d}"]
        if republish:
            level.append("r")
        out.append(level)
    return out


def v1_snapshot_frame(
    pair: str, depth: int, bids: Sequence[Level], asks: Sequence[Level], pp: int, qp: int
) -> str:
    payload = {
        "as": v1_levels([(p, q, False) for p, q in asks], pp, qp),
        "bs": v1_levels([(p, q, False) for p, q in bids], pp, qp),
    }
    return json.dumps([336, payload, f"book-{depth}", pair])


def v1_update_frame(
    pair: str,
    depth: int,
    bids: Sequence[tuple[int, int, bool]],
    asks: Sequence[tuple[int, int, bool]],
    checksum: int,
    pp: int,
    qp: int,
    rng: random.Random | None = None,
) -> str:
    """A v1 update: ``a``/``b`` in one payload or two, ``c`` quoted in the last payload."""
    rng = rng or random.Random(0)
    a, b = v1_levels(asks, pp, qp), v1_levels(bids, pp, qp)
    c = str(checksum)
    payloads: list[dict[str, object]]
    if a and b and rng.random() < 0.7:
        payloads = [{"a": a}, {"b": b, "c": c}]
    else:
        payload: dict[str, object] = {}
        if a or not b:
            payload["a"] = a
        if b:
            payload["b"] = b
        payload["c"] = c
        payloads = [payload]
    return json.dumps([336, *payloads, f"book-{depth}", pair])


# -- the model ----------------------------------------------------------------------------------


def top(levels: dict[int, int], side: str, n: int) -> list[Level]:
    """Best ``n`` levels of one side, best first."""
    prices = sorted(levels, reverse=side == "bid")[:n]
    return [(price, levels[price]) for price in prices]


def window_checksum(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """Kraken CRC32 of a book given best-first levels (top 10 per side)."""
    return book_checksum(list(asks)[:10], list(bids)[:10])


@dataclass
class Message:
    is_snapshot: bool
    bids: list[tuple[int, int, bool]]
    """(price, qty, republished) in array order."""
    asks: list[tuple[int, int, bool]]
    window_bids: list[Level]
    window_asks: list[Level]

    @property
    def checksum(self) -> int:
        return window_checksum(self.window_bids, self.window_asks)

    def plain(self, side: str) -> list[Level]:
        return [(p, q) for p, q, _ in (self.bids if side == "bid" else self.asks)]


@dataclass
class KrakenPublisher:
    """An exchange book deeper than the subscribed window and the messages Kraken would send.

    Every step changes 1-4 levels of the exchange book (inserts near the touch and beyond the
    window, quantity changes, deletions inside the window and beyond) and publishes, change by
    change, what a subscriber needs: the deleted levels it holds (qty 0), then every window level
    it lacks or holds with a stale quantity (the backfill, flagged ``r``). Levels that merely
    fall out of the window are never sent. Occasionally a price is sent twice in one message with
    the real value last. The publisher tracks the subscriber's untruncated view, so the rule
    "apply in order, truncate after the whole message" reproduces the exchange's window exactly.
    """

    rng: random.Random
    depth: int
    pp: int
    qp: int
    max_levels: int | None = None
    """Cap on the exchange's levels per side (thin books when below 10)."""
    duplicate_rate: float = 0.1
    mid: int = 0
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    _seen: dict[str, dict[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.mid:
            # far enough from 0 that the deepest bid stays positive
            self.mid = self.rng.randint(10**self.pp, 10 ** (self.pp + 6)) + 6 * self.depth + 10
        cap = self.max_levels if self.max_levels is not None else self.depth + 20
        for side in ("bid", "ask"):
            book = self._side(side)
            count = cap if self.rng.random() < 0.5 else self.rng.randint(min(cap, 1), cap)
            while len(book) < count:
                price = self._price(side, far=self.rng.random() < 0.5)
                book[price] = self._qty()

    # -- generation ------------------------------------------------------------------------

    def _side(self, side: str) -> dict[int, int]:
        return self.bids if side == "bid" else self.asks

    def _qty(self) -> int:
        return self.rng.randint(1, 10 ** (self.qp + self.rng.randint(0, 5)))

    def _price(self, side: str, far: bool) -> int:
        span = 5 * self.depth if far else max(2, self.depth // 2)
        offset = self.rng.randint(0, span)
        # bids below mid, asks at or above: the book never crosses
        return self.mid - 1 - offset if side == "bid" else self.mid + offset

    def window(self, side: str) -> list[Level]:
        return top(self._side(side), side, self.depth)

    def snapshot(self) -> Message:
        bids, asks = self.window("bid"), self.window("ask")
        self._seen = {"bid": dict(bids), "ask": dict(asks)}
        return Message(
            True,
            [(p, q, False) for p, q in bids],
            [(p, q, False) for p, q in asks],
            bids,
            asks,
        )

    def _change(self, side: str) -> None:
        book = self._side(side)
        window = [p for p, _ in self.window(side)]
        beyond = sorted(set(book) - set(window))
        action = self.rng.choice(
            ["insert_near", "insert_far", "modify", "modify_far", "delete", "delete", "delete_far"]
        )
        cap = self.max_levels
        if action.startswith("insert") and (cap is None or len(book) < cap):
            price = self._price(side, far=action == "insert_far")
            book[price] = self._qty()
        elif action == "modify" and window:
            book[self.rng.choice(window)] = self._qty()
        elif action == "modify_far" and beyond:
            book[self.rng.choice(beyond)] = self._qty()
        elif action == "delete" and window:
            del book[self.rng.choice(window)]
        elif action == "delete_far" and beyond:
            del book[self.rng.choice(beyond)]
        elif book and self.rng.random() < 0.5:
            del book[self.rng.choice(sorted(book))]
        else:
            book[self._price(side, far=False)] = self._qty()

    def _publish(self, side: str, out: list[tuple[int, int, bool]]) -> None:
        seen = self._seen[side]
        book = self._side(side)
        deleted = [p for p in seen if p not in book]
        for price in deleted:
            self._emit(out, seen, price, 0, False)
        for price, qty in self.window(side):
            if seen.get(price) != qty:
                self._emit(out, seen, price, qty, bool(deleted) and price not in seen)

    def _emit(
        self, out: list[tuple[int, int, bool]], seen: dict[int, int], price: int, qty: int, r: bool
    ) -> None:
        if self.rng.random() < self.duplicate_rate:
            # the same price twice in one message: set-then-set, set-then-delete, delete-then-set
            junk = 0 if self.rng.random() < 0.5 else self._qty()
            out.append((price, junk, False))
        out.append((price, qty, r))
        if qty:
            seen[price] = qty
        else:
            seen.pop(price, None)

    def update(self) -> Message:
        out: dict[str, list[tuple[int, int, bool]]] = {"bid": [], "ask": []}
        for _ in range(self.rng.randint(1, 4)):
            side = self.rng.choice(["bid", "ask"])
            self._change(side)
            self._publish(side, out[side])
        bids, asks = self.window("bid"), self.window("ask")
        for side, window in (("bid", bids), ("ask", asks)):
            # the subscriber truncates after the message: what it keeps is the window
            self._seen[side] = dict(window)
        return Message(False, out["bid"], out["ask"], bids, asks)

    # -- rendering -------------------------------------------------------------------------

    def v2_frame(self, symbol: str, message: Message, **kwargs: object) -> str:
        return v2_book_frame(
            symbol,
            message.is_snapshot,
            message.plain("bid"),
            message.plain("ask"),
            message.checksum,
            self.pp,
            self.qp,
            self.rng,
            **kwargs,  # type: ignore[arg-type]
        )

    def v1_frame(self, pair: str, message: Message) -> str:
        if message.is_snapshot:
            return v1_snapshot_frame(
                pair, self.depth, message.window_bids, message.window_asks, self.pp, self.qp
            )
        return v1_update_frame(
            pair,
            self.depth,
            message.bids,
            message.asks,
            message.checksum,
            self.pp,
            self.qp,
            self.rng,
        )
