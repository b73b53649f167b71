"""Smoke test of the capture-shape benchmark (``bench/bench_captures.py --quick``), so it cannot
rot: it runs end to end in a subprocess (small seeded inputs, 1 s simulator recordings) and
prints one table with every row, a figure in each timed cell and a verdict per target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS = (
    "raw",
    "recv_ts",
    "raw + trades",
    "raw .gz",
    "raw .zst",
    "recording 4 sym + trades",
    "--symbols BTC/USD",
    "--symbols BTC/USD,ETH/USD",
    "level3 recording 4 sym",
    "analytics over level3 recording",
)
SUMMARY = (
    "captures: raw frames, replay msg/s",
    "captures: slowest book-only shape x fastest",
    "captures: slowest shape with trades x fastest",
    "captures: --symbols x no filter (slowest)",
    "captures: level3 recording lines/s",
    "captures: analytics x level3 replay",
)


def test_bench_captures_quick_prints_every_row(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_captures.py"),
            "--quick",
            "--cache",
            str(tmp_path / "cache"),
            "--json",
            str(results),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    header, rows = table[0], table[1:]
    assert "| shape | lines | book msgs | trade lines | bytes |" in header
    assert header.rstrip().endswith("| target | verdict |")
    assert [row.split("|")[1].strip() for row in rows] == list(ROWS)
    columns = header.count("|")
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert row.count("|") == columns, row
        name, lines, book_msgs = cells[0], cells[1], cells[2]
        assert int(lines.replace(",", "")) > 0, row
        assert int(book_msgs.replace(",", "")) > 0, row
        assert cells[7] not in ("", "-"), f"{name}: no in-process time"
        assert cells[-1] in ("PASS", "FAIL"), f"{name}: no verdict"
    by_name = {row.split("|")[1].strip(): row for row in rows}
    # the filtered rows replay fewer book messages than the whole recording
    whole = int(by_name["recording 4 sym + trades"].split("|")[3].strip().replace(",", ""))
    one = int(by_name["--symbols BTC/USD"].split("|")[3].strip().replace(",", ""))
    assert 0 < one < whole
    # the trades shape really interleaves trade lines (~17% of its lines)
    trades = [cell.strip() for cell in by_name["raw + trades"].split("|")]
    share = int(trades[4].replace(",", "")) / int(trades[2].replace(",", ""))
    assert 0.12 < share < 0.22
    document = json.loads(results.read_text())
    assert [item["what"] for item in document["summary"]][-5:] == list(SUMMARY[1:])
    assert SUMMARY[0] in {item["what"] for item in document["summary"]}
    assert all(item["value"] is not None for item in document["summary"])
