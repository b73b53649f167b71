"""``bookengine watch`` and ``bookengine record`` against ``bookengine sim`` (all on loopback)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bookengine", "sim", "--port", str(port), "--rate", "200"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _bookengine(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bookengine", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_watch_prints_a_json_summary(sim_url: str) -> None:
    result = _bookengine(
        "watch",
        "BTC/USD",
        "ETH/USD",
        "--depth",
        "25",
        "--url",
        f"{sim_url}/v2",
        "--duration",
        "3",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    for key in ("book:BTC/USD", "book:ETH/USD"):
        book = summary["books"][key]
        assert book["depth"] == 25
        assert book["checksums_checked"] > 10
        assert book["checksum_mismatches"] == 0
        assert (book["reconnects"], book["resyncs"]) == (0, 0)


def test_record_then_replay_verifies(sim_url: str, tmp_path: Path) -> None:
    capture = tmp_path / "btc.jsonl.gz"
    result = _bookengine(
        "record", "BTC/USD", "--url", f"{sim_url}/v2", "--duration", "3", "-o", str(capture)
    )
    assert result.returncode == 0, result.stderr
    replayed = _bookengine("replay", str(capture), "--json")
    assert replayed.returncode == 0, replayed.stderr
    book = json.loads(replayed.stdout)["books"]["book:BTC/USD"]
    assert book["checksums_checked"] > 10
    assert book["checksum_mismatches"] == 0
    assert book["depth"] == 10  # from the recorded subscribe ack


def test_level3_watch_needs_credentials(sim_url: str) -> None:
    env_free = {k: v for k, v in ENV.items() if not k.startswith("KRAKEN_API")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bookengine",
            "watch",
            "BTC/USD",
            "--level3",
            "--url",
            f"{sim_url}/v2",
            "--duration",
            "1",
        ],
        env=env_free,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "KRAKEN_API_KEY" in result.stderr


def test_record_with_trades_keeps_the_trade_channel(sim_url: str, tmp_path: Path) -> None:
    import gzip

    capture = tmp_path / "btc.jsonl.gz"
    result = _bookengine(
        "record",
        "BTC/USD",
        "--trades",
        "--url",
        f"{sim_url}/v2",
        "--duration",
        "3",
        "-o",
        str(capture),
    )
    assert result.returncode == 0, result.stderr
    text = gzip.decompress(capture.read_bytes())
    assert b'"channel":"trade"' in text
    assert b'"channel":"book"' in text
