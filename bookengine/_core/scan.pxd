# Frame scanner: raw frame bytes -> frame kind, symbol and book entries as byte spans.
# Numbers stay text spans here; each book converts them at its own scale (parse_mantissa).

from libc.stdint cimport int64_t

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
