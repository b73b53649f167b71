"""(Re)make the committed seed corpus ``fuzz/corpus/<target>/`` (deterministic, < 2 MB).

* ``scan``: lines of the tests/data fixtures (each kind of frame) and hand-made edge cases.
* ``capture``: capture files made of fixture lines with every line form (timestamps of each
  kind, headers, checkpoints, sent requests, comments, CRLF, a torn last line), each under
  every container mode of ``check_capture`` (first byte).
* ``l2``, ``l3``, ``session``: their inputs are programs for :class:`fuzz.harness.Input`; the
  seeds are the seeded random programs that reach the most distinct outcomes (verified
  checksums, each error type), so fuzzing starts deep in the books rather than at "depth".

Run: ``PYTHONPATH=. .venv/bin/python fuzz/make_corpus.py``.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))

from fuzz import harness  # noqa: E402

CORPUS = ROOT / "fuzz" / "corpus"
DATA = ROOT / "tests" / "data"


def fixture_lines(name: str, limit: int) -> list[bytes]:
    return (DATA / name).read_bytes().splitlines()[:limit]


EDGE_FRAMES = [
    b"",
    b"{",
    b"[]",
    b"{}",
    b"null",
    b'{"channel":"book"}',
    b'{"channel":"book","type":"update","data":[]}',
    b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD"}]}',
    b'{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":1e400,'
    b'"qty":-0}],"asks":[{"price":"NaN","qty":"1E-8"}],"checksum":4294967295}]}',
    b'{"channel":"book","type":"update","data":[{"symbol":"B\\u0054C/USD","bids":[{"price":'
    b'0.1,"qty":9223372036854775808}],"asks":[],"checksum":"4294967296"}]}',
    b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1,"qty":1,'
    b'"price":2}],"asks":[]}]}',
    b'{"ch\\u0061nnel":"level3","type":"update","data":[{"symbol":"BTC/USD","bids":[{"event":'
    b'"delete","order_id":"O\\"1","limit_price":1.0,"order_qty":0}]}]}',
    b'{"channel":"level3","type":"snapshot","data":[{"symbol":"BTC/USD","asks":[{"order_id":"",'
    b'"limit_price":"1","order_qty":"1","timestamp":"2262-04-11T23:47:16.854775807Z"}]}]}',
    b'[336,{"as":[["5541.30000","2.50700000","1534614248.123678"]],"bs":[["5541.20000",'
    b'"1.52900000","1534614248.765567","r"]]},"book-10","XBT/USD"]',
    b'[336,{"a":[["5541.30000","2.50700000","1534614248.123678","r"]]},{"b":[["5541.2",'
    b'"1.5","1534614248.765567"]],"c":"974942666"},"book-10","XBT/USD"]',
    b"[" * 70 + b"]" * 70,
    b'{"a":' * 70 + b"1" + b"}" * 70,
    b'{"channel":"book","type":"snapshot","data":[{"symbol":"\xff\xfe","bids":[],"asks":[]}]}',
    b'{"channel":"book","type":"snapshot","data":[{"symbol":"\xed\xa0\x80","bids":[]}]}',
    b'\xef\xbb\xbf{"channel":"heartbeat"}',
    b' \t\r\n{"channel" : "book" , "type" : "update" , "data" : [ { "symbol" : "X/Y" } ] } ',
]


def scan_seeds() -> list[bytes]:
    seeds = list(EDGE_FRAMES)
    for name, limit in (
        ("docs-v2-book-guide-btcusd.jsonl", 5),
        ("docs-v2-book-reference-maticusd.jsonl", 5),
        ("docs-v2-level3-guide-btcusd.jsonl", 5),
        ("docs-v1-book-guide.jsonl", 5),
        ("v2-book-btcusd-depth10.jsonl", 12),
        ("v1-book-xbtusd-depth10.jsonl", 16),
    ):
        seeds += fixture_lines(name, limit)
    return seeds


def capture_seeds() -> list[bytes]:
    frames = fixture_lines("v2-book-btcusd-depth10.jsonl", 4) + fixture_lines(
        "v1-book-xbtusd-depth10.jsonl", 6
    )
    header = b'#bookengine {"version": 1, "library": "0.1.0", "segment": 1, "started_ns": 1}'
    checkpoint = (
        b'#checkpoint {"kind": "book", "key": "book:BTC/USD", "recv_ts_ns": 5}\t' + frames[1]
    )
    bodies = [
        b"\n".join(frames) + b"\n",
        b"".join(b"%d\t%s\n" % (1690730998343415000 + i, f) for i, f in enumerate(frames)),
        b"1690730998.343415\t" + frames[0] + b"\r\n2023-07-30T15:29:58.343415Z\t" + frames[1],
        header + b"\n" + checkpoint + b"\n5\t>" + b'{"method":"subscribe","params":'
        b'{"channel":"level3","token":"<redacted>"}}\n# a comment\n7\t' + frames[2] + b"\n",
        b'#bookengine {"version": 99}\n' + frames[0] + b"\n",
        b"#bookengine {not json\n",
        b"12a\t" + frames[0] + b"\n\n\n" + frames[1][:40],
        b"\t\t\n>\n#\n#checkpoint \n" + b"9" * 30 + b"\t{}\n",
    ]
    return [bytes([mode]) + body for body in bodies for mode in range(6)]


def search(
    check: Callable[[bytes], None],
    probe: Callable[[bytes], Iterable[Any]],
    count: int,
    tries: int,
    seed: int,
    length: int = 600,
) -> list[bytes]:
    """Random programs, kept greedily by the new outcomes (``probe``) each one reaches."""
    rng = random.Random(seed)
    seen: set[Any] = set()
    kept: list[tuple[int, bytes]] = []
    for _ in range(tries):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(16, length)))
        check(data)  # a seed must pass
        new = set(probe(data)) - seen
        if new:
            kept.append((len(new), data))
            seen |= new
    kept.sort(key=lambda item: -item[0])
    return [data for _, data in kept[:count]]


def book_probe(check: Callable[[bytes], None]) -> Callable[[bytes], Iterable[Any]]:
    def probe(data: bytes) -> Iterable[Any]:
        out: list[Any] = []
        original = harness._apply_frame

        def traced(scanner: Any, book: Any, frame: bytes) -> tuple[Any, ...]:
            result = original(scanner, book, frame)
            if type(book).__mro__[1].__module__.startswith("bookengine._core"):
                out.append((scanner.kind, scanner.is_snapshot, result, min(book.bid_levels, 4)))
            return result

        harness._apply_frame = traced
        try:
            check(data)
        finally:
            harness._apply_frame = original
        return out

    return probe


def session_probe(data: bytes) -> Iterable[Any]:
    from bookengine.kraken.session import KrakenSession

    inp = harness.Input(data)
    buffer = b"\n".join(harness.session_lines(inp))
    session = KrakenSession(precisions=harness._PRECISIONS)
    kinds: set[Any] = set()
    session.receive_buffer(
        buffer, on_events=lambda _, events: kinds.update(type(e).__name__ for e in events)
    )
    for key, state in session.books.items():
        kinds.add((key, min(state.checksums_checked, 3), state.stale))
    return kinds


def write(target: str, seeds: list[bytes]) -> None:
    folder = CORPUS / target
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for data in seeds:
        (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def main() -> None:
    write("scan", scan_seeds())
    write("capture", capture_seeds())
    write("l2", search(harness.check_l2, book_probe(harness.check_l2), 40, 3000, 2))
    write("l3", search(harness.check_l3, book_probe(harness.check_l3), 40, 3000, 3))
    write("session", search(harness.check_session, session_probe, 40, 1500, 4, 900))
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    counts = {p.name: len(list(p.iterdir())) for p in sorted(CORPUS.iterdir())}
    print(f"corpus: {counts}, {total} bytes")


if __name__ == "__main__":
    main()
