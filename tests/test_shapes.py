"""Every shape of one capture gives the same books, events and summaries.

One stream (docs/architecture.md): whatever the capture's shape (bare frames, ``recv_ts`` lines,
gzip or zstd, tardis.dev or cryptofeed lines, read in chunks split at any byte, with trade and
heartbeat lines between the books, filtered by symbol), every line goes through the session's
one line reader, and the result may not depend on the shape. Built from the real BTC/USD
capture (every checksum Kraken's), the same messages renamed ETH/USD, and trades.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bookengine import Implementation
from bookengine import capture as capture_module
from bookengine.kraken.events import BookChanged, Trades
from bookengine.replay import Replayer

DATA = Path(__file__).parent / "data"
T0 = 1_690_731_000_000_000_000
PRECISIONS = {"BTC/USD": (1, 8), "ETH/USD": (1, 8)}


def _trade(symbol: str, n: int) -> bytes:
    record = (
        f'{{"symbol":"{symbol}","side":"{"buy" if n % 2 else "sell"}","price":29430.{n % 10},'
        f'"qty":0.{n:08d},"ord_type":"{"market" if n % 3 else "limit"}","trade_id":{1000 + n},'
        f'"timestamp":"2023-07-30T15:30:{n % 60:02d}.{n:06d}Z"}}'
    )
    return b'{"channel":"trade","type":"update","data":[%s]}' % record.encode()


def _frames(trades: bool = True, symbols: tuple[str, ...] = ("BTC/USD", "ETH/USD")) -> list[bytes]:
    """The real capture for each symbol, interleaved, with trades and heartbeats between."""
    btc = (DATA / "v2-book-btcusd-depth10.jsonl").read_bytes().splitlines()
    out: list[bytes] = []
    for index, frame in enumerate(btc):
        for symbol in symbols:
            out.append(frame.replace(b'"BTC/USD"', json.dumps(symbol).encode()))
            if trades and index % 5 == 2:
                out.append(_trade(symbol, index))
        if index % 50 == 7:
            out.append(b'{"channel":"heartbeat"}')
    return out


def _times(count: int) -> list[int]:
    return [T0 + 1_000_000 * (index // 3) for index in range(count)]  # equal times too


def _iso(ns: int) -> bytes:
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction // 100:07d}Z".encode()


def _write(folder: Path, shape: str, frames: list[bytes]) -> Path:
    times = _times(len(frames))
    if shape == "raw":
        lines = frames
    elif shape in ("recv_ts", "gz", "zst"):
        lines = [b"%d\t%s" % (t, f) for t, f in zip(times, frames, strict=True)]
    elif shape == "tardis":
        lines = [b"%s %s" % (_iso(t), f) for t, f in zip(times, frames, strict=True)]
    elif shape == "cryptofeed":
        lines = [b"wss://ws.kraken.com/v2 <-> %.6f" % (T0 / 1e9)]
        lines.append(
            b'wss://ws.kraken.com/v2 <- %.6f: {"method":"subscribe","params":{}}' % (T0 / 1e9)
        )
        lines += [
            b"%d.%09d: %s" % (t // 10**9, t % 10**9, f) for t, f in zip(times, frames, strict=True)
        ]
    else:
        raise AssertionError(shape)
    text = b"\n".join(lines) + b"\n"
    path = folder / f"{shape}.jsonl"
    if shape == "gz":
        path = folder / "capture.jsonl.gz"
        path.write_bytes(gzip.compress(text))
    elif shape == "zst":
        import zstandard

        path = folder / "capture.jsonl.zst"
        path.write_bytes(zstandard.ZstdCompressor().compress(text))
    else:
        path.write_bytes(text)
    return path


def _outcome(path: Path, impl: Implementation, **options: Any) -> dict[str, Any]:
    """Summary, final books, and every event of a replay (books as their checksum then)."""
    replayer = Replayer(
        [path], precisions=PRECISIONS, implementation_name=impl.name, progress=False, **options
    )
    summary = replayer.run().summary()
    books = {key: (s.book.bids(), s.book.asks()) for key, s in replayer.session.books.items()}
    events: list[tuple[Any, ...]] = []
    for event in replayer.events():
        if isinstance(event, BookChanged):
            events.append(("book", event.key, event.book.checksum(), event.checksum_verified))
        elif isinstance(event, Trades):
            events.append(("trades", event.symbol, _fields(event)))
        else:
            events.append((type(event).__name__,))
    return {"summary": summary, "books": books, "events": events}


def _fields(event: Trades) -> list[tuple[Any, ...]]:
    # Everything a trade says but its receive time (bare frames have none).
    return [
        (t.side, t.price, t.qty, t.trade_id, t.timestamp_ns, t.symbol, t.ord_type)
        for t in event.trades
    ]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("shapes")
    frames = _frames()
    return {
        shape: _write(folder, shape, frames)
        for shape in ("raw", "recv_ts", "gz", "zst", "tardis", "cryptofeed")
    }


def test_every_shape_gives_the_same_books_events_and_summary(
    shapes: dict[str, Path], impl: Implementation
) -> None:
    expected = _outcome(shapes["recv_ts"], impl)
    assert expected["summary"]["bad_frames"] == 0
    for key in ("book:BTC/USD", "book:ETH/USD"):
        book = expected["summary"]["books"][key]
        assert (book["checksums_checked"], book["checksum_mismatches"]) == (510, 0)
    kinds = {event[0] for event in expected["events"]}
    assert kinds == {"book", "trades"}
    for shape, path in shapes.items():
        assert _outcome(path, impl) == expected, shape


@pytest.mark.parametrize("chunk", [1, 7, 64, 4099])
def test_chunks_split_at_any_byte_change_nothing(
    shapes: dict[str, Path], impl: Implementation, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _outcome(shapes["gz"], impl)
    monkeypatch.setattr(capture_module, "_CHUNK", chunk)
    for shape in ("recv_ts", "gz", "tardis"):
        assert _outcome(shapes[shape], impl) == expected, (shape, chunk)


def test_trade_lines_change_no_book(
    shapes: dict[str, Path], impl: Implementation, tmp_path: Path
) -> None:
    without = _outcome(_write(tmp_path, "recv_ts", _frames(trades=False)), impl)
    with_trades = _outcome(shapes["recv_ts"], impl)
    assert without["books"] == with_trades["books"]
    assert [e for e in with_trades["events"] if e[0] == "book"] == without["events"]
    assert without["summary"]["books"] == with_trades["summary"]["books"]


def test_a_symbol_filter_gives_that_symbol_alone(
    shapes: dict[str, Path], impl: Implementation, tmp_path: Path
) -> None:
    alone = _outcome(_write(tmp_path, "recv_ts", _frames(symbols=("BTC/USD",))), impl)
    for shape in ("recv_ts", "raw", "tardis"):
        filtered = _outcome(shapes[shape], impl, symbols=["BTC/USD"])
        assert filtered["books"] == alone["books"], shape
        assert filtered["events"] == alone["events"], shape
        summary = dict(filtered["summary"])
        skipped = summary.pop("filtered_frames")
        assert skipped == len(_frames()) - len(_frames(symbols=("BTC/USD",))) - 0
        assert summary == alone["summary"]


def test_gzip_reads_the_same_with_either_inflater(
    shapes: dict[str, Path], impl: Implementation, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ISA-L (when installed) and zlib give the same replay, and the same report of a damaged
    or truncated stream."""
    import zlib

    whole = shapes["gz"].read_bytes()
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(whole[: len(whole) // 2] + b"\xff" * 64 + whole[len(whole) // 2 :])
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(whole[: len(whole) * 2 // 3])

    def outcome() -> list[Any]:
        out: list[Any] = [_outcome(shapes["gz"], impl)]
        for path in (damaged, truncated):
            replayer = Replayer([path], precisions=PRECISIONS, implementation_name=impl.name)
            result = replayer.run()
            out.append((result.summary(), [note.kind for note in result.notes]))
        return out

    fast = outcome()
    assert fast[1][1] == ["corrupt"] and "truncated" in fast[2][1]  # a torn last line too
    monkeypatch.setattr(capture_module, "_INFLATE", zlib)
    assert outcome() == fast
