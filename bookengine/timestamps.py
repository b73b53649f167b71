"""Kraken timestamps as integer nanoseconds since the Unix epoch (never floats)."""

from __future__ import annotations

import calendar
import re
import time

from .errors import ProtocolError

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|z|[+-][0-9]{2}:[0-9]{2})"
)
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def parse_rfc3339_ns(text: str) -> int:
    """``"2024-01-08T12:26:39.526146327Z"`` -> ns since the epoch (v2 timestamps).

    Raises:
        ProtocolError: if the text is not an RFC 3339 timestamp with at most 9 fraction digits.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ProtocolError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    y, mo, d, h, mi, sec = (int(v) for v in (year, month, day, hour, minute, second))
    # Field ranges of RFC 3339 (second 60 is a leap second).
    if not (
        y >= 1
        and 1 <= mo <= 12
        and 1 <= d <= calendar.monthrange(y, mo)[1]
        and h <= 23
        and mi <= 59
        and sec <= 60
    ):
        raise ProtocolError(f"not an RFC 3339 timestamp (no such date or time): {text[:40]!r}")
    seconds = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))
    if zone not in ("Z", "z"):
        offset_hours, offset_minutes = int(zone[1:3]), int(zone[4:6])
        if offset_hours > 23 or offset_minutes > 59:
            raise ProtocolError(f"not an RFC 3339 timestamp (no such UTC offset): {text[:40]!r}")
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (offset_hours * 3600 + offset_minutes * 60)
    nanos = int((fraction or "").ljust(9, "0"))
    result = seconds * 1_000_000_000 + nanos
    if not INT64_MIN <= result <= INT64_MAX:
        raise ProtocolError(f"not an RFC 3339 timestamp in the int64 ns range: {text[:40]!r}")
    return result


def parse_epoch_ns(text: str) -> int:
    """``"1534614248.456738"`` -> ns since the epoch (v1 level timestamps)."""
    whole, dot, fraction = text.partition(".")
    if not whole.isdigit() or (dot and not (fraction.isdigit() and len(fraction) <= 9)):
        raise ProtocolError(f"not an epoch timestamp: {text[:40]!r}")
    return int(whole) * 1_000_000_000 + int(fraction.ljust(9, "0") if dot else "0")


def format_rfc3339_ns(ns: int) -> str:
    """ns since the epoch -> ``"2024-01-08T12:26:39.526146327Z"`` (the v2 wire form)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{head}.{nanos:09d}Z"
