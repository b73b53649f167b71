"""Encode the requests a session sends to Kraken (v2 JSON-RPC style and v1 events)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def subscribe_v2(
    channel: str,
    symbols: Sequence[str] | None,
    *,
    depth: int | None = None,
    req_id: int | None = None,
    token: str | None = None,
    snapshot: bool = True,
) -> str:
    """``{"method": "subscribe", "params": {...}}`` for ``book``, ``level3``, ``instrument``..."""
    params: dict[str, Any] = {"channel": channel}
    if symbols is not None:
        params["symbol"] = list(symbols)
    if depth is not None:
        params["depth"] = depth
    if channel != "heartbeat":
        params["snapshot"] = snapshot
    if token is not None:
        params["token"] = token
    message: dict[str, Any] = {"method": "subscribe", "params": params}
    if req_id is not None:
        message["req_id"] = req_id
    return _dumps(message)


def unsubscribe_v2(
    channel: str,
    symbols: Sequence[str],
    *,
    depth: int | None = None,
    req_id: int | None = None,
    token: str | None = None,
) -> str:
    """``{"method": "unsubscribe", ...}``; Kraken wants the same depth as the subscription."""
    params: dict[str, Any] = {"channel": channel, "symbol": list(symbols)}
    if depth is not None:
        params["depth"] = depth
    if token is not None:
        params["token"] = token
    message: dict[str, Any] = {"method": "unsubscribe", "params": params}
    if req_id is not None:
        message["req_id"] = req_id
    return _dumps(message)


def ping_v2(req_id: int) -> str:
    """Application-level ping; Kraken answers ``pong`` with ``time_in``/``time_out``."""
    return _dumps({"method": "ping", "req_id": req_id})


def subscribe_v1(pairs: Sequence[str], depth: int, *, reqid: int | None = None) -> str:
    """v1 ``{"event": "subscribe", "subscription": {"name": "book", "depth": N}}``."""
    message: dict[str, Any] = {
        "event": "subscribe",
        "pair": list(pairs),
        "subscription": {"name": "book", "depth": depth},
    }
    if reqid is not None:
        message["reqid"] = reqid
    return _dumps(message)


def unsubscribe_v1(pairs: Sequence[str], depth: int, *, reqid: int | None = None) -> str:
    """v1 unsubscribe from ``book-N``."""
    message: dict[str, Any] = {
        "event": "unsubscribe",
        "pair": list(pairs),
        "subscription": {"name": "book", "depth": depth},
    }
    if reqid is not None:
        message["reqid"] = reqid
    return _dumps(message)


def ping_v1(reqid: int) -> str:
    """v1 ``{"event": "ping", "reqid": N}``."""
    return _dumps({"event": "ping", "reqid": reqid})
