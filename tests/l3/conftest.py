"""Every L3 test that takes ``impl`` runs once per implementation: compiled and reference."""

from __future__ import annotations

import os

import pytest

from bookengine import Implementation, implementation

NAMES = ["python"] if os.environ.get("BOOKENGINE_PURE") == "1" else ["cython", "python"]
"""Implementations under test; a missing extension fails the run (no quiet halving)."""


@pytest.fixture(params=NAMES)
def impl(request: pytest.FixtureRequest) -> Implementation:
    """One implementation's classes (``FrameScanner``, ``L3Book`` ...)."""
    return implementation(request.param)


@pytest.fixture
def impls() -> list[Implementation]:
    """All implementations at once, for differential tests (reference last)."""
    return [implementation(name) for name in NAMES]
