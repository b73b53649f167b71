# cython: language_level=3
"""The interface between the compiled line reader and a compiled consumer of its data.

A consumer that must see every level3 message and every trade of a replay (the trade join of
the analytics, ``tradejoin.pyx``) cannot afford a Python event per message. The line reader
(``router.pyx``) calls it instead, in C, as it reads: each level3 message it applied (the book
holds the message's effects until the next one) and each trade frame it parsed. The reader
knows this base class only, so it stays C while a consumer may be C++.
"""

cimport cython
from libc.stdint cimport int32_t, int64_t

from bookengine._core.l3book cimport L3BookCore


@cython.auto_pickle(False)
cdef class LineSink:
    """Base of the compiled consumers the line reader feeds (``BookRouter.set_sink``)."""

    cdef int32_t symbol_id(self, str symbol) except -1:
        """A small number for ``symbol``, the same for its whole life."""
        raise NotImplementedError

    cdef int on_level3(self, int32_t symbol, L3BookCore book, int64_t recv_ts,
                       bint is_snapshot) except -1:
        """``book`` applied a level3 message received at ``recv_ts`` (its effects are in it)."""
        raise NotImplementedError

    cdef int on_trades(self, int32_t symbol, const TradeIn* trades, Py_ssize_t count,
                       int64_t recv_ts) except -1:
        """A trade frame (not a snapshot) of ``count`` trades received at ``recv_ts``."""
        raise NotImplementedError
