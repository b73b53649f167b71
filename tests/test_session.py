"""KrakenSession: routing, acks, precisions, resync episodes, isolation between symbols."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bookengine import Implementation
from bookengine.checksum import book_checksum
from bookengine.kraken.events import (
    BadFrame,
    BookChanged,
    BookInvalid,
    ChecksumMismatch,
    InstrumentsUpdated,
    Pong,
    RequestFailed,
    ResyncRequested,
    Subscribed,
    SystemStatus,
)
from bookengine.kraken.session import KrakenSession

SECOND = 1_000_000_000


def _text(mantissa: int, scale: int) -> str:
    whole, fraction = divmod(mantissa, 10**scale)
    return f"{whole}.{fraction:0{scale}d}".rstrip("0").rstrip(".") if scale else str(whole)


class Publisher:
    """A tiny independent v2 book publisher: a dict per side, checksums from bookengine.checksum."""

    def __init__(self, symbol: str, pp: int = 1, qp: int = 8, depth: int = 10) -> None:
        self.symbol, self.pp, self.qp, self.depth = symbol, pp, qp, depth
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def window(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids = sorted(self.bids.items(), reverse=True)[: self.depth]
        asks = sorted(self.asks.items())[: self.depth]
        return bids, asks

    def frame(
        self,
        kind: str,
        bids: list[tuple[int, int]],
        asks: list[tuple[int, int]],
        checksum: int | None = None,
    ) -> bytes:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        wbids, wasks = self.window()
        data = {
            "symbol": self.symbol,
            "bids": [{"price": _text(p, self.pp), "qty": _text(q, self.qp)} for p, q in bids],
            "asks": [{"price": _text(p, self.pp), "qty": _text(q, self.qp)} for p, q in asks],
            "checksum": book_checksum(wasks, wbids) if checksum is None else checksum,
        }
        # numbers as JSON numbers, as Kraken sends them
        text = json.dumps({"channel": "book", "type": kind, "data": [data]})
        for level in data["bids"] + data["asks"]:
            for value in level.values():
                text = text.replace(f'"{value}"', value, 1)
        return text.encode()

    def snapshot(self) -> bytes:
        self.bids = {1000 - i: 100 + i for i in range(10)}
        self.asks = {1001 + i: 200 + i for i in range(10)}
        bids, asks = self.window()
        return self.frame("snapshot", bids, asks)


def _session(impl: Implementation, **kwargs: Any) -> KrakenSession:
    return KrakenSession(
        precisions={"BTC/USD": (1, 8), "ETH/USD": (1, 8)}, implementation_name=impl.name, **kwargs
    )


def _ack(symbol: str, depth: int, req_id: int = 1) -> bytes:
    return json.dumps(
        {
            "method": "subscribe",
            "req_id": req_id,
            "success": True,
            "result": {"channel": "book", "depth": depth, "snapshot": True, "symbol": symbol},
            "time_in": "2024-01-01T00:00:00.000000Z",
            "time_out": "2024-01-01T00:00:00.000010Z",
        }
    ).encode()


def test_snapshot_and_updates_verify(impl: Implementation) -> None:
    session = _session(impl)
    pub = Publisher("BTC/USD")
    [event] = session.receive(pub.snapshot(), 5)
    assert isinstance(event, BookChanged) and event.is_snapshot and event.checksum_verified
    assert event.key == "book:BTC/USD" and event.recv_ts_ns == 5
    [event] = session.receive(pub.frame("update", [(1000, 0), (990, 7)], [(1001, 55)]), 6)
    assert isinstance(event, BookChanged) and event.checksum_verified
    assert event.book.best_bid() == (999, 101)
    state = session.books["book:BTC/USD"]
    assert (state.messages, state.checksums_checked, state.checksum_mismatches) == (2, 2, 0)


def test_depth_comes_from_the_ack(impl: Implementation) -> None:
    session = _session(impl)
    assert isinstance(session.receive(_ack("BTC/USD", 25))[0], Subscribed)
    session.receive(Publisher("BTC/USD").snapshot())
    assert session.books["book:BTC/USD"].depth == 25


def test_depth_is_inferred_from_the_snapshot_without_ack(impl: Implementation) -> None:
    session = _session(impl)
    session.receive(Publisher("BTC/USD").snapshot())  # 10 levels per side
    assert session.books["book:BTC/USD"].depth == 10


def test_precision_comes_from_instrument_frames(impl: Implementation) -> None:
    session = KrakenSession(implementation_name=impl.name)
    pub = Publisher("BTC/USD")
    [invalid] = session.receive(pub.snapshot())  # no precision yet (and no subscription)
    assert isinstance(invalid, BookInvalid) and "precision" in invalid.reason
    instrument = {
        "channel": "instrument",
        "type": "snapshot",
        "data": {
            "assets": [],
            "pairs": [
                {"symbol": "BTC/USD", "price_precision": 1, "qty_precision": 8, "status": "online"}
            ],
        },
    }
    [updated] = session.receive(json.dumps(instrument).encode())
    assert isinstance(updated, InstrumentsUpdated) and updated.symbols == ("BTC/USD",)
    [event] = session.receive(pub.snapshot())
    assert isinstance(event, BookChanged) and event.checksum_verified


def test_mismatch_marks_only_that_book_stale_and_resyncs_once(impl: Implementation) -> None:
    session = _session(impl)
    session.subscribe("book", ["BTC/USD", "ETH/USD"], depth=10, now_ns=0)
    session.requests_to_send(0)
    btc, eth = Publisher("BTC/USD"), Publisher("ETH/USD")
    session.receive(btc.snapshot(), 1)
    session.receive(eth.snapshot(), 1)
    events = session.receive(btc.frame("update", [(995, 1)], [], checksum=12345), 2 * SECOND)
    assert [type(e) for e in events] == [ChecksumMismatch, ResyncRequested]
    requests = [json.loads(r) for r in session.requests_to_send(2 * SECOND)]
    assert [(r["method"], r["params"]["symbol"], r["params"]["depth"]) for r in requests] == [
        ("unsubscribe", ["BTC/USD"], 10),
        ("subscribe", ["BTC/USD"], 10),
    ]
    # Further BTC updates are skipped, not applied and not re-requested: no resync storm.
    assert session.receive(btc.frame("update", [(994, 3)], []), 3 * SECOND) == []
    assert session.requests_to_send(3 * SECOND) == []
    # ETH keeps verifying.
    [event] = session.receive(eth.frame("update", [(999, 9)], []), 3 * SECOND)
    assert isinstance(event, BookChanged) and event.checksum_verified
    # The fresh snapshot ends the episode.
    [event] = session.receive(btc.snapshot(), 4 * SECOND)
    assert isinstance(event, BookChanged) and not session.books["book:BTC/USD"].stale
    assert session.books["book:BTC/USD"].resyncs == 1
    assert session.books["book:ETH/USD"].resyncs == 0


def test_resync_is_repeated_with_backoff_when_no_snapshot_comes(impl: Implementation) -> None:
    session = _session(impl, resync_backoff_ns=(SECOND, 8 * SECOND), resync_timeout_ns=SECOND)
    session.subscribe("book", ["BTC/USD"], depth=10, now_ns=0)
    session.requests_to_send(0)
    pub = Publisher("BTC/USD")
    session.receive(pub.snapshot(), 0)
    session.receive(pub.frame("update", [(995, 1)], [], checksum=1), 0)
    assert len(session.requests_to_send(0)) == 2
    sent_at = []
    for t in range(1, 40):
        if session.requests_to_send(t * SECOND):
            sent_at.append(t)
    # waits 1, 2, 4, 8, 8... seconds between attempts (first attempt at t=0)
    assert sent_at[:5] == [1, 3, 7, 15, 23]


def test_update_before_snapshot_is_invalid(impl: Implementation) -> None:
    session = _session(impl)
    pub = Publisher("BTC/USD")
    pub.snapshot()
    events = session.receive(pub.frame("update", [(995, 1)], []))
    assert isinstance(events[0], BookInvalid) and "before the first snapshot" in events[0].reason


def test_crossed_book_is_invalid_and_resynced(impl: Implementation) -> None:
    session = _session(impl)
    session.subscribe("book", ["BTC/USD"], depth=10)
    pub = Publisher("BTC/USD")
    session.receive(pub.snapshot())
    events = session.receive(pub.frame("update", [(1005, 1)], []))  # bid above best ask
    assert isinstance(events[0], BookInvalid) and events[0].reason == "book is crossed"
    assert isinstance(events[1], ResyncRequested)


def test_malformed_frames_are_bad_frames_not_exceptions(impl: Implementation) -> None:
    session = _session(impl)
    for frame in (b"{", b'{"channel": "book", "type": "update", "data": [{"bids": []}]}', b"42"):
        [event] = session.receive(frame)
        assert isinstance(event, BadFrame)
    assert session.bad_frames == 3


def test_status_pong_and_errors(impl: Implementation) -> None:
    session = _session(impl)
    status = {
        "channel": "status",
        "type": "update",
        "data": [
            {
                "api_version": "v2",
                "connection_id": 13834774380200032777,
                "system": "online",
                "version": "2.0.0",
            }
        ],
    }
    [event] = session.receive(json.dumps(status).encode())
    assert event == SystemStatus("online", "2.0.0", 13834774380200032777)
    req_id = session.ping(1_000)
    pong_frame = {
        "method": "pong",
        "req_id": req_id,
        "time_in": "2023-09-24T14:10:23.799685Z",
        "time_out": "2023-09-24T14:10:23.799703Z",
    }
    [pong] = session.receive(json.dumps(pong_frame).encode(), 5_000)
    assert pong == Pong(req_id, 4_000, 18_000)
    error = {
        "error": "Currency pair not supported XBT/USD",
        "method": "subscribe",
        "success": False,
        "symbol": "XBT/USD",
        "req_id": 9,
    }
    [failed] = session.receive(json.dumps(error).encode())
    assert failed == RequestFailed("subscribe", error["error"], "XBT/USD", 9)


def test_connection_lost_drops_books_and_resubscribes(impl: Implementation) -> None:
    session = _session(impl)
    session.subscribe("book", ["BTC/USD"], depth=25)
    session.requests_to_send()
    session.receive(Publisher("BTC/USD").snapshot())
    session.connection_lost()
    assert session.books["book:BTC/USD"].book is None
    session.resubscribe_all()
    [request] = [json.loads(r) for r in session.requests_to_send()]
    assert request["params"] == {
        "channel": "book",
        "symbol": ["BTC/USD"],
        "depth": 25,
        "snapshot": True,
    }


def test_invalid_depths_are_refused() -> None:
    session = KrakenSession()
    with pytest.raises(ValueError, match="depth"):
        session.subscribe("book", ["BTC/USD"], depth=42)
    with pytest.raises(ValueError, match="depth"):
        session.subscribe("level3", ["BTC/USD"], depth=25)
