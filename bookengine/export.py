"""Export captures to Parquet datasets and LOBSTER files, through the same replay as all else.

``bookengine export CAPTURE_OR_FOLDER... --format parquet|lobster --what l2|l3|trades -o OUT``.

Parquet: Hive-partitioned datasets (:mod:`bookengine.dataset`)
``OUT/<what>/symbol=<SYMBOL, / as ->/date=<YYYY-MM-DD>/part-<export id>-<n>.parquet`` with
``<what>`` ``l2_book`` (``l2_level3``: the aggregated view of level3 books), ``l3_events`` or
``trades``. Exporting again into ``OUT`` adds parts; nothing is overwritten. Every price and
quantity is there twice: float64 in real units (``bid_price_1``, ``price``...) and the exact
int64 mantissa (``bid_price_1_m``, ``price_m``: ``value = mantissa / 10**scale``); ``--decimal``
adds exact ``decimal128`` twins (``*_dec``). Times: ``time`` (``timestamp[ns, tz=UTC]``) beside
the exact ``recv_ts_ns``. The ``symbol`` and ``date`` columns come from the partition folders.
Schema metadata of each part, all values text: ``bookengine.schema`` (``l2-snapshots/2``,
``l3-events/2``, ``trades/2``), ``bookengine.key``, ``bookengine.symbol``,
``bookengine.price_scale``, ``bookengine.qty_scale``, ``bookengine.levels`` (l2),
``bookengine.version``, ``bookengine.sources`` (JSON list of the capture files),
``bookengine.export`` (the export id); each ``*_m`` field also carries ``scale``.

* ``l2`` (:data:`L2_DOC`): one row per book message (default) or per ``--every-ms`` sample
  (grid times are whole multiples of the interval, as everywhere in bookengine).
* ``l3`` (:data:`L3_DOC`): one row per order event, in the order Kraken sent them.
* ``trades`` (:data:`TRADES_DOC`): one row per trade (duplicates from re-sent trade
  snapshots dropped by ``trade_id``).

LOBSTER files (https://lobsterdata.com/info/DataStructure.php), per book, keep their own flat
layout in ``OUT``:
``<TICKER>_<YYYY-MM-DD>_<start>_<end>_message_<N>.csv`` and ``..._orderbook_<N>.csv``
(``TICKER`` = symbol with ``-`` for ``/``; date of the first event, UTC; start/end in whole
seconds after that midnight), plus ``..._orderids.csv`` (LOBSTER id -> Kraken order id) and
``..._meta.json`` (scales, levels, sources). Deviations from equities LOBSTER, documented in
:data:`LOBSTER_DOC`: prices and sizes are the Kraken mantissas (not dollars x 10000, not
shares), time is the receive time, order ids are numbered in order of first appearance.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sortedcontainers import SortedDict

from .analytics.tables import Table
from .boundary import CLIError, ExitCode, check_captures, track_output
from .capture import CaptureRecord
from .dataset import DatasetWriter
from .errors import BookError, UnknownSymbolError
from .instruments import Instruments
from .kraken.events import BookChanged, BookInvalid, ChecksumMismatch, OrderEffect
from .kraken.events import Trades as TradesEvent
from .replay import BookSamples, Replayer, effects_pass
from .units import to_datetime, to_float

L2_DOC = """\
time timestamp[ns,UTC] receive time (sample time with --every-ms)
recv_ts_ns int64      the same, exact ns since the epoch
key string            book key (book:BTC/USD, level3:BTC/USD)
valid bool            the book existed and was exact (not stale) at that time
is_snapshot bool      the row follows a snapshot (per-message rows only)
bid_price_K double    K = 1..levels, best first; price in real units; null = no level
bid_qty_K double      quantity in real units; null = no level
ask_price_K, ask_qty_K likewise
bid_price_K_m int64   exact mantissas (scale in the field/file metadata); null = no level
[--decimal] <column>_dec decimal128(19, scale) for every price/qty column
symbol, date          from the partition folders (symbol=BTC-USD/date=2024-01-08)"""

L3_DOC = """\
time timestamp[ns,UTC] receive time of the frame
exchange_time timestamp[ns,UTC]  the entry's timestamp (order time for adds), null if absent
recv_ts_ns int64      receive time, exact ns since the epoch
exchange_ts_ns int64  the entry's timestamp in ns, -1 when absent
message int64         index of the frame in the export (entries of one frame share it)
side int8             0 bid, 1 ask
event string          add | modify | delete
origin string         wire (sent by Kraken) | snapshot (an order of a snapshot) |
                      truncated (dropped silently by the depth truncation) |
                      reset (an order of the book a new snapshot replaced)
order_id string       Kraken order id
price double          limit price after the event (delete: the order's price), real units
qty double            quantity after the event (delete: 0), real units
prev_price double     price before the event, null for adds
prev_qty double       quantity before the event, null for adds
execution bool        the reduction matches a trade (same symbol, resting side, price and
                      size, exchange times within --match-window-ms); needs trade frames
trade_id int64        that trade, -1 otherwise
price_m, qty_m, prev_price_m, prev_qty_m int64  exact mantissas (prev_*: null for adds)
symbol, date          from the partition folders"""

TRADES_DOC = """\
time timestamp[ns,UTC] receive time of the trade frame
exchange_time timestamp[ns,UTC]  trade timestamp
recv_ts_ns int64, exchange_ts_ns int64  the same as exact ns
trade_id int64        Kraken trade id
side string           taker side: buy | sell
price double, qty double  real units
ord_type string       market | limit
is_snapshot bool      from a trade snapshot (recent trades sent on subscribe)
price_m, qty_m int64  exact mantissas (scales in the metadata)
symbol, date          from the partition folders"""

LOBSTER_DOC = """\
message file columns: Time, Type, Order ID, Size, Price, Direction
  Time       receive time in seconds after midnight (UTC) of the first event's date, 9
             decimals (exact: written from integer ns); > 86400 on later days
  Type       1 add (a wire add or a snapshot order)
             2 partial cancellation (modify to a smaller size at the same price)
             3 deletion (delete, modify to 0, an order dropped by the depth truncation, an
               order of a book replaced by a new snapshot; and the first half of a modify
               that changes the price or raises the size: 3 at the old values, then 1 at the
               new ones: LOBSTER has no in-place increase, the queue position is not kept)
             4 execution of a visible order (a delete or partial reduction matched to a trade
               of the same size at the same price on the resting side); needs the trade
               channel in the capture, else reductions stay 2/3
  Order ID   integer, numbered in order of first appearance (map: *_orderids.csv)
  Size       quantity mantissa (scale qty_scale): the size added, removed or executed
  Price      price mantissa (scale price_scale)
  Direction  1 buy (bid) order, -1 sell (ask) order; for type 4 the resting order's side
orderbook file: Ask Price 1, Ask Size 1, Bid Price 1, Bid Size 1, ... up to N levels, the book
  after each message row; missing levels: ask 9999999999 / bid -9999999999 with size 0.
l2 captures (no orders): only the orderbook file, one row per book message, and a
  *_times_N.csv with the receive time of each row (not a LOBSTER file)."""

ASK_DUMMY = 9_999_999_999
BID_DUMMY = -9_999_999_999
EVENTS = ("add", "modify", "delete")
_SIDE_SIGN = (1, -1)  # LOBSTER direction of a bid / an ask order


class ExportError(BookError):
    """An export cannot be made (bad option, no data for it, missing dependency)."""


def _pyarrow() -> Any:
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise ExportError(
            "Parquet export needs pyarrow (pip install 'bookengine[research]')"
        ) from None
    return pa, pq


# -- L3 events -------------------------------------------------------------------------------


class _Columns:
    """What the exporters' column sets share: their length, and the user table
    (:meth:`to_table`, each its own) as a DataFrame or an Arrow table."""

    columns: dict[str, npt.NDArray[Any]]

    def __len__(self) -> int:
        return int(self.columns["recv_ts_ns"].shape[0])

    def to_table(self) -> Table:
        raise NotImplementedError

    def to_pandas(self) -> Any:
        """:meth:`to_table` as a ``pandas.DataFrame``."""
        return self.to_table().to_pandas()

    def to_arrow(self, *, decimal: bool = False) -> Any:
        """:meth:`to_table` as a ``pyarrow.Table`` (``decimal``: ``*_dec`` decimal128 twins)."""
        return self.to_table().to_arrow(decimal=decimal)

    def to_polars(self) -> Any:
        """:meth:`to_table` as a ``polars.DataFrame``."""
        return self.to_table().to_polars()


@dataclass
class L3Events(_Columns):
    """Order events of one level3 book, as columns (see :data:`L3_DOC`); owned by the caller.

    With ``levels`` the book after each row is kept too: ``book`` int64 of shape
    ``(n, 4 * levels)``, LOBSTER order (ask price 1, ask size 1, bid price 1, bid size 1, ...).
    """

    key: str
    symbol: str
    price_scale: int
    qty_scale: int
    columns: dict[str, npt.NDArray[Any]]
    book: npt.NDArray[np.int64] | None = None

    def to_table(self) -> Table:
        """The events as a user table: UTC times, ``symbol``, real-unit floats beside the
        exact mantissas (see ``docs/data.md``).

        Columns: ``time`` (receive, datetime64[ns] UTC), ``exchange_time`` (NaT when absent),
        ``recv_ts_ns``, ``exchange_ts_ns``, ``symbol``, ``message``, ``side`` (0 bid, 1 ask),
        ``event``, ``origin``, ``order_id``, ``price``, ``qty``, ``prev_price``, ``prev_qty``
        float64 (``prev_*`` NaN for adds), ``execution``, ``trade_id``, then the exact
        ``price_m``, ``qty_m``, ``prev_price_m``, ``prev_qty_m`` int64 (``prev_*_m`` null for
        adds).
        """
        return _user_table(
            self.symbol,
            self.columns,
            {"price": self.price_scale, "qty": self.qty_scale},
            ("price", "qty", "prev_price", "prev_qty"),
        )


def _user_table(
    symbol: str,
    columns: Mapping[str, npt.NDArray[Any]],
    scales: Mapping[str, int],
    values: Sequence[str],
) -> Table:
    """Raw export columns -> a user :class:`Table` (times, symbol, floats, ``_m`` mantissas)."""
    n = int(columns["recv_ts_ns"].shape[0])
    out: dict[str, npt.NDArray[Any]] = {
        "time": to_datetime(columns["recv_ts_ns"]),
        "exchange_time": to_datetime(columns["exchange_ts_ns"]),
        "symbol": np.full(n, symbol, dtype=object),
    }
    for name, array in columns.items():
        out[name] = to_float(array, scales[name.removeprefix("prev_")]) if name in values else array
    masks: dict[str, npt.NDArray[np.bool_]] = {}
    table_scales: dict[str, int] = {}
    for name in values:
        scale = scales[name.removeprefix("prev_")]
        raw = columns[name]
        if name == "prev_price":
            missing = raw < 0
        elif name == "prev_qty":
            missing = columns["prev_price"] < 0
        else:
            missing = np.zeros(n, dtype=bool)
        if missing.any():
            out[name][missing] = np.nan
        out[f"{name}_m"] = raw.copy()
        masks[f"{name}_m"] = missing
        table_scales[f"{name}_m"] = scale
    return Table(out, masks=masks, scales=table_scales)


def _negate(price: int) -> int:
    return -price


def _book_order(item: tuple[str, tuple[int, int, int]]) -> tuple[int, int]:
    # orders_arrays' order: bids best (highest) first, then asks best (lowest) first; a stable
    # sort keeps queue order within a level.
    side, price, _ = item[1]
    return side, -price if side == 0 else price


class _L3Collector:
    """Rows of one level3 key, from the effects of its ``BookChanged`` events."""

    def __init__(self, key: str, symbol: str, levels: int | None) -> None:
        self.key = key
        self.symbol = symbol
        self.levels = levels
        self.scales: tuple[int, int] | None = None
        self.rows: dict[str, list[Any]] = {
            name: []
            for name in (
                "recv_ts_ns",
                "exchange_ts_ns",
                "message",
                "side",
                "event",
                "origin",
                "order_id",
                "price",
                "qty",
                "prev_price",
                "prev_qty",
            )
        }
        self.book_rows: list[list[int]] = []
        # The book's orders as the rows left it, queue order within a level (an in-place
        # modify keeps its dict slot, a move re-inserts): the reset rows of the next snapshot.
        self._orders: dict[str, tuple[int, int, int]] = {}
        # Running per-price totals (LOBSTER book after each row), best price first.
        self._agg: tuple[SortedDict, SortedDict] = (SortedDict(_negate), SortedDict())

    def row(
        self,
        recv_ts_ns: int,
        exchange_ts_ns: int,
        message: int,
        side: int,
        event: str,
        origin: str,
        order_id: str,
        price: int,
        qty: int,
        prev_price: int,
        prev_qty: int,
    ) -> None:
        rows = self.rows
        rows["recv_ts_ns"].append(recv_ts_ns)
        rows["exchange_ts_ns"].append(exchange_ts_ns)
        rows["message"].append(message)
        rows["side"].append(side)
        rows["event"].append(event)
        rows["origin"].append(origin)
        rows["order_id"].append(order_id)
        rows["price"].append(price)
        rows["qty"].append(qty)
        rows["prev_price"].append(prev_price)
        rows["prev_qty"].append(prev_qty)
        if self.levels is not None:
            agg = self._agg[side]
            if prev_qty > 0 and prev_price >= 0:
                left = agg.get(prev_price, 0) - prev_qty
                if left > 0:
                    agg[prev_price] = left
                else:
                    agg.pop(prev_price, None)
            if event != "delete" and qty > 0:
                agg[price] = agg.get(price, 0) + qty
            self.book_rows.append(self._top())

    def _top(self) -> list[int]:
        levels = self.levels
        assert levels is not None
        bids = self._agg[0].items()[:levels]
        asks = self._agg[1].items()[:levels]
        out: list[int] = []
        for index in range(levels):
            ask = asks[index] if index < len(asks) else (ASK_DUMMY, 0)
            bid = bids[index] if index < len(bids) else (BID_DUMMY, 0)
            out.extend((ask[0], ask[1], bid[0], bid[1]))
        return out

    def snapshot(self, ts: int, message: int, book: Any) -> None:
        """A snapshot replaced the book: reset rows for the old orders, then its orders."""
        old = sorted(self._orders.items(), key=_book_order)
        for order_id, (side, price, qty) in old:
            self.row(ts, -1, message, side, "delete", "reset", order_id, price, 0, price, qty)
        self._agg = (SortedDict(_negate), SortedDict())
        orders = self._orders = {}
        columns = book.orders_arrays(order_ids=True)
        names = ("side", "price", "qty", "order_id", "timestamp_ns")
        for side, price, qty, order_id, stamp in _rows(columns, *names):
            side, price, qty = int(side), int(price), int(qty)
            self.row(ts, int(stamp), message, side, "add", "snapshot", order_id, price, qty, -1, 0)
            orders[order_id] = (side, price, qty)

    def update(self, ts: int, message: int, effects: Sequence[OrderEffect]) -> None:
        """One applied update: a row per entry, then one per order truncated away."""
        orders = self._orders
        for e in effects:
            side = 0 if e.side == "bid" else 1
            order_id = e.order_id
            event = e.event
            if event == "add":
                self.row(
                    ts,
                    e.timestamp_ns,
                    message,
                    side,
                    "add",
                    "wire",
                    order_id,
                    e.price,
                    e.qty_after,
                    -1,
                    0,
                )
                orders[order_id] = (side, e.price, e.qty_after)
            elif event == "delete" or e.qty_after == 0:
                origin = "truncated" if e.action == "truncate" else "wire"
                self.row(
                    ts,
                    e.timestamp_ns,
                    message,
                    side,
                    "delete",
                    origin,
                    order_id,
                    e.price,
                    0,
                    e.price,
                    e.qty_before,
                )
                orders.pop(order_id, None)
            else:
                new_price = e.new_price
                self.row(
                    ts,
                    e.timestamp_ns,
                    message,
                    side,
                    "modify",
                    "wire",
                    order_id,
                    new_price,
                    e.qty_after,
                    e.price,
                    e.qty_before,
                )
                if e.action == "requeue":
                    orders.pop(order_id, None)  # to the back of its new level
                orders[order_id] = (side, new_price, e.qty_after)

    def check(self, book: Any) -> None:
        """The running aggregate must equal the book after the frame (a differential check)."""
        if self.levels is None:
            return
        bids = list(self._agg[0].items()[: self.levels])
        asks = list(self._agg[1].items()[: self.levels])
        if bids != book.bids(self.levels) or asks != book.asks(self.levels):
            raise ExportError(
                f"{self.key}: event-by-event book differs from the replayed book "
                "(a bookengine bug: please report it with the capture)"
            )

    def build(self) -> L3Events:
        rows = self.rows
        n = len(rows["recv_ts_ns"])
        columns: dict[str, npt.NDArray[Any]] = {
            "recv_ts_ns": np.array(rows["recv_ts_ns"], dtype=np.int64).reshape(n),
            "exchange_ts_ns": np.array(rows["exchange_ts_ns"], dtype=np.int64).reshape(n),
            "message": np.array(rows["message"], dtype=np.int64).reshape(n),
            "side": np.array(rows["side"], dtype=np.int8).reshape(n),
            "event": np.array(rows["event"], dtype=object).reshape(n),
            "origin": np.array(rows["origin"], dtype=object).reshape(n),
            "order_id": np.array(rows["order_id"], dtype=object).reshape(n),
            "price": np.array(rows["price"], dtype=np.int64).reshape(n),
            "qty": np.array(rows["qty"], dtype=np.int64).reshape(n),
            "prev_price": np.array(rows["prev_price"], dtype=np.int64).reshape(n),
            "prev_qty": np.array(rows["prev_qty"], dtype=np.int64).reshape(n),
            "execution": np.zeros(n, dtype=bool),
            "trade_id": np.full(n, -1, dtype=np.int64),
        }
        book = None
        if self.levels is not None:
            book = np.array(self.book_rows, dtype=np.int64).reshape(n, 4 * self.levels)
        pp, qp = self.scales or (0, 0)
        return L3Events(self.key, self.symbol, pp, qp, columns, book)


@dataclass
class Trades(_Columns):
    """Trades of one symbol as columns (see :data:`TRADES_DOC`); owned by the caller."""

    symbol: str
    price_scale: int
    qty_scale: int
    columns: dict[str, npt.NDArray[Any]]

    def to_table(self) -> Table:
        """The trades as a user table: ``time`` and ``exchange_time`` (UTC), ``recv_ts_ns``,
        ``exchange_ts_ns``, ``symbol``, ``trade_id``, ``side``, ``price`` and ``qty`` float64
        in real units, ``ord_type``, ``is_snapshot``, then the exact ``price_m``/``qty_m``."""
        return _user_table(
            self.symbol,
            self.columns,
            {"price": self.price_scale, "qty": self.qty_scale},
            ("price", "qty"),
        )


@dataclass
class _TradeRows:
    scales: tuple[int, int]
    seen: set[int] = field(default_factory=set)
    rows: list[tuple[int, int, int, str, int, int, str, bool]] = field(default_factory=list)


def _trade_rows(event: TradesEvent, out: dict[str, _TradeRows]) -> None:
    table = out.get(event.symbol)
    if table is None:
        table = out[event.symbol] = _TradeRows((event.price_precision, event.qty_precision))
    seen = table.seen
    for trade in event.trades:
        trade_id = trade.trade_id
        if trade_id >= 0:
            if trade_id in seen:
                continue  # a snapshot repeats trades already seen
            seen.add(trade_id)
        table.rows.append(
            (
                trade.recv_ts_ns,
                trade.timestamp_ns,
                trade_id,
                trade.side,
                trade.price,
                trade.qty,
                trade.ord_type,
                event.is_snapshot,
            )
        )


def _build_trades(symbol: str, table: _TradeRows) -> Trades:
    rows = table.rows
    n = len(rows)
    cols = list(zip(*rows, strict=True)) if rows else [()] * 8
    columns: dict[str, npt.NDArray[Any]] = {
        "recv_ts_ns": np.array(cols[0], dtype=np.int64).reshape(n),
        "exchange_ts_ns": np.array(cols[1], dtype=np.int64).reshape(n),
        "trade_id": np.array(cols[2], dtype=np.int64).reshape(n),
        "side": np.array(cols[3], dtype=object).reshape(n),
        "price": np.array(cols[4], dtype=np.int64).reshape(n),
        "qty": np.array(cols[5], dtype=np.int64).reshape(n),
        "ord_type": np.array(cols[6], dtype=object).reshape(n),
        "is_snapshot": np.array(cols[7], dtype=bool).reshape(n),
    }
    return Trades(symbol, table.scales[0], table.scales[1], columns)


def collect(
    replayer: Replayer,
    *,
    l3: bool = True,
    trades: bool = True,
    levels: int | None = None,
    match_window_ns: int = 1_000_000_000,
) -> tuple[dict[str, L3Events], dict[str, Trades]]:
    """One replay pass collecting level3 order events and trades (per key / symbol).

    Args:
        levels: also keep the top ``levels`` of each level3 book after every event (LOBSTER).
        match_window_ns: an L3 reduction is an execution when a trade of the same size at the
            same price against the resting side has an exchange time this close.

    Raises:
        ExportError: malformed trade data, or (a bug) an event-by-event book that differs
            from the replayed one.
    """
    collectors: dict[str, _L3Collector] = {}
    trade_tables: dict[str, _TradeRows] = {}
    wanted = replayer.symbols
    message = -1
    for recv_ts_ns, events in effects_pass(replayer):
        for event in events:
            kind = type(event)
            if kind is TradesEvent:
                assert isinstance(event, TradesEvent)
                if trades and (wanted is None or event.symbol in wanted):
                    _trade_rows(event, trade_tables)
                continue
            if not l3 or (kind is not BookChanged and kind is not ChecksumMismatch):
                if kind is BookInvalid and l3:
                    assert isinstance(event, BookInvalid)
                    if event.key.startswith("level3:"):
                        message += 1  # refused: numbered, no rows
                continue
            assert isinstance(event, BookChanged | ChecksumMismatch)
            key = event.key
            if not key.startswith("level3:"):
                continue
            state = replayer.session.books[key]
            book = state.book
            collector = collectors.get(key)
            if collector is None:
                collector = collectors[key] = _L3Collector(key, event.symbol, levels)
            message += 1
            collector.scales = (book.price_precision, book.qty_precision)
            if kind is ChecksumMismatch:
                # Applied, though its checksum differs: its rows are written all the same.
                collector.update(recv_ts_ns, message, book.effects())
            else:
                assert isinstance(event, BookChanged)
                if event.is_snapshot:
                    collector.snapshot(recv_ts_ns, message, book)
                else:
                    collector.update(recv_ts_ns, message, event.effects)
            collector.check(book)
    if trades and replayer.session.unpriced_symbols:
        symbol = min(replayer.session.unpriced_symbols)
        raise UnknownSymbolError(
            f"trade: {symbol}: no precision known: capture the 'instrument' "
            "channel or give --precision/--instruments"
        )
    trades_out = {symbol: _build_trades(symbol, t) for symbol, t in trade_tables.items()}
    l3_out = {key: c.build() for key, c in collectors.items()}
    for events_table in l3_out.values():
        table = trades_out.get(events_table.symbol)
        if table is not None:
            _match_executions(events_table, table, match_window_ns)
    return l3_out, trades_out


def _rows(columns: Mapping[str, Any], *names: str) -> Iterator[tuple[Any, ...]]:
    """The named columns row by row, as Python values (one ``tolist`` per column)."""
    return zip(*(columns[name].tolist() for name in names), strict=True)


def _match_executions(events: L3Events, trades: Trades, window_ns: int) -> None:
    """Mark reductions that match a trade (same resting side, price and size; nearest time)."""
    by_key: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    tc = trades.columns
    for index, (side, price, qty, ts) in enumerate(
        _rows(tc, "side", "price", "qty", "exchange_ts_ns")
    ):
        resting = 1 if side == "buy" else 0  # a buy taker lifts asks
        by_key.setdefault((resting, price, qty), []).append((ts, index))
    for items in by_key.values():
        items.sort()
    used: set[int] = set()
    c = events.columns
    trade_ids = tc["trade_id"]
    for row, (event, origin, side, prev_price, prev_qty, price, qty, ts, recv) in enumerate(
        _rows(
            c,
            "event",
            "origin",
            "side",
            "prev_price",
            "prev_qty",
            "price",
            "qty",
            "exchange_ts_ns",
            "recv_ts_ns",
        )
    ):
        if origin != "wire" or prev_qty <= 0:
            continue
        if event == "delete":
            reduced = prev_qty
        elif event == "modify" and price == prev_price and qty < prev_qty:
            reduced = prev_qty - qty
        else:
            continue
        candidates = by_key.get((side, prev_price, reduced))
        if not candidates:
            continue
        items = candidates
        when = ts if ts >= 0 else recv
        best: tuple[int, int] | None = None  # (distance, trade index)
        for position in range(bisect.bisect_left(items, (when - window_ns, -1)), len(items)):
            trade_ts, index = items[position]
            if trade_ts > when + window_ns:
                break
            if index not in used and (best is None or abs(trade_ts - when) < best[0]):
                best = (abs(trade_ts - when), index)
        if best is not None:
            used.add(best[1])
            c["execution"][row] = True
            c["trade_id"][row] = trade_ids[best[1]]


# -- Parquet -----------------------------------------------------------------------------------


def _metadata(
    schema: str, key: str, symbol: str, pp: int, qp: int, sources: Sequence[Path]
) -> dict[str, str]:
    from . import __version__

    return {
        "bookengine.schema": schema,
        "bookengine.key": key,
        "bookengine.symbol": symbol,
        "bookengine.price_scale": str(pp),
        "bookengine.qty_scale": str(qp),
        "bookengine.version": __version__,
        "bookengine.sources": json.dumps([str(p) for p in sources]),
    }


def _dataset(out: Path | DatasetWriter, write: Callable[[DatasetWriter], None]) -> list[Path]:
    """Run ``write`` on ``out`` (a writer the caller commits, or a folder: commit here)."""
    if isinstance(out, DatasetWriter):
        before = len(out.staged)
        write(out)
        return out.staged[before:]
    with DatasetWriter(Path(out)) as writer:
        write(writer)
    return writer.written


def l2_parquet(
    samples: BookSamples,
    out: Path | DatasetWriter,
    sources: Sequence[Path],
    decimal: bool = False,
) -> list[Path]:
    """``l2-snapshots/2`` parts (see :data:`L2_DOC`) of every book of ``samples`` into the
    dataset ``out/l2_<channel>`` (``l2_book``; ``l2_level3`` for level3 books)."""

    def write(writer: DatasetWriter) -> None:
        for key in sorted(set(samples.key.tolist())):
            part = samples.for_key(key)
            pp, qp = samples.scales.get(key, (0, 0))
            channel, _, symbol = key.partition(":")
            metadata = _metadata("l2-snapshots/2", key, symbol, pp, qp, sources)
            metadata["bookengine.levels"] = str(part.levels)
            table = part.to_table()
            for name in ("price_scale", "qty_scale", "time_ns"):
                del table[name]
            table["recv_ts_ns"] = part.time_ns.copy()
            writer.add(f"l2_{channel}", symbol, table, "recv_ts_ns", metadata, decimal=decimal)

    return _dataset(out, write)


def l3_parquet(
    tables: Mapping[str, L3Events],
    out: Path | DatasetWriter,
    sources: Sequence[Path],
    decimal: bool = False,
) -> list[Path]:
    """``l3-events/2`` parts of every level3 book into ``out/l3_events`` (:data:`L3_DOC`)."""

    def write(writer: DatasetWriter) -> None:
        for key, table in sorted(tables.items()):
            pp, qp = table.price_scale, table.qty_scale
            metadata = _metadata("l3-events/2", key, table.symbol, pp, qp, sources)
            writer.add(
                "l3_events", table.symbol, table.to_table(), "recv_ts_ns", metadata, decimal=decimal
            )

    return _dataset(out, write)


def trades_parquet(
    tables: Mapping[str, Trades],
    out: Path | DatasetWriter,
    sources: Sequence[Path],
    decimal: bool = False,
) -> list[Path]:
    """``trades/2`` parts of every symbol into ``out/trades`` (see :data:`TRADES_DOC`)."""

    def write(writer: DatasetWriter) -> None:
        for symbol, table in sorted(tables.items()):
            pp, qp = table.price_scale, table.qty_scale
            metadata = _metadata("trades/2", f"trade:{symbol}", symbol, pp, qp, sources)
            writer.add("trades", symbol, table.to_table(), "recv_ts_ns", metadata, decimal=decimal)

    return _dataset(out, write)


# -- LOBSTER -----------------------------------------------------------------------------------


def _day_start_ns(ts_ns: int) -> tuple[int, str]:
    seconds = ts_ns // 1_000_000_000
    day = datetime.fromtimestamp(seconds, tz=timezone.utc).date()
    midnight = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())
    return midnight * 1_000_000_000, day.isoformat()


def _seconds_text(ns: int) -> str:
    whole, fraction = divmod(ns, 1_000_000_000)
    return f"{whole}.{fraction:09d}"


def _lobster_name(symbol: str, times: npt.NDArray[np.int64]) -> tuple[str, int]:
    first = int(times[0]) if times.shape[0] else 0
    last = int(times[-1]) if times.shape[0] else 0
    midnight, day = _day_start_ns(first)
    ticker = symbol.replace("/", "-")
    start = (first - midnight) // 1_000_000_000
    end = -(-(last - midnight) // 1_000_000_000)
    return f"{ticker}_{day}_{start}_{end}", midnight


def _write_rows(path: Path, rows: Iterable[str]) -> None:
    with path.open("w", encoding="ascii", newline="\n") as handle:
        for row in rows:
            handle.write(row)
            handle.write("\n")


def l3_lobster(
    tables: Mapping[str, L3Events], out: Path, levels: int, sources: Sequence[Path]
) -> list[Path]:
    """LOBSTER message + orderbook files per level3 book (see :data:`LOBSTER_DOC`)."""
    written: list[Path] = []
    for key, table in sorted(tables.items()):
        if table.book is None:
            raise ExportError("collect(levels=...) is needed for the LOBSTER orderbook file")
        c = table.columns
        stem, midnight = _lobster_name(table.symbol, c["recv_ts_ns"])
        ids: dict[str, int] = {}
        messages: list[str] = []
        books: list[str] = []
        for row, (
            ts,
            event,
            side,
            order_id,
            price,
            qty,
            prev_price,
            prev_qty,
            execution,
        ) in enumerate(
            _rows(
                c,
                "recv_ts_ns",
                "event",
                "side",
                "order_id",
                "price",
                "qty",
                "prev_price",
                "prev_qty",
                "execution",
            )
        ):
            lobster_id = ids.setdefault(order_id, len(ids) + 1)
            time_text = _seconds_text(ts - midnight)
            direction = _SIDE_SIGN[side]
            book_text = ",".join(map(str, table.book[row].tolist()))
            if event == "add":
                items = [(1, qty, price)]
            elif event == "delete":
                items = [(4 if execution else 3, prev_qty, prev_price)]
            elif price == prev_price and qty < prev_qty:
                items = [(4 if execution else 2, prev_qty - qty, price)]
            else:  # a new price or a larger size: LOBSTER has no in-place increase
                items = [(3, prev_qty, prev_price), (1, qty, price)]
            for index, (kind, size, at) in enumerate(items):
                messages.append(f"{time_text},{kind},{lobster_id},{size},{at},{direction}")
                if index + 1 < len(items):
                    books.append(_book_after_partial(table, row, side, prev_price, prev_qty))
                else:
                    books.append(book_text)
        message_path = out / f"{stem}_message_{levels}.csv"
        book_path = out / f"{stem}_orderbook_{levels}.csv"
        ids_path = out / f"{stem}_orderids.csv"
        meta_path = out / f"{stem}_meta.json"
        _write_rows(message_path, messages)
        _write_rows(book_path, books)
        _write_rows(ids_path, ["lobster_id,order_id", *(f"{v},{k}" for k, v in ids.items())])
        meta_path.write_text(
            json.dumps(
                {
                    "key": key,
                    "symbol": table.symbol,
                    "price_scale": table.price_scale,
                    "qty_scale": table.qty_scale,
                    "levels": levels,
                    "time_origin_ns": midnight,
                    "sources": [str(p) for p in sources],
                    "format": LOBSTER_DOC,
                },
                indent=2,
            )
            + "\n"
        )
        written += [message_path, book_path, ids_path, meta_path]
    return written


def _book_after_partial(
    table: L3Events, row: int, side: int, prev_price: int, prev_qty: int
) -> str:
    """The book between the two halves of a price-changing modify (old size removed)."""
    assert table.book is not None
    before = table.book[row - 1].tolist() if row > 0 else _empty_book(table.book.shape[1] // 4)
    levels = table.book.shape[1] // 4
    offset = 0 if side == 1 else 2  # asks at 4k, bids at 4k + 2
    ladder = {
        before[4 * k + offset]: before[4 * k + offset + 1]
        for k in range(levels)
        if before[4 * k + offset + 1] > 0
    }
    left = ladder.get(prev_price, 0) - prev_qty
    if left > 0:
        ladder[prev_price] = left
    else:
        ladder.pop(prev_price, None)
    ordered = sorted(ladder.items(), reverse=side == 0)
    dummy = ASK_DUMMY if side == 1 else BID_DUMMY
    for k in range(levels):
        price, qty = ordered[k] if k < len(ordered) else (dummy, 0)
        before[4 * k + offset] = price
        before[4 * k + offset + 1] = qty
    return ",".join(map(str, before))


def _empty_book(levels: int) -> list[int]:
    return [ASK_DUMMY, 0, BID_DUMMY, 0] * levels


def l2_lobster(samples: BookSamples, out: Path, sources: Sequence[Path]) -> list[Path]:
    """LOBSTER orderbook files (and a times file) per L2 book (see :data:`LOBSTER_DOC`)."""
    written: list[Path] = []
    levels = samples.levels
    for key in sorted(set(samples.key.tolist())):
        part = samples.for_key(key)
        symbol = key.partition(":")[2]
        stem, midnight = _lobster_name(symbol, part.time_ns)
        if key.partition(":")[0] != "book":
            stem += "_" + key.partition(":")[0]
        block = np.empty((len(part), 4 * levels), dtype=np.int64)
        block[:, 0::4] = np.where(part.ask_qty > 0, part.ask_price, ASK_DUMMY)
        block[:, 1::4] = part.ask_qty
        block[:, 2::4] = np.where(part.bid_qty > 0, part.bid_price, BID_DUMMY)
        block[:, 3::4] = part.bid_qty
        book_path = out / f"{stem}_orderbook_{levels}.csv"
        times_path = out / f"{stem}_times_{levels}.csv"
        _write_rows(book_path, (",".join(map(str, row)) for row in block.tolist()))
        _write_rows(times_path, (_seconds_text(t - midnight) for t in part.time_ns.tolist()))
        pp, qp = samples.scales.get(key, (0, 0))
        meta_path = out / f"{stem}_meta.json"
        meta_path.write_text(
            json.dumps(
                {
                    "key": key,
                    "symbol": symbol,
                    "price_scale": pp,
                    "qty_scale": qp,
                    "levels": levels,
                    "time_origin_ns": midnight,
                    "sources": [str(p) for p in sources],
                    "format": LOBSTER_DOC,
                },
                indent=2,
            )
            + "\n"
        )
        written += [book_path, times_path, meta_path]
    return written


# -- the command -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from .cli import _precision

    parser = argparse.ArgumentParser(
        prog="bookengine export",
        description="Export captures (replayed through the live code path) to Parquet "
        "datasets (OUT/<what>/symbol=.../date=.../part-*.parquet; more exports add parts) or "
        "LOBSTER files in OUT. Parquet has float64 prices and quantities in real units beside "
        "the exact int64 mantissas (*_m); LOBSTER has the mantissas, scales in *_meta.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="l2 columns:\n"
        + L2_DOC
        + "\n\nl3 columns:\n"
        + L3_DOC
        + "\n\ntrades columns:\n"
        + TRADES_DOC
        + "\n\nLOBSTER:\n"
        + LOBSTER_DOC,
    )
    parser.add_argument(
        "files", nargs="+", metavar="CAPTURE", help="capture files or folders of captures"
    )
    parser.add_argument("--format", choices=("parquet", "lobster"), default="parquet")
    parser.add_argument("--what", choices=("l2", "l3", "trades"), default="l2")
    parser.add_argument("--levels", type=int, default=10, help="levels per side (default 10)")
    parser.add_argument(
        "--every-ms", type=float, help="l2: sample every M ms (default: after every message)"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output directory")
    parser.add_argument("--instruments", action="append", default=[], metavar="FILE")
    parser.add_argument(
        "--precision", action="append", default=[], type=_precision, metavar="SYMBOL=P/Q"
    )
    parser.add_argument("--depth", type=int, help="depth when the capture has no subscribe ack")
    parser.add_argument(
        "--symbols", action="append", default=[], metavar="S1,S2", help="only these symbols"
    )
    parser.add_argument(
        "--decimal", action="store_true", help="parquet: add exact decimal128 columns"
    )
    parser.add_argument(
        "--match-window-ms",
        type=float,
        default=1000.0,
        help="l3: trade/reduction time tolerance for executions (default 1000)",
    )
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``bookengine export``: returns the exit status (0 written, 1 nothing to export, 2 error)."""
    args = _parser().parse_args(argv)
    if args.levels < 1:
        print("bookengine export: --levels must be >= 1", file=sys.stderr)
        return 2
    if args.every_ms is not None and not args.every_ms > 0:
        print("bookengine export: --every-ms must be > 0", file=sys.stderr)
        return 2
    if args.format == "lobster" and args.what == "trades":
        print(
            "bookengine export: LOBSTER has no trades-only file: use --what l3 (executions are "
            "type 4) or --format parquet",
            file=sys.stderr,
        )
        return 2
    symbols = [s for item in args.symbols for s in item.split(",") if s] or None
    out = Path(args.output)
    problems = 0

    def problem(record: CaptureRecord, message: str) -> None:
        nonlocal problems
        if record.kind not in ("torn", "truncated"):
            problems += 1
        print(f"{record.path}:{record.line}: {message}", file=sys.stderr)

    check_captures(args.files)
    if args.format == "parquet":
        try:
            _pyarrow()
        except ExportError as exc:
            raise CLIError(f"bookengine export: {exc}", ExitCode.DEPENDENCY) from None
    try:
        instruments = Instruments()
        for path in args.instruments:
            loaded = Instruments.from_file(path)
            for symbol in loaded.symbols():
                item = loaded.get(symbol)
                assert item is not None
                instruments.set(symbol, item.price_precision, item.qty_precision, item.status)
        replayer = Replayer(
            args.files,
            instruments=instruments,
            precisions=dict(args.precision),
            depth=args.depth,
            symbols=symbols,
            on_problem=problem,
            progress=args.progress,
        )
        track_output(out)  # removed again if the export fails or is interrupted
        sources = replayer.paths
        written = export(
            replayer,
            out,
            fmt=args.format,
            what=args.what,
            levels=args.levels,
            every_ns=None if args.every_ms is None else int(args.every_ms * 1_000_000),
            decimal=args.decimal,
            match_window_ns=int(args.match_window_ms * 1_000_000),
            sources=sources,
        )
    except (BookError, OSError) as exc:
        print(f"bookengine export: {exc}", file=sys.stderr)
        return 2
    if not written:
        print(
            f"bookengine export: nothing to export ({args.what}) in the captures", file=sys.stderr
        )
        return 1
    for path in written:
        print(path)
    return 0


def export(
    replayer: Replayer,
    out: str | Path,
    *,
    fmt: str = "parquet",
    what: str = "l2",
    levels: int = 10,
    every_ns: int | None = None,
    decimal: bool = False,
    match_window_ns: int = 1_000_000_000,
    sources: Sequence[Path] | None = None,
) -> list[Path]:
    """Replay and write one export (the API behind ``bookengine export``); returns the files.

    Parquet: parts added to the Hive-partitioned datasets ``out/<what>/symbol=.../date=...``
    (:mod:`bookengine.dataset`), all committed at the end or none. LOBSTER: files in ``out``.
    A failed export leaves no folder it created behind.

    Raises:
        ExportError: a bad combination (LOBSTER trades), or pyarrow missing for Parquet.
        BookError: unreadable captures, unknown precisions.
    """
    out = Path(out)
    sources = list(replayer.paths if sources is None else sources)
    if fmt not in ("parquet", "lobster"):
        raise ExportError(f"format must be parquet or lobster, got {fmt!r}")
    if what not in ("l2", "l3", "trades"):
        raise ExportError(f"what must be l2, l3 or trades, got {what!r}")
    if fmt == "parquet":
        _pyarrow()  # fail before a long replay
        with DatasetWriter(out) as writer:
            _export(
                replayer, writer, fmt, what, levels, every_ns, decimal, match_window_ns, sources
            )
        return writer.written
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = _export(
            replayer, out, fmt, what, levels, every_ns, decimal, match_window_ns, sources
        )
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only when empty
        raise
    if created and not written:
        with contextlib.suppress(OSError):
            out.rmdir()
    return written


def _export(
    replayer: Replayer,
    out: Any,
    fmt: str,
    what: str,
    levels: int,
    every_ns: int | None,
    decimal: bool,
    match_window_ns: int,
    sources: list[Path],
) -> list[Path]:
    if what == "l2":
        if every_ns is None:
            samples = replayer.snapshots(levels=levels)
        else:
            samples = replayer.sample(every_ns, levels=levels)
        if fmt == "parquet":
            return l2_parquet(samples, out, sources, decimal)
        return l2_lobster(samples, out, sources)
    if what == "l3":
        tables, _ = collect(
            replayer,
            levels=levels if fmt == "lobster" else None,
            match_window_ns=match_window_ns,
        )
        if fmt == "parquet":
            return l3_parquet(tables, out, sources, decimal)
        return l3_lobster(tables, out, levels, sources)
    if what == "trades":
        if fmt != "parquet":
            raise ExportError("LOBSTER has no trades-only file: use what='l3'")
        _, trade_tables = collect(replayer, l3=False)
        return trades_parquet(trade_tables, out, sources, decimal)
    raise ExportError(f"what must be l2, l3 or trades, got {what!r}")
