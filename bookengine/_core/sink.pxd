# What the compiled line reader hands a compiled consumer as it reads (see sink.pyx).

from libc.stdint cimport int32_t, int64_t

from bookengine._core.l3book cimport L3BookCore


# One trade of a v2 trade frame, exact.
ctypedef struct TradeIn:
    int64_t price
    int64_t qty
    int64_t trade_id        # -1 when absent
    int64_t timestamp_ns    # -1 when absent
    int32_t book_side       # the side it traded against: SIDE_ASK for a buy, SIDE_BID for a sell


cdef class LineSink:
    cdef int32_t symbol_id(self, str symbol) except -1
    cdef int on_level3(self, int32_t symbol, L3BookCore book, int64_t recv_ts,
                       bint is_snapshot) except -1
    cdef int on_trades(self, int32_t symbol, const TradeIn* trades, Py_ssize_t count,
                       int64_t recv_ts) except -1
