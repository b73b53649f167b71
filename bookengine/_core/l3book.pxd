# Order-by-order book (Kraken level3): C layout. See l3book.pyx for the why of each choice.

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

from bookengine._core.ladder cimport Ladder
from bookengine._core.scan cimport DayCache, FrameScanner


# One resting order: 40 bytes. Price and side live in the level (every order of a level shares
# them); the id is packed into 96 bits (see make_key).
ctypedef struct Order:
    uint64_t id_lo          # packed id, or (ID_LONG) a pointer to a malloc'd [uint32 len][bytes]
    int64_t qty
    int64_t timestamp_ns    # -1 when unknown
    int32_t prev            # queue neighbours (slot numbers), NIL at the ends
    int32_t next            # also links the free list
    int32_t level           # index into State.levels; NIL while the slot is free
    uint32_t id_hi          # id kind (top 6 bits) and payload (26 bits)

# One price level: a FIFO queue (intrusive doubly-linked list of order slots) and its totals.
ctypedef struct Level:
    int64_t price
    int64_t qty             # sum of the orders' quantities (the L2 view)
    int32_t head            # front of the queue (first to fill); NIL when empty
    int32_t tail
    int32_t count
    int32_t side            # SIDE_BID / SIDE_ASK; -1 while free (head links the free list)
    char* text              # checksum digits of the queue (levels the checksum has seen)
    Py_ssize_t text_start   # the digits are text[text_start:text_start + text_length]
    Py_ssize_t text_length  # -1 when stale (re-rendered when next hashed)
    Py_ssize_t text_capacity
    int32_t price_length    # digits of the price: a segment is price digits + qty digits
    int32_t ck_pos          # position in its side's checksum block, -1 when not in it

# Order-id hash table entry: open addressing, linear probing, backward-shift deletion.
ctypedef struct TableEntry:
    uint32_t slot           # EMPTY_ENTRY when free
    uint32_t hash           # full hash: probe filter and home bucket without touching the order

# An order id ready for lookup.
ctypedef struct Key:
    uint64_t lo
    uint32_t hi
    uint32_t hash
    const char* text        # ID_LONG only: the id bytes (frame or a kept bytes object)
    Py_ssize_t length

# One validated entry of the message being applied.
ctypedef struct Parsed:
    Key key
    int64_t price
    int64_t qty
    int64_t timestamp_ns
    int32_t side
    int32_t entry           # index in its side's array (error messages)
    int32_t event
    bint has_timestamp

# Effect actions (kraken.events.OrderEffect.action; the compiled trade join reads them too).
cdef enum:
    ACT_ADD = 1
    ACT_MODIFY = 2
    ACT_DELETE = 3
    ACT_REQUEUE = 4
    ACT_TRUNCATE = 5

# One effect of the message being applied (see kraken.events.OrderEffect; ACT_* in l3book.pyx).
ctypedef struct Effect:
    int64_t price
    int64_t new_price
    int64_t qty_before
    int64_t qty_after
    int64_t orders_ahead
    int64_t qty_ahead
    int64_t level_index
    int64_t timestamp_ns
    uint64_t id_lo          # the order id as a packed key (ID_KRAKEN, ID_SHORT) ...
    uint32_t id_hi
    int32_t id_text         # ... or (ID_LONG) an index into L3BookCore._effect_ids; -1 if not
    int32_t action
    int32_t event
    int32_t side

# One undo-log record (see the OP_* constants in l3book.pyx).
ctypedef struct Undo:
    int32_t op
    int32_t slot            # order slot or level index
    int32_t prev
    int32_t next
    int32_t level
    int64_t qty
    int64_t timestamp_ns


# One side's share of the L3 checksum: the digits of its top 10 levels, contiguous (the
# PCLMUL CRC needs long runs), which level sits at each position and where its bytes start.
# The asks block's CRC is kept; the bids block is hashed on from it. The two blocks live apart,
# so a change on one side neither moves nor copies the other's bytes. ``first`` is kept up to
# date by every change: a change to a level in the block (Level.ck_pos) or a level entering
# or leaving the side's top 10 lowers it to that position, so the checksum knows where the
# bytes start to differ without looking at any level.
ctypedef struct CkBlock:
    char* text
    Py_ssize_t capacity
    Py_ssize_t count        # levels in the block; -1 when unknown (rebuilt on the next call)
    Py_ssize_t first        # first position that may differ; >= count when none
    int32_t levels[10]
    Py_ssize_t offsets[11]  # byte offset of each position; offsets[count] = bytes
    uint32_t crc            # CRC-32 of the asks block (unused for the bids block)

ctypedef struct State:
    Order** chunks          # order pool: fixed chunks, so slots never move and slack is small
    Py_ssize_t chunk_count
    Py_ssize_t chunk_slots  # capacity of the chunks pointer array
    int32_t top             # slots [0, top) have been handed out at least once
    int32_t free_order      # free list of order slots
    Level* levels
    int32_t level_top
    int32_t level_capacity
    int32_t free_level
    Ladder ladders[2]       # per side: key (bid: price, ask: -price) -> level index in .qtys
    TableEntry* table
    Py_ssize_t table_capacity  # any size >= 16: buckets by multiply-shift, growth x1.5
    Py_ssize_t order_count  # resting orders = entries in the table
    Py_ssize_t long_id_bytes
    Undo* undo
    Py_ssize_t undo_count
    Py_ssize_t undo_capacity
    bint logging            # False while a snapshot is built aside (it is dropped whole)
    # Checksum cache: the hashed text of the top 10 asks, then of the top 10 bids (see
    # CkBlock), and the final CRC. Nothing is re-hashed when the top 10 per side are untouched.
    CkBlock ck[2]           # per side: ck[SIDE_ASK] is hashed first, then ck[SIDE_BID]
    uint32_t ck_crc


cdef class L3BookCore:
    cdef readonly str symbol
    cdef bytes _symbol_utf8     # to match a frame's symbol bytes without decoding them
    cdef readonly Py_ssize_t depth
    cdef int _price_precision
    cdef int _qty_precision
    cdef bint _needs_resync
    cdef State* _state
    cdef Parsed* _parsed        # the message being applied, reused
    cdef Py_ssize_t _parsed_capacity
    cdef list _keep             # bytes objects backing Key.text while a message is applied
    cdef DayCache _day
    cdef public bint record_effects  # off by default: the plain replay pays one test per event
    cdef public bint sink_effects    # only a compiled sink reads them (see record_effects)
    cdef bint _recording        # record_effects, for the update being applied
    cdef Effect* _effects       # the last applied update's effects (see effects())
    cdef Py_ssize_t _effect_count
    cdef Py_ssize_t _effect_capacity
    cdef Py_ssize_t _effect_deletes  # delete effects so far in this message (a re-add looks)
    cdef list _effect_ids       # str ids of effects whose id is ID_LONG
    cdef object _effects_tuple  # effects() built once per message
    cdef int64_t _effect_ts     # the message's timestamp

    cdef Effect* _effect_new(self, int action, int event, int side, int64_t price) except NULL
    cdef int _effect_id(self, Effect* e, uint32_t hi, uint64_t lo, str text) except -1
    cdef int _record_add(self, State* s, Parsed* p, int32_t li) except -1
    cdef int _record_change(self, State* s, Parsed* p, int32_t oi, int action) except -1
    cdef int _record_truncations(self, State* s) except -1
    cdef void _effects_reset(self)

    cdef object apply_fast(self, FrameScanner scanner)
    cdef Py_ssize_t _ladder_capacity(self)
    cdef int _reserve(self, Py_ssize_t count) except -1
    cdef int _parse_scanned(self, FrameScanner scanner) except -1
    cdef bytes _id_bytes(self, FrameScanner scanner, int side, Py_ssize_t i)
    cdef int _entry_error(self, FrameScanner scanner, int side, Py_ssize_t i) except -1
    cdef int _parse_python(self, bint is_snapshot, object bids, object asks) except -1
    cdef object _apply_parsed(self, bint is_snapshot, Py_ssize_t count, long long checksum)
    cdef void _release_scratch(self)
    cdef int _apply_event(self, State* s, Parsed* p) except -1
    cdef int _check_not_crossed(self, State* s, Py_ssize_t count) except -1
    cdef str _where(self, Parsed* p)
    cdef int64_t _checksum(self) except -1
    cdef Py_ssize_t _count(self, object n, Py_ssize_t size) except -1
    cdef int32_t _find(self, str order_id) except -2
    cdef object _levels_array(self, int side, Py_ssize_t count)


# The order id of a packed key as str (text/length: the id bytes of an ID_LONG key).
cdef str id_text(uint32_t hi, uint64_t lo, const char* text, Py_ssize_t length)
