"""Fixtures for the simulator tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="session")
def signature_example() -> dict[str, Any]:
    """Kraken's documented REST API-Sign example."""
    example: dict[str, Any] = json.loads((DATA / "docs-rest-signature-example.json").read_text())
    return example
