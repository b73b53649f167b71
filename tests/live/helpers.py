"""Run the real ``bookengine`` command in a subprocess (this worktree's code first)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"
CAPTURE = DATA / "v2-book-btcusd-depth10.jsonl"
INSTRUMENTS = DATA / "v2-instrument-snapshot.jsonl"


def env(extra_path: Path | None = None) -> dict[str, str]:
    paths = [str(ROOT)] if extra_path is None else [str(extra_path), str(ROOT)]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bookengine", *args]


def cli(*args: str, timeout: float = 60, **options: Any) -> subprocess.CompletedProcess[str]:
    options.setdefault("env", env())
    return subprocess.run(
        command(*args), capture_output=True, text=True, check=False, timeout=timeout, **options
    )


def one_line(stderr: str) -> str:
    """The single stderr line of a failed command (and proof it is a single one)."""
    lines = stderr.strip("\n").splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]
