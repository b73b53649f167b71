"""A local, deterministic Kraken-compatible exchange for tests, demos and benchmarks.

``async with Simulator(seed=1) as sim:`` serves Kraken's v2 ``book``/``trade``/``instrument``,
v2 ``level3`` (token from a signed REST call) and v1 ``book`` on 127.0.0.1, with seeded order
flow from a matching engine per symbol and scriptable faults. ``bookengine sim`` runs it from
the command line.
"""

from __future__ import annotations

from ..core_types import BOOK_DEPTHS, LEVEL3_DEPTHS
from .engine import MatchingEngine, Order, Trade, derive_seed, is_order_id
from .faults import FAULT_KINDS, Fault, parse_fault
from .server import Simulator
from .specs import DEFAULT_SPECS, DEFAULT_SYMBOLS, SymbolSpec, spec_for

__all__ = [
    "BOOK_DEPTHS",
    "DEFAULT_SPECS",
    "DEFAULT_SYMBOLS",
    "FAULT_KINDS",
    "LEVEL3_DEPTHS",
    "Fault",
    "MatchingEngine",
    "Order",
    "Simulator",
    "SymbolSpec",
    "Trade",
    "derive_seed",
    "is_order_id",
    "parse_fault",
    "spec_for",
]
