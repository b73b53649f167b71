"""Kraken's wire shapes, rendered from int mantissas: v2 JSON objects and v1 arrays.

Numbers are written as JSON text straight from the mantissa, never through a float:

* v2 ``plain`` style (the default, what Kraken's feed shows): the decimal value with trailing
  fractional zeros stripped, keeping one digit after the point (``0.001``, ``4.0``, ``0.0``;
  an integer scale prints ``4``);
* v2 ``exponent`` style: the same digits as Python's float ``repr`` would print them
  (``1.2345e-05``), to exercise parsers that must accept exponent notation;
* v1: strings with a fixed number of decimals (``"27120.00000"``).

Timestamps: v2 RFC 3339 UTC (``Z``) with 6 fractional digits for message times and 9 for
level3 order times; v1 epoch seconds with 6 digits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from ..numbers import mantissa_text
from .engine import Trade
from .specs import COST_MIN, SymbolSpec, asset_precision
from .windows import LevelUpdate, OrderEvent

NumberStyle = Literal["plain", "exponent"]
NumberRenderer = Callable[[int, int], str]


def plain_number(mantissa: int, scale: int) -> str:
    """``mantissa / 10**scale`` as JSON number text without trailing zeros (``4.0``, ``0.001``)."""
    if scale == 0:
        return str(mantissa)
    whole, fraction = divmod(mantissa, 10**scale)
    digits = f"{fraction:0{scale}d}".rstrip("0") or "0"
    return f"{whole}.{digits}"


def exponent_number(mantissa: int, scale: int) -> str:
    """Like :func:`plain_number`, but in exponent form where Python's float ``repr`` uses it.

    ``repr`` switches to ``d.ddde±XX`` when the decimal exponent of the first significant
    digit is below -4 or at least 16: ``exponent_number(12345, 9) == "1.2345e-05"``.
    """
    if mantissa == 0:
        return "0.0" if scale else "0"
    text = str(mantissa)
    exponent = len(text) - 1 - scale
    if -4 <= exponent < 16:
        return plain_number(mantissa, scale)
    digits = text.rstrip("0")
    head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{head}e{exponent:+03d}"


def number_renderer(style: NumberStyle) -> NumberRenderer:
    """The renderer for a :data:`NumberStyle`."""
    if style == "plain":
        return plain_number
    if style == "exponent":
        return exponent_number
    raise ValueError(f"number style must be 'plain' or 'exponent', got {style!r}")


def rfc3339(ns: int, digits: int = 6) -> str:
    """ns since the epoch -> ``2024-01-08T12:26:39.526146Z`` (``digits`` fractional digits)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{nanos:09d}"[:digits]
    return f"{head}.{fraction}Z" if digits else f"{head}Z"


def epoch_text(ns: int) -> str:
    """ns since the epoch -> v1 ``"1534614248.456738"``."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return f"{seconds}.{nanos // 1000:06d}"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# -- v2 ------------------------------------------------------------------------------------


def v2_status(connection_id: int, system: str) -> str:
    """The ``status`` channel update (sent on connect and on every system state change)."""
    return (
        '{"channel":"status","type":"update","data":[{"api_version":"v2",'
        f'"connection_id":{connection_id},"system":{_dumps(system)},"version":"2.0.0"}}]}}'
    )


def v2_heartbeat() -> str:
    return '{"channel":"heartbeat"}'


def v2_pong(req_id: Any, time_in_ns: int, time_out_ns: int) -> str:
    """The answer to ``{"method": "ping"}``; ``req_id`` echoed when the request had one."""
    message: dict[str, Any] = {"method": "pong"}
    if req_id is not None:
        message["req_id"] = req_id
    message["time_in"] = rfc3339(time_in_ns)
    message["time_out"] = rfc3339(time_out_ns)
    return _dumps(message)


def v2_ack(
    method: str, req_id: Any, result: dict[str, Any], time_in_ns: int, time_out_ns: int
) -> str:
    """A successful subscribe/unsubscribe acknowledgement (one per symbol)."""
    message: dict[str, Any] = {"method": method}
    if req_id is not None:
        message["req_id"] = req_id
    message["result"] = result
    message["success"] = True
    message["time_in"] = rfc3339(time_in_ns)
    message["time_out"] = rfc3339(time_out_ns)
    return _dumps(message)


def v2_error(
    error: str,
    method: str | None,
    req_id: Any,
    time_in_ns: int,
    time_out_ns: int,
    symbol: str | None = None,
) -> str:
    """A failed request: ``symbol`` at top level when the error is about one symbol."""
    message: dict[str, Any] = {"error": error}
    if method is not None:
        message["method"] = method
    if req_id is not None:
        message["req_id"] = req_id
    message["success"] = False
    if symbol is not None:
        message["symbol"] = symbol
    message["time_in"] = rfc3339(time_in_ns)
    message["time_out"] = rfc3339(time_out_ns)
    return _dumps(message)


def _v2_levels(levels: Iterable[LevelUpdate], spec: SymbolSpec, render: NumberRenderer) -> str:
    pp, qp = spec.price_precision, spec.qty_precision
    return ",".join(
        f'{{"price":{render(lv.price, pp)},"qty":{render(lv.qty, qp)}}}' for lv in levels
    )


def v2_book(
    kind: Literal["snapshot", "update"],
    spec: SymbolSpec,
    bids: Sequence[LevelUpdate],
    asks: Sequence[LevelUpdate],
    checksum: int,
    now_ns: int,
    render: NumberRenderer,
) -> str:
    """A v2 ``book`` snapshot or update for one symbol."""
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":{_dumps(spec.symbol)},'
        f'"bids":[{_v2_levels(bids, spec, render)}],"asks":[{_v2_levels(asks, spec, render)}],'
        f'"checksum":{checksum},"timestamp":"{rfc3339(now_ns)}"}}]}}'
    )


def _v2_orders(
    events: Iterable[OrderEvent], spec: SymbolSpec, render: NumberRenderer, with_event: bool
) -> str:
    pp, qp = spec.price_precision, spec.qty_precision
    parts = []
    for ev in events:
        head = f'{{"event":"{ev.event}",' if with_event else "{"
        parts.append(
            f'{head}"order_id":"{ev.order_id}","limit_price":{render(ev.price, pp)},'
            f'"order_qty":{render(ev.qty, qp)},"timestamp":"{rfc3339(ev.timestamp_ns, 9)}"}}'
        )
    return ",".join(parts)


def v2_level3(
    kind: Literal["snapshot", "update"],
    spec: SymbolSpec,
    bids: Sequence[OrderEvent],
    asks: Sequence[OrderEvent],
    checksum: int,
    now_ns: int,
    render: NumberRenderer,
) -> str:
    """A v2 ``level3`` snapshot (orders without ``event``) or update (with ``event``)."""
    with_event = kind == "update"
    return (
        f'{{"channel":"level3","type":"{kind}","data":[{{"symbol":{_dumps(spec.symbol)},'
        f'"checksum":{checksum},'
        f'"bids":[{_v2_orders(bids, spec, render, with_event)}],'
        f'"asks":[{_v2_orders(asks, spec, render, with_event)}],'
        f'"timestamp":"{rfc3339(now_ns, 9)}"}}]}}'
    )


def v2_trades(
    kind: Literal["snapshot", "update"],
    spec: SymbolSpec,
    trades: Sequence[Trade],
    render: NumberRenderer,
) -> str:
    """A v2 ``trade`` message (one symbol, oldest trade first)."""
    pp, qp = spec.price_precision, spec.qty_precision
    symbol = _dumps(spec.symbol)
    data = ",".join(
        f'{{"symbol":{symbol},"side":"{t.side}","price":{render(t.price, pp)},'
        f'"qty":{render(t.qty, qp)},"ord_type":"{t.ord_type}","trade_id":{t.trade_id},'
        f'"timestamp":"{rfc3339(t.timestamp_ns)}"}}'
        for t in trades
    )
    return f'{{"channel":"trade","type":"{kind}","data":[{data}]}}'


def _increment(scale: int, render: NumberRenderer) -> str:
    return render(1, scale)


def v2_instrument(specs: Sequence[SymbolSpec], render: NumberRenderer, status: str) -> str:
    """The ``instrument`` snapshot: the simulated pairs and their assets.

    Increments and minimums are rendered from mantissas like prices; ``status`` is the pairs'
    trading status (``online`` normally).
    """
    assets: dict[str, str] = {}
    for spec in specs:
        for asset in (spec.base, spec.quote):
            precision, display = asset_precision(asset)
            assets.setdefault(
                asset,
                f'{{"id":{_dumps(asset)},"status":"enabled","precision":{precision},'
                f'"precision_display":{display},"borrowable":false,'
                f'"collateral_value":0.0}}',
            )
    pairs = []
    for spec in specs:
        pp, qp = spec.price_precision, spec.qty_precision
        increment = _increment(pp, render)
        pairs.append(
            f'{{"symbol":{_dumps(spec.symbol)},"base":{_dumps(spec.base)},'
            f'"quote":{_dumps(spec.quote)},"status":{_dumps(status)},'
            f'"qty_precision":{qp},"qty_increment":{_increment(qp, render)},'
            f'"price_precision":{pp},"cost_precision":{spec.cost_precision},'
            f'"marginable":false,"has_index":true,"cost_min":{render(*COST_MIN)},'
            f'"tick_size":{increment},"price_increment":{increment},'
            f'"qty_min":{render(spec.qty_min, qp)}}}'
        )
    return (
        '{"channel":"instrument","type":"snapshot","data":{'
        f'"assets":[{",".join(assets.values())}],"pairs":[{",".join(pairs)}]}}}}'
    )


# -- v1 ------------------------------------------------------------------------------------


def v1_system_status(connection_id: int, status: str) -> str:
    return _dumps(
        {
            "connectionID": connection_id,
            "event": "systemStatus",
            "status": status,
            "version": "1.9.1",
        }
    )


def v1_heartbeat() -> str:
    return '{"event":"heartbeat"}'


def v1_pong(reqid: Any) -> str:
    message: dict[str, Any] = {"event": "pong"}
    if reqid is not None:
        message["reqid"] = reqid
    return _dumps(message)


def v1_error(error: str, reqid: Any = None) -> str:
    message: dict[str, Any] = {"errorMessage": error, "event": "error"}
    if reqid is not None:
        message["reqid"] = reqid
    return _dumps(message)


def v1_subscription_status(
    status: Literal["subscribed", "unsubscribed", "error"],
    pair: str | None,
    subscription: dict[str, Any],
    reqid: Any,
    channel_id: int | None = None,
    channel_name: str | None = None,
    error: str | None = None,
) -> str:
    """A v1 ``subscriptionStatus`` event (one per pair)."""
    message: dict[str, Any] = {}
    if channel_id is not None:
        message["channelID"] = channel_id
    if channel_name is not None:
        message["channelName"] = channel_name
    if error is not None:
        message["errorMessage"] = error
    message["event"] = "subscriptionStatus"
    if pair is not None:
        message["pair"] = pair
    if reqid is not None:
        message["reqid"] = reqid
    message["status"] = status
    message["subscription"] = subscription
    return _dumps(message)


def _v1_levels(levels: Iterable[LevelUpdate], spec: SymbolSpec) -> str:
    pd, qd = spec.v1_price_decimals, spec.v1_qty_decimals
    pf, qf = spec.v1_price_factor, spec.v1_qty_factor
    parts = []
    for lv in levels:
        flag = ',"r"' if lv.republish else ""
        parts.append(
            f'["{mantissa_text(lv.price * pf, pd)}","{mantissa_text(lv.qty * qf, qd)}",'
            f'"{epoch_text(lv.updated_ns)}"{flag}]'
        )
    return ",".join(parts)


def v1_book_snapshot(
    channel_id: int,
    channel_name: str,
    spec: SymbolSpec,
    bids: Sequence[LevelUpdate],
    asks: Sequence[LevelUpdate],
) -> str:
    """``[channelID, {"as": [...], "bs": [...]}, "book-N", pair]`` (no checksum)."""
    return (
        f'[{channel_id},{{"as":[{_v1_levels(asks, spec)}],"bs":[{_v1_levels(bids, spec)}]}},'
        f'"{channel_name}",{_dumps(spec.v1_pair)}]'
    )


def v1_book_update(
    channel_id: int,
    channel_name: str,
    spec: SymbolSpec,
    bids: Sequence[LevelUpdate],
    asks: Sequence[LevelUpdate],
    checksum: int,
) -> str:
    """A v1 update: ``{"a": ...}`` and/or ``{"b": ...}`` payloads, ``"c"`` in the last one."""
    payloads = []
    if asks:
        payloads.append(f'"a":[{_v1_levels(asks, spec)}]')
    if bids:
        payloads.append(f'"b":[{_v1_levels(bids, spec)}]')
    if not payloads:
        payloads.append('"a":[]')
    payloads[-1] += f',"c":"{checksum}"'
    body = ",".join("{" + payload + "}" for payload in payloads)
    return f'[{channel_id},{body},"{channel_name}",{_dumps(spec.v1_pair)}]'
