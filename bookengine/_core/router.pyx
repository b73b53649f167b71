# cython: language_level=3
"""The compiled line reader: capture or socket lines -> frames -> books, trades and counts, in C.

Every line of every capture shape comes through here once (see ``docs/architecture.md``). For
each line the reader

1. reads the line's receive-time prefix in the given line format (``LINES_*`` in
   :mod:`bookengine.core_types`): our own ``recv_ts_ns<TAB>frame`` or a bare frame, tardis.dev's
   ``<ISO 8601 time> <frame>``, cryptofeed's ``<unix time>: <frame>``. A line without a time
   takes the time of the line before it (-1 before the first);
2. skips lines the caller filtered out by symbol before scanning them;
3. applies v2 ``book``, ``level3`` and v1 book frames of books the session registered (healthy
   books) in place; parses v2 ``trade`` frames into exact trade records; counts heartbeats;
4. stops, saying why, at the first line that needs someone else: a line that is not a received
   frame (capture headers, checkpoints, sent requests: the capture layer's), a frame that needs
   the session (control frames, unknown or stale books, anything malformed), a checksum
   mismatch, a crossed book, a book message whose event someone wants, or the first line past
   a receive-time limit.

Nothing is decided here that the session would decide differently: same scanner, same book
code, same rules. The pure-Python twin is :mod:`bookengine._reference.router`.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memchr, memcmp

from bookengine._core.l2book cimport L2BookCore
from bookengine._core.l3book cimport L3BookCore
from bookengine._core.sink cimport LineSink, TradeIn
from bookengine._core.scan cimport (
    KIND_BOOK,
    KIND_LEVEL3,
    KIND_V1_BOOK,
    NUM_OK,
    DayCache,
    FrameScanner,
    be_digits8,
    parse_mantissa,
    parse_timestamp,
)

from bookengine.errors import BookError, ChecksumError
from bookengine import core_types as codes

cdef object _TRADE_TYPES = None
cdef object _EVENT_TYPES = None


cdef object event_types():
    """(BookChanged, its mutable twin), imported on first use (see kraken.events)."""
    global _EVENT_TYPES
    if _EVENT_TYPES is None:
        from bookengine.kraken.events import BookChanged, _MutableBookChanged
        _EVENT_TYPES = (BookChanged, _MutableBookChanged)
    return _EVENT_TYPES


cdef object trade_types():
    """(Trade, Trades), imported on first use: ``import bookengine`` stays light."""
    global _TRADE_TYPES
    if _TRADE_TYPES is None:
        from bookengine.kraken.events import Trade, Trades
        _TRADE_TYPES = (Trade, Trades)
    return _TRADE_TYPES

cdef uint64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF

cdef int LINES_KRAKEN = codes.LINES_KRAKEN
cdef int LINES_TARDIS = codes.LINES_TARDIS
cdef int LINES_CRYPTOFEED = codes.LINES_CRYPTOFEED

cdef int STOP_END = codes.STOP_END
cdef int STOP_HANDOFF = codes.STOP_HANDOFF
cdef int STOP_MISMATCH = codes.STOP_MISMATCH
cdef int STOP_CROSSED = codes.STOP_CROSSED
cdef int STOP_LINE = codes.STOP_LINE
cdef int STOP_APPLIED = codes.STOP_APPLIED
cdef int STOP_TIME = codes.STOP_TIME

cdef enum:
    MAX_TRADES = 4096       # trades in one frame read here; more go to the session
    RECENT = 8              # books remembered by _slot
    COUNTS = 4              # per slot: messages, verified, last_recv_ts_ns, sink symbol id

ctypedef struct Span:
    Py_ssize_t start
    Py_ssize_t length

ctypedef struct TradeSpans:
    Span symbol
    Span side
    Span price
    Span qty
    Span ord_type
    Span trade_id
    Span timestamp

cdef TradeSpans[MAX_TRADES] TRADES  # scratch (the reader holds the GIL throughout)
cdef TradeIn[MAX_TRADES] TRADES_IN  # the same trades, parsed, for the sink

cdef const char* HEARTBEAT = b'{"channel":"heartbeat"}'
cdef Py_ssize_t HEARTBEAT_LENGTH = 23


cdef inline bint take(const char** p, const char* end, const char* text,
                      Py_ssize_t n) noexcept nogil:
    if end - p[0] >= n and memcmp(p[0], text, n) == 0:
        p[0] += n
        return True
    return False


# Byte classes of the trade reader, one table look-up a byte: printable ASCII but '"' and
# '\\' (a string's plain bytes), and the bytes of a JSON number.
cdef unsigned char[256] PLAIN_BYTE
cdef unsigned char[256] NUMBER_BYTE


cdef void _build_byte_classes() noexcept:
    cdef int c
    for c in range(256):
        PLAIN_BYTE[c] = 0x20 <= c < 0x7F and c != 0x22 and c != 0x5C
        NUMBER_BYTE[c] = 0x30 <= c <= 0x39 or c in (0x2E, 0x2D, 0x2B, 0x65, 0x45)  # . - + e E


_build_byte_classes()


cdef inline bint take_string(const char** p, const char* end, const char* base,
                             Span* span) noexcept nogil:
    """After '"': plain printable ASCII up to the closing '"' (no escapes); False otherwise."""
    cdef const char* q = p[0]
    while q < end and PLAIN_BYTE[<unsigned char>q[0]]:
        q += 1
    if q >= end or q[0] != c'"':
        return False  # an escape, a control or non-ASCII byte, or no end
    span.start = p[0] - base
    span.length = q - p[0]
    p[0] = q + 1
    return True


cdef inline bint take_number(const char** p, const char* end, const char* base,
                             Span* span) noexcept nogil:
    """A JSON number's characters, or a plain string (checked later by parse_mantissa)."""
    cdef const char* q = p[0]
    if q < end and q[0] == c'"':
        p[0] += 1
        return take_string(p, end, base, span)
    while q < end and NUMBER_BYTE[<unsigned char>q[0]]:
        q += 1
    if q == p[0]:
        return False
    span.start = p[0] - base
    span.length = q - p[0]
    p[0] = q
    return True


cdef inline bint span_eq(const char* base, Span span, const char* text, Py_ssize_t n) noexcept:
    return span.length == n and memcmp(base + span.start, text, n) == 0


cdef Py_ssize_t scan_trades(const char* base, Py_ssize_t size, bint* snapshot) noexcept:
    """A v2 ``trade`` frame in Kraken's layout -> TRADES; the count, or -1 to give up.

    Kraken's layout: ``{"channel":"trade","type":"update"|"snapshot","data":[{...},...]}`` with
    no whitespace; in each record the keys symbol, side, price, qty, ord_type, trade_id and
    timestamp in any order, each at most once, symbol, side, price and qty required, and one
    symbol for the whole frame. Anything else (another layout, an unknown key, escapes) is
    left to the session's decoder, which reads any JSON.
    """
    cdef const char* p = base
    cdef const char* end = base + size
    cdef Py_ssize_t count = 0
    cdef int seen
    cdef char key
    cdef TradeSpans* t
    if not take(&p, end, b'{"channel":"trade","type":"', 27):
        return -1
    if take(&p, end, b'update"', 7):
        snapshot[0] = False
    elif take(&p, end, b'snapshot"', 9):
        snapshot[0] = True
    else:
        return -1
    if not take(&p, end, b',"data":[', 9):
        return -1
    if take(&p, end, b']}', 2):
        return 0 if p == end else -1
    while True:
        if count == MAX_TRADES or not take(&p, end, b'{', 1):
            return -1
        t = &TRADES[count]
        t.ord_type.length = t.trade_id.length = t.timestamp.length = -1
        seen = 0
        while True:
            # The key's first letter picks the one or two keys it can be (trying the seven
            # keys in turn cost up to seven comparisons a key).
            key = p[1] if end - p >= 2 else 0
            if key == c's' and take(&p, end, b'"symbol":"', 10):
                if seen & 1 or not take_string(&p, end, base, &t.symbol):
                    return -1
                seen |= 1
            elif key == c's' and take(&p, end, b'"side":"', 8):
                if seen & 2 or not take_string(&p, end, base, &t.side):
                    return -1
                seen |= 2
            elif key == c'p' and take(&p, end, b'"price":', 8):
                if seen & 4 or not take_number(&p, end, base, &t.price):
                    return -1
                seen |= 4
            elif key == c'q' and take(&p, end, b'"qty":', 6):
                if seen & 8 or not take_number(&p, end, base, &t.qty):
                    return -1
                seen |= 8
            elif key == c'o' and take(&p, end, b'"ord_type":"', 12):
                if seen & 16 or not take_string(&p, end, base, &t.ord_type):
                    return -1
                seen |= 16
            elif key == c't' and take(&p, end, b'"trade_id":', 11):
                if seen & 32 or not take_number(&p, end, base, &t.trade_id):
                    return -1
                seen |= 32
            elif key == c't' and take(&p, end, b'"timestamp":"', 13):
                if seen & 64 or not take_string(&p, end, base, &t.timestamp):
                    return -1
                seen |= 64
            else:
                return -1
            if take(&p, end, b'}', 1):
                break
            if not take(&p, end, b',', 1):
                return -1
        if seen & 15 != 15:
            return -1
        if not (span_eq(base, t.side, b"buy", 3) or span_eq(base, t.side, b"sell", 4)):
            return -1
        if count and (t.symbol.length != TRADES[0].symbol.length or memcmp(
                base + t.symbol.start, base + TRADES[0].symbol.start, t.symbol.length) != 0):
            return -1
        count += 1
        if take(&p, end, b',', 1):
            continue
        if take(&p, end, b']}', 2) and p == end:
            return count
        return -1


cdef int parse_trade_id(const char* text, Py_ssize_t length, int64_t* out) noexcept:
    cdef Py_ssize_t i
    cdef uint64_t value = 0
    if length <= 0 or length > 18:
        return -1
    for i in range(length):
        if not (c'0' <= text[i] <= c'9'):
            return -1
        value = value * 10 + <uint64_t>(text[i] - c'0')
    out[0] = <int64_t>value
    return 0


cdef int parse_unix_seconds(const char* text, Py_ssize_t length, int64_t* out) noexcept:
    """``1690730998.343415`` (decimal seconds, at most 9 decimals) -> ns, exactly."""
    cdef Py_ssize_t i, decimals = -1
    cdef uint64_t value = 0
    if length <= 0 or length > 21:
        return -1
    for i in range(length):
        if c'0' <= text[i] <= c'9':
            value = value * 10 + <uint64_t>(text[i] - c'0')
            if decimals >= 0:
                decimals += 1
        elif text[i] == c'.' and decimals < 0 and i > 0:
            decimals = 0
        else:
            return -1
    if decimals > 9 or decimals == 0:
        return -1
    if decimals < 0:
        decimals = 0
    while decimals < 9:
        if value > INT64_MAX // 10:
            return -1
        value *= 10
        decimals += 1
    if value > INT64_MAX:
        return -1
    out[0] = <int64_t>value
    return 0


cdef class BookRouter:
    """Books the session trusts, trade precisions, a symbol filter, and the line loop.

    Books are keyed by the scanner's kind and symbol (and, for v1, the channel name:
    ``book-10`` and ``book-1000`` of one pair are two books), as the session keys its own.
    """

    cdef readonly FrameScanner scanner
    """The scanner that read the last frame (after STOP_HANDOFF: see ``scanned``)."""
    cdef readonly bint scanned
    """After STOP_HANDOFF: the scanner read the frame (``scan_error``: what it raised)."""
    cdef readonly object scan_error
    cdef dict _slots            # key (bytes) -> slot
    cdef list _books            # slot -> L2BookCore, L3BookCore or None
    cdef list _keys             # slot -> (kind, symbol, channel_name)
    cdef bytearray _emit        # slot -> 1 when each applied message stops (STOP_APPLIED)
    cdef int64_t* _counts       # COUNTS per slot
    cdef Py_ssize_t _capacity
    cdef list _recent_keys      # the RECENT keys found last, most recent first (None: free)
    cdef Py_ssize_t _recent_slots[RECENT]
    cdef dict _trade_scales     # symbol (bytes) -> (symbol, price precision, qty precision)
    cdef DayCache _trade_day    # the trades' day (their times are parsed on it)
    cdef DayCache _line_day     # the day of the line times of other tools' captures
    cdef object _wanted         # frozenset of symbol bytes, or None: every symbol
    cdef bytes _filter_last     # the symbol the filter judged last, and its verdict
    cdef bint _filter_last_out
    cdef readonly object failure
    """After STOP_MISMATCH/STOP_CROSSED: (kind, symbol, channel_name, error, recv_ts_ns)."""
    cdef readonly Py_ssize_t lines
    """Lines consumed by the last apply_lines call (blank and handed-off lines included)."""
    cdef public int64_t last_recv_ts
    """Receive time of the last line read (-1 before any); lines without one take it."""
    cdef readonly Py_ssize_t span_start
    """After STOP_HANDOFF: the frame's offset; after STOP_LINE: the line's (no newline)."""
    cdef readonly Py_ssize_t span_stop
    cdef readonly object applied_tag
    """After STOP_APPLIED: the tag the book was added with (the caller's record of it); the
    message is not in the counts: the caller counts it with its event."""
    cdef readonly bint applied_snapshot
    cdef readonly bint applied_verified
    cdef readonly object applied_event
    """After STOP_APPLIED of a book added with a tag (the session's BookState): its
    :class:`BookChanged`, the tag's counts already updated."""
    cdef public bint effects_on
    """level3 events carry ``book.effects()``."""
    cdef list _tags             # slot -> the caller's tag
    cdef Py_ssize_t _next
    cdef readonly bint counted
    """Counts are waiting in take_counts."""
    cdef public bint want_trades
    """Build :class:`Trades` events (in :attr:`events`); otherwise trades are only counted."""
    cdef readonly list events
    """Trades events made since the caller last took them (see take_events)."""
    cdef readonly int64_t heartbeats
    cdef readonly int64_t trade_frames
    cdef readonly int64_t trades
    cdef readonly int64_t filtered
    """Data lines skipped by the symbol filter."""
    cdef readonly int64_t next_recv_ts
    """After STOP_TIME: the receive time of the line left unread."""
    cdef LineSink _sink

    def __cinit__(self):
        self._trade_day.valid = self._line_day.valid = False
        self.scanner = FrameScanner()
        self._slots = {}
        self._books = []
        self._keys = []
        self._tags = []
        self._emit = bytearray()
        self._recent_keys = [None] * RECENT
        self.last_recv_ts = -1
        self._trade_scales = {}
        self._wanted = None
        self.events = []

    def __dealloc__(self):
        free(self._counts)

    # -- what the session tells the reader -------------------------------------------------

    @staticmethod
    def _key(int kind, str symbol, str channel_name=""):
        if kind == KIND_V1_BOOK:
            return bytes((kind,)) + channel_name.encode("utf-8") + b"\0" + symbol.encode("utf-8")
        return bytes((kind,)) + symbol.encode("utf-8")

    def add(self, int kind, str symbol, book not None, str channel_name="", bint emit=False,
            tag=None):
        """Route this book's frames to ``book`` from now on (``emit``: stop after each;
        ``tag``: handed back with each such stop, see :attr:`applied_tag`)."""
        if kind == KIND_LEVEL3:
            if not isinstance(book, L3BookCore):
                raise TypeError(f"not a compiled L3 book: {type(book).__name__}")
        elif kind == KIND_BOOK or kind == KIND_V1_BOOK:
            if not isinstance(book, L2BookCore):
                raise TypeError(f"not a compiled L2 book: {type(book).__name__}")
        else:
            raise ValueError(f"not a book kind: {kind}")
        key = BookRouter._key(kind, symbol, channel_name)
        slot = self._slots.get(key)
        if slot is not None:
            self._books[slot] = book
            self._emit[slot] = emit
            self._tags[slot] = tag
            return
        slot = len(self._books)
        if slot == self._capacity:
            grown = <int64_t*>realloc(self._counts,
                                      COUNTS * (2 * slot + 8) * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            self._counts = grown
            self._capacity = 2 * slot + 8
        self._counts[COUNTS * slot] = self._counts[COUNTS * slot + 1] = 0
        self._counts[COUNTS * slot + 2] = -1
        self._counts[COUNTS * slot + 3] = (
            -1 if self._sink is None or kind != KIND_LEVEL3 else self._sink.symbol_id(symbol))
        self._slots[key] = slot
        self._books.append(book)
        self._keys.append((kind, symbol, channel_name))
        self._emit.append(emit)
        self._tags.append(tag)

    def remove(self, int kind, str symbol, str channel_name=""):
        """Stop routing that book (it needs the session: stale, resyncing, rebuilt)."""
        slot = self._slots.pop(BookRouter._key(kind, symbol, channel_name), None)
        if slot is not None:
            self._books[slot] = None
        self._recent_keys = [None] * RECENT

    def routes(self, int kind, str symbol, str channel_name=""):
        """True while that book's frames are applied here."""
        return BookRouter._key(kind, symbol, channel_name) in self._slots

    def set_emit(self, bint emit):
        """Stop after every applied book message (True) or apply silently (False)."""
        cdef Py_ssize_t slot
        for slot in range(len(self._emit)):
            self._emit[slot] = emit

    def set_sink(self, LineSink sink):
        """Hand ``sink`` every level3 message applied here and every trade frame (not a
        snapshot) read here, as they are read (None: nobody). Messages the session applies
        itself are the caller's to hand over."""
        cdef Py_ssize_t slot
        self._sink = sink
        for slot in range(len(self._books)):
            kind, symbol, _ = self._keys[slot]
            self._counts[COUNTS * slot + 3] = (
                -1 if sink is None or kind != KIND_LEVEL3 else sink.symbol_id(symbol))

    def set_trade_precision(self, str symbol, int price_precision, int qty_precision):
        """Read this symbol's trade frames here, at these scales."""
        self._trade_scales[symbol.encode("utf-8")] = (symbol, price_precision, qty_precision)

    def forget_trade_precision(self, str symbol):
        self._trade_scales.pop(symbol.encode("utf-8"), None)

    def set_symbols(self, symbols):
        """Skip data lines (book, level3, trade) of other symbols; None: read every symbol."""
        self._wanted = None if symbols is None else frozenset(
            s.encode("utf-8") for s in symbols)
        self._filter_last = None

    def take_counts(self):
        """``{(kind, symbol, channel_name): (messages, verified, last_recv_ts_ns)}`` since the
        last call."""
        out = {}
        cdef Py_ssize_t slot
        cdef int64_t* counts
        self.counted = False
        for slot in self._slots.values():
            counts = self._counts + COUNTS * slot
            if counts[0]:
                out[self._keys[slot]] = (counts[0], counts[1], counts[2])
                counts[0] = counts[1] = 0
        return out

    def take_events(self):
        """The Trades events made since the last call, in line order."""
        events = self.events
        self.events = []
        return events

    # -- the loop ----------------------------------------------------------------------------

    cdef Py_ssize_t _slot(self, int kind):
        # Frames name a few books over and over: compare bytes with the books found last
        # (most recent first) before building a key and hashing it.
        cdef FrameScanner s = self.scanner
        cdef Py_ssize_t length = s.symbol_span.length
        cdef const char* text = s.data + s.symbol_span.start
        cdef const char* known
        cdef Py_ssize_t i, j, slot
        cdef bytes key
        if kind == KIND_V1_BOOK:
            found = self._slots.get(BookRouter._key(kind, s.symbol, s.channel_name))
            return -1 if found is None else found
        for i in range(RECENT):
            key = self._recent_keys[i]
            if key is None:
                break
            if PyBytes_GET_SIZE(key) == length + 1:
                known = PyBytes_AS_STRING(key)
                if known[0] == kind and memcmp(known + 1, text, length) == 0:
                    slot = self._recent_slots[i]
                    for j in range(i, 0, -1):  # move to the front
                        self._recent_keys[j] = self._recent_keys[j - 1]
                        self._recent_slots[j] = self._recent_slots[j - 1]
                    self._recent_keys[0] = key
                    self._recent_slots[0] = slot
                    return slot
        key = bytes((kind,)) + text[:length]
        found = self._slots.get(key)
        if found is None:
            return -1
        for j in range(RECENT - 1, 0, -1):
            self._recent_keys[j] = self._recent_keys[j - 1]
            self._recent_slots[j] = self._recent_slots[j - 1]
        self._recent_keys[0] = key
        self._recent_slots[0] = found
        return found

    cdef int _filtered_out(self, const char* frame, Py_ssize_t length) except -1:
        """1 when a v2 data frame in Kraken's layout is for a symbol the caller skips."""
        cdef const char* p
        cdef const char* end = frame + length
        cdef const char* close
        cdef bytes last
        if not (length > 20 and memcmp(frame, b'{"channel":"', 12) == 0 and (
                memcmp(frame + 12, b'book"', 5) == 0 or memcmp(frame + 12, b'level3"', 7) == 0
                or memcmp(frame + 12, b'trade"', 6) == 0)):
            return 0
        p = frame + 12
        while True:
            p = <const char*>memchr(p, c'"', end - p)
            if p == NULL or end - p < 11:
                return 0
            if memcmp(p, b'"symbol":"', 10) == 0:
                break
            p += 1
        p += 10
        close = <const char*>memchr(p, c'"', end - p)
        if close == NULL:
            return 0
        # Consecutive lines mostly name the symbol judged last: compare before hashing.
        last = self._filter_last
        if (last is not None and PyBytes_GET_SIZE(last) == close - p
                and memcmp(PyBytes_AS_STRING(last), p, close - p) == 0):
            return self._filter_last_out
        self._filter_last = p[:close - p]
        self._filter_last_out = self._filter_last not in self._wanted
        return self._filter_last_out

    cdef int _read_trades(self, const char* frame, Py_ssize_t length, int64_t recv_ts) except -1:
        """1 when the frame was a trade frame read here; 0 to hand it to the session."""
        cdef bint snapshot = False
        cdef Py_ssize_t count = scan_trades(frame, length, &snapshot)
        cdef Py_ssize_t i
        cdef TradeSpans* t
        cdef int64_t price, qty, trade_id, stamp
        cdef int price_precision, qty_precision
        cdef bint feed
        if count < 0:
            return 0
        if count == 0:
            self.trade_frames += 1
            return 1
        scales = self._trade_scales.get(frame[TRADES[0].symbol.start:
                                              TRADES[0].symbol.start + TRADES[0].symbol.length])
        if scales is None:
            return 0  # the session counts a trade it cannot price
        symbol, price_precision, qty_precision = scales
        feed = self._sink is not None and not snapshot  # (the plain replay copies nothing)
        records = [] if self.want_trades else None
        Trade, Trades = trade_types() if self.want_trades else (None, None)
        for i in range(count):
            t = &TRADES[i]
            if (parse_mantissa(frame + t.price.start, t.price.length, price_precision,
                               &price) != NUM_OK
                    or parse_mantissa(frame + t.qty.start, t.qty.length, qty_precision,
                                      &qty) != NUM_OK):
                return 0  # the session's decoder says what is wrong
            trade_id = -1
            if t.trade_id.length >= 0 and parse_trade_id(
                    frame + t.trade_id.start, t.trade_id.length, &trade_id) < 0:
                return 0
            stamp = -1
            if t.timestamp.length >= 0 and parse_timestamp(
                    &self._trade_day, frame + t.timestamp.start, t.timestamp.length, &stamp) != 0:
                return 0
            if feed:
                TRADES_IN[i].price = price
                TRADES_IN[i].qty = qty
                TRADES_IN[i].trade_id = trade_id
                TRADES_IN[i].timestamp_ns = stamp
                TRADES_IN[i].book_side = 1 if t.side.length == 3 else 0  # a buy lifts the asks
            if records is not None:
                records.append(Trade(
                    symbol,
                    "buy" if t.side.length == 3 else "sell",
                    price,
                    qty,
                    trade_id,
                    stamp,
                    recv_ts,
                    _ord_type(frame, t.ord_type),
                ))
        self.trade_frames += 1
        self.trades += count
        if feed:
            self._sink.on_trades(self._sink.symbol_id(symbol), TRADES_IN, count, recv_ts)
        if records is not None:
            self.events.append(Trades(symbol, tuple(records), price_precision, qty_precision,
                                      recv_ts, snapshot))
        return 1

    cdef object _event(self, object state, object book, int kind, bint is_snapshot,
                       bint verified, int64_t recv_ts):
        # The session's own steps for an applied message (counts, then its BookChanged),
        # compiled: this runs for every live frame.
        state.messages += 1
        if verified:
            state.checksums_checked += 1
        state.last_recv_ts_ns = recv_ts
        changed, mutable = event_types()
        event = mutable.__new__(mutable)
        event.key = state.key
        event.symbol = state.symbol
        event.book = book
        event.recv_ts_ns = recv_ts
        event.is_snapshot = is_snapshot
        event.checksum_verified = verified
        event.conflated = 0
        event.effects = (<L3BookCore>book).effects() if (
            kind == KIND_LEVEL3 and self.effects_on) else ()
        event.__class__ = changed
        return event

    def apply_lines(self, bytes data not None, Py_ssize_t pos=0, int line_format=0,
                    int64_t until_ns=0x7FFFFFFFFFFFFFFF, Py_ssize_t limit=-1):
        """Read lines of ``data[:limit]`` (-1: all of it) from offset ``pos`` until a stop.

        Returns ``(offset, reason)``: the offset to continue from and one of the ``STOP_*``
        codes of :mod:`bookengine.core_types`. Every reason but ``STOP_TIME`` and
        ``STOP_END`` consumed the line it names (``offset`` is past it); ``STOP_TIME`` leaves
        the line whose receive time is past ``until_ns`` unread.

        Cost: the scanner and book work only; no Python object per line (trade records only
        when :attr:`want_trades`).
        """
        cdef int stop = self._run(data, pos, line_format, until_ns, limit)
        return self._next, stop

    def apply_frame(self, bytes frame not None, int64_t recv_ts_ns):
        """One socket frame received at ``recv_ts_ns``: :meth:`apply_lines` of that one line,
        returning the stop code alone (the live path: one call, no tuple).

        A frame that is not one line starting with ``{`` or ``[`` (a newline inside, leading
        whitespace, not JSON) is handed to the session whole and unread (``scanned`` False).
        """
        cdef const char* text = PyBytes_AS_STRING(frame)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(frame)
        self.last_recv_ts = recv_ts_ns
        if size == 0 or (text[0] != c'{' and text[0] != c'[') or memchr(
                text, c'\n', size) != NULL:
            self.failure = None
            self.scanned = False
            self.span_start, self.span_stop = 0, size
            self.lines = 1
            return STOP_HANDOFF
        return self._run(frame, 0, LINES_KRAKEN, INT64_MAX, -1)

    cdef int _run(self, bytes data, Py_ssize_t pos, int line_format,
                  int64_t until_ns, Py_ssize_t limit) except -1:
        # The loop; where it stopped goes to self._next.
        cdef const char* base = PyBytes_AS_STRING(data)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
        if 0 <= limit < size:
            size = limit  # a capture chunk's whole lines (the rest is the next chunk's)
        cdef Py_ssize_t start, stop, frame_start, i, slot, next_pos, ts_end
        cdef const char* newline
        cdef int64_t recv_ts, stamp
        cdef uint64_t value, head, tail
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
            next_pos = stop + 1 if newline != NULL else size
            while stop > start and (base[stop - 1] == c'\r' or base[stop - 1] == c' '):
                stop -= 1
            if stop == start:
                if line_format == LINES_TARDIS:
                    # tardis.dev: a blank line is a disconnect; the caller marks books stale.
                    self.span_start = self.span_stop = start
                    self.lines += 1
                    self._next = next_pos
                    return STOP_LINE
                self.lines += 1
                pos = next_pos
                continue
            # The receive-time prefix, by line format.
            recv_ts = -1
            frame_start = start
            if line_format == LINES_KRAKEN:
                if base[start] != c'{' and base[start] != c'[':
                    # "recv_ts_ns<TAB>": at most 19 digits (today's times have 19), in int64.
                    value = 0
                    i = start
                    if (stop - start > 16 and be_digits8(base + start, 8, &head)
                            and be_digits8(base + start + 8, 8, &tail)):
                        # Today's times have 19 digits: the first sixteen eight at a time.
                        value = head * 100000000 + tail
                        i = start + 16
                    ts_end = stop if stop - start <= 19 else start + 19
                    while i < ts_end and <unsigned char>(base[i] - c'0') <= 9:
                        value = value * 10 + <uint64_t>(base[i] - c'0')
                        i += 1
                    digits = i < stop and base[i] == c'\t'
                    if (not digits or i == start or i == stop
                            or (base[i + 1] != c'{' and base[i + 1] != c'[')
                            or value > INT64_MAX):
                        # Headers, checkpoints, sent requests, other time forms: not ours.
                        self.span_start, self.span_stop = start, stop
                        self.lines += 1
                        self._next = next_pos
                        return STOP_LINE
                    recv_ts = <int64_t>value
                    frame_start = i + 1
            elif line_format == LINES_TARDIS:
                # "2023-07-30T15:30:00.0292860Z {frame}": 28 characters, a space, the message.
                if (stop - start < 30 or base[start + 28] != c' '
                        or parse_timestamp(&self._line_day, base + start, 28, &stamp) != 0):
                    self.span_start, self.span_stop = start, stop
                    self.lines += 1
                    self._next = next_pos
                    return STOP_LINE
                recv_ts = stamp
                frame_start = start + 29
            else:  # LINES_CRYPTOFEED: "1690730998.343415: {frame}"
                i = start
                while i < stop and (c'0' <= base[i] <= c'9' or base[i] == c'.'):
                    i += 1
                if (i + 2 >= stop or base[i] != c':' or base[i + 1] != c' '
                        or parse_unix_seconds(base + start, i - start, &stamp) != 0):
                    # The header and the sent requests ("<url> <- <time>: <json>").
                    self.span_start, self.span_stop = start, stop
                    self.lines += 1
                    self._next = next_pos
                    return STOP_LINE
                recv_ts = stamp
                frame_start = i + 2
            if recv_ts < 0:
                recv_ts = self.last_recv_ts
            elif recv_ts > until_ns:
                self.next_recv_ts = recv_ts
                self._next = start
                return STOP_TIME
            if self._wanted is not None and self._filtered_out(
                    base + frame_start, stop - frame_start):
                self.filtered += 1
                self.last_recv_ts = recv_ts
                self.lines += 1
                pos = next_pos
                continue
            if stop - frame_start == HEARTBEAT_LENGTH and memcmp(
                    base + frame_start, HEARTBEAT, HEARTBEAT_LENGTH) == 0:
                self.heartbeats += 1
                self.last_recv_ts = recv_ts
                self.lines += 1
                pos = next_pos
                continue
            if base[frame_start + 1] == c'"' and self._read_trades(
                    base + frame_start, stop - frame_start, recv_ts):
                self.last_recv_ts = recv_ts
                self.lines += 1
                pos = next_pos
                continue
            self.last_recv_ts = recv_ts
            self.span_start, self.span_stop = frame_start, stop
            self.scanned = True  # (apply_frame hands over unread frames with False)
            self.scan_error = None
            try:
                kind = scanner.scan_view(data, frame_start, stop - frame_start)
            except BookError as exc:
                self.scan_error = exc
                self.lines += 1
                self._next = next_pos
                return STOP_HANDOFF
            if kind != KIND_BOOK and kind != KIND_LEVEL3 and kind != KIND_V1_BOOK:
                self.lines += 1
                self._next = next_pos
                return STOP_HANDOFF
            slot = self._slot(kind)
            if slot < 0:
                self.lines += 1
                self._next = next_pos
                return STOP_HANDOFF
            book = self._books[slot]
            try:
                if kind == KIND_LEVEL3:
                    verified = (<L3BookCore>book).apply_fast(scanner) is True
                else:
                    verified = (<L2BookCore>book).apply_fast(scanner) is True
            except ChecksumError as exc:
                self.lines += 1
                symbol, channel_name = self._keys[slot][1], self._keys[slot][2]
                self.failure = (kind, symbol, channel_name, exc, recv_ts)
                self._next = next_pos
                return STOP_MISMATCH
            except BookError:
                # Refused, and the book is as before (L3: rolled back): the session reports.
                self.lines += 1
                self._next = next_pos
                return STOP_HANDOFF
            self.lines += 1
            if kind == KIND_LEVEL3 and self._sink is not None:
                self._sink.on_level3(<int32_t>self._counts[COUNTS * slot + 3], <L3BookCore>book,
                                     recv_ts, scanner.is_snapshot)
            if self._emit[slot] and not (
                    kind != KIND_LEVEL3 and (<L2BookCore>book).crossed()):
                # The session counts this message as it makes its event.
                self.applied_tag = self._tags[slot]
                self.applied_snapshot = scanner.is_snapshot
                self.applied_verified = verified
                self.applied_event = None if self.applied_tag is None else self._event(
                    self.applied_tag, book, kind, scanner.is_snapshot, verified, recv_ts)
                self._next = next_pos
                return STOP_APPLIED
            self._counts[COUNTS * slot] += 1
            self._counts[COUNTS * slot + 1] += verified
            self._counts[COUNTS * slot + 2] = recv_ts
            self.counted = True
            if kind != KIND_LEVEL3 and (<L2BookCore>book).crossed():
                # L3 books refuse a crossing message themselves (above); L2 books cannot.
                symbol, channel_name = self._keys[slot][1], self._keys[slot][2]
                self.failure = (kind, symbol, channel_name, None, recv_ts)
                self._next = next_pos
                return STOP_CROSSED
            pos = next_pos
        self._next = pos
        return STOP_END


cdef object _ord_type(const char* frame, Span span):
    if span.length < 0:
        return ""
    if span_eq(frame, span, b"market", 6):
        return "market"
    if span_eq(frame, span, b"limit", 5):
        return "limit"
    return frame[span.start:span.start + span.length].decode("ascii")


def count_lines(bytes data not None, Py_ssize_t start=0, Py_ssize_t end=-1):
    """Newlines in ``data[start:end]`` (``end`` -1: to the end; ``bytes.count(b"\\n")`` walks
    byte by byte, memchr does not)."""
    cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
    if end < 0 or end > size:
        end = size
    if start < 0 or start > end:
        start = end
    cdef const char* p = PyBytes_AS_STRING(data) + start
    cdef const char* last = PyBytes_AS_STRING(data) + end
    cdef Py_ssize_t count = 0
    while p < last:
        p = <const char*>memchr(p, c'\n', last - p)
        if p == NULL:
            break
        count += 1
        p += 1
    return count
