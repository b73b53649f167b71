"""Parquet datasets: repeated exports add parts, every reader gets every row in one line."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest

from bookengine.analytics import sample_features
from bookengine.capture import expand_inputs
from bookengine.cli import main as cli_main
from bookengine.dataset import DatasetWriter, dataset_parts, partition_symbol, read_metadata
from bookengine.errors import BookError
from bookengine.export import main
from bookengine.replay import Replayer

from .helpers import Recording


def export(*args: str) -> list[Path]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(list(args))
    assert status == 0
    return [Path(line) for line in out.getvalue().splitlines()]


def expected_rows(recording: Recording) -> dict[str, int]:
    """Rows per book key of one per-message l2 export: one per BookChanged."""
    samples = Replayer(recording.segments, progress=False).snapshots(levels=1)
    keys = samples.key.tolist()
    return {key: keys.count(key) for key in set(keys)}


def test_two_exports_into_one_folder_read_back_in_one_line(
    recording: Recording, tmp_path: Path
) -> None:
    """The issue's done-when: record, export twice into one DIR, read with each reader."""
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "lake"
    first = export(*map(str, recording.segments), "--levels", "3", "-o", str(out))
    # The second export takes the recording as a folder (expanded, in time order).
    second = export(str(recording.segments[0].parent), "--levels", "3", "-o", str(out))
    assert set(first).isdisjoint(second) and all(p.exists() for p in first + second)
    per_key = expected_rows(recording)
    book_rows = 2 * (per_key["book:BTC/USD"] + per_key["book:ETH/USD"])
    root = out / "l2_book"

    # pyarrow.dataset, one line.
    table = pads.dataset(root, partitioning="hive").to_table()
    assert table.num_rows == book_rows
    assert str(table.schema.field("time").type) == "timestamp[ns, tz=UTC]"
    assert str(table.schema.field("bid_price_1").type) == "double"
    assert sorted(set(table.column("symbol").to_pylist())) == ["BTC-USD", "ETH-USD"]

    # duckdb, one line.
    rows = duckdb.sql(
        f"SELECT symbol, count(*) AS n, min(bid_price_1) AS low, max(bid_price_1) AS high, "
        f"typeof(any_value(time)) AS t FROM read_parquet('{root}/**/*.parquet', "
        f"hive_partitioning=true) GROUP BY symbol ORDER BY symbol"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("BTC-USD", 2 * per_key["book:BTC/USD"]),
        ("ETH-USD", 2 * per_key["book:ETH/USD"]),
    ]
    assert all(r[4].startswith("TIMESTAMPTZ") or "TIME ZONE" in r[4] for r in rows)
    assert all(isinstance(r[2], float) and 1 < r[2] <= r[3] for r in rows)

    # pandas and polars, one line each.
    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(root)
    assert len(frame) == book_rows and str(frame["time"].dtype) == "datetime64[ns, UTC]"
    pl = pytest.importorskip("polars")
    lazy = pl.read_parquet(f"{root}/**/*.parquet", hive_partitioning=True)
    assert lazy.height == book_rows and set(lazy["symbol"].unique()) == {"BTC-USD", "ETH-USD"}

    # The float prices are the exact mantissas divided by the scale in the file metadata.
    for part in dataset_parts(out, "l2_book"):
        meta = read_metadata(part)
        assert meta["bookengine.schema"] == "l2-snapshots/2"
        assert meta["bookengine.symbol"].replace("/", "-") in str(part)
        scale = int(meta["bookengine.price_scale"])
        got = pads.dataset(part).to_table(columns=["bid_price_1", "bid_price_1_m"]).to_pandas()
        present = got["bid_price_1_m"].notna()
        assert (
            got["bid_price_1"][present] == got["bid_price_1_m"][present].astype(float) / 10**scale
        ).all()


def test_l3_and_trades_datasets(recording: Recording, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "lake"
    export(*map(str, recording.segments), "--what", "l3", "-o", str(out))
    export(*map(str, recording.segments), "--what", "trades", "-o", str(out), "--decimal")
    events = pads.dataset(out / "l3_events", partitioning="hive").to_table()
    assert events.num_rows > 0 and set(events.column("symbol").to_pylist()) == {"BTC-USD"}
    (adds,) = duckdb.sql(
        f"SELECT count(*), count(prev_price), count(prev_price_m) FROM read_parquet("
        f"'{out}/l3_events/**/*.parquet', hive_partitioning=true) WHERE event = 'add'"
    ).fetchall()
    assert adds[0] > 0 and adds[1:] == (0, 0)  # null, not -1 or 0
    trades = duckdb.sql(
        f"SELECT price, price_m, price_dec, time FROM read_parquet('{out}/trades/**/*.parquet',"
        " hive_partitioning=true)"
    ).fetchall()
    assert trades
    for price, mantissa, dec, when in trades:
        assert price == mantissa / 10 and str(dec) == f"{mantissa // 10}.{mantissa % 10}"
        assert when.tzinfo is not None


def test_samples_features_and_exports_join_on_time(recording: Recording, tmp_path: Path) -> None:
    """One grid everywhere: Replayer.sample, sample_features and export --every-ms share times."""
    pd = pytest.importorskip("pandas")
    every = 100_000_000
    key = "book:ETH/USD"
    samples = Replayer(recording.segments, progress=False).sample(every, keys=[key], levels=1)
    features = sample_features(recording.segments, key, every_ns=every).to_pandas()
    out = tmp_path / "lake"
    export(
        *map(str, recording.segments), "--every-ms", "100", "--symbols", "ETH/USD", "-o", str(out)
    )
    exported = pd.read_parquet(out / "l2_book")
    left = samples.to_pandas()
    left = left[left["valid"]]
    joined = left.merge(features, on="time", suffixes=("", "_f")).merge(
        exported, on="time", suffixes=("", "_x")
    )
    assert len(joined) >= 10 and len(joined) == len(features)
    assert (joined["bid_price_1"] == joined["best_bid"]).all()
    assert (joined["bid_price_1_x"] == joined["best_bid"]).all()
    assert (joined["time_ns"] % every == 0).all()


def test_folders_expand_in_time_order(recording: Recording, tmp_path: Path) -> None:
    folder = tmp_path / "day"
    (folder / "nested").mkdir(parents=True)
    names = ["z-first.jsonl.gz", "nested/a-second.jsonl.gz", "m-third.jsonl.gz"]
    for name, segment in zip(names, recording.segments, strict=False):
        (folder / name).write_bytes(segment.read_bytes())
    (folder / "notes.md").write_text("not a capture")
    (folder / ".hidden.jsonl").write_text("")
    assert expand_inputs([folder]) == [folder / n for n in names]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BookError, match="no capture files"):
        expand_inputs([tmp_path / "empty"])
    # A folder replays like its files, in Python and on the command line.
    assert Replayer([folder], progress=False).paths == [folder / n for n in names]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["replay", str(folder), "--json"]) == 0
    summary = json.loads(out.getvalue())
    assert summary["bad_frames"] == 0 and summary["books"]["book:BTC/USD"]["checksums_checked"]


def test_a_failed_export_leaves_no_folders(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"channel":"trade","type":"update","data":[{"symbol":"XX/USD"}]}\n')
    out = tmp_path / "out"
    assert main([str(bad), "--what", "trades", "-o", str(out)]) == 1  # a bad frame: data
    assert not out.exists()
    assert main([str(bad), "--what", "l2", "-o", str(out)]) == 1  # nothing to export
    assert not out.exists()
    assert main([str(bad), "--what", "l3", "--format", "lobster", "-o", str(out)]) == 1
    assert not out.exists()
    # A writer that fails half-way removes its temporary parts and the folders it made.
    writer = DatasetWriter(out)
    from bookengine.analytics import Table

    with pytest.raises(RuntimeError), writer:
        writer.add("trades", "BTC/USD", Table({"recv_ts_ns": np.array([1, 2])}), "recv_ts_ns", {})
        raise RuntimeError("disk full")
    assert not out.exists()


def test_parts_are_renamed_when_complete_and_never_replaced(tmp_path: Path) -> None:
    from bookengine.analytics import Table

    table = Table({"recv_ts_ns": np.array([0, 86_400 * 10**9 + 5])})
    with DatasetWriter(tmp_path) as writer:
        finals = writer.add("x", "A/B", table, "recv_ts_ns", {"k": "v"})
        # Before the commit only hidden temporary files exist (readers skip them).
        assert not any(p.exists() for p in finals)
        assert len(list(tmp_path.rglob(".part-*.tmp"))) == 2
    assert [p.parent.name for p in finals] == ["date=1970-01-01", "date=1970-01-02"]
    assert all(p.exists() for p in finals) and not list(tmp_path.rglob("*.tmp"))
    assert read_metadata(finals[0])["bookengine.export"] == writer.export_id
    with DatasetWriter(tmp_path) as again:
        again.add("x", "A/B", table, "recv_ts_ns", {})
    assert len(dataset_parts(tmp_path, "x")) == 4
    with pytest.raises(BookError):
        partition_symbol("a=b")


def test_polars_is_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    from bookengine.analytics import Table

    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ImportError, match="polars"):
        Table({"a": [1]}).to_polars()
