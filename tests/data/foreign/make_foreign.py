"""Convert the real fixtures in tests/data into the capture formats of other tools.

Run from the repository root: ``python tests/data/foreign/make_foreign.py``. The output is
deterministic (fixed receive times, gzip mtime 0), committed beside this script, and replayed
by tests/capture/test_foreign.py once bookengine reads these formats.

The fixtures hold frames without receive times; each gets a synthetic one: a fixed start per
fixture (near when it was recorded), then 10 ms apart plus a few hundred ns of deterministic
jitter, so the 100 ns digit of tardis.dev times is exercised.

* tardis.dev raw data-feed slices (``tardis/<fixture>.json.gz``, and ``.json.zst`` for the v1
  fixture): each line is the local receive time as ISO 8601 with 7 fractional digits and
  ``Z`` (28 characters), one space, then the message exactly as received. In
  ``v2-book-btcusd-depth10.json.gz`` the connection drops once: a blank line, some messages
  that never arrived, then what a fresh connection receives (the fixture's first frame before
  any book data, here none) and a new ``book`` snapshot of the book as it then was, with its
  checksum, after which the original updates continue.
* cryptofeed raw recordings (``cryptofeed/<fixture>/KRAKEN.ws.1.0``, the file name
  cryptofeed's ``AsyncFileCallback`` gives a connection's first file: ``<connection id>.<n>``):
  ``<url> <-> <unix time>`` when the connection opens, ``<url> <- <unix time>: <request>`` for
  each request sent, ``<unix time>: <frame>`` for each frame received; unix times as Python
  prints ``time()`` (a float in seconds).

``manifest.json`` lists each converted file with the book key, the precisions to pass (the
captures carry no ``instrument`` frame, as the originals did not) and the number of checksums
it holds; the counts of the unchanged conversions are the fixtures' documented counts, the
disconnect file's is derived from the frames it keeps and the snapshot it adds.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent

# fixture -> (book key, checksums in the fixture, precisions, start of the receive times,
#             url, subscribe request)
FIXTURES: dict[str, tuple[str, int, dict[str, list[int]], str, str, str]] = {
    "v2-book-btcusd-depth10.jsonl": (
        "book:BTC/USD",
        510,
        {"BTC/USD": [1, 8]},
        "2023-07-30T12:00:00",
        "wss://ws.kraken.com/v2",
        '{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":10}}',
    ),
    "v1-book-xbtusd-depth10.jsonl": (
        "book-10:XBT/USD",
        979,
        {},
        "2023-08-30T17:08:49",
        "wss://ws.kraken.com",
        '{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"book","depth":10}}',
    ),
    "docs-v2-book-guide-btcusd.jsonl": (
        "book:BTC/USD",
        1,
        {"BTC/USD": [1, 8]},
        "2024-01-08T12:00:00",
        "wss://ws.kraken.com/v2",
        '{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":10}}',
    ),
    "docs-v2-book-reference-maticusd.jsonl": (
        "book:MATIC/USD",
        2,
        {"MATIC/USD": [4, 8]},
        "2024-01-08T12:00:00",
        "wss://ws.kraken.com/v2",
        '{"method":"subscribe","params":{"channel":"book","symbol":["MATIC/USD"],"depth":10}}',
    ),
    "docs-v1-book-guide.jsonl": (
        "book-1000:XBT/USD",
        1,
        {},
        "2020-02-28T16:00:00",
        "wss://ws.kraken.com",
        '{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"book","depth":1000}}',
    ),
    "docs-v2-level3-guide-btcusd.jsonl": (
        "level3:BTC/USD",
        1,
        {"BTC/USD": [1, 8]},
        "2024-01-08T12:00:00",
        "wss://ws-l3.kraken.com/v2",
        '{"method":"subscribe","params":{"channel":"level3","symbol":["BTC/USD"],'
        '"depth":10,"token":"REDACTED"}}',
    ),
}
ZSTD = "v1-book-xbtusd-depth10.jsonl"
DISCONNECT = "v2-book-btcusd-depth10.jsonl"
DROP_FROM, DROP_TO = 200, 215  # 0-based frames lost while disconnected: [200, 215)


def receive_times(start: str, count: int) -> Iterator[int]:
    """Synthetic receive times (ns): 10 ms apart with 0..99.9 us of deterministic jitter."""
    base = int(datetime.fromisoformat(start).replace(tzinfo=timezone.utc).timestamp())
    for index in range(count):
        yield base * 10**9 + index * 10_000_000 + (index * 7919 % 1000) * 100


def tardis_time(ns: int) -> str:
    """ns -> ``2023-07-30T12:00:00.1234567Z`` (tardis.dev's 100 ns resolution, 28 chars)."""
    seconds, fraction = divmod(ns, 10**9)
    day = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    text = f"{day}.{fraction // 100:07d}Z"
    assert len(text) == 28, text
    return text


def cryptofeed_time(ns: int) -> str:
    """ns -> what ``str(time.time())`` prints for that time."""
    return repr(ns / 10**9)


def snapshot_after(frames: list[bytes], symbol: str, depth: int) -> bytes:
    """A v2 ``book`` snapshot of the book after ``frames`` (built here from the JSON, with the
    documented CRC32 of the top 10 levels), numbers written as Kraken writes them."""
    import zlib
    from decimal import Decimal

    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for frame in frames:
        message = json.loads(frame, parse_float=Decimal, parse_int=Decimal)
        for entry in message["data"]:
            if message["type"] == "snapshot":
                bids.clear()
                asks.clear()
            for side, levels in ((bids, entry["bids"]), (asks, entry["asks"])):
                for level in levels:
                    if level["qty"] == 0:
                        side.pop(level["price"], None)
                    else:
                        side[level["price"]] = level["qty"]
            # Truncate to the subscribed depth, as the book does after every message.
            for side, reverse in ((bids, True), (asks, False)):
                for price in sorted(side, reverse=reverse)[depth:]:
                    del side[price]
    top_bids = sorted(bids.items(), reverse=True)[:depth]
    top_asks = sorted(asks.items())[:depth]

    def digits(value: Decimal, places: int) -> str:
        return str(int(value.scaleb(places))).lstrip("0") or "0"

    text = "".join(digits(p, 1) + digits(q, 8) for p, q in top_asks[:10])
    text += "".join(digits(p, 1) + digits(q, 8) for p, q in top_bids[:10])
    checksum = zlib.crc32(text.encode())

    def levels(items: list[tuple[Decimal, Decimal]]) -> str:
        return ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in items)

    timestamp = json.loads(frames[-1])["data"][0]["timestamp"]
    return (
        f'{{"channel":"book","type":"snapshot","data":[{{"symbol":"{symbol}",'
        f'"bids":[{levels(top_bids)}],"asks":[{levels(top_asks)}],"checksum":{checksum},'
        f'"timestamp":"{timestamp}"}}]}}'
    ).encode()


def gzip_bytes(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as stream:
        stream.write(data)
    return out.getvalue()


def main() -> None:
    manifest: dict[str, dict[str, object]] = {}
    for name, (key, checksums, precisions, start, url, request) in FIXTURES.items():
        frames = (DATA / name).read_bytes().splitlines()
        times = list(receive_times(start, len(frames) + 1))
        stem = name.removesuffix(".jsonl")

        # tardis.dev
        lines = [tardis_time(t).encode() + b" " + f for t, f in zip(times, frames, strict=False)]
        tardis_checksums = checksums
        if name == DISCONNECT:
            snapshot = snapshot_after(frames[:DROP_TO], "BTC/USD", 10)
            # The rebuilt book is the one Kraken's own checksum of the last frame describes.
            expected = json.loads(frames[DROP_TO - 1])["data"][0]["checksum"]
            assert json.loads(snapshot)["data"][0]["checksum"] == expected
            dropped = sum(b'"checksum"' in f for f in frames[DROP_FROM:DROP_TO])
            fresh = tardis_time(times[DROP_TO] - 1_000_000).encode() + b" " + snapshot
            lines = [*lines[:DROP_FROM], b"", fresh, *lines[DROP_TO:]]  # b"": the disconnect
            tardis_checksums = checksums - dropped + 1
        body = b"\n".join(lines) + b"\n"
        if name == ZSTD:
            import zstandard

            target = HERE / "tardis" / f"{stem}.json.zst"
            payload = zstandard.ZstdCompressor(level=19).compress(body)
        else:
            target = HERE / "tardis" / f"{stem}.json.gz"
            payload = gzip_bytes(body)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
        manifest[str(target.relative_to(HERE))] = {
            "format": "tardis",
            "key": key,
            "checksums": tardis_checksums,
            "precisions": precisions,
            "frames": len(frames)
            - (DROP_TO - DROP_FROM if name == DISCONNECT else 0)
            + (1 if name == DISCONNECT else 0),
        }

        # cryptofeed
        open_ns = times[0] - 50_000_000
        lines = [
            f"{url} <-> {cryptofeed_time(open_ns)}".encode(),
            f"{url} <- {cryptofeed_time(open_ns + 20_000_000)}: {request}".encode(),
        ]
        lines += [
            cryptofeed_time(t).encode() + b": " + f for t, f in zip(times, frames, strict=False)
        ]
        target = HERE / "cryptofeed" / stem / "KRAKEN.ws.1.0"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\n".join(lines) + b"\n")
        manifest[str(target.relative_to(HERE))] = {
            "format": "cryptofeed",
            "key": key,
            "checksums": checksums,
            "precisions": precisions,
            "frames": len(frames),
        }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
