"""Health of a live run (``watch``, ``record``): what happened, in one line and one JSON file.

:class:`Health` listens to every feed event (``KrakenFeed(on_event=...)``) and frame
(``on_frame``) and keeps: whether the feed is connected, connection attempts, reconnects,
gaps (connection lost -> opened again, with times), resyncs, checksum mismatches (with their
likely cause), bad frames, subscriptions requested / acknowledged / refused, and the time of
the last frame. :meth:`Health.failure` says when a run must stop, and with which exit status:

* no connection ever succeeded (``CONNECTION_ATTEMPTS`` failed in a row) -> 3;
* the server is not a Kraken v2 endpoint (it answered ``Malformed request``, or the WebSocket
  upgrade was refused with an HTTP error such as 404) -> 3;
* a subscription was refused for good (``Currency pair not supported``...; rate limits are
  retried, not fatal) -> 1;
* no frame at all for ``max_silence_s`` seconds -> 1.

:meth:`Health.line` is the periodic stderr line; :meth:`Health.sidecar` the JSON written next to
each recording segment (:func:`write_json_atomic`: temp file + rename, never half a file).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .boundary import ExitCode
from .kraken.events import (
    BadFrame,
    ChecksumMismatch,
    ConnectionLost,
    ConnectionOpened,
    RequestFailed,
    ResyncRequested,
    Subscribed,
)

CONNECTION_ATTEMPTS = 3
"""Failed connection attempts in a row, none ever successful, before a run gives up."""

TRANSIENT_ERRORS = ("Exceeded msg rate",)
"""Refusals the session retries by itself (not a reason to stop)."""

NOT_KRAKEN_ERRORS = ("Malformed request", "Event not recognized", "Unsupported event")
"""Answers that mean the server does not speak Kraken v2 at this URL."""

MAX_LISTED = 1000
"""At most this many gaps, resyncs, mismatches and refusals are kept (counts go on)."""


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{rest // 1000:06d}Z"


class Health:
    """Counters and a log of one live run; see the module docstring."""

    def __init__(
        self,
        *,
        url: str,
        subscribed: dict[str, list[str]],
        max_silence_s: float | None = None,
        clock_ns: Any = time.time_ns,
    ) -> None:
        self.url = url
        self.requested = subscribed
        """Channel -> symbols asked for."""
        self.max_silence_s = max_silence_s
        self._clock_ns = clock_ns
        self.started_ns = clock_ns()
        self.connected = False
        self.ever_connected = False
        self.attempts = 0
        self.failed_attempts = 0
        """Failed connection attempts in a row (reset by a successful one)."""
        self.reconnects = 0
        self.frames = 0
        self.last_frame_ns: int | None = None
        self.bad_frames = 0
        self.mismatches = 0
        self.resyncs = 0
        self.acknowledged: dict[str, list[str]] = {}
        self.refused: list[dict[str, Any]] = []
        self.gaps: list[dict[str, Any]] = []
        self.resync_log: list[dict[str, Any]] = []
        self.mismatch_log: list[dict[str, Any]] = []
        self.last_error = ""
        self.last_problem = ""
        """The latest mismatch or refusal, as one line (the full-screen view shows it)."""
        self._failure: tuple[int, str] | None = None

    # -- inputs ---------------------------------------------------------------------------------

    def on_frame(self, recv_ts_ns: int, frame: bytes) -> None:
        """Every frame received (``KrakenFeed(on_frame=...)``)."""
        self.frames += 1
        self.last_frame_ns = recv_ts_ns

    def on_event(self, event: Any) -> None:
        """Every feed event (``KrakenFeed(on_event=...)``)."""
        now = self._clock_ns()
        if isinstance(event, ConnectionOpened):
            self.attempts += 1
            if self.ever_connected:
                self.reconnects += 1
            self.connected = self.ever_connected = True
            self.failed_attempts = 0
            if self.gaps and self.gaps[-1]["end_ns"] is None:
                gap = self.gaps[-1]
                gap["end_ns"] = now
                gap["end"] = _iso(now)
                gap["seconds"] = round((now - gap["start_ns"]) / 1e9, 3)
        elif isinstance(event, ConnectionLost):
            if self.connected:
                if len(self.gaps) < MAX_LISTED:
                    self.gaps.append(
                        {
                            "start_ns": now,
                            "start": _iso(now),
                            "end_ns": None,
                            "end": None,
                            "seconds": None,
                            "reason": event.reason,
                        }
                    )
            else:
                self.attempts += 1
                self.failed_attempts += 1
            self.connected = False
            self.last_error = event.reason
            if not self.ever_connected and self.failed_attempts >= CONNECTION_ATTEMPTS:
                self._fail(ExitCode.CONNECTION, self._no_connection(event.reason))
        elif isinstance(event, Subscribed):
            self.acknowledged.setdefault(event.channel, []).append(event.symbol)
        elif isinstance(event, RequestFailed):
            self._refused(event, now)
        elif isinstance(event, ResyncRequested):
            self.resyncs += 1
            if len(self.resync_log) < MAX_LISTED:
                self.resync_log.append(
                    {"key": event.key, "at_ns": now, "at": _iso(now), "attempt": event.attempt}
                )
        elif isinstance(event, ChecksumMismatch):
            self.mismatches += 1
            self.last_problem = event.message
            if len(self.mismatch_log) < MAX_LISTED:
                self.mismatch_log.append(
                    {
                        "key": event.key,
                        "at_ns": event.recv_ts_ns,
                        "at": _iso(event.recv_ts_ns) if event.recv_ts_ns >= 0 else None,
                        "expected": event.expected,
                        "computed": event.computed,
                        "likely_cause": event.likely_cause,
                    }
                )
        elif isinstance(event, BadFrame):
            self.bad_frames += 1

    def _no_connection(self, reason: str) -> str:
        text = f"no connection to {self.url} after {self.failed_attempts} attempts: {reason}"
        if "InvalidStatus" in reason or "HTTP" in reason:
            text += " (not a Kraken WebSocket endpoint? v2 URLs end in /v2)"
        return text

    def _refused(self, event: RequestFailed, now: int) -> None:
        record = {
            "method": event.method,
            "symbol": event.symbol,
            "error": event.error,
            "at_ns": now,
            "at": _iso(now),
        }
        if len(self.refused) < MAX_LISTED:
            self.refused.append(record)
        self.last_problem = f"{event.method or 'request'} refused: {event.error}"
        error = event.error
        if any(error.startswith(transient) for transient in TRANSIENT_ERRORS):
            return
        if any(error.startswith(answer) for answer in NOT_KRAKEN_ERRORS):
            self._fail(
                ExitCode.CONNECTION,
                f"{self.url} is not a Kraken v2 endpoint: it answered {error!r} to "
                f"{event.method or 'a request'} (v2 URLs end in /v2)",
            )
        elif event.method in ("subscribe", ""):
            what = f" {event.symbol}" if event.symbol and event.symbol not in error else ""
            self._fail(ExitCode.DATA, f"subscription refused{what}: {error}")

    def _fail(self, code: int, message: str) -> None:
        if self._failure is None:
            self._failure = (int(code), message)

    # -- outputs --------------------------------------------------------------------------------

    def failure(self) -> tuple[int, str] | None:
        """``(exit status, one-line reason)`` when the run must stop; None while it is healthy."""
        if self._failure is None and self.max_silence_s is not None:
            age = self.frame_age_s()
            if age > self.max_silence_s:
                self._fail(
                    ExitCode.DATA,
                    f"no data for {age:.1f}s (--max-silence {self.max_silence_s:g}); "
                    f"{'connected' if self.connected else 'disconnected: ' + self.last_error}",
                )
        return self._failure

    def frame_age_s(self) -> float:
        """Seconds since the last frame (since the start before the first one)."""
        last = self.last_frame_ns if self.last_frame_ns is not None else self.started_ns
        now: int = self._clock_ns()
        return max(0.0, (now - last) / 1e9)

    def line(self) -> str:
        """The periodic health line."""
        age = self.frame_age_s()
        state = "connected" if self.connected else "DISCONNECTED"
        open_gaps = sum(1 for gap in self.gaps if gap["end_ns"] is None)
        return (
            f"health: {state}, reconnects {self.reconnects}, gaps {len(self.gaps)}"
            f"{' (1 open)' if open_gaps else ''}, resyncs {self.resyncs}, mismatches "
            f"{self.mismatches}, bad frames {self.bad_frames}, frames {self.frames}, "
            f"last frame {age:.1f}s ago"
        )

    def sidecar(
        self,
        *,
        segment: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        status: str = "running",
        exit_code: int | None = None,
    ) -> dict[str, Any]:
        """The health JSON of a recording segment (events between ``since_ns`` and
        ``until_ns``; the whole run when None)."""

        def within(ns: int | None) -> bool:
            if ns is None:
                return True
            return (since_ns is None or ns >= since_ns) and (until_ns is None or ns < until_ns)

        failure = self._failure
        return {
            "segment": segment,
            "url": self.url,
            "started": _iso(self.started_ns),
            "updated": _iso(self._clock_ns()),
            "status": status,
            "exit_code": exit_code,
            "failure": None if failure is None else failure[1],
            "subscribed": self.requested,
            "acknowledged": self.acknowledged,
            "refused": [r for r in self.refused if within(r["at_ns"])],
            "connected": self.connected,
            "connection_attempts": self.attempts,
            "reconnects": self.reconnects,
            "frames": self.frames,
            "last_frame": None if self.last_frame_ns is None else _iso(self.last_frame_ns),
            "bad_frames": self.bad_frames,
            "gaps": [g for g in self.gaps if within(g["start_ns"])],
            "resyncs": [r for r in self.resync_log if within(r["at_ns"])],
            "mismatches": [m for m in self.mismatch_log if within(m["at_ns"])],
            "counts": {
                "gaps": len(self.gaps),
                "resyncs": self.resyncs,
                "mismatches": self.mismatches,
                "refused": len(self.refused),
            },
        }


def write_json_atomic(path: str | Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` through a temp file and a rename (atomic on POSIX)."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temp.open("w", encoding="utf-8") as handle:
            json.dump(value, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def sidecar_path(segment: str | Path) -> Path:
    """``<segment>.health.json``."""
    segment = Path(segment)
    return segment.with_name(segment.name + ".health.json")
