# cython: language_level=3
"""One side of a book as two contiguous int64 arrays sorted by key, best level last.

Keys are chosen by the book so that "better" means "larger": the price for bids, minus the
price for asks. Keeping the best level at the high end puts the busy part of the book (the
touch) where inserts and removals move few elements, and truncating the worst levels is just
moving ``lo`` up. Used slots are ``[lo, hi)`` inside ``[0, capacity)``; an insert shifts
whichever neighbour run is shorter, and the arrays grow when both ends are full.
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memmove


cdef int ladder_init(Ladder* ladder, Py_ssize_t capacity) except -1:
    ladder.keys = <int64_t*>malloc(capacity * sizeof(int64_t))
    ladder.qtys = <int64_t*>malloc(capacity * sizeof(int64_t))
    if ladder.keys == NULL or ladder.qtys == NULL:
        ladder_free(ladder)
        raise MemoryError()
    ladder.capacity = capacity
    ladder_clear(ladder)
    return 0


cdef void ladder_free(Ladder* ladder) noexcept:
    free(ladder.keys)
    free(ladder.qtys)
    ladder.keys = NULL
    ladder.qtys = NULL
    ladder.capacity = ladder.lo = ladder.hi = 0


cdef void ladder_clear(Ladder* ladder) noexcept nogil:
    # Start in the middle so both ends have room: snapshots arrive best first (shifting down),
    # updates arrive near the touch (shifting up).
    ladder.lo = ladder.hi = ladder.capacity // 2


cdef Py_ssize_t ladder_find(Ladder* ladder, int64_t key) noexcept nogil:
    """Index of the first key >= ``key`` in [lo, hi] (hi when all are smaller)."""
    cdef Py_ssize_t lo = ladder.lo, n = ladder.hi - ladder.lo, half
    cdef const int64_t* keys = ladder.keys
    # Most traffic is at the touch: check the top before bisecting.
    if n == 0 or keys[lo + n - 1] < key:
        return lo + n
    # Bisect without a branch on the keys (a conditional move): which half holds the answer is
    # a coin toss for the branch predictor, and a wrong guess costs more than the comparison.
    # Invariant: the answer lies in [lo, lo + n].
    while n > 1:
        half = n >> 1
        lo = lo + half if keys[lo + half] < key else lo
        n -= half
    return lo + (keys[lo] < key)


cdef int _grow(Ladder* ladder) except -1:
    cdef Py_ssize_t count = ladder.hi - ladder.lo
    cdef Py_ssize_t capacity = ladder.capacity * 2 if ladder.capacity else 16
    cdef Py_ssize_t start = (capacity - count) // 2
    cdef int64_t* keys = <int64_t*>malloc(capacity * sizeof(int64_t))
    cdef int64_t* qtys = <int64_t*>malloc(capacity * sizeof(int64_t))
    if keys == NULL or qtys == NULL:
        free(keys)
        free(qtys)
        raise MemoryError()
    memcpy(keys + start, ladder.keys + ladder.lo, count * sizeof(int64_t))
    memcpy(qtys + start, ladder.qtys + ladder.lo, count * sizeof(int64_t))
    free(ladder.keys)
    free(ladder.qtys)
    ladder.keys = keys
    ladder.qtys = qtys
    ladder.capacity = capacity
    ladder.lo = start
    ladder.hi = start + count
    return 0


cdef Py_ssize_t ladder_set(Ladder* ladder, int64_t key, int64_t qty) except -1:
    """Set the quantity at ``key``, inserting the level when it is new.

    Returns the rank (0 = best) of the level set: the levels ranked at or after it changed.
    """
    cdef Py_ssize_t at = ladder_find(ladder, key)
    if at < ladder.hi and ladder.keys[at] == key:
        ladder.qtys[at] = qty
        return ladder.hi - 1 - at
    if ladder.hi == ladder.capacity and ladder.lo == 0:
        _grow(ladder)
        at = ladder_find(ladder, key)
    if ladder.lo > 0 and (ladder.hi == ladder.capacity or at - ladder.lo < ladder.hi - at):
        # shift [lo, at) down by one
        memmove(ladder.keys + ladder.lo - 1, ladder.keys + ladder.lo,
                (at - ladder.lo) * sizeof(int64_t))
        memmove(ladder.qtys + ladder.lo - 1, ladder.qtys + ladder.lo,
                (at - ladder.lo) * sizeof(int64_t))
        ladder.lo -= 1
        at -= 1
    else:
        # shift [at, hi) up by one
        memmove(ladder.keys + at + 1, ladder.keys + at, (ladder.hi - at) * sizeof(int64_t))
        memmove(ladder.qtys + at + 1, ladder.qtys + at, (ladder.hi - at) * sizeof(int64_t))
        ladder.hi += 1
    ladder.keys[at] = key
    ladder.qtys[at] = qty
    return ladder.hi - 1 - at


cdef Py_ssize_t ladder_remove(Ladder* ladder, int64_t key) noexcept nogil:
    """Remove the level at ``key``; return the rank it had, -1 when absent (Kraken: a no-op)."""
    cdef Py_ssize_t at = ladder_find(ladder, key)
    cdef Py_ssize_t rank = ladder.hi - 1 - at
    if at == ladder.hi or ladder.keys[at] != key:
        return -1
    if at - ladder.lo < ladder.hi - at - 1:
        memmove(ladder.keys + ladder.lo + 1, ladder.keys + ladder.lo,
                (at - ladder.lo) * sizeof(int64_t))
        memmove(ladder.qtys + ladder.lo + 1, ladder.qtys + ladder.lo,
                (at - ladder.lo) * sizeof(int64_t))
        ladder.lo += 1
    else:
        memmove(ladder.keys + at, ladder.keys + at + 1, (ladder.hi - at - 1) * sizeof(int64_t))
        memmove(ladder.qtys + at, ladder.qtys + at + 1, (ladder.hi - at - 1) * sizeof(int64_t))
        ladder.hi -= 1
    if ladder.lo == ladder.hi:
        ladder_clear(ladder)
    return rank


cdef void ladder_truncate(Ladder* ladder, Py_ssize_t depth) noexcept nogil:
    """Keep the best ``depth`` levels (Kraken never says which levels fell out)."""
    if ladder.hi - ladder.lo > depth:
        ladder.lo = ladder.hi - depth
