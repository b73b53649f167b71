"""Smoke test of the capture-shape benchmark (``bench/bench_captures.py --quick``), so it cannot
rot: it runs end to end in a subprocess (small seeded inputs, 1 s simulator recordings) and
prints one table with every row, a figure in each timed cell and a verdict per target."""

from __future__ import annotations

import itertools
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
    lines = done.stdout.splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith("| "))
    block = itertools.takewhile(lambda line: line.startswith("|"), lines[first:])
    table = [line for line in block if line.startswith("| ")]  # (not the |---| line)
    # the second table: what reading each file of the generated capture costs on its own
    second = next(k for k, line in enumerate(lines) if line.startswith("| shape | reading s"))
    reading = [
        [cell.strip() for cell in line.split("|")[1:-1]]
        for line in itertools.takewhile(lambda line: line.startswith("|"), lines[second + 2 :])
    ]
    assert [cells[0] for cells in reading] == list(ROWS[:5])
    assert all(float(cells[1]) >= 0 and float(cells[2]) > 0 for cells in reading)
    assert reading[0][4] == "1.00x"  # the raw file against itself
    names = [cell.strip() for cell in table[0].split("|")[1:-1]]
    assert names[:5] == ["shape", "lines", "book msgs", "trade lines", "bytes"]
    assert names[-2:] == ["target", "verdict"]
    rows = {}
    for line in table[1:]:
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        assert len(cells) == len(names), line
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    assert list(rows) == list(ROWS)

    def number(row: str, column: str) -> int:
        return int(rows[row][column].replace(",", ""))

    for name, row in rows.items():
        assert number(name, "lines") > 0 and number(name, "book msgs") > 0, row
        assert row["seconds"] not in ("", "-"), f"{name}: no in-process time"
        assert row["verdict"] in ("PASS", "FAIL"), f"{name}: no verdict"
    for name in ROWS[:6]:  # every unfiltered L2 shape ran through the command too
        float(rows[name]["CLI wall s (net)"])  # a number (about 0 or below on tiny inputs)
    # the filtered rows replay fewer book messages than the whole recording
    assert (
        0
        < number("--symbols BTC/USD", "book msgs")
        < number("recording 4 sym + trades", "book msgs")
    )
    # the trades shape really interleaves trade lines (~17% of its lines), the others have none
    share = number("raw + trades", "trade lines") / number("raw + trades", "lines")
    assert 0.12 < share < 0.22
    assert number("raw", "trade lines") == 0
    assert number("raw", "book msgs") == number("raw .zst", "book msgs")
    document = json.loads(results.read_text())
    assert [item["what"] for item in document["summary"]][-5:] == list(SUMMARY[1:])
    assert SUMMARY[0] in {item["what"] for item in document["summary"]}
    assert all(item["value"] is not None for item in document["summary"])
