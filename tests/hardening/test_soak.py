"""A ~20 s soak (bench/soak.py): the feed against the simulator with seeded random faults.

At the end every book is exact (checksums verifying after recovery, then equal to the frozen
exchange's levels), RSS is flat, and no task, connection or file descriptor is left.
``make soak SOAK_SECONDS=300`` runs the long version.
"""

from __future__ import annotations

import asyncio

from bench import soak

from .conftest import sanitizer


def test_feed_survives_random_faults() -> None:
    slow = sanitizer() is not None
    report = asyncio.run(
        soak.soak(
            8.0 if slow else 16.0,
            seed=20261124,
            rate=200.0 if slow else 800.0,
            rss_bound_mib=1e9 if slow else 16.0,
            settle_timeout=60.0 if slow else 30.0,
        )
    )
    assert report.problems == [], report
    assert sum(report.faults.values()) >= (1 if slow else 4), report.faults
    assert report.metrics["checksums_verified"] > 1000
    assert set(report.books) >= {"book:BTC/USD", "level3:BTC/USD"}
    assert all(record.get("exact") for record in report.books.values()), report.books
    assert report.fds_after <= report.fds_before
    assert report.tasks_left == []
