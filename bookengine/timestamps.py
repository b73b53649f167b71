"""Kraken timestamps as integer nanoseconds since the Unix epoch (never floats)."""

from __future__ import annotations

import calendar
import re

from .errors import ProtocolError

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})"
)


def parse_rfc3339_ns(text: str) -> int:
    """``"2024-01-08T12:26:39.526146327Z"`` -> ns since the epoch (v2 timestamps).

    Raises:
        ProtocolError: if the text is not an RFC 3339 timestamp with at most 9 fraction digits.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ProtocolError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    seconds = calendar.timegm(
        (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
    )
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((fraction or "").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def parse_epoch_ns(text: str) -> int:
    """``"1534614248.456738"`` -> ns since the epoch (v1 level timestamps)."""
    whole, dot, fraction = text.partition(".")
    if not whole.isdigit() or (dot and not (fraction.isdigit() and len(fraction) <= 9)):
        raise ProtocolError(f"not an epoch timestamp: {text[:40]!r}")
    return int(whole) * 1_000_000_000 + int(fraction.ljust(9, "0") if dot else "0")


def format_rfc3339_ns(ns: int) -> str:
    """ns since the epoch -> ``"2024-01-08T12:26:39.526146327Z"`` (the v2 wire form)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    import time

    head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{head}.{nanos:09d}Z"
