"""``record`` and ``watch`` never fail silently: against ``bookengine sim`` (127.0.0.1), each
failure is one line and its exit status, and a recording's health sidecar says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bookengine.boundary import ExitCode
from bookengine.health import sidecar_path

from .conftest import free_port, simulator
from .helpers import cli, one_line


def sidecar(path: Path) -> dict[str, Any]:
    value = json.loads(sidecar_path(path).read_text())
    assert isinstance(value, dict)
    return value


def test_no_connection_ever(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}/v2"  # nothing listens there
    output = tmp_path / "btc.jsonl"
    for args in (["record", "-o", str(output)], ["watch"]):
        result = cli(*args, "BTC/USD", "--url", url, "--duration", "30", timeout=30)
        assert result.returncode == ExitCode.CONNECTION
        line = one_line(result.stderr)
        assert line.startswith(f"bookengine: no connection to {url} after 3 attempts")
    assert not output.exists()  # no frames, no capture file
    health = sidecar(output)
    assert health["status"] == "failed" and health["exit_code"] == ExitCode.CONNECTION
    assert health["failure"].startswith("no connection")
    assert health["subscribed"]["book"] == ["BTC/USD"] and health["acknowledged"] == {}


def test_refused_pair(sim_url: str, tmp_path: Path) -> None:
    output = tmp_path / "foo.jsonl"
    args = ["FOO/BAR", "--url", f"{sim_url}/v2", "--duration", "20"]
    result = cli("record", "-o", str(output), *args)
    assert result.returncode == ExitCode.DATA
    assert (
        one_line(result.stderr)
        == "bookengine: subscription refused: Currency pair not supported FOO/BAR"
    )
    health = sidecar(output)
    assert health["failure"] == "subscription refused: Currency pair not supported FOO/BAR"
    (refused,) = health["refused"]
    assert refused["symbol"] == "FOO/BAR" and refused["method"] == "subscribe"
    assert refused["at"].endswith("Z")
    result = cli("watch", *args)
    assert result.returncode == ExitCode.DATA
    assert "subscription refused" in one_line(result.stderr)


def test_one_refused_pair_among_good_ones_fails_too(sim_url: str, tmp_path: Path) -> None:
    output = tmp_path / "two.jsonl"
    result = cli(
        "record", "-o", str(output), "BTC/USD", "FOO/BAR", "--url", f"{sim_url}/v2",
        "--duration", "20",
    )  # fmt: skip
    assert result.returncode == ExitCode.DATA
    assert "FOO/BAR" in one_line(result.stderr)
    assert sidecar(output)["acknowledged"]["book"] == ["BTC/USD"]


def test_not_a_kraken_endpoint(sim_url: str, tmp_path: Path) -> None:
    # The v1 endpoint (no /v2) answers the v2 requests with "Malformed request"
    output = tmp_path / "v1.jsonl"
    result = cli("record", "-o", str(output), "BTC/USD", "--url", sim_url, "--duration", "20")
    assert result.returncode == ExitCode.CONNECTION
    line = one_line(result.stderr)
    assert "is not a Kraken v2 endpoint" in line and "Malformed request" in line
    assert sidecar(output)["exit_code"] == ExitCode.CONNECTION
    # a path that is no endpoint at all: HTTP 404 on the upgrade
    result = cli("watch", "BTC/USD", "--url", f"{sim_url}/nope", "--duration", "20")
    assert result.returncode == ExitCode.CONNECTION
    assert "HTTP 404" in one_line(result.stderr)


def test_silence_fails_with_max_silence(tmp_path: Path) -> None:
    output = tmp_path / "quiet.jsonl"
    with simulator("--fault", "stall=30@3.5s") as url:
        result = cli(
            "record", "-o", str(output), "BTC/USD", "--url", f"{url}/v2", "--max-silence",
            "1", "--health-every", "0.5", "--duration", "25",
        )  # fmt: skip
    assert result.returncode == ExitCode.DATA
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("bookengine: no data for ")
    assert "(--max-silence 1)" in lines[-1]
    health_lines = [line for line in lines if line.startswith("health: ")]
    assert health_lines and all("connected" in line for line in health_lines)
    assert "Traceback" not in result.stderr
    health = sidecar(output)
    assert health["status"] == "failed" and health["failure"].startswith("no data for")
    assert health["frames"] > 0 and output.exists()


def test_clean_recording_with_segments_has_a_sidecar_per_segment(
    sim_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "rot.jsonl"
    result = cli(
        "record", "-o", str(output), "BTC/USD", "--url", f"{sim_url}/v2", "--duration", "3.2",
        "--rotate-seconds", "1",
    )  # fmt: skip
    assert result.returncode == ExitCode.OK, result.stderr
    segments = sorted(p for p in tmp_path.iterdir() if not p.name.endswith(".json"))
    assert len(segments) >= 3, segments
    for number, segment in enumerate(segments):
        health = sidecar(segment)
        assert health["segment"] == str(segment)
        assert health["status"] == "closed" and health["failure"] is None
        assert health["acknowledged"]["book"] == ["BTC/USD"]
        assert health["gaps"] == [] and health["mismatches"] == []
        if number == len(segments) - 1:
            assert health["exit_code"] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_mismatch_and_resync_are_in_the_sidecar(tmp_path: Path) -> None:
    output = tmp_path / "bad.jsonl"
    with simulator("--fault", "corrupt:BTC/USD@1.5s") as url:
        result = cli(
            "record", "-o", str(output), "BTC/USD", "--url", f"{url}/v2", "--duration", "3.5"
        )
    assert result.returncode == ExitCode.DATA
    assert "Traceback" not in result.stderr
    health = sidecar(output)
    (mismatch,) = health["mismatches"]
    assert mismatch["key"] == "book:BTC/USD" and mismatch["likely_cause"]
    assert health["resyncs"] and health["resyncs"][0]["key"] == "book:BTC/USD"
    assert health["exit_code"] == ExitCode.DATA


def test_a_dropped_connection_is_a_gap_with_times(tmp_path: Path) -> None:
    output = tmp_path / "drop.jsonl"
    with simulator("--fault", "drop@3s") as url:
        result = cli(
            "record", "-o", str(output), "BTC/USD", "--url", f"{url}/v2", "--duration", "4.5",
            "--health-every", "0.5",
        )  # fmt: skip
    assert result.returncode == ExitCode.OK, result.stderr
    assert any("reconnects 1, gaps 1" in line for line in result.stderr.splitlines())
    health = sidecar(output)
    (gap,) = health["gaps"]
    assert gap["start"].endswith("Z") and gap["end"].endswith("Z")
    assert 0 <= gap["seconds"] < 3 and gap["reason"]
    assert health["reconnects"] == 1 and health["status"] == "closed"
