"""The simulator's one trading account: own orders, Kraken v2 ``add_order``/``cancel_order`` and
the private ``executions`` channel.

Shapes follow Kraken's Spot WebSocket v2 documentation (``wss://ws-auth.kraken.com/v2``):

* ``add_order`` params: ``order_type`` (``limit`` or ``market`` here), ``side`` (``buy``/
  ``sell``), ``order_qty``, ``limit_price`` (limit orders), ``symbol``, ``token``, optional
  ``order_userref``; answer ``{"method": "add_order", "result": {"order_id": ...},
  "success": true, "time_in", "time_out", "req_id"}``.
* ``cancel_order`` params: ``order_id`` (a list of ids), ``token``; one answer per id with
  ``result.order_id``; an unknown id is ``EOrder:Unknown order``.
* ``executions`` data records (snapshot and update share the schema): ``order_id``,
  ``symbol``, ``side``, ``order_type``, ``order_qty``, ``limit_price``, ``time_in_force``,
  ``order_status`` (``pending_new``, ``new``, ``partially_filled``, ``filled``, ``canceled``),
  ``exec_type`` (``pending_new``, ``new``, ``trade``, ``filled``, ``canceled``), ``cum_qty``,
  ``cum_cost``, ``avg_price``, ``timestamp``; trades add ``exec_id``, ``trade_id``,
  ``last_qty``, ``last_price``, ``cost``, ``liquidity_ind`` (``m`` maker / ``t`` taker);
  cancels add ``reason``. Frames carry a ``sequence`` number per connection.

Assumptions where the documentation is silent (the simulator's choices): the snapshot lists
open orders with ``exec_type`` ``new``; ``avg_price`` is ``cum_cost / cum_qty`` rounded down to
the price precision; ``exec_id`` is ``E`` + the trade id. Numbers are exact: every value is an
int mantissa rendered at its scale (``cost`` at price + qty precision).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from .engine import Side, Trade
from .specs import SymbolSpec
from .wire import NumberRenderer, rfc3339

OrderType = Literal["limit", "market"]
ExecType = Literal["pending_new", "new", "trade", "filled", "canceled"]


@dataclass(slots=True)
class OwnOrder:
    """One order of the account, open or just closed."""

    order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    order_qty: int
    limit_price: int | None
    timestamp_ns: int
    order_userref: int | None = None
    cum_qty: int = 0
    cum_cost: int = 0
    """Sum of price * qty mantissas (scale: price precision + qty precision)."""
    status: str = "pending_new"


class Account:
    """Open orders of the simulator's account and the ``executions`` records they produce."""

    def __init__(self) -> None:
        self.orders: dict[str, OwnOrder] = {}
        """Open own orders by id (closed ones are dropped after their last record)."""
        self.closed: dict[str, OwnOrder] = {}
        """Closed own orders by id (filled or canceled), for tests and diagnostics."""

    def record(
        self,
        order: OwnOrder,
        exec_type: ExecType,
        now_ns: int,
        spec: SymbolSpec,
        render: NumberRenderer,
        *,
        trade: Trade | None = None,
        liquidity: str = "m",
        reason: str | None = None,
    ) -> str:
        """One ``executions`` data record (JSON object text) for ``order`` after an event."""
        pp, qp = spec.price_precision, spec.qty_precision
        parts = [
            f'"order_id":{_dumps(order.order_id)}',
            f'"symbol":{_dumps(order.symbol)}',
            f'"side":"{order.side}"',
            f'"order_type":"{order.order_type}"',
            f'"order_qty":{render(order.order_qty, qp)}',
        ]
        if order.limit_price is not None:
            parts.append(f'"limit_price":{render(order.limit_price, pp)}')
        if order.order_userref is not None:
            parts.append(f'"order_userref":{order.order_userref}')
        parts.append('"time_in_force":"GTC"')
        parts.append(f'"order_status":"{order.status}"')
        parts.append(f'"exec_type":"{exec_type}"')
        parts.append(f'"cum_qty":{render(order.cum_qty, qp)}')
        parts.append(f'"cum_cost":{render(order.cum_cost, pp + qp)}')
        if order.cum_qty:
            parts.append(f'"avg_price":{render(order.cum_cost // order.cum_qty, pp)}')
        if trade is not None:
            parts.append(f'"exec_id":"E{trade.trade_id}"')
            parts.append(f'"trade_id":{trade.trade_id}')
            parts.append(f'"last_qty":{render(trade.qty, qp)}')
            parts.append(f'"last_price":{render(trade.price, pp)}')
            parts.append(f'"cost":{render(trade.price * trade.qty, pp + qp)}')
            parts.append(f'"liquidity_ind":"{liquidity}"')
        if reason is not None:
            parts.append(f'"reason":{_dumps(reason)}')
        parts.append(f'"timestamp":"{rfc3339(now_ns, 9)}"')
        return "{" + ",".join(parts) + "}"

    def fill(self, order: OwnOrder, trade: Trade) -> None:
        """Account for one fill of ``order``; its status becomes (partially_)filled."""
        order.cum_qty += trade.qty
        order.cum_cost += trade.price * trade.qty
        order.status = "filled" if order.cum_qty >= order.order_qty else "partially_filled"

    def close(self, order: OwnOrder) -> None:
        """Move a filled or canceled order out of the open set."""
        self.orders.pop(order.order_id, None)
        self.closed[order.order_id] = order


def executions_frame(kind: Literal["snapshot", "update"], records: list[str], sequence: int) -> str:
    """A v2 ``executions`` message holding ``records`` (from :meth:`Account.record`)."""
    return (
        f'{{"channel":"executions","type":"{kind}","data":[{",".join(records)}],'
        f'"sequence":{sequence}}}'
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
