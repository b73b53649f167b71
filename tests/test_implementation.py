"""The implementation switch: ``BOOKENGINE_PURE=1`` forces the reference, which then carries the
whole public path (session, replay, CLI). ``make test`` runs this file once more with the
variable set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bookengine
from bookengine._impl import active_name, compiled_available

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


def test_active_implementation_follows_the_environment() -> None:
    if os.environ.get("BOOKENGINE_PURE") == "1":
        assert bookengine.IMPLEMENTATION == active_name() == "python"
        assert bookengine.L2Book.__module__.startswith("bookengine._impl")
        assert "bookengine._reference" in bookengine.FrameScanner.__module__
    else:
        assert compiled_available()
        assert bookengine.IMPLEMENTATION == "cython"
        assert bookengine.FrameScanner.__module__ == "bookengine._core.scan"


def test_the_switch_is_read_at_import() -> None:
    code = "import bookengine; print(bookengine.IMPLEMENTATION)"
    for pure, expected in (("1", "python"), ("0", "cython")):
        env = dict(os.environ, BOOKENGINE_PURE=pure, PYTHONPATH=str(ROOT))
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == expected


def test_the_active_implementation_replays_a_real_capture() -> None:
    from bookengine.instruments import Instruments
    from bookengine.replay import replay

    result = replay(
        [DATA / "v2-book-btcusd-depth10.jsonl"],
        instruments=Instruments.from_file(DATA / "v2-instrument-snapshot.jsonl"),
    )
    state = result.books["book:BTC/USD"]
    assert (state.checksums_checked, state.checksum_mismatches) == (510, 0)
    assert result.ok
