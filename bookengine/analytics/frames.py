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

from ..kraken.events import MAKER_SIDE, ExecutionReport
from ..kraken.events import Trade as TradePrint
from ..kraken.frames import decode_executions as parse_executions
from ..kraken.frames import decode_trades as parse_trades

__all__ = [
    "MAKER_SIDE",
    "ExecutionReport",
    "TradePrint",
    "frame_channel",
    "parse_executions",
    "parse_trades",
]


def frame_channel(frame: bytes | str) -> str | None:
    """``"trade"`` or ``"executions"`` when the frame may be one of those (a cheap byte test)."""
    data = frame.encode() if isinstance(frame, str) else frame
    # executions first: its records say "exec_type":"trade" too.
    if b'"executions"' in data:
        return "executions"
    if b'"trade"' in data:
        return "trade"
    return None
