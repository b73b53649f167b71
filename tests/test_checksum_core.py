"""The compiled core's CRC-32 (``bookengine._core.checksum``), which both books hash with: the
PCLMUL fold (when the CPU has it) and the slicing tables each give zlib's CRC-32."""

from __future__ import annotations

import os
import platform
import random
import zlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("BOOKENGINE_PURE") == "1", reason="compiled core not under test"
)


def test_crc_matches_zlib_on_many_lengths_and_alignments() -> None:
    from bookengine._core import checksum

    rng = random.Random(3)
    blob = rng.randbytes(20_000)
    lengths = [*range(0, 200), 255, 256, 257, 1023, 1024, 1025, 19_999]
    for length in lengths + [rng.randrange(20_000) for _ in range(300)]:
        start = rng.randrange(16)
        data = blob[start : start + length]
        expected = zlib.crc32(data)
        assert checksum.crc32(data) == expected, length
        assert checksum.crc32(data, fold=False) == expected, length


def test_crc_continues_across_pieces() -> None:
    """A CRC continued from an earlier one (the L3 checksum hashes asks, then bids) is zlib's."""
    from bookengine._core import checksum

    rng = random.Random(5)
    blob = rng.randbytes(5_000)
    for _ in range(300):
        cut = rng.randrange(len(blob))
        end = rng.randrange(cut, len(blob) + 1)
        head, tail = blob[:cut], blob[cut:end]
        expected = zlib.crc32(head + tail)
        for fold in (True, False):
            assert checksum.crc32(tail, checksum.crc32(head, fold=fold), fold) == expected


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64")
    or not Path("/proc/cpuinfo").exists()
    or " pclmulqdq" not in Path("/proc/cpuinfo").read_text(),
    reason="no PCLMULQDQ here",
)
def test_fold_is_used_when_the_cpu_has_it() -> None:
    """So the tests above really exercise the fold on such machines."""
    from bookengine._core import checksum

    assert checksum.clmul_available()


def test_digits_are_the_decimal_text_without_leading_zeros() -> None:
    """Every digit count, both sides of each power of ten, up to int64's largest value."""
    from bookengine._core import checksum

    values = [0, 1, 9, 2**63 - 1, *range(0, 1000)]
    for power in range(1, 19):
        values += [10**power - 1, 10**power, 10**power + 1]
    rng = random.Random(7)
    values += [rng.randrange(2**63) >> rng.randrange(63) for _ in range(2000)]
    for value in values:
        assert checksum.digits(value) == (str(value).encode() if value else b""), value
