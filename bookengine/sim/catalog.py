"""Kraken's public REST catalogue of the simulated instruments: ``AssetPairs`` and ``Assets``.

Every value is derived from the :class:`~.specs.SymbolSpec` the ``instrument`` channel renders,
so REST and WebSocket always agree: ``pair_decimals`` is ``price_precision``, ``lot_decimals``
is ``qty_precision``, ``cost_decimals`` is ``cost_precision``, ``ordermin`` is ``qty_min``,
``tick_size`` is ``10**-price_precision``, ``costmin`` the instrument's ``cost_min``, and an
asset's ``decimals`` / ``display_decimals`` its ``precision`` / ``precision_display``.

Kraken's REST names assets and pairs the legacy way (``XXBT``, ``ZUSD``, ``XXBTZUSD``,
altname ``XBTUSD``); the v1 WebSocket name is the pair's ``wsname`` (``XBT/USD``) and the v2
name (``BTC/USD``) is the ``instrument`` channel's. Both slash forms, the altname and the pair id
select a pair in ``?pair=``; like Kraken, the answer is keyed by the name as requested when a
slash form was used (python-kraken-sdk's ``SpotOrderBookClient`` reads ``result["BTC/USD"]``),
else by the pair id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .specs import COST_MIN, SymbolSpec, asset_precision
from .wire import plain_number

_LEGACY_IDS = {
    "BTC": "XXBT",
    "ETH": "XETH",
    "DOGE": "XXDG",
    "LTC": "XLTC",
    "XRP": "XXRP",
    "XLM": "XXLM",
    "ETC": "XETC",
    "USD": "ZUSD",
    "EUR": "ZEUR",
    "GBP": "ZGBP",
    "CAD": "ZCAD",
    "JPY": "ZJPY",
}
"""Kraken's REST asset ids where they differ from the v2 asset name."""
_LEGACY_PAIR_BASES = frozenset({"BTC", "ETH", "LTC", "XRP", "XLM", "ETC"})
"""Bases whose fiat pairs keep the joined legacy id (``XXBTZUSD``; DOGE's is ``XDGUSD``)."""
_ALTNAMES = {"BTC": "XBT", "DOGE": "XDG"}
"""Kraken's REST asset altnames where they differ from the v2 asset name."""

FEES_TAKER: list[list[int | float]] = [
    [0, 0.26],
    [50000, 0.24],
    [100000, 0.22],
    [250000, 0.2],
    [500000, 0.18],
    [1000000, 0.16],
    [2500000, 0.14],
    [5000000, 0.12],
    [10000000, 0.1],
]
"""Kraken's classic spot taker schedule (volume in USD, percent). Kraken has announced these
lists as deprecated (empty); older clients (ccxt's ``fees_maker[0][1]``) still index them."""
FEES_MAKER: list[list[int | float]] = [
    [0, 0.16],
    [50000, 0.14],
    [100000, 0.12],
    [250000, 0.1],
    [500000, 0.08],
    [1000000, 0.06],
    [2500000, 0.04],
    [5000000, 0.02],
    [10000000, 0],
]


def asset_id(asset: str) -> str:
    """Kraken's REST id of a v2 asset name (``BTC`` -> ``XXBT``, ``PEPE`` -> ``PEPE``)."""
    return _LEGACY_IDS.get(asset, asset)


def asset_altname(asset: str) -> str:
    """Kraken's REST altname of a v2 asset name (``BTC`` -> ``XBT``)."""
    return _ALTNAMES.get(asset, asset)


def pair_altname(spec: SymbolSpec) -> str:
    """``XBTUSD``: the altnames of base and quote, joined."""
    return asset_altname(spec.base) + asset_altname(spec.quote)


def pair_id(spec: SymbolSpec) -> str:
    """Kraken's REST pair id: base and quote ids joined for the oldest pairs (``XXBTZUSD``),
    else the altname (``XDGUSD``, ``PEPEUSD``)."""
    if spec.base in _LEGACY_PAIR_BASES and asset_id(spec.quote).startswith("Z"):
        return asset_id(spec.base) + asset_id(spec.quote)
    return pair_altname(spec)


def pair_info(spec: SymbolSpec, status: str) -> dict[str, Any]:
    """One ``AssetPairs`` entry, keys in Kraken's order."""
    base, quote = asset_id(spec.base), asset_id(spec.quote)
    return {
        "altname": pair_altname(spec),
        "wsname": spec.v1_pair,
        "aclass_base": "currency",
        "base": base,
        "aclass_quote": "currency",
        "quote": quote,
        "lot": "unit",
        "cost_decimals": spec.cost_precision,
        "pair_decimals": spec.price_precision,
        "lot_decimals": spec.qty_precision,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": FEES_TAKER,
        "fees_maker": FEES_MAKER,
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": plain_number(spec.qty_min, spec.qty_precision),
        "costmin": plain_number(*COST_MIN),
        "tick_size": plain_number(1, spec.price_precision),
        "status": status,
    }


class UnknownName(ValueError):
    """A requested pair or asset the simulator does not list (Kraken's ``EQuery`` errors)."""


def asset_pairs(specs: Sequence[SymbolSpec], status: str, pair: str | None) -> dict[str, Any]:
    """The ``AssetPairs`` result for ``?pair=`` (None: every pair).

    Raises:
        UnknownName: a requested name matches no simulated pair.
    """
    if pair is None:
        return {pair_id(spec): pair_info(spec, status) for spec in specs}
    by_name: dict[str, SymbolSpec] = {}
    for spec in specs:
        for name in (spec.symbol, spec.v1_pair, pair_altname(spec), pair_id(spec)):
            by_name[name.upper()] = spec
    result: dict[str, Any] = {}
    for name in pair.split(","):
        name = name.strip()
        spec_found = by_name.get(name.upper())
        if spec_found is None:
            raise UnknownName("EQuery:Unknown asset pair")
        key = name if "/" in name else pair_id(spec_found)
        result[key] = pair_info(spec_found, status)
    return result


def assets(specs: Sequence[SymbolSpec], asset: str | None) -> dict[str, Any]:
    """The ``Assets`` result for ``?asset=`` (None: every asset of the simulated pairs).

    Raises:
        UnknownName: a requested asset is not one of the simulated pairs' assets.
    """
    names: dict[str, str] = {}
    for spec in specs:
        for name in (spec.base, spec.quote):
            names.setdefault(asset_id(name), name)
    lookup = {key.upper(): key for key in names}
    lookup.update({asset_altname(v).upper(): k for k, v in names.items()})
    lookup.update({v.upper(): k for k, v in names.items()})
    if asset is None:
        wanted = list(names)
    else:
        wanted = []
        for part in asset.split(","):
            key = lookup.get(part.strip().upper())
            if key is None:
                raise UnknownName("EQuery:Unknown asset")
            wanted.append(key)
    result: dict[str, Any] = {}
    for key in wanted:
        decimals, display = asset_precision(names[key])
        result[key] = {
            "aclass": "currency",
            "altname": asset_altname(names[key]),
            "decimals": decimals,
            "display_decimals": display,
            "status": "enabled",
        }
    return result
