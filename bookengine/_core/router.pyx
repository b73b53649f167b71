# cython: language_level=3
"""Replay fast path: apply runs of v2 ``book`` and ``level3`` frames to healthy books, in C.

A capture is mostly book updates for books the session already trusts. For those, going back
to Python per line (a bytes object, a method call, an event) costs more than the book work.
The router walks a buffer of capture lines and applies each line in place while it is a v2
``book`` or ``level3`` frame for a book the session registered; at the first line that needs
the session's judgement (a control frame, an unknown or stale book, a bad line, a message the
book refused) it stops and says where, and the session handles that line the ordinary way.
Nothing is decided here that the session would decide differently: same scanner, same book
code, same rules.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memchr, memcmp

from bookengine._core.l2book cimport L2BookCore
from bookengine._core.l3book cimport L3BookCore
from bookengine._core.scan cimport KIND_BOOK, KIND_LEVEL3, FrameScanner

from bookengine.core_types import STOP_CROSSED, STOP_END, STOP_HANDOFF, STOP_MISMATCH
from bookengine.errors import BookError, ChecksumError

cdef uint64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF


cdef class BookRouter:
    """Books the session trusts, by channel and symbol, and the loop that feeds them lines.

    Books are keyed ``(kind, symbol)``: ``kind`` is the scanner's ``BOOK`` (an L2 book) or
    ``LEVEL3`` (an L3 book), as the session keys its own books.
    """

    cdef FrameScanner scanner
    cdef dict _slots            # kind byte + symbol (bytes) -> slot
    cdef list _books            # slot -> L2BookCore, L3BookCore or None
    cdef list _keys             # slot -> (kind, symbol)
    cdef int64_t* _counts       # 3 per slot: messages, verified, last_recv_ts_ns
    cdef Py_ssize_t _capacity
    cdef bytes _last_key
    cdef Py_ssize_t _last_slot
    cdef readonly object failure
    """After STOP_MISMATCH/STOP_CROSSED: (kind, symbol, error, recv_ts_ns)."""
    cdef readonly Py_ssize_t lines
    """Lines consumed by the last apply_lines call (blank lines included)."""
    cdef readonly int64_t last_recv_ts
    """Receive time of the last line applied (-1 before any, or when it had none)."""
    cdef public bint require_recv_ts
    """Hand off lines without a ``recv_ts_ns<TAB>`` prefix (their time is the caller's call)."""

    def __cinit__(self):
        self.scanner = FrameScanner()
        self._slots = {}
        self._books = []
        self._keys = []
        self._last_slot = -1
        self.last_recv_ts = -1

    def __dealloc__(self):
        free(self._counts)

    @staticmethod
    def _key(int kind, str symbol):
        return bytes((kind,)) + symbol.encode("utf-8")

    def add(self, str symbol, book not None):
        """Route this symbol's frames of the book's channel to ``book`` from now on."""
        cdef int kind
        if isinstance(book, L2BookCore):
            kind = KIND_BOOK
        elif isinstance(book, L3BookCore):
            kind = KIND_LEVEL3
        else:
            raise TypeError(f"not a compiled book: {type(book).__name__}")
        key = BookRouter._key(kind, symbol)
        if key in self._slots:
            self._books[self._slots[key]] = book
            return
        slot = len(self._books)
        if slot == self._capacity:
            grown = <int64_t*>realloc(self._counts, 3 * (2 * slot + 8) * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            self._counts = grown
            self._capacity = 2 * slot + 8
        self._counts[3 * slot] = self._counts[3 * slot + 1] = 0
        self._counts[3 * slot + 2] = -1
        self._slots[key] = slot
        self._books.append(book)
        self._keys.append((kind, symbol))

    def remove(self, int kind, str symbol):
        """Stop routing ``symbol`` of ``kind`` (its book needs the session: stale, resyncing)."""
        slot = self._slots.pop(BookRouter._key(kind, symbol), None)
        if slot is not None:
            self._books[slot] = None
        self._last_key = None
        self._last_slot = -1

    def routes(self, int kind, str symbol):
        """True while frames of ``symbol`` of ``kind`` take the fast path."""
        return BookRouter._key(kind, symbol) in self._slots

    def take_counts(self):
        """``{(kind, symbol): (messages, verified, last_recv_ts_ns)}`` since the last call."""
        out = {}
        cdef Py_ssize_t slot
        cdef int64_t* counts
        for slot in self._slots.values():
            counts = self._counts + 3 * slot
            if counts[0]:
                out[self._keys[slot]] = (counts[0], counts[1], counts[2])
                counts[0] = counts[1] = 0
        return out

    cdef Py_ssize_t _slot(self, int kind):
        # Consecutive frames usually name the same book: compare bytes before hashing.
        cdef FrameScanner s = self.scanner
        cdef Py_ssize_t length = s.symbol_span.length
        cdef const char* text = s.data + s.symbol_span.start
        cdef const char* last
        if (self._last_key is not None and PyBytes_GET_SIZE(self._last_key) == length + 1):
            last = PyBytes_AS_STRING(self._last_key)
            if last[0] == kind and memcmp(last + 1, text, length) == 0:
                return self._last_slot
        key = bytes((kind,)) + text[:length]
        slot = self._slots.get(key)
        if slot is None:
            return -1
        self._last_key = key
        self._last_slot = slot
        return slot

    def apply_lines(self, bytes data not None, Py_ssize_t pos=0):
        """Apply lines of ``data`` from offset ``pos`` while the fast path can take them.

        A line is ``frame`` or ``recv_ts_ns<TAB>frame`` (integer nanoseconds; other timestamp
        forms go to the session). Returns ``(offset, reason)``: the offset where it stopped and
        one of ``STOP_END``, ``STOP_HANDOFF``, ``STOP_MISMATCH``, ``STOP_CROSSED``.

        Cost: the scanner and book work only; no Python object per line.
        """
        cdef const char* base = PyBytes_AS_STRING(data)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t start, stop, frame_start, i, slot
        cdef const char* newline
        cdef int64_t recv_ts
        cdef uint64_t stamp
        cdef bint digits
        cdef int kind
        cdef bint verified
        cdef object book
        cdef FrameScanner scanner = self.scanner
        self.failure = None
        self.lines = 0
        while pos < size:
            start = pos
            newline = <const char*>memchr(base + pos, c'\n', size - pos)
            stop = size if newline == NULL else newline - base
            pos = stop + 1 if newline != NULL else size
            while stop > start and (base[stop - 1] == c'\r' or base[stop - 1] == c' '):
                stop -= 1
            if stop == start:
                self.lines += 1
                continue
            # Optional "recv_ts_ns<TAB>": digits only on the fast path.
            recv_ts = -1
            frame_start = start
            if base[start] == c'{':
                if self.require_recv_ts:
                    return start, STOP_HANDOFF
            else:
                # At most 19 digits (today's times have 19) and within int64.
                digits = True
                stamp = 0
                i = start
                while i < stop and base[i] != c'\t':
                    if not (c'0' <= base[i] <= c'9') or i - start >= 19:
                        digits = False
                        break
                    stamp = stamp * 10 + <uint64_t>(base[i] - c'0')
                    i += 1
                if (not digits or i == start or i == stop or base[i + 1] != c'{'
                        or stamp > <uint64_t>INT64_MAX):
                    return start, STOP_HANDOFF
                recv_ts = <int64_t>stamp
                frame_start = i + 1
            try:
                kind = scanner.scan_view(data, frame_start, stop - frame_start)
            except BookError:
                return start, STOP_HANDOFF
            if kind != KIND_BOOK and kind != KIND_LEVEL3:
                return start, STOP_HANDOFF
            slot = self._slot(kind)
            if slot < 0:
                return start, STOP_HANDOFF
            book = self._books[slot]
            try:
                if kind == KIND_BOOK:
                    verified = (<L2BookCore>book).apply_fast(scanner) is True
                else:
                    verified = (<L3BookCore>book).apply_fast(scanner) is True
            except ChecksumError as exc:
                self.lines += 1
                self.last_recv_ts = recv_ts
                self.failure = (kind, scanner.symbol, exc, recv_ts)
                return pos, STOP_MISMATCH
            except BookError:
                # Refused, and the book is as before (L3: rolled back): the session reports.
                return start, STOP_HANDOFF
            self.lines += 1
            self.last_recv_ts = recv_ts
            self._counts[3 * slot] += 1
            self._counts[3 * slot + 1] += verified
            self._counts[3 * slot + 2] = recv_ts
            if kind == KIND_BOOK and (<L2BookCore>book).crossed():
                # L3 books refuse a crossing message themselves (above); L2 books cannot.
                self.failure = (kind, scanner.symbol, None, recv_ts)
                return pos, STOP_CROSSED
        return pos, STOP_END


def count_lines(bytes data not None):
    """Newlines in ``data`` (``bytes.count(b"\\n")`` walks byte by byte; memchr does not)."""
    cdef const char* p = PyBytes_AS_STRING(data)
    cdef const char* end = p + PyBytes_GET_SIZE(data)
    cdef Py_ssize_t count = 0
    while p < end:
        p = <const char*>memchr(p, c'\n', end - p)
        if p == NULL:
            break
        count += 1
        p += 1
    return count
