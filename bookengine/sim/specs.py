"""The simulated instruments: precisions, v1 names and decimals, starting prices and lot sizes.

Every number here is an int mantissa at the instrument's own scale (``price_precision`` for
prices, ``qty_precision`` for quantities), never a float.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..numbers import check_scale


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One simulated pair, with Kraken's v2 and v1 names and precisions.

    Attributes:
        symbol: v2 name (``"BTC/USD"``).
        base, quote: asset ids as the v2 ``instrument`` channel names them.
        price_precision, qty_precision: v2 scales (instrument ``price_precision`` /
            ``qty_precision``); every price mantissa is on the tick grid ``10**-price_precision``.
        mid_price: starting mid price, mantissa at ``price_precision``.
        lot_qty: typical order size, mantissa at ``qty_precision``.
        qty_min: smallest order size, mantissa at ``qty_precision``.
        v1_pair: v1 name (``"XBT/USD"``).
        v1_price_decimals, v1_qty_decimals: fixed decimals of v1 wire strings; at least the v2
            precisions (v1 pads, e.g. XBT/USD prices have 5 decimals although v2 has 1).
        cost_precision: instrument ``cost_precision``.
    """

    symbol: str
    base: str
    quote: str
    price_precision: int
    qty_precision: int
    mid_price: int
    lot_qty: int
    qty_min: int
    v1_pair: str
    v1_price_decimals: int
    v1_qty_decimals: int
    cost_precision: int = 5

    def __post_init__(self) -> None:
        check_scale(self.price_precision, "price_precision")
        check_scale(self.qty_precision, "qty_precision")
        check_scale(self.v1_price_decimals, "v1_price_decimals")
        check_scale(self.v1_qty_decimals, "v1_qty_decimals")
        if self.v1_price_decimals < self.price_precision:
            raise ValueError(f"{self.symbol}: v1 price decimals below price_precision")
        if self.v1_qty_decimals < self.qty_precision:
            raise ValueError(f"{self.symbol}: v1 qty decimals below qty_precision")
        if not 0 < self.qty_min <= self.lot_qty:
            raise ValueError(f"{self.symbol}: need 0 < qty_min <= lot_qty")
        if self.mid_price <= 0:
            raise ValueError(f"{self.symbol}: mid_price must be positive")

    @property
    def v1_price_factor(self) -> int:
        """Multiplier from a v2 price mantissa to the v1 wire mantissa."""
        return int(10 ** (self.v1_price_decimals - self.price_precision))

    @property
    def v1_qty_factor(self) -> int:
        """Multiplier from a v2 qty mantissa to the v1 wire mantissa."""
        return int(10 ** (self.v1_qty_decimals - self.qty_precision))


COST_MIN = (5, 1)
"""Minimum order cost in the quote currency, (mantissa, scale): 0.5, as Kraken's ``instrument``
channel (``cost_min``) and REST (``costmin``) give it for USD pairs."""

_FIAT = frozenset({"USD", "EUR", "GBP", "CAD", "JPY", "CHF", "AUD"})
_ASSET_PRECISION = {
    "USD": (4, 2),
    "EUR": (4, 2),
    "GBP": (4, 2),
    "BTC": (10, 5),
    "ETH": (10, 5),
    "DOGE": (8, 2),
    "PEPE": (2, 0),
}
"""(``precision``, ``precision_display``) as Kraken's instrument channel gave them
(tests/data/v2-instrument-snapshot.jsonl, 2024-03)."""


def asset_precision(asset: str) -> tuple[int, int]:
    """(``precision``, ``precision_display``) of an asset: Kraken's recorded values for the known
    ones, else 4/2 for fiat and 10/5 for crypto (the recorded values of USD and BTC).

    The ``instrument`` channel's assets and REST ``Assets`` (``decimals``, ``display_decimals``)
    both come from here.
    """
    known = _ASSET_PRECISION.get(asset)
    if known is not None:
        return known
    return (4, 2) if asset in _FIAT else (10, 5)


DEFAULT_SPECS: tuple[SymbolSpec, ...] = (
    # Precisions as Kraken's instrument channel gives them (tests/data/v2-instrument-snapshot).
    SymbolSpec("BTC/USD", "BTC", "USD", 1, 8, 650_000, 5_000_000, 10_000, "XBT/USD", 5, 8),
    SymbolSpec("ETH/USD", "ETH", "USD", 2, 8, 350_000, 50_000_000, 200_000, "ETH/USD", 5, 8),
    SymbolSpec(
        "DOGE/USD",
        "DOGE",
        "USD",
        7,
        8,
        1_500_000,
        200_000_000_000,
        6_000_000_000,
        "XDG/USD",
        8,
        8,
        cost_precision=9,
    ),
    # A sub-cent token: 9 price digits, 5 qty digits, large lots.
    SymbolSpec(
        "PEPE/USD",
        "PEPE",
        "USD",
        9,
        5,
        12_345,
        5_000_000_000_000,
        300_000_000_000,
        "PEPE/USD",
        9,
        5,
        cost_precision=5,
    ),
)
"""The default simulated pairs: four different (price, qty) precisions: 1/8, 2/8, 7/8, 9/5."""

DEFAULT_SYMBOLS: tuple[str, ...] = tuple(spec.symbol for spec in DEFAULT_SPECS)


def spec_for(symbol: str) -> SymbolSpec:
    """The default spec of ``symbol`` (v2 name).

    Raises:
        KeyError: the symbol is not one of :data:`DEFAULT_SPECS`.
    """
    for spec in DEFAULT_SPECS:
        if spec.symbol == symbol:
            return spec
    raise KeyError(f"no simulated instrument {symbol!r}; known: {', '.join(DEFAULT_SYMBOLS)}")
