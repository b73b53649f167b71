"""FrameScanner: classification of Kraken frames, entry extraction, malformed input, and a
differential fuzz of the compiled scanner against the reference (json.loads) one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bookengine import Implementation, implementation
from bookengine.core_types import Entry
from bookengine.errors import ProtocolError

DATA = Path(__file__).parent / "data"

# The codes as numbers, on purpose: tests/test_core_types.py checks that both implementations
# take them from bookengine.core_types; this file checks what the scanners return.
OTHER, BOOK, LEVEL3, V1_BOOK = 0, 1, 2, 3
ADD, MODIFY, DELETE = 1, 2, 3


def lines(name: str) -> list[bytes]:
    return (DATA / name).read_bytes().splitlines()


def scanned(scanner: Any) -> tuple[Any, ...]:
    """Everything a scan tells about a book frame (only the kind for other frames)."""
    if scanner.kind == OTHER:
        return (OTHER,)
    return (
        scanner.kind,
        scanner.is_snapshot,
        scanner.symbol,
        scanner.channel_name,
        scanner.checksum,
        scanner.bids,
        scanner.asks,
    )


def scan(impl: Implementation, frame: bytes | str) -> tuple[Any, ...]:
    scanner = impl.FrameScanner()
    scanner.scan(frame)
    return scanned(scanner)


# -- an independent oracle for well-formed frames -----------------------------------------------


def expected_scan(frame: bytes | str) -> tuple[Any, ...]:
    """What a scan of a well-formed Kraken frame must give, from the stdlib json module."""
    message = json.loads(frame, parse_float=str, parse_int=str)
    if isinstance(message, dict) and message.get("channel") in ("book", "level3"):
        book = message["data"][0]
        entries: dict[str, list[Entry]] = {}
        for side in ("bids", "asks"):
            if message["channel"] == "book":
                entries[side] = [Entry(lv["price"], lv["qty"]) for lv in book.get(side, [])]
            else:
                events = {"add": ADD, "modify": MODIFY, "delete": DELETE}
                default = "add" if message["type"] == "snapshot" else None
                entries[side] = [
                    Entry(
                        o["limit_price"],
                        o["order_qty"],
                        order_id=o["order_id"],
                        event=events[o.get("event", default)],
                        timestamp=o.get("timestamp", ""),
                    )
                    for o in book.get(side, [])
                ]
        return (
            BOOK if message["channel"] == "book" else LEVEL3,
            message["type"] == "snapshot",
            book["symbol"],
            "",
            int(book.get("checksum", -1)),
            entries["bids"],
            entries["asks"],
        )
    if (
        isinstance(message, list)
        and len(message) >= 4
        and isinstance(message[-2], str)
        and message[-2].startswith("book-")
    ):
        bids: list[Entry] = []
        asks: list[Entry] = []
        checksum = -1
        snapshot = False
        for payload in message[1:-2]:
            for key, value in payload.items():
                if key == "c":
                    checksum = int(value)
                    continue
                snapshot = snapshot or key in ("as", "bs")
                target = bids if key in ("b", "bs") else asks
                for level in value:
                    target.append(
                        Entry(level[0], level[1], timestamp=level[2], republish=len(level) == 4)
                    )
        return (V1_BOOK, snapshot, message[-1], message[-2], checksum, bids, asks)
    return (OTHER,)


FIXTURE_FILES = sorted(p.name for p in DATA.glob("*.jsonl") if "instrument" not in p.name)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_every_fixture_line_scans_as_the_stdlib_reads_it(impl: Implementation, name: str) -> None:
    scanner = impl.FrameScanner()  # one scanner reused across frames, as the session does
    for number, line in enumerate(lines(name), 1):
        scanner.scan(line)
        assert scanned(scanner) == expected_scan(line), f"{name}:{number}"


def test_instrument_snapshot_is_other(impl: Implementation) -> None:
    (line,) = lines("v2-instrument-snapshot.jsonl")
    assert scan(impl, line) == (OTHER,)


# -- classification -----------------------------------------------------------------------------

V2_SNAPSHOT = lines("docs-v2-book-guide-btcusd.jsonl")[0]
V2_UPDATE = lines("docs-v2-book-reference-maticusd.jsonl")[1]
L3_SNAPSHOT = lines("docs-v2-level3-guide-btcusd.jsonl")[0]
V1_SNAPSHOT = lines("v1-book-xbtusd-depth10.jsonl")[3]
V1_UPDATE_R = lines("v1-book-xbtusd-depth10.jsonl")[6]
V1_TWO_PAYLOADS = next(line for line in lines("v1-book-xbtusd-depth10.jsonl") if b"]]},{" in line)


def test_v2_book_snapshot(impl: Implementation) -> None:
    kind, snapshot, symbol, channel_name, checksum, bids, asks = scan(impl, V2_SNAPSHOT)
    assert (kind, snapshot, symbol, channel_name, checksum) == (
        BOOK,
        True,
        "BTC/USD",
        "",
        3310070434,
    )
    assert len(bids) == len(asks) == 10
    assert bids[0] == Entry("45283.5", "0.10000000")
    assert asks[0] == Entry("45285.2", "0.00100000")
    assert asks[9] == Entry("45299.5", "0.18772827")


def test_v2_book_update_keeps_the_number_text(impl: Implementation) -> None:
    assert scan(impl, V2_UPDATE) == (
        BOOK,
        False,
        "MATIC/USD",
        "",
        2114181697,
        [Entry("0.5657", "1098.3947558")],
        [],
    )


def test_level3_snapshot_and_update(impl: Implementation) -> None:
    kind, snapshot, symbol, _, checksum, bids, asks = scan(impl, L3_SNAPSHOT)
    assert (kind, snapshot, symbol, checksum) == (LEVEL3, True, "BTC/USD", 1063832831)
    assert (len(bids), len(asks)) == (21, 14)
    assert bids[0] == Entry(
        "44939.4",
        "0.88968699",
        order_id="OTCFZG-YOE2Q-LQKNM3",
        event=ADD,
        timestamp="2024-01-08T12:26:39.526146327Z",
    )
    update = (
        '{"channel": "level3", "type": "update", "data": [{"checksum": 2841398499, '
        '"symbol": "MATIC/USD", "bids": [], "asks": [{"event": "delete", '
        '"order_id": "OOIATY-6EIWY-ACVIUN", "limit_price": 0.5636, "order_qty": 302.89736033, '
        '"timestamp": "2023-10-06T18:21:00.097010033Z"}, {"event": "add", '
        '"order_id": "O2BN53-5RSB2-V3J57T", "limit_price": 0.564, "order_qty": 3500.77668626, '
        '"timestamp": "2023-10-06T18:20:27.383408052Z"}, {"event": "modify", '
        '"order_id": "O2BN53-5RSB2-V3J57T", "limit_price": 0.564, "order_qty": 1}]}]}'
    )
    assert scan(impl, update) == (
        LEVEL3,
        False,
        "MATIC/USD",
        "",
        2841398499,
        [],
        [
            Entry(
                "0.5636",
                "302.89736033",
                order_id="OOIATY-6EIWY-ACVIUN",
                event=DELETE,
                timestamp="2023-10-06T18:21:00.097010033Z",
            ),
            Entry(
                "0.564",
                "3500.77668626",
                order_id="O2BN53-5RSB2-V3J57T",
                event=ADD,
                timestamp="2023-10-06T18:20:27.383408052Z",
            ),
            Entry("0.564", "1", order_id="O2BN53-5RSB2-V3J57T", event=MODIFY),
        ],
    )


OTHER_FRAMES = [
    '{"channel":"heartbeat"}',
    '{"channel":"status","type":"update","data":[{"api_version":"v2",'
    '"connection_id":13834774380200032777,"system":"online","version":"2.0.0"}]}',
    '{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,'
    '"symbol":"ALGO/USD"},"success":true,"time_in":"2023-10-06T17:35:55.219022Z",'
    '"time_out":"2023-10-06T17:35:55.219067Z"}',
    '{"error":"Currency pair not supported XBT/USD","method":"subscribe","success":false,'
    '"symbol":"XBT/USD","time_in":"2026-09-25T17:48:54.701041Z",'
    '"time_out":"2026-09-25T17:48:54.701062Z"}',
    '{"method":"pong","req_id":101,"time_in":"2023-09-24T14:10:23.799685Z",'
    '"time_out":"2023-09-24T14:10:23.799703Z"}',
    '{"channel":"instrument","type":"update","data":{"assets":[],"pairs":[]}}',
    '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
    '"price":29430.2,"qty":0.1,"ord_type":"market","trade_id":1,'
    '"timestamp":"2023-07-30T15:30:00.000000Z"}]}',
    '{"channel":"ticker","type":"snapshot","data":[{"symbol":"BTC/USD","bid":1.0}]}',
    '{"channel":"books","type":"snapshot","data":[{"symbol":"BTC/USD"}]}',
    # v1 events
    '{"event":"heartbeat"}',
    '{"connectionID":8628615390848610000,"event":"systemStatus","status":"online",'
    '"version":"1.9.1"}',
    '{"channelID":336,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD",'
    '"status":"subscribed","subscription":{"depth":10,"name":"book"}}',
    '{"event":"pong","reqid":42}',
    '{"errorMessage":"Malformed request","event":"error"}',
    # v1 channels that are not books
    '[0,[["5541.20000","0.15850568","1534614057.321597","s","l",""]],"trade","XBT/USD"]',
    '[0,{"a":["5525.40000",1,"1.000"],"b":["5525.10000",1,"1.000"],"c":["5525.10000",'
    '"0.00398963"],"v":["2634.11501494","3591.17907851"]},"ticker","XBT/USD"]',
    '[0,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],'
    '"spread","XBT/USD"]',
    '[42,["1542057314.748456","1542057360.435743","3586.70000","3586.70000","3586.60000",'
    '"3586.60000","3586.68894","0.03373000",2],"ohlc-5","XBT/USD"]',
    '[1,{"a":[]},"book-10"]',  # too short to be a v1 book frame
    "[]",
    "{}",
    '"book"',
    "42",
    "null",
]


@pytest.mark.parametrize("frame", OTHER_FRAMES)
def test_control_and_other_channel_frames_are_other(impl: Implementation, frame: str) -> None:
    assert scan(impl, frame) == (OTHER,)
    assert scan(impl, frame.encode()) == (OTHER,)


def test_v1_snapshot(impl: Implementation) -> None:
    kind, snapshot, pair, channel_name, checksum, bids, asks = scan(impl, V1_SNAPSHOT)
    assert (kind, snapshot, pair, channel_name, checksum) == (
        V1_BOOK,
        True,
        "XBT/USD",
        "book-10",
        -1,
    )
    assert len(bids) == len(asks) == 10
    assert asks[0] == Entry("27120.00000", "4.28732553", timestamp="1693415327.935623")


def test_v1_republish_flag(impl: Implementation) -> None:
    *_, bids, asks = scan(impl, V1_UPDATE_R)
    assert asks == []
    assert bids == [
        Entry("27117.40000", "0.00000000", timestamp="1693415330.886651"),
        Entry("27116.80000", "0.14741986", timestamp="1693415325.036931", republish=True),
    ]


def test_v1_update_with_two_payloads_reads_both_sides(impl: Implementation) -> None:
    kind, snapshot, pair, channel_name, checksum, bids, asks = scan(impl, V1_TWO_PAYLOADS)
    assert (kind, snapshot, pair, channel_name) == (V1_BOOK, False, "XBT/USD", "book-10")
    message = json.loads(V1_TWO_PAYLOADS)
    assert len(message) == 5
    assert checksum == int(message[2]["c"])
    assert len(asks) == len(message[1]["a"]) and len(bids) == len(message[2]["b"])


@pytest.mark.parametrize(
    "frame",
    [
        '[7,{"a":[["1.5","2.25","1.0"]]},{"b":[["1.0","3.00","2.0","r"]],"c":"123"},"book-25",'
        '"ETH/USD"]',
        '[7,{"a":[["1.5","2.25","1.0"]],"c":"123"},{"b":[["1.0","3.00","2.0","r"]]},"book-25",'
        '"ETH/USD"]',
        '[7,{"a":[["1.5","2.25","1.0"]],"b":[["1.0","3.00","2.0","r"]],"c":"123"},"book-25",'
        '"ETH/USD"]',
        '[7,{"c":"123","b":[["1.0","3.00","2.0","r"]],"a":[["1.5","2.25","1.0"]]},"book-25",'
        '"ETH/USD"]',
        '[7,{"a":[["1.5","2.25","1.0"]]},{"b":[["1.0","3.00","2.0","r"]],"c":123},"book-25",'
        '"ETH/USD"]',
        '[ 7 ,\n { "a" : [ [ "1.5" , "2.25" , "1.0" ] ] } ,\r\n\t{"b":[["1.0","3.00","2.0",'
        '"r"]],"c":"123"} , "book-25" , "ETH/USD" ]\n',
    ],
    ids=["c-last", "c-first", "one-payload", "key-order", "c-unquoted", "whitespace"],
)
def test_v1_checksum_in_either_payload(impl: Implementation, frame: str) -> None:
    assert scan(impl, frame) == (
        V1_BOOK,
        False,
        "ETH/USD",
        "book-25",
        123,
        [Entry("1.0", "3.00", timestamp="2.0", republish=True)],
        [Entry("1.5", "2.25", timestamp="1.0")],
    )


def test_v1_levels_without_timestamp(impl: Implementation) -> None:
    assert scan(impl, '[1,{"a":[["1.5","2.25"]]},"book-10","X/Y"]')[-1] == [Entry("1.5", "2.25")]


def test_v1_book_names_are_keyed_by_channel_name(impl: Implementation) -> None:
    for name in ("book-10", "book-1000", "book-"):
        frame = f'[1,{{"a":[]}},"{name}","X/Y"]'
        assert scan(impl, frame)[:4] == (V1_BOOK, False, "X/Y", name)


def reordered(frame: bytes, order: list[str]) -> str:
    message = json.loads(frame, parse_float=str)
    return "{" + ",".join(f'"{key}":{raw(message[key])}' for key in order) + "}"


def raw(value: Any) -> str:
    # re-encode with numbers kept as their text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{raw(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(raw(v) for v in value) + "]"
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", value):
        return value
    return json.dumps(value)


@pytest.mark.parametrize(
    "order",
    [["data", "channel", "type"], ["type", "data", "channel"], ["data", "type", "channel"]],
)
@pytest.mark.parametrize("frame", [V2_SNAPSHOT, V2_UPDATE, L3_SNAPSHOT])
def test_v2_key_order_does_not_matter(impl: Implementation, frame: bytes, order: list[str]) -> None:
    assert scan(impl, reordered(frame, order)) == scan(impl, frame) == expected_scan(frame)


def test_v2_book_object_key_order_and_extra_keys(impl: Implementation) -> None:
    frame = (
        '{"extra":{"nested":[1,2,{"a":null}]},"data":[{"timestamp":"2023-10-06T17:35:55Z",'
        '"checksum":5,"asks":[{"qty":"2","junk":true,"price":"1"}],"bids":[],"symbol":"A/B",'
        '"more":[]}],"type":"update","channel":"book"}'
    )
    assert scan(impl, frame) == (BOOK, False, "A/B", "", 5, [], [Entry("1", "2")])


@pytest.mark.parametrize("frame", [V2_SNAPSHOT, V2_UPDATE, L3_SNAPSHOT, V1_SNAPSHOT, V1_UPDATE_R])
def test_any_whitespace(impl: Implementation, frame: bytes) -> None:
    pretty = json.dumps(json.loads(frame, parse_float=str), indent="\t")
    pretty = pretty.replace("\n", "\r\n ")
    expected = expected_scan(frame)
    # the pretty copy holds the numbers as strings: the entry texts are the same
    assert scan(impl, pretty) == expected
    assert scan(impl, b"\n \t" + frame + b" \r\n") == expected


@pytest.mark.parametrize("checksum", ["3310070434", '"3310070434"'])
def test_v2_checksum_quoted_or_not(impl: Implementation, checksum: str) -> None:
    frame = V2_SNAPSHOT.decode().replace('"checksum":3310070434', f'"checksum":{checksum}')
    assert scan(impl, frame)[4] == 3310070434


def test_v2_checksum_is_optional(impl: Implementation) -> None:
    frame = '{"channel":"book","type":"update","data":[{"symbol":"A/B","bids":[],"asks":[]}]}'
    assert scan(impl, frame) == (BOOK, False, "A/B", "", -1, [], [])


@pytest.mark.parametrize("checksum", ["0", "4294967295", '"0"', '"4294967295"'])
def test_checksum_bounds(impl: Implementation, checksum: str) -> None:
    frame = f'{{"channel":"book","type":"update","data":[{{"symbol":"A","checksum":{checksum}}}]}}'
    assert scan(impl, frame)[4] == int(checksum.strip('"'))


def test_scanner_is_reusable_and_forgets_the_previous_frame(impl: Implementation) -> None:
    scanner = impl.FrameScanner()
    scanner.scan(V2_SNAPSHOT)
    scanner.scan('{"channel":"heartbeat"}')
    assert scanner.kind == OTHER
    scanner.scan(V2_UPDATE)
    assert scanned(scanner) == expected_scan(V2_UPDATE)
    with pytest.raises(ProtocolError):
        scanner.scan(V2_SNAPSHOT[:-3])
    scanner.scan(V1_UPDATE_R)
    assert scanned(scanner) == expected_scan(V1_UPDATE_R)
    assert (scanner.bid_count, scanner.ask_count) == (2, 0)


def test_timestamp_ns(impl: Implementation) -> None:
    scanner = impl.FrameScanner()
    scanner.scan(V2_UPDATE)
    assert scanner.timestamp_ns == 1_696_613_755_440_295_000  # 2023-10-06T17:35:55.440295Z
    scanner.scan(V1_UPDATE_R)
    assert scanner.timestamp_ns == -1
    scanner.scan(V2_UPDATE.replace(b"2023-10-06T", b"2023-13-06T"))
    with pytest.raises(ProtocolError):
        _ = scanner.timestamp_ns


# -- strings with escapes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            r'{"channel":"book","type":"snapshot","data":[{"symbol":"BTC\/USD","bids":[],'
            r'"asks":[]}]}',
            (BOOK, True, "BTC/USD", "", -1, [], []),
        ),
        (
            r'{"channel":"book","type":"snapshot","data":[{"symbol":"A\u0042","bids":'
            r'[{"price":"\u0031","qty":"2"}],"asks":[]}]}',
            (BOOK, True, "AB", "", -1, [Entry("1", "2")], []),
        ),
        (
            r'[1,{"a":[["1","2","3"]]},"book-10","X\u00e9"]',
            (V1_BOOK, False, "Xé", "book-10", -1, [], [Entry("1", "2", timestamp="3")]),
        ),
        (
            r'{"channel":"bo\u006fk","type":"update","data":[{"symbol":"A"}]}',
            (BOOK, False, "A", "", -1, [], []),
        ),
        (
            r'{"chan\u006eel":"book","type":"update","data":[{"symbol":"A"}]}',
            (BOOK, False, "A", "", -1, [], []),
        ),
    ],
    ids=["escaped-slash", "unicode-escapes", "v1-pair", "escaped-channel", "escaped-key"],
)
def test_escaped_strings_mean_what_json_says(
    impl: Implementation, frame: str, expected: tuple[Any, ...]
) -> None:
    assert scan(impl, frame) == expected == expected_scan(frame)


# -- malformed input ----------------------------------------------------------------------------

TRUNCATION_FRAMES = [
    V2_UPDATE,
    V2_SNAPSHOT,
    V1_SNAPSHOT,
    V1_UPDATE_R,
    V1_TWO_PAYLOADS,
    L3_SNAPSHOT,
    b'{"channel":"status","type":"update","data":[{"api_version":"v2","system":"online"}]}',
    b'{"method":"subscribe","result":{"channel":"book","depth":10,"symbol":"A/B"},"success":true}',
    b'{"event":"heartbeat"}',
]


@pytest.mark.parametrize("index", range(len(TRUNCATION_FRAMES)))
def test_truncated_frames_at_every_byte_offset(impl: Implementation, index: int) -> None:
    frame = TRUNCATION_FRAMES[index]
    scanner = impl.FrameScanner()
    for end in range(len(frame)):
        with pytest.raises(ProtocolError):
            scanner.scan(frame[:end])
    scanner.scan(frame)


def nested(depth: int) -> str:
    return '{"channel":"heartbeat","x":' + "[" * depth + "]" * depth + "}"


MALFORMED_FRAMES = [
    "",
    " ",
    "{",
    "}",
    "[",
    "]",
    '{"channel":"book"',
    '{"channel":"book"]',
    '[1,{"a":[]},"book-10","X"}',
    '{"channel":"book","type":"update","data":[{"symbol":"A"}]]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A"}}',
    '[1,{"a":[["1","2","3"]]},"book-10","X"]]',
    '[1,{"a":[["1","2","3"]},"book-10","X"]',
    # bad escapes, control characters, bad UTF-8
    r'{"channel":"book","type":"update","data":[{"symbol":"A\q"}]}',
    r'{"channel":"book","type":"update","data":[{"symbol":"A\u00G1"}]}',
    r'{"channel":"book","type":"update","data":[{"symbol":"A\u12"}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A\x01"}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A\nB"}]}',
    b'{"channel":"book","type":"update","data":[{"symbol":"A\xff"}]}',
    b'{"channel":"book","type":"update","data":[{"symbol":"A","x\xc3":1}]}',
    b'[1,{"a":[["1","2","1693415333.\xe9"]]},"book-10","X/Y"]',
    b'{"channel":"heartbeat","x":"\xc3\x28"}',
    # trailing garbage
    '{"channel":"heartbeat"} x',
    '{"channel":"heartbeat"}{}',
    '{"channel":"book","type":"update","data":[{"symbol":"A"}]},',
    '[1,{"a":[]},"book-10","X"] ]',
    '"a" "b"',
    # commas and colons
    '{"channel":"book","type":"update","data":[{"symbol":"A"}],}',
    '{"channel":"book",,"type":"update","data":[{"symbol":"A"}]}',
    '{"channel" "book","type":"update","data":[{"symbol":"A"}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[,]}]}',
    '[1,{"a":[]},"book-10","X",]',
    '{channel:"book"}',
    "{'channel':'book'}",
    # literals and numbers that are not JSON
    '{"channel":"heartbeat","x":tru}',
    '{"channel":"heartbeat","x":True}',
    '{"channel":"heartbeat","x":NaN}',
    '{"channel":"heartbeat","x":Infinity}',
    '{"channel":"heartbeat","x":eee}',
    '{"channel":"heartbeat","x":+1}',
    '{"channel":"heartbeat","x":.5}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","checksum":01}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[{"price":01,"qty":1}]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[{"price":1.,"qty":1}]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[{"price":1,"qty":-}]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","x":1.5.5}]}',
    '[0336,{"a":[]},"book-10","X"]',
    # nesting
    nested(100),
    nested(100_000),
    "[" * 100_000,
]


def frame_id(frame: str | bytes) -> str:
    text = frame if isinstance(frame, str) else frame.decode("latin-1")
    return text if len(text) < 80 else f"{text[:30]}...({len(text)} chars)"


@pytest.mark.parametrize("frame", MALFORMED_FRAMES, ids=frame_id)
def test_malformed_json_is_a_protocol_error(impl: Implementation, frame: str | bytes) -> None:
    scanner = impl.FrameScanner()
    with pytest.raises(ProtocolError):
        scanner.scan(frame)
    # the scanner stays usable
    scanner.scan(V2_UPDATE)
    assert scanned(scanner) == expected_scan(V2_UPDATE)


BAD_SHAPES = [
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[{"qty":"1"}]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[{"price":"1"}]}]}',
    '{"channel":"book","type":"update","data":[{"bids":[]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":5}]}',
    '{"channel":"book","type":"update"}',
    '{"channel":"book","type":"update","data":[]}',
    '{"channel":"book","type":"update","data":{}}',
    '{"channel":"book","type":"update","data":[{"symbol":"A"},{"symbol":"B"}]}',
    '{"channel":"book","type":"update","data":[5]}',
    '{"channel":"book","data":[{"symbol":"A"}]}',
    '{"channel":"book","type":"snap","data":[{"symbol":"A"}]}',
    '{"channel":"book","type":5,"data":[{"symbol":"A"}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":"x"}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[5]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[{"price":true,"qty":"2"}]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[{"price":null,"qty":"2"}]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[{"price":[1],"qty":"2"}]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","bids":[{"price":{},"qty":"2"}]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","timestamp":5}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","checksum":-1}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","checksum":4294967296}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","checksum":1.5}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","checksum":1e3}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","checksum":"x"}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","checksum":""}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","checksum":null}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"A","checksum":true}]}',
    '{"channel":"level3","type":"update","data":[{"symbol":"A","bids":[{"order_id":"O",'
    '"limit_price":1,"order_qty":1}]}]}',
    '{"channel":"level3","type":"update","data":[{"symbol":"A","bids":[{"order_id":"O",'
    '"limit_price":1,"order_qty":1,"event":"amend"}]}]}',
    '{"channel":"level3","type":"snapshot","data":[{"symbol":"A","bids":[{"order_id":"",'
    '"limit_price":1,"order_qty":1}]}]}',
    '{"channel":"level3","type":"snapshot","data":[{"symbol":"A","bids":[{"limit_price":1,'
    '"order_qty":1}]}]}',
    '[1,{"a":[["1",2,"3"]]},"book-10","X"]',
    '[1,{"a":[["1"]]},"book-10","X"]',
    '[1,{"a":[["1","2","3","q"]]},"book-10","X"]',
    '[1,{"a":[["1","2","3","r","r"]]},"book-10","X"]',
    '[1,{"a":"x"},"book-10","X"]',
    '[1,{"a":[5]},"book-10","X"]',
    '[1,{"x":[]},"book-10","X"]',
    '[1,[],"book-10","X"]',
    '[1,{"as":[["1","2","3"]],"b":[]},"book-10","X"]',
    '[1,{"a":[],"c":"-1"},"book-10","X"]',
    '[1,{"a":[],"c":"4294967296"},"book-10","X"]',
    '[1,{"a":[],"c":"12a"},"book-10","X"]',
    '[1,{"a":[],"c":[]},"book-10","X"]',
]


@pytest.mark.parametrize("frame", BAD_SHAPES)
def test_book_frames_with_a_bad_shape_are_protocol_errors(impl: Implementation, frame: str) -> None:
    with pytest.raises(ProtocolError):
        impl.FrameScanner().scan(frame)


def test_shape_errors_name_the_field(impl: Implementation) -> None:
    scanner = impl.FrameScanner()
    bad_qty = '{"channel":"book","type":"update","data":[{"symbol":"A/B","bids":[{"price":"1"}]}]}'
    with pytest.raises(ProtocolError, match=r"A/B.*bids\[0\].*qty"):
        scanner.scan(bad_qty)
    bad_checksum = '{"channel":"book","type":"update","data":[{"symbol":"A/B","checksum":-1}]}'
    with pytest.raises(ProtocolError, match="checksum"):
        scanner.scan(bad_checksum)
    bad_flag = '[1,{"b":[["1","2","3","x"]]},"book-10","X/Y"]'
    with pytest.raises(ProtocolError, match="X/Y"):
        scanner.scan(bad_flag)


# -- differential fuzz --------------------------------------------------------------------------

COMPILED = implementation("cython")
REFERENCE = implementation("python")


def _pool() -> list[bytes]:
    pool: list[bytes] = []
    for name in FIXTURE_FILES:
        frames = lines(name)
        pool.extend(frames[:40])
    return pool


POOL = _pool()
SIGNIFICANT = b'{}[]:,"\\ \n\t0123456789.-+eEtfnr'
KEYS = [
    b"price", b"qty", b"symbol", b"bids", b"asks", b"checksum", b"channel", b"type", b"data",
    b"a", b"b", b"as", b"bs", b"c", b"order_id", b"limit_price", b"order_qty", b"event",
    b"timestamp", b"book", b"level3", b"snapshot", b"update", b"r", b"book-10", b"Price", b"x",
]  # fmt: skip
TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null')
KEY = re.compile(rb'"([A-Za-z_0-9\-/]+)"')


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(st.sampled_from(POOL)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "rename", "swap"]))
        if kind == "flip":
            at = draw(st.integers(0, len(frame) - 1))
            frame[at] = draw(st.one_of(st.integers(0, 255), st.sampled_from(list(SIGNIFICANT))))
        elif kind == "delete":
            at = draw(st.integers(0, len(frame) - 1))
            del frame[at : at + draw(st.integers(1, 3))]
        elif kind == "insert":
            at = draw(st.integers(0, len(frame)))
            frame[at:at] = bytes([draw(st.sampled_from(list(SIGNIFICANT)))])
        elif kind == "rename":
            keys = list(KEY.finditer(bytes(frame)))
            if keys:
                key = draw(st.sampled_from(keys))
                frame[key.start(1) : key.end(1)] = draw(st.sampled_from(KEYS))
        else:
            tokens = list(TOKEN.finditer(bytes(frame)))
            if len(tokens) >= 2:
                first, second = sorted(
                    draw(st.lists(st.sampled_from(tokens), min_size=2, max_size=2, unique=True)),
                    key=lambda token: token.start(),
                )
                if first.end() <= second.start():
                    text = bytes(frame)
                    frame = bytearray(
                        text[: first.start()]
                        + second.group()
                        + text[first.end() : second.start()]
                        + first.group()
                        + text[second.end() :]
                    )
        if not frame:
            frame = bytearray(b"{")
    return bytes(frame)


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _DuplicateKey
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def json_status(frame: bytes) -> str:
    """ "valid", "invalid", or "duplicate" (an object repeats a key: json.loads keeps the last
    value, the compiled scanner may read the first; both are defensible, so it is left out)."""
    try:
        json.loads(frame, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _DuplicateKey:
        return "duplicate"
    except (ValueError, RecursionError):
        return "invalid"
    return "valid"


def outcome(impl: Implementation, frame: bytes) -> tuple[Any, ...]:
    scanner = impl.FrameScanner()
    try:
        scanner.scan(frame)
        return scanned(scanner)
    except ProtocolError:
        return ("ProtocolError",)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(frame=mutated_frames())
def test_fuzz_valid_json_mutations_agree(frame: bytes) -> None:
    """Mutations that stay strictly valid JSON (ASCII, no escapes): same reading in both."""
    assume(frame.isascii() and b"\\" not in frame and json_status(frame) == "valid")
    assert outcome(COMPILED, frame) == outcome(REFERENCE, frame)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=mutated_frames())
def test_fuzz_any_mutation_agrees(frame: bytes) -> None:
    """Any mutation: the same ProtocolError or the same reading; never another exception."""
    assume(json_status(frame) != "duplicate")
    assert outcome(COMPILED, frame) == outcome(REFERENCE, frame)
