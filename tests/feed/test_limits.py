"""Client-side limits: level3 symbols per connection, the subscription counter, attempts."""

from __future__ import annotations

import asyncio
import time

import pytest

from bookengine.feed import AttemptBudget, KrakenFeed, RateCounter


def test_level3_symbols_are_spread_200_per_connection() -> None:
    symbols = [f"S{i}/USD" for i in range(450)]
    feed = KrakenFeed(level3=symbols, api_key="k", api_secret="c2VjcmV0")
    feed._build()
    level3 = [c for c in feed.connections if c.needs_token]
    assert [len(c.subscriptions[0].symbols) for c in level3] == [200, 200, 50]
    assert sum((c.subscriptions[0].symbols for c in level3), ()) == tuple(symbols)
    # plus one public connection for the instrument channel (precisions)
    public = [c for c in feed.connections if not c.needs_token]
    assert [s.channel for s in public[0].subscriptions] == ["instrument"]


def test_rate_counter_paces_subscriptions() -> None:
    async def main() -> float:
        counter = RateCounter(limit=20, decay_per_s=100)  # small numbers, same rule
        started = time.monotonic()
        for _ in range(5):
            await counter.spend(10)  # 50 in all: 20 at once, then 30 more at 100/s
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    assert 0.25 <= elapsed < 1.0
    with pytest.raises(ValueError):
        asyncio.run(RateCounter(limit=5).spend(10))


def test_attempt_budget_waits_for_the_window() -> None:
    async def main() -> float:
        budget = AttemptBudget(limit=3, window_s=0.3)
        started = time.monotonic()
        for _ in range(4):
            await budget.acquire()
        return time.monotonic() - started

    assert 0.28 <= asyncio.run(main()) < 1.0


def test_feed_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="depth"):
        KrakenFeed(book=["BTC/USD"], depth=42)
    with pytest.raises(ValueError, match="level3 needs api_key"):
        KrakenFeed(level3=["BTC/USD"])
    with pytest.raises(ValueError, match="v2 only"):
        KrakenFeed(level3=["BTC/USD"], protocol="v1", api_key="k", api_secret="s")
    with pytest.raises(ValueError, match="at least one symbol"):
        KrakenFeed()
