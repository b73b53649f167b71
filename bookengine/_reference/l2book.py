"""Reference L2 book: two ``SortedDict`` ladders of int mantissas. Obvious over fast.

Same public API as the compiled ``bookengine._core.l2book.L2BookCore``; differential tests
hold the two together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sortedcontainers import SortedDict

from ..checksum import book_checksum, check_checksum
from ..core_types import KIND_BOOK, KIND_V1_BOOK, Entry, check_depth
from ..errors import ChecksumError, PrecisionError, ProtocolError
from ..numbers import NumberLike, check_scale, parse_mantissa, wire_decimals
from .scan import FrameScanner


class L2BookCore:
    """One symbol's aggregated book, kept exactly at the subscribed depth.

    Args:
        symbol: the Kraken symbol (``"BTC/USD"``, v1 ``"XBT/USD"``).
        depth: levels per side kept after every message (Kraken's subscribed depth).
        price_precision, qty_precision: scales of the mantissas. ``None`` (v1) means: take them
            from the decimals written on the wire in the first snapshot.
    """

    def __init__(
        self,
        symbol: str,
        depth: int,
        price_precision: int | None = None,
        qty_precision: int | None = None,
    ) -> None:
        self.symbol = symbol
        self.depth = check_depth(depth)
        if (price_precision is None) != (qty_precision is None):
            raise PrecisionError(f"{symbol}: give both precisions or neither")
        self._price_precision = (
            None if price_precision is None else check_scale(price_precision, "price_precision")
        )
        self._qty_precision = (
            None if qty_precision is None else check_scale(qty_precision, "qty_precision")
        )
        # bids keyed by -price so both ladders iterate best first.
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()

    # -- precision ---------------------------------------------------------------------------

    @property
    def price_precision(self) -> int | None:
        return self._price_precision

    @property
    def qty_precision(self) -> int | None:
        return self._qty_precision

    def _scales(self) -> tuple[int, int]:
        if self._price_precision is None or self._qty_precision is None:
            raise PrecisionError(f"{self.symbol}: precision unknown until the first snapshot")
        return self._price_precision, self._qty_precision

    # -- applying messages -------------------------------------------------------------------

    def apply_snapshot(
        self,
        bids: Sequence[tuple[NumberLike, NumberLike]],
        asks: Sequence[tuple[NumberLike, NumberLike]],
        checksum: int | None = None,
    ) -> bool:
        """Replace the book with a snapshot (levels best first). See :meth:`apply_scanned`."""
        check_checksum(checksum)
        return self._apply(
            True, _entries(bids), _entries(asks), -1 if checksum is None else checksum
        )

    def apply_update(
        self,
        bids: Sequence[tuple[NumberLike, NumberLike]],
        asks: Sequence[tuple[NumberLike, NumberLike]],
        checksum: int | None = None,
    ) -> bool:
        """Apply one update message's levels in order. See :meth:`apply_scanned`."""
        check_checksum(checksum)
        return self._apply(
            False, _entries(bids), _entries(asks), -1 if checksum is None else checksum
        )

    def apply_scanned(self, scanner: FrameScanner) -> bool:
        """Apply the book message held by ``scanner`` (a scanned v2 ``book`` or v1 frame).

        Kraken rules: a snapshot replaces the book; in an update each level replaces the
        quantity at its price in array order (qty 0 deletes, deleting an unknown level is a
        no-op, the same price twice: last wins); then each side is truncated to ``depth``; then
        the checksum (top 10 per side) is verified when the message carries one.

        Returns:
            True when a checksum was verified, False when the message carried none.

        Raises:
            PrecisionError, ProtocolError: an entry is invalid; the book is unchanged.
            ChecksumError: the message was applied but the checksum differs: resync.
        """
        if scanner.kind not in (KIND_BOOK, KIND_V1_BOOK):
            raise ProtocolError(f"{self.symbol}: not a book frame")
        if scanner.symbol != self.symbol:
            raise ProtocolError(f"{self.symbol}: frame is for {scanner.symbol}")
        return self._apply(scanner.is_snapshot, scanner.bids, scanner.asks, scanner.checksum)

    def _apply(
        self, is_snapshot: bool, bids: list[Entry], asks: list[Entry], checksum: int
    ) -> bool:
        if self._price_precision is None:
            if not is_snapshot:
                raise PrecisionError(f"{self.symbol}: precision unknown until the first snapshot")
            entries = bids + asks
            price_scale = check_scale(
                max((wire_decimals(e.price) for e in entries), default=0), "price_precision"
            )
            qty_scale = check_scale(
                max((wire_decimals(e.qty) for e in entries), default=0), "qty_precision"
            )
        else:
            price_scale, qty_scale = self._scales()
        # Validate every entry before touching the book: a bad message changes nothing.
        parsed = {
            side: [
                (
                    parse_mantissa(e.price, price_scale, f"{self.symbol}: {side}[{i}].price"),
                    parse_mantissa(e.qty, qty_scale, f"{self.symbol}: {side}[{i}].qty"),
                )
                for i, e in enumerate(entries)
            ]
            for side, entries in (("bids", bids), ("asks", asks))
        }
        if self._price_precision is None and (bids or asks):
            # an empty snapshot shows no decimals: fix nothing yet
            self._price_precision, self._qty_precision = price_scale, qty_scale
        if is_snapshot:
            self._bids.clear()
            self._asks.clear()
        for side, ladder, sign in (("bids", self._bids, -1), ("asks", self._asks, 1)):
            for price, qty in parsed[side]:
                if qty == 0:
                    ladder.pop(sign * price, None)
                else:
                    ladder[sign * price] = qty
            while len(ladder) > self.depth:
                ladder.popitem(-1)
        if checksum < 0:
            return False
        computed = self.checksum()
        if computed != checksum:
            raise ChecksumError(self.symbol, checksum, computed)
        return True

    def clear(self) -> None:
        """Empty both sides (precisions are kept)."""
        self._bids.clear()
        self._asks.clear()

    # -- queries -----------------------------------------------------------------------------

    def checksum(self) -> int:
        """Kraken CRC32 of the current book (top 10 asks ascending, then top 10 bids)."""
        return book_checksum(self.asks(10), self.bids(10))

    def bids(self, n: int | None = None) -> list[tuple[int, int]]:
        """Up to ``n`` bid levels, best (highest) first, as (price, qty) mantissas."""
        items = self._bids.items()[: self._count(n, len(self._bids))]
        return [(-key, qty) for key, qty in items]

    def asks(self, n: int | None = None) -> list[tuple[int, int]]:
        """Up to ``n`` ask levels, best (lowest) first, as (price, qty) mantissas."""
        return list(self._asks.items()[: self._count(n, len(self._asks))])

    @staticmethod
    def _count(n: int | None, size: int) -> int:
        if n is None:
            return size
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return min(n, size)

    def bids_array(self, n: int | None = None) -> npt.NDArray[np.int64]:
        """Top ``n`` bids as a new int64 array of shape (k, 2): columns price, qty mantissas."""
        return np.array(self.bids(n), dtype=np.int64).reshape(-1, 2)

    def asks_array(self, n: int | None = None) -> npt.NDArray[np.int64]:
        """Top ``n`` asks as a new int64 array of shape (k, 2): columns price, qty mantissas."""
        return np.array(self.asks(n), dtype=np.int64).reshape(-1, 2)

    def best_bid(self) -> tuple[int, int] | None:
        """The best bid as (price, qty) mantissas, or None when the side is empty."""
        if not self._bids:
            return None
        key, qty = self._bids.peekitem(0)
        return -key, qty

    def best_ask(self) -> tuple[int, int] | None:
        """The best ask as (price, qty) mantissas, or None when the side is empty."""
        if not self._asks:
            return None
        price, qty = self._asks.peekitem(0)
        return price, qty

    def qty_at(self, side: str, price: int) -> int:
        """Quantity mantissa at price mantissa ``price`` on ``side`` ("bid"/"ask"), 0 if none."""
        if side == "bid":
            return int(self._bids.get(-price, 0))
        if side == "ask":
            return int(self._asks.get(price, 0))
        raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")

    @property
    def bid_levels(self) -> int:
        return len(self._bids)

    @property
    def ask_levels(self) -> int:
        return len(self._asks)

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def _check(self) -> None:
        """Assert the invariants: sorted, positive quantities, within depth."""
        for ladder in (self._bids, self._asks):
            assert len(ladder) <= self.depth
            assert all(qty > 0 for qty in ladder.values())
        assert all(-key >= 0 for key in self._bids)
        assert all(price >= 0 for price in self._asks)


def _entries(levels: Sequence[tuple[NumberLike, NumberLike]]) -> list[Entry]:
    # Public-API input: keep the caller's values; parse_mantissa accepts str/bytes/int/Decimal.
    return [Entry(price, qty) for price, qty in levels]  # type: ignore[arg-type]
