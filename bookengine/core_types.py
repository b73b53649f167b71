"""What the compiled core (``bookengine._core``) and the reference (``bookengine._reference``)
share: frame kinds, event and side codes, the router's stop codes, the scanner's limits, the
value types the books return, and the validation and error messages of level3 entries.

Both implementations import these names from here and nowhere else, so they cannot disagree on
a number or on the words of an error. The Cython modules keep C-level copies of the codes
(``cdef enum`` in their ``.pxd``) for speed; each checks them against this module when it is
imported, and ``tests/test_core_types.py`` checks them as well.

The functions at the bottom (entry parsing and error builders) serve the two implementations;
they are not a user API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .checksum import CHECKSUM_LEVELS as CHECKSUM_LEVELS
from .errors import BookError, CrossedBookError, OrderError, PrecisionError, ProtocolError
from .numbers import NumberLike, parse_mantissa
from .timestamps import parse_rfc3339_ns

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# -- frame kinds: what FrameScanner.scan() returns ---------------------------------------------

KIND_OTHER = 0
"""Anything that is not book data: control frames, acks, instrument, heartbeat, trade...
(the line reader reads trades and heartbeats itself, before the scanner)."""
KIND_BOOK = 1
"""v2 ``book`` snapshot or update."""
KIND_LEVEL3 = 2
"""v2 ``level3`` snapshot or update."""
KIND_V1_BOOK = 3
"""v1 ``book-N`` array frame."""

# -- level3 entry events (Entry.event) -----------------------------------------------------------

EVENT_NONE = 0
"""An L2 entry, or a v1 level: no event."""
EVENT_ADD = 1
EVENT_MODIFY = 2
EVENT_DELETE = 3
EVENT_NAMES = {EVENT_ADD: "add", EVENT_MODIFY: "modify", EVENT_DELETE: "delete"}
"""Event code -> the word Kraken writes in ``event``."""
EVENT_CODES = {name: code for code, name in EVENT_NAMES.items()}
"""The word Kraken writes in ``event`` -> event code."""

# -- the depths Kraken serves (the books accept any positive depth) -----------------------------

BOOK_DEPTHS = (10, 25, 100, 500, 1000)
"""Depths of the ``book`` channel (v2 and v1)."""
LEVEL3_DEPTHS = (10, 100, 1000)
"""Depths of the ``level3`` channel."""

# -- sides ---------------------------------------------------------------------------------------

SIDE_BID = 0
SIDE_ASK = 1
SIDE_WORDS = ("bid", "ask")
"""``OrderInfo.side`` and the ``side`` argument of queries use these words."""
SIDE_KEYS = ("bids", "asks")
"""The frame's array names, per side code."""

# -- line formats the reader understands ---------------------------------------------------------

LINES_KRAKEN = 0
"""bookengine's own captures: a bare frame, or ``recv_ts_ns<TAB>frame`` (other time forms,
headers, checkpoints and sent requests go to the capture layer)."""
LINES_TARDIS = 1
"""tardis.dev raw data-feed slices: ``2023-07-30T15:30:00.0292860Z <frame>``; a blank line is
a disconnect."""
LINES_CRYPTOFEED = 2
"""cryptofeed raw recordings: ``<unix time>: <frame>``; its header and sent-request lines go
to the capture layer."""

# -- why the line reader stopped (BookRouter.apply_lines) -----------------------------------------

STOP_END = 0
"""Every line was consumed."""
STOP_HANDOFF = 1
"""A frame for the session's Python path (consumed; see ``span_start``/``span_stop``)."""
STOP_MISMATCH = 2
"""A routed book's message was applied but its checksum failed (consumed; see ``failure``)."""
STOP_CROSSED = 3
"""A routed L2 book's message was applied and left the book crossed (consumed)."""
STOP_LINE = 4
"""A line that is not a received frame in this format: the capture layer's (consumed)."""
STOP_APPLIED = 5
"""A book message was applied to a book whose events are wanted (consumed; see ``applied``)."""
STOP_TIME = 6
"""The next line was received after the time limit (not consumed)."""

# -- what a level3 message did to the queues (kraken.events re-exports it) --------------------


class OrderEffect(NamedTuple):
    """What one entry of an applied ``level3`` update did to its order's queue.

    An L3 book that records effects (``book.record_effects = True``; a session with
    ``level3_effects=True`` switches it on for its level3 books) leaves one record per entry of
    each update it applies, in entry order (bids then asks, array order), then one ``truncate``
    record per order that fell out of the subscribed depth. ``book.effects()`` returns them
    until the next message; the session attaches them to the message's :class:`BookChanged`.

    ``action``:

    * ``add``: the order joined the back of its level (creating it);
    * ``modify``: its quantity changed in place, keeping its place in the queue (the book's
      rule for a same-price modify, increases included: see kraken-protocol.md);
    * ``delete``: it left the book (a ``delete``, or a ``modify`` to quantity 0);
    * ``requeue``: it lost its place: a ``modify`` to another price (it joins the back of the
      new level), or a ``delete`` whose order id is added again later in the same message
      (this record is the delete's; ``new_price``/``qty_after`` are the re-add's, and the
      re-add has its own ``add`` record);
    * ``truncate``: it fell out of the subscribed depth after the message (no entry named it).

    Numbers are mantissas. ``orders_ahead``/``qty_ahead``/``level_index`` describe the book
    just before this entry (after the entries before it): for an ``add``, the whole level it
    joins is ahead of it and ``level_index`` is the index its level has or takes. For a
    ``truncate``, they are the order's place when the entries were done (a dropped level
    leaves whole: the orders of the same batch ahead of it count).

    Snapshots leave no effects (a snapshot replaces the book: ``BookChanged.is_snapshot``
    says so), nor does a refused message (it is rolled back).
    """

    action: str
    """``add``, ``modify``, ``delete``, ``requeue`` or ``truncate``."""
    event: str
    """The entry's wire event (``add``, ``modify``, ``delete``); "" for ``truncate``."""
    side: str
    """``"bid"`` or ``"ask"``."""
    order_id: str
    price: int
    """The price it rested at before the entry (an ``add``: its price)."""
    new_price: int
    """The price it rests at after the entry; -1 when it left the book."""
    qty_before: int
    """0 for an ``add``."""
    qty_after: int
    """0 when it left the book."""
    orders_ahead: int
    qty_ahead: int
    level_index: int
    """0 for the best level of its side."""
    timestamp_ns: int
    """The entry's own timestamp, ns since the epoch; -1 when absent (and for ``truncate``)."""
    message_ts_ns: int
    """The message's timestamp (``data[0].timestamp``), ns since the epoch; -1 when absent."""


NO_EFFECTS: tuple[OrderEffect, ...] = ()


# -- scanner limits ------------------------------------------------------------------------------

MAX_NESTING = 64
"""Deepest nesting of arrays and objects accepted (Kraken's frames nest 5 deep)."""
MAX_V1_ELEMENTS = 16
"""Most elements a v1 book array may have (channel id, payloads, channel name, pair)."""

# CHECKSUM_LEVELS (from bookengine.checksum): levels per side that Kraken's checksum covers.


def check_compiled_codes(codes: Mapping[str, int], module: str) -> None:
    """Called by each compiled module at import with its C-level copies of the codes above.

    Raises:
        ImportError: a code differs (or is not one of this module's): the extension was built
            from other sources than this module and must be rebuilt.
    """
    wrong = {
        name: (value, globals().get(name))
        for name, value in codes.items()
        if not name.isupper() or globals().get(name) != value
    }
    if wrong:
        raise ImportError(
            f"{module} was compiled with codes that differ from bookengine.core_types "
            f"(name: (compiled, shared)): {wrong}; rebuild the extension"
        )


# -- value types ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """One level (L2) or one order event (L3) as received. Numbers stay text."""

    price: str
    qty: str
    order_id: str = ""
    event: int = EVENT_NONE
    timestamp: str = ""
    republish: bool = False


class OrderInfo(NamedTuple):
    """Where one resting order stands (returned by ``L3Book.order()``)."""

    order_id: str
    side: str
    """``"bid"`` or ``"ask"``."""
    price: int
    """Price mantissa (scale ``price_precision``)."""
    qty: int
    """Remaining visible quantity mantissa (scale ``qty_precision``)."""
    timestamp_ns: int
    """Time of the last add/modify that carried a timestamp, ns since the epoch; -1 if none."""
    level_index: int
    """0 for the best price level of its side."""
    position: int
    """0 for the front of its level's queue."""


class QueuePosition(NamedTuple):
    """An order's place in its level's FIFO queue (returned by ``L3Book.queue_position()``)."""

    orders_ahead: int
    qty_ahead: int
    qty_behind: int
    level_orders: int
    level_qty: int


class Book(Protocol):
    """What every book offers, L2 or L3, compiled or reference: ``bookengine.L2Book`` and
    ``bookengine.L3Book`` both satisfy it. Prices and quantities are int mantissas at the
    book's precisions; the ``*_text``/``*_decimal`` methods turn them into decimals."""

    @property
    def symbol(self) -> str: ...
    @property
    def depth(self) -> int: ...
    @property
    def price_precision(self) -> int | None: ...
    @property
    def qty_precision(self) -> int | None: ...
    @property
    def bid_levels(self) -> int: ...
    @property
    def ask_levels(self) -> int: ...
    def __len__(self) -> int: ...
    def bids(self, n: int | None = None) -> list[tuple[int, int]]: ...
    def asks(self, n: int | None = None) -> list[tuple[int, int]]: ...
    def bids_array(self, n: int | None = None) -> npt.NDArray[np.int64]: ...
    def asks_array(self, n: int | None = None) -> npt.NDArray[np.int64]: ...
    def best_bid(self) -> tuple[int, int] | None: ...
    def best_ask(self) -> tuple[int, int] | None: ...
    def qty_at(self, side: str, price: int) -> int: ...
    def checksum(self) -> int: ...
    def clear(self) -> None: ...
    def price_text(self, price: int) -> str: ...
    def qty_text(self, qty: int) -> str: ...
    def price_decimal(self, price: int) -> Decimal: ...
    def qty_decimal(self, qty: int) -> Decimal: ...
    def levels_text(self, side: str, n: int | None = None) -> list[tuple[str, str]]: ...
    def spread(self) -> int | None: ...
    def is_crossed(self) -> bool: ...


class OrderEntry(NamedTuple):
    """One validated level3 entry of a message, numbers as mantissas."""

    side: int
    entry: int
    """Index of the entry in its side's array (for error messages)."""
    order_id: str
    event: int
    price: int
    qty: int
    timestamp_ns: int | None
    """None when the entry carried no timestamp."""


# -- argument checks -------------------------------------------------------------------------------


def check_depth(depth: int) -> int:
    """Return ``depth`` if it is a positive int.

    Raises:
        BookError: if it is not.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise BookError(f"depth must be a positive integer, got {depth!r}")
    return depth


def check_checksum_argument(symbol: str, checksum: object) -> int:
    """Return ``checksum`` if it is an unsigned 32-bit int (the Python API's argument).

    Raises:
        ProtocolError: if it is not.
    """
    if isinstance(checksum, bool) or not isinstance(checksum, int) or not 0 <= checksum < 2**32:
        raise ProtocolError(f"{symbol}: checksum must be an unsigned 32-bit int, got {checksum!r}")
    return checksum


# -- level3 entries: parsing (both books' slow paths) --------------------------------------------


def where(symbol: str, side: int, index: int, order_id: str) -> str:
    """How an error names an entry: ``"BTC/USD: bids[3] order OABC"``."""
    return f"{symbol}: {SIDE_KEYS[side]}[{index}] order {order_id}"


def parse_fields(
    symbol: str,
    side: int,
    index: int,
    order_id: str,
    price: NumberLike,
    qty: NumberLike,
    timestamp: str,
    event: int,
    is_snapshot: bool,
    price_scale: int,
    qty_scale: int,
) -> OrderEntry:
    """Validate one entry's values in a fixed order: limit_price, order_qty, timestamp, event.

    Raises:
        PrecisionError: a number that does not fit its scale.
        TypeError: a float (or another non-number) given through the Python API.
        ProtocolError: a bad timestamp, or a snapshot entry that is not an ``add``.
    """
    at = where(symbol, side, index, order_id)
    price_m = parse_mantissa(price, price_scale, f"{at}: limit_price")
    qty_m = parse_mantissa(qty, qty_scale, f"{at}: order_qty")
    timestamp_ns = parse_entry_timestamp(timestamp, at) if timestamp else None
    if is_snapshot and event != EVENT_ADD:
        name = EVENT_NAMES[event]
        raise ProtocolError(f"{at}: a snapshot holds resting orders, not {name} events")
    return OrderEntry(side, index, order_id, event, price_m, qty_m, timestamp_ns)


def parse_entry_timestamp(text: str, at: str) -> int:
    """An entry's RFC 3339 ``timestamp`` in ns; the error names the entry ``at``."""
    try:
        return parse_rfc3339_ns(text)
    except ProtocolError as exc:
        raise ProtocolError(f"{at}: timestamp: {exc}") from None


def parse_mappings(
    symbol: str,
    bids: Iterable[Any],
    asks: Iterable[Any],
    is_snapshot: bool,
    price_scale: int,
    qty_scale: int,
) -> list[OrderEntry]:
    """The Python-object API's input (``apply_snapshot``/``apply_update``) -> validated entries,
    bids then asks."""
    entries = []
    for side, items in ((SIDE_BID, bids), (SIDE_ASK, asks)):
        if isinstance(items, str | bytes | Mapping):
            raise ProtocolError(f"{symbol}: '{SIDE_KEYS[side]}' must be a sequence of mappings")
        for index, item in enumerate(items):
            order_id, price, qty, timestamp, event = mapping_fields(
                symbol, side, index, item, is_snapshot
            )
            entries.append(
                parse_fields(
                    symbol,
                    side,
                    index,
                    order_id,
                    price,
                    qty,
                    timestamp,
                    event,
                    is_snapshot,
                    price_scale,
                    qty_scale,
                )
            )
    return entries


def mapping_fields(
    symbol: str, side: int, index: int, item: Any, is_snapshot: bool
) -> tuple[str, Any, Any, str, int]:
    """One mapping's ``(order_id, limit_price, order_qty, timestamp, event)``, keys checked."""
    at = f"{symbol}: {SIDE_KEYS[side]}[{index}]"
    if not isinstance(item, Mapping):
        raise ProtocolError(f"{at}: expected a mapping, got {type(item).__name__}")
    for key in ("order_id", "limit_price", "order_qty"):
        if key not in item:
            raise ProtocolError(f"{at}: needs '{key}'")
    order_id = item["order_id"]
    if not isinstance(order_id, str) or not order_id:
        raise ProtocolError(f"{at}.order_id: expected a non-empty string")
    name = item.get("event")
    if name is None:
        if not is_snapshot:
            raise ProtocolError(f"{at}: update entry needs 'event'")
        event = EVENT_ADD
    elif isinstance(name, str) and name in EVENT_CODES:
        event = EVENT_CODES[name]
    else:
        raise ProtocolError(f"{at}.event: expected add, modify or delete, got {name!r}")
    timestamp = item.get("timestamp")
    if timestamp is None:
        timestamp = ""
    elif not isinstance(timestamp, str):
        raise ProtocolError(f"{at}.timestamp: expected RFC 3339 text")
    return order_id, item["limit_price"], item["order_qty"], timestamp, event


# -- level3 errors: the same words from both books -------------------------------------------------


def zero_add_error(at: str) -> OrderError:
    return OrderError(f"{at}: add with order_qty 0 (a resting order has a quantity)")


def duplicate_error(at: str, resting_side: int) -> OrderError:
    return OrderError(
        f"{at}: duplicate add: the order already rests on the {SIDE_WORDS[resting_side]} side"
    )


def unknown_error(at: str, event_name: str) -> OrderError:
    return OrderError(f"{at}: {event_name} of an order that is not in the book")


def wrong_side_error(at: str, event_name: str, resting_side: int) -> OrderError:
    return OrderError(
        f"{at}: {event_name} on the wrong side: the order rests on the "
        f"{SIDE_WORDS[resting_side]} side"
    )


def overflow_error(at: str, price_text: str) -> PrecisionError:
    return PrecisionError(f"{at}: total quantity at {price_text} would overflow int64")


def crossed_error(
    symbol: str, entries: Sequence[OrderEntry], bid: int, ask: int, bid_text: str, ask_text: str
) -> CrossedBookError:
    """Name the last entry that put an order at the crossing best bid or best ask.

    The book was not crossed before the message, so one of the two best prices is new and
    some entry of the message placed an order there; the last one is the most likely culprit.
    """
    message = f"the book would be crossed: best bid {bid_text} >= best ask {ask_text}"
    for e in reversed(entries):
        if (
            e.event != EVENT_DELETE
            and e.qty > 0
            and e.price == (bid if e.side == SIDE_BID else ask)
        ):
            return CrossedBookError(f"{where(symbol, e.side, e.entry, e.order_id)}: {message}")
    return CrossedBookError(f"{symbol}: {message}")
