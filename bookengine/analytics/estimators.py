"""Estimate a resting order's queue position from L2 alone (levels + trades), as backtesters do.

An L2 feed shows one total per price. Once an order rests there, the total moves for three
reasons: trades at that price (they take the front of the queue: the public ``trade`` channel
says how much), orders joining (always behind: FIFO) and cancels (anywhere in the queue: L2
cannot say where). The estimators differ only in where they put the cancels:

* :class:`ProRataModel`: in proportion to the quantity ahead and behind (a cancel is as likely
  to come from any unit of resting quantity);
* :class:`PowerProbModel`: the share ahead is ``f(ahead) / (f(ahead) + f(behind))`` with
  ``f(x) = x**n``. ``n = 1`` is pro rata; larger ``n`` gives the bigger side of the queue more
  than its share of the cancels, which pulls the estimate towards the front faster when most
  of the queue is ahead and slower when most of it is behind. This is the idea of the
  "power probability" queue models of backtesters (e.g. hftbacktest), written from the idea;
* :class:`RiskAverseModel`: no cancel is ever ahead (only trades advance the order): the
  pessimistic bound.

:class:`L2QueueEstimator` applies one model to one order. :mod:`bookengine.analytics.evaluate`
scores them against exact L3 positions of the same simulated stream.

Quantities are int mantissas in and out; the estimated quantity ahead is a float (the
fractional split of cancels is the estimate), clamped to ``[0, level qty]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class QueueModel(Protocol):
    """Where an L2 cancel happened: the share of it that was ahead of the order."""

    @property
    def name(self) -> str:
        """Short name of the model."""
        ...

    def share_ahead(self, ahead: float, behind: float) -> float:
        """Fraction in [0, 1] of a cancel of unknown place that came from ahead."""
        ...


@dataclass(frozen=True)
class ProRataModel:
    """Cancels spread over the queue in proportion to quantity: ``ahead / (ahead + behind)``."""

    name: str = "pro_rata"

    def share_ahead(self, ahead: float, behind: float) -> float:
        total = ahead + behind
        return ahead / total if total > 0 else 0.0


@dataclass(frozen=True)
class PowerProbModel:
    """Share ahead ``ahead**n / (ahead**n + behind**n)`` (``n = 1``: pro rata)."""

    n: float = 2.0
    name: str = "power"

    def share_ahead(self, ahead: float, behind: float) -> float:
        if ahead <= 0:
            return 0.0
        if behind <= 0:
            return 1.0
        # Scale by the larger part first: large mantissas to a power overflow floats.
        top = max(ahead, behind)
        fa, fb = float((ahead / top) ** self.n), float((behind / top) ** self.n)
        return fa / (fa + fb)


@dataclass(frozen=True)
class RiskAverseModel:
    """No cancel is ahead: only trades move the order up (a lower bound on progress)."""

    name: str = "risk_averse"

    def share_ahead(self, ahead: float, behind: float) -> float:
        return 0.0


def model_label(model: QueueModel) -> str:
    """A short unique label (``power3`` for ``PowerProbModel(3)``)."""
    if isinstance(model, PowerProbModel):
        return f"power{model.n:g}"
    return model.name


class L2QueueEstimator:
    """The estimated quantity ahead of one resting order, from its level's totals and trades.

    Args:
        model: where cancels happen (see the module docstring).
        level_qty: the level's total when the order joined, *including* the order (the first
            L2 update after it was added; it joined the back, so ``level_qty - qty`` is ahead).
        qty: the order's quantity.

    Feed, in stream order: :meth:`on_trade` for every trade at the order's price on its side
    (the book side a trade hit: a ``buy`` hits the asks) and :meth:`on_level` with the level's
    new total after every L2 update of that price.
    """

    def __init__(self, model: QueueModel, level_qty: int, qty: int) -> None:
        if qty <= 0 or level_qty < qty:
            raise ValueError("need 0 < qty <= level_qty")
        self.model = model
        self.ahead = float(level_qty - qty)
        self.qty = qty
        """Remaining quantity of the order (estimated fills taken off)."""
        self.filled = 0
        """Quantity estimated filled so far."""
        self._level = level_qty
        self._traded = 0
        """Trades since the last level update: they explain part of the next decrease."""

    @property
    def done(self) -> bool:
        """True once the estimate says the whole order was filled."""
        return self.qty == 0

    def on_trade(self, qty: int) -> int:
        """A trade at the order's price: the front goes first, then the order itself.

        Returns:
            The quantity of this trade estimated to have filled the order.
        """
        self._traded += qty
        front = min(self.ahead, float(qty))
        self.ahead -= front
        rest = qty - front
        fill = min(self.qty, int(rest)) if self.ahead <= 0 else 0
        self.qty -= fill
        self.filled += fill
        return fill

    def on_level(self, level_qty: int) -> None:
        """The level's new total (0 when the level is gone)."""
        # Decrease not explained by trades (nor by the order's own fills, which are trades)
        # is cancels; an increase is orders joining behind.
        traded, self._traded = self._traded, 0
        drop = self._level - level_qty - traded
        if drop > 0:
            # The queue as the cancels found it: the old total less what trades took.
            behind = max(0.0, self._level - traded - self.ahead - self.qty)
            share = self.model.share_ahead(self.ahead, behind)
            from_ahead = drop * share
            from_behind = drop - from_ahead
            if from_behind > behind:  # what behind cannot hold came from ahead
                from_ahead += from_behind - behind
            self.ahead = max(0.0, self.ahead - from_ahead)
        self._level = level_qty
        # The order itself is part of the level: nothing ahead can exceed the rest.
        self.ahead = min(self.ahead, float(max(0, level_qty - self.qty)))
