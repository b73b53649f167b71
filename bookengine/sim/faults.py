"""Faults the simulator can inject, and the ``KIND[:SYMBOL][=VALUE][@TIME]`` text form.

Kinds (what each does is implemented by :class:`bookengine.sim.server.Simulator`):

=============== ===========================================================================
``drop``        abort every open connection (TCP reset, no close frame)
``stall``       send no frames at all for ``VALUE`` seconds (default 5), then resume
``corrupt``     publish one wrong quantity for ``SYMBOL`` (default: the first symbol) to its
                ``book``/v1/``level3`` subscribers; the next checksum fails, and the client's
                book stays wrong until it resubscribes
``malformed``   send one frame that is not valid JSON to every connection
``maintenance`` ``status`` -> maintenance (no order flow); back online after ``VALUE``
                seconds when given
``cancel_only`` ``status`` -> cancel_only (only cancels); back online after ``VALUE`` seconds
``post_only``   ``status`` -> post_only (no trades); back online after ``VALUE`` seconds
``online``      ``status`` -> online
``ratelimit``   answer the next ``VALUE`` (default 1) subscribe requests with
                ``Exceeded msg rate``
``refuse``      answer the next ``VALUE`` (default 1) WebSocket upgrades with HTTP 429
=============== ===========================================================================

``TIME`` is seconds after the simulator starts (``3``, ``3s``, ``1500ms``); without it the fault
applies at start. Examples: ``corrupt:BTC/USD@3s``, ``stall=2@10s``, ``maintenance=5@1s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STATUS_KINDS = ("maintenance", "cancel_only", "post_only", "online")
SECONDS_KINDS = ("stall", "maintenance", "cancel_only", "post_only")
COUNT_KINDS = ("ratelimit", "refuse")
FAULT_KINDS = ("drop", "stall", "corrupt", "malformed", *STATUS_KINDS, *COUNT_KINDS)

_FAULT = re.compile(
    r"(?P<kind>[a-z_]+)(?::(?P<symbol>[A-Za-z0-9]+/[A-Za-z0-9]+))?"
    r"(?:=(?P<value>[0-9.]+(?:ms|s)?))?(?:@(?P<at>[0-9.]+(?:ms|s)?))?"
)


def _seconds(text: str, what: str) -> float:
    scale = 1.0
    if text.endswith("ms"):
        text, scale = text[:-2], 0.001
    elif text.endswith("s"):
        text = text[:-1]
    try:
        value = float(text) * scale
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number of seconds") from None
    if value < 0:
        raise ValueError(f"{what}: must not be negative")
    return value


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject.

    Attributes:
        kind: one of :data:`FAULT_KINDS`.
        at: seconds after the simulator starts (scheduled faults only).
        symbol: the symbol a ``corrupt`` targets (v2 name); None: the first simulated symbol.
        seconds: duration of a ``stall`` or of a status change (None: no automatic return).
        count: how many subscribes (``ratelimit``) or upgrades (``refuse``) to refuse.
    """

    kind: str
    at: float = 0.0
    symbol: str | None = None
    seconds: float | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.seconds is not None and self.kind not in SECONDS_KINDS:
            raise ValueError(f"fault {self.kind!r} takes no duration")
        if self.count is not None and (self.kind not in COUNT_KINDS or self.count < 1):
            raise ValueError(f"fault {self.kind!r} takes no count (or count < 1)")
        if self.symbol is not None and self.kind != "corrupt":
            raise ValueError(f"fault {self.kind!r} takes no symbol")
        if self.at < 0 or (self.seconds is not None and self.seconds < 0):
            raise ValueError("fault times must not be negative")

    def __str__(self) -> str:
        """The ``KIND[:SYMBOL][=VALUE]@TIME`` text that :func:`parse_fault` reads back."""
        text = self.kind
        if self.symbol is not None:
            text += f":{self.symbol}"
        if self.seconds is not None:
            text += f"={self.seconds:g}s"
        if self.count is not None:
            text += f"={self.count}"
        return f"{text}@{self.at:g}s"


def parse_fault(text: str) -> Fault:
    """Parse ``KIND[:SYMBOL][=VALUE][@TIME]`` (see the module docstring).

    Raises:
        ValueError: the text does not follow the grammar, or names an unknown kind.
    """
    match = _FAULT.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"bad fault {text!r}: expected KIND[:SYMBOL][=VALUE][@TIME], e.g. stall=2@5s"
        )
    kind, symbol, value, at = match.group("kind", "symbol", "value", "at")
    seconds: float | None = None
    count: int | None = None
    if value is not None:
        if kind in COUNT_KINDS:
            if not value.isdigit():
                raise ValueError(f"bad fault {text!r}: {kind} takes a whole count")
            count = int(value)
        else:
            seconds = _seconds(value, f"fault {text!r}")
    return Fault(
        kind,
        at=0.0 if at is None else _seconds(at, f"fault {text!r}"),
        symbol=symbol,
        seconds=seconds,
        count=count,
    )
