"""``bookengine record`` against the simulator: rotation, compression, redaction, replay."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bookengine.capture import REDACTED, CaptureReader, find_segments
from bookengine.cli import main
from bookengine.replay import replay
from bookengine.sim import Simulator


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A simulator running in its own thread and event loop (the command runs its own)."""
    ready: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        async with Simulator(seed=31, rate=200) as sim:
            ready.put(sim)
            while not stop.is_set():
                await asyncio.sleep(0.05)

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # surface start-up failures in the test
            ready.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    sim = ready.get(timeout=20)
    if isinstance(sim, BaseException):
        raise sim
    try:
        yield sim
    finally:
        stop.set()
        thread.join(10)


def test_record_level3_rotated_zstd_never_writes_credentials(
    simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRAKEN_API_KEY", simulator.api_key)
    monkeypatch.setenv("KRAKEN_API_SECRET", simulator.api_secret)
    output = tmp_path / "l3.jsonl.zst"
    status = main(
        [
            "record",
            "BTC/USD",
            "ETH/USD",
            "--level3",
            "--url",
            simulator.url_v2,
            "--level3-url",
            simulator.url_level3,
            "--rest-url",
            simulator.rest_url,
            "--duration",
            "2.2",
            "--rotate-seconds",
            "0.8",
            "-o",
            str(output),
        ]
    )
    assert status == 0
    segments = find_segments(output)
    assert len(segments) >= 3 and segments[0].name == "l3.0001.jsonl.zst"
    reader = CaptureReader(segments, kinds=("sent", "frame"))
    records = list(reader)
    headers = reader.report.headers
    assert [h.segment for h in headers] == list(range(1, len(segments) + 1))
    assert headers[0].extra["protocol"] == "v2"
    assert {s["channel"] for s in headers[0].subscriptions} == {"instrument", "level3"}
    assert reader.report.notes == []
    sent = [json.loads(r.frame) for r in records if r.kind == "sent"]
    tokens = [m["params"]["token"] for m in sent if m.get("params", {}).get("channel") == "level3"]
    assert tokens and set(tokens) == {REDACTED}
    text = b"\n".join(r.frame for r in records)
    assert simulator.api_secret.encode() not in text
    assert simulator.api_key.encode() not in text
    assert not re.search(rb'"token"\s*:\s*"(?!<redacted>)', text)
    whole = replay(segments)
    assert whole.ok and set(whole.books) == {"level3:BTC/USD", "level3:ETH/USD"}
    last = replay(segments[-1:])  # the last segment alone, from its checkpoints
    assert last.ok and last.checkpoints_applied == 2
    for key, state in whole.books.items():
        assert last.books[key].book.checksum() == state.book.checksum()


def test_record_plain_book_without_rotation(simulator: Simulator, tmp_path: Path) -> None:
    output = tmp_path / "book.jsonl"
    output.write_text("old\n")  # replaced, as before rotation existed
    status = main(
        ["record", "BTC/USD", "--url", simulator.url_v2, "--duration", "1", "-o", str(output)]
    )
    assert status == 0
    result = replay([output])
    assert result.ok and result.books["book:BTC/USD"].checksums_checked > 10
    assert result.sent >= 2 and len(result.headers) == 1


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5M"])
def test_record_rejects_bad_rotation(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "BTC/USD", "-o", "x.jsonl", "--rotate-bytes", value]) == 2
    err = capsys.readouterr().err
    assert "expected a positive size" in err and err.count("\n") == 1  # one line
