"""The compiled L3 book's fast paths for numbers and timestamps against the scanner's parsers.

``l3book._parse_numbers`` returns what the book's fast number path gives (None where it defers
to ``scan.parse_mantissa``); ``l3book._parse_timestamps`` runs a sequence through the book's
timestamp path (day cache, fast path, general parser). Wherever the fast paths answer, they
must answer exactly as ``bookengine._core.scan`` does; and they must answer for the shapes
Kraken sends, or they are not fast paths.
"""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bookengine.errors import PrecisionError, ProtocolError

pytestmark = pytest.mark.skipif(
    os.environ.get("BOOKENGINE_PURE") == "1", reason="compiled core not under test"
)


def scan_number(text: bytes, scale: int) -> int | None:
    from bookengine._core.scan import parse_number

    try:
        return parse_number(text, scale)
    except PrecisionError:
        return None


def scan_timestamp(text: bytes) -> int | None:
    from bookengine._core.scan import parse_timestamp

    try:
        return parse_timestamp(text)
    except (ProtocolError, UnicodeDecodeError):
        return None


def fast_number(text: bytes, scale: int) -> int | None:
    from bookengine._core import l3book

    result: int | None = l3book._parse_numbers([text], scale)[0]
    return result


# -- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        (b"60004", 1),
        (b"60000.1", 1),
        (b"0.4348292", 8),
        (b"0.23822648", 8),
        (b"1.33806562", 8),
        (b"0", 0),
        (b"0.0", 8),
        (b"007.50", 2),
        (b"999999999999999999", 0),  # 18 digits: the fast path's bound
        (b"9999999999.99999999", 8),
    ],
)
def test_kraken_shaped_numbers_take_the_fast_path(text: bytes, scale: int) -> None:
    assert fast_number(text, scale) is not None
    assert fast_number(text, scale) == scan_number(text, scale)


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        (b"", 8),
        (b"1e5", 0),
        (b"1.5E-3", 8),
        (b"-1", 0),
        (b"+1", 0),
        (b".5", 1),
        (b"5.", 1),
        (b"1.23", 1),  # too precise, or trailing zeros: the general parser decides
        (b"1.230", 2),
        (b"9223372036854775807", 0),  # 19 digits
        (b"1 ", 0),
        (b"1\\u0030", 0),
    ],
)
def test_other_numbers_are_deferred(text: bytes, scale: int) -> None:
    assert fast_number(text, scale) is None


@pytest.mark.parametrize("bad", [b"/", b":", b".", b"\x00", b"\xff", b"a", b" ", b"\xb0"])
def test_a_non_digit_anywhere_in_a_fraction_is_refused(bad: bytes) -> None:
    """Fractions of 1 to 8 digits are read 8 bytes at a time: each position is checked."""
    for whole in (b"0", b"1234567"):
        for digits in range(1, 9):
            fraction = b"123456789"[:digits]
            for position in range(digits):
                text = whole + b"." + fraction[:position] + bad + fraction[position + 1 :]
                assert fast_number(text, 8) is None, text
            assert fast_number(whole + b"." + fraction, 8) == scan_number(
                whole + b"." + fraction, 8
            )


number_texts = st.builds(
    lambda whole, point, fraction: whole + (b"." + fraction if point else b""),
    st.binary(max_size=21).map(lambda raw: bytes(48 + b % 10 for b in raw)),
    st.booleans(),
    st.binary(max_size=21).map(lambda raw: bytes(48 + b % 10 for b in raw)),
)


@settings(max_examples=1500, deadline=None)
@given(text=st.one_of(number_texts, st.binary(max_size=24)), scale=st.integers(0, 18))
@example(text=b"99999999999999999.9", scale=1)
@example(text=b"999999999999999999.9", scale=1)
@example(text=b"18446744073709551616", scale=0)  # wraps uint64 while reading: refused
def test_fast_numbers_agree_with_the_scanner(text: bytes, scale: int) -> None:
    fast = fast_number(text, scale)
    if fast is not None:
        assert fast == scan_number(text, scale)


# -- timestamps ---------------------------------------------------------------------------------


def fast_timestamps(texts: list[bytes]) -> list[int | None]:
    from bookengine._core import l3book

    result: list[int | None] = l3book._parse_timestamps(texts)
    return result


def test_a_stream_of_timestamps_agrees() -> None:
    texts = [
        b"2024-01-08T12:26:39.526146327Z",  # fills the day cache
        b"2024-01-08T12:26:39.526146327Z",
        b"2024-01-08T00:00:00Z",
        b"2024-01-08T23:59:60.999999999Z",  # leap second
        b"2024-01-08T23:59:59.5Z",
        b"2024-01-08t23:59:59.5Z",
        b"2024-01-08 23:59:59.5Z",
        b"2024-01-08T23:59:59.5z",
        b"2024-01-08T23:59:59.5+01:00",
        b"2024-01-08T24:00:00Z",
        b"2024-01-08T23:60:00Z",
        b"2024-01-08T23:00:61Z",
        b"2024-01-08T2a:00:00Z",
        b"2024-01-08T12:26:39.Z",
        b"2024-01-08T12:26:39.1234567890Z",
        b"2024-01-08T12:26:39,5Z",
        b"2024-01-08T12:26:39.5xZ",
        b"2024-01-09T00:00:00.000000001Z",  # next day: the cache moves
        b"2024-01-08T12:26:39Z",
        b"2262-04-11T23:47:16.854775807Z",  # int64's last ns: never from the cache
        b"2262-04-11T23:47:16.854775808Z",
        b"1677-09-21T00:12:43.145224192Z",
        b"1677-09-21T00:12:43.145224191Z",
        b"2024-02-30T00:00:00Z",
        b"2024-02-29T00:00:00Z",
    ]
    expected = [scan_timestamp(text) for text in texts]
    assert fast_timestamps(texts) == expected
    assert expected[1] is not None and expected[9] is None


@pytest.mark.parametrize("bad", [b"/", b":", b".", b"\x00", b"\xff", b"a", b"Z"])
def test_a_non_digit_anywhere_in_a_timestamp_fraction_is_refused(bad: bytes) -> None:
    day = b"2024-01-08T12:26:39"
    for digits in range(1, 10):
        fraction = b"123456789"[:digits]
        texts = [day + b"." + fraction + b"Z"]  # fills the day cache
        for position in range(digits):
            texts.append(day + b"." + fraction[:position] + bad + fraction[position + 1 :] + b"Z")
        assert fast_timestamps(texts) == [scan_timestamp(text) for text in texts]
        assert fast_timestamps(texts)[0] is not None
        assert fast_timestamps(texts)[1:] == [None] * digits


timestamp_parts = st.tuples(
    st.datetimes(min_value=datetime(1678, 1, 1), max_value=datetime(2262, 12, 31)).map(
        lambda moment: moment.strftime("%Y-%m-%d")
    ),
    st.sampled_from(["T", "T", "T", "t", " ", "X"]),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.text("0123456789", max_size=11),
    st.sampled_from([".", ".", ",", ""]),
    st.sampled_from(["Z", "Z", "Z", "z", "+01:00", "-23:59", "", "ZZ"]),
)


def render(parts: tuple[str, str, int, int, int, str, str, str]) -> bytes:
    day, separator, hour, minute, second, fraction, point, zone = parts
    text = f"{day}{separator}{hour:02d}:{minute:02d}:{second:02d}"
    if point:
        text += point + fraction
    return (text + zone).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.lists(
        st.one_of(timestamp_parts.map(render), st.binary(min_size=18, max_size=32)),
        min_size=1,
        max_size=12,
    )
)
def test_timestamp_streams_agree_with_the_scanner(stream: list[bytes]) -> None:
    # Repeat the stream: the second pass runs on whatever day the first one cached.
    texts = stream + stream
    assert fast_timestamps(texts) == [scan_timestamp(text) for text in texts]
