"""The compiled scanner's shortcut for Kraken's own frame layout.

Kraken writes book and level3 frames without whitespace and with the top-level keys in one
order; the compiled scanner reads those by literal comparisons (``fast_path`` is then True) and
leaves everything else to its generic walk. These tests pin both halves of that promise:

* frames in Kraken's layout (fixtures, the L3 test publisher, random books) do take the
  shortcut, so a change that silently loses it (and the speed) fails here;
* the shortcut reads exactly what the generic walk and the reference (``json.loads``) read,
  and every near miss (a space, another key order, a repeated or unknown key, a string where a
  number belongs...) goes to the generic walk with the generic verdict.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scan import expected_scan, lines, scanned

from bookengine import implementation
from bookengine.errors import ProtocolError
from tests.l3.publisher import Publisher

COMPILED = implementation("cython")
REFERENCE = implementation("python")


def outcome(impl: Any, frame: bytes, scanner: Any = None) -> tuple[Any, ...]:
    scanner = scanner or impl.FrameScanner()
    try:
        scanner.scan(frame)
    except ProtocolError:
        return ("ProtocolError",)  # the texts differ in places (the reference quotes values)
    return (*scanned(scanner), scanner.timestamp_ns if scanner.kind else -1)


def compiled(frame: bytes) -> tuple[tuple[Any, ...], bool]:
    """The compiled outcome and whether the shortcut read the frame."""
    scanner = COMPILED.FrameScanner()
    return outcome(COMPILED, frame, scanner), scanner.fast_path


def generic(frame: bytes) -> bytes:
    """The same JSON with one space after the opening brace: the shortcut cannot take it."""
    assert frame.startswith(b"{")
    return b"{ " + frame[1:]


def kraken_layout_frames() -> list[bytes]:
    frames = [
        frame
        for name in (
            "v2-book-btcusd-depth10.jsonl",
            "docs-v2-book-guide-btcusd.jsonl",
            "docs-v2-book-reference-maticusd.jsonl",
            "docs-v2-level3-guide-btcusd.jsonl",
        )
        for frame in lines(name)
        if frame.startswith((b'{"channel":"book",', b'{"channel":"level3",'))
    ]
    for style in ("number", "string", "mixed"):
        frames.extend(level3_frames(style))
    return frames


def level3_frames(number_style: str) -> list[bytes]:
    """A snapshot and 40 updates (adds, modifies, deletes) from the L3 test publisher."""
    publisher = Publisher(depth=10, seed=3, odd_ids=0.0, number_style=number_style)
    rng = random.Random(5)

    def add() -> str:
        side = rng.randrange(2)
        price = publisher.price_near(side, rng.randrange(12), anchor=300_000)
        return publisher.add(side, price, rng.randint(1, 10**8))

    ids = [add() for _ in range(60)]
    frames = [publisher.snapshot()]
    for _ in range(40):
        roll = rng.random()
        if roll < 0.5:
            ids.append(add())
        elif roll < 0.75:
            publisher.modify(rng.choice(ids), rng.randint(1, 10**8))
        else:
            publisher.delete(ids.pop(rng.randrange(len(ids))))
        frames.append(publisher.flush())
    return frames


LAYOUT_FRAMES = kraken_layout_frames()


def test_the_pool_has_both_channels_and_both_types() -> None:
    heads = {frame[:40] for frame in LAYOUT_FRAMES}
    for channel in (b"book", b"level3"):
        for kind in (b"snapshot", b"update"):
            prefix = b'{"channel":"' + channel + b'","type":"' + kind + b'"'
            assert any(head.startswith(prefix) for head in heads), prefix


@pytest.mark.parametrize("index", range(len(LAYOUT_FRAMES)))
def test_kraken_layout_takes_the_shortcut_and_reads_the_same(index: int) -> None:
    frame = LAYOUT_FRAMES[index]
    result, fast = compiled(frame)
    assert fast, frame[:200]
    assert result[0] != "ProtocolError", result
    assert result == outcome(REFERENCE, frame)
    slow, slow_fast = compiled(generic(frame))
    assert not slow_fast
    assert slow == result
    assert result[:7] == expected_scan(frame)


BOOK = (
    b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":29424.2,'
    b'"qty":0.8}],"asks":[{"price":29430.1,"qty":0}],"checksum":2141748964,'
    b'"timestamp":"2023-07-30T15:30:01.604059Z"}]}'
)
L3 = (
    b'{"channel":"level3","type":"update","data":[{"symbol":"BTC/USD","checksum":1063832831,'
    b'"bids":[{"event":"add","order_id":"OTCFZG-YOE2Q-LQKNM3","limit_price":44939.4,'
    b'"order_qty":0.88968699,"timestamp":"2024-01-08T12:26:39.526146327Z"}],"asks":[{"event":'
    b'"delete","order_id":"OFVLAA-HRSSP-BK75KB","limit_price":44939.5,"order_qty":4.52308393,'
    b'"timestamp":"2024-01-08T12:18:05.770906486Z"}],"timestamp":"2024-01-08T12:26:40Z"}]}'
)

# Variants the shortcut still reads itself (same meaning, Kraken-like layout).
STILL_FAST = {
    "string numbers": BOOK.replace(b"29424.2", b'"29424.2"'),
    "no timestamp": BOOK.replace(b',"timestamp":"2023-07-30T15:30:01.604059Z"', b""),
    "no checksum": BOOK.replace(b'"checksum":2141748964,', b""),
    "book keys in another order": BOOK.replace(b'"symbol":"BTC/USD",', b"").replace(
        b'"checksum"', b'"symbol":"BTC/USD","checksum"'
    ),
    "trailing newline": BOOK + b"\r\n",
    "exponent": BOOK.replace(b"0.8}", b"8e-1}"),
    "negative qty (the book refuses it)": BOOK.replace(b"0.8}", b"-0.8}"),
    "empty sides": BOOK.replace(b'{"price":29424.2,"qty":0.8}', b""),
    "checksum 0": BOOK.replace(b"2141748964", b"0"),
    "checksum 2**32-1": BOOK.replace(b"2141748964", b"4294967295"),
    "l3 entry keys in another order": L3.replace(
        b'"event":"add","order_id":"OTCFZG-YOE2Q-LQKNM3",',
        b'"order_id":"OTCFZG-YOE2Q-LQKNM3","event":"add",',
    ),
    "l3 modify": L3.replace(b'"event":"add"', b'"event":"modify"'),
    "l3 snapshot without events": L3.replace(b'"update"', b'"snapshot"')
    .replace(b'"event":"add",', b"")
    .replace(b'"event":"delete",', b""),
    "l3 string numbers": L3.replace(b"44939.4", b'"44939.4"'),
    "l3 no order timestamp": L3.replace(b',"timestamp":"2024-01-08T12:26:39.526146327Z"', b""),
}

# Variants the shortcut must hand to the generic walk (which accepts or refuses them).
NEAR_MISSES = {
    "space after a colon": BOOK.replace(b'"bids":', b'"bids": '),
    "top-level keys in another order": BOOK.replace(
        b'{"channel":"book","type":"update",', b'{"type":"update","channel":"book",'
    ),
    "repeated side": BOOK.replace(b'"asks":[', b'"bids":['),
    "repeated symbol": BOOK.replace(b'"bids":', b'"symbol":"ETH/USD","bids":'),
    "unknown book key": BOOK.replace(b'"bids":', b'"extra":1,"bids":'),
    "unknown entry key": BOOK.replace(b'"qty":0.8}', b'"qty":0.8,"x":1}'),
    "entry keys in another order": BOOK.replace(
        b'{"price":29424.2,"qty":0.8}', b'{"qty":0.8,"price":29424.2}'
    ),
    "missing qty": BOOK.replace(b',"qty":0.8', b""),
    "missing symbol": BOOK.replace(b'"symbol":"BTC/USD",', b""),
    "escaped symbol": BOOK.replace(b"BTC/USD", b"BTC\\/USD"),
    "non-ASCII symbol": BOOK.replace(b"BTC/USD", "BTC/€".encode()),
    "control character in symbol": BOOK.replace(b"BTC/USD", b"BTC\x01USD"),
    "quoted checksum": BOOK.replace(b"2141748964", b'"2141748964"'),
    "checksum 2**32": BOOK.replace(b"2141748964", b"4294967296"),
    "checksum with a leading zero": BOOK.replace(b"2141748964", b"02141748964"),
    "negative checksum": BOOK.replace(b"2141748964", b"-1"),
    "fractional checksum": BOOK.replace(b"2141748964", b"1.5"),
    "number with a leading zero": BOOK.replace(b"0.8}", b"00.8}"),
    "bare dot": BOOK.replace(b"0.8}", b".8}"),
    "true as a price": BOOK.replace(b"29424.2", b"true"),
    "bad type": BOOK.replace(b'"update"', b'"delta"'),
    "two book objects": BOOK.replace(b"}]}", b"},{}]}"),
    "data after the value": BOOK + b"x",
    "truncated": BOOK[:-3],
    "other channel": BOOK.replace(b'"book"', b'"ticker"'),
    "l3 update entry without event": L3.replace(b'"event":"add",', b""),
    "l3 unknown event": L3.replace(b'"event":"add"', b'"event":"amend"'),
    "l3 empty order id": L3.replace(b"OTCFZG-YOE2Q-LQKNM3", b""),
    "l3 repeated entry key": L3.replace(
        b'"order_qty":0.88968699,', b'"order_qty":0.88968699,"order_qty":1,'
    ),
    "l3 missing limit_price": L3.replace(b'"limit_price":44939.4,', b""),
    "l3 numeric order id": L3.replace(b'"OTCFZG-YOE2Q-LQKNM3"', b"7"),
}


@pytest.mark.parametrize("name", sorted(STILL_FAST))
def test_kraken_like_variants_stay_on_the_shortcut(name: str) -> None:
    frame = STILL_FAST[name]
    result, fast = compiled(frame)
    assert fast
    assert result == outcome(REFERENCE, frame)
    assert compiled(generic(frame.rstrip()))[0] == result


@pytest.mark.parametrize("name", sorted(NEAR_MISSES))
def test_near_misses_take_the_generic_walk_with_its_verdict(name: str) -> None:
    frame = NEAR_MISSES[name]
    result, fast = compiled(frame)
    assert not fast
    assert result == outcome(REFERENCE, frame)


def test_near_miss_after_a_layout_frame_leaves_nothing_behind() -> None:
    """A frame that gives up half-way (entries already pushed) must not leak into the reading."""
    scanner = COMPILED.FrameScanner()
    scanner.scan(L3)
    assert scanner.fast_path and scanner.bid_count == 1
    late_miss = BOOK.replace(b'"checksum":2141748964', b'"checksum":"x"')
    with pytest.raises(ProtocolError, match="checksum"):
        scanner.scan(late_miss)
    assert not scanner.fast_path
    scanner.scan(BOOK.replace(b'"bids":', b'"bids": '))
    assert scanner.kind == 1 and scanner.bid_count == 1 and scanner.ask_count == 1


# -- random books in Kraken's layout --------------------------------------------------------------

NUMBER = st.one_of(
    st.integers(0, 10**12).map(str),
    st.builds(lambda i, f: f"{i}.{f}", st.integers(0, 10**9), st.integers(0, 10**9)),
    st.builds(lambda i, e: f"{i}e{e}", st.integers(0, 999), st.integers(-9, 3)),
    st.sampled_from(["0", "0.0", "0.00000000", "1E+2", "123456789012345678901"]),
)
LEVEL = st.tuples(NUMBER, NUMBER)


@st.composite
def book_frames(draw: st.DrawFn) -> bytes:
    def side(levels: list[tuple[str, str]]) -> str:
        return ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels)

    bids = draw(st.lists(LEVEL, max_size=6))
    asks = draw(st.lists(LEVEL, max_size=6))
    kind = draw(st.sampled_from(["snapshot", "update"]))
    symbol = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12))
    symbol = json.dumps(symbol)[1:-1]
    checksum = draw(st.integers(0, 2**32 - 1))
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":[{side(bids)}],'
        f'"asks":[{side(asks)}],"checksum":{checksum},'
        f'"timestamp":"2024-01-08T12:00:00.000001Z"}}]}}'
    ).encode()


@settings(max_examples=300, deadline=None)
@given(frame=book_frames())
def test_random_books_read_the_same_on_every_path(frame: bytes) -> None:
    result, fast = compiled(frame)
    assert fast == (b"\\" not in frame)
    assert result == outcome(REFERENCE, frame) == compiled(generic(frame))[0]
