"""Hive-partitioned Parquet datasets: what ``bookengine export --format parquet -o DIR`` writes.

Layout::

    DIR/<what>/symbol=<SYMBOL, / written ->/date=<YYYY-MM-DD>/part-<export id>-<n>.parquet

``<what>`` is ``l2_book`` (``l2_level3`` for the aggregated view of level3 books),
``l3_events`` or ``trades``; the date is the UTC date of each row's receive time. Part names
are unique per export (UTC time + random id), so exporting again into the same ``DIR`` adds
parts and never replaces one. Every part is first written under a hidden temporary name
(``.part-....parquet.tmp``, which readers skip) and renamed only when all parts of the export
are complete; if anything fails, the temporary files and the folders this export created are
removed.

Each part holds one symbol: its scales are in the file's schema metadata
(``bookengine.price_scale``, ``bookengine.qty_scale``, ...) and in the field metadata of each
``*_m`` mantissa column. The ``symbol`` and ``date`` columns come from the folder names (they
are not stored in the files), so every reader gets them:

* ``pyarrow.dataset.dataset(DIR / "l2_book", partitioning="hive").to_table()``
* ``pandas.read_parquet(DIR / "l2_book")``
* ``polars.read_parquet(f"{DIR}/l2_book/**/*.parquet", hive_partitioning=True)``
* ``duckdb.sql(f"SELECT * FROM read_parquet('{DIR}/l2_book/**/*.parquet',
  hive_partitioning=true)")``
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .analytics.tables import Table
from .errors import BookError

PARTITION_COLUMNS = ("symbol", "date")
DAY_NS = 86_400 * 1_000_000_000


class DatasetError(BookError):
    """A dataset cannot be written (bad name, missing pyarrow, I/O failure)."""


def partition_symbol(symbol: str) -> str:
    """``BTC/USD`` -> ``BTC-USD``: the ``symbol=`` folder value.

    Raises:
        DatasetError: a symbol that would not make one safe folder name.
    """
    value = symbol.replace("/", "-")
    if not value or value in (".", "..") or any(c in value for c in "\\=\0\n") or "%" in value:
        raise DatasetError(f"symbol {symbol!r} cannot name a partition folder")
    return value


def _day(ns: int) -> str:
    if ns < 0:
        return "unknown"
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).date().isoformat()


def new_export_id() -> str:
    """A unique, time-sortable id for the parts of one export (``20261203T014745Z-1a2b3c4d``)."""
    now = datetime.now(tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{secrets.token_hex(4)}"


@dataclass
class DatasetWriter:
    """Collects the parts of one export, then commits them all (or none).

    Use as a context manager: parts are written to temporary names by :meth:`add`, renamed
    into place on a clean exit, removed (with the folders this writer created) on an error.
    """

    root: Path
    export_id: str = field(default_factory=new_export_id)
    _pending: list[tuple[Path, Path]] = field(default_factory=list)
    _created: list[Path] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def _mkdir(self, path: Path) -> None:
        missing = []
        current = path
        while not current.exists():
            missing.append(current)
            current = current.parent
        for folder in reversed(missing):
            folder.mkdir()
            self._created.append(folder)

    def add(
        self,
        what: str,
        symbol: str,
        table: Table,
        time_column: str,
        metadata: Mapping[str, str],
        *,
        decimal: bool = False,
    ) -> list[Path]:
        """Write ``table`` (rows of one symbol) as parts of ``root/what``, one per UTC date.

        Args:
            time_column: the int64 ns column whose UTC date picks the ``date=`` partition.
            metadata: schema metadata of each part (scales, schema name, sources...).

        Returns:
            The final paths the parts will have once committed.
        """
        try:
            import pyarrow.parquet as pq  # type: ignore[import-untyped]
        except ImportError:
            raise DatasetError(
                "Parquet export needs pyarrow (pip install 'bookengine[research]')"
            ) from None
        if len(table) == 0:
            return []
        folder_symbol = partition_symbol(symbol)
        times = np.asarray(table[time_column], dtype=np.int64)
        days = np.where(times >= 0, times // DAY_NS, -1)
        kept = [name for name in table.columns if name not in PARTITION_COLUMNS]
        finals: list[Path] = []
        for day in np.unique(days).tolist():
            rows = np.flatnonzero(days == day)
            part = Table(
                {name: table[name][rows] for name in kept},
                masks={k: v[rows] for k, v in table.masks.items() if k in kept},
                scales={k: v for k, v in table.scales.items() if k in kept},
            )
            arrow = part.to_arrow(decimal=decimal)
            arrow = arrow.replace_schema_metadata(
                {
                    **{k.encode(): v.encode() for k, v in metadata.items()},
                    b"bookengine.export": self.export_id.encode(),
                }
            )
            folder = self.root / what / f"symbol={folder_symbol}" / f"date={_day(day * DAY_NS)}"
            self._mkdir(folder)
            index = len(self._pending)
            final = folder / f"part-{self.export_id}-{index:04d}.parquet"
            temporary = folder / f".{final.name}.tmp"
            self._pending.append((temporary, final))
            pq.write_table(arrow, temporary)
            finals.append(final)
        return finals

    @property
    def staged(self) -> list[Path]:
        """The final paths of the parts written but not committed yet."""
        return [final for _, final in self._pending]

    def commit(self) -> list[Path]:
        """Rename every part into place; returns the parts written."""
        for temporary, final in self._pending:
            if final.exists():  # never replace a part (a reused export id)
                raise DatasetError(f"{final}: a part with this name exists already")
            os.replace(temporary, final)
            self.written.append(final)
        self._pending.clear()
        return self.written

    def abort(self) -> None:
        """Remove the temporary parts and the folders this writer created (when empty)."""
        for temporary, _ in self._pending:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        self._pending.clear()
        for folder in sorted(self._created, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``bookengine.*`` schema metadata of one part (scales, schema, sources...)."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    return {
        k.decode(): v.decode()
        for k, v in (schema.metadata or {}).items()
        if k.startswith(b"bookengine.")
    }


def dataset_parts(root: str | Path, what: str) -> Sequence[Path]:
    """The committed parts of ``root/what`` (sorted)."""
    return sorted((Path(root) / what).glob("symbol=*/date=*/part-*.parquet"))
