"""Exact number and timestamp parsing: the reference (``bookengine.numbers``,
``bookengine.timestamps``) and the compiled parsers (``bookengine._core.scan``) follow the same
rules and agree on every input, value for value and error for error."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bookengine._core.scan import parse_number, parse_timestamp
from bookengine.errors import PrecisionError, ProtocolError
from bookengine.numbers import mantissa_text, parse_mantissa
from bookengine.timestamps import parse_rfc3339_ns

INT64_MAX = (1 << 63) - 1

Parser = Callable[[str, int], int]
PARSERS: dict[str, Parser] = {"python": parse_mantissa, "cython": parse_number}


@pytest.fixture(params=sorted(PARSERS))
def parse(request: pytest.FixtureRequest) -> Parser:
    """Each number parser: the reference ``parse_mantissa`` and the compiled ``parse_number``."""
    return PARSERS[request.param]


def outcome(parser: Callable[..., int], *args: object) -> tuple[str, object]:
    """("ok", value) or (exception type name, message)."""
    try:
        return "ok", parser(*args)
    except Exception as exc:
        return type(exc).__name__, str(exc)


# -- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        # missing trailing zeros (v2 wire: 0.001, 4.0 at qty precision 8)
        ("0.001", 8, 100_000),
        ("4.0", 8, 400_000_000),
        ("4", 8, 400_000_000),
        ("29430.2", 1, 294_302),
        ("0.5", 4, 5_000),
        # extra zeros beyond the scale are fine: only a nonzero digit would need rounding
        ("4.0", 0, 4),
        ("1.50000000000", 8, 150_000_000),
        ("0.0", 0, 0),
        ("0.00000000000000000000", 2, 0),
        ("00012", 0, 12),
        ("007.50", 1, 75),
        # exponent notation
        ("5.325e-05", 8, 5_325),
        ("1E-8", 8, 1),
        ("1e-8", 10, 100),
        ("1e+2", 0, 100),
        ("1e2", 0, 100),
        ("1.23E+2", 0, 123),
        ("123e-2", 2, 123),
        ("294302e-1", 1, 294_302),
        ("1e-0008", 8, 1),
        ("1e0", 0, 1),
        ("10e-1", 0, 1),
        ("0.0000000000000000000001e22", 0, 1),
        ("0e999999999", 0, 0),
        ("0e-999999999", 0, 0),
        ("0.000e5", 3, 0),
        # bounds of int64 and of the scale
        ("9223372036854775807", 0, INT64_MAX),
        ("922337203685477580.7", 1, INT64_MAX),
        ("9.223372036854775807", 18, INT64_MAX),
        ("92233720368547758070e-1", 0, INT64_MAX),
        ("1", 18, 10**18),
        ("0.000000000000000001", 18, 1),
    ],
)
def test_exact_values(parse: Parser, text: str, scale: int, expected: int) -> None:
    assert parse(text, scale) == expected
    assert parse(text.encode(), scale) == expected


def test_reference_accepts_decimal_and_int() -> None:
    assert parse_mantissa(Decimal("29430.20"), 1) == 294_302
    assert parse_mantissa(Decimal("1E-8"), 8) == 1
    assert parse_mantissa(29430, 1) == 294_300
    assert parse_mantissa(0, 8) == 0


@pytest.mark.parametrize("value", [1.5, 0.1, 4.0, float("nan"), True, False, None, [1], {"a": 1}])
def test_floats_and_other_types_are_refused_with_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        parse_mantissa(value, 8)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-1"), -1])
def test_reference_refuses_non_finite_and_negative_objects(value: object) -> None:
    with pytest.raises(PrecisionError):
        parse_mantissa(value, 8)  # type: ignore[arg-type]


# -- rejections ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        ("0.001", 2),
        ("29430.25", 1),
        ("1.5", 0),
        ("0.000000001", 8),
        ("5.325e-05", 7),
        ("1E-8", 7),
        ("1e-19", 18),
        ("123e-3", 2),
        ("1.0000000000000000001", 18),
    ],
)
def test_more_significant_digits_than_the_scale(parse: Parser, text: str, scale: int) -> None:
    with pytest.raises(PrecisionError, match="fractional digits"):
        parse(text, scale)


@pytest.mark.parametrize("text", ["-1", "-0.0", "-0", "-1e-5", "-5.325e-05"])
def test_negative_values(parse: Parser, text: str) -> None:
    with pytest.raises(PrecisionError, match="negative"):
        parse(text, 8)


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        ("9223372036854775808", 0),
        ("9223372036854775807", 1),  # the scale pushes it over
        ("922337203685477580.8", 1),
        ("9.223372036854775808", 18),
        ("10", 18),
        ("1e19", 0),
        ("1e18", 1),
        ("99999999999999999999", 0),
        ("123456789012345678901234567890", 0),
        ("1e1000000", 0),
    ],
)
def test_int64_overflow(parse: Parser, text: str, scale: int) -> None:
    with pytest.raises(PrecisionError, match="overflow"):
        parse(text, scale)


MALFORMED = [
    ".5",
    "5.",
    "1e",
    "1e+",
    "1e-",
    "+1",
    "0x10",
    "",
    " 1",
    "1 ",
    "1\n",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "-",
    "--1",
    "1..2",
    "1.2.3",
    "1e2e3",
    "1e2.5",
    "1_000",
    "1,5",
    "e5",
    ".",
    "١",  # an Arabic-Indic digit: not ASCII
    "1٥",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_text(parse: Parser, text: str) -> None:
    with pytest.raises(PrecisionError, match="not a decimal number"):
        parse(text, 8)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("1e-999999999999999999999", "fractional digits"),
        ("1e99999999999999999", "overflow"),
        ("1e-99999999999999999999999999999999999999999999999999", "fractional digits"),
        ("5e+9999999999999999999999999999999999999999999999999", "overflow"),
        ("1" + "0" * 30 + "e-9999999999999", "fractional digits"),
    ],
)
def test_huge_exponents_fail_fast(parse: Parser, text: str, error: str) -> None:
    start = time.perf_counter()
    with pytest.raises(PrecisionError, match=error):
        parse(text, 8)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        # Long texts are legal JSON numbers; past Python's 4300-digit int() limit they must
        # still give a value or a PrecisionError, never a ValueError.
        ("0" * 5000 + "1", 0, 1),
        ("1." + "0" * 5000, 8, 100_000_000),
        ("1" + "0" * 5000 + "e-5000", 0, 1),
        ("0." + "0" * 5000, 8, 0),
        ("0." + "0" * 5000 + "1", 8, PrecisionError),
        ("1" * 5000, 0, PrecisionError),
    ],
    ids=["leading-zeros", "trailing-zeros", "exponent-back", "zero", "too-precise", "overflow"],
)
def test_very_long_number_text(parse: Parser, text: str, scale: int, expected: object) -> None:
    if expected is PrecisionError:
        with pytest.raises(PrecisionError):
            parse(text, scale)
    else:
        assert parse(text, scale) == expected


def test_errors_name_the_value() -> None:
    with pytest.raises(PrecisionError, match=r"bids\[3\]\.qty.*'0\.001'"):
        parse_mantissa("0.001", 2, "bids[3].qty")


def test_compiled_error_messages_equal_the_reference_for_non_ascii_text() -> None:
    # The compiled parser decodes the text with errors="replace" before building the message.
    for text in ["1٥", "١", "0.5€"]:
        assert outcome(parse_number, text, 8) == outcome(parse_mantissa, text, 8)


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        ("9223372036854775807", 0),  # 19 digits, INT64_MAX: the one-pass path's longest
        ("9223372036854775808", 0),
        ("922337203685477580.7", 1),
        ("92233720368547758.08", 2),
        ("922337203685477580", 1),
        ("1", 18),
        ("10", 18),
        ("9.22337203685477580", 18),
        ("9.22337203685477581", 18),
        ("1.10", 1),
        ("1.11", 1),
        ("1.1000000000000000", 1),
        ("0.000000000000000001", 18),
        ("0.00000000", 8),
        ("00.5", 1),
        ("5.", 1),
        (".5", 1),
        ("1.2.3", 2),
        ("1e3", 0),
        ("12", 0),
    ],
)
def test_one_pass_and_general_number_paths_agree_at_the_edges(text: str, scale: int) -> None:
    """The compiled parser reads short plain numbers in one pass and hands the rest on."""
    assert outcome(parse_number, text, scale) == outcome(parse_mantissa, text, scale)


# -- differential (hypothesis) ------------------------------------------------------------------

digits = st.text("0123456789", min_size=1, max_size=25)


@st.composite
def number_texts(draw: st.DrawFn) -> str:
    """Texts of the grammar ``-? DIGIT+ (. DIGIT+)? ([eE] [+-]? DIGIT+)?``, plus near misses."""
    text = draw(st.sampled_from(["", "", "", "-"])) + draw(digits)
    if draw(st.booleans()):
        text += "." + draw(digits)
    if draw(st.booleans()):
        exponent = draw(
            st.one_of(
                st.integers(0, 40).map(str),
                st.integers(0, 10**25).map(str),
                st.text("0", max_size=3).map(lambda zeros: zeros + "1"),
            )
        )
        text += draw(st.sampled_from("eE")) + draw(st.sampled_from(["", "+", "-"])) + exponent
    if draw(st.integers(0, 9)) == 0:
        # a near miss: one character inserted, dropped or replaced
        position = draw(st.integers(0, len(text)))
        mutation = draw(st.sampled_from(["insert", "drop", "replace"]))
        char = draw(st.sampled_from(list("0123456789.eE+- x")))
        if mutation == "insert":
            text = text[:position] + char + text[position:]
        elif mutation == "drop":
            text = text[:position] + text[position + 1 :]
        else:
            text = text[:position] + char + text[position + 1 :]
    return text


def assert_same(text: str | bytes, scale: int) -> None:
    reference = outcome(parse_mantissa, text, scale)
    compiled = outcome(parse_number, text, scale)
    assert compiled == reference, (text, scale)


@settings(max_examples=1500, deadline=None)
@given(text=number_texts(), scale=st.integers(0, 18))
@example(text="9223372036854775807", scale=0)
@example(text="9223372036854775808", scale=0)
@example(text="5.325e-05", scale=8)
@example(text="1e-0000000000000000000000000000001", scale=1)
def test_grammar_texts_agree(text: str, scale: int) -> None:
    assert_same(text, scale)
    assert_same(text.encode(), scale)


@settings(max_examples=1000, deadline=None)
@given(text=st.text(alphabet="0123456789.eE+-x ,", max_size=30), scale=st.integers(0, 18))
def test_ascii_texts_agree(text: str, scale: int) -> None:
    assert_same(text, scale)


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=20), scale=st.integers(0, 18))
def test_any_text_gives_the_same_error_type(text: str, scale: int) -> None:
    # Messages of non-ASCII texts are compared in
    # test_compiled_error_messages_equal_the_reference_for_non_ascii_text.
    reference = outcome(parse_mantissa, text, scale)
    compiled = outcome(parse_number, text, scale)
    if text.isascii():
        assert compiled == reference
    else:
        assert compiled[0] == reference[0]


@settings(max_examples=500, deadline=None)
@given(raw=st.binary(max_size=20), scale=st.integers(0, 18))
def test_any_bytes_agree(raw: bytes, scale: int) -> None:
    assert_same(raw, scale)


@settings(max_examples=1000, deadline=None)
@given(mantissa=st.integers(0, INT64_MAX), scale=st.integers(0, 18))
def test_mantissa_text_round_trip(mantissa: int, scale: int) -> None:
    text = mantissa_text(mantissa, scale)
    whole, _, fraction = text.partition(".")
    assert len(fraction) == scale
    assert int(whole + fraction) == mantissa
    assert parse_mantissa(text, scale) == mantissa
    assert parse_number(text, scale) == mantissa
    # the same value without its trailing zeros, and with extra ones
    trimmed = text.rstrip("0").rstrip(".") if "." in text else text
    assert parse_number(trimmed or "0", scale) == mantissa
    assert parse_number(text + ("0" if scale else ".0"), scale) == mantissa
    assert parse_number(f"{mantissa}e-{scale}", scale) == mantissa


@settings(max_examples=500, deadline=None)
@given(value=st.decimals(allow_nan=False, allow_infinity=False, places=6), scale=st.integers(0, 18))
def test_decimal_values_agree_with_their_text(value: Decimal, scale: int) -> None:
    text = format(value, "f")
    assert outcome(parse_mantissa, value, scale)[0] == outcome(parse_number, text, scale)[0]


# -- timestamps ---------------------------------------------------------------------------------

TIMESTAMP_PARSERS: dict[str, Callable[[str], int]] = {
    "python": parse_rfc3339_ns,
    "cython": parse_timestamp,
}


@pytest.fixture(params=sorted(TIMESTAMP_PARSERS))
def parse_ts(request: pytest.FixtureRequest) -> Callable[[str], int]:
    return TIMESTAMP_PARSERS[request.param]


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def expected_ns(moment: datetime, nanos: int, offset_minutes: int) -> int:
    """ns since the epoch of local wall time ``moment`` at UTC offset ``offset_minutes``."""
    delta = moment.replace(tzinfo=timezone.utc) - EPOCH - timedelta(minutes=offset_minutes)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + nanos


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2024-01-08T12:26:39.526146327Z", 1_704_716_799_526_146_327),
        ("2023-10-06T17:35:55.440295Z", 1_696_613_755_440_295_000),
        ("2023-10-06T17:35:55.4Z", 1_696_613_755_400_000_000),
        ("2023-10-06t17:35:55z", 1_696_613_755_000_000_000),
        ("2023-10-06T19:35:55+02:00", 1_696_613_755_000_000_000),
        ("2023-10-06T12:05:55-05:30", 1_696_613_755_000_000_000),
        ("1969-12-31T23:59:59.5Z", -500_000_000),
        ("2262-04-11T23:47:16.854775807Z", INT64_MAX),
    ],
)
def test_known_timestamps(parse_ts: Callable[[str], int], text: str, expected: int) -> None:
    assert parse_ts(text) == expected


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    moment=st.datetimes(min_value=datetime(1678, 1, 2), max_value=datetime(2262, 4, 10)),
    nanos=st.integers(0, 999_999_999),
    fraction_digits=st.integers(0, 9),
    offset_minutes=st.integers(-(23 * 60 + 59), 23 * 60 + 59),
    zulu=st.booleans(),
    separator=st.sampled_from("Tt "),
)
def test_timestamps_agree_with_an_independent_computation(
    moment: datetime,
    nanos: int,
    fraction_digits: int,
    offset_minutes: int,
    zulu: bool,
    separator: str,
) -> None:
    moment = moment.replace(microsecond=0)
    nanos = nanos // 10 ** (9 - fraction_digits) * 10 ** (9 - fraction_digits)
    if zulu:
        offset_minutes = 0
        zone = "Z"
    else:
        sign = "+" if offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        zone = f"{sign}{hours:02d}:{minutes:02d}"
    fraction = f".{nanos:09d}"[: fraction_digits + 1] if fraction_digits else ""
    text = f"{moment:%Y-%m-%d}{separator}{moment:%H:%M:%S}{fraction}{zone}"
    expected = expected_ns(moment, nanos, offset_minutes)
    assume(-(1 << 63) <= expected <= INT64_MAX)
    assert parse_rfc3339_ns(text) == expected
    assert parse_timestamp(text) == expected


MALFORMED_TIMESTAMPS = [
    # syntax
    "",
    "2024-01-08T12:26:39",
    "2024-01-08T12:26:39.Z",
    "2024-01-08T12:26:39.1234567890Z",
    "2024-01-08T12:26:39+0100",
    "2024-01-08T12:26:39+01",
    "2024-01-08T12:26:39+01:00:00",
    "2024-01-08T12:26:39 Z",
    "2024-01-08T12:26:39Z ",
    " 2024-01-08T12:26:39Z",
    "2024-1-08T12:26:39Z",
    "2024-01-08X12:26:39Z",
    "2024/01/08T12:26:39Z",
    "24-01-08T12:26:39Z",
    "2024-01-08T12:26Z",
    "1704716799",
    "2024-01-08T12:26:39.5.5Z",
    "２０２４-01-08T12:26:39Z",  # fullwidth digits
    "2024-01-08T12:26:39.１Z",
    # RFC 3339 ranges: month 01-12, day by month, hour 00-23, minute 00-59, second 00-60,
    # offset hour 00-23 and minute 00-59
    "2024-13-01T00:00:00Z",
    "2024-00-01T00:00:00Z",
    "2024-01-32T00:00:00Z",
    "2024-01-00T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2024-01-08T24:00:00Z",
    "2024-01-08T12:60:00Z",
    "2024-01-08T12:00:61Z",
    "2024-01-08T12:00:00+24:00",
    "2024-01-08T12:00:00+01:60",
    # not representable as int64 ns since the epoch
    "2262-04-11T23:47:16.854775808Z",
    "9999-12-31T23:59:59.999999999Z",
    "0000-01-01T00:00:00Z",
    "1677-09-21T00:12:43.145224191Z",
]


@pytest.mark.parametrize("text", MALFORMED_TIMESTAMPS)
def test_malformed_timestamps_are_rejected(parse_ts: Callable[[str], int], text: str) -> None:
    with pytest.raises(ProtocolError, match="RFC 3339"):
        parse_ts(text)


def test_leap_second_day_is_valid_in_both() -> None:
    # RFC 3339 allows second 60; both read it as the next second, as calendar.timegm does.
    text = "2016-12-31T23:59:60Z"
    expected = calendar.timegm((2017, 1, 1, 0, 0, 0, 0, 0, 0)) * 1_000_000_000
    assert parse_rfc3339_ns(text) == expected
    assert parse_timestamp(text) == expected
