"""Symbol precisions and status: from v2 ``instrument`` frames, or given by the user.

v2 ``book`` and ``level3`` checksums render prices and quantities at the pair's
``price_precision`` / ``qty_precision``; the wire drops trailing zeros, so the precision cannot be
read off the numbers. v1 books need no entry here: their scale is what the wire shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PrecisionError, ProtocolError
from .numbers import check_scale


@dataclass(frozen=True, slots=True)
class Instrument:
    """One pair's precisions and trading status, as the ``instrument`` channel gives them."""

    symbol: str
    price_precision: int
    qty_precision: int
    status: str = "online"


class Instruments:
    """``symbol -> Instrument``, kept current by instrument snapshots and updates."""

    def __init__(self, given: Mapping[str, tuple[int, int]] | None = None) -> None:
        self._by_symbol: dict[str, Instrument] = {}
        for symbol, (price_precision, qty_precision) in (given or {}).items():
            self.set(symbol, price_precision, qty_precision)

    def set(
        self, symbol: str, price_precision: int, qty_precision: int, status: str = "online"
    ) -> None:
        """Record a symbol's precisions (validated: integers from 0 to 18)."""
        check_scale(price_precision, f"{symbol}: price_precision")
        check_scale(qty_precision, f"{symbol}: qty_precision")
        self._by_symbol[symbol] = Instrument(symbol, price_precision, qty_precision, status)

    def get(self, symbol: str) -> Instrument | None:
        return self._by_symbol.get(symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def __len__(self) -> int:
        return len(self._by_symbol)

    def apply_message(self, message: Mapping[str, Any]) -> list[str]:
        """Apply a decoded v2 ``instrument`` snapshot or update.

        Returns:
            The symbols whose precisions or status were set.

        Raises:
            ProtocolError: a pair entry is not shaped as Kraken documents it.
        """
        data = message.get("data")
        if not isinstance(data, dict):
            raise ProtocolError("instrument: 'data' must be an object")
        pairs = data.get("pairs", [])
        if not isinstance(pairs, list):
            raise ProtocolError("instrument: 'pairs' must be an array")
        changed: list[str] = []
        for index, pair in enumerate(pairs):
            try:
                symbol = pair["symbol"]
                price_precision = pair["price_precision"]
                qty_precision = pair["qty_precision"]
            except (KeyError, TypeError):
                raise ProtocolError(
                    f"instrument: pairs[{index}] needs symbol, price_precision, qty_precision"
                ) from None
            if not isinstance(symbol, str):
                raise ProtocolError(f"instrument: pairs[{index}].symbol must be a string")
            try:
                self.set(symbol, price_precision, qty_precision, str(pair.get("status", "online")))
            except PrecisionError as exc:
                raise ProtocolError(f"instrument: pairs[{index}]: {exc}") from None
            changed.append(symbol)
        return changed

    @classmethod
    def from_file(cls, path: str | Path) -> Instruments:
        """Read every ``instrument`` frame in a capture (plain or .gz, optional ts+TAB prefix)."""
        from .capture import read_frames

        instruments = cls()
        for record in read_frames([path]):
            if b'"instrument"' not in record.frame:
                continue
            try:
                message = json.loads(record.frame)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("channel") == "instrument":
                instruments.apply_message(message)
        return instruments

    def symbols(self) -> Iterable[str]:
        return self._by_symbol.keys()

    def copy(self) -> Instruments:
        """An independent copy (a replay's session may learn more without touching this one)."""
        out = Instruments()
        for symbol in self.symbols():
            item = self.get(symbol)
            assert item is not None
            out.set(symbol, item.price_precision, item.qty_precision, item.status)
        return out
