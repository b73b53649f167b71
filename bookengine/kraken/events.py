"""What a :class:`~bookengine.kraken.session.KrakenSession` reports about the frames it receives.

Events are small frozen records, one or two per frame (never one per level). Books are handed
out by reference: read them before the next frame is received, or copy what you need.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..core_types import NO_EFFECTS as NO_EFFECTS
from ..core_types import OrderEffect as OrderEffect

MAKER_SIDE = {"buy": "ask", "sell": "bid"}
"""Taker side of a trade -> the book side (``"bid"``/``"ask"``) whose resting order traded."""


@dataclass(frozen=True, slots=True)
class BookChanged:
    """A book message was applied (and its checksum verified when it carried one)."""

    key: str
    """``"<channel>:<symbol>"``, e.g. ``"book:BTC/USD"``."""
    symbol: str
    book: Any
    """The live book (an ``L2Book`` or ``L3Book``); valid until the next frame."""
    recv_ts_ns: int
    is_snapshot: bool
    checksum_verified: bool
    conflated: int = 0
    """Earlier changes of this book merged into this event because the consumer lagged."""
    effects: tuple[OrderEffect, ...] = ()
    """level3 updates, when the session records effects: what each entry did to the queues
    (see :class:`OrderEffect`); empty otherwise, and for snapshots."""


class _MutableBookChanged:
    """BookChanged's slot layout without the frozen ``__setattr__``: see new_book_changed."""

    __slots__ = BookChanged.__slots__

    def __init__(
        self,
        key: str,
        symbol: str,
        book: Any,
        recv_ts_ns: int,
        is_snapshot: bool,
        checksum_verified: bool,
        effects: tuple[OrderEffect, ...],
    ) -> None:
        self.key = key
        self.symbol = symbol
        self.book = book
        self.recv_ts_ns = recv_ts_ns
        self.is_snapshot = is_snapshot
        self.checksum_verified = checksum_verified
        self.conflated = 0
        self.effects = effects


def new_book_changed(
    key: str,
    symbol: str,
    book: Any,
    recv_ts_ns: int,
    is_snapshot: bool,
    checksum_verified: bool,
    effects: tuple[OrderEffect, ...] = NO_EFFECTS,
) -> BookChanged:
    """``BookChanged(key, symbol, book, recv_ts_ns, is_snapshot, checksum_verified, effects=...)``,
    faster.

    The session makes one BookChanged per book frame. A frozen dataclass's ``__init__`` stores
    each field through ``object.__setattr__`` (1.5 us for its eight fields on the 2-vCPU bench
    machine); plain slot stores on a twin with the same layout, then switching its class, take
    0.5 us. The result is a real BookChanged: frozen, equal and hashed like the constructor's
    (CPython refuses the class switch with TypeError if the two layouts ever differ).
    """
    event: Any = _MutableBookChanged(
        key, symbol, book, recv_ts_ns, is_snapshot, checksum_verified, effects
    )
    event.__class__ = BookChanged
    return event  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class ChecksumMismatch:
    """A message was applied but the book's CRC32 differs from Kraken's: the book is stale."""

    key: str
    symbol: str
    expected: int
    computed: int
    recv_ts_ns: int
    top_levels: tuple[tuple[str, str, str], ...] = ()
    """The book's top 10 asks (best first) then bids after the failing message, as
    ``(side, price, qty)`` exact decimal text."""
    frames: tuple[str, ...] = ()
    """The raw frame(s) since the last verified state (bounded; see ``kraken.forensics``)."""
    likely_cause: str = ""
    """The first cheap re-check that explains Kraken's checksum, as a sentence ("price
    precision is 1, not 2"); "" when not examined."""

    @property
    def message(self) -> str:
        """One line: the mismatch and its likely cause."""
        text = (
            f"{self.key}: checksum mismatch: Kraken sent {self.expected}, "
            f"book gives {self.computed}"
        )
        return f"{text}; likely cause: {self.likely_cause}" if self.likely_cause else text

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready record (levels as lists of text)."""
        return {
            "key": self.key,
            "recv_ts_ns": self.recv_ts_ns,
            "expected": self.expected,
            "computed": self.computed,
            "likely_cause": self.likely_cause,
            "top_levels": [list(level) for level in self.top_levels],
            "frames": list(self.frames),
        }


@dataclass(frozen=True, slots=True)
class BookInvalid:
    """A book message could not be applied (bad entry, crossed book, no snapshot yet, ...).

    The book is left as it was and marked stale until a fresh snapshot arrives.
    """

    key: str
    symbol: str
    reason: str
    recv_ts_ns: int


@dataclass(frozen=True, slots=True)
class ResyncRequested:
    """The session queued unsubscribe + subscribe for one stale book (once per episode)."""

    key: str
    symbol: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Subscribed:
    """Kraken acknowledged a subscription for one symbol."""

    channel: str
    symbol: str
    depth: int | None
    req_id: int | None
    rtt_ns: int | None = None
    """Request sent -> ack received, when the request was sent by this session."""
    server_ns: int | None = None
    """Kraken's own time on the request (``time_out - time_in``)."""


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """Kraken acknowledged an unsubscription for one symbol."""

    channel: str
    symbol: str


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """Kraken refused a request (``success: false`` or a v1 error event)."""

    method: str
    error: str
    symbol: str | None
    req_id: int | None


@dataclass(frozen=True, slots=True)
class SystemStatus:
    """``status`` (v2) or ``systemStatus`` (v1): the engine state of the exchange."""

    system: str
    """``online``, ``maintenance``, ``cancel_only`` or ``post_only``."""
    version: str
    connection_id: int | None


@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to an application ping, with round-trip time when the ping was sent here."""

    req_id: int | None
    rtt_ns: int | None
    server_ns: int | None = None
    """Kraken's own time on the ping (``time_out - time_in``)."""


@dataclass(frozen=True, slots=True)
class InstrumentsUpdated:
    """An ``instrument`` snapshot or update set these symbols' precisions."""

    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that is not valid JSON or not shaped like any Kraken message we read."""

    error: str
    recv_ts_ns: int


@dataclass(frozen=True, slots=True)
class Trade:
    """One public trade of the ``trade`` channel, exact (Kraken Spot WebSocket v2).

    ``{"channel": "trade", "type": "update"|"snapshot", "data": [{"symbol", "side", "price",
    "qty", "ord_type", "trade_id", "timestamp"}]}``: ``side`` is the *taker's* side, so a
    ``buy`` took liquidity from the asks.
    """

    symbol: str
    side: str
    """The taker's side, ``"buy"`` or ``"sell"``."""
    price: int
    """Price mantissa (scale: the symbol's price precision)."""
    qty: int
    """Quantity mantissa (scale: the symbol's qty precision)."""
    trade_id: int
    """Kraken's trade id; -1 when absent."""
    timestamp_ns: int
    """Engine time of the trade, ns since the epoch; -1 when absent."""
    recv_ts_ns: int
    ord_type: str = ""
    """The taker order's type, ``"market"`` or ``"limit"`` ("" when absent)."""

    @property
    def book_side(self) -> str:
        """``"bid"`` or ``"ask"``: the side of the book the resting (maker) order was on."""
        return MAKER_SIDE[self.side]


@dataclass(frozen=True, slots=True)
class Trades:
    """The trades of one ``trade`` frame of one symbol (one event per frame, never per trade).

    Trades of a symbol whose precision is not known cannot be made exact: such a frame gives
    no event (the session counts it in ``trades_unpriced``).
    """

    symbol: str
    trades: tuple[Trade, ...]
    price_precision: int
    qty_precision: int
    recv_ts_ns: int
    is_snapshot: bool
    """Kraken replays the last 50 trades on subscribe: history, not news."""


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """One record of the private ``executions`` channel (one own order after one event)."""

    order_id: str
    exec_type: str
    """``pending_new``, ``new``, ``trade``, ``filled``, ``canceled``, ``expired``, ``amended``..."""
    order_status: str
    symbol: str | None
    side: str | None
    """``"buy"`` or ``"sell"`` (None when the record omits it)."""
    order_type: str | None
    """``limit``, ``market``... (None when the record omits it)."""
    order_qty: Decimal | None
    limit_price: Decimal | None
    cum_qty: Decimal | None
    last_qty: Decimal | None
    last_price: Decimal | None
    trade_id: int | None
    liquidity_ind: str | None
    timestamp_ns: int
    recv_ts_ns: int
    is_snapshot: bool


@dataclass(frozen=True, slots=True)
class Executions:
    """The records of one private ``executions`` frame (own orders; exact decimals)."""

    reports: tuple[ExecutionReport, ...]
    recv_ts_ns: int
    is_snapshot: bool


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """The feed connected (or reconnected) and is subscribing; books rebuild from snapshots."""

    url: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The feed lost a connection; every book on it is dropped until its next snapshot."""

    url: str
    reason: str


Event = (
    BookChanged
    | ChecksumMismatch
    | BookInvalid
    | ResyncRequested
    | Subscribed
    | Unsubscribed
    | RequestFailed
    | SystemStatus
    | Pong
    | InstrumentsUpdated
    | BadFrame
    | Trades
    | Executions
    | ConnectionOpened
    | ConnectionLost
)
