"""replay_many: serial, local processes, any Executor and Dask give the same results."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bookengine.parallel import ReplayJob, replay_many, split_by_symbol, summarize
from bookengine.replay import replay

from .helpers import Recording


def top_of_books(job: ReplayJob) -> dict[str, Any]:
    """A job function other than the default: final top-5 of every book."""
    result = job.replayer().run()
    return {
        key: (state.book.bids(5), state.book.asks(5))
        for key, state in sorted(result.books.items())
        if state.book is not None
    }


def jobs(recording: Recording, plain: Path) -> list[Any]:
    # A job per segment (each replays alone from its checkpoints), the whole recording as
    # one job, and the plain copy.
    return [*([s] for s in recording.segments), recording.segments, plain]


def test_processes_and_executors_equal_serial(recording: Recording, plain_recording: Path) -> None:
    items = jobs(recording, plain_recording)
    serial = replay_many(items, processes=1)
    assert len(serial) == len(items)
    assert serial[-2]["books"] == serial[-1]["books"]  # segments in order == the plain file
    assert replay_many(items, processes=2) == serial
    with ThreadPoolExecutor(2) as pool:
        assert replay_many(items, executor=pool) == serial
    assert replay_many(items, top_of_books, processes=2) == [
        top_of_books(j) for j in map(_job, items)
    ]


def _job(item: Any) -> ReplayJob:
    from bookengine.parallel import as_job

    return as_job(item)


def test_dask_equals_serial(recording: Recording, plain_recording: Path) -> None:
    distributed = pytest.importorskip("distributed")
    items = jobs(recording, plain_recording)
    serial = replay_many(items, processes=1)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert replay_many(items, executor=client) == serial
        assert replay_many(items, top_of_books, executor=client) == replay_many(
            items, top_of_books, processes=1
        )


def test_a_job_per_symbol_gives_each_symbols_books(recording: Recording) -> None:
    full = replay(recording.segments)
    results = replay_many(split_by_symbol(recording.segments, ["BTC/USD", "ETH/USD"]), processes=2)
    merged = {key: book for result in results for key, book in result["books"].items()}
    assert set(merged) == set(full.books)
    for key, state in full.books.items():
        assert merged[key]["checksum"] == state.book.checksum()
        assert merged[key]["best_bid"] == state.summary()["best_bid"]


def test_bad_executor_is_refused(plain_recording: Path) -> None:
    with pytest.raises(TypeError, match="executor must be"):
        replay_many([plain_recording], executor=object())
    assert summarize(_job(plain_recording))["bad_frames"] == 0
