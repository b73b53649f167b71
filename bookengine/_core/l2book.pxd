from libc.stdint cimport int64_t, uint32_t

from bookengine._core.ladder cimport Ladder
from bookengine._core.scan cimport EntryList, FrameScanner


cdef enum:
    WINDOW = 10     # levels per side in Kraken's checksum (bookengine.checksum.CHECKSUM_LEVELS)
    DIGITS = 40     # bytes per level in a Window: price digits then qty digits, 19 + 19 at most

# The checksum digits of one side's top 10 levels, kept between messages.
ctypedef struct Window:
    int64_t price[WINDOW]
    int64_t qty[WINDOW]
    char digits[WINDOW][DIGITS]     # price digits then qty digits
    unsigned char length[WINDOW]
    Py_ssize_t count
    char text[WINDOW * DIGITS]      # the ranks' digits back to back: what the CRC reads
    Py_ssize_t text_length


cdef class L2BookCore:
    cdef readonly str symbol
    cdef readonly Py_ssize_t depth
    cdef int _price_precision
    cdef int _qty_precision
    cdef Ladder _bids      # key = price
    cdef Ladder _asks      # key = -price
    cdef int64_t* _scratch  # parsed (price, qty) pairs of the message being applied
    cdef Py_ssize_t _scratch_capacity
    cdef uint32_t _last_checksum  # of the top 10 as last hashed (current unless a side is dirty)
    cdef Window _bid_windows[2]  # previous and current top 10 per side, alternating
    cdef Window _ask_windows[2]
    cdef int _bid_window         # which of the two is current
    cdef int _ask_window
    cdef bint _bids_dirty        # the side's top 10 changed since its window was rendered
    cdef bint _asks_dirty
    cdef uint32_t _ask_crc       # CRC-32 of the current asks window (the checksum's first part)

    cdef object apply_fast(self, FrameScanner scanner)
    cdef bint crossed(self) noexcept nogil
    cdef object _apply_python(self, bint is_snapshot, object bids, object asks, object checksum)
    cdef int _infer_scales(self, FrameScanner scanner) except -1
    cdef int _reserve(self, Py_ssize_t count) except -1
    cdef int _parse_side(self, FrameScanner scanner, EntryList* entries, Py_ssize_t offset,
                         str side) except -1
    cdef object _apply_parsed(self, bint is_snapshot, Py_ssize_t bid_count,
                              Py_ssize_t ask_count, long long checksum)
    cdef uint32_t _checksum(self) noexcept nogil
    cdef Py_ssize_t _count(self, object n, Py_ssize_t size) except -1
    cdef object _array(self, Ladder* ladder, int sign, Py_ssize_t count)
    cdef object _check_ladder(self, Ladder* ladder, int sign)
