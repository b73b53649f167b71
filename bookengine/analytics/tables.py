"""Columnar results: a dict of equal-length numpy arrays, a DataFrame when pandas is installed.

Every analytics result that has rows is a :class:`Table`. It *is* a ``dict`` (column name ->
1-D numpy array, all of the same length), so numpy-only code never needs pandas; ``to_pandas()``
builds a ``DataFrame`` and says how to install pandas when it is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt


def require(module: str, extra: str, what: str) -> Any:
    """Import an optional dependency or fail with the install command.

    Raises:
        ImportError: the module is not installed (names the ``bookengine[extra]`` to install).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{what} needs {module.split('.')[0]}: pip install 'bookengine[{extra}]'"
        ) from None


class Table(dict[str, npt.NDArray[Any]]):
    """Named 1-D numpy columns of one length: ``len(table)`` rows, ``to_pandas()``,
    ``to_arrow()``, ``to_polars()``.

    It *is* a ``dict`` (column name -> array), so numpy-only code never needs pandas. The arrays
    belong to the table (new arrays, never views of a live book): keep or modify them freely.

    Conventions (``docs/data.md``): a ``datetime64[ns]`` column is UTC (``time``); a column
    ending in ``_m`` is an exact int64 mantissa beside its float64 twin in real units (the name
    without ``_m``); ``scales`` maps such mantissa columns to their scale when it is one for the
    whole column; ``masks`` maps a column to a bool array, True where the value is missing
    (null in Arrow, ``<NA>`` in pandas; the array itself holds a placeholder there).
    """

    def __init__(
        self,
        columns: Mapping[str, npt.ArrayLike] | None = None,
        *,
        masks: Mapping[str, npt.ArrayLike] | None = None,
        scales: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        length: int | None = None
        for name, values in (columns or {}).items():
            array = np.asarray(values)
            if array.ndim != 1:
                raise ValueError(f"column {name!r} must be 1-D, got shape {array.shape}")
            if length is None:
                length = len(array)
            elif len(array) != length:
                raise ValueError(f"column {name!r} has {len(array)} rows, expected {length}")
            self[name] = array
        self.masks: dict[str, npt.NDArray[np.bool_]] = {}
        for name, mask in (masks or {}).items():
            if name not in self:
                raise ValueError(f"mask for unknown column {name!r}")
            array = np.asarray(mask, dtype=bool)
            if array.shape != self[name].shape:
                raise ValueError(f"mask of {name!r} has shape {array.shape}")
            self.masks[name] = array
        self.scales: dict[str, int] = dict(scales or {})

    def __len__(self) -> int:
        """The number of rows (not columns: ``len(table.columns)`` counts those)."""
        return self.rows

    def __bool__(self) -> bool:
        return bool(self.keys())

    @property
    def columns(self) -> list[str]:
        """Column names in order."""
        return list(self.keys())

    @property
    def rows(self) -> int:
        """Number of rows."""
        for array in self.values():
            return len(array)
        return 0

    def missing(self, name: str) -> npt.NDArray[np.bool_]:
        """True where column ``name`` has no value (NaN for floats, NaT for times, masked)."""
        values = self[name]
        mask = self.masks.get(name)
        out = np.zeros(len(values), dtype=bool) if mask is None else mask.copy()
        if values.dtype.kind == "f":
            out |= np.isnan(values)
        elif values.dtype.kind == "M":
            out |= np.isnat(values)
        return out

    def to_pandas(self) -> Any:
        """The table as a ``pandas.DataFrame`` (copies): UTC datetimes, nullable ``Int64``
        for masked mantissas.

        Raises:
            ImportError: pandas is not installed (``pip install 'bookengine[dataframe]'``).
        """
        from ..units import pandas_frame

        return pandas_frame(self, self.masks)

    def to_arrow(self, *, decimal: bool = False) -> Any:
        """The table as a ``pyarrow.Table``: ``timestamp[ns, tz=UTC]`` times, nulls for
        missing values; ``decimal``: exact ``decimal128`` twins of the mantissa columns that
        have one scale (``<name>_dec``).

        Raises:
            ImportError: pyarrow is not installed.
        """
        from ..units import arrow_table

        return arrow_table(self, masks=self.masks, scales=self.scales, decimal=decimal)

    def to_polars(self) -> Any:
        """The table as a ``polars.DataFrame`` (through Arrow).

        Raises:
            ImportError: polars (or pyarrow) is not installed (``pip install polars``).
        """
        from ..units import polars_frame

        return polars_frame(self.to_arrow())

    def __repr__(self) -> str:
        names = ", ".join(f"{name}:{array.dtype}" for name, array in self.items())
        return f"Table({self.rows} rows; {names})"
