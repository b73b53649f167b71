"""Every test that takes ``impl`` runs once per implementation: compiled and reference."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bookengine import Implementation, implementation
from bookengine._impl import compiled_available

DATA = Path(__file__).parent / "data"

if os.environ.get("BOOKENGINE_PURE") == "1":
    NAMES = ["python"]
else:
    # A missing extension must fail the run, not quietly halve it.
    if not compiled_available():
        raise RuntimeError(
            "the compiled core is not built: run `make build` (or set BOOKENGINE_PURE=1)"
        )
    NAMES = ["cython", "python"]


@pytest.fixture(params=NAMES)
def impl(request: pytest.FixtureRequest) -> Implementation:
    """One implementation's classes (``FrameScanner``, ``L2Book``, ``L3Book``)."""
    return implementation(request.param)


@pytest.fixture
def data() -> Path:
    return DATA
