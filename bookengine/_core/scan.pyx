# cython: language_level=3
"""Frame scanner: classify a Kraken frame and locate its book entries, straight from the bytes.

One pass of a validating JSON walker. Nothing is built per level: entries are spans of the frame
(number text, order id, timestamp), and the book converts the numbers at its own scale. Control
frames (acks, status, instrument, heartbeat, trade...) come back as ``KIND_OTHER`` for the
Python session to decode with ``json``.
"""

import json

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memchr, memcmp, memcpy


cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil

from bookengine import core_types
from bookengine.core_types import Entry as PyEntry
from bookengine.errors import ProtocolError
from bookengine.numbers import parse_mantissa as py_parse_mantissa

cdef enum:
    MAX_NESTING = 64
    MAX_V1_ELEMENTS = 16

cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF
# int64 nanoseconds span 1677-09-21T00:12:43.145224192Z .. 2262-04-11T23:47:16.854775807Z
cdef int64_t MAX_SECONDS = 9223372036
cdef int64_t MIN_SECONDS = -9223372037

# The C-level codes (scan.pxd and above) by their names in bookengine.core_types, which owns
# them. Python code takes the codes from there; a build whose codes differ refuses to import.
_C_CODES = {
    "KIND_OTHER": KIND_OTHER,
    "KIND_BOOK": KIND_BOOK,
    "KIND_LEVEL3": KIND_LEVEL3,
    "KIND_V1_BOOK": KIND_V1_BOOK,
    "EVENT_NONE": EVENT_NONE,
    "EVENT_ADD": EVENT_ADD,
    "EVENT_MODIFY": EVENT_MODIFY,
    "EVENT_DELETE": EVENT_DELETE,
    "MAX_NESTING": MAX_NESTING,
    "MAX_V1_ELEMENTS": MAX_V1_ELEMENTS,
}

core_types.check_compiled_codes(_C_CODES, __name__)


# -- numbers -----------------------------------------------------------------------------------

cdef inline bint is_digit(char c) noexcept nogil:
    return c'0' <= c <= c'9'


cdef inline bint is_hex(char c) noexcept nogil:
    return is_digit(c) or c'a' <= c <= c'f' or c'A' <= c <= c'F'


cdef int parse_mantissa(const char* s, Py_ssize_t n, int scale, int64_t* out) noexcept nogil:
    """Number text -> mantissa at ``scale``; same grammar and rules as bookengine.numbers."""
    # Nearly every number is "digits" or "digits.digits" with at most 18 digits: read it in one
    # pass. Anything else (sign, exponent, syntax errors, possible overflow, too many decimals)
    # goes to the general routine, which also owns every error verdict.
    cdef Py_ssize_t i, dot = -1
    cdef uint64_t value = 0
    cdef int fraction, shift
    if 0 < n <= 19 and 0 <= scale <= 18:
        for i in range(n):
            if is_digit(s[i]):
                value = value * 10 + <uint64_t>(s[i] - c'0')
            elif s[i] == c'.' and dot < 0 and 0 < i < n - 1:
                dot = i
            else:
                return parse_mantissa_general(s, n, scale, out)
        fraction = 0 if dot < 0 else <int>(n - dot - 1)
        if fraction <= scale:
            shift = scale - fraction
            if value <= <uint64_t>INT64_MAX / be_pow10[shift]:
                out[0] = <int64_t>(value * be_pow10[shift])
                return NUM_OK
        elif value % be_pow10[fraction - scale] == 0:  # decimals beyond the scale: zeros only
            value //= be_pow10[fraction - scale]
            if value <= <uint64_t>INT64_MAX:
                out[0] = <int64_t>value
                return NUM_OK
    return parse_mantissa_general(s, n, scale, out)


cdef int parse_mantissa_general(const char* s, Py_ssize_t n, int scale,
                                int64_t* out) noexcept nogil:
    """``parse_mantissa`` for any text: exponents, signs, long digit runs, every error."""
    cdef Py_ssize_t i = 0, int_start, int_end, frac_start = 0, frac_end = 0
    cdef bint negative = False, exp_negative = False
    cdef long exponent = 0
    cdef Py_ssize_t first = -1, last = -1, position = 0, k, _
    cdef long shift, digits
    cdef uint64_t value = 0
    if n > 0 and s[0] == c'-':
        negative = True
        i = 1
    int_start = i
    while i < n and is_digit(s[i]):
        i += 1
    int_end = i
    if int_end == int_start:
        return NUM_SYNTAX
    if i < n and s[i] == c'.':
        i += 1
        frac_start = i
        while i < n and is_digit(s[i]):
            i += 1
        frac_end = i
        if frac_end == frac_start:
            return NUM_SYNTAX
    if i < n and (s[i] == c'e' or s[i] == c'E'):
        i += 1
        if i < n and (s[i] == c'+' or s[i] == c'-'):
            exp_negative = s[i] == c'-'
            i += 1
        if i >= n or not is_digit(s[i]):
            return NUM_SYNTAX
        while i < n and is_digit(s[i]):
            if exponent < 1000000:  # saturate: anything this large over/underflows anyway
                exponent = exponent * 10 + (s[i] - c'0')
            i += 1
        if exp_negative:
            exponent = -exponent
    if i != n:
        return NUM_SYNTAX
    if negative:
        return NUM_NEGATIVE
    # Significant digits run over the integer then the fraction part.
    for k in range(int_start, int_end):
        if s[k] != c'0':
            if first < 0:
                first = position
            last = position
        position += 1
    for k in range(frac_start, frac_end):
        if s[k] != c'0':
            if first < 0:
                first = position
            last = position
        position += 1
    if first < 0:
        out[0] = 0
        return NUM_OK
    # value = D[first..last] * 10**shift
    shift = scale + exponent - (frac_end - frac_start) + (position - 1 - last)
    if shift < 0:
        return NUM_TOO_PRECISE
    digits = last - first + 1
    if digits + shift > 19:
        return NUM_OVERFLOW
    position = 0
    for k in range(int_start, int_end):
        if first <= position <= last:
            value = value * 10 + <uint64_t>(s[k] - c'0')
        position += 1
    for k in range(frac_start, frac_end):
        if first <= position <= last:
            value = value * 10 + <uint64_t>(s[k] - c'0')
        position += 1
    for _ in range(shift):
        value *= 10  # at most 19 digits in all: fits uint64
    if value > <uint64_t>INT64_MAX:
        return NUM_OVERFLOW
    out[0] = <int64_t>value
    return NUM_OK


cdef int wire_decimals(const char* s, Py_ssize_t n) noexcept nogil:
    """Characters after the first '.', as ``bookengine.numbers.wire_decimals``."""
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] == c'.':
            return <int>(n - i - 1)
    return 0


cdef object raise_number_error(const char* text, Py_ssize_t length, int scale, str what):
    """Raise the reference's exact PrecisionError for a number the fast parser refused."""
    raw = text[:length].decode("utf-8", "replace")  # frames are UTF-8 JSON
    py_parse_mantissa(raw, scale, what)
    raise AssertionError(f"{what}: compiled and reference number parsers disagree on {raw!r}")


# -- frames with escapes ------------------------------------------------------------------

class _Number(str):
    """A JSON number kept as its text."""


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _encode(value, out):
    if isinstance(value, _Number):
        out.append(value)
    elif isinstance(value, str):
        # Written out so that keys compare byte for byte; a lone surrogate becomes bytes that
        # are not UTF-8 and the walker refuses the frame (as the reference does).
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        out.append(json.dumps(value))


cdef bytes canonical_frame(bytes frame):
    """The frame re-encoded with escapes decoded and number text kept as it was.

    Escapes that remain (quote, backslash, controls) cannot occur in any key or value the
    scanner compares, so byte comparison is exact again. Invalid JSON is left for the walker
    to report (with its usual message) by returning the frame unchanged.
    """
    cdef Cursor c
    c.start = PyBytes_AS_STRING(frame)
    c.p = c.start
    c.end = c.start + PyBytes_GET_SIZE(frame)
    c.error = NULL
    if skip_value(&c, 0) < 0:
        return frame
    skip_ws(&c)
    if c.p != c.end:
        return frame
    try:
        value = json.loads(frame, parse_float=_Number, parse_int=_Number,
                           parse_constant=_reject_constant, object_pairs_hook=dict)
    except (ValueError, RecursionError):
        return frame
    out = []
    _encode(value, out)
    return "".join(out).encode("utf-8", "surrogatepass")


# -- timestamps --------------------------------------------------------------------------------

cdef int64_t days_from_civil(int64_t y, int64_t m, int64_t d) noexcept nogil:
    # Howard Hinnant's days-from-civil algorithm (proleptic Gregorian).
    cdef int64_t era, yoe, doy, doe
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef int parse_rfc3339_ns(const char* s, Py_ssize_t n, int64_t* out) noexcept nogil:
    """``YYYY-MM-DDTHH:MM:SS(.f{1,9})?(Z|±HH:MM)`` -> ns since the epoch. 0 ok, -1 bad."""
    cdef Py_ssize_t i
    cdef int64_t nanos = 0, seconds, year, month, day, hour, minute, second
    cdef int digits = 0, offset = 0
    if n < 20:
        return -1
    # "YYYY-MM-DDTHH:MM:SS", position by position (not a loop asking of each of the 19
    # whether it is one of the five separators' places)
    if not (is_digit(s[0]) and is_digit(s[1]) and is_digit(s[2]) and is_digit(s[3])
            and s[4] == c'-' and is_digit(s[5]) and is_digit(s[6])
            and s[7] == c'-' and is_digit(s[8]) and is_digit(s[9])
            and (s[10] == c'T' or s[10] == c't' or s[10] == c' ')
            and is_digit(s[11]) and is_digit(s[12]) and s[13] == c':'
            and is_digit(s[14]) and is_digit(s[15]) and s[16] == c':'
            and is_digit(s[17]) and is_digit(s[18])):
        return -1
    i = 19
    if i < n and s[i] == c'.':
        i += 1
        while i < n and is_digit(s[i]):
            if digits == 9:
                return -1
            nanos = nanos * 10 + (s[i] - c'0')
            digits += 1
            i += 1
        if digits == 0:
            return -1
        while digits < 9:
            nanos *= 10
            digits += 1
    if i == n - 1 and (s[i] == c'Z' or s[i] == c'z'):
        offset = 0
    elif i == n - 6 and (s[i] == c'+' or s[i] == c'-') and s[i + 3] == c':':
        if not (is_digit(s[i + 1]) and is_digit(s[i + 2]) and is_digit(s[i + 4])
                and is_digit(s[i + 5])):
            return -1
        if two_digits(s + i + 1) > 23 or two_digits(s + i + 4) > 59:
            return -1
        offset = two_digits(s + i + 1) * 3600 + two_digits(s + i + 4) * 60
        if s[i] == c'-':
            offset = -offset
    else:
        return -1
    year = (s[0] - c'0') * 1000 + (s[1] - c'0') * 100 + two_digits(s + 2)
    month = two_digits(s + 5)
    day = two_digits(s + 8)
    hour = two_digits(s + 11)
    minute = two_digits(s + 14)
    second = two_digits(s + 17)
    # RFC 3339 field ranges (second 60 is a leap second).
    if (year < 1 or month < 1 or month > 12 or day < 1 or day > days_in_month(year, month)
            or hour > 23 or minute > 59 or second > 60):
        return -1
    seconds = (days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
               - offset)
    # Stay inside int64 nanoseconds (1677-09-21 .. 2262-04-11) without overflowing first.
    if seconds > MAX_SECONDS or (seconds == MAX_SECONDS and nanos > 854775807):
        return -1
    if seconds < MIN_SECONDS or (seconds == MIN_SECONDS and nanos < 145224192):
        return -1
    out[0] = seconds * 1000000000 + nanos
    return 0


cdef int64_t DAY_CACHE_NS = 9000000000000000000  # days cached: midnight within +-this


cdef void remember_day(DayCache* day, const char* s, Py_ssize_t n) noexcept nogil:
    """After the general parser accepted ``s``: cache its day when fast_timestamp could use it."""
    cdef char midnight[20]
    cdef int64_t ns
    if n < 20 or s[10] != c'T':
        return
    memcpy(midnight, s, 10)
    memcpy(midnight + 10, b"T00:00:00Z", 10)
    # Far from the ends of int64 nanoseconds (1677..2262), so no time of the day can overflow.
    if parse_rfc3339_ns(midnight, 20, &ns) == 0 and -DAY_CACHE_NS < ns < DAY_CACHE_NS:
        memcpy(day.text, s, 10)
        day.seconds = ns // 1000000000
        day.valid = True


cdef int days_in_month(int64_t year, int64_t month) noexcept nogil:
    if month == 2:
        return 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    return 30 if month in (4, 6, 9, 11) else 31


# -- the JSON walker ---------------------------------------------------------------------------

cdef inline void skip_ws(Cursor* c) noexcept nogil:
    while c.p < c.end and (c.p[0] == c' ' or c.p[0] == c'\n' or c.p[0] == c'\r'
                           or c.p[0] == c'\t'):
        c.p += 1


cdef inline int fail(Cursor* c, const char* message) noexcept nogil:
    if c.error == NULL:
        c.error = message
    return -1


cdef inline int expect(Cursor* c, char ch, const char* message) noexcept nogil:
    skip_ws(c)
    if c.p >= c.end or c.p[0] != ch:
        return fail(c, message)
    c.p += 1
    return 0


cdef int scan_string(Cursor* c, Span* span) noexcept nogil:
    """At '"': move past the string; ``span`` gets its raw contents (escapes not decoded)."""
    cdef const char* begin
    cdef int k, _
    span.escaped = False
    c.p += 1
    begin = c.p
    while c.p < c.end:
        if c.p[0] == c'"':
            span.start = begin - c.start
            span.length = c.p - begin
            c.p += 1
            return 0
        if c.p[0] == c'\\':
            span.escaped = True
            c.p += 1
            if c.p >= c.end:
                break
            if c.p[0] == c'u':
                for _ in range(4):
                    c.p += 1
                    if c.p >= c.end or not is_hex(c.p[0]):
                        return fail(c, "bad \\u escape in string")
            elif c.p[0] not in b'"\\/bfnrt':
                return fail(c, "bad escape in string")
        elif <unsigned char>c.p[0] < 0x20:
            return fail(c, "control character in string")
        elif <unsigned char>c.p[0] >= 0x80:
            k = utf8_sequence(c.p, c.end)
            if k == 0:
                return fail(c, "invalid UTF-8 in string")
            c.p += k
            continue
        c.p += 1
    return fail(c, "unterminated string")


cdef int utf8_sequence(const char* p, const char* end) noexcept nogil:
    """Length of the well-formed UTF-8 sequence at p (RFC 3629), 0 when ill-formed."""
    cdef unsigned char b0 = <unsigned char>p[0], b1, lo = 0x80, hi = 0xBF
    cdef int n, k
    if 0xC2 <= b0 <= 0xDF:
        n = 2
    elif 0xE0 <= b0 <= 0xEF:
        n = 3
        if b0 == 0xE0:
            lo = 0xA0      # no overlong forms
        elif b0 == 0xED:
            hi = 0x9F      # no surrogates
    elif 0xF0 <= b0 <= 0xF4:
        n = 4
        if b0 == 0xF0:
            lo = 0x90
        elif b0 == 0xF4:
            hi = 0x8F      # at most U+10FFFF
    else:
        return 0
    if end - p < n:
        return 0
    b1 = <unsigned char>p[1]
    if b1 < lo or b1 > hi:
        return 0
    for k in range(2, n):
        if not 0x80 <= <unsigned char>p[k] <= 0xBF:
            return 0
    return n


cdef int scan_number(Cursor* c, Span* span) noexcept nogil:
    """A JSON number token (RFC 8259 grammar: no leading zeros, no bare '.', no '+')."""
    cdef const char* p = c.p  # a local: the compiler keeps it in a register
    cdef const char* end = c.end
    if p < end and p[0] == c'-':
        p += 1
    if p < end and p[0] == c'0':
        p += 1
    elif p < end and c'1' <= p[0] <= c'9':
        p += 1
        while p < end and is_digit(p[0]):
            p += 1
    else:
        c.p = p
        return fail(c, "expected a value")
    if p < end and p[0] == c'.':
        p += 1
        if p >= end or not is_digit(p[0]):
            c.p = p
            return fail(c, "bad number")
        while p < end and is_digit(p[0]):
            p += 1
    if p < end and (p[0] == c'e' or p[0] == c'E'):
        p += 1
        if p < end and (p[0] == c'+' or p[0] == c'-'):
            p += 1
        if p >= end or not is_digit(p[0]):
            c.p = p
            return fail(c, "bad number")
        while p < end and is_digit(p[0]):
            p += 1
    span.start = c.p - c.start
    span.length = p - c.p
    span.escaped = False
    c.p = p
    return 0


cdef int skip_literal(Cursor* c, const char* word, Py_ssize_t n) noexcept nogil:
    if c.end - c.p < n or memcmp(c.p, word, n) != 0:
        return fail(c, "expected a value")
    c.p += n
    return 0


cdef int skip_value(Cursor* c, int nesting) noexcept nogil:
    """Validate and move past any JSON value."""
    cdef Span ignored
    cdef char close
    skip_ws(c)
    if c.p >= c.end:
        return fail(c, "unexpected end of frame")
    if c.p[0] == c'"':
        return scan_string(c, &ignored)
    if c.p[0] == c'{' or c.p[0] == c'[':
        if nesting >= MAX_NESTING:
            return fail(c, "nesting too deep")
        close = c'}' if c.p[0] == c'{' else c']'
        c.p += 1
        skip_ws(c)
        if c.p < c.end and c.p[0] == close:
            c.p += 1
            return 0
        while True:
            if close == c'}':
                skip_ws(c)
                if c.p >= c.end or c.p[0] != c'"':
                    return fail(c, "expected an object key")
                if scan_string(c, &ignored) < 0 or expect(c, c':', "expected ':'") < 0:
                    return -1
            if skip_value(c, nesting + 1) < 0:
                return -1
            skip_ws(c)
            if c.p < c.end and c.p[0] == c',':
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == close:
                c.p += 1
                return 0
            return fail(c, "expected ',' or a closing bracket")
    if c.p[0] == c't':
        return skip_literal(c, "true", 4)
    if c.p[0] == c'f':
        return skip_literal(c, "false", 5)
    if c.p[0] == c'n':
        return skip_literal(c, "null", 4)
    return scan_number(c, &ignored)


cdef inline bint span_is(Cursor* c, Span span, const char* word, Py_ssize_t n) noexcept nogil:
    return span.length == n and memcmp(c.start + span.start, word, n) == 0


cdef int entries_push(EntryList* entries) except -1:
    cdef Py_ssize_t capacity
    cdef Entry* grown
    if entries.count == entries.capacity:
        capacity = entries.capacity * 2 if entries.capacity else 64
        grown = <Entry*>realloc(entries.items, capacity * sizeof(Entry))
        if grown == NULL:
            raise MemoryError()
        entries.items = grown
        entries.capacity = capacity
    entries.items[entries.count].price.length = -1
    entries.items[entries.count].qty.length = -1
    entries.items[entries.count].order_id.length = -1
    entries.items[entries.count].timestamp.length = -1
    entries.items[entries.count].event = EVENT_NONE
    entries.items[entries.count].fields = 0
    entries.items[entries.count].republish = False
    entries.count += 1
    return 0


# -- Kraken's own layout -----------------------------------------------------------------------
# Kraken writes its book and level3 messages without whitespace and with the top-level keys in
# one order, e.g.
#   {"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1.5,
#    "qty":2}],"asks":[],"checksum":123,"timestamp":"2023-07-30T15:30:01.604059Z"}]}
# Recognising that shape by comparing literals skips most of the generic walk's per-key work
# (reading each key as a string, then comparing it with every name it might be). The fast path
# accepts only frames the generic walk would accept with the same result; anything else (other
# whitespace or key order, unknown or repeated keys, escapes, non-ASCII text, a value of an
# unexpected type, a missing required key) makes it give up, and the generic walk takes the
# frame from the start and reports what is wrong.

cdef bint[256] PLAIN  # bytes a string may hold on the fast path: printable ASCII but '"' and '\'


cdef void _build_plain() noexcept:
    cdef int i
    for i in range(256):
        PLAIN[i] = 0x20 <= i < 0x7F and i != c'"' and i != c'\\'


_build_plain()


cdef inline bint take(Cursor* c, const char* text, Py_ssize_t n) noexcept nogil:
    """Step past ``text`` when the frame continues with it."""
    if c.end - c.p >= n and memcmp(c.p, text, n) == 0:
        c.p += n
        return True
    return False


cdef inline uint64_t not_plain(uint64_t word) noexcept nogil:
    """High bit set in (at least) the first byte of ``word`` that is not PLAIN, and none before.

    Eight bytes at a time: a byte below 0x20, a '"', a '\\', 0x7F or any byte >= 0x80. The
    zero-byte test ``(x - 0x01..) & ~x & 0x80..`` may also flag bytes after a true hit
    (borrows), never one before it, so the lowest flag is exact.
    """
    cdef uint64_t ones = 0x0101010101010101, highs = 0x8080808080808080
    cdef uint64_t quote = word ^ (ones * 0x22), backslash = word ^ (ones * 0x5C)
    cdef uint64_t rubout = word ^ (ones * 0x7F)
    return (((word - ones * 0x20) & ~word) | ((quote - ones) & ~quote)
            | ((backslash - ones) & ~backslash) | ((rubout - ones) & ~rubout) | word) & highs


cdef inline bint take_plain_string(Cursor* c, Span* span) noexcept nogil:
    """After an opening '"': step past plain text and the closing '"'; False on anything else."""
    cdef const char* p = c.p
    cdef const char* end = c.end
    cdef uint64_t word, hits
    while end - p >= 8:
        memcpy(&word, p, 8)  # little-endian hosts: the first byte is the lowest
        hits = not_plain(word)
        if hits:
            p += __builtin_ctzll(hits) >> 3
            break
        p += 8
    while p < end and PLAIN[<unsigned char>p[0]]:
        p += 1
    if p >= end or p[0] != c'"':
        return False
    span.start = c.p - c.start
    span.length = p - c.p
    span.escaped = False
    c.p = p + 1
    return True


cdef inline bint take_number(Cursor* c, Span* span) noexcept nogil:
    """A JSON number or a plain string (the generic walk takes both for prices and sizes)."""
    if c.p < c.end and c.p[0] == c'"':
        c.p += 1
        return take_plain_string(c, span)
    return c.p < c.end and (c.p[0] == c'-' or is_digit(c.p[0])) and scan_number(c, span) == 0


cdef inline bint take_checksum(Cursor* c, long long* checksum) noexcept nogil:
    """An unsigned 32-bit integer as JSON writes it: 1 to 10 digits, no leading zero.

    Anything after the digits ('.', 'e', an 11th digit...) is left for the caller, whose next
    literal then fails, so such a checksum goes to the generic walk.
    """
    cdef const char* p = c.p
    cdef uint64_t value = 0
    while p < c.end and is_digit(p[0]) and p - c.p <= 10:
        value = value * 10 + <uint64_t>(p[0] - c'0')
        p += 1
    if p == c.p or p - c.p > 10 or (c.p[0] == c'0' and p - c.p > 1) or value >> 32:
        return False
    c.p = p
    checksum[0] = <long long>value
    return True


cdef int take_entries(Cursor* c, EntryList* entries, bint level3, bint snapshot) except -1:
    """After "bids":[ or "asks":[ : the entries and the closing ']'. 1 taken, 0 give up."""
    cdef Entry* entry
    cdef int seen, key
    cdef bint ok
    if take(c, "]", 1):
        return 1
    while True:
        entries_push(entries)
        entry = &entries.items[entries.count - 1]
        if not level3:
            # {"price":N,"qty":N}
            if not (take(c, '{"price":', 9) and take_number(c, &entry.price)
                    and take(c, ',"qty":', 7) and take_number(c, &entry.qty) and take(c, "}", 1)):
                return 0
            entry.fields = F_PRICE | F_QTY
        else:
            # {"event":"add","order_id":"...","limit_price":N,"order_qty":N,"timestamp":"..."}
            # in any order, each key once; "event" may be left out of a snapshot only.
            if not take(c, "{", 1):
                return 0
            seen = 0
            while True:
                # Kraken's order first: event, order_id, limit_price, order_qty, timestamp.
                if take(c, '"event":"', 9):
                    key = F_EVENT
                    ok = True
                    if take(c, 'add"', 4):
                        entry.event = EVENT_ADD
                    elif take(c, 'delete"', 7):
                        entry.event = EVENT_DELETE
                    elif take(c, 'modify"', 7):
                        entry.event = EVENT_MODIFY
                    else:
                        ok = False
                elif take(c, '"order_id":"', 12):
                    key = F_ORDER_ID
                    ok = take_plain_string(c, &entry.order_id) and entry.order_id.length > 0
                elif take(c, '"limit_price":', 14):
                    key = F_LIMIT_PRICE
                    ok = take_number(c, &entry.price)
                elif take(c, '"order_qty":', 12):
                    key = F_ORDER_QTY
                    ok = take_number(c, &entry.qty)
                elif take(c, '"timestamp":"', 13):
                    key = F_TIMESTAMP
                    ok = take_plain_string(c, &entry.timestamp)
                else:
                    return 0
                if not ok or seen & key:
                    return 0
                seen |= key
                if take(c, "}", 1):
                    break
                if not take(c, ",", 1):
                    return 0
            if seen & (F_ORDER_ID | F_LIMIT_PRICE | F_ORDER_QTY) != (
                    F_ORDER_ID | F_LIMIT_PRICE | F_ORDER_QTY):
                return 0
            if not seen & F_EVENT:
                if not snapshot:
                    return 0
                entry.event = EVENT_ADD
            entry.fields = seen
        if take(c, ",", 1):
            continue
        return 1 if take(c, "]", 1) else 0


cdef class FrameScanner:
    """Reusable scanner: ``scan(frame)`` classifies a frame and keeps its book entries.

    After a scan: ``kind`` (a ``core_types.KIND_*`` code), ``is_snapshot``,
    ``symbol`` (v2 symbol or v1 pair), ``channel_name`` (v1 ``book-N``), ``checksum`` (-1 when
    absent), ``timestamp_ns`` (-1 when absent), ``bid_count``/``ask_count``, ``fast_path`` (the
    frame was in Kraken's own layout and read by literal comparisons) and, for tests and
    debugging, ``bids``/``asks`` as Python entries. The scanner keeps a reference to the frame
    until the next scan; books read the spans directly.
    """

    def __dealloc__(self):
        free(self.bid_list.items)
        free(self.ask_list.items)

    cpdef int scan(self, object frame) except -1:
        """Classify ``frame`` (bytes; str is encoded as UTF-8) and extract its book entries.

        Returns:
            The frame kind.

        Raises:
            ProtocolError: malformed JSON, or a book frame with missing or mistyped fields.
        """
        if not isinstance(frame, bytes):
            if isinstance(frame, str):
                frame = (<str>frame).encode("utf-8", "surrogatepass")
            else:
                frame = bytes(frame)
        return self.scan_view(<bytes>frame, 0, PyBytes_GET_SIZE(frame))

    cdef int scan_view(self, bytes owner, Py_ssize_t start, Py_ssize_t length) except -1:
        """Scan ``owner[start:start + length]`` in place (replay loops: no bytes per line)."""
        cdef Cursor c
        self.frame = owner  # keeps the bytes alive while books read the spans
        self.data = PyBytes_AS_STRING(owner) + start
        self.size = length
        self._reset()
        c.start = self.data
        c.p = self.data
        c.end = self.data + self.size
        c.error = NULL
        if self._scan_kraken_layout(&c):
            return self.kind
        # Not Kraken's own layout: the generic walk decides, from a clean state.
        self._reset()
        if memchr(self.data, c'\\', length) != NULL:
            # Rare: escapes could hide a key ("chan\\u006eel") from the byte comparisons.
            owner = canonical_frame(owner[start:start + length])
            self.frame = owner
            self.data = PyBytes_AS_STRING(owner)
            self.size = PyBytes_GET_SIZE(owner)
        c.start = self.data
        c.p = self.data
        c.end = self.data + self.size
        c.error = NULL
        skip_ws(&c)
        if c.p < c.end and c.p[0] == c'{':
            if self._scan_v2(&c) < 0:
                self._raise_malformed(&c)
        elif c.p < c.end and c.p[0] == c'[':
            if self._scan_v1(&c) < 0:
                self._raise_malformed(&c)
        elif skip_value(&c, 0) < 0:
            self._raise_malformed(&c)
        skip_ws(&c)
        if c.p != c.end:
            self.kind = KIND_OTHER
            raise ProtocolError(f"malformed JSON at byte {c.p - c.start}: data after the value")
        if self.kind != KIND_OTHER:
            self._validate()
        return self.kind

    cdef void _reset(self) noexcept:
        self.kind = KIND_OTHER
        self.fast_path = False
        self.is_snapshot = False
        self.checksum = -1
        self.symbol_span.length = -1
        self.channel_name_span.length = -1
        self.timestamp_span.length = -1
        self._channel.length = -1
        self._type.length = -1
        self.bid_list.count = 0
        self.ask_list.count = 0
        self._shape_error = None
        self._data_count = 0
        self._data_ok = False
        self._v1_keys = 0

    cdef int _raise_malformed(self, Cursor* c) except -1:
        self.kind = KIND_OTHER
        message = (c.error if c.error != NULL else b"malformed").decode()
        raise ProtocolError(f"malformed JSON at byte {c.p - c.start}: {message}")

    cdef void _shape(self, str message):
        # Structure is valid JSON but not the book shape; reported only if this is a book frame.
        if self._shape_error is None:
            self._shape_error = message

    # -- Kraken's own layout (see take_entries) ------------------------------------------------

    cdef int _scan_kraken_layout(self, Cursor* c) except -1:
        """A book or level3 frame in Kraken's layout: 1 when scanned completely, 0 give up."""
        cdef int seen = 0, key
        cdef bint level3
        if take(c, '{"channel":"book","type":"', 26):
            level3 = False
        elif take(c, '{"channel":"level3","type":"', 28):
            level3 = True
        else:
            return 0
        if take(c, 'update"', 7):
            self.is_snapshot = False
        elif take(c, 'snapshot"', 9):
            self.is_snapshot = True
        else:
            return 0
        if not take(c, ',"data":[{', 10):
            return 0
        # The book object's keys in any order, each once.
        while True:
            if take(c, '"symbol":"', 10):
                key = 1
                if seen & key or not take_plain_string(c, &self.symbol_span):
                    return 0
            elif take(c, '"bids":[', 8):
                key = 2
                if seen & key or not take_entries(c, &self.bid_list, level3, self.is_snapshot):
                    return 0
            elif take(c, '"asks":[', 8):
                key = 4
                if seen & key or not take_entries(c, &self.ask_list, level3, self.is_snapshot):
                    return 0
            elif take(c, '"checksum":', 11):
                key = 8
                if seen & key or not take_checksum(c, &self.checksum):
                    return 0
            elif take(c, '"timestamp":"', 13):
                key = 16
                if seen & key or not take_plain_string(c, &self.timestamp_span):
                    return 0
            else:
                return 0
            seen |= key
            if take(c, "}", 1):
                break
            if not take(c, ",", 1):
                return 0
        if not seen & 1 or not take(c, "]}", 2):
            return 0
        skip_ws(c)
        if c.p != c.end:
            return 0
        self.kind = KIND_LEVEL3 if level3 else KIND_BOOK
        self._data_count = 1
        self._data_ok = True
        self.fast_path = True
        return 1

    # -- v2 ------------------------------------------------------------------------------------

    cdef int _scan_v2(self, Cursor* c) except -2:
        cdef Span key
        cdef const char* data = NULL
        cdef const char* end
        c.p += 1
        skip_ws(c)
        if c.p < c.end and c.p[0] == c'}':
            c.p += 1
            return 0
        while True:
            skip_ws(c)
            if c.p >= c.end or c.p[0] != c'"':
                return fail(c, "expected an object key")
            if scan_string(c, &key) < 0 or expect(c, c':', "expected ':'") < 0:
                return -1
            skip_ws(c)
            if c.p >= c.end:
                return fail(c, "unexpected end of frame")
            if span_is(c, key, "channel", 7) and c.p[0] == c'"':
                if scan_string(c, &self._channel) < 0:
                    return -1
                if span_is(c, self._channel, "book", 4):
                    self.kind = KIND_BOOK
                elif span_is(c, self._channel, "level3", 6):
                    self.kind = KIND_LEVEL3
                else:
                    self.kind = KIND_OTHER
            elif span_is(c, key, "type", 4) and c.p[0] == c'"':
                if scan_string(c, &self._type) < 0:
                    return -1
            elif span_is(c, key, "data", 4):
                # Entry keys depend on the channel; if it has not been seen yet, come back.
                data = c.p
                if self.kind != KIND_OTHER and c.p[0] == c'[':
                    if self._scan_data(c) < 0:
                        return -1
                elif skip_value(c, 1) < 0:
                    return -1
                else:
                    self._data_count = 0
                    self._data_ok = False
            elif skip_value(c, 1) < 0:
                return -1
            skip_ws(c)
            if c.p < c.end and c.p[0] == c',':
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == c'}':
                c.p += 1
                break
            return fail(c, "expected ',' or '}'")
        if self.kind != KIND_OTHER and data != NULL and self._data_count == 0:
            end = c.p
            c.p = data
            if c.p[0] == c'[' and self._scan_data(c) < 0:
                return -1
            c.p = end
        return 0

    cdef int _scan_data(self, Cursor* c) except -2:
        # "data": [ {book object} ]; Kraken sends exactly one book object per message.
        self._data_count = 0
        self._data_ok = False
        self.bid_list.count = 0
        self.ask_list.count = 0
        c.p += 1
        skip_ws(c)
        if c.p < c.end and c.p[0] == c']':
            c.p += 1
            return 0
        while True:
            skip_ws(c)
            if c.p >= c.end:
                return fail(c, "unexpected end of frame")
            if self._data_count == 0 and c.p[0] == c'{':
                if self._scan_book_object(c) < 0:
                    return -1
                self._data_ok = True
            elif skip_value(c, 2) < 0:
                return -1
            self._data_count += 1
            skip_ws(c)
            if c.p < c.end and c.p[0] == c',':
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == c']':
                c.p += 1
                return 0
            return fail(c, "expected ',' or ']'")

    cdef int _scan_book_object(self, Cursor* c) except -2:
        cdef Span key
        c.p += 1
        skip_ws(c)
        if c.p < c.end and c.p[0] == c'}':
            c.p += 1
            return 0
        while True:
            skip_ws(c)
            if c.p >= c.end or c.p[0] != c'"':
                return fail(c, "expected an object key")
            if scan_string(c, &key) < 0 or expect(c, c':', "expected ':'") < 0:
                return -1
            skip_ws(c)
            if c.p >= c.end:
                return fail(c, "unexpected end of frame")
            if span_is(c, key, "symbol", 6):
                if c.p[0] == c'"':
                    if scan_string(c, &self.symbol_span) < 0:
                        return -1
                else:
                    self.symbol_span.length = -1
                    if skip_value(c, 3) < 0:
                        return -1
            elif span_is(c, key, "bids", 4) or span_is(c, key, "asks", 4):
                if self._scan_entries(c, &self.bid_list if c.start[key.start] == c'b'
                                      else &self.ask_list,
                                      "bids" if c.start[key.start] == c'b' else "asks") < 0:
                    return -1
            elif span_is(c, key, "checksum", 8):
                if self._scan_checksum(c, "checksum") < 0:
                    return -1
            elif span_is(c, key, "timestamp", 9):
                if c.p[0] == c'"':
                    if scan_string(c, &self.timestamp_span) < 0:
                        return -1
                else:
                    self._shape("'timestamp' must be a string")
                    if skip_value(c, 3) < 0:
                        return -1
            elif skip_value(c, 3) < 0:
                return -1
            skip_ws(c)
            if c.p < c.end and c.p[0] == c',':
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == c'}':
                c.p += 1
                return 0
            return fail(c, "expected ',' or '}'")

    cdef int _scan_checksum(self, Cursor* c, str name) except -2:
        cdef Span value
        cdef uint64_t number = 0
        cdef Py_ssize_t i
        cdef bint ok
        if c.p[0] == c'"':
            if scan_string(c, &value) < 0:
                return -1
        elif c.p[0] == c'-' or is_digit(c.p[0]):
            if scan_number(c, &value) < 0:
                return -1
        else:
            self._shape(f"{name} must be an unsigned 32-bit integer")
            return skip_value(c, 3)
        ok = 0 < value.length
        for i in range(value.length):
            if not is_digit(c.start[value.start + i]):
                ok = False
                break
            number = number * 10 + <uint64_t>(c.start[value.start + i] - c'0')
            if number >> 32:  # beyond uint32 (a C shift: no Python int per digit)
                ok = False
                break
        if ok:
            self.checksum = <long long>number
        else:
            self.checksum = -1
            text = c.start[value.start:value.start + value.length].decode("utf-8", "replace")
            self._shape(f"{name} must be an unsigned 32-bit integer, got {text!r}")
        return 0

    cdef int _scan_entries(self, Cursor* c, EntryList* entries, str side) except -2:
        cdef Py_ssize_t index = 0
        entries.count = 0  # a repeated key replaces the earlier one, as json.loads does
        if c.p[0] != c'[':
            self._shape(f"'{side}' must be an array")
            return skip_value(c, 3)
        c.p += 1
        skip_ws(c)
        if c.p < c.end and c.p[0] == c']':
            c.p += 1
            return 0
        while True:
            skip_ws(c)
            if c.p >= c.end:
                return fail(c, "unexpected end of frame")
            if c.p[0] == c'{':
                entries_push(entries)
                if self._scan_entry(c, &entries.items[entries.count - 1], side, index) < 0:
                    return -1
            else:
                self._shape(f"{side}[{index}]: expected an object")
                if skip_value(c, 4) < 0:
                    return -1
            index += 1
            skip_ws(c)
            if c.p < c.end and c.p[0] == c',':
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == c']':
                c.p += 1
                return 0
            return fail(c, "expected ',' or ']'")

    cdef int _scan_entry(self, Cursor* c, Entry* entry, str side, Py_ssize_t index) except -2:
        cdef Span key, value
        cdef int flag
        c.p += 1
        skip_ws(c)
        if c.p < c.end and c.p[0] == c'}':
            c.p += 1
            return 0
        while True:
            skip_ws(c)
            if c.p >= c.end or c.p[0] != c'"':
                return fail(c, "expected an object key")
            if scan_string(c, &key) < 0 or expect(c, c':', "expected ':'") < 0:
                return -1
            skip_ws(c)
            if c.p >= c.end:
                return fail(c, "unexpected end of frame")
            flag = 0
            if self.kind == KIND_BOOK:
                if span_is(c, key, "price", 5):
                    flag = F_PRICE
                elif span_is(c, key, "qty", 3):
                    flag = F_QTY
            elif span_is(c, key, "limit_price", 11):
                flag = F_LIMIT_PRICE
            elif span_is(c, key, "order_qty", 9):
                flag = F_ORDER_QTY
            elif span_is(c, key, "order_id", 8):
                flag = F_ORDER_ID
            elif span_is(c, key, "event", 5):
                flag = F_EVENT
            elif span_is(c, key, "timestamp", 9):
                flag = F_TIMESTAMP
            if flag & (F_PRICE | F_QTY | F_LIMIT_PRICE | F_ORDER_QTY):
                if c.p[0] == c'"':
                    if scan_string(c, &value) < 0:
                        return -1
                elif c.p[0] == c'-' or is_digit(c.p[0]):
                    if scan_number(c, &value) < 0:
                        return -1
                else:
                    self._shape(f"{side}[{index}].{key_name(c, key)}: expected a number")
                    if skip_value(c, 5) < 0:
                        return -1
                    flag = 0
                if flag & (F_PRICE | F_LIMIT_PRICE):
                    entry.price = value
                elif flag:
                    entry.qty = value
            elif flag:
                if c.p[0] != c'"':
                    self._shape(f"{side}[{index}].{key_name(c, key)}: expected a string")
                    if skip_value(c, 5) < 0:
                        return -1
                    flag = 0
                else:
                    if scan_string(c, &value) < 0:
                        return -1
                    if flag == F_ORDER_ID:
                        entry.order_id = value
                    elif flag == F_TIMESTAMP:
                        entry.timestamp = value
                    elif span_is(c, value, "add", 3):
                        entry.event = EVENT_ADD
                    elif span_is(c, value, "modify", 6):
                        entry.event = EVENT_MODIFY
                    elif span_is(c, value, "delete", 6):
                        entry.event = EVENT_DELETE
                    else:
                        self._shape(f"{side}[{index}].event: expected add, modify or delete")
            elif skip_value(c, 5) < 0:
                return -1
            entry.fields |= flag
            skip_ws(c)
            if c.p < c.end and c.p[0] == c',':
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == c'}':
                c.p += 1
                return 0
            return fail(c, "expected ',' or '}'")

    # -- v1 ------------------------------------------------------------------------------------

    cdef int _scan_v1(self, Cursor* c) except -2:
        # [channelID, payload, (payload2,) channelName, pair]. The channel name comes last, so
        # find the element boundaries first, then read the payloads only for book-N channels.
        cdef const char* starts[MAX_V1_ELEMENTS]
        cdef int count = 0, i
        cdef Span name, pair
        cdef Cursor inner
        c.p += 1
        skip_ws(c)
        if c.p < c.end and c.p[0] == c']':
            c.p += 1
            return 0
        while True:
            skip_ws(c)
            if count < MAX_V1_ELEMENTS:
                starts[count] = c.p
            count += 1
            if skip_value(c, 1) < 0:
                return -1
            skip_ws(c)
            if c.p < c.end and c.p[0] == c',':
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == c']':
                c.p += 1
                break
            return fail(c, "expected ',' or ']'")
        if count < 4 or count > MAX_V1_ELEMENTS:
            return 0
        inner = c[0]
        inner.p = starts[count - 2]
        if inner.p[0] != c'"' or scan_string(&inner, &name) < 0:
            return 0
        inner.p = starts[count - 1]
        if inner.p[0] != c'"' or scan_string(&inner, &pair) < 0:
            return 0
        if name.length < 5 or memcmp(c.start + name.start, "book-", 5) != 0:
            return 0
        self.kind = KIND_V1_BOOK
        self.channel_name_span = name
        self.symbol_span = pair
        for i in range(1, count - 2):
            inner.p = starts[i]
            if inner.p[0] != c'{':
                self._shape("payload must be an object")
                continue
            if self._scan_v1_payload(&inner) < 0:
                c.error = inner.error
                return -1
        if (self._v1_keys & 3) and (self._v1_keys & 12):
            self._shape("mixes snapshot and update payloads")
        self.is_snapshot = (self._v1_keys & 3) != 0
        return 0

    cdef int _scan_v1_payload(self, Cursor* c) except -2:
        cdef Span key
        c.p += 1
        skip_ws(c)
        if c.p < c.end and c.p[0] == c'}':
            c.p += 1
            return 0
        while True:
            skip_ws(c)
            if scan_string(c, &key) < 0 or expect(c, c':', "expected ':'") < 0:
                return -1
            skip_ws(c)
            if span_is(c, key, "c", 1):
                if self._scan_checksum(c, "c") < 0:
                    return -1
            elif span_is(c, key, "as", 2) or span_is(c, key, "a", 1):
                self._v1_keys |= 1 if key.length == 2 else 4
                if self._scan_v1_levels(c, &self.ask_list, key_name(c, key)) < 0:
                    return -1
            elif span_is(c, key, "bs", 2) or span_is(c, key, "b", 1):
                self._v1_keys |= 2 if key.length == 2 else 8
                if self._scan_v1_levels(c, &self.bid_list, key_name(c, key)) < 0:
                    return -1
            else:
                self._shape(f"unknown payload key {key_name(c, key)!r}")
                if skip_value(c, 2) < 0:
                    return -1
            skip_ws(c)
            if c.p < c.end and c.p[0] == c',':
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == c'}':
                c.p += 1
                return 0
            return fail(c, "expected ',' or '}'")

    cdef int _scan_v1_levels(self, Cursor* c, EntryList* entries, str key) except -2:
        cdef Py_ssize_t index = 0
        cdef int element
        cdef Span value
        cdef Entry* entry
        if c.p[0] != c'[':
            self._shape(f"'{key}' must be an array")
            return skip_value(c, 2)
        c.p += 1
        skip_ws(c)
        if c.p < c.end and c.p[0] == c']':
            c.p += 1
            return 0
        while True:
            skip_ws(c)
            if c.p >= c.end:
                return fail(c, "unexpected end of frame")
            if c.p[0] != c'[':
                self._shape(f"{key}[{index}]: expected [price, volume, timestamp(, 'r')]")
                if skip_value(c, 3) < 0:
                    return -1
            else:
                entries_push(entries)
                entry = &entries.items[entries.count - 1]
                c.p += 1
                element = 0
                skip_ws(c)
                if c.p < c.end and c.p[0] == c']':
                    c.p += 1
                else:
                    while True:
                        skip_ws(c)
                        if c.p < c.end and c.p[0] == c'"':
                            if scan_string(c, &value) < 0:
                                return -1
                            if element == 0:
                                entry.price = value
                            elif element == 1:
                                entry.qty = value
                            elif element == 2:
                                entry.timestamp = value
                            elif element == 3:
                                if span_is(c, value, "r", 1):
                                    entry.republish = True
                                else:
                                    self._shape(f"{key}[{index}]: unknown level flag")
                        else:
                            if element < 3:
                                self._shape(f"{key}[{index}]: expected strings")
                            else:
                                self._shape(f"{key}[{index}]: unknown level flag")
                            if skip_value(c, 4) < 0:
                                return -1
                        element += 1
                        skip_ws(c)
                        if c.p < c.end and c.p[0] == c',':
                            c.p += 1
                            continue
                        if c.p < c.end and c.p[0] == c']':
                            c.p += 1
                            break
                        return fail(c, "expected ',' or ']'")
                if not 2 <= element <= 4:
                    self._shape(f"{key}[{index}]: expected [price, volume, timestamp(, 'r')]")
                entry.fields = F_PRICE | F_QTY
            index += 1
            skip_ws(c)
            if c.p < c.end and c.p[0] == c',':
                c.p += 1
                continue
            if c.p < c.end and c.p[0] == c']':
                c.p += 1
                return 0
            return fail(c, "expected ',' or ']'")

    # -- after the walk ------------------------------------------------------------------------

    cdef int _validate(self) except -1:
        cdef Cursor c
        cdef EntryList* entries
        cdef Py_ssize_t i
        cdef int need
        c.start = self.data
        if self.kind == KIND_V1_BOOK:
            if self._shape_error is not None:
                raise ProtocolError(f"{self.symbol} {self.channel_name}: {self._shape_error}")
            return 0
        channel = "book" if self.kind == KIND_BOOK else "level3"
        kind = self.kind
        self.kind = KIND_OTHER  # until the book is identified (as the reference does)
        if span_is(&c, self._type, "snapshot", 8):
            self.is_snapshot = True
        elif not span_is(&c, self._type, "update", 6):
            raise ProtocolError(f"{channel}: 'type' must be snapshot or update")
        if self._data_count != 1 or not self._data_ok:
            raise ProtocolError(f"{channel}: 'data' must be an array of one book object")
        if self.symbol_span.length < 0:
            raise ProtocolError(f"{channel}: 'symbol' missing or not a string")
        self.kind = kind
        symbol = self.symbol
        if self._shape_error is not None:
            raise ProtocolError(f"{symbol}: {self._shape_error}")
        for side in ("bids", "asks"):
            entries = &self.bid_list if side == "bids" else &self.ask_list
            for i in range(entries.count):
                if self.kind == KIND_BOOK:
                    need = F_PRICE | F_QTY
                    if entries.items[i].fields & need != need:
                        raise ProtocolError(f"{symbol}: {side}[{i}]: needs 'price' and 'qty'")
                else:
                    self._validate_l3(&entries.items[i], symbol, side, i)
        return 0

    cdef int _validate_l3(self, Entry* entry, str symbol, str side, Py_ssize_t i) except -1:
        if not entry.fields & F_ORDER_ID:
            raise ProtocolError(f"{symbol}: {side}[{i}]: needs 'order_id'")
        if not entry.fields & F_LIMIT_PRICE:
            raise ProtocolError(f"{symbol}: {side}[{i}]: needs 'limit_price'")
        if not entry.fields & F_ORDER_QTY:
            raise ProtocolError(f"{symbol}: {side}[{i}]: needs 'order_qty'")
        if entry.order_id.length == 0:
            raise ProtocolError(f"{symbol}: {side}[{i}].order_id: expected a non-empty string")
        if not entry.fields & F_EVENT:
            if not self.is_snapshot:
                raise ProtocolError(f"{symbol}: {side}[{i}]: update entry needs 'event'")
            entry.event = EVENT_ADD
        return 0

    # -- Python-facing views -------------------------------------------------------------------

    cdef str span_str(self, Span span):
        """A string span as str, decoding JSON escapes when present."""
        raw = self.data[span.start:span.start + span.length]
        if span.escaped:
            return json.loads(b'"' + raw + b'"')
        return raw.decode("utf-8", "surrogatepass")

    @property
    def symbol(self):
        """The v2 symbol or v1 pair of the last scanned book frame ("" otherwise)."""
        cdef Span span = self.symbol_span
        if span.length < 0:
            return ""
        # Consecutive frames usually name the same symbol: reuse the str object.
        if (self._symbol_raw is not None and PyBytes_GET_SIZE(self._symbol_raw) == span.length
                and memcmp(PyBytes_AS_STRING(self._symbol_raw), self.data + span.start,
                           span.length) == 0):
            return self._symbol
        self._symbol_raw = self.data[span.start:span.start + span.length]
        self._symbol = self.span_str(span)
        return self._symbol

    @property
    def channel_name(self):
        """The v1 channel name (``book-10``...) of the last scanned frame ("" otherwise)."""
        return "" if self.channel_name_span.length < 0 else self.span_str(self.channel_name_span)

    @property
    def timestamp_ns(self):
        """The message timestamp in ns since the epoch, -1 when the frame has none."""
        cdef int64_t ns
        if self.timestamp_span.length < 0:
            return -1
        if parse_rfc3339_ns(self.data + self.timestamp_span.start, self.timestamp_span.length,
                            &ns) < 0:
            raise ProtocolError(
                f"not an RFC 3339 timestamp: {self.span_str(self.timestamp_span)[:40]!r}"
            )
        return ns

    @property
    def bid_count(self):
        return self.bid_list.count

    @property
    def ask_count(self):
        return self.ask_list.count

    @property
    def bids(self):
        """Bid entries of the last frame as Python objects (tests and debugging only)."""
        return self._entries(&self.bid_list)

    @property
    def asks(self):
        """Ask entries of the last frame as Python objects (tests and debugging only)."""
        return self._entries(&self.ask_list)

    cdef list _entries(self, EntryList* entries):
        out = []
        cdef Py_ssize_t i
        cdef Entry* e
        for i in range(entries.count):
            e = &entries.items[i]
            out.append(PyEntry(
                self._text(e.price), self._text(e.qty),
                order_id=self._text(e.order_id), event=e.event,
                timestamp=self._text(e.timestamp), republish=e.republish,
            ))
        return out

    cdef str _text(self, Span span):
        return "" if span.length < 0 else self.span_str(span)


cdef str key_name(Cursor* c, Span key):
    return c.start[key.start:key.start + key.length].decode("utf-8", "replace")


def parse_number(text, int scale):
    """Number text -> mantissa at ``scale`` with the compiled parser (for tests and tools).

    Raises:
        PrecisionError: exactly as ``bookengine.numbers.parse_mantissa`` would.
    """
    cdef bytes raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    cdef int64_t value
    if parse_mantissa(raw, len(raw), scale, &value) != NUM_OK:
        raise_number_error(raw, len(raw), scale, "value")
    return value


def parse_timestamp(text):
    """RFC 3339 text -> ns since the epoch with the compiled parser (for tests and tools)."""
    cdef bytes raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    cdef int64_t value
    if parse_rfc3339_ns(raw, len(raw), &value) < 0:
        raise ProtocolError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    return value
