"""How events reach the consumer: the conflating mailbox and who reads the socket.

A fake WebSocket stands in for ``websockets`` (frames pushed by the test, and an assertion that
two coroutines are never inside ``recv`` at once, which websockets refuses), so that each
hand-off between the reader task and the consumer is exercised deterministically.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Coroutine
from typing import Any

import pytest

from bookengine.feed import FeedError, FeedMetrics, KrakenFeed, _Connection, _Mailbox
from bookengine.kraken.events import (
    BookChanged,
    BookInvalid,
    Event,
    OrderEffect,
    ResyncRequested,
    SystemStatus,
    new_book_changed,
)


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 20))


def changed(key: str, n: int, snapshot: bool = False) -> BookChanged:
    return BookChanged(key, key.split(":")[1], None, n, snapshot, True)


def status(version: str) -> bytes:
    data = {"api_version": "v2", "connection_id": 1, "system": "online", "version": version}
    return json.dumps({"channel": "status", "type": "update", "data": [data]}).encode()


HEARTBEAT = b'{"channel":"heartbeat"}'
SNAPSHOT = (
    b'{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD",'
    b'"bids":[{"price":100.0,"qty":1.0}],"asks":[{"price":101.0,"qty":1.0}]}]}'
)
CROSSING = (
    b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",'
    b'"bids":[{"price":102.0,"qty":1.0}],"asks":[]}]}'
)


class Closed(Exception):
    """What the fake socket raises once closed (websockets: ConnectionClosed)."""


class FakeWebSocket:
    def __init__(self) -> None:
        self.frames: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        self.in_recv = 0
        self.sent: list[tuple[asyncio.Task[Any] | None, str]] = []

    def push(self, *frames: bytes | BaseException) -> None:
        for frame in frames:
            self.frames.put_nowait(frame)

    async def recv(self, decode: bool | None = None) -> bytes:
        assert self.in_recv == 0, "two coroutines in recv at once"
        self.in_recv += 1
        try:
            item = await self.frames.get()
        finally:
            self.in_recv -= 1
        if isinstance(item, BaseException):
            self.frames.put_nowait(item)  # closed for good
            raise item
        return item

    async def send(self, text: str) -> None:
        self.sent.append((asyncio.current_task(), text))


class Harness:
    """A one-connection feed whose connection serves a FakeWebSocket."""

    def __init__(self, **options: Any) -> None:
        self.seen: list[tuple[asyncio.Task[Any] | None, Event]] = []
        self.feed = KrakenFeed(
            book=["BTC/USD"], url="ws://127.0.0.1:9/v2", on_event=self.on_event, **options
        )
        self.feed.mailbox = _Mailbox(self.feed.metrics)
        self.feed.instruments_ready = asyncio.Event()
        self.feed._build()
        self.connection: _Connection = self.feed.connections[0]
        self.feed._puller = self.connection
        self.ws = FakeWebSocket()
        self.reader = self.connection._start_reader(self.ws)
        self.raise_in_on_event: BaseException | None = None

    def on_event(self, event: Event) -> None:
        self.seen.append((asyncio.current_task(), event))
        if self.raise_in_on_event is not None:
            raise self.raise_in_on_event

    def processed_by(self) -> list[str]:
        return ["reader" if task is self.reader else "consumer" for task, _ in self.seen]

    async def stop(self) -> None:
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


async def spin(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


# -- the mailbox ---------------------------------------------------------------------------


def test_mailbox_merges_pending_changes_of_one_book_in_place() -> None:
    async def main() -> None:
        metrics = FeedMetrics()
        mailbox = _Mailbox(metrics)
        mailbox.put(changed("book:A", 1, snapshot=True), 100)
        mailbox.put(SystemStatus("online", "1", None), 110)
        mailbox.put(changed("book:B", 2), 120)
        mailbox.put(changed("book:A", 3), 130)  # merged into the first, which keeps its place
        mailbox.put(changed("book:A", 4), 140)
        assert len(mailbox) == 3
        first = await mailbox.get()
        assert isinstance(first, BookChanged)
        assert (first.key, first.recv_ts_ns, first.conflated, first.is_snapshot) == (
            "book:A",
            4,
            2,
            True,  # a snapshot merged into a later update still says it rebuilt the book
        )
        assert metrics.conflated == {"book:A": 2}
        assert isinstance(await mailbox.get(), SystemStatus)
        mailbox.put(changed("book:A", 5), 150)  # A was taken: a new change queues anew
        second = await mailbox.get()
        assert isinstance(second, BookChanged)
        assert (second.key, second.conflated) == ("book:B", 0)
        third = await mailbox.get()
        assert isinstance(third, BookChanged)
        assert (third.key, third.recv_ts_ns, third.conflated) == ("book:A", 5, 0)
        assert len(mailbox) == 0
        assert len(metrics.delivery_ns) == 4

    run(main())


def test_mailbox_keeps_the_first_receive_time_of_a_merged_change() -> None:
    async def main() -> None:
        metrics = FeedMetrics()
        mailbox = _Mailbox(metrics)
        mailbox.put(changed("book:A", 1), 5)
        mailbox.put(changed("book:A", 2), 10**18)  # later receive time: not the one measured
        await mailbox.get()
        assert metrics.delivery_ns.percentile(50) is not None
        assert metrics.delivery_ns.percentile(50) > 0  # measured from 5, not from 10**18

    run(main())


def test_mailbox_wakes_a_waiting_consumer() -> None:
    async def main() -> None:
        mailbox = _Mailbox(FeedMetrics())
        consumer = asyncio.ensure_future(mailbox.get())
        await spin()
        mailbox.poke()  # woken with nothing to take: it waits again
        await spin()
        assert not consumer.done()
        mailbox.put(SystemStatus("online", "1", None), 0)
        await spin()
        assert consumer.done() and isinstance(consumer.result(), SystemStatus)

    run(main())


def test_mailbox_forgets_a_cancelled_waiter() -> None:
    async def main() -> None:
        mailbox = _Mailbox(FeedMetrics())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(mailbox.get(), 0.01)
        assert mailbox._waiters == []
        mailbox.put(SystemStatus("online", "1", None), 0)
        assert isinstance(await mailbox.get(), SystemStatus)

    run(main())


def test_mailbox_raises_the_feed_error_after_the_pending_events() -> None:
    async def main() -> None:
        mailbox = _Mailbox(FeedMetrics())
        waiting = asyncio.ensure_future(mailbox.get())
        await spin()
        mailbox.fail(FeedError("token refused"))
        with pytest.raises(FeedError, match="token refused"):
            await waiting
        mailbox.put(SystemStatus("online", "1", None), 0)
        assert isinstance(await mailbox.get(), SystemStatus)  # events first
        with pytest.raises(FeedError, match="token refused"):
            await mailbox.get()

    run(main())


def test_merged_level3_changes_keep_every_effect_in_order() -> None:
    def effect(order_id: str) -> OrderEffect:
        return OrderEffect("delete", "delete", "bid", order_id, 10, -1, 1, 0, 0, 0, 0, -1, -1)

    def level3(n: int, ids: str, snapshot: bool = False) -> BookChanged:
        effects = tuple(effect(i) for i in ids)
        return new_book_changed("level3:A", "A", None, n, snapshot, True, effects)

    async def main() -> None:
        mailbox = _Mailbox(FeedMetrics())
        mailbox.put(level3(1, "ab"), 100)
        mailbox.put(level3(2, "c"), 110)
        merged = await mailbox.get()
        assert isinstance(merged, BookChanged)
        assert [e.order_id for e in merged.effects] == ["a", "b", "c"]
        # A snapshot in between voids what came before it (it replaced the book).
        mailbox.put(level3(3, "d"), 120)
        mailbox.put(level3(4, "", snapshot=True), 130)
        mailbox.put(level3(5, "e"), 140)
        merged = await mailbox.get()
        assert isinstance(merged, BookChanged) and merged.is_snapshot
        assert [e.order_id for e in merged.effects] == ["e"]

    run(main())


def test_new_book_changed_is_a_book_changed() -> None:
    fast = new_book_changed("book:A", "A", None, 7, True, False)
    slow = BookChanged("book:A", "A", None, 7, True, False)
    assert type(fast) is BookChanged
    assert (fast, hash(fast), repr(fast)) == (slow, hash(slow), repr(slow))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.key = "book:B"  # type: ignore[misc]
    assert dataclasses.replace(fast, conflated=2).conflated == 2


# -- who reads: the reader task, or the waiting consumer itself -----------------------------


async def consume(feed: KrakenFeed, out: list[Event]) -> None:
    """An ``async for`` consumer that keeps every event (and never waits for anything else)."""
    async for event in feed:
        out.append(event)


async def until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def test_a_waiting_consumer_reads_the_frames_itself() -> None:
    async def main() -> None:
        h = Harness()
        got: list[Event] = []
        consumer = asyncio.ensure_future(consume(h.feed, got))
        await spin()
        # The reader was in recv when the consumer came: it reads the next frame, then hands
        # the turn to the waiting consumer.
        h.ws.push(status("1"))
        await until(lambda: len(got) == 1)
        assert h.processed_by() == ["reader"]
        await until(lambda: h.connection._consumer_in_recv)
        assert h.connection._reader_park is not None  # parked while the consumer reads
        h.ws.push(status("2"), HEARTBEAT, HEARTBEAT, status("3"))
        await until(lambda: len(got) == 3)
        assert [e.version for e in got if isinstance(e, SystemStatus)] == ["1", "2", "3"]
        assert h.processed_by() == ["reader", "consumer", "consumer"]
        assert h.connection.session.frames == 5
        assert len(h.feed.metrics.processing_ns) == 5
        assert len(h.feed.metrics.delivery_ns) == 3
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        # Cancelled in recv: the reader reads again.
        h.ws.push(status("4"))
        await until(lambda: len(h.seen) == 4)
        assert h.processed_by()[-1] == "reader"
        await h.stop()

    run(main())


def test_the_reader_reads_while_the_consumer_is_away() -> None:
    async def main() -> None:
        h = Harness()
        h.ws.push(status("1"))
        assert isinstance(await h.feed.__anext__(), SystemStatus)
        # The consumer is busy elsewhere: frames are read and processed without it.
        h.ws.push(status("2"), status("3"))
        await asyncio.sleep(0.01)
        assert [e.version for _, e in h.seen if isinstance(e, SystemStatus)] == ["1", "2", "3"]
        assert h.processed_by()[1:] == ["reader", "reader"]
        versions = []
        for _ in range(2):
            event = await h.feed.__anext__()
            assert isinstance(event, SystemStatus)
            versions.append(event.version)
        assert versions == ["2", "3"]
        # Back and waiting: after the reader's next frame the consumer reads again.
        got: list[Event] = []
        consumer = asyncio.ensure_future(consume(h.feed, got))
        await spin()
        h.ws.push(status("4"))
        await until(lambda: len(got) == 1 and h.connection._consumer_in_recv)
        h.ws.push(status("5"))
        await until(lambda: len(got) == 2)
        assert h.processed_by()[-2:] == ["reader", "consumer"]
        consumer.cancel()
        await h.stop()

    run(main())


def test_order_is_kept_when_a_burst_is_split_between_reader_and_consumer() -> None:
    async def main() -> None:
        h = Harness()
        h.ws.push(*(status(str(n)) for n in range(50)))
        got = []
        while len(got) < 50:
            event = await h.feed.__anext__()
            assert isinstance(event, SystemStatus)
            got.append(int(event.version))
            if len(got) % 7 == 0:
                await asyncio.sleep(0.001)  # away now and then
        assert got == list(range(50))
        assert {"reader", "consumer"} <= set(h.processed_by())
        await h.stop()

    run(main())


def test_a_cancelled_consumer_gives_the_turn_back() -> None:
    async def main() -> None:
        h = Harness()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(h.feed.__anext__(), 0.01)  # was reading, then cancelled
        h.ws.push(status("1"))
        await asyncio.sleep(0.01)
        assert h.processed_by() == ["reader"]
        assert (await h.feed.__anext__()).version == "1"  # type: ignore[union-attr]
        await h.stop()

    run(main())


def test_conflation_still_happens_when_the_consumer_lags() -> None:
    async def main() -> None:
        h = Harness()
        h.connection.session.instruments.set("BTC/USD", 1, 8)
        h.ws.push(SNAPSHOT)
        first = await h.feed.__anext__()
        assert isinstance(first, BookChanged) and first.is_snapshot
        update = SNAPSHOT.replace(b'"snapshot"', b'"update"').replace(b"1.0}]}", b"2.0}]}")
        h.ws.push(update, update, update)
        await asyncio.sleep(0.01)  # away: the reader reads all three
        event = await h.feed.__anext__()
        assert isinstance(event, BookChanged) and event.conflated == 2
        assert h.feed.metrics.conflated == {"book:BTC/USD": 2}
        assert h.feed.metrics.messages == 4
        await h.stop()

    run(main())


def test_a_closed_socket_ends_the_reader_even_when_the_consumer_was_reading() -> None:
    async def main() -> None:
        h = Harness()
        h.ws.push(status("1"))
        await h.feed.__anext__()  # read by the reader, which hands the turn over
        consumer = asyncio.ensure_future(h.feed.__anext__())
        await spin()
        assert h.connection._consumer_in_recv
        h.ws.push(Closed("going away"))
        with pytest.raises(Closed):
            await h.reader  # the connection ends (and reconnects) as it always did
        await spin()
        assert not consumer.done()  # still waiting for events (ConnectionLost...)
        h.feed.mailbox.put(SystemStatus("online", "x", None), 0)
        assert isinstance(await consumer, SystemStatus)

    run(main())


def test_an_error_while_the_consumer_processes_is_raised_by_the_reader() -> None:
    async def main() -> None:
        h = Harness()
        h.ws.push(status("1"))
        await h.feed.__anext__()
        consumer = asyncio.ensure_future(h.feed.__anext__())
        await spin()
        assert h.connection._consumer_in_recv
        h.raise_in_on_event = RuntimeError("callback failed")
        h.ws.push(status("1"))
        with pytest.raises(RuntimeError, match="callback failed"):
            await h.reader
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)

    run(main())


def test_requests_are_sent_by_the_reader() -> None:
    async def main() -> None:
        h = Harness()
        session = h.connection.session
        session.instruments.set("BTC/USD", 1, 8)
        session.subscribe("book", ["BTC/USD"], depth=10)
        await spin()
        assert [text for _, text in h.ws.sent] == session_requests(1)
        consumer = asyncio.ensure_future(h.feed.__anext__())
        await spin()
        h.ws.push(SNAPSHOT)
        assert isinstance(await consumer, BookChanged)
        h.ws.push(CROSSING)  # a crossed book: resync (unsubscribe + subscribe)
        invalid = await h.feed.__anext__()
        assert isinstance(invalid, BookInvalid)
        assert isinstance(await h.feed.__anext__(), ResyncRequested)
        assert h.processed_by() == ["reader", "consumer", "consumer"]
        await spin()
        assert len(h.ws.sent) == 3
        assert all(task is h.reader for task, _ in h.ws.sent)
        assert json.loads(h.ws.sent[1][1])["method"] == "unsubscribe"
        assert json.loads(h.ws.sent[2][1])["method"] == "subscribe"
        await h.stop()

    run(main())


def session_requests(req_id: int) -> list[str]:
    return [
        json.dumps(
            {
                "method": "subscribe",
                "params": {
                    "channel": "book",
                    "symbol": ["BTC/USD"],
                    "depth": 10,
                    "snapshot": True,
                },
                "req_id": req_id,
            },
            separators=(",", ":"),
        )
    ]


def test_two_consumers_never_read_at_once() -> None:
    async def main() -> None:
        h = Harness()
        consumers = [asyncio.ensure_future(h.feed.__anext__()) for _ in range(3)]
        await spin()
        h.ws.push(status("1"), status("2"), status("3"))
        events = await asyncio.gather(*consumers)
        versions = sorted(e.version for e in events if isinstance(e, SystemStatus))
        assert versions == ["1", "2", "3"]
        await h.stop()

    run(main())
