# Frame scanner: raw frame bytes -> frame kind, symbol and book entries as byte spans.
# Numbers stay text spans here; each book converts them at its own scale (parse_mantissa).

from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp

cdef enum:
    KIND_OTHER = 0
    KIND_BOOK = 1
    KIND_LEVEL3 = 2
    KIND_V1_BOOK = 3

cdef enum:
    EVENT_NONE = 0
    EVENT_ADD = 1
    EVENT_MODIFY = 2
    EVENT_DELETE = 3

# Which keys an entry carried (bit flags in Entry.fields).
cdef enum:
    F_PRICE = 1
    F_QTY = 2
    F_LIMIT_PRICE = 4
    F_ORDER_QTY = 8
    F_ORDER_ID = 16
    F_EVENT = 32
    F_TIMESTAMP = 64

# parse_mantissa results
cdef enum:
    NUM_OK = 0
    NUM_SYNTAX = 1
    NUM_NEGATIVE = 2
    NUM_TOO_PRECISE = 3
    NUM_OVERFLOW = 4

ctypedef struct Span:
    Py_ssize_t start    # offset into the frame
    Py_ssize_t length   # -1 when absent
    bint escaped        # a string with backslash escapes (decode before use)

ctypedef struct Entry:
    Span price          # "price" (L2), "limit_price" (L3) or v1 [0]
    Span qty            # "qty" (L2), "order_qty" (L3) or v1 [1]
    Span order_id
    Span timestamp      # L3 order time, v1 level time
    int event           # EVENT_*
    int fields          # F_* flags of the keys present
    bint republish      # v1 "r" flag

ctypedef struct Cursor:
    const char* start
    const char* p
    const char* end
    const char* error

ctypedef struct EntryList:
    Entry* items
    Py_ssize_t count
    Py_ssize_t capacity


cdef class FrameScanner:
    cdef bytes frame
    cdef const char* data
    cdef Py_ssize_t size
    cdef readonly int kind
    cdef readonly bint is_snapshot
    cdef readonly long long checksum
    cdef readonly bint fast_path
    cdef Span symbol_span
    cdef Span channel_name_span
    cdef Span timestamp_span
    cdef EntryList bid_list
    cdef EntryList ask_list
    cdef object _symbol
    cdef bytes _symbol_raw
    cdef object _shape_error
    cdef int _data_count
    cdef Span _channel
    cdef Span _type
    cdef bint _data_ok
    cdef int _v1_keys

    cpdef int scan(self, object frame) except -1
    cdef int scan_view(self, bytes owner, Py_ssize_t start, Py_ssize_t length) except -1
    cdef str span_str(self, Span span)
    cdef void _reset(self) noexcept
    cdef int _raise_malformed(self, Cursor* c) except -1
    cdef int _scan_kraken_layout(self, Cursor* c) except -1
    cdef void _shape(self, str message)
    cdef int _scan_v2(self, Cursor* c) except -2
    cdef int _scan_data(self, Cursor* c) except -2
    cdef int _scan_book_object(self, Cursor* c) except -2
    cdef int _scan_checksum(self, Cursor* c, str name) except -2
    cdef int _scan_entries(self, Cursor* c, EntryList* entries, str side) except -2
    cdef int _scan_entry(self, Cursor* c, Entry* entry, str side, Py_ssize_t index) except -2
    cdef int _scan_v1(self, Cursor* c) except -2
    cdef int _scan_v1_payload(self, Cursor* c) except -2
    cdef int _scan_v1_levels(self, Cursor* c, EntryList* entries, str key) except -2
    cdef int _validate(self) except -1
    cdef int _validate_l3(self, Entry* entry, str symbol, str side, Py_ssize_t i) except -1
    cdef list _entries(self, EntryList* entries)
    cdef str _text(self, Span span)


cdef int parse_mantissa(const char* text, Py_ssize_t length, int scale,
                        int64_t* out) noexcept nogil
cdef int wire_decimals(const char* text, Py_ssize_t length) noexcept nogil
cdef int parse_rfc3339_ns(const char* text, Py_ssize_t length, int64_t* out) noexcept nogil
cdef object raise_number_error(const char* text, Py_ssize_t length, int scale, str what)


# -- digits and timestamps shared by the readers (the level3 book, the line reader) ------------

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* 10**0 .. 10**19, for every reader's decimal arithmetic. */
    static const uint64_t be_pow10[20] = {
        UINT64_C(1), UINT64_C(10), UINT64_C(100), UINT64_C(1000), UINT64_C(10000),
        UINT64_C(100000), UINT64_C(1000000), UINT64_C(10000000), UINT64_C(100000000),
        UINT64_C(1000000000), UINT64_C(10000000000), UINT64_C(100000000000),
        UINT64_C(1000000000000), UINT64_C(10000000000000), UINT64_C(100000000000000),
        UINT64_C(1000000000000000), UINT64_C(10000000000000000),
        UINT64_C(100000000000000000), UINT64_C(1000000000000000000),
        UINT64_C(10000000000000000000)};
    /* The last `keep` (1..8) of the 8 bytes at s as a decimal number, into *out; 0 when one
       of them is not an ASCII digit. Eight digits at a time (SWAR: validate, then combine
       pairs, quads and halves by multiplication); the bytes before the kept ones are read
       but count as '0'. */
    static inline int be_digits8(const char *s, int keep, uint64_t *out) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t x, low;
        memcpy(&x, s, 8);
        if (keep < 8) {
            low = (UINT64_C(1) << (8 * (8 - keep))) - 1;  /* the leading bytes */
            x = (x & ~low) | (UINT64_C(0x3030303030303030) & low);
        }
        if (((x & UINT64_C(0xF0F0F0F0F0F0F0F0))
             | (((x + UINT64_C(0x0606060606060606)) & UINT64_C(0xF0F0F0F0F0F0F0F0)) >> 4))
                != UINT64_C(0x3333333333333333))
            return 0;
        x -= UINT64_C(0x3030303030303030);
        x = x * 10 + (x >> 8);
        x = (((x & UINT64_C(0x000000FF000000FF)) * (100 + (UINT64_C(1000000) << 32)))
             + (((x >> 16) & UINT64_C(0x000000FF000000FF)) * (1 + (UINT64_C(10000) << 32))))
            >> 32;
        *out = x;
        return 1;
    #else
        uint64_t value = 0;
        int i;
        for (i = 8 - keep; i < 8; i++) {
            if ((unsigned char)(s[i] - '0') > 9)
                return 0;
            value = value * 10 + (uint64_t)(s[i] - '0');
        }
        *out = value;
        return 1;
    #endif
    }
    """
    bint be_digits8(const char* s, int keep, uint64_t* out) noexcept nogil
    const uint64_t be_pow10[20]

# The day of the last timestamp parsed: "YYYY-MM-DD" and its midnight in seconds. Timestamps
# of a stream share a day, so its validation and calendar arithmetic are done once.
ctypedef struct DayCache:
    char text[10]
    int64_t seconds
    bint valid

cdef void remember_day(DayCache* day, const char* s, Py_ssize_t n) noexcept nogil

# Inline here, so each reader's hot loop has them without a call between modules. The general
# parser (parse_rfc3339_ns) defines the rules; the day-cached path accepts only the common
# shape on a day already checked, with exactly the same values.

cdef inline int two_digits(const char* s) noexcept nogil:
    """Two ASCII digits as 0..99, or -1."""
    cdef unsigned int a = <unsigned char>s[0] - 48, b = <unsigned char>s[1] - 48
    if a > 9 or b > 9:
        return -1
    return <int>(a * 10 + b)


cdef inline bint fast_timestamp(DayCache* day, const char* s, Py_ssize_t n,
                                int64_t* out) noexcept nogil:
    """``YYYY-MM-DDTHH:MM:SS(.f{1,9})?Z`` on the cached day; False: not handled here."""
    cdef int hour, minute, second
    cdef int64_t nanos = 0
    cdef uint64_t fraction
    cdef unsigned int digit
    if (not day.valid or n < 20 or n > 30 or s[10] != c'T' or s[n - 1] != c'Z'
            or memcmp(s, day.text, 10) != 0 or s[13] != c':' or s[16] != c':'):
        return False
    hour = two_digits(s + 11)
    minute = two_digits(s + 14)
    second = two_digits(s + 17)
    if hour < 0 or hour > 23 or minute < 0 or minute > 59 or second < 0 or second > 60:
        return False
    if n > 20:  # ".f{1,9}" from s[19] to the 'Z'
        if s[19] != c'.' or n == 21:
            return False
        if n == 30:
            digit = <unsigned char>s[20] - 48
            if digit > 9 or not be_digits8(s + 21, 8, &fraction):
                return False
            nanos = digit * 100000000 + <int64_t>fraction
        else:
            if not be_digits8(s + n - 9, <int>(n - 21), &fraction):
                return False
            nanos = <int64_t>(fraction * be_pow10[30 - n])  # 9 - (n - 21) digits missing
    out[0] = (day.seconds + hour * 3600 + minute * 60 + second) * 1000000000 + nanos
    return True


cdef inline int parse_timestamp(DayCache* day, const char* s, Py_ssize_t n,
                                int64_t* out) noexcept nogil:
    """RFC 3339 text -> ns since the epoch, as scan.parse_rfc3339_ns (0 ok, -1 bad)."""
    if fast_timestamp(day, s, n, out):
        return 0
    if parse_rfc3339_ns(s, n, out) < 0:
        return -1
    remember_day(day, s, n)
    return 0
