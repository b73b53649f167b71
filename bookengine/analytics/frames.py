"""Read the frames the books do not need: public ``trade`` and private ``executions`` (v2).

The session routes book frames to the books and ignores these two; analytics reads them here.
Numbers become exact int mantissas (trades, at the symbol's precision) or ``Decimal`` (own
orders, whose symbol precision may not be known yet); never floats.

Shapes (Kraken Spot WebSocket v2):

* ``{"channel": "trade", "type": "update"|"snapshot", "data": [{"symbol", "side", "price",
  "qty", "ord_type", "trade_id", "timestamp"}]}``; ``side`` is the **taker's** side, so a
  ``buy`` trade took liquidity from the asks.
* ``{"channel": "executions", "type": "snapshot"|"update", "data": [{"order_id", "symbol",
  "side", "order_type", "order_qty", "limit_price", "order_status", "exec_type", "cum_qty",
  "last_qty", "last_price", "trade_id", "liquidity_ind", "timestamp", ...}],
  "sequence": n}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import ProtocolError
from ..numbers import parse_mantissa
from ..timestamps import parse_rfc3339_ns

MAKER_SIDE = {"buy": "ask", "sell": "bid"}
"""Taker side of a trade -> the book side (``"bid"``/``"ask"``) whose resting order traded."""


@dataclass(frozen=True, slots=True)
class TradePrint:
    """One public trade, exact."""

    symbol: str
    side: str
    """The taker's side, ``"buy"`` or ``"sell"`` (Kraken's ``side``)."""
    price: int
    """Price mantissa (scale: the symbol's price precision)."""
    qty: int
    """Quantity mantissa (scale: the symbol's qty precision)."""
    trade_id: int
    timestamp_ns: int
    """Engine time of the trade, ns since the epoch; -1 when absent."""
    recv_ts_ns: int

    @property
    def book_side(self) -> str:
        """``"bid"`` or ``"ask"``: the side of the book the resting (maker) order was on."""
        return MAKER_SIDE[self.side]


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


def frame_channel(frame: bytes | str) -> str | None:
    """``"trade"`` or ``"executions"`` when the frame may be one of those (a cheap byte test)."""
    data = frame.encode() if isinstance(frame, str) else frame
    # executions first: its records say "exec_type":"trade" too.
    if b'"executions"' in data:
        return "executions"
    if b'"trade"' in data:
        return "trade"
    return None


def _loads(frame: bytes | str) -> Any:
    # Numbers stay text (then exact mantissas); a malformed frame is the session's business.
    try:
        return json.loads(frame, parse_float=str, parse_int=str)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def parse_trades(
    frame: bytes | str,
    recv_ts_ns: int,
    precisions: Callable[[str], tuple[int, int] | None],
    *,
    include_snapshot: bool = False,
) -> list[TradePrint]:
    """The trades of a v2 ``trade`` frame as exact records; [] for any other frame.

    Args:
        precisions: symbol -> (price precision, qty precision), None when unknown (that
            symbol's trades are skipped: they cannot be made exact).
        include_snapshot: also return the trades of a ``snapshot`` (Kraken replays the last 50
            on subscribe: history, not news, so skipped by default).

    Raises:
        ProtocolError: a trade record that is not shaped like Kraken's.
    """
    message = _loads(frame)
    if not isinstance(message, dict) or message.get("channel") != "trade":
        return []
    if message.get("type") == "snapshot" and not include_snapshot:
        return []
    data = message.get("data")
    if not isinstance(data, list):
        raise ProtocolError("trade: 'data' must be a list")
    trades: list[TradePrint] = []
    for index, item in enumerate(data):
        where = f"trade data[{index}]"
        if not isinstance(item, dict):
            raise ProtocolError(f"{where}: expected an object")
        symbol = item.get("symbol")
        side = item.get("side")
        if not isinstance(symbol, str) or side not in MAKER_SIDE:
            raise ProtocolError(f"{where}: needs 'symbol' and 'side' buy/sell")
        scales = precisions(symbol)
        if scales is None:
            continue
        price = parse_mantissa(_text(item.get("price"), where), scales[0], f"{where}.price")
        qty = parse_mantissa(_text(item.get("qty"), where), scales[1], f"{where}.qty")
        trade_id = item.get("trade_id")
        stamp = item.get("timestamp")
        trades.append(
            TradePrint(
                symbol,
                side,
                price,
                qty,
                int(trade_id) if isinstance(trade_id, str) and trade_id.isdigit() else -1,
                parse_rfc3339_ns(stamp) if isinstance(stamp, str) else -1,
                recv_ts_ns,
            )
        )
    return trades


def parse_executions(frame: bytes | str, recv_ts_ns: int) -> list[ExecutionReport]:
    """The records of a v2 ``executions`` frame; [] for any other frame.

    Raises:
        ProtocolError: a record without ``order_id`` or ``exec_type``.
    """
    message = _loads(frame)
    if not isinstance(message, dict) or message.get("channel") != "executions":
        return []
    data = message.get("data")
    if not isinstance(data, list):
        raise ProtocolError("executions: 'data' must be a list")
    is_snapshot = message.get("type") == "snapshot"
    reports: list[ExecutionReport] = []
    for index, item in enumerate(data):
        where = f"executions data[{index}]"
        if not isinstance(item, dict):
            raise ProtocolError(f"{where}: expected an object")
        order_id = item.get("order_id")
        exec_type = item.get("exec_type")
        if not isinstance(order_id, str) or not isinstance(exec_type, str):
            if is_snapshot and isinstance(order_id, str):
                exec_type = "new"  # a snapshot lists open orders; the type adds nothing
            else:
                raise ProtocolError(f"{where}: needs 'order_id' and 'exec_type'")
        stamp = item.get("timestamp")
        trade_id = item.get("trade_id")
        reports.append(
            ExecutionReport(
                order_id,
                exec_type,
                str(item.get("order_status", "")),
                _str_or_none(item.get("symbol")),
                _str_or_none(item.get("side")),
                _str_or_none(item.get("order_type")),
                _decimal(item.get("order_qty")),
                _decimal(item.get("limit_price")),
                _decimal(item.get("cum_qty")),
                _decimal(item.get("last_qty")),
                _decimal(item.get("last_price")),
                int(trade_id) if isinstance(trade_id, str) and trade_id.isdigit() else None,
                _str_or_none(item.get("liquidity_ind")),
                parse_rfc3339_ns(stamp) if isinstance(stamp, str) else -1,
                recv_ts_ns,
                is_snapshot,
            )
        )
    return reports


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{where}: expected a number")
    return value


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _decimal(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None
