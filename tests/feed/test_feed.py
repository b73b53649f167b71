"""The live feed against the simulator on 127.0.0.1: one test per fault.

Each test ends with exact books (checksums verified after recovery), the right reconnect and
resync counts, and the other symbol undisturbed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bookengine.feed import FeedError, KrakenFeed, ReconnectPolicy
from bookengine.kraken.events import (
    BookChanged,
    ChecksumMismatch,
    ConnectionLost,
    Event,
    RequestFailed,
    SystemStatus,
)
from bookengine.replay import replay
from bookengine.sim import Simulator

FAST = {
    "liveness_s": 1.0,
    "ping_interval_s": 0.5,
    "reconnect_policy": {"immediate": 1, "floor_s": 0.2, "cap_s": 0.5},
    "resync_backoff_s": (0.2, 1.0),
    "resync_timeout_s": 1.0,
}


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 60))


def _feed(sim: Simulator, **kwargs: Any) -> KrakenFeed:
    options: dict[str, Any] = dict(FAST, url=sim.url_v2, book=["BTC/USD", "ETH/USD"], depth=10)
    options.update(kwargs)
    return KrakenFeed(**options)


async def consume_until(
    feed: KrakenFeed,
    done: Callable[[], bool],
    timeout: float = 20.0,
    seen: list[Event] | None = None,
) -> None:
    """Iterate the feed until ``done()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out; summary: {feed.summary()}")
        try:
            event = await asyncio.wait_for(feed.__anext__(), remaining)
        except TimeoutError:
            continue
        if seen is not None:
            seen.append(event)


def verified(feed: KrakenFeed, key: str) -> int:
    state = feed.books().get(key)
    return 0 if state is None else state.checksums_checked


def exact(feed: KrakenFeed, key: str) -> bool:
    state = feed.books().get(key)
    return state is not None and state.book is not None and not state.stale


def expected_keys(feed: KrakenFeed) -> set[str]:
    if feed.protocol == "v1":
        return {f"book-{feed.depth}:{s}" for s in feed.book_symbols}
    return {f"book:{s}" for s in feed.book_symbols} | {f"level3:{s}" for s in feed.level3_symbols}


async def settle(feed: KrakenFeed, more: int = 20) -> None:
    """Wait until every subscribed book verified ``more`` further checksums and is exact."""
    targets = {key: verified(feed, key) + more for key in expected_keys(feed)}
    await consume_until(
        feed, lambda: all(verified(feed, k) >= t and exact(feed, k) for k, t in targets.items())
    )


def test_books_verify_every_message() -> None:
    async def main() -> None:
        async with Simulator(seed=1, rate=300) as sim, _feed(sim) as feed:
            await consume_until(
                feed, lambda: all(verified(feed, f"book:{s}") >= 50 for s in ("BTC/USD", "ETH/USD"))
            )
            summary = feed.summary()
            for key in ("book:BTC/USD", "book:ETH/USD"):
                book = summary["books"][key]
                assert book["checksum_mismatches"] == 0
                assert book["checksums_checked"] == book["messages"]
                assert (book["reconnects"], book["resyncs"]) == (0, 0)
            assert feed.metrics.processing_ns.percentile(50) is not None

    run(main())


def test_corrupt_level_resyncs_that_symbol_alone() -> None:
    async def main() -> None:
        async with Simulator(seed=2, rate=300) as sim, _feed(sim) as feed:
            await consume_until(feed, lambda: verified(feed, "book:BTC/USD") >= 20)
            btc_before = feed.books()["book:BTC/USD"].messages
            sim.inject("corrupt", symbol="ETH/USD")
            seen: list[Event] = []
            await consume_until(
                feed,
                lambda: any(
                    isinstance(e, ChecksumMismatch) and e.key == "book:ETH/USD" for e in seen
                ),
                seen=seen,
            )
            await settle(feed)
            eth, btc = feed.books()["book:ETH/USD"], feed.books()["book:BTC/USD"]
            assert (eth.checksum_mismatches, eth.resyncs) == (1, 1)
            assert (btc.checksum_mismatches, btc.resyncs) == (0, 0)
            assert btc.messages > btc_before  # BTC kept flowing all along
            assert feed.metrics.reconnects == 0

    run(main())


def test_dropped_connection_reconnects_and_rebuilds_from_snapshots() -> None:
    async def main() -> None:
        async with Simulator(seed=3, rate=300) as sim, _feed(sim) as feed:
            await settle(feed)
            sim.inject("drop")
            seen: list[Event] = []

            def snapshot_keys() -> set[str]:
                return {e.key for e in seen if isinstance(e, BookChanged) and e.is_snapshot}

            await consume_until(
                feed, lambda: snapshot_keys() >= {"book:BTC/USD", "book:ETH/USD"}, seen=seen
            )
            await settle(feed)
            assert feed.metrics.reconnects == 1
            assert any(isinstance(e, ConnectionLost) for e in seen)
            for state in feed.books().values():
                assert (state.checksum_mismatches, state.resyncs) == (0, 0)

    run(main())


def test_stall_triggers_liveness_reconnect() -> None:
    async def main() -> None:
        async with Simulator(seed=4, rate=300) as sim, _feed(sim) as feed:
            await settle(feed)
            sim.inject("stall", seconds=3.0)
            await consume_until(feed, lambda: feed.metrics.reconnects >= 1)
            await settle(feed)
            for state in feed.books().values():
                assert state.checksum_mismatches == 0

    run(main())


def test_malformed_frame_is_counted_and_nothing_else_happens() -> None:
    async def main() -> None:
        async with Simulator(seed=5, rate=300) as sim, _feed(sim) as feed:
            await settle(feed)
            sim.inject("malformed")
            await consume_until(feed, lambda: feed.metrics.bad_frames == 1)
            await settle(feed)
            assert feed.metrics.reconnects == 0
            assert all(state.resyncs == 0 for state in feed.books().values())

    run(main())


def test_maintenance_status_is_reported_and_books_stay_exact() -> None:
    async def main() -> None:
        async with Simulator(seed=6, rate=300) as sim, _feed(sim) as feed:
            await settle(feed)
            seen: list[Event] = []
            sim.inject("maintenance", seconds=1.0)
            await consume_until(
                feed,
                lambda: (
                    [e.system for e in seen if isinstance(e, SystemStatus)][-2:]
                    == ["maintenance", "online"]
                ),
                seen=seen,
            )
            await settle(feed)
            assert all(state.checksum_mismatches == 0 for state in feed.books().values())

    run(main())


def test_rate_limited_subscribe_is_retried() -> None:
    async def main() -> None:
        async with Simulator(seed=7, rate=300) as sim:
            sim.inject("ratelimit", count=1)
            async with _feed(sim) as feed:
                seen: list[Event] = []
                await consume_until(
                    feed,
                    lambda: (
                        verified(feed, "book:BTC/USD") >= 10
                        and verified(feed, "book:ETH/USD") >= 10
                    ),
                    seen=seen,
                )
                failed = [e for e in seen if isinstance(e, RequestFailed)]
                assert failed and "Exceeded msg rate" in failed[0].error

    run(main())


def test_idle_connection_is_kept_alive_by_pings() -> None:
    async def main() -> None:
        async with Simulator(seed=8, rate=50, idle_timeout=1.0) as sim:
            async with _feed(sim, ping_interval_s=0.3) as feed:
                start = time.monotonic()
                await consume_until(feed, lambda: time.monotonic() - start > 3.0)
                assert feed.metrics.reconnects == 0
                assert len(feed.metrics.rtt_ns) >= 5
            # Without pings in time the simulator closes the connection, as Kraken does.
            async with _feed(sim, ping_interval_s=30.0) as feed:
                await consume_until(feed, lambda: feed.metrics.reconnects >= 1)
                await settle(feed)

    run(main())


def test_refused_upgrade_is_retried() -> None:
    async def main() -> None:
        async with Simulator(seed=9, rate=300) as sim:
            sim.inject("refuse", count=2)
            async with _feed(sim) as feed:
                seen: list[Event] = []
                await consume_until(feed, lambda: verified(feed, "book:BTC/USD") >= 10, seen=seen)
                assert sum(isinstance(e, ConnectionLost) for e in seen) == 2
                await settle(feed)

    run(main())


def test_slow_consumer_gets_conflated_latest_state() -> None:
    async def main() -> None:
        async with Simulator(seed=10, rate=2000) as sim, _feed(sim) as feed:
            changes = 0
            deadline = time.monotonic() + 3
            async for event in feed:
                if isinstance(event, BookChanged):
                    changes += 1
                    await asyncio.sleep(0.02)  # a slow consumer
                if time.monotonic() > deadline:
                    break
            assert sum(feed.metrics.conflated.values()) > 0
            assert feed.metrics.messages > changes  # the socket was not held back
            await settle(feed)

    run(main())


def test_v1_feed_keeps_books_exact() -> None:
    async def main() -> None:
        async with (
            Simulator(seed=11, rate=300) as sim,
            KrakenFeed(book=["XBT/USD"], depth=10, protocol="v1", url=sim.url_v1, **FAST) as feed,
        ):
            await consume_until(feed, lambda: verified(feed, "book-10:XBT/USD") >= 30)
            assert feed.books()["book-10:XBT/USD"].checksum_mismatches == 0

    run(main())


def test_recorded_session_replays_to_the_same_books(tmp_path: Path) -> None:
    capture = tmp_path / "live.jsonl"

    async def main() -> dict[str, Any]:
        with capture.open("wb") as out:

            def record(recv_ts_ns: int, frame: bytes) -> None:
                out.write(b"%d\t%s\n" % (recv_ts_ns, frame))

            async with (
                Simulator(seed=12, rate=300) as sim,
                _feed(sim, on_frame=record, depth=25) as feed,
            ):
                sim.inject("corrupt", symbol="BTC/USD")
                await consume_until(feed, lambda: verified(feed, "book:ETH/USD") >= 40)
                await settle(feed, 5)
            # Read after the feed closed: frames still arriving during the close handshake
            # are both recorded and applied (the books keep their state).
            return {
                key: (state.book.bids(), state.book.asks(), state.book.checksum())
                for key, state in feed.books().items()
            }

    result: dict[str, Any] = {}

    async def wrapper() -> None:
        result.update(await main())

    run(wrapper())
    replayed = replay([capture])
    for key, (bids, asks, checksum) in result.items():
        book = replayed.books[key].book
        assert (book.bids(), book.asks(), book.checksum()) == (bids, asks, checksum)
        assert replayed.books[key].depth == 25


def test_reconnect_policy_follows_krakens_advice() -> None:
    import random

    policy = ReconnectPolicy(immediate=3, floor_s=5, cap_s=60, jitter=0.2, rng=random.Random(1))
    delays = [policy.next_delay(maintenance=False) for _ in range(10)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert all(5 <= d <= 72 for d in delays[3:])
    assert delays[-1] >= 60
    policy.connected()
    assert policy.next_delay(maintenance=True) >= 5  # never hammer during maintenance


def test_bad_level3_credentials_fail_clearly() -> None:
    async def main() -> None:
        async with Simulator(seed=13, rate=50) as sim:
            feed = KrakenFeed(
                level3=["BTC/USD"],
                url=sim.url_v2,
                level3_url=sim.url_level3,
                rest_url=sim.rest_url,
                api_key=sim.api_key,
                api_secret="c2VjcmV0",
                **FAST,
            )
            async with feed:
                with pytest.raises(FeedError, match="token refused"):
                    await asyncio.wait_for(consume_until(feed, lambda: False), 10)
            assert "c2VjcmV0" not in repr(feed)

    run(main())


def test_concurrent_token_requests_all_succeed() -> None:
    """Connections that need a token (level3, executions) fetch it at the same time on
    connect. Kraken refuses a nonce not above the last one it received for the key, so
    requests overtaking each other on the way would fail; fetch_token sends one at a time."""

    async def main() -> None:
        async with Simulator(seed=15, rate=50) as sim:
            feed = KrakenFeed(
                level3=["BTC/USD"],
                url=sim.url_v2,
                level3_url=sim.url_level3,
                rest_url=sim.rest_url,
                api_key=sim.api_key,
                api_secret=sim.api_secret,
                **FAST,
            )
            tokens = await asyncio.gather(*(feed.token() for _ in range(12)))
            assert len(set(tokens)) == 12 and all(tokens)

    run(main())


def test_summary_is_json_shaped_like_replay() -> None:
    async def main() -> None:
        async with Simulator(seed=14, rate=300) as sim, _feed(sim) as feed:
            await settle(feed)
            summary = json.loads(json.dumps(feed.summary()))
            book = summary["books"]["book:BTC/USD"]
            assert set(book) == {
                "channel",
                "protocol",
                "symbol",
                "depth",
                "messages",
                "checksums_checked",
                "checksum_mismatches",
                "best_bid",
                "best_ask",
                "bid_levels",
                "ask_levels",
                "reconnects",
                "resyncs",
            }

    run(main())


def _level3_feed(sim: Simulator, **kwargs: Any) -> KrakenFeed:
    options: dict[str, Any] = dict(
        FAST,
        book=["ETH/USD"],
        level3=["BTC/USD", "ETH/USD"],
        url=sim.url_v2,
        level3_url=sim.url_level3,
        rest_url=sim.rest_url,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
    )
    options.update(kwargs)
    return KrakenFeed(**options)


def test_level3_books_verify_with_a_fresh_token() -> None:
    async def main() -> None:
        async with Simulator(seed=21, rate=300) as sim, _level3_feed(sim) as feed:
            await settle(feed, 30)
            for key in ("level3:BTC/USD", "level3:ETH/USD"):
                state = feed.books()[key]
                assert state.checksum_mismatches == 0
                assert state.checksums_checked == state.messages
                assert len(state.book) > 0  # resting orders
            # level3 runs on its own connection, beside the public one
            assert len(feed.connections) == 2

    run(main())


def test_level3_corruption_resyncs_that_book_alone() -> None:
    async def main() -> None:
        async with Simulator(seed=22, rate=300) as sim, _level3_feed(sim) as feed:
            await settle(feed)
            seen: list[Event] = []
            sim.inject("corrupt", symbol="BTC/USD")
            await consume_until(
                feed,
                lambda: any(
                    isinstance(e, ChecksumMismatch) and e.key == "level3:BTC/USD" for e in seen
                ),
                seen=seen,
            )
            await settle(feed)
            books = feed.books()
            assert (
                books["level3:BTC/USD"].checksum_mismatches,
                books["level3:BTC/USD"].resyncs,
            ) == (1, 1)
            assert books["level3:ETH/USD"].resyncs == 0
            assert books["book:ETH/USD"].resyncs == 0
            assert feed.metrics.reconnects == 0

    run(main())
