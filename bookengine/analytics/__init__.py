"""Queue-priority and book analytics over L3 (``level3``) and L2 (``book``) books.

* :mod:`.queue`: where an order stands (:func:`queue_position`), and
  :class:`BookAnalytics`, which follows a stream (live through :class:`~bookengine.feed.
  KrakenFeed`, or a replay) to track orders and their outcomes;
* :mod:`.classify`: fill or cancel for every level3 delete/modify, by joining the public
  trades (:class:`FillClassifier`), and its scoring against ground truth;
* :mod:`.dynamics`: queue flow rates, a fill-time/fill-probability model, queue sizes, ages and
  concentration;
* :mod:`.features`: L2 features (mid, spread, microprice, imbalance, OFI, VWAP and slippage,
  pressure) and their sampling into columns;
* :mod:`.estimators`: L2-only queue position models (pro rata, power probability);
* :mod:`.evaluate`: the classifier and the estimators scored against the simulator's truth;
* :mod:`.plots`: depth chart, heatmap, queue trajectory (needs matplotlib).

Results with rows are :class:`Table` objects: dicts of numpy arrays with ``to_pandas()``
(pandas optional: ``pip install 'bookengine[dataframe]'``).
"""

from __future__ import annotations

from ..kraken.events import ExecutionReport
from ..kraken.events import Trade as TradePrint
from .classify import (
    CANCEL,
    FILL,
    PARTIAL_FILL,
    REDUCE,
    REQUEUE,
    Classification,
    ClassifierScore,
    FillClassifier,
    L3Change,
    classifications_table,
    score,
    truth_from_history,
)
from .dynamics import FillEstimate, FillModel, FlowRates, QueueFlow, hhi, level_stats, order_ages
from .estimators import (
    L2QueueEstimator,
    PowerProbModel,
    ProRataModel,
    QueueModel,
    RiskAverseModel,
)
from .events import OUTCOMES, AnalyticsEvent, OrderOutcome, QueueChanged
from .features import (
    FeatureSampler,
    LevelSampler,
    OrderFlowImbalance,
    book_pressure,
    imbalance,
    microprice,
    mid_price,
    sample_features,
    slippage,
    spread,
    vwap,
)
from .queue import (
    BookAnalytics,
    QueueInfo,
    TrackedOrder,
    UnknownOrderError,
    queue_position,
)
from .tables import Table

__all__ = [
    "CANCEL",
    "FILL",
    "OUTCOMES",
    "PARTIAL_FILL",
    "REDUCE",
    "REQUEUE",
    "AnalyticsEvent",
    "BookAnalytics",
    "Classification",
    "ClassifierScore",
    "ExecutionReport",
    "FeatureSampler",
    "FillClassifier",
    "FillEstimate",
    "FillModel",
    "FlowRates",
    "L2QueueEstimator",
    "L3Change",
    "LevelSampler",
    "OrderFlowImbalance",
    "OrderOutcome",
    "PowerProbModel",
    "ProRataModel",
    "QueueChanged",
    "QueueFlow",
    "QueueInfo",
    "QueueModel",
    "RiskAverseModel",
    "Table",
    "TrackedOrder",
    "TradePrint",
    "UnknownOrderError",
    "book_pressure",
    "classifications_table",
    "hhi",
    "imbalance",
    "level_stats",
    "microprice",
    "mid_price",
    "order_ages",
    "queue_position",
    "sample_features",
    "score",
    "slippage",
    "spread",
    "truth_from_history",
    "vwap",
]
