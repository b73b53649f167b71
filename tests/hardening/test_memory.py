"""No leak over long replays: RSS flat after warm-up (short runs of bench/bench_memory.py).

Each workload runs a few hundred thousand messages; after the first 20 % the RSS may not grow
by more than a bound that a leak of a few bytes per message would exceed. The L3 book's own
C structures (``_memory_stats``, invisible to tracemalloc) must stop growing altogether once
the churn is steady. Meaningless under a sanitizer (ASan's quarantine grows RSS): skipped.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import bench_memory
from bookengine import implementation

from .conftest import sanitizer

pytestmark = pytest.mark.skipif(
    sanitizer() is not None, reason=f"RSS is meaningless under {sanitizer()}"
)

KIB = 1024


@pytest.mark.parametrize(
    ("workload", "messages", "bound"),
    [
        ("buffer", 300_000, 512 * KIB),  # 2 bytes per message would show
        ("receive", 150_000, 512 * KIB),
        ("l3", 40_000, 512 * KIB),
        ("v1", 150_000, 512 * KIB),
    ],
)
def test_rss_is_flat_after_warm_up(workload: str, messages: int, bound: int) -> None:
    run = bench_memory.run(workload, "cython", messages)
    assert run.messages >= messages
    assert run.growth <= bound, run.summary()


def test_l3_structures_stop_growing_under_steady_churn() -> None:
    """The order pool, index, level array, long-id copies and scratch stay the same size."""
    state: dict[str, Any] = {}
    chunks = bench_memory.l3_chunks("cython", batch=500, state=state)
    next(chunks)
    book = state["book"]
    for _ in range(10):  # warm-up: 5000 messages
        next(chunks)
    warm = book._memory_stats()
    for _ in range(30):
        next(chunks)
    stats = book._memory_stats()
    assert stats["resting_orders"] == warm["resting_orders"]
    for part in ("orders", "index", "levels", "long_ids", "scratch", "total"):
        assert stats[part] <= warm[part], (part, warm, stats)
    book._check()


def test_the_probe_sees_a_leak() -> None:
    """The measure is not blind: a workload that keeps 1000 bytes per message fails the bound.

    (~20 MB in all, so memory freed by earlier tests in the same process cannot absorb it.)
    """
    kept: list[bytes] = []

    def leaky() -> object:
        while True:
            kept.extend(bytes(1000) for _ in range(1000))
            yield 1000

    run = bench_memory.measure("leak", "test", 20_000, leaky())  # type: ignore[arg-type]
    assert run.growth > 2 * 1024 * KIB
    assert implementation("cython").L2Book is not None
