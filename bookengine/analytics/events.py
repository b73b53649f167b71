"""What :class:`~bookengine.analytics.queue.BookAnalytics` reports about tracked orders.

Small frozen records, like the session's events; a feed with analytics delivers them in the
same stream as ``BookChanged``.
"""

from __future__ import annotations

from dataclasses import dataclass

OUTCOMES = ("filled", "partially_filled", "cancelled", "moved", "out_of_view", "unknown")
"""Values of :attr:`OrderOutcome.outcome`.

* ``filled``: left the book by a fill (the delete matched a trade);
* ``partially_filled``: a fill took part of it (``final=False``: it still rests), or it left
  the book by a cancel after fills had taken part of it (``final=True``);
* ``cancelled``: left the book without any fill;
* ``moved``: re-queued (amended to another price or up, or re-added under the same id): it lost
  its queue place and is tracked on at the new one (``final=False``);
* ``out_of_view``: dropped out of the subscribed depth (Kraken sends no delete for that);
* ``unknown``: gone after a resync snapshot: what happened during the gap is not known.
"""


@dataclass(frozen=True, slots=True)
class QueueChanged:
    """A tracked order's place in its queue changed (or tracking began: ``cause="tracked"``)."""

    order_id: str
    symbol: str
    side: str
    """``"bid"`` or ``"ask"``."""
    price: int
    qty: int
    """The order's remaining quantity (mantissa)."""
    orders_ahead: int
    qty_ahead: int
    qty_behind: int
    level_orders: int
    level_qty: int
    time_in_queue_ns: int
    """Since the order entered this queue (its Kraken timestamp: insert or last amend), or since
    tracking saw it first when it carried no timestamp."""
    recv_ts_ns: int
    cause: str
    """``tracked``, ``book`` (the queue around it changed), ``snapshot`` (a resync) or
    ``moved``."""


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What happened to a tracked order (decided with the trade join: may lag the level3 delete
    by the classifier's wait)."""

    order_id: str
    symbol: str
    outcome: str
    """One of :data:`OUTCOMES`."""
    final: bool
    """True when the order is gone and tracking ended."""
    filled_qty: int
    """Quantity filled so far (from trades matched to its reductions)."""
    remaining_qty: int
    ambiguous: bool
    """The classifier flagged the deciding match as ambiguous."""
    recv_ts_ns: int
    time_in_queue_ns: int


AnalyticsEvent = QueueChanged | OrderOutcome
