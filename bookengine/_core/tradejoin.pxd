# The compiled trade join of the analytics: C++ layout. See tradejoin.pyx.

cimport cython
from libc.stdint cimport int8_t, int32_t, int64_t, uint32_t, uint64_t
from libcpp.deque cimport deque
from libcpp.unordered_map cimport unordered_map
from libcpp.utility cimport pair
from libcpp.vector cimport vector

from bookengine._core.sink cimport LineSink


# (price, symbol * 2 + side): the trades and pending reductions that can meet.
ctypedef pair[int64_t, int64_t] Key

cdef extern from *:
    """
    #include <cstddef>
    #include <cstdint>
    #include <utility>
    struct BookengineKeyHash {
        std::size_t operator()(const std::pair<int64_t, int64_t>& key) const noexcept {
            uint64_t h = (uint64_t)key.first * 0x9E3779B97F4A7C15ULL;
            h ^= (uint64_t)key.second * 0xC2B2AE3D27D4EB4FULL + (h >> 29);
            return (std::size_t)(h ^ (h >> 32));
        }
    };
    """
    cdef cppclass KeyHash "BookengineKeyHash":
        pass

# One quantity change of a resting order (analytics.classify.L3Change).
ctypedef struct Change:
    int64_t price
    int64_t new_price       # requeues: the price it rests at afterwards
    int64_t qty_before
    int64_t qty_after
    int64_t timestamp_ns    # the level3 message's, -1 when absent
    int64_t recv_ts_ns
    int64_t orders_ahead    # before the message
    int64_t qty_ahead
    int64_t level_index
    int64_t seq             # message counter
    int64_t place           # orders ahead as the book measured it (after earlier entries)
    uint64_t id_lo          # the order id as the book packs it ...
    uint32_t id_hi
    int32_t id_text         # ... or an index into TradeJoin._long_ids; -1 if not
    int32_t symbol
    int32_t side
    int32_t event           # EVENT_MODIFY or EVENT_DELETE (the entry's event)
    int32_t requeue         # moved to another price or deleted and re-added
    int32_t front           # every order ahead of it also left in this message
    int32_t contested       # lost a trade to an equally close rival
    int32_t left            # it left its level (deleted or requeued)
    int32_t bucket          # its key's bucket (TradeJoin._bucket)

# A trade not yet (fully) explained by a reduction.
ctypedef struct OpenTrade:
    int64_t trade_id
    int64_t timestamp_ns
    int64_t recv_ts_ns
    int64_t remaining

# Key -> bucket: the pending changes and open trades of one price (see TradeJoin._bucket).
ctypedef unordered_map[Key, int32_t, KeyHash] Buckets

# One decision (analytics.classify.Classification).
ctypedef struct Decided:
    Change change
    int64_t traded
    int64_t ids_start       # its trade ids: TradeJoin._trade_ids[ids_start:ids_start + ids_count]
    int32_t ids_count
    int32_t label           # index into LABEL_WORDS
    int32_t reason          # index into REASONS
    int32_t ambiguous

# One entry of a flow window (analytics.dynamics.QueueFlow).
ctypedef struct FlowEvent:
    int64_t t
    int64_t qty
    int32_t level
    int8_t side
    int8_t kind             # 0 fill, 1 cancel, 2 add


@cython.final
cdef class TradeJoin(LineSink):
    cdef readonly int64_t match_window_ns
    cdef readonly int64_t wait_ns
    cdef readonly int64_t keep_ns
    cdef readonly int64_t flow_window_ns
    cdef readonly bint keep_decisions
    cdef readonly Py_ssize_t bucket_slack
    cdef list _symbols              # id -> symbol
    cdef dict _symbol_ids
    cdef list _long_ids             # order ids the book could not pack
    # the join (analytics.classify.FillClassifier)
    cdef vector[Change] _pool       # pending changes; free slots in _free
    cdef vector[int32_t] _free
    cdef deque[int32_t] _pending    # in arrival order
    # Buckets: one per price met, looked up once per change or trade; a change keeps its own.
    cdef Buckets _buckets
    cdef vector[vector[int32_t]] _bucket_pending   # pending changes, in arrival order
    cdef vector[vector[OpenTrade]] _bucket_trades  # trades, explained ones until swept
    cdef vector[Key] _bucket_keys
    cdef vector[int32_t] _bucket_free
    cdef vector[int32_t] _trade_buckets            # buckets holding trades
    cdef vector[int32_t] _trade_bucket_flag        # per bucket: in _trade_buckets
    cdef vector[int64_t] _watermark  # per symbol: latest trade engine time
    cdef int64_t _now
    cdef int64_t _head_due          # the pending head is due when _now reaches this ...
    cdef int64_t _head_settled      # ... or its symbol's trades pass this (INT64_MAX: never)
    cdef int32_t _head_symbol
    cdef int64_t _sweep_every       # keep_ns // 10
    cdef int64_t _data_now
    cdef int64_t _expired_at
    cdef int64_t _seq
    # this message's changes (analytics.queue.BookAnalytics._on_level3)
    cdef vector[Change] _message
    # scratch of one decision
    cdef vector[int32_t] _candidates
    cdef vector[int32_t] _loose
    # out
    cdef vector[Decided] _decided
    cdef vector[int64_t] _trade_ids
    cdef vector[vector[FlowEvent]] _flows
    cdef vector[int64_t] _flow_head
    cdef vector[int64_t] _flow_first
    cdef vector[int64_t] _flow_last
    cdef vector[int32_t] _flow_made
    cdef readonly int64_t trades
    cdef readonly int64_t changes
    cdef readonly int64_t decided
    cdef readonly int64_t ambiguous
    cdef readonly int64_t unmatched_trades
    cdef readonly int64_t level3_messages
    cdef readonly int64_t buckets_freed     # prices forgotten once nothing was left at them
    cdef int64_t _labels[5]

    cdef int32_t _bucket(self, Key key) except -1
    cdef int _add_change(self, Change* change) except -1
    cdef inline void _watch_head(self) noexcept
    cdef int _poll(self, int64_t now) except -1
    cdef int _decide(self, int32_t index) except -1
    cdef int _record(self, Change* change, int label, int64_t traded, Py_ssize_t ids_start,
                     int ambiguous, int reason) except -1
    cdef int _expire(self, int64_t now) except -1
    cdef inline void _flow_time(self, int32_t symbol, int64_t t) noexcept
    cdef inline int _flow_add(self, int32_t symbol, int64_t t, int side, int64_t level,
                              int kind, int64_t qty) except -1
