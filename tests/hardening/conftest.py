"""Shared helpers of the hardening tests: memory and descriptor probes, sanitizer detection."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # for `fuzz` and `bench` (after any instrumented build)

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def open_fds() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def sanitizer() -> str | None:
    """Name the sanitizer this process runs under ("asan", "valgrind") or None."""
    if os.environ.get("BOOKENGINE_SANITIZER"):
        return os.environ["BOOKENGINE_SANITIZER"]
    with open("/proc/self/maps") as maps:
        text = maps.read()
    if "libasan" in text or "asan_with_fuzzer" in text:
        return "asan"
    if "vgpreload" in text:
        return "valgrind"
    return None
