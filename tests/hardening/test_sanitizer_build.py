"""Guards for `make asan` / `make memcheck`: the run really uses the instrumented build.

Under ``BOOKENGINE_SANITIZER=asan`` the compiled core must be the AddressSanitizer build from
``build/asan/lib`` (not the in-place one), with its debug bounds checks; otherwise skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import bookengine
from bookengine._core import scan

from .conftest import sanitizer

pytestmark = pytest.mark.skipif(
    os.environ.get("BOOKENGINE_SANITIZER") is None, reason="only under make asan / memcheck"
)


def test_the_instrumented_core_is_loaded() -> None:
    path = Path(scan.__file__)
    assert bookengine.IMPLEMENTATION == "cython"
    if os.environ["BOOKENGINE_SANITIZER"] == "asan":
        assert "build/asan/lib" in str(path), path
        assert b"__asan_report" in path.read_bytes()
        assert sanitizer() == "asan"
    else:
        assert "build/debug/lib" in str(path), path


def test_it_is_a_debug_build() -> None:
    """-g: debug information, for readable sanitizer and valgrind stacks."""
    assert b".debug_info" in Path(scan.__file__).read_bytes()
