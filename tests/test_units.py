"""bookengine.units: the one place mantissas become floats, decimals and UTC times."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from bookengine.units import arrow_table, decimal128, scaled, to_datetime, to_float


def test_floats_are_the_nearest_double_to_the_decimal() -> None:
    mantissas = np.array([6500907, 1, -25, 0, 2**53 - 1], dtype=np.int64)
    got = to_float(mantissas, 2)
    assert got.tolist() == [65009.07, 0.01, -0.25, 0.0, float(Decimal(2**53 - 1) / 100)]
    # Per-row scales (a long table mixing symbols) and missing values.
    assert to_float([650090, 250], [1, 9], [False, True])[0] == 65009.0
    assert np.isnan(to_float([650090, 250], [1, 9], [False, True])[1])
    assert scaled([1001.0 / 2], 1).tolist() == [50.05]
    with pytest.raises(ValueError, match="scale"):
        to_float([1], 23)


def test_times_are_utc_and_unknown_is_nat() -> None:
    got = to_datetime([1_704_716_800_123_456_789, -1])
    assert str(got[0]) == "2024-01-08T12:26:40.123456789" and np.isnat(got[1])


def test_decimal128_is_exact_with_nulls_and_signs() -> None:
    pytest.importorskip("pyarrow")
    values = np.array([6500907, -1, 2**63 - 1, 0], dtype=np.int64)
    array = decimal128(values, 2, missing=[False, False, False, True])
    assert str(array.type) == "decimal128(19, 2)"
    assert array.to_pylist() == [
        Decimal("65009.07"),
        Decimal("-0.01"),
        Decimal("92233720368547758.07"),
        None,
    ]


def test_arrow_tables_mark_missing_values_null() -> None:
    pytest.importorskip("pyarrow")
    table = arrow_table(
        {
            "price": np.array([1.5, np.nan]),
            "price_m": np.array([15, 0], dtype=np.int64),
            "time": to_datetime([0, -1]),
        },
        masks={"price_m": np.array([False, True])},
        scales={"price_m": 1},
        decimal=True,
    )
    assert table.column_names == ["price", "price_m", "price_dec", "time"]
    assert table.to_pylist()[1] == {"price": None, "price_m": None, "price_dec": None, "time": None}
    assert table.schema.field("price_m").metadata == {b"scale": b"1", b"unit": b"mantissa"}
    assert str(table.schema.field("time").type) == "timestamp[ns, tz=UTC]"
