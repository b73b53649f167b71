"""Encode the requests a session sends to Kraken; decode the frames the books do not need.

Requests: v2 JSON-RPC style and v1 events. Decoders (the Python path of the session):
public ``trade`` frames (exact mantissas at the symbol's precision) and private ``executions``
frames (``Decimal``: an own order's symbol precision may not be known yet); never floats.
The compiled reader parses ``trade`` frames itself; :func:`decode_trades` is its twin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import ProtocolError
from ..numbers import parse_mantissa
from ..timestamps import parse_rfc3339_ns
from .events import MAKER_SIDE, ExecutionReport, Trade


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def subscribe_v2(
    channel: str,
    symbols: Sequence[str] | None,
    *,
    depth: int | None = None,
    req_id: int | None = None,
    token: str | None = None,
    snapshot: bool = True,
) -> str:
    """``{"method": "subscribe", "params": {...}}`` for ``book``, ``level3``, ``instrument``..."""
    params: dict[str, Any] = {"channel": channel}
    if symbols is not None:
        params["symbol"] = list(symbols)
    if depth is not None:
        params["depth"] = depth
    if channel != "heartbeat":
        params["snapshot"] = snapshot
    if token is not None:
        params["token"] = token
    message: dict[str, Any] = {"method": "subscribe", "params": params}
    if req_id is not None:
        message["req_id"] = req_id
    return _dumps(message)


def unsubscribe_v2(
    channel: str,
    symbols: Sequence[str],
    *,
    depth: int | None = None,
    req_id: int | None = None,
    token: str | None = None,
) -> str:
    """``{"method": "unsubscribe", ...}``; Kraken wants the same depth as the subscription."""
    params: dict[str, Any] = {"channel": channel, "symbol": list(symbols)}
    if depth is not None:
        params["depth"] = depth
    if token is not None:
        params["token"] = token
    message: dict[str, Any] = {"method": "unsubscribe", "params": params}
    if req_id is not None:
        message["req_id"] = req_id
    return _dumps(message)


def ping_v2(req_id: int) -> str:
    """Application-level ping; Kraken answers ``pong`` with ``time_in``/``time_out``."""
    return _dumps({"method": "ping", "req_id": req_id})


def subscribe_v1(pairs: Sequence[str], depth: int, *, reqid: int | None = None) -> str:
    """v1 ``{"event": "subscribe", "subscription": {"name": "book", "depth": N}}``."""
    message: dict[str, Any] = {
        "event": "subscribe",
        "pair": list(pairs),
        "subscription": {"name": "book", "depth": depth},
    }
    if reqid is not None:
        message["reqid"] = reqid
    return _dumps(message)


def unsubscribe_v1(pairs: Sequence[str], depth: int, *, reqid: int | None = None) -> str:
    """v1 unsubscribe from ``book-N``."""
    message: dict[str, Any] = {
        "event": "unsubscribe",
        "pair": list(pairs),
        "subscription": {"name": "book", "depth": depth},
    }
    if reqid is not None:
        message["reqid"] = reqid
    return _dumps(message)


def ping_v1(reqid: int) -> str:
    """v1 ``{"event": "ping", "reqid": N}``."""
    return _dumps({"event": "ping", "reqid": reqid})


# -- decoding (the Python path) -----------------------------------------------------------


def _loads(frame: bytes | str) -> Any:
    # Numbers stay text (then exact mantissas); a malformed frame is the session's business.
    try:
        return json.loads(frame, parse_float=str, parse_int=str)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def decode_trades(
    frame: bytes | str,
    recv_ts_ns: int,
    precisions: Callable[[str], tuple[int, int] | None],
    *,
    include_snapshot: bool = False,
) -> list[Trade]:
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
    trades: list[Trade] = []
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
            Trade(
                symbol,
                side,
                price,
                qty,
                int(trade_id) if isinstance(trade_id, str) and trade_id.isdigit() else -1,
                parse_rfc3339_ns(stamp) if isinstance(stamp, str) else -1,
                recv_ts_ns,
                ord_type if isinstance(ord_type := item.get("ord_type"), str) else "",
            )
        )
    return trades


def decode_executions(frame: bytes | str, recv_ts_ns: int) -> list[ExecutionReport]:
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
