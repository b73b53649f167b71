# distutils: language = c++
# cython: language_level=3
"""Fill or cancel, and queue flows, over a replay: the analytics of level3 effects, compiled.

The line reader (``router.pyx``) hands this join every level3 message it applies (the
book's effects, read in place) and every trade frame it parses (exact records) as it reads
them, through the :class:`~bookengine._core.sink.LineSink` interface: no Python object is made
per message. The join does with them what the event path of
:class:`bookengine.analytics.BookAnalytics` does with the same messages' events, step for step:

* each delete/modify/requeue entry becomes a change, its place before the message
  (``analytics/queue.py``: ``_on_level3`` and ``_attribute``);
* changes meet trades of the same symbol, book side and price (``analytics/classify.py``:
  ``FillClassifier``), decided when their wait is over or the trade stream passed them;
* fills, cancels and adds go to each symbol's flow window (``analytics/dynamics.py``:
  ``QueueFlow``).

That event path is the reference: the differential tests hold the two to the same decisions,
counters and windows. It also stays the path for what needs Python per message (orders being
followed, ``on_event``); this join serves ``BookAnalytics.run``.

Out: the decisions as columns (:meth:`TradeJoin.columns`), the counters, and the flow windows
(:meth:`TradeJoin.flow_window`).
"""

from cython.operator cimport dereference as deref
from libc.stdint cimport int8_t, int32_t, int64_t
from libcpp.vector cimport vector

import numpy as np

from bookengine._core.l3book cimport (
    ACT_ADD,
    ACT_MODIFY,
    ACT_REQUEUE,
    ACT_TRUNCATE,
    Effect,
    L3BookCore,
    id_text,
)
from bookengine._core.scan cimport EVENT_DELETE
from bookengine._core.sink cimport LineSink, TradeIn

LABEL_WORDS = ("fill", "partial_fill", "cancel", "reduce", "requeue")
"""Labels by code (the order of analytics.classify.LABELS)."""

cdef enum:
    FILL = 0
    PARTIAL_FILL = 1
    CANCEL = 2
    REDUCE = 3
    REQUEUE = 4

REASONS = (
    "moved or re-added",
    "exact trade match",
    "exact trade match; a same-size reduction competed for it",
    "exact trade match; orders ahead still rest",
    "exact trade match; a same-size reduction competed for it; orders ahead still rest",
    "inexact trade match at the front",
    "trades printed at this price, none of this size",
    "a same-size reduction ahead took the matching trade",
    "no trade at this price",
)
"""Reasons by code (the texts analytics.classify gives)."""

cdef enum:
    R_MOVED = 0
    R_EXACT = 1             # + 1 when contested, + 2 when orders ahead still rest
    R_INEXACT = 5
    R_NONE_OF_SIZE = 6
    R_TAKEN = 7
    R_NO_TRADE = 8

cdef int64_t FLOW_COMPACT = 4096    # drop a flow window's dead head once it is this long
cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF


cdef inline bint is_requeue(const Change* c) noexcept nogil:
    return c.requeue or c.qty_after > c.qty_before


cdef inline int64_t removed(const Change* c) noexcept nogil:
    """Quantity that left the book (0 for a requeue or an increase)."""
    if is_requeue(c) or c.qty_after >= c.qty_before:
        return 0
    return c.qty_before - c.qty_after


cdef inline int64_t distance(const Change* c, const OpenTrade* t) noexcept nogil:
    cdef int64_t d
    if c.timestamp_ns >= 0 and t.timestamp_ns >= 0:
        d = t.timestamp_ns - c.timestamp_ns
    else:
        d = t.recv_ts_ns - c.recv_ts_ns
    return -d if d < 0 else d


cdef inline bint ranks_before(const Change* a, int64_t da, const Change* b,
                              int64_t db) noexcept nogil:
    # Closer in time first; at equal distance the message and queue order decide
    # (price-time priority: the front of the queue fills first).
    if da != db:
        return da < db
    if a.seq != b.seq:
        return a.seq < b.seq
    return a.orders_ahead < b.orders_ahead


cdef inline void drop_spent(vector[OpenTrade]* trades) noexcept nogil:
    """Trades fully explained go at once (the event path keeps them until its sweep, where
    they are dropped uncounted: never a candidate either way), so the scans stay short."""
    cdef Py_ssize_t k, kept = 0
    for k in range(<Py_ssize_t>trades.size()):
        if trades[0][k].remaining > 0:
            if kept != k:
                trades[0][kept] = trades[0][k]
            kept += 1
    trades.resize(kept)


cdef inline Key key_of(const Change* c) noexcept nogil:
    return Key(c.price, <int64_t>c.symbol * 2 + c.side)


cdef class TradeJoin(LineSink):
    """The compiled trade join (see the module docstring).

    Args:
        match_window_ns, wait_ns, keep_ns: as :class:`~bookengine.analytics.FillClassifier`.
        flow_window_ns: as :class:`~bookengine.analytics.QueueFlow`.
        keep_decisions: keep every decision for :meth:`columns` (False: counters and
            windows only, constant memory).
        bucket_slack: prices with nothing left at them are forgotten once they outnumber four
            times the live ones by this much (memory against rebuilding them).
    """

    def __cinit__(self, int64_t match_window_ns, int64_t wait_ns, int64_t keep_ns,
                  int64_t flow_window_ns, bint keep_decisions=True, Py_ssize_t bucket_slack=1024):
        if match_window_ns < 0 or wait_ns < 0 or keep_ns < 0:
            raise ValueError("windows must be >= 0")
        if flow_window_ns <= 0:
            raise ValueError("flow_window_ns must be > 0")
        self.match_window_ns = match_window_ns
        self.wait_ns = wait_ns
        self.keep_ns = keep_ns
        self.flow_window_ns = flow_window_ns
        self.keep_decisions = keep_decisions
        if bucket_slack < 0:
            raise ValueError("bucket_slack must be >= 0")
        self.bucket_slack = bucket_slack
        self._symbols = []
        self._symbol_ids = {}
        self._long_ids = []
        self._now = self._data_now = self._expired_at = -1
        self._sweep_every = keep_ns // 10
        self._watch_head()
        self._buckets.reserve(1024)

    # -- what the line reader (or the replay loop) hands in -------------------------------------

    cdef int32_t symbol_id(self, str symbol) except -1:
        found = self._symbol_ids.get(symbol)
        if found is not None:
            return found
        cdef int32_t new = <int32_t>len(self._symbols)
        self._symbols.append(symbol)
        self._symbol_ids[symbol] = new
        self._watermark.push_back(-1)
        self._flows.push_back(vector[FlowEvent]())
        self._flow_head.push_back(0)
        self._flow_first.push_back(-1)
        self._flow_last.push_back(-1)
        self._flow_made.push_back(0)
        return new

    cdef int on_level3(self, int32_t symbol, L3BookCore book, int64_t recv_ts,
                       bint is_snapshot) except -1:
        cdef Py_ssize_t k, j, n
        cdef const Effect* e
        cdef Change* c
        cdef Change* other
        cdef int64_t ahead, qty_ahead, place, gone
        cdef bint untrimmed
        cdef FlowEvent add
        self._poll(recv_ts)  # what is due at this message, from what came before it
        self.level3_messages += 1
        self._flow_made[symbol] = 1
        self._flow_time(symbol, recv_ts)
        if not is_snapshot:
            self._seq += 1
            self._message.clear()
            # The window's clock was just moved to recv_ts: unless time went back by more
            # than the window, the adds below need no trimming.
            untrimmed = recv_ts < 0 or recv_ts >= self._flow_last[symbol] - self.flow_window_ns
            add.t = recv_ts
            add.qty = 0
            add.level = -1
            add.kind = 2
            for k in range(book._effect_count):
                e = &book._effects[k]
                if e.action == ACT_ADD:
                    # (The event path records adds after the message's changes; those make
                    # no flow entries when added, so the window is the same.)
                    if untrimmed:
                        add.side = <int8_t>e.side
                        self._flows[symbol].push_back(add)
                    else:
                        self._flow_add(symbol, recv_ts, e.side, -1, 2, 0)
                    continue
                if e.action == ACT_TRUNCATE:
                    continue
                # An effect's place is the one just before its entry; a change's is the one
                # before the message: undo what the earlier entries at its level did.
                ahead = e.orders_ahead
                qty_ahead = e.qty_ahead
                for j in range(<Py_ssize_t>self._message.size() - 1, -1, -1):
                    other = &self._message[j]
                    if other.side != e.side or other.price != e.price:
                        continue
                    place = other.place
                    if other.left:
                        if place <= ahead:
                            ahead += 1
                            qty_ahead += other.qty_before
                    elif place < ahead:
                        qty_ahead += other.qty_before - other.qty_after
                self._message.resize(self._message.size() + 1)
                c = &self._message.back()
                c.place = e.orders_ahead
                c.left = e.action != ACT_MODIFY  # deleted or requeued
                c.price = e.price
                c.requeue = e.action == ACT_REQUEUE
                c.new_price = e.new_price if c.requeue else -1
                c.qty_before = e.qty_before
                c.qty_after = e.qty_after
                c.timestamp_ns = book._effect_ts
                c.recv_ts_ns = recv_ts
                c.orders_ahead = ahead
                c.qty_ahead = qty_ahead
                c.level_index = e.level_index
                c.seq = self._seq
                c.id_lo = e.id_lo
                c.id_hi = e.id_hi
                c.id_text = -1
                if e.id_text >= 0:
                    c.id_text = <int32_t>len(self._long_ids)
                    self._long_ids.append(book._effect_ids[e.id_text])
                c.symbol = symbol
                c.side = e.side
                c.event = e.event
                c.front = 1
                c.contested = 0
            # Front: every order ahead also left in this message (a sweep fills front first).
            n = self._message.size()
            for k in range(n):
                c = &self._message[k]
                gone = 0
                for j in range(n):
                    other = &self._message[j]
                    if (other.side == c.side and other.price == c.price
                            and (other.qty_after == 0 or other.requeue)
                            and other.orders_ahead < c.orders_ahead):
                        gone += 1
                c.front = gone == c.orders_ahead
            for k in range(n):
                self._add_change(&self._message[k])
        self._poll(-1)  # what this message settled
        return 0

    cdef int on_trades(self, int32_t symbol, const TradeIn* trades, Py_ssize_t count,
                       int64_t recv_ts) except -1:
        cdef Py_ssize_t k
        cdef const TradeIn* t
        cdef OpenTrade open_trade
        cdef int32_t bucket
        self._poll(recv_ts)
        for k in range(count):
            t = &trades[k]
            self.trades += 1
            open_trade.trade_id = t.trade_id
            open_trade.timestamp_ns = t.timestamp_ns
            open_trade.recv_ts_ns = recv_ts
            open_trade.remaining = t.qty
            bucket = self._bucket(Key(t.price, <int64_t>symbol * 2 + t.book_side))
            if not self._trade_bucket_flag[bucket]:
                self._trade_bucket_flag[bucket] = 1
                self._trade_buckets.push_back(bucket)
            self._bucket_trades[bucket].push_back(open_trade)
            if t.timestamp_ns > self._watermark[symbol]:
                self._watermark[symbol] = t.timestamp_ns
        if count:  # one receive time for the frame's trades
            if recv_ts > self._now:
                self._now = recv_ts
            if recv_ts > self._data_now:
                self._data_now = recv_ts
        self._poll(-1)
        return 0

    def level3(self, str symbol not None, L3BookCore book not None, int64_t recv_ts_ns,
               bint is_snapshot):
        """A level3 message the session applied itself (the reader hands in its own)."""
        self.on_level3(self.symbol_id(symbol), book, recv_ts_ns, is_snapshot)

    def add_trades(self, str symbol not None, trades, int64_t recv_ts_ns):
        """A trade frame the session decoded itself: :class:`~bookengine.kraken.events.Trade`
        records (the reader hands in the frames it parses)."""
        cdef vector[TradeIn] records
        cdef TradeIn record
        for trade in trades:
            record.price = trade.price
            record.qty = trade.qty
            record.trade_id = trade.trade_id
            record.timestamp_ns = trade.timestamp_ns
            record.book_side = 1 if trade.side == "buy" else 0  # a buy lifts the asks
            records.push_back(record)
        self.on_trades(self.symbol_id(symbol), records.data(), records.size(), recv_ts_ns)

    def poll(self, int64_t recv_ts_ns):
        """Decide what is due at ``recv_ts_ns`` (-1: at the latest time seen)."""
        self._poll(recv_ts_ns)

    def flush(self):
        """Decide every pending change now (the end of a replay)."""
        cdef int32_t index
        while not self._pending.empty():
            index = self._pending.front()
            self._pending.pop_front()
            self._decide(index)
            self._free.push_back(index)
        self._watch_head()

    # -- the join ---------------------------------------------------------------------------------

    cdef int32_t _bucket(self, Key key) except -1:
        """The bucket of ``key`` (made on first use; freed by the sweep once empty)."""
        cdef int32_t bucket
        found = self._buckets.find(key)
        if found != self._buckets.end():
            return deref(found).second
        if self._bucket_free.empty():
            bucket = <int32_t>self._bucket_keys.size()
            self._bucket_keys.push_back(key)
            self._bucket_pending.push_back(vector[int32_t]())
            self._bucket_trades.push_back(vector[OpenTrade]())
            self._trade_bucket_flag.push_back(0)
        else:
            bucket = self._bucket_free.back()
            self._bucket_free.pop_back()
            self._bucket_keys[bucket] = key
        self._buckets[key] = bucket
        return bucket

    cdef int _add_change(self, Change* change) except -1:
        cdef int32_t index
        self.changes += 1
        if change.recv_ts_ns > self._now:
            self._now = change.recv_ts_ns
        if change.recv_ts_ns > self._data_now:
            self._data_now = change.recv_ts_ns
        if is_requeue(change):
            return self._record(change, REQUEUE, 0, -1, 0, R_MOVED)
        if removed(change) == 0:
            return 0  # a modify that changed nothing: no decision to make
        change.bucket = self._bucket(key_of(change))
        if self._free.empty():
            index = <int32_t>self._pool.size()
            self._pool.push_back(change[0])
        else:
            index = self._free.back()
            self._free.pop_back()
            self._pool[index] = change[0]
        self._pending.push_back(index)
        if self._pending.size() == 1:
            self._watch_head()
        self._bucket_pending[change.bucket].push_back(index)
        return 0

    cdef inline void _watch_head(self) noexcept:
        # When the pending head becomes due: its wait over (receive time), or its symbol's
        # trade stream past it by more than the window (engine time).
        cdef Change* c
        self._head_due = self._head_settled = INT64_MAX
        self._head_symbol = 0
        if self._pending.empty():
            return
        c = &self._pool[self._pending.front()]
        if c.recv_ts_ns >= 0:
            self._head_due = c.recv_ts_ns + self.wait_ns
        if c.timestamp_ns >= 0:
            self._head_settled = c.timestamp_ns + self.match_window_ns
        self._head_symbol = c.symbol

    cdef int _poll(self, int64_t now) except -1:
        cdef int32_t index
        if now >= 0 and now > self._now:
            self._now = now
        if self._pending.empty() and self._trade_buckets.empty():
            return 0
        while not self._pending.empty() and (
                self._now >= self._head_due
                or self._watermark[self._head_symbol] > self._head_settled):
            index = self._pending.front()
            self._pending.pop_front()
            self._watch_head()
            self._decide(index)
            self._free.push_back(index)
        # Old trades go in batches: a sweep every tenth of the keep time (of data time).
        if (not self._trade_buckets.empty()
                and self._data_now - self._expired_at >= self._sweep_every):
            self._expired_at = self._data_now
            self._expire(self._data_now)
        return 0

    cdef int _decide(self, int32_t index) except -1:
        cdef Change* c = &self._pool[index]
        cdef Change* other
        cdef vector[int32_t]* rivals
        cdef vector[OpenTrade]* trades
        cdef OpenTrade* t
        cdef Py_ssize_t k, r, i, j, best = -1
        cdef int64_t size = removed(c), d, theirs, best_distance = 0, traded, take
        cdef bint taken, contested, best_contested = False, lost_tie = False, reserved
        cdef bint is_delete, lost_contest, ambiguous
        cdef Py_ssize_t ids_start
        cdef int32_t held
        cdef int label
        # Rivals: the other pending reductions at this price, in arrival order.
        rivals = &self._bucket_pending[c.bucket]
        for k in range(<Py_ssize_t>rivals.size()):
            if rivals[0][k] == index:
                rivals.erase(rivals.begin() + k)
                break
        # Candidates: open trades at this price within the window.
        self._candidates.clear()
        trades = &self._bucket_trades[c.bucket]
        for k in range(<Py_ssize_t>trades.size()):
            t = &trades[0][k]
            if t.remaining > 0 and distance(c, t) <= self.match_window_ns:
                self._candidates.push_back(<int32_t>k)
        for i in range(<Py_ssize_t>self._candidates.size()):
            t = &trades[0][self._candidates[i]]
            if t.remaining != size:
                continue
            d = distance(c, t)
            contested = taken = False
            for r in range(<Py_ssize_t>rivals.size()):
                other = &self._pool[rivals[0][r]]
                if removed(other) != size:
                    continue
                theirs = distance(other, t)
                if ranks_before(other, theirs, c, d):
                    taken = True
                    if theirs == d:  # a tie in time, broken by queue order
                        lost_tie = True
                        other.contested = 1
                    break
                if theirs == d:
                    contested = True
            if not taken and (best < 0 or d < best_distance or (
                    d == best_distance and t.trade_id < trades[0][best].trade_id)):
                best = self._candidates[i]
                best_distance = d
                best_contested = contested
        is_delete = c.event == EVENT_DELETE or c.qty_after == 0
        lost_contest = c.contested or lost_tie
        c.contested = 0
        if best >= 0:
            t = &trades[0][best]
            t.remaining = 0
            if best_contested:
                for r in range(<Py_ssize_t>rivals.size()):
                    other = &self._pool[rivals[0][r]]
                    if removed(other) == size and distance(other, t) == best_distance:
                        other.contested = 1  # the losers of the tie are ambiguous too
            contested = best_contested or lost_contest
            ambiguous = contested or not c.front
            ids_start = self._trade_ids.size()
            self._trade_ids.push_back(t.trade_id)
            drop_spent(trades)
            return self._record(c, FILL if is_delete else PARTIAL_FILL, size, ids_start,
                                ambiguous, R_EXACT + contested + 2 * (not c.front))
        # Trades a rival matches exactly are reserved for it.
        self._loose.clear()
        for i in range(<Py_ssize_t>self._candidates.size()):
            t = &trades[0][self._candidates[i]]
            reserved = False
            for r in range(<Py_ssize_t>rivals.size()):
                if removed(&self._pool[rivals[0][r]]) == t.remaining:
                    reserved = True
                    break
            if not reserved:
                self._loose.push_back(self._candidates[i])
        if not self._loose.empty() and c.front and not lost_tie:
            # Closest first, then by trade id (a stable insertion sort: the lists are short).
            for i in range(1, <Py_ssize_t>self._loose.size()):
                held = self._loose[i]
                d = distance(c, &trades[0][held])
                j = i - 1
                while j >= 0:
                    theirs = distance(c, &trades[0][self._loose[j]])
                    if theirs < d or (theirs == d and trades[0][self._loose[j]].trade_id
                                      <= trades[0][held].trade_id):
                        break
                    self._loose[j + 1] = self._loose[j]
                    j -= 1
                self._loose[j + 1] = held
            traded = 0
            ids_start = self._trade_ids.size()
            for i in range(<Py_ssize_t>self._loose.size()):
                if traded >= size:
                    break
                t = &trades[0][self._loose[i]]
                take = t.remaining if t.remaining < size - traded else size - traded
                t.remaining -= take
                traded += take
                self._trade_ids.push_back(t.trade_id)
            if 2 * traded >= size:
                label = FILL if is_delete else PARTIAL_FILL
            else:
                label = CANCEL if is_delete else REDUCE
            drop_spent(trades)
            return self._record(c, label, traded, ids_start, True, R_INEXACT)
        if not self._candidates.empty() and not lost_contest:
            return self._record(c, CANCEL if is_delete else REDUCE, 0, -1, True,
                                R_NONE_OF_SIZE)
        if lost_contest:
            return self._record(c, CANCEL if is_delete else REDUCE, 0, -1, True, R_TAKEN)
        return self._record(c, CANCEL if is_delete else REDUCE, 0, -1, False, R_NO_TRADE)

    cdef int _record(self, Change* change, int label, int64_t traded, Py_ssize_t ids_start,
                     int ambiguous, int reason) except -1:
        cdef Decided decided
        cdef int64_t size
        self.decided += 1
        self._labels[label] += 1
        if ambiguous:
            self.ambiguous += 1
        # The flow window (BookAnalytics._decide -> QueueFlow.add_classification).
        self._flow_made[change.symbol] = 1
        if label != REQUEUE:
            size = removed(change)
            self._flow_add(change.symbol, change.recv_ts_ns, change.side, change.level_index,
                           0 if label == FILL or label == PARTIAL_FILL else 1, size)
        if self.keep_decisions:
            decided.change = change[0]
            decided.traded = traded
            decided.ids_start = ids_start if ids_start >= 0 else 0
            decided.ids_count = 0 if ids_start < 0 else <int32_t>(
                self._trade_ids.size() - ids_start)
            decided.label = label
            decided.reason = reason
            decided.ambiguous = ambiguous
            self._decided.push_back(decided)
        elif ids_start >= 0:
            self._trade_ids.resize(ids_start)  # nobody will read them
        return 0

    cdef int _expire(self, int64_t now) except -1:
        cdef int64_t horizon
        cdef vector[OpenTrade]* trades
        cdef Py_ssize_t k, kept
        cdef bint pending_here
        cdef OpenTrade* t
        cdef Py_ssize_t i, listed, live
        cdef int32_t bucket
        cdef Buckets.iterator found
        if now < 0:
            return 0
        horizon = now - self.keep_ns
        listed = 0
        for i in range(<Py_ssize_t>self._trade_buckets.size()):
            bucket = self._trade_buckets[i]
            trades = &self._bucket_trades[bucket]
            pending_here = not self._bucket_pending[bucket].empty()
            kept = 0
            for k in range(<Py_ssize_t>trades.size()):
                t = &trades[0][k]
                if t.remaining <= 0:
                    continue
                if t.recv_ts_ns < horizon and not pending_here:
                    self.unmatched_trades += 1
                    continue
                trades[0][kept] = t[0]
                kept += 1
            trades.resize(kept)
            if kept:
                self._trade_buckets[listed] = bucket
                listed += 1
            else:
                self._trade_bucket_flag[bucket] = 0
        self._trade_buckets.resize(listed)
        # Prices come and go: free the buckets of prices with nothing left once they
        # outnumber the others.
        live = listed + <Py_ssize_t>self._pending.size()
        if <Py_ssize_t>self._buckets.size() > 4 * live + self.bucket_slack:
            for bucket in range(<int32_t>self._bucket_keys.size()):
                if self._trade_bucket_flag[bucket] or not self._bucket_pending[bucket].empty():
                    continue
                found = self._buckets.find(self._bucket_keys[bucket])
                if found != self._buckets.end() and deref(found).second == bucket:
                    self._buckets.erase(found)  # (a freed bucket's stale key maps elsewhere)
                    self._bucket_free.push_back(bucket)
                    self.buckets_freed += 1
        return 0

    # -- flow windows (analytics.dynamics.QueueFlow) ----------------------------------------

    cdef inline void _flow_time(self, int32_t symbol, int64_t t) noexcept:
        cdef int64_t horizon
        cdef Py_ssize_t head
        cdef vector[FlowEvent]* events
        if t < 0:
            return
        if self._flow_first[symbol] < 0:
            self._flow_first[symbol] = t
        if t > self._flow_last[symbol]:
            self._flow_last[symbol] = t
        horizon = self._flow_last[symbol] - self.flow_window_ns
        events = &self._flows[symbol]
        head = self._flow_head[symbol]
        while head < <Py_ssize_t>events.size() and events[0][head].t < horizon:
            head += 1
        if head >= FLOW_COMPACT and 2 * head >= <Py_ssize_t>events.size():
            events.erase(events.begin(), events.begin() + head)
            head = 0
        self._flow_head[symbol] = head

    cdef inline int _flow_add(self, int32_t symbol, int64_t t, int side, int64_t level,
                              int kind, int64_t qty) except -1:
        cdef FlowEvent event
        self._flow_time(symbol, t)
        event.t = t
        event.side = <int8_t>side
        event.level = <int32_t>level
        event.kind = <int8_t>kind
        event.qty = qty
        self._flows[symbol].push_back(event)
        return 0

    # -- out ----------------------------------------------------------------------------------

    @property
    def symbols(self):
        """Symbols seen, in the order they were first seen."""
        return list(self._symbols)

    @property
    def pending(self):
        """Reductions waiting for their decision."""
        return self._pending.size()

    @property
    def labels(self):
        """Decisions per label: ``{label: count}``."""
        return {LABEL_WORDS[k]: self._labels[k] for k in range(5)}

    def flow_window(self, str symbol not None):
        """``(columns, first_ns, last_ns)`` of ``symbol``'s flow window, None when no flow
        was made for it. The columns are the window's entries as
        :class:`~bookengine.analytics.QueueFlow` keeps them, oldest first, as new arrays:
        ``recv_ts_ns`` int64, ``side`` int8 (0 bid, 1 ask), ``level`` int64 (-1 for adds),
        ``kind`` int8 (0 fill, 1 cancel, 2 add), ``qty`` int64."""
        found = self._symbol_ids.get(symbol)
        if found is None or not self._flow_made[<int32_t>found]:
            return None
        cdef int32_t s = found
        cdef vector[FlowEvent]* events = &self._flows[s]
        cdef Py_ssize_t head = self._flow_head[s]
        cdef Py_ssize_t n = <Py_ssize_t>events.size() - head
        cdef Py_ssize_t k
        times = np.empty(n, dtype=np.int64)
        sides = np.empty(n, dtype=np.int8)
        levels = np.empty(n, dtype=np.int64)
        kinds = np.empty(n, dtype=np.int8)
        qtys = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] time_view = times, level_view = levels, qty_view = qtys
        cdef signed char[::1] side_view = sides, kind_view = kinds
        cdef FlowEvent* event
        for k in range(n):
            event = &events[0][head + k]
            time_view[k] = event.t
            side_view[k] = <signed char>event.side
            level_view[k] = event.level
            kind_view[k] = <signed char>event.kind
            qty_view[k] = event.qty
        return (times, sides, levels, kinds, qtys), self._flow_first[s], self._flow_last[s]

    def columns(self):
        """The kept decisions as columns, in decision order (new arrays).

        int64: ``recv_ts_ns``, ``timestamp_ns``, ``price``, ``qty_before``, ``qty_after``,
        ``traded_qty``, ``orders_ahead``, ``qty_ahead``, ``level_index``, ``seq``,
        ``new_price`` (-1 unless a requeue); int8 codes: ``label`` (:data:`LABEL_WORDS`),
        ``reason`` (:data:`REASONS`), ``side`` (0 bid, 1 ask), ``event`` (2 modify,
        3 delete); int32 ``symbol`` (index into ``symbols``); bool ``ambiguous``, ``front``,
        ``requeue``; ``order_id`` (object, str); ``trade_ids`` (object: tuples of int);
        ``symbols`` (list).
        """
        cdef Py_ssize_t n = self._decided.size()
        cdef Py_ssize_t k, i
        cdef Decided* d
        cdef Change* c
        ints = {name: np.empty(n, dtype=np.int64) for name in (
            "recv_ts_ns", "timestamp_ns", "price", "qty_before", "qty_after", "traded_qty",
            "orders_ahead", "qty_ahead", "level_index", "seq", "new_price")}
        codes = {name: np.empty(n, dtype=np.int8) for name in (
            "label", "reason", "side", "event")}
        flags = {name: np.empty(n, dtype=np.bool_) for name in ("ambiguous", "front",
                                                                "requeue")}
        symbol = np.empty(n, dtype=np.int32)
        cdef int64_t[::1] recv = ints["recv_ts_ns"], stamp = ints["timestamp_ns"]
        cdef int64_t[::1] price = ints["price"], before = ints["qty_before"]
        cdef int64_t[::1] after = ints["qty_after"], traded = ints["traded_qty"]
        cdef int64_t[::1] ahead = ints["orders_ahead"], qty_ahead = ints["qty_ahead"]
        cdef int64_t[::1] level = ints["level_index"], seq = ints["seq"]
        cdef int64_t[::1] new_price = ints["new_price"]
        cdef signed char[::1] label = codes["label"], reason = codes["reason"]
        cdef signed char[::1] side = codes["side"], event = codes["event"]
        cdef int32_t[::1] symbol_view = symbol
        cdef unsigned char[::1] ambiguous = flags["ambiguous"].view(np.uint8)
        cdef unsigned char[::1] front = flags["front"].view(np.uint8)
        cdef unsigned char[::1] requeue = flags["requeue"].view(np.uint8)
        order_ids = np.empty(n, dtype=object)
        trade_ids = np.empty(n, dtype=object)
        for k in range(n):
            d = &self._decided[k]
            c = &d.change
            recv[k] = c.recv_ts_ns
            stamp[k] = c.timestamp_ns
            price[k] = c.price
            before[k] = c.qty_before
            after[k] = c.qty_after
            traded[k] = d.traded
            ahead[k] = c.orders_ahead
            qty_ahead[k] = c.qty_ahead
            level[k] = c.level_index
            seq[k] = c.seq
            new_price[k] = c.new_price
            label[k] = d.label
            reason[k] = d.reason
            side[k] = c.side
            event[k] = c.event
            symbol_view[k] = c.symbol
            ambiguous[k] = d.ambiguous != 0
            front[k] = c.front != 0
            requeue[k] = c.requeue != 0
            order_ids[k] = (self._long_ids[c.id_text] if c.id_text >= 0
                            else id_text(c.id_hi, c.id_lo, NULL, 0))
            trade_ids[k] = tuple([self._trade_ids[d.ids_start + i]
                                  for i in range(d.ids_count)])
        return {**ints, **codes, **flags, "symbol": symbol, "order_id": order_ids,
                "trade_ids": trade_ids, "symbols": list(self._symbols)}
