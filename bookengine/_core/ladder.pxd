# One side of a book: contiguous sorted arrays of int64 keys and quantities.

from libc.stdint cimport int64_t

ctypedef struct Ladder:
    int64_t* keys       # ascending; the best level is at hi - 1
    int64_t* qtys
    Py_ssize_t lo       # first used slot
    Py_ssize_t hi       # one past the last used slot
    Py_ssize_t capacity

cdef int ladder_init(Ladder* ladder, Py_ssize_t capacity) except -1
cdef void ladder_free(Ladder* ladder) noexcept
cdef void ladder_clear(Ladder* ladder) noexcept nogil
cdef Py_ssize_t ladder_set(Ladder* ladder, int64_t key, int64_t qty) except -1
cdef Py_ssize_t ladder_remove(Ladder* ladder, int64_t key) noexcept nogil
cdef Py_ssize_t ladder_find(Ladder* ladder, int64_t key) noexcept nogil
cdef void ladder_truncate(Ladder* ladder, Py_ssize_t depth) noexcept nogil

cdef inline Py_ssize_t ladder_len(Ladder* ladder) noexcept nogil:
    return ladder.hi - ladder.lo

cdef inline int64_t ladder_key(Ladder* ladder, Py_ssize_t n) noexcept nogil:
    """Key of the n-th best level (0 = best)."""
    return ladder.keys[ladder.hi - 1 - n]

cdef inline int64_t ladder_qty(Ladder* ladder, Py_ssize_t n) noexcept nogil:
    """Quantity of the n-th best level (0 = best)."""
    return ladder.qtys[ladder.hi - 1 - n]
