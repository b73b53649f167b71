"""Real units from exact values: the one place mantissas become floats, times become datetimes.

Inside bookengine a price or quantity is an int64 *mantissa* with a *scale*: the value is
``mantissa / 10**scale`` exactly. Every table handed to users (:class:`~.analytics.tables.Table`,
:class:`~.replay.BookSamples`, :class:`~.export.L3Events`, :class:`~.export.Trades`, Parquet
datasets) keeps those mantissas and adds, through this module:

* float64 values in real units (:func:`to_float`): the nearest double to the decimal value
  (one correctly rounded division by an exact power of ten), NaN where the value is missing;
* UTC times (:func:`to_datetime`): ``datetime64[ns]`` from int64 ns since the epoch;
* on request, exact Arrow ``decimal128(19, scale)`` (:func:`decimal128`), never Python
  ``Decimal`` objects.

Column naming used by every table (see ``docs/data.md``): ``price`` is float64 in real units,
``price_m`` the exact int64 mantissa, ``price_dec`` the Arrow decimal128 twin; ``time`` the UTC
timestamp, ``*_ts_ns``/``time_ns`` the exact int64 ns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

MANTISSA_SUFFIX = "_m"
"""Suffix of an exact int64 mantissa column beside its float64 twin."""

DECIMAL_SUFFIX = "_dec"
"""Suffix of an Arrow ``decimal128`` twin (``to_arrow(decimal=True)``)."""


def to_float(
    mantissas: npt.ArrayLike, scale: int | npt.ArrayLike, missing: npt.ArrayLike | None = None
) -> npt.NDArray[np.float64]:
    """``mantissa / 10**scale`` as float64 (new array); NaN where ``missing`` is True.

    ``scale`` is one int or one per row (a long table mixing symbols). Exact mantissas below
    2**53 give the double nearest to the decimal value (e.g. 6500907 at scale 2 -> 65009.07).
    """
    values = np.asarray(mantissas, dtype=np.int64).astype(np.float64)
    scales = np.asarray(scale, dtype=np.int64)
    if (scales < 0).any() or (scales > 22).any():
        raise ValueError(f"scale must be within 0..22 (an exact power of ten), got {scale!r}")
    out = values / np.power(10.0, scales)
    if missing is not None:
        out[np.asarray(missing, dtype=bool)] = np.nan
    return out


def unit(scale: int) -> float:
    """``10**scale`` as a float (exact up to 22): divide a mantissa-unit value by it."""
    if not 0 <= scale <= 22:
        raise ValueError(f"scale must be within 0..22 (an exact power of ten), got {scale}")
    return float(10**scale)


def scaled(values: npt.ArrayLike, scale: int) -> npt.NDArray[np.float64]:
    """Float results computed in mantissa units (a half-tick mid, a microprice, a VWAP) ->
    real units: one division by the exact ``10**scale`` (new float64 array; NaN stays NaN)."""
    return np.asarray(values, dtype=np.float64) / unit(scale)


def to_datetime(ns: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """int64 ns since the epoch -> ``datetime64[ns]`` (UTC; NaT where ns < 0: unknown)."""
    values = np.asarray(ns, dtype=np.int64)
    out = values.astype("datetime64[ns]")
    out[values < 0] = np.datetime64("NaT")
    return out


def decimal128(values: npt.ArrayLike, scale: int, missing: npt.ArrayLike | None = None) -> Any:
    """int64 mantissas -> exact Arrow ``decimal128(19, scale)`` (no floats, no Python objects).

    Built from the 16-byte two's complement words directly; nulls where ``missing``.
    """
    pa = pyarrow()
    array = np.ascontiguousarray(np.asarray(values, dtype=np.int64))
    words = np.empty((array.shape[0], 2), dtype="<i8")
    words[:, 0] = array
    words[:, 1] = array >> 63  # sign extension into the high word
    validity = None
    if missing is not None:
        mask = np.asarray(missing, dtype=bool)
        if mask.any():
            validity = pa.array(~mask).buffers()[1]
    return pa.Array.from_buffers(
        pa.decimal128(19, scale),
        array.shape[0],
        [validity, pa.py_buffer(words.tobytes())],
        null_count=-1 if validity is not None else 0,
    )


def pyarrow() -> Any:
    """``import pyarrow`` or an ImportError naming the extra to install."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
    except ImportError:
        raise ImportError(
            "Arrow output needs pyarrow: pip install 'bookengine[research]'"
        ) from None
    return pa


def arrow_table(
    columns: Mapping[str, npt.NDArray[Any]],
    *,
    masks: Mapping[str, npt.NDArray[np.bool_]] | None = None,
    scales: Mapping[str, int] | None = None,
    decimal: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> Any:
    """Numpy columns -> ``pyarrow.Table``.

    ``datetime64`` columns become ``timestamp[ns, tz=UTC]``; object columns strings (the short
    categorical ones dictionary-encoded); ``masks[name]`` marks nulls, and so does NaN in a
    float column (a missing value, e.g. a level that does not exist); a column in ``scales``
    (an exact mantissa at one scale) gets ``scale`` in its field metadata and, with
    ``decimal``, a ``<name without _m>_dec`` decimal128 twin.
    """
    pa = pyarrow()
    masks = masks or {}
    scales = scales or {}
    fields = []
    arrays = []
    for name, values in columns.items():
        mask = masks.get(name)
        if mask is not None and not mask.any():
            mask = None
        if values.dtype == object:
            array = pa.array(values.tolist(), type=pa.string(), mask=mask)
            if name in _CATEGORICAL:
                array = array.dictionary_encode()
        elif values.dtype.kind == "M":
            array = pa.array(
                values.astype("datetime64[ns]").astype(np.int64),
                type=pa.timestamp("ns", tz="UTC"),
                mask=np.isnat(values) if mask is None else (mask | np.isnat(values)),
            )
        elif values.dtype.kind == "f":
            array = pa.array(values, mask=mask, from_pandas=True)  # NaN -> null
        else:
            array = pa.array(values, mask=mask)
        meta = None
        if name in scales:
            meta = {b"scale": str(scales[name]).encode(), b"unit": b"mantissa"}
        fields.append(pa.field(name, array.type, metadata=meta))
        arrays.append(array)
        if decimal and name in scales:
            base = name[: -len(MANTISSA_SUFFIX)] if name.endswith(MANTISSA_SUFFIX) else name
            dec = decimal128(values, scales[name], mask)
            fields.append(pa.field(base + DECIMAL_SUFFIX, dec.type))
            arrays.append(dec)
    schema = pa.schema(
        fields, metadata={k.encode(): v.encode() for k, v in (metadata or {}).items()}
    )
    return pa.Table.from_arrays(arrays, schema=schema)


_CATEGORICAL = frozenset({"event", "origin", "side", "ord_type", "key", "symbol", "label"})


def pandas_frame(
    columns: Mapping[str, npt.NDArray[Any]],
    masks: Mapping[str, npt.NDArray[np.bool_]] | None = None,
) -> Any:
    """Numpy columns -> ``pandas.DataFrame`` (copies).

    ``datetime64`` columns become ``datetime64[ns, UTC]``; an int column with a mask becomes
    the nullable ``Int64`` (exact, ``<NA>`` where missing), never float.
    """
    from .analytics.tables import require

    pd = require("pandas", "dataframe", "to_pandas()")
    masks = masks or {}
    data: dict[str, Any] = {}
    for name, values in columns.items():
        mask = masks.get(name)
        if values.dtype.kind == "M":
            data[name] = pd.Series(values.astype("datetime64[ns]")).dt.tz_localize("UTC")
        elif mask is not None and mask.any() and values.dtype.kind in "iu":
            data[name] = pd.arrays.IntegerArray(values.astype(np.int64), mask.copy())
        else:
            data[name] = np.array(values)
    return pd.DataFrame(data)


def polars_frame(arrow: Any) -> Any:
    """A ``polars.DataFrame`` from an Arrow table (polars optional: a clear error if missing)."""
    from .analytics.tables import require

    pl = require("polars", "polars", "to_polars()")
    return pl.from_arrow(arrow)


def with_units(
    columns: dict[str, npt.NDArray[Any]],
    *,
    prices: Sequence[str] = (),
    qtys: Sequence[str] = (),
    price_scale: int | npt.ArrayLike | None = None,
    qty_scale: int | npt.ArrayLike | None = None,
    times: Mapping[str, str] | None = None,
) -> tuple[dict[str, npt.NDArray[Any]], dict[str, int]]:
    """Columns of mantissas and ns times, with their real-unit twins (the tables' convention).

    Each price and qty column ``c`` (exact int64 mantissas) becomes ``c_m`` beside a float64
    ``c`` in real units; each time column named in ``times`` (int64 ns -> the twin's name)
    gets a UTC ``datetime64[ns]`` twin before it (NaT where the time is -1). A scale is one int
    or one per row; with a scale of None the columns are left as they are (the precision is not
    known). Column order is kept, each twin beside its original.

    Returns:
        The new columns, and the scale of each ``_m`` column whose scale is one int.
    """
    out: dict[str, npt.NDArray[Any]] = {}
    scales: dict[str, int] = {}
    for name, values in columns.items():
        scale = price_scale if name in prices else qty_scale if name in qtys else None
        if scale is not None:
            out[name] = to_float(values, scale)
            out[f"{name}{MANTISSA_SUFFIX}"] = np.asarray(values, dtype=np.int64)
            if isinstance(scale, int):
                scales[f"{name}{MANTISSA_SUFFIX}"] = scale
            continue
        if times is not None and name in times:
            out[times[name]] = to_datetime(values)
        out[name] = values
    return out, scales
