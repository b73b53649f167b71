"""Exports: Parquet schemas and contents against the replayed books, LOBSTER files by hand."""

from __future__ import annotations

import csv
import json
import random
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bookengine import Implementation
from bookengine.capture import read_frames
from bookengine.export import ASK_DUMMY, BID_DUMMY, main
from bookengine.kraken.events import BookChanged
from bookengine.numbers import mantissa_decimal, parse_mantissa
from bookengine.replay import Replayer

from .helpers import Recording

BASE_NS = 1_704_672_000 * 10**9  # 2024-01-08T00:00:00Z


def export(*args: str) -> list[Path]:
    """Run ``bookengine export`` in-process; return the files it wrote."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(list(args))
    assert status == 0
    return [Path(line) for line in out.getvalue().splitlines()]


# -- L2 ----------------------------------------------------------------------------------------


def test_l2_parquet_rows_are_the_books_after_every_message(
    recording: Recording, tmp_path: Path
) -> None:
    files = export(
        *map(str, recording.segments),
        "--what",
        "l2",
        "--levels",
        "4",
        "-o",
        str(tmp_path),
        "--decimal",
    )
    assert sorted(str(p.relative_to(tmp_path).parent.parent) for p in files) == [
        "l2_book/symbol=BTC-USD",
        "l2_book/symbol=ETH-USD",
        "l2_level3/symbol=BTC-USD",
    ]
    assert all(re.fullmatch(r"date=\d{4}-\d{2}-\d{2}", p.parent.name) for p in files)
    assert all(p.name.startswith("part-") and p.suffix == ".parquet" for p in files)
    expected: dict[str, list[tuple[Any, ...]]] = {}
    for record, events in Replayer(recording.segments, progress=False).records():
        for event in events:
            if isinstance(event, BookChanged):
                expected.setdefault(event.key, []).append(
                    (record.recv_ts_ns, event.is_snapshot, event.book.bids(4), event.book.asks(4))
                )
    for path in files:
        table = pq.read_table(path)
        meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
        key = meta["bookengine.key"]
        pp, qp = (1, 8) if "BTC" in key else (2, 8)
        assert meta["bookengine.schema"] == "l2-snapshots/2"
        assert (meta["bookengine.price_scale"], meta["bookengine.qty_scale"]) == (str(pp), str(qp))
        assert meta["bookengine.levels"] == "4"
        assert json.loads(meta["bookengine.sources"]) == [str(p) for p in recording.segments]
        field = table.schema.field("bid_price_1_m")
        assert str(field.type) == "int64" and field.metadata[b"scale"] == str(pp).encode()
        assert str(table.schema.field("bid_price_1").type) == "double"
        assert str(table.schema.field("time").type) == "timestamp[ns, tz=UTC]"
        assert str(table.schema.field("ask_qty_4_dec").type) == f"decimal128(19, {qp})"
        rows = table.to_pylist()
        assert len(rows) == len(expected[key])
        for row, (t, is_snapshot, bids, asks) in zip(rows, expected[key], strict=True):
            assert (row["recv_ts_ns"], row["is_snapshot"], row["valid"]) == (t, is_snapshot, True)
            got_bids = [(row[f"bid_price_{k}_m"], row[f"bid_qty_{k}_m"]) for k in range(1, 5)]
            got_asks = [(row[f"ask_price_{k}_m"], row[f"ask_qty_{k}_m"]) for k in range(1, 5)]
            assert got_bids[: len(bids)] == bids and got_asks[: len(asks)] == asks
            # Missing levels are null, in every twin; present ones agree to the last digit.
            assert all(q is None for _, q in got_bids[len(bids) :] + got_asks[len(asks) :])
            assert row["bid_price_1_dec"] == mantissa_decimal(row["bid_price_1_m"], pp)
            assert row["ask_qty_2_dec"] == mantissa_decimal(row["ask_qty_2_m"], qp)
            assert row["bid_price_1"] == float(mantissa_decimal(row["bid_price_1_m"], pp))
            assert row["time"].timestamp() == pytest.approx(t / 1e9)
            for k in range(len(asks) + 1, 5):
                assert row[f"ask_price_{k}"] is None and row[f"ask_price_{k}_dec"] is None


def test_l2_parquet_sampled_every_ms(recording: Recording, tmp_path: Path) -> None:
    (path,) = [
        p
        for p in export(
            *map(str, recording.segments),
            "--every-ms",
            "250",
            "--symbols",
            "ETH/USD",
            "-o",
            str(tmp_path),
        )
    ]
    rows = pq.read_table(path).to_pylist()
    oracle = Replayer(recording.segments, progress=False)
    assert len(rows) >= 8
    for row in rows:
        assert row["recv_ts_ns"] % 250_000_000 == 0
        book = oracle.book_at(row["recv_ts_ns"], "book:ETH/USD")
        got = [(row[f"bid_price_{k}_m"], row[f"bid_qty_{k}_m"]) for k in range(1, 11)]
        assert book.bids(10) == got


# -- L3 and trades -----------------------------------------------------------------------------


def rebuild(rows: list[dict[str, Any]]) -> dict[int, dict[int, dict[str, int]]]:
    """An order book (side -> price -> {order_id: qty} in queue order) from exported events."""
    sides: dict[int, dict[int, dict[str, int]]] = {0: {}, 1: {}}
    where: dict[str, tuple[int, int]] = {}
    for row in rows:
        side, order_id = row["side"], row["order_id"]
        if row["event"] == "add":
            sides[side].setdefault(row["price"], {})[order_id] = row["qty"]
            where[order_id] = (side, row["price"])
            continue
        old_side, old_price = where.pop(order_id)
        level = sides[old_side][old_price]
        if row["event"] == "modify" and row["price"] == old_price:
            level[order_id] = row["qty"]  # in place: the queue position is kept
            where[order_id] = (side, old_price)
            continue
        del level[order_id]
        if not level:
            del sides[old_side][old_price]
        if row["event"] == "modify":
            sides[side].setdefault(row["price"], {})[order_id] = row["qty"]
            where[order_id] = (side, row["price"])
    return sides


def book_orders(book: Any) -> dict[int, dict[int, dict[str, int]]]:
    columns = book.orders_arrays(order_ids=True)
    sides: dict[int, dict[int, dict[str, int]]] = {0: {}, 1: {}}
    for side, price, qty, order_id in zip(
        columns["side"].tolist(),
        columns["price"].tolist(),
        columns["qty"].tolist(),
        columns["order_id"].tolist(),
        strict=True,
    ):
        sides[side].setdefault(price, {})[order_id] = qty
    return sides


def queues(sides: dict[int, dict[int, dict[str, int]]]) -> dict[int, list[tuple[int, list]]]:
    return {s: sorted((p, list(level.items())) for p, level in sides[s].items()) for s in sides}


def test_l3_parquet_events_rebuild_the_replayed_book(
    recording: Recording, tmp_path: Path, impl: Implementation
) -> None:
    from bookengine.export import collect, l3_parquet

    replayer = Replayer(recording.segments, implementation_name=impl.name, progress=False)
    tables, _ = collect(replayer)
    (path,) = l3_parquet(tables, tmp_path, recording.segments, decimal=True)
    table = pq.read_table(path)
    meta = table.schema.metadata
    assert meta[b"bookengine.schema"] == b"l3-events/2" and meta[b"bookengine.price_scale"] == b"1"
    assert str(table.schema.field("price_dec").type) == "decimal128(19, 1)"
    rows = [
        {**r, "price": r["price_m"], "qty": r["qty_m"]} for r in table.to_pylist()
    ]  # rebuild on the exact mantissas
    assert all(
        r["prev_price"] is None and r["prev_price_m"] is None for r in rows if r["event"] == "add"
    )
    assert {r["origin"] for r in rows} >= {"snapshot", "wire"}
    assert [r["message"] for r in rows] == sorted(r["message"] for r in rows)
    # Final state: exactly the replayed book, queue order included.
    final = replayer.session.books["level3:BTC/USD"].book
    assert queues(rebuild(rows)) == queues(book_orders(final))
    # And at random message boundaries, against book_at.
    oracle = Replayer(recording.segments, implementation_name=impl.name, progress=False)
    stamps = sorted({r["recv_ts_ns"] for r in rows})
    for t in random.Random(3).sample(stamps, 6):
        expected = oracle.book_at(t, "level3:BTC/USD")
        upto = [r for r in rows if r["recv_ts_ns"] <= t]
        assert queues(rebuild(upto)) == queues(book_orders(expected)), t
    executions = [r for r in rows if r["execution"]]
    assert executions and all(r["trade_id"] >= 0 for r in executions)
    assert all(r["event"] in ("delete", "modify") for r in executions)


def test_trades_parquet_is_exact_and_deduplicated(recording: Recording, tmp_path: Path) -> None:
    (path,) = export(*map(str, recording.segments), "--what", "trades", "-o", str(tmp_path))
    table = pq.read_table(path)
    assert table.schema.metadata[b"bookengine.schema"] == b"trades/2"
    rows = table.to_pylist()
    wire: dict[int, tuple[int, int, str]] = {}
    for record in read_frames(recording.segments):
        message = json.loads(record.frame, parse_float=Decimal)
        if isinstance(message, dict) and message.get("channel") == "trade":
            for trade in message["data"]:
                wire.setdefault(
                    trade["trade_id"],
                    (
                        parse_mantissa(trade["price"], 1),
                        parse_mantissa(trade["qty"], 8),
                        trade["side"],
                    ),
                )
    assert len(rows) == len(wire) > 0
    assert len({r["trade_id"] for r in rows}) == len(rows)
    for row in rows:
        assert (row["price_m"], row["qty_m"], row["side"]) == wire[row["trade_id"]]
        assert row["price"] == row["price_m"] / 10 and row["qty"] == row["qty_m"] / 10**8
        assert row["exchange_ts_ns"] > 0


# -- LOBSTER -----------------------------------------------------------------------------------


def hand_capture(path: Path) -> None:
    """A tiny level3 capture whose LOBSTER files are written out by hand below."""

    def ts(ms: int) -> str:
        return f"2024-01-08T00:00:01.{ms:03d}000000Z"

    def order(oid: str, price: str, qty: str, ms: int, event: str | None = None) -> dict:
        entry = {"order_id": oid, "limit_price": price, "order_qty": qty, "timestamp": ts(ms)}
        if event:
            entry["event"] = event
        return entry

    def update(ms: int, bids: list, asks: list) -> dict:
        return {
            "channel": "level3",
            "type": "update",
            "data": [{"symbol": "BTC/USD", "bids": bids, "asks": asks, "timestamp": ts(ms)}],
        }

    def trade(ms: int, side: str, price: str, qty: str, trade_id: int) -> dict:
        return {
            "channel": "trade",
            "type": "update",
            "data": [
                {
                    "symbol": "BTC/USD",
                    "side": side,
                    "price": price,
                    "qty": qty,
                    "ord_type": "market",
                    "trade_id": trade_id,
                    "timestamp": ts(ms),
                }
            ],
        }

    frames = [
        {
            "channel": "instrument",
            "type": "snapshot",
            "data": {"pairs": [{"symbol": "BTC/USD", "price_precision": 1, "qty_precision": 2}]},
        },
        {
            "method": "subscribe",
            "success": True,
            "result": {"channel": "level3", "symbol": "BTC/USD", "depth": 10, "snapshot": True},
        },
        {
            "channel": "level3",
            "type": "snapshot",
            "data": [
                {
                    "symbol": "BTC/USD",
                    "bids": [order("A", "100.0", "1.00", 0), order("B", "100.0", "2.00", 0)],
                    "asks": [order("C", "101.0", "1.50", 0)],
                }
            ],
        },
        update(1, [order("D", "99.5", "3.00", 1, "add")], []),
        trade(2, "sell", "100.0", "0.75", 1),
        update(2, [order("B", "100.0", "1.25", 2, "modify")], []),
        update(3, [order("A", "100.5", "1.00", 3, "modify")], []),
        update(4, [], [order("C", "101.0", "1.50", 4, "delete")]),
        update(5, [order("D", "99.5", "2.00", 5, "modify")], []),
        update(6, [order("B", "100.0", "1.25", 6, "delete")], []),
        trade(6, "sell", "100.0", "1.25", 2),
    ]
    path.write_text(
        "".join(
            f"{BASE_NS + 1_000_000_000 + k * 1_000_000}\t{json.dumps(frame)}\n"
            for k, frame in enumerate(frames)
        )
    )


def read_csv(path: Path) -> list[list[str]]:
    with path.open() as handle:
        return list(csv.reader(handle))


def test_lobster_files_of_a_hand_checkable_capture(tmp_path: Path) -> None:
    capture = tmp_path / "hand.jsonl"
    hand_capture(capture)
    out = tmp_path / "lobster"
    files = export(
        str(capture), "--format", "lobster", "--what", "l3", "--levels", "2", "-o", str(out)
    )
    names = sorted(p.name for p in files)
    assert names == [
        "BTC-USD_2024-01-08_1_2_message_2.csv",
        "BTC-USD_2024-01-08_1_2_meta.json",
        "BTC-USD_2024-01-08_1_2_orderbook_2.csv",
        "BTC-USD_2024-01-08_1_2_orderids.csv",
    ]
    messages = read_csv(out / names[0])
    t = [
        "1.002000000",
        "1.003000000",
        "1.005000000",
        "1.006000000",
        "1.007000000",
        "1.008000000",
        "1.009000000",
    ]
    assert messages == [
        # snapshot: three adds (A, B bids; C ask)
        [t[0], "1", "1", "100", "1000", "1"],
        [t[0], "1", "2", "200", "1000", "1"],
        [t[0], "1", "3", "150", "1010", "-1"],
        [t[1], "1", "4", "300", "995", "1"],  # D added
        [t[2], "4", "2", "75", "1000", "1"],  # B partly executed (trade 1, 0.75)
        [t[3], "3", "1", "100", "1000", "1"],  # A moves to 100.5: delete + add
        [t[3], "1", "1", "100", "1005", "1"],
        [t[4], "3", "3", "150", "1010", "-1"],  # C cancelled
        [t[5], "2", "4", "100", "995", "1"],  # D partly cancelled (no trade)
        [t[6], "4", "2", "125", "1000", "1"],  # B executed in full (trade 2)
    ]
    a, b = str(ASK_DUMMY), str(BID_DUMMY)
    assert read_csv(out / names[2]) == [
        [a, "0", "1000", "100", a, "0", b, "0"],
        [a, "0", "1000", "300", a, "0", b, "0"],
        ["1010", "150", "1000", "300", a, "0", b, "0"],
        ["1010", "150", "1000", "300", a, "0", "995", "300"],
        ["1010", "150", "1000", "225", a, "0", "995", "300"],
        ["1010", "150", "1000", "125", a, "0", "995", "300"],
        ["1010", "150", "1005", "100", a, "0", "1000", "125"],
        [a, "0", "1005", "100", a, "0", "1000", "125"],
        [a, "0", "1005", "100", a, "0", "1000", "125"],
        [a, "0", "1005", "100", a, "0", "995", "200"],
    ]
    assert read_csv(out / names[3]) == [
        ["lobster_id", "order_id"],
        ["1", "A"],
        ["2", "B"],
        ["3", "C"],
        ["4", "D"],
    ]
    meta = json.loads((out / names[1]).read_text())
    assert (meta["price_scale"], meta["qty_scale"], meta["levels"]) == (1, 2, 2)
    assert meta["time_origin_ns"] == BASE_NS


def lobster_book(rows: list[list[str]], levels: int) -> list[list[int]]:
    """Replay LOBSTER message rows into aggregated books (the LOBSTER reader's view)."""
    sides: dict[int, dict[int, int]] = {1: {}, -1: {}}
    out = []
    for _, kind, _, size, price, direction in rows:
        ladder = sides[int(direction)]
        delta = int(size) if kind == "1" else -int(size)
        ladder[int(price)] = ladder.get(int(price), 0) + delta
        if ladder[int(price)] == 0:
            del ladder[int(price)]
        asks = sorted(sides[-1].items())[:levels]
        bids = sorted(sides[1].items(), reverse=True)[:levels]
        row: list[int] = []
        for k in range(levels):
            row += list(asks[k]) if k < len(asks) else [ASK_DUMMY, 0]
            row += list(bids[k]) if k < len(bids) else [BID_DUMMY, 0]
        out.append(row)
    return out


def test_lobster_messages_rebuild_every_orderbook_row(recording: Recording, tmp_path: Path) -> None:
    files = export(
        *map(str, recording.segments),
        "--format",
        "lobster",
        "--what",
        "l3",
        "--levels",
        "5",
        "-o",
        str(tmp_path),
    )
    message = next(p for p in files if "_message_" in p.name)
    book = next(p for p in files if "_orderbook_" in p.name)
    messages, books = read_csv(message), read_csv(book)
    assert len(messages) == len(books) > 100
    assert lobster_book(messages, 5) == [[int(v) for v in row] for row in books]
    assert {row[1] for row in messages} >= {"1", "3", "4"}
    final = Replayer(recording.segments, progress=False).run().books["level3:BTC/USD"].book
    last = [int(v) for v in books[-1]]
    assert [(last[4 * k + 2], last[4 * k + 3]) for k in range(5)] == final.bids(5)
    assert [(last[4 * k], last[4 * k + 1]) for k in range(5)] == final.asks(5)


def test_lobster_l2_orderbook_file(recording: Recording, tmp_path: Path) -> None:
    files = export(
        *map(str, recording.segments),
        "--format",
        "lobster",
        "--levels",
        "3",
        "--symbols",
        "ETH/USD",
        "-o",
        str(tmp_path),
    )
    book = next(p for p in files if "_orderbook_3" in p.name)
    times = next(p for p in files if "_times_3" in p.name)
    samples = Replayer(recording.segments, progress=False).snapshots(["book:ETH/USD"], 3)
    rows = read_csv(book)
    assert len(rows) == len(samples) == len(read_csv(times))
    for row, _, bid_q, ask_p, _ in zip(
        rows, samples.bid_price, samples.bid_qty, samples.ask_price, samples.ask_qty, strict=True
    ):
        assert [int(v) for v in row[0::4]] == ask_p.tolist()
        assert [int(v) for v in row[3::4]] == bid_q.tolist()


def test_export_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "hand.jsonl"
    hand_capture(capture)
    assert main([str(capture), "--format", "lobster", "--what", "trades", "-o", str(tmp_path)]) == 2
    assert "LOBSTER has no trades-only file" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o")]) == 2
    assert "cannot open" in capsys.readouterr().err
    # Trades of a symbol whose precision is unknown: say which and how to give it.
    no_instrument = tmp_path / "noinst.jsonl"
    no_instrument.write_text("\n".join(capture.read_text().splitlines()[4:5]) + "\n")
    assert main([str(no_instrument), "--what", "trades", "-o", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "BTC/USD: no precision known" in err and "--precision" in err
    assert (
        main(
            [
                str(no_instrument),
                "--what",
                "trades",
                "--precision",
                "BTC/USD=1/2",
                "-o",
                str(tmp_path / "t"),
            ]
        )
        == 0
    )
    assert (
        main([str(capture), "--what", "l3", "--symbols", "ETH/USD", "-o", str(tmp_path / "none")])
        == 1
    )


def test_collected_columns_as_dataframes_and_arrow(recording: Recording) -> None:
    from bookengine.export import collect

    events, trades = collect(Replayer(recording.segments, progress=False))
    for table in [*events.values(), *trades.values()]:
        assert len(table) == len(table.columns["recv_ts_ns"]) > 0
        frame = table.to_pandas()
        assert len(frame) == len(table)
        assert list(frame.columns) == list(table.to_table().columns)
        arrow = table.to_arrow(decimal=True)
        assert arrow.num_rows == len(table) and "price_dec" in arrow.column_names
