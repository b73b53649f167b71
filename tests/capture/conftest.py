"""Shared captures: one real recording against the simulator, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Recording, record_sim


@pytest.fixture(scope="session")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """~2.5 s of simulated Kraken: book BTC/USD + ETH/USD (depth 10), level3 BTC/USD, trades
    BTC/USD, recorded as gzip segments rotated every second (with checkpoints)."""
    path = tmp_path_factory.mktemp("recording") / "sim.jsonl.gz"
    recording = record_sim(path, seconds=2.5, max_seconds=1.0)
    assert len(recording.segments) >= 3, recording.segments
    return recording


@pytest.fixture(scope="session")
def plain_recording(recording: Recording, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same recording as one plain file (segments concatenated, checkpoints kept)."""
    import gzip

    path = tmp_path_factory.mktemp("plain") / "sim.jsonl"
    with path.open("wb") as out:
        for segment in recording.segments:
            out.write(gzip.decompress(segment.read_bytes()))
    return path
