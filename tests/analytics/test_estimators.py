"""L2 queue estimators: hand cases of the cancel split, then scored against L3 truth."""

from __future__ import annotations

import math

import pytest

from bookengine import Implementation
from bookengine.analytics import (
    L2QueueEstimator,
    PowerProbModel,
    ProRataModel,
    RiskAverseModel,
)
from bookengine.analytics.evaluate import evaluate_estimators


def test_share_ahead_by_hand() -> None:
    assert ProRataModel().share_ahead(30, 10) == 0.75
    assert PowerProbModel(1).share_ahead(30, 10) == 0.75
    assert PowerProbModel(2).share_ahead(30, 10) == pytest.approx(0.9)  # 900 / (900 + 100)
    assert PowerProbModel(2).share_ahead(0, 10) == 0.0
    assert PowerProbModel(2).share_ahead(10, 0) == 1.0
    assert RiskAverseModel().share_ahead(30, 10) == 0.0
    # Mantissas are large: no overflow to inf/nan.
    assert PowerProbModel(3).share_ahead(3e300, 1e300) == pytest.approx(27 / 28)


def test_cancels_split_by_the_model() -> None:
    # Level of 10 when the order (qty 2) joined: 8 ahead, nothing behind yet.
    estimator = L2QueueEstimator(ProRataModel(), level_qty=10, qty=2)
    estimator.on_level(14)  # 4 joined behind: ahead stays 8
    assert estimator.ahead == 8
    estimator.on_level(11)  # 3 cancelled: 8 ahead vs 4 behind -> 2 ahead, 1 behind
    assert estimator.ahead == pytest.approx(6.0)
    averse = L2QueueEstimator(RiskAverseModel(), level_qty=10, qty=2)
    averse.on_level(14)
    averse.on_level(11)
    assert averse.ahead == 8  # cancels never help it


def test_cancel_larger_than_behind_comes_from_ahead() -> None:
    estimator = L2QueueEstimator(RiskAverseModel(), level_qty=10, qty=2)
    estimator.on_level(11)  # 1 behind
    estimator.on_level(8)  # 3 cancelled, only 1 can be behind: 2 came from ahead
    assert estimator.ahead == 6


def test_trades_take_the_front_then_the_order() -> None:
    estimator = L2QueueEstimator(ProRataModel(), level_qty=10, qty=2)
    assert estimator.on_trade(5) == 0 and estimator.ahead == 3
    estimator.on_level(5)  # explained by the trade: no cancel
    assert estimator.ahead == 3
    assert estimator.on_trade(4) == 1  # 3 ahead, then 1 of ours
    assert (estimator.ahead, estimator.qty, estimator.filled) == (0, 1, 1)
    assert estimator.on_trade(7) == 1 and estimator.done
    with pytest.raises(ValueError):
        L2QueueEstimator(ProRataModel(), level_qty=1, qty=2)


def test_estimators_against_l3_truth(impl: Implementation) -> None:
    """Own orders on a simulated stream: every model's error is small and the pessimistic
    model is never ahead of the truth (it only ever lets trades move the order up)."""
    results, facts = evaluate_estimators(6_000, implementation_name=impl.name)
    assert facts["trials"] > 50 and facts["filled"] > 30
    by_model = {r.model: r for r in results}
    assert set(by_model) == {"risk_averse", "pro_rata", "power2", "power3"}
    for result in results:
        assert result.samples > 1_000
        assert result.mae_share < 0.1  # within a tenth of the level on average
        assert result.fill_detected >= 0.9 * result.fills
        assert not math.isnan(result.ttf_mae_s)
    averse = by_model["risk_averse"]
    assert averse.bias_lots >= 0 and averse.false_fills == 0
    # Spreading cancels over the queue is less biased than assuming none ahead.
    assert abs(by_model["pro_rata"].bias_lots) < averse.bias_lots
