# cython: language_level=3
"""Compiled L2 book: two int64 ladders, Kraken update rules, truncation and CRC32 in C.

Same public API as ``bookengine._reference.l2book.L2BookCore`` (the oracle it is tested against).
From a scanned frame to a verified book nothing is allocated per level: entries are number text
spans, parsed into a reusable int64 scratch buffer, validated all at once, then applied.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t, uint32_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy

from bookengine._core.checksum cimport crc32_update, write_digits
from bookengine._core.ladder cimport (
    Ladder,
    ladder_clear,
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
    KIND_BOOK,
    KIND_V1_BOOK,
    NUM_OK,
    Entry,
    EntryList,
    FrameScanner,
    parse_mantissa,
    raise_number_error,
    wire_decimals,
)

from bookengine import core_types
from bookengine.core_types import check_depth
from bookengine.errors import ChecksumError, PrecisionError, ProtocolError
from bookengine.checksum import check_checksum
from bookengine.numbers import check_scale
from bookengine.numbers import parse_mantissa as py_parse_mantissa

cnp.import_array()

core_types.check_compiled_codes(
    {"KIND_BOOK": KIND_BOOK, "KIND_V1_BOOK": KIND_V1_BOOK, "CHECKSUM_LEVELS": WINDOW}, __name__
)


cdef void render_window(
    Window* previous, Window* fresh, Ladder* ladder, int sign
) noexcept nogil:
    """Write the checksum digits of the top 10 levels into ``fresh`` (per rank and as text).

    Between two messages most of the top 10 is unchanged or shifted by one rank, so each rank
    first looks for its (price, qty) in ``previous`` at the same rank and its neighbours and
    re-renders only on a miss. Digit slots are copied whole (40 bytes, inlined by the
    compiler); the text advances by the real length (its buffer has room for the overrun).
    """
    cdef Py_ssize_t i, j, k, n = min(WINDOW, ladder_len(ladder))
    cdef Py_ssize_t candidates[3]
    cdef int64_t price, qty
    cdef char* end
    cdef char* out = fresh.text
    cdef bint found
    for i in range(n):
        price = sign * ladder_key(ladder, i)
        qty = ladder_qty(ladder, i)
        found = False
        candidates[0] = i
        candidates[1] = i - 1
        candidates[2] = i + 1
        for k in range(3):
            j = candidates[k]
            if (0 <= j < previous.count and previous.price[j] == price
                    and previous.qty[j] == qty):
                memcpy(fresh.digits[i], previous.digits[j], DIGITS)
                fresh.length[i] = previous.length[j]
                found = True
                break
        if not found:
            end = write_digits(fresh.digits[i], price)
            end = write_digits(end, qty)
            fresh.length[i] = <unsigned char>(end - fresh.digits[i])
        fresh.price[i] = price
        fresh.qty[i] = qty
        memcpy(out, fresh.digits[i], DIGITS)
        out += fresh.length[i]
    fresh.count = n
    fresh.text_length = out - fresh.text


cdef class L2BookCore:
    """One symbol's aggregated book, kept exactly at the subscribed depth.

    Args:
        symbol: the Kraken symbol (``"BTC/USD"``, v1 ``"XBT/USD"``).
        depth: levels per side kept after every message (Kraken's subscribed depth).
        price_precision, qty_precision: scales of the mantissas. ``None`` (v1) means: take them
            from the decimals written on the wire in the first snapshot.
    """

    def __cinit__(self, str symbol, depth, price_precision=None, qty_precision=None):
        check_depth(depth)
        if (price_precision is None) != (qty_precision is None):
            raise PrecisionError(f"{symbol}: give both precisions or neither")
        self.symbol = symbol
        self.depth = depth
        self._price_precision = -1
        self._qty_precision = -1
        if price_precision is not None:
            self._price_precision = check_scale(price_precision, "price_precision")
            self._qty_precision = check_scale(qty_precision, "qty_precision")
        self._bids_dirty = self._asks_dirty = True
        capacity = 2 * min(<Py_ssize_t>depth, 4096) + 16
        ladder_init(&self._bids, capacity)
        ladder_init(&self._asks, capacity)

    def __dealloc__(self):
        ladder_free(&self._bids)
        ladder_free(&self._asks)
        free(self._scratch)

    # -- precision ---------------------------------------------------------------------------

    @property
    def price_precision(self):
        return None if self._price_precision < 0 else self._price_precision

    @property
    def qty_precision(self):
        return None if self._qty_precision < 0 else self._qty_precision

    # -- applying messages -------------------------------------------------------------------

    def apply_scanned(self, FrameScanner scanner not None):
        """Apply the book message held by ``scanner`` (a scanned v2 ``book`` or v1 frame).

        Kraken rules: a snapshot replaces the book; in an update each level replaces the
        quantity at its price in array order (qty 0 deletes, deleting an unknown level is a
        no-op, the same price twice: last wins); then each side is truncated to ``depth``; then
        the checksum (top 10 per side) is verified when the message carries one.

        Cost: O(levels in message x log depth) plus O(depth) moves at worst per new level.

        Returns:
            True when a checksum was verified, False when the message carried none.

        Raises:
            PrecisionError, ProtocolError: an entry is invalid; the book is unchanged.
            ChecksumError: the message was applied but the checksum differs: resync.
        """
        if scanner.kind != KIND_BOOK and scanner.kind != KIND_V1_BOOK:
            raise ProtocolError(f"{self.symbol}: not a book frame")
        symbol = scanner.symbol
        if symbol is not self.symbol and symbol != self.symbol:
            raise ProtocolError(f"{self.symbol}: frame is for {symbol}")
        return self.apply_fast(scanner)

    cdef object apply_fast(self, FrameScanner scanner):
        """``apply_scanned`` for a frame already routed to this book (no symbol check)."""
        cdef bint inferred = self._price_precision < 0
        if inferred:
            self._infer_scales(scanner)
        try:
            self._parse_side(scanner, &scanner.bid_list, 0, "bids")
            self._parse_side(scanner, &scanner.ask_list, scanner.bid_list.count, "asks")
        except BaseException:
            if inferred:  # a refused first snapshot fixes nothing
                self._price_precision = self._qty_precision = -1
            raise
        return self._apply_parsed(scanner.is_snapshot, scanner.bid_list.count,
                                  scanner.ask_list.count, scanner.checksum)

    def apply_snapshot(self, bids, asks, checksum=None):
        """Replace the book with a snapshot (levels best first). See :meth:`apply_scanned`."""
        return self._apply_python(True, bids, asks, checksum)

    def apply_update(self, bids, asks, checksum=None):
        """Apply one update message's levels in order. See :meth:`apply_scanned`."""
        return self._apply_python(False, bids, asks, checksum)

    cdef object _apply_python(self, bint is_snapshot, object bids, object asks, object checksum):
        # The Python-object API: exactness comes from the reference number parser.
        check_checksum(checksum)
        bids = list(bids)
        asks = list(asks)
        if self._price_precision < 0:
            if not is_snapshot:
                raise PrecisionError(f"{self.symbol}: precision unknown until the first snapshot")
            from bookengine.numbers import wire_decimals as py_wire_decimals
            levels = bids + asks
            price_scale = max([py_wire_decimals(p) for p, _ in levels], default=0)
            qty_scale = max([py_wire_decimals(q) for _, q in levels], default=0)
        else:
            price_scale, qty_scale = self._price_precision, self._qty_precision
        self._reserve(len(bids) + len(asks))
        cdef Py_ssize_t i = 0
        for side, levels in (("bids", bids), ("asks", asks)):
            for index, (price, qty) in enumerate(levels):
                self._scratch[2 * i] = py_parse_mantissa(
                    price, price_scale, f"{self.symbol}: {side}[{index}].price")
                self._scratch[2 * i + 1] = py_parse_mantissa(
                    qty, qty_scale, f"{self.symbol}: {side}[{index}].qty")
                i += 1
        if self._price_precision < 0 and bids + asks:
            self._price_precision, self._qty_precision = price_scale, qty_scale
        return self._apply_parsed(is_snapshot, len(bids), len(asks),
                                  -1 if checksum is None else checksum)

    cdef int _infer_scales(self, FrameScanner scanner) except -1:
        # v1: the scale is what the wire shows; it is fixed by the first snapshot.
        if not scanner.is_snapshot:
            raise PrecisionError(f"{self.symbol}: precision unknown until the first snapshot")
        cdef int price_scale = 0, qty_scale = 0
        cdef Py_ssize_t i
        cdef Entry* entry
        for i in range(scanner.bid_list.count + scanner.ask_list.count):
            if i < scanner.bid_list.count:
                entry = &scanner.bid_list.items[i]
            else:
                entry = &scanner.ask_list.items[i - scanner.bid_list.count]
            price_scale = max(price_scale, wire_decimals(
                scanner.data + entry.price.start, entry.price.length))
            qty_scale = max(qty_scale, wire_decimals(
                scanner.data + entry.qty.start, entry.qty.length))
        if scanner.bid_list.count + scanner.ask_list.count == 0:
            return 0  # an empty snapshot shows no decimals: fix nothing yet
        check_scale(price_scale, "price_precision")
        check_scale(qty_scale, "qty_precision")
        self._price_precision = price_scale
        self._qty_precision = qty_scale
        return 0

    cdef int _reserve(self, Py_ssize_t count) except -1:
        cdef int64_t* grown
        if count > self._scratch_capacity:
            grown = <int64_t*>realloc(self._scratch, 2 * count * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            self._scratch = grown
            self._scratch_capacity = count
        return 0

    cdef int _parse_side(self, FrameScanner scanner, EntryList* entries, Py_ssize_t offset,
                         str side) except -1:
        cdef Py_ssize_t i
        cdef Entry* entry
        cdef int64_t* out
        self._reserve(offset + entries.count)
        out = self._scratch + 2 * offset
        for i in range(entries.count):
            entry = &entries.items[i]
            if parse_mantissa(scanner.data + entry.price.start, entry.price.length,
                              self._price_precision, out) != NUM_OK:
                raise_number_error(scanner.data + entry.price.start, entry.price.length,
                                   self._price_precision, f"{self.symbol}: {side}[{i}].price")
            if parse_mantissa(scanner.data + entry.qty.start, entry.qty.length,
                              self._qty_precision, out + 1) != NUM_OK:
                raise_number_error(scanner.data + entry.qty.start, entry.qty.length,
                                   self._qty_precision, f"{self.symbol}: {side}[{i}].qty")
            out += 2
        return 0

    cdef object _apply_parsed(self, bint is_snapshot, Py_ssize_t bid_count,
                              Py_ssize_t ask_count, long long checksum):
        # Every entry is valid by now: mutate.
        cdef Py_ssize_t _, rank
        cdef Py_ssize_t top = WINDOW  # a change ranked below this reaches the checksum
        cdef int64_t* level = self._scratch
        cdef bint whole = is_snapshot or self.depth < WINDOW
        cdef bint bids_changed = whole, asks_changed = whole
        cdef uint32_t computed
        if is_snapshot:
            ladder_clear(&self._bids)
            ladder_clear(&self._asks)
        for _ in range(bid_count):
            if level[1] == 0:
                rank = ladder_remove(&self._bids, level[0])
            else:
                rank = ladder_set(&self._bids, level[0], level[1])
            bids_changed |= 0 <= rank < top
            level += 2
        for _ in range(ask_count):
            if level[1] == 0:
                rank = ladder_remove(&self._asks, -level[0])
            else:
                rank = ladder_set(&self._asks, -level[0], level[1])
            asks_changed |= 0 <= rank < top
            level += 2
        ladder_truncate(&self._bids, self.depth)
        ladder_truncate(&self._asks, self.depth)
        self._bids_dirty |= bids_changed
        self._asks_dirty |= asks_changed
        if checksum < 0:
            return False
        computed = self._checksum()
        if computed != checksum:
            raise ChecksumError(self.symbol, checksum, computed)
        return True

    cdef bint crossed(self) noexcept nogil:
        """Best bid at or above best ask (never valid on Kraken)."""
        return (ladder_len(&self._bids) > 0 and ladder_len(&self._asks) > 0
                and ladder_key(&self._bids, 0) >= -ladder_key(&self._asks, 0))

    def is_crossed(self):
        """True when the best bid is at or above the best ask (never valid on Kraken)."""
        return self.crossed()

    def clear(self):
        """Empty both sides (precisions are kept)."""
        ladder_clear(&self._bids)
        ladder_clear(&self._asks)
        self._bids_dirty = self._asks_dirty = True
        self._bid_windows[0].count = self._bid_windows[1].count = 0
        self._ask_windows[0].count = self._ask_windows[1].count = 0

    # -- checksum ----------------------------------------------------------------------------

    cdef uint32_t _checksum(self) noexcept nogil:
        # Changes below the top 10 cannot move Kraken's checksum: with no side dirty the last
        # one stands. Asks first, then bids: a side whose top 10 did not change keeps its
        # rendered window, and unchanged asks keep their CRC, which the bids continue.
        cdef Window* fresh
        if not (self._asks_dirty or self._bids_dirty):
            return self._last_checksum
        if self._asks_dirty:
            self._ask_window ^= 1  # the window just written becomes "previous" next time
            fresh = &self._ask_windows[self._ask_window]
            render_window(&self._ask_windows[self._ask_window ^ 1], fresh, &self._asks, -1)
            self._ask_crc = crc32_update(0, <const unsigned char*>fresh.text, fresh.text_length)
            self._asks_dirty = False
        if self._bids_dirty:
            self._bid_window ^= 1
            fresh = &self._bid_windows[self._bid_window]
            render_window(&self._bid_windows[self._bid_window ^ 1], fresh, &self._bids, 1)
            self._bids_dirty = False
        fresh = &self._bid_windows[self._bid_window]
        self._last_checksum = crc32_update(self._ask_crc, <const unsigned char*>fresh.text,
                                           fresh.text_length)
        return self._last_checksum

    def checksum(self):
        """Kraken CRC32 of the current book (top 10 asks ascending, then top 10 bids)."""
        return self._checksum()

    # -- queries -----------------------------------------------------------------------------

    cdef Py_ssize_t _count(self, object n, Py_ssize_t size) except -1:
        if n is None:
            return size
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return min(<Py_ssize_t>n, size)

    def bids(self, n=None):
        """Up to ``n`` bid levels, best (highest) first, as (price, qty) mantissas."""
        cdef Py_ssize_t i, count = self._count(n, ladder_len(&self._bids))
        return [(ladder_key(&self._bids, i), ladder_qty(&self._bids, i)) for i in range(count)]

    def asks(self, n=None):
        """Up to ``n`` ask levels, best (lowest) first, as (price, qty) mantissas."""
        cdef Py_ssize_t i, count = self._count(n, ladder_len(&self._asks))
        return [(-ladder_key(&self._asks, i), ladder_qty(&self._asks, i)) for i in range(count)]

    def bids_array(self, n=None):
        """Top ``n`` bids as a new int64 array of shape (k, 2): columns price, qty mantissas."""
        return self._array(&self._bids, 1, self._count(n, ladder_len(&self._bids)))

    def asks_array(self, n=None):
        """Top ``n`` asks as a new int64 array of shape (k, 2): columns price, qty mantissas."""
        return self._array(&self._asks, -1, self._count(n, ladder_len(&self._asks)))

    cdef object _array(self, Ladder* ladder, int sign, Py_ssize_t count):
        result = np.empty((count, 2), dtype=np.int64)
        cdef int64_t[:, ::1] view = result
        cdef Py_ssize_t i
        for i in range(count):
            view[i, 0] = sign * ladder_key(ladder, i)
            view[i, 1] = ladder_qty(ladder, i)
        return result

    def best_bid(self):
        """The best bid as (price, qty) mantissas, or None when the side is empty."""
        if ladder_len(&self._bids) == 0:
            return None
        return ladder_key(&self._bids, 0), ladder_qty(&self._bids, 0)

    def best_ask(self):
        """The best ask as (price, qty) mantissas, or None when the side is empty."""
        if ladder_len(&self._asks) == 0:
            return None
        return -ladder_key(&self._asks, 0), ladder_qty(&self._asks, 0)

    def qty_at(self, str side, int64_t price):
        """Quantity mantissa at price mantissa ``price`` on ``side`` ("bid"/"ask"), 0 if none."""
        cdef Ladder* ladder
        cdef int64_t key
        cdef Py_ssize_t at
        if side == "bid":
            ladder, key = &self._bids, price
        elif side == "ask":
            ladder, key = &self._asks, -price
        else:
            raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")
        at = ladder_find(ladder, key)
        if at < ladder.hi and ladder.keys[at] == key:
            return ladder.qtys[at]
        return 0

    @property
    def bid_levels(self):
        return ladder_len(&self._bids)

    @property
    def ask_levels(self):
        return ladder_len(&self._asks)

    def __len__(self):
        return ladder_len(&self._bids) + ladder_len(&self._asks)

    def _check(self):
        """Assert the invariants: sorted strictly, positive quantities, within depth, in bounds."""
        self._check_ladder(&self._bids, 1)
        self._check_ladder(&self._asks, -1)

    cdef object _check_ladder(self, Ladder* ladder, int sign):
        cdef Py_ssize_t i
        assert 0 <= ladder.lo <= ladder.hi <= ladder.capacity
        assert ladder.hi - ladder.lo <= self.depth
        for i in range(ladder.lo, ladder.hi):
            assert ladder.qtys[i] > 0
            assert sign * ladder.keys[i] >= 0
            if i > ladder.lo:
                assert ladder.keys[i - 1] < ladder.keys[i]
