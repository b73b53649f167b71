# cython: language_level=3
"""Compiled L3 book: every resting order, FIFO per price level, Kraken level3 rules in C.

Same public API as ``bookengine._reference.l3book.L3BookCore`` (the oracle it is tested
against). Layout, chosen so nothing Python-level exists per order or per level:

* **Order pool**: 40-byte ``Order`` slots in fixed chunks of 1024 (slot numbers are stable, a
  pool grows without copying, and at most one chunk is slack). Free slots form a list.
* **Levels**: ``Level`` structs in a growable array (indices stable, free list). Each is a FIFO
  queue: an intrusive doubly-linked list through the order slots, so an add (at the tail), a
  delete and a move are O(1) once the order and level are found. The level keeps its total
  quantity (the L2 view) and, lazily, the checksum digits of its queue.
* **Sides**: the int64 ``Ladder`` of L2 (sorted keys, best last; bid key = price, ask key =
  -price) maps price -> level index: O(log levels) lookup, O(1) at the touch.
* **Order-id index**: open-addressing hash table of (slot, 32-bit hash) pairs, linear probing,
  backward-shift deletion (no tombstones). Buckets by multiply-shift, so the table can grow by
  1.5x and its load stays within [1/2, 3/4]: 8 bytes per entry, at most 16 per order. The
  stored hash filters probes without touching the orders. Kraken ids ``OXXXXX-XXXXX-XXXXXX``
  pack into 88 bits (17 base-36 symbols) so most ids need no heap; others fall back to an
  inline (<= 8 bytes) or heap copy, compared byte for byte.
* **Checksum**: each level caches its digits (rendered when first needed after a change); the
  top 10 levels per side are kept as two contiguous blocks and hashed by ``checksum``'s
  CRC-32 (PCLMULQDQ fold when the CPU has it, slicing tables otherwise; long contiguous runs
  are what the fold needs). A block is re-hashed only when one of
  its levels changed. About 56 bytes per resting order in all (40-byte slot + index).

Atomicity: numbers, timestamps and event names are validated first; then the events apply to
the live book while an undo log records every primitive step (slots and levels freed by the
message are only released at commit, so undo can relink them exactly). An order error or a
crossed result rolls the log back. A snapshot is built in a fresh state and swapped in.
"""

import zlib

import numpy as np

cimport numpy as cnp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_New, PyTuple_SET_ITEM


cdef extern from "Python.h":
    PyObject* PyType_GenericAlloc(PyTypeObject* cls, Py_ssize_t nitems)  # new reference
from libc.stdint cimport int8_t, int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memmove

from bookengine._core.checksum cimport crc32_update, digit_count, write_digits
from bookengine._core.ladder cimport (
    Ladder,
    ladder_find,
    ladder_free,
    ladder_init,
    ladder_key,
    ladder_len,
    ladder_qty,
    ladder_remove,
    ladder_set,
    ladder_truncate,
)
from bookengine._core.scan cimport (
    EVENT_ADD,
    EVENT_DELETE,
    KIND_LEVEL3,
    NUM_OK,
    DayCache,
    Entry,
    Span,
    EntryList,
    FrameScanner,
    be_digits8,
    be_pow10,
    parse_mantissa,
    parse_timestamp,
)

from bookengine import core_types
from bookengine.errors import ChecksumError, ProtocolError
from bookengine.core_types import NO_EFFECTS, OrderEffect
from bookengine.numbers import check_scale, mantissa_text

cnp.import_array()

cdef extern from *:
    """
    #if defined(__GNUC__)
    #define be_prefetch(address) __builtin_prefetch(address)
    #else
    #define be_prefetch(address) ((void)(address))
    #endif

    """
    void be_prefetch(const void* address) noexcept nogil


cdef enum:
    NIL = -1
    SIDE_BID = 0
    SIDE_ASK = 1
    CHUNK_BITS = 10
    CHUNK_SIZE = 1024               # orders per pool chunk: 40 KiB
    CHUNK_MASK = 1023
    MAX_SLOTS = 0x7FFFFC00          # slot numbers are int32
    CHECKSUM_LEVELS = 10
    ORDER_DIGITS = 38               # at most 19 price + 19 qty digits per order
    ID_KRAKEN = 1                   # 17 base-36 symbols: 12 in id_lo, 5 in the id_hi payload
    ID_SHORT = 2                    # <= 8 bytes inline in id_lo, length in the payload
    ID_LONG = 3                     # heap copy in id_lo, 26 bits of hash in the payload
    ID_SHIFT = 26
    ID_PAYLOAD = 0x3FFFFFF
    KEEP_TEXT = 1024                # a freed level keeps a checksum buffer up to this size
    KEEP_PARSED = 65536             # entries of scratch kept between messages

# Effect actions (kraken.events.OrderEffect.action): ACT_* in l3book.pxd.
cdef tuple _ACTION_WORDS = ("", "add", "modify", "delete", "requeue", "truncate")
cdef tuple _EVENT_WORDS = ("", "add", "modify", "delete")
cdef tuple _SIDE_WORDS = ("bid", "ask")
cdef Py_ssize_t EFFECT_FIELDS = 13
if (len(OrderEffect._fields) != EFFECT_FIELDS or OrderEffect.__slots__ != ()
        or OrderEffect.__basicsize__ != tuple.__basicsize__):
    raise ImportError("bookengine._core.l3book builds OrderEffect records: a 13-field NamedTuple")


cdef inline void tuple_put(object t, Py_ssize_t i, object value):
    Py_INCREF(value)  # PyTuple_SET_ITEM steals a reference
    PyTuple_SET_ITEM(t, i, value)


cdef object new_effect(PyTypeObject* cls):
    """An empty OrderEffect (a tuple subclass of EFFECT_FIELDS items, filled by the caller):
    what ``tuple.__new__(OrderEffect, items)`` makes, without its two temporary tuples."""
    cdef PyObject* raw = PyType_GenericAlloc(cls, EFFECT_FIELDS)
    if raw == NULL:
        raise MemoryError()
    result = <object>raw  # a new reference: drop the allocation's own
    Py_DECREF(result)
    return result

# Undo-log operations. Each undoes one primitive step; replayed newest first.
cdef enum:
    OP_NEW = 1          # slot allocated, linked at the tail, indexed  -> unindex, unlink, free
    OP_UNLINK = 2       # slot left (prev, next) of level, qty/ts saved -> relink, restore
    OP_LINK = 3         # slot linked at the tail of its level        -> unlink
    OP_UNINDEX = 4      # slot left the index (deleted)               -> reindex; commit frees
    OP_SETQTY = 5       # qty/ts changed in place                     -> restore
    OP_LEVEL_NEW = 6    # level created and put in its ladder         -> remove, free
    OP_LEVEL_GONE = 7   # empty level taken out of its ladder         -> put back; commit frees

core_types.check_compiled_codes(
    {"SIDE_BID": SIDE_BID, "SIDE_ASK": SIDE_ASK, "CHECKSUM_LEVELS": CHECKSUM_LEVELS,
     "EVENT_ADD": EVENT_ADD, "EVENT_DELETE": EVENT_DELETE, "KIND_LEVEL3": KIND_LEVEL3},
    __name__,
)

cdef uint32_t EMPTY_ENTRY = 0xFFFFFFFF
cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF
cdef signed char BASE36[256]
cdef char DIGITS36[36]
cdef int LO_POSITIONS[12]
cdef int HI_POSITIONS[5]


cdef void _build_tables() noexcept:
    cdef int i
    for i in range(256):
        BASE36[i] = -1
    for i in range(10):
        BASE36[48 + i] = <signed char>i
        DIGITS36[i] = <char>(48 + i)
    for i in range(26):
        BASE36[65 + i] = <signed char>(10 + i)
        DIGITS36[10 + i] = <char>(65 + i)
    # "OXXXXX-XXXXX-XXXXXX": the 17 symbols sit at 0-5, 7-11, 13-18.
    for i, position in enumerate((0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 13)):
        LO_POSITIONS[i] = position
    for i, position in enumerate((14, 15, 16, 17, 18)):
        HI_POSITIONS[i] = position


_build_tables()


# -- order ids ---------------------------------------------------------------------------------

cdef inline uint32_t mix_hash(uint64_t x) noexcept nogil:
    # splitmix64 finaliser: every input bit reaches the top 32 bits used for the table.
    x ^= x >> 30
    x *= <uint64_t>0xBF58476D1CE4E5B9
    x ^= x >> 27
    x *= <uint64_t>0x94D049BB133111EB
    x ^= x >> 31
    return <uint32_t>(x >> 32)


cdef inline uint32_t id_hash(uint32_t hi, uint64_t lo) noexcept nogil:
    # A heap id's lo is a pointer (differs between lookup and stored key): hash its hi only,
    # which carries 26 bits of the bytes' hash.
    if (hi >> ID_SHIFT) == ID_LONG:
        return mix_hash(<uint64_t>hi * <uint64_t>0x9E3779B97F4A7C15)
    return mix_hash(lo ^ (<uint64_t>hi * <uint64_t>0x9E3779B97F4A7C15))


cdef inline int64_t base36_run(const unsigned char* s, int count) noexcept nogil:
    """``count`` base-36 symbols as a number; negative when one is not [0-9A-Z]."""
    cdef int64_t value = 0
    cdef int bad = 0, digit, i
    for i in range(count):
        digit = BASE36[s[i]]
        bad |= digit
        value = value * 36 + digit
    return -1 if bad < 0 else value


cdef void make_key(const char* s, Py_ssize_t n, Key* key) noexcept nogil:
    """Pack an order id (UTF-8 bytes) into a lookup key."""
    cdef const unsigned char* u = <const unsigned char*>s
    cdef int64_t a = -1, b = -1, c = -1, d = -1
    cdef uint64_t lo, h
    cdef Py_ssize_t i
    key.text = NULL
    key.length = 0
    if n == 19 and s[6] == c'-' and s[12] == c'-':
        # "OXXXXX-XXXXX-XXXXXX": symbols 0-5 | 7-11 and 13 | 14-18, Horner in pieces
        a = base36_run(u, 6)
        b = base36_run(u + 7, 5)
        c = base36_run(u + 13, 1)
        d = base36_run(u + 14, 5)
    if (a | b | c | d) >= 0:  # 36**12 < 2**63 and 36**5 < 2**26: both parts fit
        key.lo = <uint64_t>((a * 60466176 + b) * 36 + c)  # 36**5 = 60466176
        key.hi = <uint32_t>((ID_KRAKEN << ID_SHIFT) | d)
    elif n <= 8:
        lo = 0
        memcpy(&lo, s, n)
        key.lo = lo
        key.hi = <uint32_t>((ID_SHORT << ID_SHIFT) | n)
    else:
        h = 0xCBF29CE484222325  # FNV-1a 64
        for i in range(n):
            h = (h ^ u[i]) * <uint64_t>0x100000001B3
        key.lo = 0
        key.hi = <uint32_t>((ID_LONG << ID_SHIFT) | (h & ID_PAYLOAD))
        key.text = s
        key.length = n
    key.hash = id_hash(key.hi, key.lo)


cdef inline bint key_matches(Order* o, Key* key) noexcept nogil:
    cdef const char* block
    if o.id_hi != key.hi:
        return False
    if (key.hi >> ID_SHIFT) != ID_LONG:
        return o.id_lo == key.lo
    block = <const char*><size_t>o.id_lo
    return ((<const uint32_t*>block)[0] == key.length
            and memcmp(block + sizeof(uint32_t), key.text, key.length) == 0)


cdef str id_text(uint32_t hi, uint64_t lo, const char* text, Py_ssize_t length):
    """The order id of a key as str (inverse of make_key)."""
    cdef char buffer[19]
    cdef uint64_t payload = hi & ID_PAYLOAD
    cdef int i
    cdef int kind = hi >> ID_SHIFT
    if kind == ID_KRAKEN:
        for i in range(4, -1, -1):
            buffer[HI_POSITIONS[i]] = DIGITS36[payload % 36]
            payload //= 36
        for i in range(11, -1, -1):
            buffer[LO_POSITIONS[i]] = DIGITS36[lo % 36]
            lo //= 36
        buffer[6] = c'-'
        buffer[12] = c'-'
        return buffer[:19].decode("ascii")
    if kind == ID_SHORT:
        memcpy(buffer, &lo, 8)
        return buffer[:payload].decode("utf-8", "surrogatepass")
    return text[:length].decode("utf-8", "surrogatepass")


cdef str order_id_text(Order* o):
    cdef const char* block
    if (o.id_hi >> ID_SHIFT) == ID_LONG:
        block = <const char*><size_t>o.id_lo
        return id_text(o.id_hi, 0, block + sizeof(uint32_t), (<const uint32_t*>block)[0])
    return id_text(o.id_hi, o.id_lo, NULL, 0)


cdef inline bint plain_ascii(const char* s, Py_ssize_t n) noexcept nogil:
    """Printable ASCII without a backslash: the raw bytes are the id's text."""
    cdef Py_ssize_t i
    for i in range(n):
        if not (0x20 <= <unsigned char>s[i] < 0x7F) or s[i] == c'\\':
            return False
    return True


# -- numbers and timestamps: fast paths -------------------------------------------------------
# The scanner's general parsers (scan.parse_mantissa, scan.parse_rfc3339_ns) define the rules;
# these accept only the common shapes, give exactly the same values there, and defer every
# other input to the general parsers (which also produce the errors).

cdef inline bint fast_mantissa(const char* s, Py_ssize_t n, int scale,
                               int64_t* out) noexcept nogil:
    """Plain ``D+(.D+)?`` with at most ``scale`` decimals and 18 - ``scale`` integer digits.

    Those bounds keep every value under 10**18 (no overflow check needed). False: not handled
    here (the general parser decides).
    """
    cdef Py_ssize_t i = 0, point
    cdef uint64_t value = 0, fraction
    cdef unsigned int digit
    while i < n:
        digit = <unsigned char>s[i] - 48
        if digit > 9:
            break
        value = value * 10 + digit  # may wrap on a long run: refused just below
        i += 1
    if i == 0 or i + scale > 18:
        return False
    if i == n:
        out[0] = <int64_t>(value * be_pow10[scale])
        return True
    if s[i] != c'.':
        return False
    i += 1
    point = i
    if 0 < n - point <= 8 and n >= 8:  # the fraction is the tail of the span's last 8 bytes
        if n - point > scale or not be_digits8(s + n - 8, <int>(n - point), &fraction):
            return False
        out[0] = <int64_t>((value * be_pow10[n - point] + fraction)
                           * be_pow10[scale - (n - point)])
        return True
    while i < n:
        digit = <unsigned char>s[i] - 48
        if digit > 9:
            return False
        value = value * 10 + digit
        i += 1
    if i == point or i - point > scale:
        return False
    out[0] = <int64_t>(value * be_pow10[scale - (i - point)])
    return True


def _parse_numbers(texts, int scale):
    """Each number text at ``scale`` as the book parses it: the mantissa, or None when the
    fast path defers to the scanner's parser (for tests)."""
    cdef bytes raw
    cdef int64_t value
    result = []
    for raw in texts:
        result.append(value if fast_mantissa(raw, len(raw), scale, &value) else None)
    return result


def _parse_timestamps(texts):
    """Timestamp texts in order as the book parses them (one day cache): ns, or None when the
    text is not RFC 3339 (for tests)."""
    cdef DayCache day
    cdef bytes raw
    cdef int64_t value
    day.valid = False
    result = []
    for raw in texts:
        result.append(value if parse_timestamp(&day, raw, len(raw), &value) == 0 else None)
    return result


# -- the state: pool, levels, ladders, index, undo log -------------------------------------------

cdef inline Order* order_at(State* s, int32_t i) noexcept nogil:
    return &s.chunks[i >> CHUNK_BITS][i & CHUNK_MASK]


cdef inline int64_t side_key(int side, int64_t price) noexcept nogil:
    # Larger key = better level on both sides (the ladder keeps the best last).
    return price if side == SIDE_BID else -price


cdef State* state_new(Py_ssize_t ladder_capacity) except NULL:
    cdef State* s = <State*>calloc(1, sizeof(State))
    cdef Py_ssize_t i
    if s == NULL:
        raise MemoryError()
    s.free_order = NIL
    s.free_level = NIL
    s.logging = True
    try:
        ladder_init(&s.ladders[0], ladder_capacity)
        ladder_init(&s.ladders[1], ladder_capacity)
        s.table = <TableEntry*>malloc(16 * sizeof(TableEntry))
        if s.table == NULL:
            raise MemoryError()
    except BaseException:
        state_free(s)
        raise
    s.table_capacity = 16
    for i in range(16):
        s.table[i].slot = EMPTY_ENTRY
    return s


cdef void state_free(State* s) noexcept:
    cdef int32_t i
    cdef Order* o
    if s == NULL:
        return
    for i in range(s.top):
        o = order_at(s, i)
        if o.level != NIL and (o.id_hi >> ID_SHIFT) == ID_LONG:
            free(<void*><size_t>o.id_lo)
    for i in range(s.chunk_count):
        free(s.chunks[i])
    free(s.chunks)
    for i in range(s.level_top):
        free(s.levels[i].text)
    free(s.levels)
    ladder_free(&s.ladders[0])
    ladder_free(&s.ladders[1])
    free(s.table)
    free(s.undo)
    free(s.ck[0].text)
    free(s.ck[1].text)
    free(s)


cdef int32_t slot_alloc(State* s) except -2:
    cdef int32_t i = s.free_order
    cdef Order** chunks
    cdef Order* chunk
    cdef Py_ssize_t capacity
    if i != NIL:
        s.free_order = order_at(s, i).next
        return i
    if s.top == s.chunk_count * CHUNK_SIZE:
        if s.top >= MAX_SLOTS:
            raise MemoryError("an L3 book holds at most 2**31 - 1024 orders")
        if s.chunk_count == s.chunk_slots:
            capacity = s.chunk_slots * 2 if s.chunk_slots else 8
            chunks = <Order**>realloc(s.chunks, capacity * sizeof(Order*))
            if chunks == NULL:
                raise MemoryError()
            s.chunks = chunks
            s.chunk_slots = capacity
        chunk = <Order*>malloc(CHUNK_SIZE * sizeof(Order))
        if chunk == NULL:
            raise MemoryError()
        s.chunks[s.chunk_count] = chunk
        s.chunk_count += 1
    i = s.top
    s.top += 1
    return i


cdef void slot_free(State* s, int32_t i) noexcept nogil:
    cdef Order* o = order_at(s, i)
    cdef const uint32_t* block
    if (o.id_hi >> ID_SHIFT) == ID_LONG:
        block = <const uint32_t*><size_t>o.id_lo
        s.long_id_bytes -= sizeof(uint32_t) + block[0]
        free(<void*>block)
    o.id_hi = 0
    o.id_lo = 0
    o.level = NIL
    o.next = s.free_order
    s.free_order = i


cdef int32_t level_alloc(State* s, int side, int64_t price) except -2:
    cdef int32_t li = s.free_level, capacity
    cdef Level* levels
    cdef Level* lv
    if li != NIL:
        s.free_level = s.levels[li].head
    else:
        if s.level_top == s.level_capacity:
            if s.level_capacity >= MAX_SLOTS // 2:
                raise MemoryError("too many price levels")
            capacity = s.level_capacity * 2 if s.level_capacity else 16
            levels = <Level*>realloc(s.levels, capacity * sizeof(Level))
            if levels == NULL:
                raise MemoryError()
            s.levels = levels
            s.level_capacity = capacity
        li = s.level_top
        s.level_top += 1
        s.levels[li].text = NULL
        s.levels[li].text_capacity = 0
    lv = &s.levels[li]
    lv.price = price
    lv.qty = 0
    lv.head = NIL
    lv.tail = NIL
    lv.count = 0
    lv.side = side
    lv.text_start = 0
    # Digits are kept only for levels the checksum has rendered (the top 10, mostly):
    # deep levels cost neither the memory nor the upkeep.
    lv.text_length = -1
    lv.price_length = digit_count(price)
    lv.ck_pos = -1  # level_create reports its rank to the checksum
    return li


cdef void level_free(State* s, int32_t li) noexcept nogil:
    cdef Level* lv = &s.levels[li]
    if lv.text_capacity > KEEP_TEXT:  # a deep queue's digits: do not hoard them
        free(lv.text)
        lv.text = NULL
        lv.text_capacity = 0
    lv.side = -1
    lv.head = s.free_level
    s.free_level = li


cdef inline int32_t level_find(State* s, int side, int64_t price) noexcept nogil:
    """The level at ``price`` on ``side``, or NIL.

    Most events land a few levels from the touch (the ladder's top end): gallop down from
    it (1, 2, 4 ... levels), then bisect what is left, so a level at rank r costs about
    2 log2(r) probes and touches few cache lines of a deep ladder.
    """
    cdef Ladder* ladder = &s.ladders[side]
    cdef const int64_t* keys = ladder.keys
    cdef int64_t key = side_key(side, price)
    cdef Py_ssize_t lo = ladder.lo, hi = ladder.hi, step = 1, probe, mid
    while True:  # keys[hi:] > key throughout
        probe = hi - step
        if probe <= lo:
            break
        if keys[probe] <= key:
            lo = probe
            break
        hi = probe
        step *= 2
    while lo < hi:  # the first key >= key in [lo, hi]
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < ladder.hi and keys[lo] == key:
        return <int32_t>ladder.qtys[lo]
    return NIL


cdef inline void ck_touch(State* s, Level* lv) noexcept nogil:
    """The level's digits changed: its checksum block differs from its position on."""
    cdef CkBlock* block = &s.ck[lv.side]
    if 0 <= lv.ck_pos < block.first:
        block.first = lv.ck_pos


cdef inline void ck_rank_changed(State* s, int side, Py_ssize_t rank) noexcept nogil:
    """A level entered or left the side at ``rank`` (0 = best): positions from there move."""
    cdef CkBlock* block = &s.ck[side]
    if 0 <= rank < block.first:
        block.first = rank


cdef inline void link_tail(State* s, int32_t li, int32_t oi) noexcept nogil:
    cdef Level* lv = &s.levels[li]
    cdef Order* o = order_at(s, oi)
    o.level = li
    o.prev = lv.tail
    o.next = NIL
    if lv.tail != NIL:
        order_at(s, lv.tail).next = oi
    else:
        lv.head = oi
    lv.tail = oi
    lv.count += 1
    lv.qty += o.qty
    lv.text_length = -1  # the event path may repair it (text_push_back); undo does not
    ck_touch(s, lv)


cdef inline void unlink(State* s, int32_t oi) noexcept nogil:
    cdef Order* o = order_at(s, oi)
    cdef Level* lv = &s.levels[o.level]
    if o.prev != NIL:
        order_at(s, o.prev).next = o.next
    else:
        lv.head = o.next
    if o.next != NIL:
        order_at(s, o.next).prev = o.prev
    else:
        lv.tail = o.prev
    lv.count -= 1
    lv.qty -= o.qty
    lv.text_length = -1  # the event path may repair it (text_pop_*); undo does not
    ck_touch(s, lv)


cdef inline void relink(State* s, int32_t oi, int32_t prev, int32_t next,
                        int32_t li) noexcept nogil:
    # Undo of unlink: at undo time prev and next are adjacent again, exactly as they were.
    cdef Order* o = order_at(s, oi)
    cdef Level* lv = &s.levels[li]
    o.level = li
    o.prev = prev
    o.next = next
    if prev != NIL:
        order_at(s, prev).next = oi
    else:
        lv.head = oi
    if next != NIL:
        order_at(s, next).prev = oi
    else:
        lv.tail = oi
    lv.count += 1
    lv.qty += o.qty
    lv.text_length = -1  # the event path may repair it (text_push_back); undo does not
    ck_touch(s, lv)


cdef inline Py_ssize_t table_home(State* s, uint32_t hash) noexcept nogil:
    # Multiply-shift maps the hash onto any table size (not only powers of two), so the
    # table can grow by 1.5x: its load stays in [1/2, 3/4], at most 16 bytes per order.
    return <Py_ssize_t>((<uint64_t>hash * <uint64_t>s.table_capacity) >> 32)


cdef inline Py_ssize_t table_next(State* s, Py_ssize_t i) noexcept nogil:
    i += 1
    return 0 if i == s.table_capacity else i


cdef inline int32_t table_find_at(State* s, Key* key, Py_ssize_t* at) noexcept nogil:
    """The slot of ``key``'s order (NIL when absent); ``at`` gets its index entry."""
    cdef Py_ssize_t i = table_home(s, key.hash)
    cdef TableEntry* entry
    while True:
        entry = &s.table[i]
        if entry.slot == EMPTY_ENTRY:
            return NIL
        if entry.hash == key.hash and key_matches(order_at(s, <int32_t>entry.slot), key):
            at[0] = i
            return <int32_t>entry.slot
        i = table_next(s, i)


cdef inline int32_t table_find(State* s, Key* key) noexcept nogil:
    cdef Py_ssize_t at
    return table_find_at(s, key, &at)


cdef int table_reserve(State* s, Py_ssize_t extra) except -1:
    """Grow the table so ``extra`` more ids keep the load at or under 3/4."""
    cdef Py_ssize_t needed = s.order_count + extra, capacity = s.table_capacity, i, j
    cdef Py_ssize_t old_capacity = s.table_capacity
    cdef TableEntry* table
    cdef TableEntry* old = s.table
    if needed * 4 <= capacity * 3:
        return 0
    while needed * 4 > capacity * 3:
        capacity += capacity // 2
    if capacity > 0xFFFFFFFF:
        raise MemoryError("order index too large")
    table = <TableEntry*>malloc(capacity * sizeof(TableEntry))
    if table == NULL:
        raise MemoryError()
    for i in range(capacity):
        table[i].slot = EMPTY_ENTRY
    s.table = table
    s.table_capacity = capacity
    for i in range(old_capacity):
        if old[i].slot != EMPTY_ENTRY:
            j = table_home(s, old[i].hash)
            while table[j].slot != EMPTY_ENTRY:
                j = table_next(s, j)
            table[j] = old[i]
    free(old)
    return 0


cdef inline void table_put(State* s, uint32_t hash, int32_t slot) noexcept nogil:
    # The caller reserved room (table_reserve), or is undoing a removal.
    cdef Py_ssize_t i = table_home(s, hash)
    while s.table[i].slot != EMPTY_ENTRY:
        i = table_next(s, i)
    s.table[i].slot = <uint32_t>slot
    s.table[i].hash = hash
    s.order_count += 1


cdef void table_delete(State* s, uint32_t hash, int32_t slot) noexcept nogil:
    cdef Py_ssize_t i = table_home(s, hash)
    while s.table[i].slot != <uint32_t>slot:
        i = table_next(s, i)
    table_delete_at(s, i)


cdef void table_delete_at(State* s, Py_ssize_t i) noexcept nogil:
    """Remove index entry ``i``."""
    cdef Py_ssize_t j, home
    # Backward shift: pull later entries of the probe run into the hole unless their home
    # lies cyclically in (hole, j]; lookups then never need tombstones.
    j = i
    while True:
        j = table_next(s, j)
        if s.table[j].slot == EMPTY_ENTRY:
            break
        home = table_home(s, s.table[j].hash)
        if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
            s.table[i] = s.table[j]
            i = j
    s.table[i].slot = EMPTY_ENTRY
    s.order_count -= 1


cdef int undo_reserve(State* s, Py_ssize_t extra) except -1:
    cdef Py_ssize_t capacity
    cdef Undo* grown
    if s.undo_count + extra > s.undo_capacity:
        capacity = max(2 * s.undo_capacity, s.undo_count + extra, 64)
        grown = <Undo*>realloc(s.undo, capacity * sizeof(Undo))
        if grown == NULL:
            raise MemoryError()
        s.undo = grown
        s.undo_capacity = capacity
    return 0


cdef inline void undo_push(State* s, int32_t op, int32_t slot, int32_t prev, int32_t next,
                           int32_t level, int64_t qty, int64_t timestamp_ns) noexcept nogil:
    # The caller reserved room (undo_reserve) before the first change of the event.
    cdef Undo* u
    if not s.logging:
        return
    u = &s.undo[s.undo_count]
    s.undo_count += 1
    u.op = op
    u.slot = slot
    u.prev = prev
    u.next = next
    u.level = level
    u.qty = qty
    u.timestamp_ns = timestamp_ns


cdef int32_t level_create(State* s, int side, int64_t price) except -2:
    cdef int32_t li = level_alloc(s, side, price)
    cdef Py_ssize_t rank
    try:
        rank = ladder_set(&s.ladders[side], side_key(side, price), li)
    except BaseException:
        level_free(s, li)
        raise
    ck_rank_changed(s, side, rank)
    undo_push(s, OP_LEVEL_NEW, li, NIL, NIL, NIL, 0, 0)
    return li


cdef inline void level_drop_if_empty(State* s, int32_t li) noexcept nogil:
    if s.levels[li].count == 0:
        level_drop(s, li)


cdef void level_drop(State* s, int32_t li) noexcept nogil:
    # An emptied level leaves its ladder now but is only freed at commit (undo puts it back).
    cdef Level* lv = &s.levels[li]
    ck_rank_changed(s, lv.side, ladder_remove(&s.ladders[lv.side], side_key(lv.side, lv.price)))
    undo_push(s, OP_LEVEL_GONE, li, NIL, NIL, NIL, 0, 0)


cdef int state_rollback(State* s) except -1:
    cdef Py_ssize_t k
    cdef Undo* u
    cdef Order* o
    cdef Level* lv
    if s.undo_count:  # rare: the checksum blocks are simply rebuilt
        s.ck[SIDE_BID].first = 0
        s.ck[SIDE_ASK].first = 0
    for k in range(s.undo_count - 1, -1, -1):
        u = &s.undo[k]
        if u.op == OP_LEVEL_NEW or u.op == OP_LEVEL_GONE:
            lv = &s.levels[u.slot]
            if u.op == OP_LEVEL_NEW:
                ladder_remove(&s.ladders[lv.side], side_key(lv.side, lv.price))
                level_free(s, u.slot)
            else:  # the ladder held this key before: no growth, cannot fail
                ladder_set(&s.ladders[lv.side], side_key(lv.side, lv.price), u.slot)
            continue
        o = order_at(s, u.slot)
        if u.op == OP_NEW:
            table_delete(s, id_hash(o.id_hi, o.id_lo), u.slot)
            unlink(s, u.slot)
            slot_free(s, u.slot)
        elif u.op == OP_UNLINK:
            o.qty = u.qty
            o.timestamp_ns = u.timestamp_ns
            relink(s, u.slot, u.prev, u.next, u.level)
        elif u.op == OP_LINK:
            unlink(s, u.slot)
        elif u.op == OP_UNINDEX:
            table_put(s, id_hash(o.id_hi, o.id_lo), u.slot)
        elif u.op == OP_SETQTY:
            lv = &s.levels[o.level]
            lv.qty += u.qty - o.qty
            lv.text_length = -1
            o.qty = u.qty
            o.timestamp_ns = u.timestamp_ns
    s.undo_count = 0
    return 0


cdef inline int64_t level_rank(State* s, int side, int64_t price) noexcept nogil:
    """The index (0 = best) the level at ``price`` has, or takes when it is created."""
    cdef Ladder* ladder = &s.ladders[side]
    cdef int64_t key = side_key(side, price)
    cdef Py_ssize_t at = ladder_find(ladder, key)
    if at < ladder.hi and ladder.keys[at] == key:
        return ladder.hi - 1 - at
    return ladder.hi - at


cdef inline void queue_ahead(State* s, Level* lv, int32_t oi, int64_t* orders,
                             int64_t* qty) noexcept nogil:
    """Orders and quantity ahead of ``oi`` in its queue: walked from both ends at once, so
    the cost is O(min(orders ahead, orders behind))."""
    cdef int32_t front = lv.head, back = lv.tail
    cdef int64_t front_n = 0, front_q = 0, back_n = 0, back_q = 0
    cdef Order* o
    while True:
        if front == oi:
            orders[0] = front_n
            qty[0] = front_q
            return
        if back == oi:
            o = order_at(s, oi)
            orders[0] = lv.count - 1 - back_n
            qty[0] = lv.qty - o.qty - back_q
            return
        o = order_at(s, front)
        front_n += 1
        front_q += o.qty
        front = o.next
        o = order_at(s, back)
        back_n += 1
        back_q += o.qty
        back = o.prev


cdef inline bint state_crossed(State* s) noexcept nogil:
    """Best bid >= best ask (both sides non-empty)."""
    return (ladder_len(&s.ladders[SIDE_BID]) > 0 and ladder_len(&s.ladders[SIDE_ASK]) > 0
            and ladder_key(&s.ladders[SIDE_BID], 0) >= -ladder_key(&s.ladders[SIDE_ASK], 0))


cdef void state_commit(State* s) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(s.undo_count):
        if s.undo[k].op == OP_UNINDEX:
            slot_free(s, s.undo[k].slot)
        elif s.undo[k].op == OP_LEVEL_GONE:
            level_free(s, s.undo[k].slot)
    s.undo_count = 0


cdef void state_truncate(State* s, int side, Py_ssize_t depth) noexcept nogil:
    """Keep the best ``depth`` levels; the orders of the others leave the index silently."""
    cdef Ladder* ladder = &s.ladders[side]
    cdef Py_ssize_t at
    cdef int32_t li, oi, next
    cdef Order* o
    if ladder.hi - ladder.lo <= depth:
        return
    ck_rank_changed(s, side, depth)  # the levels ranked from depth on leave
    for at in range(ladder.lo, ladder.hi - depth):
        li = <int32_t>ladder.qtys[at]
        oi = s.levels[li].head
        while oi != NIL:
            o = order_at(s, oi)
            next = o.next
            table_delete(s, id_hash(o.id_hi, o.id_lo), oi)
            slot_free(s, oi)
            oi = next
        level_free(s, li)
    ladder_truncate(ladder, depth)


cdef int level_render(State* s, Level* lv) except -1:
    """Cache the level's checksum digits: price digits + qty digits per order, queue order."""
    cdef char price_digits[24]
    cdef Py_ssize_t price_length, needed = lv.count * ORDER_DIGITS + 1
    cdef char* out
    cdef char* grown
    cdef int32_t oi = lv.head
    cdef Order* o
    if needed > lv.text_capacity:
        grown = <char*>realloc(lv.text, needed)
        if grown == NULL:
            raise MemoryError()
        lv.text = grown
        lv.text_capacity = needed
    price_length = write_digits(price_digits, lv.price) - price_digits
    out = lv.text
    lv.text_start = 0
    while oi != NIL:
        o = order_at(s, oi)
        memcpy(out, price_digits, price_length)
        out = write_digits(out + price_length, o.qty)
        oi = o.next
    lv.text_length = out - lv.text
    return 0


# Incremental upkeep of a level's checksum digits for the common cases at the touch: an add
# at the back, a fill or cancel at the front, a change at either end. Each is O(1) (the text
# keeps a start offset, so dropping the front moves nothing). Any other change leaves the
# text stale and it is rendered again when next hashed. None of these can fail: when memory
# runs out the text just goes stale.

cdef void text_push_back(Level* lv, int64_t qty) noexcept nogil:
    cdef Py_ssize_t capacity
    cdef char* grown
    cdef char* out
    if lv.text_start + lv.text_length + ORDER_DIGITS > lv.text_capacity:
        if lv.text_start > 0:
            memmove(lv.text, lv.text + lv.text_start, lv.text_length)
            lv.text_start = 0
        if lv.text_length + ORDER_DIGITS > lv.text_capacity:
            capacity = max(2 * lv.text_capacity, lv.text_length + ORDER_DIGITS + 64)
            grown = <char*>realloc(lv.text, capacity)
            if grown == NULL:
                lv.text_length = -1
                return
            lv.text = grown
            lv.text_capacity = capacity
    out = lv.text + lv.text_start + lv.text_length
    if lv.text_length > 0:  # the text starts with the price digits: copy them
        memcpy(out, lv.text + lv.text_start, lv.price_length)
        lv.text_length += write_digits(out + lv.price_length, qty) - out
    else:
        lv.text_length += write_digits(write_digits(out, lv.price), qty) - out


cdef inline void text_pop_front(Level* lv, int64_t qty) noexcept nogil:
    cdef Py_ssize_t segment = lv.price_length + digit_count(qty)
    lv.text_start += segment
    lv.text_length -= segment


cdef inline void text_pop_back(Level* lv, int64_t qty) noexcept nogil:
    lv.text_length -= lv.price_length + digit_count(qty)


cdef void text_set_front(Level* lv, int64_t old_qty, int64_t new_qty) noexcept nogil:
    # The new first segment ends where the old one did (the price digits are the same).
    cdef Py_ssize_t start = lv.text_start + digit_count(old_qty) - digit_count(new_qty)
    if start < 0:
        lv.text_length = -1
        return
    write_digits(write_digits(lv.text + start, lv.price), new_qty)
    lv.text_length += lv.text_start - start
    lv.text_start = start


cdef void text_set_back(Level* lv, int64_t old_qty, int64_t new_qty) noexcept nogil:
    text_pop_back(lv, old_qty)
    text_push_back(lv, new_qty)


cdef void repair_after_unlink(Level* lv, Py_ssize_t text_length, bint head, bint tail,
                              int64_t qty) noexcept nogil:
    """After unlink() of an order that was at the front or back of a valid text."""
    if text_length < 0 or not (head or tail):
        return
    lv.text_length = text_length
    if head:
        text_pop_front(lv, qty)
    else:
        text_pop_back(lv, qty)


cdef int ck_block_update(State* s, CkBlock* block, Ladder* ladder) except -1:
    """Bring one side's checksum block up to date; 1 when its bytes changed, else 0.

    The bytes from ``block.first`` on are copied again (rendering stale levels); the levels
    that leave those positions lose their ``ck_pos``, the ones written there get it.
    """
    cdef Py_ssize_t n = min(<Py_ssize_t>CHECKSUM_LEVELS, ladder_len(ladder))
    cdef Py_ssize_t first = block.first, old = block.count, i, offset, capacity
    cdef int32_t li
    cdef Level* lv
    cdef char* grown
    if old < 0:  # unknown after a failure: rebuild, forgetting every position
        old = CHECKSUM_LEVELS
        first = 0
    first = min(first, old)
    if first >= n and n == old:
        block.first = CHECKSUM_LEVELS
        return 0
    for i in range(first, old):
        s.levels[block.levels[i]].ck_pos = -1
    block.count = -1  # until every position is written (a failure leaves no stale CRC)
    offset = block.offsets[first]
    for i in range(first, n):
        li = <int32_t>ladder_qty(ladder, i)
        lv = &s.levels[li]
        if lv.text_length < 0:
            level_render(s, lv)
        if offset + lv.text_length > block.capacity:
            capacity = max(2 * block.capacity, offset + lv.text_length + 256)
            grown = <char*>realloc(block.text, capacity)
            if grown == NULL:
                raise MemoryError()
            block.text = grown
            block.capacity = capacity
        memcpy(block.text + offset, lv.text + lv.text_start, lv.text_length)
        offset += lv.text_length
        lv.ck_pos = <int32_t>i
        block.levels[i] = li
        block.offsets[i + 1] = offset
    block.count = n
    block.first = CHECKSUM_LEVELS
    return 1


# -- the book ----------------------------------------------------------------------------------

cdef class L3BookCore:
    """One symbol's order-by-order book (Kraken ``level3``), kept exactly at the subscribed depth.

    Args:
        symbol: the Kraken v2 symbol (``"BTC/USD"``).
        depth: price levels per side kept after every message (Kraken's subscribed depth:
            10, 100 or 1000; any positive int is accepted).
        price_precision, qty_precision: scales of the mantissas (the instrument's precisions).

    Raises:
        BookError: for a depth that is not a positive int.
        PrecisionError: for a precision outside 0..18.
    """

    def __cinit__(self, str symbol, depth, price_precision, qty_precision):
        self.depth = core_types.check_depth(depth)
        self.symbol = symbol
        self._symbol_utf8 = symbol.encode("utf-8", "surrogatepass")
        self._price_precision = check_scale(price_precision, "price_precision")
        self._qty_precision = check_scale(qty_precision, "qty_precision")
        self._state = state_new(self._ladder_capacity())

    cdef Py_ssize_t _ladder_capacity(self):
        return 2 * min(self.depth, 4096) + 16

    def __dealloc__(self):
        state_free(self._state)
        free(self._parsed)
        free(self._effects)

    # -- precision and state -----------------------------------------------------------------

    @property
    def price_precision(self):
        return self._price_precision

    @property
    def qty_precision(self):
        return self._qty_precision

    @property
    def needs_resync(self):
        """True once a message failed (bad entry, unknown order, crossing, checksum mismatch).

        The book itself stays consistent (a refused message changed nothing), but it can no
        longer be trusted to match Kraken's: resubscribe. A successful snapshot clears it.
        """
        return self._needs_resync

    # -- applying messages -------------------------------------------------------------------

    def apply_scanned(self, FrameScanner scanner not None):
        """Apply the ``level3`` message held by ``scanner`` (a scanned v2 ``level3`` frame).

        Kraken rules: a snapshot replaces the book (each side's entries join their levels in
        array order). In an update, entries apply in array order, bids then asks: ``add`` joins
        the back of its level (creating it), ``modify`` at the same price changes the quantity
        in place (queue position kept), at another price moves the order to the back of the
        new level, to quantity 0 removes it; ``delete`` removes it; an emptied level
        disappears. Then each side is truncated to ``depth`` price levels (orders beyond drop
        out silently: Kraken re-adds them as ``add`` events if they come back), then the L3
        checksum (every order of the top 10 levels per side) is verified when present.

        Cost per event: O(1) expected for the id look-up and the queue change, plus
        O(log levels) to find a level (O(1) at the touch) and O(levels) moves when a level is
        created or emptied far from the touch. The checksum re-renders only changed levels
        and re-hashes only the side blocks (top-10 asks, top-10 bids) that changed: nothing
        when the top 10 levels per side are untouched.

        Returns:
            True when a checksum was verified, False when the message carried none.

        Raises:
            ProtocolError: not a level3 frame for this symbol (book and flag untouched), or a
                malformed entry.
            PrecisionError: a number that does not fit the scale, or a level quantity that
                would overflow int64.
            OrderError: modify/delete of an unknown order, duplicate add, add of quantity 0,
                an event on the other side than the order's.
            CrossedBookError: the message would leave best bid >= best ask.
            ChecksumError: the message was applied but the checksum differs.

            On every error but the routing one the book is as before the message (except for
            ChecksumError, where the message is applied) and ``needs_resync`` is True.
        """
        if scanner.kind != KIND_LEVEL3:
            raise ProtocolError(f"{self.symbol}: not a level3 frame")
        cdef Span span = scanner.symbol_span
        if not (span.length == PyBytes_GET_SIZE(self._symbol_utf8)
                and memcmp(scanner.data + span.start, PyBytes_AS_STRING(self._symbol_utf8),
                           span.length) == 0):
            symbol = scanner.symbol  # the decoded text (JSON escapes): compare exactly
            if symbol != self.symbol:
                raise ProtocolError(f"{self.symbol}: frame is for {symbol}")
        return self.apply_fast(scanner)

    cdef object apply_fast(self, FrameScanner scanner):
        """``apply_scanned`` for a level3 frame already routed to this book (no routing check)."""
        cdef Span stamp
        if self._effect_count or self._effects_tuple is not None:
            self._effects_reset()
        if self.record_effects:
            stamp = scanner.timestamp_span
            if stamp.length < 0 or parse_timestamp(
                    &self._day, scanner.data + stamp.start, stamp.length, &self._effect_ts) < 0:
                self._effect_ts = -1  # absent or unreadable: the book does not judge it
        self._parse_scanned(scanner)  # on error: needs_resync set, book untouched
        return self._apply_parsed(scanner.is_snapshot,
                                  scanner.bid_list.count + scanner.ask_list.count,
                                  scanner.checksum)

    def apply_snapshot(self, bids, asks, checksum=None):
        """Replace the book with a snapshot. See :meth:`apply_scanned`.

        Args:
            bids, asks: orders, levels best first and queue order within a level, as mappings
                with ``order_id`` (str), ``limit_price`` and ``order_qty`` (number text, int or
                Decimal; floats are refused) and an optional ``timestamp`` (RFC 3339 text).
            checksum: Kraken's CRC32 to verify, or None.
        """
        return self._apply_python(True, bids, asks, checksum)

    def apply_update(self, bids, asks, checksum=None):
        """Apply one update message: as :meth:`apply_snapshot`, each mapping also with ``event``
        (``"add"``, ``"modify"`` or ``"delete"``). See :meth:`apply_scanned`."""
        return self._apply_python(False, bids, asks, checksum)

    def _apply_python(self, bint is_snapshot, bids, asks, checksum):
        # The Python-object API: validation and messages come from the reference's parser.
        if self._effect_count or self._effects_tuple is not None:
            self._effects_reset()
        self._effect_ts = -1
        try:
            count = self._parse_python(is_snapshot, bids, asks)
            if checksum is not None:
                checksum = core_types.check_checksum_argument(self.symbol, checksum)
        except BaseException:
            self._needs_resync = True
            self._keep = None
            raise
        return self._apply_parsed(is_snapshot, count, -1 if checksum is None else checksum)

    cdef int _reserve(self, Py_ssize_t count) except -1:
        cdef Parsed* grown
        if count > self._parsed_capacity:
            grown = <Parsed*>realloc(self._parsed, count * sizeof(Parsed))
            if grown == NULL:
                self._needs_resync = True
                raise MemoryError()
            self._parsed = grown
            self._parsed_capacity = count
        return 0

    cdef int _parse_scanned(self, FrameScanner scanner) except -1:
        cdef Py_ssize_t i, k = 0, length
        cdef int side
        cdef EntryList* entries
        cdef Entry* e
        cdef Parsed* p
        cdef const char* text
        cdef const char* data = scanner.data
        cdef bint is_snapshot = scanner.is_snapshot
        cdef State* state = self._state
        self._reserve(scanner.bid_list.count + scanner.ask_list.count)
        for side in range(2):
            entries = &scanner.bid_list if side == SIDE_BID else &scanner.ask_list
            for i in range(entries.count):
                e = &entries.items[i]
                p = &self._parsed[k]
                k += 1
                p.side = side
                p.entry = <int32_t>i
                p.event = e.event
                text = data + e.order_id.start
                length = e.order_id.length
                make_key(text, length, &p.key)
                # Deep books do not fit the core's caches: start loading the id's bucket now,
                # while the rest of the message is parsed.
                be_prefetch(&state.table[table_home(state, p.key.hash)])
                # A Kraken-shaped id is plain ASCII. Any other id that is not (JSON escapes,
                # UTF-8) is keyed by its decoded text, as the reference sees it.
                if (p.key.hi >> ID_SHIFT) != ID_KRAKEN and not plain_ascii(text, length):
                    try:
                        raw = self._id_bytes(scanner, side, i)
                        if self._keep is None:
                            self._keep = []
                        self._keep.append(raw)
                    except BaseException:
                        self._needs_resync = True
                        self._keep = None
                        raise
                    make_key(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), &p.key)
                if not fast_mantissa(data + e.price.start, e.price.length,
                                     self._price_precision, &p.price):
                    if parse_mantissa(data + e.price.start, e.price.length,
                                      self._price_precision, &p.price) != NUM_OK:
                        self._entry_error(scanner, side, i)
                if not fast_mantissa(data + e.qty.start, e.qty.length, self._qty_precision,
                                     &p.qty):
                    if parse_mantissa(data + e.qty.start, e.qty.length, self._qty_precision,
                                      &p.qty) != NUM_OK:
                        self._entry_error(scanner, side, i)
                p.has_timestamp = e.timestamp.length > 0
                p.timestamp_ns = -1
                if p.has_timestamp and parse_timestamp(&self._day, data + e.timestamp.start,
                                                       e.timestamp.length, &p.timestamp_ns) < 0:
                    self._entry_error(scanner, side, i)
                if is_snapshot and e.event != EVENT_ADD:
                    self._entry_error(scanner, side, i)
        return 0

    cdef bytes _id_bytes(self, FrameScanner scanner, int side, Py_ssize_t i):
        # Key bytes of an id written with escapes or non-ASCII UTF-8: its text as the scanner
        # decodes it, encoded back (surrogatepass: every str, lone surrogates included, has
        # its bytes, so the Python API and frames key an id the same way).
        cdef EntryList* entries = &scanner.bid_list if side == SIDE_BID else &scanner.ask_list
        try:
            return scanner.span_str(entries.items[i].order_id).encode("utf-8", "surrogatepass")
        except ValueError:  # UnicodeError included
            raise ProtocolError(f"{self.symbol}: {('bids', 'asks')[side]}[{i}].order_id: "
                                "not valid UTF-8 JSON text") from None

    cdef int _entry_error(self, FrameScanner scanner, int side, Py_ssize_t i) except -1:
        # Slow path: let the reference parser name the problem, in its words.
        cdef EntryList* entries = &scanner.bid_list if side == SIDE_BID else &scanner.ask_list
        cdef Entry* e = &entries.items[i]
        self._needs_resync = True
        self._keep = None
        core_types.parse_fields(
            self.symbol, side, i, scanner.span_str(e.order_id), scanner.span_str(e.price),
            scanner.span_str(e.qty),
            scanner.span_str(e.timestamp) if e.timestamp.length > 0 else "",
            e.event, scanner.is_snapshot, self._price_precision, self._qty_precision,
        )
        raise AssertionError(f"{self.symbol}: the fast and the shared parsers disagree on "
                             f"{('bids', 'asks')[side]}[{i}]")

    cdef int _parse_python(self, bint is_snapshot, object bids, object asks) except -1:
        cdef Py_ssize_t k
        cdef Parsed* p
        events = core_types.parse_mappings(self.symbol, bids, asks, is_snapshot,
                                           self._price_precision, self._qty_precision)
        self._reserve(len(events))
        self._keep = []
        for k, event in enumerate(events):
            raw = (<str>event.order_id).encode("utf-8", "surrogatepass")
            self._keep.append(raw)
            p = &self._parsed[k]
            make_key(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), &p.key)
            p.side = event.side
            p.entry = event.entry
            p.event = event.event
            p.price = event.price
            p.qty = event.qty
            p.has_timestamp = event.timestamp_ns is not None
            p.timestamp_ns = event.timestamp_ns if p.has_timestamp else -1
        return len(events)

    cdef object _apply_parsed(self, bint is_snapshot, Py_ssize_t count, long long checksum):
        cdef State* s = NULL
        cdef Py_ssize_t k
        cdef int64_t computed
        # One try for the message: the failure path undoes it (a refused snapshot is built
        # aside and dropped whole, so it keeps no journal).
        self._recording = self.record_effects and not is_snapshot
        try:
            if is_snapshot:
                s = state_new(self._ladder_capacity())
                s.logging = False
                table_reserve(s, count)
            else:
                s = self._state
            for k in range(count):
                self._apply_event(s, &self._parsed[k])
            if state_crossed(s):
                self._check_not_crossed(s, count)
        except BaseException:
            self._needs_resync = True
            if self._recording:
                self._effects_reset()  # refused: rolled back, no effects
            self._release_scratch()
            if is_snapshot:
                state_free(s)
            else:
                state_rollback(s)
            raise
        self._release_scratch()
        if is_snapshot:
            s.logging = True
            state_free(self._state)
            self._state = s
            self._needs_resync = False
        else:
            state_commit(s)
            if self._recording and not self.sink_effects and (
                    ladder_len(&s.ladders[SIDE_BID]) > self.depth
                    or ladder_len(&s.ladders[SIDE_ASK]) > self.depth):
                self._record_truncations(s)
        if ladder_len(&s.ladders[SIDE_BID]) > self.depth:
            state_truncate(s, SIDE_BID, self.depth)
        if ladder_len(&s.ladders[SIDE_ASK]) > self.depth:
            state_truncate(s, SIDE_ASK, self.depth)
        if checksum < 0:
            return False
        computed = self._checksum()
        if computed != checksum:
            self._needs_resync = True
            raise ChecksumError(self.symbol, checksum, computed)
        return True

    cdef inline void _release_scratch(self):
        """After a message: drop the kept id bytes; give back the scratch of a huge snapshot."""
        if self._keep is not None:
            self._keep = None
        if self._parsed_capacity > KEEP_PARSED:
            free(self._parsed)
            self._parsed = NULL
            self._parsed_capacity = 0

    cdef int _apply_event(self, State* s, Parsed* p) except -1:
        cdef int32_t oi, li, target
        cdef Py_ssize_t at = 0
        cdef Order* o
        cdef Level* lv
        cdef uint32_t* block
        cdef Py_ssize_t text_length
        cdef bint head, tail
        cdef int64_t qty
        undo_reserve(s, 4)  # an event logs at most 4 steps; no allocation after a change
        oi = table_find_at(s, &p.key, &at)
        if p.event == EVENT_ADD:
            if p.qty == 0:
                raise core_types.zero_add_error(self._where(p))
            if oi != NIL:
                raise core_types.duplicate_error(self._where(p),
                                                 s.levels[order_at(s, oi).level].side)
            li = level_find(s, p.side, p.price)
            if li != NIL and p.qty > INT64_MAX - s.levels[li].qty:
                raise core_types.overflow_error(self._where(p),
                                                mantissa_text(p.price, self._price_precision))
            if self._recording:
                self._record_add(s, p, li)
            if (s.order_count + 1) * 4 > s.table_capacity * 3:
                table_reserve(s, 1)
            if li == NIL:
                li = level_create(s, p.side, p.price)  # undo-logged: a failure below is undone
            oi = slot_alloc(s)
            o = order_at(s, oi)
            o.id_hi = p.key.hi
            o.id_lo = p.key.lo
            if (p.key.hi >> ID_SHIFT) == ID_LONG:
                block = <uint32_t*>malloc(sizeof(uint32_t) + p.key.length)
                if block == NULL:
                    o.id_hi = 0  # not a heap id: slot_free must not free id_lo
                    slot_free(s, oi)
                    raise MemoryError()
                block[0] = <uint32_t>p.key.length
                memcpy(block + 1, p.key.text, p.key.length)
                o.id_lo = <uint64_t><size_t>block
                s.long_id_bytes += sizeof(uint32_t) + p.key.length
            o.qty = p.qty
            o.timestamp_ns = p.timestamp_ns
            lv = &s.levels[li]
            text_length = lv.text_length
            link_tail(s, li, oi)
            if text_length >= 0:
                lv.text_length = text_length
                text_push_back(lv, p.qty)
            table_put(s, p.key.hash, oi)
            undo_push(s, OP_NEW, oi, NIL, NIL, NIL, 0, 0)
            return 0
        if oi == NIL:
            raise core_types.unknown_error(self._where(p), core_types.EVENT_NAMES[p.event])
        o = order_at(s, oi)
        li = o.level
        if s.levels[li].side != p.side:
            raise core_types.wrong_side_error(self._where(p), core_types.EVENT_NAMES[p.event],
                                              s.levels[li].side)
        lv = &s.levels[li]
        text_length, head, tail, qty = lv.text_length, o.prev == NIL, o.next == NIL, o.qty
        if p.event == EVENT_DELETE or p.qty == 0:
            if self._recording:
                self._record_change(s, p, oi, ACT_DELETE)
                o = order_at(s, oi)
                lv = &s.levels[li]
            undo_push(s, OP_UNLINK, oi, o.prev, o.next, li, o.qty, o.timestamp_ns)
            unlink(s, oi)
            repair_after_unlink(lv, text_length, head, tail, qty)
            level_drop_if_empty(s, li)
            table_delete_at(s, at)  # the index has not changed since the look-up
            undo_push(s, OP_UNINDEX, oi, NIL, NIL, NIL, 0, 0)
            return 0
        if lv.price == p.price:  # a fill or a size change: the order keeps its place
            if p.qty > o.qty and p.qty - o.qty > INT64_MAX - lv.qty:
                raise core_types.overflow_error(self._where(p),
                                                mantissa_text(p.price, self._price_precision))
            if self._recording:
                self._record_change(s, p, oi, ACT_MODIFY)
                o = order_at(s, oi)
                lv = &s.levels[li]
            undo_push(s, OP_SETQTY, oi, NIL, NIL, NIL, o.qty, o.timestamp_ns)
            lv.qty += p.qty - o.qty
            ck_touch(s, lv)
            if text_length >= 0 and head:
                text_set_front(lv, qty, p.qty)
            elif text_length >= 0 and tail:
                text_set_back(lv, qty, p.qty)
            else:
                lv.text_length = -1
            o.qty = p.qty
            if p.has_timestamp:
                o.timestamp_ns = p.timestamp_ns
            return 0
        # A new price: the order loses its place and joins the back of the new level.
        target = level_find(s, p.side, p.price)
        if target != NIL and p.qty > INT64_MAX - s.levels[target].qty:
            raise core_types.overflow_error(self._where(p),
                                            mantissa_text(p.price, self._price_precision))
        if self._recording:
            self._record_change(s, p, oi, ACT_REQUEUE)
            o = order_at(s, oi)
            lv = &s.levels[li]
        undo_push(s, OP_UNLINK, oi, o.prev, o.next, li, o.qty, o.timestamp_ns)
        unlink(s, oi)
        repair_after_unlink(lv, text_length, head, tail, qty)
        level_drop_if_empty(s, li)
        if target == NIL:
            target = level_create(s, p.side, p.price)  # may move s.levels: no Level* kept
        o.qty = p.qty
        if p.has_timestamp:
            o.timestamp_ns = p.timestamp_ns
        lv = &s.levels[target]
        text_length = lv.text_length
        link_tail(s, target, oi)
        if text_length >= 0:
            lv.text_length = text_length
            text_push_back(lv, p.qty)
        undo_push(s, OP_LINK, oi, NIL, NIL, NIL, 0, 0)
        return 0

    # -- effects -------------------------------------------------------------------------------

    cdef void _effects_reset(self):
        self._effect_count = 0
        self._effect_deletes = 0
        self._effect_ids = None
        self._effects_tuple = None

    cdef Effect* _effect_new(self, int action, int event, int side, int64_t price) except NULL:
        cdef Effect* grown
        cdef Effect* e
        cdef Py_ssize_t capacity
        if self._effect_count == self._effect_capacity:
            capacity = max(16, 2 * self._effect_capacity)
            grown = <Effect*>realloc(self._effects, capacity * sizeof(Effect))
            if grown == NULL:
                raise MemoryError()
            self._effects = grown
            self._effect_capacity = capacity
        e = &self._effects[self._effect_count]
        self._effect_count += 1
        e.action = action
        e.event = event
        e.side = side
        e.price = price
        e.id_text = -1
        return e

    cdef int _effect_id(self, Effect* e, uint32_t hi, uint64_t lo, str text) except -1:
        # A packed id is kept as is (its text is made by effects()); a long one as its str,
        # since the bytes it points to do not outlive the message.
        e.id_hi = hi
        e.id_lo = lo
        if text is not None:
            if self._effect_ids is None:
                self._effect_ids = []
            e.id_text = <int32_t>len(self._effect_ids)
            self._effect_ids.append(text)
        return 0

    cdef int _record_add(self, State* s, Parsed* p, int32_t li) except -1:
        """Before an add: the whole level it joins is ahead of it."""
        cdef Effect* e = self._effect_new(ACT_ADD, EVENT_ADD, p.side, p.price)
        cdef Effect* other
        cdef Py_ssize_t k
        cdef str text = None
        cdef bint long_id = (p.key.hi >> ID_SHIFT) == ID_LONG
        if not self.sink_effects:  # (a sink reads an add's side alone)
            if long_id:
                text = id_text(p.key.hi, p.key.lo, p.key.text, p.key.length)
            self._effect_id(e, p.key.hi, p.key.lo, text)
            e.new_price = p.price
            e.qty_before = 0
            e.qty_after = p.qty
            e.orders_ahead = 0 if li == NIL else s.levels[li].count
            e.qty_ahead = 0 if li == NIL else s.levels[li].qty
            e.level_index = level_rank(s, p.side, p.price)
            e.timestamp_ns = p.timestamp_ns if p.has_timestamp else -1
        if self._effect_deletes == 0:
            return 0
        if long_id and text is None:
            text = id_text(p.key.hi, p.key.lo, p.key.text, p.key.length)
        # Deleted earlier in this message and added again: the delete was a requeue.
        for k in range(self._effect_count - 2, -1, -1):
            other = &self._effects[k]
            if other.action != ACT_DELETE or other.event != EVENT_DELETE:
                continue
            if other.id_hi != p.key.hi:
                continue
            if text is None:
                if other.id_lo != p.key.lo:
                    continue
            elif self._effect_ids[other.id_text] != text:
                continue
            other.action = ACT_REQUEUE
            other.new_price = p.price
            other.qty_after = p.qty
            self._effect_deletes -= 1
            break
        return 0

    cdef int _record_change(self, State* s, Parsed* p, int32_t oi, int action) except -1:
        """Before a modify/delete/requeue changes the resting order in slot ``oi``."""
        cdef Order* o = order_at(s, oi)
        cdef Level* lv = &s.levels[o.level]
        cdef Effect* e = self._effect_new(action, p.event, lv.side, lv.price)
        cdef str text = None
        if (o.id_hi >> ID_SHIFT) == ID_LONG:
            text = order_id_text(o)
        o = order_at(s, oi)
        lv = &s.levels[o.level]
        self._effect_id(e, o.id_hi, o.id_lo, text)
        e.qty_before = o.qty
        if action == ACT_DELETE:
            e.new_price = -1
            e.qty_after = 0
            if p.event == EVENT_DELETE:
                self._effect_deletes += 1
        else:
            e.new_price = p.price
            e.qty_after = p.qty
        queue_ahead(s, lv, oi, &e.orders_ahead, &e.qty_ahead)
        e.level_index = level_rank(s, lv.side, lv.price)
        e.timestamp_ns = p.timestamp_ns if p.has_timestamp else -1
        return 0

    cdef int _record_truncations(self, State* s) except -1:
        """The orders of the levels beyond the depth, bids then asks, best level first."""
        cdef int side
        cdef Ladder* ladder
        cdef Py_ssize_t rank
        cdef int32_t li, oi
        cdef int64_t ahead, qty_ahead
        cdef Order* o
        cdef Effect* e
        cdef str text
        for side in range(2):
            ladder = &s.ladders[side]
            for rank in range(self.depth, ladder_len(ladder)):
                li = <int32_t>ladder.qtys[ladder.hi - 1 - rank]
                oi = s.levels[li].head
                ahead = qty_ahead = 0
                while oi != NIL:
                    o = order_at(s, oi)
                    text = order_id_text(o) if (o.id_hi >> ID_SHIFT) == ID_LONG else None
                    e = self._effect_new(ACT_TRUNCATE, 0, side, s.levels[li].price)
                    o = order_at(s, oi)
                    self._effect_id(e, o.id_hi, o.id_lo, text)
                    e.new_price = -1
                    e.qty_before = o.qty
                    e.qty_after = 0
                    e.orders_ahead = ahead
                    e.qty_ahead = qty_ahead
                    e.level_index = rank
                    e.timestamp_ns = -1
                    ahead += 1
                    qty_ahead += o.qty
                    oi = o.next
        return 0

    def effects(self):
        """What the last applied update did, one :class:`~bookengine.kraken.events.OrderEffect`
        per entry (then one per order truncated away), when :attr:`record_effects` is on (and
        :attr:`sink_effects` off: with it, adds carry their side alone and truncations are left
        out, for the compiled sink that reads them in place).

        Empty after a snapshot, a refused message, or with recording off. Valid until the next
        message is applied. Built on the first call after a message (then cached).
        """
        cdef Py_ssize_t k
        cdef Effect* e
        if self._effects_tuple is not None:
            return self._effects_tuple
        if self._effect_count == 0:
            return NO_EFFECTS
        cdef PyTypeObject* cls = <PyTypeObject*>OrderEffect
        stamp = self._effect_ts
        items = PyTuple_New(self._effect_count)
        for k in range(self._effect_count):
            e = &self._effects[k]
            if e.id_text >= 0:
                order_id = self._effect_ids[e.id_text]
            else:
                order_id = id_text(e.id_hi, e.id_lo, NULL, 0)
            effect = new_effect(cls)
            tuple_put(effect, 0, <object>PyTuple_GET_ITEM(_ACTION_WORDS, e.action))
            tuple_put(effect, 1, <object>PyTuple_GET_ITEM(_EVENT_WORDS, e.event))
            tuple_put(effect, 2, <object>PyTuple_GET_ITEM(_SIDE_WORDS, e.side))
            tuple_put(effect, 3, order_id)
            tuple_put(effect, 4, e.price)
            tuple_put(effect, 5, e.new_price)
            tuple_put(effect, 6, e.qty_before)
            tuple_put(effect, 7, e.qty_after)
            tuple_put(effect, 8, e.orders_ahead)
            tuple_put(effect, 9, e.qty_ahead)
            tuple_put(effect, 10, e.level_index)
            tuple_put(effect, 11, e.timestamp_ns)
            tuple_put(effect, 12, stamp)
            tuple_put(items, k, effect)
        self._effects_tuple = items
        return items

    cdef int _check_not_crossed(self, State* s, Py_ssize_t count) except -1:
        cdef int64_t bid, ask
        cdef Py_ssize_t k
        cdef Parsed* p
        if ladder_len(&s.ladders[SIDE_BID]) == 0 or ladder_len(&s.ladders[SIDE_ASK]) == 0:
            return 0
        bid = ladder_key(&s.ladders[SIDE_BID], 0)
        ask = -ladder_key(&s.ladders[SIDE_ASK], 0)
        if bid < ask:
            return 0
        events = []
        for k in range(count):
            p = &self._parsed[k]
            events.append(core_types.OrderEntry(
                p.side, p.entry, id_text(p.key.hi, p.key.lo, p.key.text, p.key.length),
                p.event, p.price, p.qty, p.timestamp_ns if p.has_timestamp else None,
            ))
        raise core_types.crossed_error(self.symbol, events, bid, ask,
                                       mantissa_text(bid, self._price_precision),
                                       mantissa_text(ask, self._price_precision))

    cdef str _where(self, Parsed* p):
        return core_types.where(self.symbol, p.side, p.entry,
                                id_text(p.key.hi, p.key.lo, p.key.text, p.key.length))

    def clear(self):
        """Empty both sides (precisions and ``needs_resync`` are kept)."""
        cdef State* fresh = state_new(self._ladder_capacity())
        state_free(self._state)
        self._state = fresh
        self._effects_reset()

    # -- checksum ----------------------------------------------------------------------------

    cdef int64_t _checksum(self) except -1:
        cdef State* s = self._state
        cdef CkBlock* asks = &s.ck[SIDE_ASK]
        cdef CkBlock* bids = &s.ck[SIDE_BID]
        cdef bint asks_changed = ck_block_update(s, asks, &s.ladders[SIDE_ASK])
        cdef bint bids_changed = ck_block_update(s, bids, &s.ladders[SIDE_BID])
        if asks_changed:
            asks.crc = crc32_update(0, <const unsigned char*>asks.text, asks.offsets[asks.count])
        if asks_changed or bids_changed:
            s.ck_crc = crc32_update(asks.crc, <const unsigned char*>bids.text,
                                    bids.offsets[bids.count])
        return s.ck_crc

    def checksum(self):
        """Kraken L3 CRC32: every order of the top 10 ask levels (ascending), then bids.

        Cost: O(bytes hashed); only levels changed since the last call are re-rendered.
        """
        return self._checksum()

    # -- order queries -----------------------------------------------------------------------

    cdef int32_t _find(self, str order_id) except -2:
        cdef Key key
        raw = order_id.encode("utf-8", "surrogatepass")
        make_key(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), &key)
        return table_find(self._state, &key)

    def __contains__(self, order_id):
        return isinstance(order_id, str) and self._find(order_id) != NIL

    def order(self, str order_id not None):
        """Where ``order_id`` rests, or None when it is not in the book.

        Cost: O(log levels + position) (the position is found by walking the queue).
        """
        cdef State* s = self._state
        cdef int32_t oi = self._find(order_id), walk
        cdef Order* o
        cdef Level* lv
        cdef Ladder* ladder
        cdef Py_ssize_t position = 0
        if oi == NIL:
            return None
        o = order_at(s, oi)
        lv = &s.levels[o.level]
        ladder = &s.ladders[lv.side]
        walk = lv.head
        while walk != oi:
            position += 1
            walk = order_at(s, walk).next
        return core_types.OrderInfo(
            order_id, core_types.SIDE_WORDS[lv.side], lv.price, o.qty, o.timestamp_ns,
            ladder.hi - 1 - ladder_find(ladder, side_key(lv.side, lv.price)), position,
        )

    def queue_position(self, str order_id not None):
        """The queue ahead of and behind ``order_id`` at its level, or None when unknown.

        Cost: O(orders ahead) pointer steps in C, no Python object per order; the level's
        total quantity and order count are kept, so nothing behind the order is visited.
        """
        cdef State* s = self._state
        cdef int32_t oi = self._find(order_id), walk
        cdef Order* o
        cdef Level* lv
        cdef Py_ssize_t ahead = 0
        cdef int64_t qty_ahead = 0
        if oi == NIL:
            return None
        o = order_at(s, oi)
        lv = &s.levels[o.level]
        walk = lv.head
        while walk != oi:
            ahead += 1
            qty_ahead += order_at(s, walk).qty
            walk = order_at(s, walk).next
        return core_types.QueuePosition(ahead, qty_ahead, lv.qty - qty_ahead - o.qty,
                                        lv.count, lv.qty)

    def level_orders(self, str side not None, int64_t price):
        """The orders at ``price`` on ``side`` ("bid"/"ask") in queue order, front first.

        Returns:
            ``(order_id, qty, timestamp_ns)`` per order; empty when there is no such level.
        """
        cdef State* s = self._state
        cdef int32_t li = level_find(s, _side_code(side), price), oi
        cdef Order* o
        result = []
        if li == NIL:
            return result
        oi = s.levels[li].head
        while oi != NIL:
            o = order_at(s, oi)
            result.append((order_id_text(o), o.qty, o.timestamp_ns))
            oi = o.next
        return result

    def orders_arrays(self, bint order_ids=False):
        """Every resting order as columns, for notebooks and vectorised analytics.

        Rows run over the bid levels best first, each level front of the queue first, then the
        ask levels likewise. Arrays are new (owned by the caller), all of shape ``(n,)`` with
        ``n = order_count``.

        Args:
            order_ids: also return ``"order_id"``, an object array of str (exact: numpy's
                fixed-width str dtype would drop trailing NULs; costs a Python str per order).

        Returns:
            ``side`` int8 (0 bid, 1 ask), ``price`` int64, ``qty`` int64 (mantissas),
            ``position`` int32 (0 = front of its queue), ``level`` int32 (0 = best level of its
            side), ``timestamp_ns`` int64 (-1 when unknown); optionally ``order_id``.
        """
        cdef State* s = self._state
        cdef Py_ssize_t n = s.order_count, row = 0, i
        cdef int side
        cdef int32_t oi, position
        cdef Ladder* ladder
        cdef Level* lv
        cdef Order* o
        sides = np.empty(n, dtype=np.int8)
        prices = np.empty(n, dtype=np.int64)
        qtys = np.empty(n, dtype=np.int64)
        positions = np.empty(n, dtype=np.int32)
        levels = np.empty(n, dtype=np.int32)
        timestamps = np.empty(n, dtype=np.int64)
        cdef int8_t[::1] side_view = sides
        cdef int64_t[::1] price_view = prices
        cdef int64_t[::1] qty_view = qtys
        cdef int32_t[::1] position_view = positions
        cdef int32_t[::1] level_view = levels
        cdef int64_t[::1] timestamp_view = timestamps
        ids = [] if order_ids else None
        for side in range(2):
            ladder = &s.ladders[side]
            for i in range(ladder_len(ladder)):
                lv = &s.levels[ladder_qty(ladder, i)]
                oi = lv.head
                position = 0
                while oi != NIL:
                    o = order_at(s, oi)
                    side_view[row] = side
                    price_view[row] = lv.price
                    qty_view[row] = o.qty
                    position_view[row] = position
                    level_view[row] = <int32_t>i
                    timestamp_view[row] = o.timestamp_ns
                    if order_ids:
                        ids.append(order_id_text(o))
                    position += 1
                    row += 1
                    oi = o.next
        result = {"side": sides, "price": prices, "qty": qtys, "position": positions,
                  "level": levels, "timestamp_ns": timestamps}
        if order_ids:
            result["order_id"] = np.array(ids, dtype=object)
        return result

    @property
    def order_count(self):
        """Resting orders in the book (both sides)."""
        return self._state.order_count

    def __len__(self):
        return self._state.order_count

    # -- aggregated (L2) view ----------------------------------------------------------------

    cdef Py_ssize_t _count(self, object n, Py_ssize_t size) except -1:
        if n is None:
            return size
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return min(<Py_ssize_t>n, size)

    def bids(self, n=None):
        """Up to ``n`` bid levels, best (highest) first, as (price, total qty) mantissas."""
        return self._levels_list(SIDE_BID, n)

    def asks(self, n=None):
        """Up to ``n`` ask levels, best (lowest) first, as (price, total qty) mantissas."""
        return self._levels_list(SIDE_ASK, n)

    def _levels_list(self, int side, n):
        cdef State* s = self._state
        cdef Ladder* ladder = &s.ladders[side]
        cdef Py_ssize_t i, count = self._count(n, ladder_len(ladder))
        cdef Level* lv
        result = []
        for i in range(count):
            lv = &s.levels[ladder_qty(ladder, i)]
            result.append((lv.price, lv.qty))
        return result

    def bids_array(self, n=None):
        """Top ``n`` bids as a new int64 array of shape (k, 2): columns price, qty mantissas."""
        return self._levels_array(
            SIDE_BID, self._count(n, ladder_len(&self._state.ladders[SIDE_BID])))

    def asks_array(self, n=None):
        """Top ``n`` asks as a new int64 array of shape (k, 2): columns price, qty mantissas."""
        return self._levels_array(
            SIDE_ASK, self._count(n, ladder_len(&self._state.ladders[SIDE_ASK])))

    cdef object _levels_array(self, int side, Py_ssize_t count):
        cdef State* s = self._state
        cdef Ladder* ladder = &s.ladders[side]
        cdef Level* lv
        cdef Py_ssize_t i
        result = np.empty((count, 2), dtype=np.int64)
        cdef int64_t[:, ::1] view = result
        for i in range(count):
            lv = &s.levels[ladder_qty(ladder, i)]
            view[i, 0] = lv.price
            view[i, 1] = lv.qty
        return result

    def best_bid(self):
        """The best bid as (price, total qty) mantissas, or None when the side is empty."""
        return self._best(SIDE_BID)

    def best_ask(self):
        """The best ask as (price, total qty) mantissas, or None when the side is empty."""
        return self._best(SIDE_ASK)

    def _best(self, int side):
        cdef State* s = self._state
        cdef Level* lv
        if ladder_len(&s.ladders[side]) == 0:
            return None
        lv = &s.levels[ladder_qty(&s.ladders[side], 0)]
        return lv.price, lv.qty

    def qty_at(self, str side not None, int64_t price):
        """Total quantity mantissa at ``price`` on ``side`` ("bid"/"ask"), 0 if no level."""
        cdef int32_t li = level_find(self._state, _side_code(side), price)
        return 0 if li == NIL else self._state.levels[li].qty

    @property
    def bid_levels(self):
        return ladder_len(&self._state.ladders[SIDE_BID])

    @property
    def ask_levels(self):
        return ladder_len(&self._state.ladders[SIDE_ASK])

    # -- introspection -----------------------------------------------------------------------

    def _memory_stats(self):
        """Bytes held by the C structures (tracemalloc cannot see them), by part.

        ``orders`` counts the whole pool (free slots too), ``index`` the hash table, ``levels``
        the level array with its checksum buffers and the two ladders, ``long_ids`` heap copies
        of ids that are not Kraken-shaped, ``scratch`` the undo log and parse buffer.
        """
        cdef State* s = self._state
        cdef Py_ssize_t i, text = s.ck[0].capacity + s.ck[1].capacity
        for i in range(s.level_top):
            text += s.levels[i].text_capacity
        stats = {
            "orders": s.chunk_count * CHUNK_SIZE * sizeof(Order) + s.chunk_slots * sizeof(void*),
            "index": s.table_capacity * sizeof(TableEntry),
            "levels": (s.level_capacity * sizeof(Level) + text
                       + 2 * (s.ladders[0].capacity + s.ladders[1].capacity) * sizeof(int64_t)),
            "long_ids": s.long_id_bytes,
            "scratch": s.undo_capacity * sizeof(Undo) + self._parsed_capacity * sizeof(Parsed),
        }
        stats["total"] = sum(stats.values())
        stats["order_slot_bytes"] = sizeof(Order)
        stats["resting_orders"] = s.order_count
        return stats

    def _check(self):
        """Assert the invariants: index <-> queues, sorted, positive, sums, depth, not crossed.

        Also checks the pool (every slot live or free exactly once), the hash table (every
        entry reachable from its home bucket, stored hashes right) and the cached checksum
        digits of every level.
        """
        cdef State* s = self._state
        cdef int side
        cdef Py_ssize_t at, seen = 0, free_slots = 0, free_levels = 0, i, count
        cdef int32_t li, oi, prev
        cdef int64_t total
        cdef Ladder* ladder
        cdef Level* lv
        cdef Order* o
        cdef Key key
        cdef CkBlock* block
        assert s.undo_count == 0
        for side in range(2):
            ladder = &s.ladders[side]
            assert 0 <= ladder.lo <= ladder.hi <= ladder.capacity
            assert ladder.hi - ladder.lo <= self.depth
            for at in range(ladder.lo, ladder.hi):
                if at > ladder.lo:
                    assert ladder.keys[at - 1] < ladder.keys[at], "ladder not sorted"
                li = <int32_t>ladder.qtys[at]
                assert 0 <= li < s.level_top
                lv = &s.levels[li]
                assert lv.side == side
                assert side_key(side, lv.price) == ladder.keys[at]
                assert lv.price >= 0
                assert lv.count > 0, "empty level"
                count = 0
                total = 0
                prev = NIL
                oi = lv.head
                while oi != NIL:
                    assert 0 <= oi < s.top
                    o = order_at(s, oi)
                    assert o.level == li
                    assert o.prev == prev
                    assert 0 < o.qty
                    assert o.qty <= INT64_MAX - total, "level quantity overflows"
                    total += o.qty
                    count += 1
                    assert count <= lv.count, "queue longer than its count (cycle?)"
                    key = _key_of(o)
                    assert table_find(s, &key) == oi, "order missing from the index"
                    prev = oi
                    oi = o.next
                assert lv.tail == prev
                assert count == lv.count
                assert total == lv.qty
                if lv.text_length >= 0:
                    assert (lv.text[lv.text_start:lv.text_start + lv.text_length]
                            == _render(s, lv)), "checksum digits out of date"
                seen += count
        assert seen == s.order_count
        for side in range(2):
            # Positions before ``first`` are trusted by the checksum: the same level must sit
            # there, and know its position (or a change to it would go unnoticed).
            block = &s.ck[side]
            ladder = &s.ladders[side]
            if block.count >= 0:
                for at in range(min(block.first, block.count)):
                    assert at < ladder_len(ladder), "checksum block longer than its side"
                    li = block.levels[at]
                    assert <int32_t>ladder_qty(ladder, at) == li, "checksum block out of order"
                    assert s.levels[li].ck_pos == at, "level lost its checksum position"
                if block.first >= CHECKSUM_LEVELS:  # nothing changed since the last hash
                    assert min(<Py_ssize_t>CHECKSUM_LEVELS, ladder_len(ladder)) == block.count
        assert self._checksum() == _fresh_checksum(s), "checksum cache out of date"
        for i in range(s.table_capacity):
            if s.table[i].slot != EMPTY_ENTRY:
                o = order_at(s, <int32_t>s.table[i].slot)
                assert o.level != NIL
                assert id_hash(o.id_hi, o.id_lo) == s.table[i].hash
                # reachable: no empty entry between its home and i
                at = table_home(s, s.table[i].hash)
                while at != i:
                    assert s.table[at].slot != EMPTY_ENTRY, "index entry unreachable"
                    at = table_next(s, at)
        assert s.order_count * 4 <= s.table_capacity * 3
        oi = s.free_order
        while oi != NIL:
            assert order_at(s, oi).level == NIL
            free_slots += 1
            assert free_slots <= s.top
            oi = order_at(s, oi).next
        assert free_slots + seen == s.top, "order slots leaked"
        li = s.free_level
        while li != NIL:
            assert s.levels[li].side == -1
            free_levels += 1
            assert free_levels <= s.level_top
            li = s.levels[li].head
        assert (free_levels + ladder_len(&s.ladders[0]) + ladder_len(&s.ladders[1])
                == s.level_top), "levels leaked"
        if ladder_len(&s.ladders[SIDE_BID]) and ladder_len(&s.ladders[SIDE_ASK]):
            assert ladder_key(&s.ladders[SIDE_BID], 0) < -ladder_key(&s.ladders[SIDE_ASK], 0), \
                "crossed"


cdef Key _key_of(Order* o):
    cdef Key key
    cdef const char* block
    key.hi = o.id_hi
    key.lo = o.id_lo
    key.text = NULL
    key.length = 0
    if (o.id_hi >> ID_SHIFT) == ID_LONG:
        block = <const char*><size_t>o.id_lo
        key.lo = 0
        key.text = block + sizeof(uint32_t)
        key.length = (<const uint32_t*>block)[0]
    key.hash = id_hash(key.hi, key.lo)
    return key


cdef bytes _render(State* s, Level* lv):
    # The checksum digits of a level, rendered fresh (for _check).
    cdef char digits[24]
    cdef char* end
    cdef int32_t oi = lv.head
    parts = []
    end = write_digits(digits, lv.price)
    price = digits[:end - digits]
    while oi != NIL:
        end = write_digits(digits, order_at(s, oi).qty)
        parts.append(price + digits[:end - digits])
        oi = order_at(s, oi).next
    return b"".join(parts)


cdef object _fresh_checksum(State* s):
    # The L3 checksum from scratch, without any cache (for _check).
    cdef Ladder* ladder
    cdef Py_ssize_t i
    cdef int k
    parts = []
    for k in range(2):  # asks, then bids
        ladder = &s.ladders[SIDE_ASK if k == 0 else SIDE_BID]
        for i in range(min(<Py_ssize_t>CHECKSUM_LEVELS, ladder_len(ladder))):
            parts.append(_render(s, &s.levels[ladder_qty(ladder, i)]))
    return zlib.crc32(b"".join(parts))


cdef int _side_code(str side) except -1:
    if side == "bid":
        return SIDE_BID
    if side == "ask":
        return SIDE_ASK
    raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")
