"""Number and timestamp rendering, checked against independent parsers."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookengine.numbers import parse_mantissa
from bookengine.sim.wire import epoch_text, exponent_number, plain_number, rfc3339
from bookengine.timestamps import parse_epoch_ns, parse_rfc3339_ns

from .helpers import PLAIN_NUMBER

mantissas = st.integers(0, 2**63 - 1)
scales = st.integers(0, 12)


@pytest.mark.parametrize(
    ("mantissa", "scale", "text"),
    [
        (100_000, 8, "0.001"),  # Kraken capture: qty 0.001 at qty_precision 8
        (400_000_000, 8, "4.0"),  # ... and 4.0
        (0, 8, "0.0"),
        (294_311, 1, "29431.1"),
        (294_310, 1, "29431.0"),
        (5660, 4, "0.566"),  # Kraken doc: MATIC price 0.566
        (109_839_475_580, 8, "1098.3947558"),
        (42, 0, "42"),
        (12_345, 9, "0.000012345"),
    ],
)
def test_plain_numbers_like_krakens_wire(mantissa: int, scale: int, text: str) -> None:
    assert plain_number(mantissa, scale) == text


@pytest.mark.parametrize(
    ("mantissa", "scale", "text"),
    [
        (12_345, 9, "1.2345e-05"),
        (1, 8, "1e-08"),
        (5, 4, "0.0005"),
        (1, 5, "1e-05"),
        (4, 0, "4"),
        (0, 3, "0.0"),
        (10**17, 0, "1e+17"),
        (123, 2, "1.23"),
    ],
)
def test_exponent_numbers_like_python_float_repr(mantissa: int, scale: int, text: str) -> None:
    assert exponent_number(mantissa, scale) == text


@given(mantissas, scales)
def test_plain_numbers_round_trip_without_trailing_zeros(mantissa: int, scale: int) -> None:
    text = plain_number(mantissa, scale)
    assert PLAIN_NUMBER.fullmatch(text)
    assert parse_mantissa(text, scale) == mantissa
    assert Decimal(text) == Decimal(mantissa).scaleb(-scale)


@given(mantissas, scales)
def test_exponent_numbers_round_trip(mantissa: int, scale: int) -> None:
    text = exponent_number(mantissa, scale)
    assert parse_mantissa(text, scale) == mantissa
    value = Decimal(mantissa).scaleb(-scale)
    uses_exponent = mantissa != 0 and not -4 <= value.adjusted() < 16
    assert ("e" in text) == uses_exponent
    if uses_exponent:
        assert re.fullmatch(r"[1-9](\.[0-9]*[1-9])?e[+-][0-9]{2,}", text)


@given(st.integers(0, 4_000_000_000 * 10**9))
def test_timestamps_round_trip(ns: int) -> None:
    assert parse_rfc3339_ns(rfc3339(ns, 9)) == ns
    assert parse_rfc3339_ns(rfc3339(ns)) == ns - ns % 1000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", rfc3339(ns))
    assert parse_epoch_ns(epoch_text(ns)) == ns - ns % 1000
