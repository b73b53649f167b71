"""Replay many captures at once: a process per capture (or per symbol), locally or on Dask.

Each unit of work is a :class:`ReplayJob`: capture files replayed in order by one session
(a recording's segments, or one file), optionally restricted to some symbols. The same
``replay_many`` runs the jobs serially, over local cores (``ProcessPoolExecutor``) or on a
cluster (a ``dask.distributed.Client``), and returns results in job order: the same results
whichever way they ran, since each job is an independent, deterministic replay.

Rotated segments replay on their own (their ``#checkpoint`` lines seed the books), so a long
recording can also be split into one job per segment; a job per symbol replays the whole
recording for those symbols only.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .replay import Replayer

T = TypeVar("T")


@dataclass(frozen=True)
class ReplayJob:
    """One independent replay: files in order, optional symbols, session options."""

    paths: tuple[str, ...]
    symbols: tuple[str, ...] | None = None
    precisions: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    depth: int | None = None
    implementation_name: str | None = None

    def replayer(self) -> Replayer:
        """A :class:`Replayer` for this job (no progress bar: jobs run side by side)."""
        return Replayer(
            self.paths,
            precisions=self.precisions,
            depth=self.depth,
            implementation_name=self.implementation_name,
            symbols=self.symbols,
            progress=False,
        )


def as_job(
    item: str | Path | Sequence[str | Path] | ReplayJob,
    *,
    precisions: Mapping[str, tuple[int, int]] | None = None,
    depth: int | None = None,
    implementation_name: str | None = None,
) -> ReplayJob:
    """A job from a path (one capture), a sequence of paths (one recording) or a job."""
    if isinstance(item, ReplayJob):
        return item
    paths = (item,) if isinstance(item, str | Path) else tuple(item)
    return ReplayJob(
        tuple(str(p) for p in paths),
        None,
        dict(precisions or {}),
        depth,
        implementation_name,
    )


def split_by_symbol(
    paths: Sequence[str | Path],
    symbols: Iterable[str],
    *,
    precisions: Mapping[str, tuple[int, int]] | None = None,
    depth: int | None = None,
) -> list[ReplayJob]:
    """One job per symbol over the same captures (each process skips the other symbols)."""
    return [
        ReplayJob(tuple(str(p) for p in paths), (symbol,), dict(precisions or {}), depth)
        for symbol in symbols
    ]


def summarize(job: ReplayJob) -> dict[str, Any]:
    """The default job function: ``replay --json`` summary plus each book's CRC32.

    Picklable and deterministic, so serial, process and Dask runs compare equal.
    """
    result = job.replayer().run()
    summary = result.summary()
    summary["paths"] = list(job.paths)
    for key, state in result.books.items():
        summary["books"][key]["checksum"] = None if state.book is None else state.book.checksum()
    return summary


def _context() -> Any:
    # fork is unsafe once threads run (and deprecated with them on 3.12+); forkserver forks
    # workers from a clean single-threaded server, spawn where it is missing (Windows, macOS).
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def replay_many(
    items: Iterable[str | Path | Sequence[str | Path] | ReplayJob],
    fn: Callable[[ReplayJob], T] = summarize,  # type: ignore[assignment]
    *,
    processes: int | None = None,
    executor: Any = None,
    precisions: Mapping[str, tuple[int, int]] | None = None,
    depth: int | None = None,
    implementation_name: str | None = None,
) -> list[T]:
    """Run ``fn(job)`` for every job; results in job order.

    Args:
        items: jobs: a path (one capture), a sequence of paths (a recording's segments, in
            order) or a :class:`ReplayJob`.
        fn: a module-level (picklable) function of a :class:`ReplayJob`; default
            :func:`summarize`.
        processes: local worker processes when no ``executor`` is given (default: the CPU
            count); 1 runs serially in this process.
        executor: a ``concurrent.futures.Executor`` (``map`` is used) or a
            ``dask.distributed.Client`` (``submit`` + ``gather``): the jobs run there.
        precisions, depth, implementation_name: session options for jobs made from paths.

    Returns:
        ``[fn(job) for job in jobs]``, computed in parallel.
    """
    jobs = [
        as_job(
            item,
            precisions=precisions,
            depth=depth,
            implementation_name=implementation_name,
        )
        for item in items
    ]
    if executor is not None:
        if hasattr(executor, "submit") and hasattr(executor, "gather"):  # dask.distributed
            futures = [executor.submit(fn, job, pure=False) for job in jobs]
            return list(executor.gather(futures))
        if isinstance(executor, Executor):
            return list(executor.map(fn, jobs))
        raise TypeError(
            "executor must be a concurrent.futures.Executor or a dask.distributed.Client"
        )
    workers = min(processes or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        return [fn(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
        return list(pool.map(fn, jobs))
