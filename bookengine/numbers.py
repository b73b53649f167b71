"""Exact decimal numbers as int64 mantissas at a fixed scale.

A price or quantity ``x`` at scale ``s`` is held as the integer ``m = x * 10**s``. The grammar
accepted for number text (JSON numbers, or strings holding one) is::

    NUMBER := DIGIT+ ('.' DIGIT+)? ([eE] [+-]? DIGIT+)?

Rules (the compiled scanner implements the same ones; differential tests hold them together):

* a leading ``-`` is rejected as a negative value (Kraken never sends one);
* trailing zeros may be missing (``0.001`` at scale 8) or extra (``4.0`` at scale 0): only a
  nonzero digit beyond the scale is an error, because only that would need rounding;
* exponent notation is normal input (``5.325e-05``, ``1E-8``);
* a result above ``2**63 - 1`` is an overflow error, never wrapped.

This module is pure Python and off the hot path: the reference implementation, the simulator
and the display helpers use it.
"""

from __future__ import annotations

import re
from decimal import Decimal

from .errors import PrecisionError

INT64_MAX = (1 << 63) - 1
MAX_SCALE = 18
"""Largest scale a book accepts: 10**18 still fits int64, and Kraken uses at most 10."""

_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?", re.ASCII)

NumberLike = str | bytes | int | Decimal


def check_scale(scale: int, what: str = "scale") -> int:
    """Return ``scale`` if it is an int in ``0..MAX_SCALE``.

    Raises:
        PrecisionError: if it is not.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= MAX_SCALE:
        raise PrecisionError(f"{what} must be an integer from 0 to {MAX_SCALE}, got {scale!r}")
    return scale


def parse_mantissa(value: NumberLike, scale: int, what: str = "value") -> int:
    """Turn a decimal number into its exact int64 mantissa at ``scale``.

    Args:
        value: number text (``str`` or ``bytes``), a ``Decimal``, or an ``int`` (a whole value,
            not a mantissa). Floats are refused: they cannot be trusted to be exact.
        scale: fractional digits of the mantissa.
        what: how to name the value in an error (e.g. ``"bids[3].qty"``).

    Returns:
        ``value * 10**scale`` as an int in ``0 .. 2**63 - 1``.

    Raises:
        PrecisionError: for malformed text, a negative value, a nonzero digit beyond ``scale``
            or int64 overflow.
        TypeError: for floats and other types.
    """
    if isinstance(value, bool | float):
        raise TypeError(
            f"{what}: {type(value).__name__} {value!r} is not exact; pass the number text "
            "(e.g. json.loads(..., parse_float=str)), a Decimal or an int"
        )
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise PrecisionError(f"{what}: {value} is not a finite number")
        text = format(value, "f")
    elif isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    else:
        raise TypeError(f"{what}: expected number text, Decimal or int, got {type(value).__name__}")
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise PrecisionError(f"{what}: {text[:40]!r} is not a decimal number")
    sign, whole, fraction, exponent = match.groups()
    if sign:
        raise PrecisionError(f"{what}: negative value {text!r}")
    fraction = fraction or ""
    # Work on the significant digits only: value = int(significant) * 10**(shift - scale).
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return 0
    significant = digits.rstrip("0")
    exponent_value = 0
    if exponent:
        # Saturate: past +-10**6 the value over- or underflows whatever the digits are.
        magnitude = exponent.lstrip("+-").lstrip("0") or "0"
        exponent_value = int(magnitude) if len(magnitude) <= 7 else 1_000_000
        if exponent.startswith("-"):
            exponent_value = -exponent_value
    shift = scale + exponent_value - len(fraction) + (len(digits) - len(significant))
    if shift < 0:  # the last significant digit lies beyond the scale: it would be rounded
        raise PrecisionError(f"{what}: {text!r} has more fractional digits than the scale {scale}")
    if len(significant) + shift > 19:  # at least 10**19 > 2**63 - 1
        raise PrecisionError(f"{what}: {text!r} overflows int64 at scale {scale}")
    mantissa: int = int(significant) * 10**shift
    if mantissa > INT64_MAX:
        raise PrecisionError(f"{what}: {text!r} overflows int64 at scale {scale}")
    return mantissa


def mantissa_text(mantissa: int, scale: int) -> str:
    """Render a mantissa as plain decimal text with exactly ``scale`` fractional digits.

    ``mantissa_text(294302, 1) == "29430.2"``; ``mantissa_text(100000, 8) == "0.00100000"``.
    """
    if scale == 0:
        return str(mantissa)
    whole, fraction = divmod(mantissa, 10**scale)
    return f"{whole}.{fraction:0{scale}d}"


def mantissa_decimal(mantissa: int, scale: int) -> Decimal:
    """The exact ``Decimal`` value of a mantissa (``Decimal(294302).scaleb(-1)``)."""
    return Decimal(mantissa).scaleb(-scale)


def wire_decimals(value: object) -> int:
    """Fractional digits written in a v1 wire value: ``"27120.00000"`` -> 5.

    v1 checksums hash the wire strings, so a v1 book's scale is what the wire shows. Ints have
    none, a ``Decimal`` has its exponent's; other types count 0 (the number parser then says
    what is wrong with them).
    """
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return 0
    _, dot, fraction = value.partition(".")
    return len(fraction) if dot else 0
