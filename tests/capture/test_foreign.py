"""Captures recorded by other tools replay with every checksum verified (issue 15, part 3).

The files are conversions of the real fixtures made by tests/data/foreign/make_foreign.py
(tardis.dev raw data-feed slices, cryptofeed raw recordings); manifest.json says what each
holds. The readers are the lead's work: until they land these tests are expected to fail.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from bookengine.cli import main as cli_main
from bookengine.replay import Replayer

FOREIGN = Path(__file__).parent.parent / "data" / "foreign"
MANIFEST: dict[str, dict[str, Any]] = json.loads((FOREIGN / "manifest.json").read_text())


def _precisions(entry: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {symbol: (pp, qp) for symbol, (pp, qp) in entry["precisions"].items()}


def test_the_committed_files_are_what_the_script_makes() -> None:
    """The conversions exist, are small, and have the shapes their tools write."""
    assert len(MANIFEST) == 12
    total = sum((FOREIGN / name).stat().st_size for name in MANIFEST)
    assert total < 400_000
    with gzip.open(FOREIGN / "tardis" / "v2-book-btcusd-depth10.json.gz") as stream:
        lines = stream.read().split(b"\n")
    assert lines[0][28:29] == b" " and lines[0][:28].endswith(b"Z") and lines[0][19:20] == b"."
    assert lines.count(b"") == 2  # the disconnect, and the end of the last line
    cryptofeed = (FOREIGN / "cryptofeed" / "v2-book-btcusd-depth10" / "KRAKEN.ws.1.0").read_text()
    first, sent, received = cryptofeed.splitlines()[:3]
    assert first.startswith("wss://ws.kraken.com/v2 <-> ")
    assert sent.startswith("wss://ws.kraken.com/v2 <- ") and '"subscribe"' in sent
    assert received.split(": ", 1)[1].startswith('{"channel":"book","type":"snapshot"')


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_replayer_verifies_every_checksum(name: str) -> None:
    entry = MANIFEST[name]
    problems: list[str] = []
    replayer = Replayer(
        [FOREIGN / name],
        precisions=_precisions(entry),
        on_problem=lambda record, message: problems.append(f"{record.line}: {message}"),
        progress=False,
    )
    result = replayer.run()
    assert problems == [] and result.bad_frames == 0
    state = result.books[entry["key"]]
    assert state.checksums_checked == entry["checksums"]
    assert state.checksum_mismatches == 0


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_cli_replay_verifies_every_checksum(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    entry = MANIFEST[name]
    args = ["replay", str(FOREIGN / name), "--json"]
    for symbol, (pp, qp) in entry["precisions"].items():
        args += ["--precision", f"{symbol}={pp}/{qp}"]
    status = cli_main(args)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["bad_frames"] == 0
    book = summary["books"][entry["key"]]
    assert (book["checksums_checked"], book["checksum_mismatches"]) == (entry["checksums"], 0)


def test_an_unknown_format_gets_one_clear_error(tmp_path: Path) -> None:
    capture = tmp_path / "mystery.jsonl"
    capture.write_text(
        "\n".join(f'row {n} | {{"channel":"book","type":"update","data":[]}}' for n in range(50))
        + "\n"
    )
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli_main(["replay", str(capture)])
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    assert status != 0 and len(lines) == 1, lines
    message = lines[0].lower()
    assert "mystery.jsonl" in message and ":1" in message  # the file and the line
    assert "tardis" in message and "cryptofeed" in message  # the formats accepted
