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
    """Named 1-D numpy columns of one length (a ``dict``; ``to_pandas()`` for a DataFrame).

    The arrays belong to the table (new arrays, never views of a live book): keep or modify
    them freely.
    """

    def __init__(self, columns: Mapping[str, npt.ArrayLike] | None = None) -> None:
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

    @property
    def columns(self) -> list[str]:
        """Column names in order (``len(table)`` counts columns, as for any dict)."""
        return list(self.keys())

    @property
    def rows(self) -> int:
        """Number of rows."""
        for array in self.values():
            return len(array)
        return 0

    def to_pandas(self) -> Any:
        """The table as a ``pandas.DataFrame`` (columns copied).

        Raises:
            ImportError: pandas is not installed (``pip install 'bookengine[dataframe]'``).
        """
        pd = require("pandas", "dataframe", "Table.to_pandas()")
        return pd.DataFrame({name: np.array(array) for name, array in self.items()})

    def __repr__(self) -> str:
        names = ", ".join(f"{name}:{array.dtype}" for name, array in self.items())
        return f"Table({self.rows} rows; {names})"
