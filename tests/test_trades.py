"""Trade and executions frames become exact events of the session (one per frame and symbol)."""

from __future__ import annotations

import json

from bookengine import Implementation
from bookengine.kraken.events import Executions, Trade, Trades
from bookengine.kraken.session import KrakenSession


def _trade_frame(kind: str = "update") -> bytes:
    data = [
        {
            "symbol": "BTC/USD",
            "side": "buy",
            "price": 65009.1,
            "qty": 0.00012,
            "ord_type": "market",
            "trade_id": 4665906,
            "timestamp": "2024-03-01T10:00:00.123456Z",
        },
        {
            "symbol": "BTC/USD",
            "side": "sell",
            "price": 65009.0,
            "qty": 1.5,
            "ord_type": "limit",
            "trade_id": 4665907,
            "timestamp": "2024-03-01T10:00:00.123457Z",
        },
    ]
    return json.dumps({"channel": "trade", "type": kind, "data": data}).encode()


def test_trade_frame_is_one_exact_event(impl: Implementation) -> None:
    session = KrakenSession(precisions={"BTC/USD": (1, 8)}, implementation_name=impl.name)
    events = session.receive(_trade_frame(), 77)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, Trades)
    assert (event.symbol, event.price_precision, event.qty_precision) == ("BTC/USD", 1, 8)
    assert event.recv_ts_ns == 77 and not event.is_snapshot
    first, second = event.trades
    assert first == Trade(
        "BTC/USD", "buy", 650091, 12000, 4665906, 1709287200123456000, 77, "market"
    )
    assert (second.side, second.price, second.qty, second.ord_type) == (
        "sell",
        650090,
        150000000,
        "limit",
    )
    assert first.book_side == "ask" and second.book_side == "bid"


def test_trades_without_precision_are_counted_not_guessed(impl: Implementation) -> None:
    session = KrakenSession(implementation_name=impl.name)
    assert session.receive(_trade_frame("snapshot"), 1) == []
    assert session.trades_unpriced == 2
    assert session.bad_frames == 0


def test_executions_frame_is_an_event(impl: Implementation) -> None:
    frame = json.dumps(
        {
            "channel": "executions",
            "type": "update",
            "data": [{"order_id": "OABC", "exec_type": "new", "order_qty": 0.5}],
            "sequence": 3,
        }
    )
    (event,) = KrakenSession(implementation_name=impl.name).receive(frame, 5)
    assert isinstance(event, Executions)
    (report,) = event.reports
    assert (report.order_id, report.exec_type, str(report.order_qty)) == ("OABC", "new", "0.5")
