"""Trade and executions frames become exact events of the session (one per frame and symbol)."""

from __future__ import annotations

import json
import random

import pytest

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


KEYS = ["symbol", "side", "price", "qty", "ord_type", "trade_id", "timestamp"]


def _events(impl: Implementation, frame: bytes) -> tuple[list[object], KrakenSession]:
    session = KrakenSession(precisions={"BTC/USD": (1, 8)}, implementation_name=impl.name)
    return session.receive(frame, 5), session


@pytest.mark.parametrize("seed", range(12))
def test_trade_record_keys_read_alike_in_any_order(impl: Implementation, seed: int) -> None:
    # Kraken's compact layout is read by the line reader (the key's first letter picks the
    # key); the same frame with spaces goes to the session's JSON decoder. Any key order, and
    # the optional keys left out, must give the same events.
    rng = random.Random(seed)
    records = []
    for k in range(rng.randint(1, 4)):
        record = json.loads(_trade_frame())["data"][k % 2]
        keys = KEYS[:4] + [key for key in KEYS[4:] if rng.random() < 0.7]
        rng.shuffle(keys)
        records.append({key: record[key] for key in keys})
    data = {"channel": "trade", "type": "update", "data": records}
    compact = json.dumps(data, separators=(",", ":")).encode()
    compact_events, session = _events(impl, compact)
    spaced_events, _ = _events(impl, json.dumps(data).encode())
    assert compact_events == spaced_events
    assert len(compact_events) == 1 and len(compact_events[0].trades) == len(records)
    if impl.name == "cython":
        assert session._router.trade_frames == 1  # read in C, not handed to the decoder


@pytest.mark.parametrize(
    "near_miss",
    [
        ('"side":', '"sidx":'),  # an unknown key with a known key's first letter
        ('"qty":', '"quantity":'),
        ('"trade_id":', '"trade_idx":'),
        ('"ord_type":"limit"', '"ord_type":"limit","side":"buy"'),  # a key twice
        ('"BTC/USD"', '"BTC\\/USD"'),  # an escape: the same symbol to a JSON decoder
        ('"limit"', '"l\\u0069mit"'),
        ('"market"', '"m\u00e4rket"'),  # not ASCII
        ('"price":65009.1', '"price":65009.1e0'),
    ],
)
def test_trade_record_near_misses_read_as_the_decoder_reads_them(
    impl: Implementation, near_miss: tuple[str, str]
) -> None:
    compact = json.dumps(json.loads(_trade_frame()), separators=(",", ":"))
    assert near_miss[0] in compact
    frame = compact.replace(near_miss[0], near_miss[1], 1).encode()
    try:
        expected: object = _events(impl, json.dumps(json.loads(frame)).encode())[0]
    except Exception as exc:  # whatever the decoder says, the reader says too
        expected = repr(exc)
    try:
        got: object = _events(impl, frame)[0]
    except Exception as exc:
        got = repr(exc)
    assert got == expected
