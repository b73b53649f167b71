"""Frame classification and entry extraction, the obvious way: ``json.loads`` and dict look-ups.

The compiled ``bookengine._core.scan.FrameScanner`` does the same over raw bytes without building
Python objects per level; this one is the oracle it is tested against.

A scanner is reused: ``kind = scanner.scan(frame)`` fills it, the book's ``apply_scanned`` reads
it. Number fields stay text (the book converts them at its own scale).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..core_types import (
    EVENT_ADD,
    EVENT_CODES,
    EVENT_NONE,
    KIND_BOOK,
    KIND_LEVEL3,
    KIND_OTHER,
    KIND_V1_BOOK,
    MAX_NESTING,
    MAX_V1_ELEMENTS,
    Entry,
)
from ..errors import ProtocolError
from ..timestamps import parse_rfc3339_ns


@dataclass(slots=True)
class _Scanned:
    kind: int = KIND_OTHER
    is_snapshot: bool = False
    symbol: str = ""
    channel_name: str = ""
    checksum: int = -1
    timestamp: str = ""
    bids: list[Entry] = field(default_factory=list)
    asks: list[Entry] = field(default_factory=list)


def _number_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, _NumberText):
        return str(value)
    raise ProtocolError(f"{where}: expected a number, got {type(value).__name__}")


class _NumberText(str):
    """A JSON number kept as its text (so floats never appear)."""


def _is_string(value: Any) -> bool:
    """True for a JSON string (a number kept as text is not one)."""
    return isinstance(value, str) and not isinstance(value, _NumberText)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _nesting(value: Any) -> int:
    """Containers on the deepest path: ``1`` -> 0, ``[]`` -> 1, ``[[1]]`` -> 2."""
    depth = 0
    level = [value] if isinstance(value, dict | list) else []
    while level:
        depth += 1
        level = [
            item
            for container in level
            for item in (container.values() if isinstance(container, dict) else container)
            if isinstance(item, dict | list)
        ]
    return depth


def _loads(frame: bytes | str) -> Any:
    try:
        # Kraken frames are UTF-8 JSON; json.loads would also guess UTF-16/32 and BOMs.
        text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
        text.encode("utf-8")  # lone surrogates (raw) are not text
        value = json.loads(
            text,
            parse_float=_NumberText,
            parse_int=_NumberText,
            parse_constant=_reject_constant,
        )
    except RecursionError:
        raise ProtocolError("malformed JSON: nesting too deep") from None
    except (ValueError, UnicodeError) as exc:
        raise ProtocolError(f"malformed JSON: {exc}") from None
    if _nesting(value) > MAX_NESTING:
        raise ProtocolError("malformed JSON: nesting too deep")
    if "\\u" in text and _has_lone_surrogate(value):
        raise ProtocolError("malformed JSON: a \\u escape is a lone surrogate, not text")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _checksum_value(value: Any, where: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
        if number <= 0xFFFFFFFF:
            return number
    raise ProtocolError(f"{where}: checksum must be an unsigned 32-bit integer, got {value!r}")


class FrameScanner:
    """Reusable scanner: ``scan(frame)`` classifies a frame and keeps its book entries.

    Attributes after a scan: ``kind``, ``is_snapshot``, ``symbol`` (v2) or pair (v1),
    ``channel_name`` (v1 ``book-N``), ``checksum`` (-1 when absent), ``timestamp`` (text),
    ``bids`` and ``asks`` (lists of :class:`Entry`). ``fast_path`` is always False: the
    reference has one path, ``json.loads`` (the compiled scanner reads Kraken's own layout by a
    shortcut and says so there).
    """

    fast_path = False

    def __init__(self) -> None:
        self._s = _Scanned()

    kind = property(lambda self: self._s.kind)
    is_snapshot = property(lambda self: self._s.is_snapshot)
    symbol = property(lambda self: self._s.symbol)
    channel_name = property(lambda self: self._s.channel_name)
    checksum = property(lambda self: self._s.checksum)
    bids = property(lambda self: self._s.bids)
    asks = property(lambda self: self._s.asks)

    @property
    def bid_count(self) -> int:
        return len(self._s.bids)

    @property
    def ask_count(self) -> int:
        return len(self._s.asks)

    @property
    def timestamp_ns(self) -> int:
        """The message timestamp in ns since the epoch, -1 when the frame has none."""
        return parse_rfc3339_ns(self._s.timestamp) if self._s.timestamp else -1

    def scan(self, frame: bytes | str) -> int:
        """Classify ``frame`` and extract its book entries.

        Returns:
            One of ``KIND_OTHER``, ``KIND_BOOK``, ``KIND_LEVEL3``, ``KIND_V1_BOOK``.

        Raises:
            ProtocolError: malformed JSON, or a book frame with missing or mistyped fields.
        """
        self._s = _Scanned()
        message = _loads(frame)
        if isinstance(message, dict):
            self._scan_v2(message)
        elif isinstance(message, list):
            self._scan_v1(message)
        return self._s.kind

    def _scan_v2(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if channel == "book":
            kind = KIND_BOOK
        elif channel == "level3":
            kind = KIND_LEVEL3
        else:
            return
        msg_type = message.get("type")
        if msg_type not in ("snapshot", "update"):
            raise ProtocolError(f"{channel}: 'type' must be snapshot or update, got {msg_type!r}")
        data = message.get("data")
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
            raise ProtocolError(f"{channel}: 'data' must be an array of one book object")
        book = data[0]
        symbol = book.get("symbol")
        if not isinstance(symbol, str) or isinstance(symbol, _NumberText):
            raise ProtocolError(f"{channel}: 'symbol' missing or not a string")
        s = self._s
        # Known from here on even if the rest is malformed: the session can then blame the
        # right book.
        s.kind = kind
        s.is_snapshot = msg_type == "snapshot"
        s.symbol = symbol
        if "checksum" in book:
            s.checksum = _checksum_value(book["checksum"], f"{symbol}: checksum")
        timestamp = book.get("timestamp")
        if timestamp is not None:
            if not isinstance(timestamp, str) or isinstance(timestamp, _NumberText):
                raise ProtocolError(f"{symbol}: 'timestamp' must be a string")
            s.timestamp = timestamp
        for side in ("bids", "asks"):
            raw = book.get(side, [])
            if not isinstance(raw, list):
                raise ProtocolError(f"{symbol}: '{side}' must be an array")
            target = s.bids if side == "bids" else s.asks
            for index, item in enumerate(raw):
                where = f"{symbol}: {side}[{index}]"
                if not isinstance(item, dict):
                    raise ProtocolError(f"{where}: expected an object")
                target.append(
                    self._l2_entry(item, where)
                    if kind == KIND_BOOK
                    else self._l3_entry(item, where, s.is_snapshot)
                )

    @staticmethod
    def _l2_entry(item: dict[str, Any], where: str) -> Entry:
        if "price" not in item or "qty" not in item:
            raise ProtocolError(f"{where}: needs 'price' and 'qty'")
        return Entry(
            _number_text(item["price"], f"{where}.price"),
            _number_text(item["qty"], f"{where}.qty"),
        )

    @staticmethod
    def _l3_entry(item: dict[str, Any], where: str, is_snapshot: bool) -> Entry:
        for key in ("order_id", "limit_price", "order_qty"):
            if key not in item:
                raise ProtocolError(f"{where}: needs '{key}'")
        order_id = item["order_id"]
        if not isinstance(order_id, str) or isinstance(order_id, _NumberText) or not order_id:
            raise ProtocolError(f"{where}.order_id: expected a non-empty string")
        event = EVENT_ADD if is_snapshot else EVENT_NONE
        if "event" in item:
            name = item["event"]
            if not isinstance(name, str) or name not in EVENT_CODES:
                raise ProtocolError(f"{where}.event: expected add, modify or delete, got {name!r}")
            event = EVENT_CODES[name]
        elif not is_snapshot:
            raise ProtocolError(f"{where}: update entry needs 'event'")
        timestamp = item.get("timestamp", "")
        if not isinstance(timestamp, str) or isinstance(timestamp, _NumberText):
            raise ProtocolError(f"{where}.timestamp: expected a string")
        return Entry(
            _number_text(item["limit_price"], f"{where}.limit_price"),
            _number_text(item["order_qty"], f"{where}.order_qty"),
            order_id=order_id,
            event=event,
            timestamp=timestamp,
        )

    def _scan_v1(self, message: list[Any]) -> None:
        # [channelID, payload, (payload2,) channelName, pair]; channelID is deprecated.
        if not 4 <= len(message) <= MAX_V1_ELEMENTS or not all(_is_string(v) for v in message[-2:]):
            return
        channel_name, pair = message[-2], message[-1]
        if not channel_name.startswith("book-"):
            return
        payloads = message[1:-2]
        s = self._s
        s.kind = KIND_V1_BOOK
        s.symbol = pair
        s.channel_name = channel_name
        keys: set[str] = set()
        for payload in payloads:
            if not isinstance(payload, dict):
                raise ProtocolError(f"{pair} {channel_name}: payload must be an object")
            for key, levels in payload.items():
                if key == "c":
                    s.checksum = _checksum_value(levels, f"{pair}: c")
                    continue
                if key not in ("as", "bs", "a", "b"):
                    raise ProtocolError(f"{pair} {channel_name}: unknown payload key {key!r}")
                keys.add(key)
                target = s.bids if key in ("bs", "b") else s.asks
                if not isinstance(levels, list):
                    raise ProtocolError(f"{pair}: '{key}' must be an array")
                for index, level in enumerate(levels):
                    target.append(self._v1_entry(level, f"{pair}: {key}[{index}]"))
        snapshot_keys = keys & {"as", "bs"}
        if snapshot_keys and keys - snapshot_keys:
            raise ProtocolError(f"{pair} {channel_name}: mixes snapshot and update payloads")
        s.is_snapshot = bool(snapshot_keys)

    @staticmethod
    def _v1_entry(level: Any, where: str) -> Entry:
        if not isinstance(level, list) or not 2 <= len(level) <= 4:
            raise ProtocolError(f"{where}: expected [price, volume, timestamp(, 'r')]")
        price, qty = level[0], level[1]
        for name, value in (("price", price), ("volume", qty)):
            if not _is_string(value):
                raise ProtocolError(f"{where}.{name}: expected a string")
        timestamp = level[2] if len(level) > 2 else ""
        if not _is_string(timestamp):
            raise ProtocolError(f"{where}.timestamp: expected a string")
        republish = len(level) == 4
        if republish and level[3] != "r":
            raise ProtocolError(f"{where}: unknown level flag {level[3]!r}")
        return Entry(price, qty, timestamp=timestamp, republish=republish)
