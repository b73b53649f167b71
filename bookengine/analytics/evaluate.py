"""Score the analytics against the simulator's ground truth, in process (no sockets, no clock).

:class:`SimStream` runs one :class:`~bookengine.sim.engine.MatchingEngine` and renders each
step as the simulator's server would (``level3``, ``book`` and ``trade`` frames, the same
window diffs and wire code), with receive times on a synthetic clock. The engine records
*why* each order changed (``engine.history``), which the public frames never say.

* :func:`evaluate_classifier`: the fill/cancel trade join against that truth: precision and
  recall, also with the trade connection lagging and jittering behind level3.
* :func:`evaluate_estimators`: own orders joined at the touch, their L2-only position estimates
  (:mod:`~bookengine.analytics.estimators`) against their exact L3 position, and the time the
  estimate says they fill against the time they did.

``python -m bookengine.analytics.evaluate`` prints both (seeded: the same numbers every run).
"""

from __future__ import annotations

import heapq
import json
import random
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..kraken.session import KrakenSession
from ..sim.engine import MatchingEngine, Side, derive_seed
from ..sim.specs import spec_for
from ..sim.windows import L2Window, L3Window
from ..sim.wire import number_renderer, v2_ack, v2_book, v2_instrument, v2_level3, v2_trades
from .classify import ClassifierScore, score, truth_from_history
from .estimators import (
    L2QueueEstimator,
    PowerProbModel,
    ProRataModel,
    QueueModel,
    RiskAverseModel,
    model_label,
)
from .queue import BookAnalytics

MS = 1_000_000
SECOND_NS = 1_000_000_000
START_NS = 1_704_716_799_000_000_000
"""Synthetic clock origin (2024-01-08T12:26:39Z), so timestamps look like Kraken's."""


class SimStream:
    """One simulated symbol's public frames, step by step, with receive times.

    Args:
        symbol: a default simulator symbol (``BTC/USD``...).
        seed: global seed (the engine's is derived from it and the symbol).
        depth: level3 depth; ``book_depth``: L2 book depth.
        target_levels: levels per side the engine keeps (small is fast).
        step_ns: engine time between steps.
        trade_delay_ns, trade_jitter_ns: the trade connection's lag behind level3: each trade
            frame is received ``delay + uniform(0, jitter)`` after its step, never before an
            earlier trade frame (one connection keeps its order); 0: at the step's time, after
            its level3 frame and before its book frame.
        trade_loss: share of trade frames lost (a trade connection with gaps).
        warmup_steps: engine steps before the snapshots.
    """

    def __init__(
        self,
        symbol: str = "BTC/USD",
        seed: int = 7,
        *,
        depth: int = 10,
        book_depth: int = 10,
        target_levels: int = 60,
        step_ns: int = 5 * MS,
        trade_delay_ns: int = 0,
        trade_jitter_ns: int = 0,
        trade_loss: float = 0.0,
        warmup_steps: int = 300,
    ) -> None:
        self.spec = spec_for(symbol)
        self.symbol = symbol
        self.step_ns = step_ns
        self.now_ns = START_NS
        self.engine = MatchingEngine(
            self.spec,
            derive_seed(seed, symbol),
            now_ns=self.now_ns,
            target_levels=target_levels,
            warmup_steps=warmup_steps,
        )
        self.engine.history = []
        self.depth = depth
        self.book_depth = book_depth
        self.l3 = L3Window(depth)
        self.l2 = L2Window(book_depth)
        self.render = number_renderer("plain")
        self.trade_delay_ns = trade_delay_ns
        self.trade_jitter_ns = trade_jitter_ns
        self.trade_loss = trade_loss
        self._rng = random.Random(derive_seed(seed, "stream-latency"))
        self._late: list[tuple[int, int, str]] = []  # heap of (recv, order, frame)
        self._order = 0
        self._last_trade_recv = 0

    @property
    def precisions(self) -> dict[str, tuple[int, int]]:
        return {self.symbol: (self.spec.price_precision, self.spec.qty_precision)}

    def open_frames(self) -> list[tuple[int, str]]:
        """Instrument snapshot, subscribe acks, level3 and book snapshots (receive time, frame)."""
        t = self.now_ns
        engine = self.engine
        frames = [v2_instrument([self.spec], self.render, "online")]
        for channel, depth in (("level3", self.depth), ("book", self.book_depth)):
            result = {"channel": channel, "depth": depth, "snapshot": True, "symbol": self.symbol}
            frames.append(v2_ack("subscribe", None, result, t, t))
        bids, asks = self.l3.snapshot(engine)
        frames.append(
            v2_level3(
                "snapshot",
                self.spec,
                bids,
                asks,
                engine.level3_checksum(self.depth),
                t,
                self.render,
            )
        )
        levels = self.l2.snapshot(engine)
        frames.append(
            v2_book(
                "snapshot",
                self.spec,
                levels[0],
                levels[1],
                engine.checksum(self.book_depth),
                t,
                self.render,
            )
        )
        return [(t, frame) for frame in frames]

    def _publish(self, now_ns: int) -> list[tuple[int, str]]:
        engine = self.engine
        changes = engine.drain()
        out: list[tuple[int, str]] = []
        bid_events, ask_events = self.l3.update(engine, changes, now_ns)
        if bid_events or ask_events:
            checksum = engine.level3_checksum(self.depth)
            frame = v2_level3(
                "update", self.spec, bid_events, ask_events, checksum, now_ns, self.render
            )
            out.append((now_ns, frame))
        if changes.trades and (not self.trade_loss or self._rng.random() >= self.trade_loss):
            frame = v2_trades("update", self.spec, changes.trades, self.render)
            if self.trade_delay_ns or self.trade_jitter_ns:
                recv = now_ns + self.trade_delay_ns + self._rng.randrange(self.trade_jitter_ns + 1)
                # One connection delivers in order (TCP): jitter delays, never reorders.
                recv = self._last_trade_recv = max(recv, self._last_trade_recv)
                self._order += 1
                heapq.heappush(self._late, (recv, self._order, frame))
            else:
                # Before the book update of the same step: L2 estimators explain a level's
                # decrease by the trades they have already seen.
                out.append((now_ns, frame))
        bids, asks = self.l2.update(engine, changes, now_ns)
        if bids or asks:
            checksum = engine.checksum(self.book_depth)
            frame = v2_book("update", self.spec, bids, asks, checksum, now_ns, self.render)
            out.append((now_ns, frame))
        return out

    def _due(self, until_ns: int) -> list[tuple[int, str]]:
        out = []
        while self._late and self._late[0][0] <= until_ns:
            recv, _, frame = heapq.heappop(self._late)
            out.append((recv, frame))
        return out

    def step(self) -> list[tuple[int, str]]:
        """One engine step; its frames and any late trade frames now due, in receive order."""
        self.now_ns += self.step_ns
        self.engine.step(self.now_ns)
        frames = self._due(self.now_ns) + self._publish(self.now_ns)
        frames.sort(key=lambda item: item[0])  # stable: level3, trade, book at equal times
        return frames

    def drain(self) -> list[tuple[int, str]]:
        """Late trade frames still in flight (end of a run)."""
        return self._due(sys.maxsize)

    def add_order(self, side: Side, price: int, qty: int) -> tuple[str, list[tuple[int, str]]]:
        """A user's limit order (never touched by the synthetic flow); its id and frames."""
        self.now_ns += 1  # an action between two steps
        order_id, _ = self.engine.add_limit(side, price, qty, self.now_ns, user=True)
        return order_id, self._publish(self.now_ns)

    def cancel_order(self, order_id: str) -> list[tuple[int, str]]:
        """Cancel a user's order; the frames it causes."""
        self.now_ns += 1
        self.engine.cancel(order_id, self.now_ns)
        return self._publish(self.now_ns)

    def session(self, implementation_name: str | None = None) -> KrakenSession:
        """A session that knows this stream's precisions."""
        return KrakenSession(precisions=self.precisions, implementation_name=implementation_name)

    def frames(self, steps: int) -> Iterator[tuple[int, str]]:
        """Open frames, then ``steps`` steps, then the late trades."""
        yield from self.open_frames()
        for _ in range(steps):
            yield from self.step()
        yield from self.drain()


# -- the classifier ---------------------------------------------------------------------------


@dataclass
class ClassifierRun:
    """One scored run of the trade join."""

    label: str
    steps: int
    trade_delay_ms: float
    trade_jitter_ms: float
    match_window_ms: float
    score: ClassifierScore
    decisions: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "steps": self.steps,
            "trade_delay_ms": self.trade_delay_ms,
            "trade_jitter_ms": self.trade_jitter_ms,
            "match_window_ms": self.match_window_ms,
            "decisions": self.decisions,
            **self.score.as_dict(),
        }


def evaluate_classifier(
    steps: int = 20_000,
    *,
    seed: int = 7,
    symbol: str = "BTC/USD",
    trade_delay_ms: float = 0.0,
    trade_jitter_ms: float = 0.0,
    trade_loss: float = 0.0,
    match_window_ms: float = 50.0,
    step_ms: float = 5.0,
    implementation_name: str | None = None,
    label: str = "",
) -> ClassifierRun:
    """Run a simulated stream through :class:`BookAnalytics`; score its decisions.

    Args:
        trade_delay_ms, trade_jitter_ms: how late trade frames arrive after level3.
        trade_loss: share of trade frames lost.
        match_window_ms: the classifier's engine-time window.
        step_ms: engine time between steps (smaller: more events per window, harder).
    """
    stream = SimStream(
        symbol,
        seed,
        step_ns=int(step_ms * MS),
        trade_delay_ns=int(trade_delay_ms * MS),
        trade_jitter_ns=int(trade_jitter_ms * MS),
        trade_loss=trade_loss,
    )
    session = stream.session(implementation_name)
    wait_s = max(0.5, 2 * (trade_delay_ms + trade_jitter_ms) / 1000)
    analytics = BookAnalytics(
        session, match_window_s=match_window_ms / 1000, trade_wait_s=wait_s, trade_keep_s=2 * wait_s
    )
    for recv, frame in stream.frames(steps):
        analytics.receive(frame, recv)
    analytics.flush()
    assert stream.engine.history is not None
    truth = truth_from_history(stream.engine.history)
    return ClassifierRun(
        label,
        steps,
        trade_delay_ms,
        trade_jitter_ms,
        match_window_ms,
        score(analytics.classifications, truth),
        len(analytics.classifications),
    )


# -- the L2 estimators -----------------------------------------------------------------------


DEFAULT_MODELS: tuple[QueueModel, ...] = (
    RiskAverseModel(),
    ProRataModel(),
    PowerProbModel(2.0),
    PowerProbModel(3.0),
)


@dataclass
class _Trial:
    order_id: str
    side: str
    price: int
    qty: int
    placed_ns: int
    estimators: dict[str, L2QueueEstimator]
    errors: dict[str, list[float]] = field(default_factory=dict)
    level_qty: list[int] = field(default_factory=list)
    est_fill_ns: dict[str, int] = field(default_factory=dict)
    true_fill_ns: int = -1
    censored: bool = False


@dataclass
class EstimatorResult:
    """Errors of one model over every trial of a run (qty in lots of the symbol)."""

    model: str
    samples: int
    mae_lots: float
    """Mean |estimated - true| quantity ahead, in lots."""
    rmse_lots: float
    bias_lots: float
    """Mean estimated - true (positive: the model thinks the order is further back)."""
    mae_share: float
    """Mean |error| as a share of the level's quantity."""
    fills: int
    """Trials that truly filled (time-to-fill compared on these)."""
    fill_detected: int
    """Of those, how many the model also saw fill before the run ended."""
    ttf_mae_s: float
    """Mean |estimated - true| time to fill over the detected ones, seconds."""
    ttf_bias_s: float
    false_fills: int
    """Trials the model saw fill that never truly filled."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def evaluate_estimators(
    steps: int = 40_000,
    *,
    seed: int = 11,
    symbol: str = "BTC/USD",
    models: Sequence[QueueModel] = DEFAULT_MODELS,
    max_age_steps: int = 2_000,
    place_every: int = 25,
    levels: Sequence[int] = (0, 1, 2),
    implementation_name: str | None = None,
) -> tuple[list[EstimatorResult], dict[str, Any]]:
    """Own orders near the touch, estimated from L2 + trades, scored against L3 truth.

    Every ``place_every`` steps, when a side has no trial order, a user order of one lot joins
    the back of one of that side's ``levels`` (level index, 0 = best; drawn at random). Each
    model's estimator sees only the L2 book's level total at that price and the trades that hit
    it; the truth is the L3 book's ``queue_position`` of the order (checked against the
    engine's own queue). A trial ends when the order fills (true time to fill), or it is
    cancelled after ``max_age_steps`` or when its level leaves the level3 window (censored).

    Returns:
        One :class:`EstimatorResult` per model, and run facts (trials, fills, steps).
    """
    stream = SimStream(symbol, seed, target_levels=60)
    session = stream.session(implementation_name)
    lot = stream.spec.lot_qty
    trials: dict[str, _Trial] = {}
    done: list[_Trial] = []
    labels = [model_label(m) for m in models]
    pending_frames: list[tuple[int, str]] = list(stream.open_frames())
    engine = stream.engine
    truth_checks = 0
    rng = random.Random(derive_seed(seed, "estimator-trials"))

    def apply(frames: list[tuple[int, str]]) -> None:
        for recv, frame in frames:
            session.receive(frame, recv)
            if '"channel":"trade"' in frame:
                for item in json.loads(frame, parse_float=str)["data"]:
                    book_side = "ask" if item["side"] == "buy" else "bid"
                    price = _mantissa(item["price"], stream.spec.price_precision)
                    qty = _mantissa(item["qty"], stream.spec.qty_precision)
                    for trial in trials.values():
                        if trial.side == book_side and trial.price == price:
                            for name, estimator in trial.estimators.items():
                                if not estimator.done:
                                    estimator.on_trade(qty)
                                    if estimator.done:
                                        trial.est_fill_ns[name] = recv
            elif '"channel":"book"' in frame:
                l2 = session.book(f"book:{symbol}")
                for trial in trials.values():
                    level_qty = l2.qty_at(trial.side, trial.price)
                    for estimator in trial.estimators.values():
                        if not estimator.done:
                            estimator.on_level(level_qty)

    apply(pending_frames)
    for step in range(steps):
        apply(stream.step())
        l3 = session.book(f"level3:{symbol}")
        now = stream.now_ns
        # Score every open trial after the step, then retire the finished ones.
        for order_id, trial in list(trials.items()):
            position = l3.queue_position(order_id)
            if position is None:
                if engine.order(order_id) is None:
                    trial.true_fill_ns = now  # user orders leave only by fills (or by us)
                else:
                    trial.censored = True  # fell out of the level3 window
                    apply(stream.cancel_order(order_id))
                done.append(trials.pop(order_id))
                continue
            truth = position.qty_ahead
            if truth_checks < 200:  # the L3 truth is the engine's own queue
                level = engine.side(trial.side == "bid").level(trial.price)
                assert level is not None
                ahead = 0
                for order in level.orders.values():
                    if order.order_id == order_id:
                        break
                    ahead += order.qty
                assert ahead == truth, (ahead, truth)
                truth_checks += 1
            trial.level_qty.append(position.level_qty)
            for name, estimator in trial.estimators.items():
                trial.errors.setdefault(name, []).append(estimator.ahead - truth)
            if now - trial.placed_ns > max_age_steps * stream.step_ns:
                trial.censored = True
                apply(stream.cancel_order(order_id))
                done.append(trials.pop(order_id))
        if step % place_every == 0:
            for side in ("bid", "ask"):
                if any(t.side == side for t in trials.values()):
                    continue
                level_index = rng.choice(list(levels))
                top = l3.bids(level_index + 1) if side == "bid" else l3.asks(level_index + 1)
                if len(top) <= level_index:
                    continue
                price = top[level_index][0]
                order_id, frames = stream.add_order("buy" if side == "bid" else "sell", price, lot)
                apply(frames)
                position = session.book(f"level3:{symbol}").queue_position(order_id)
                if position is None:
                    continue
                estimators = {
                    label: L2QueueEstimator(model, position.level_qty, lot)
                    for label, model in zip(labels, models, strict=True)
                }
                trials[order_id] = _Trial(order_id, side, price, lot, stream.now_ns, estimators)
    done.extend(trials.values())
    results = [_summarise(label, done, lot, stream.step_ns) for label in labels]
    facts = {
        "steps": steps,
        "trials": len(done),
        "filled": sum(1 for t in done if t.true_fill_ns >= 0),
        "censored": sum(1 for t in done if t.censored),
        "lot": lot,
        "symbol": symbol,
        "seed": seed,
    }
    return results, facts


def _mantissa(text: str, scale: int) -> int:
    from ..numbers import parse_mantissa

    return parse_mantissa(text, scale)


def _summarise(label: str, trials: list[_Trial], lot: int, step_ns: int) -> EstimatorResult:
    errors: list[float] = []
    shares: list[float] = []
    for trial in trials:
        for error, level_qty in zip(trial.errors.get(label, []), trial.level_qty, strict=False):
            errors.append(error / lot)
            if level_qty:
                shares.append(abs(error) / level_qty)
    fills = [t for t in trials if t.true_fill_ns >= 0]
    detected = [t for t in fills if label in t.est_fill_ns]
    ttf = [(t.est_fill_ns[label] - t.true_fill_ns) / SECOND_NS for t in detected]
    false_fills = sum(1 for t in trials if t.true_fill_ns < 0 and label in t.est_fill_ns)
    nan = float("nan")
    return EstimatorResult(
        label,
        len(errors),
        statistics.fmean(abs(e) for e in errors) if errors else nan,
        statistics.fmean(e * e for e in errors) ** 0.5 if errors else nan,
        statistics.fmean(errors) if errors else nan,
        statistics.fmean(shares) if shares else nan,
        len(fills),
        len(detected),
        statistics.fmean(abs(x) for x in ttf) if ttf else nan,
        statistics.fmean(ttf) if ttf else nan,
        false_fills,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the classifier and estimator evaluations (``--json`` for machine output)."""
    args = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in args
    steps = 5_000 if quick else 20_000
    runs = [
        evaluate_classifier(steps, label="same time"),
        evaluate_classifier(steps, trade_delay_ms=20, trade_jitter_ms=30, label="trades lag"),
        evaluate_classifier(steps, step_ms=0.5, match_window_ms=50, label="busy, wide window"),
        evaluate_classifier(steps, trade_loss=0.2, label="20% trades lost"),
    ]
    results, facts = evaluate_estimators(10_000 if quick else 40_000)
    if "--json" in args:
        print(
            json.dumps(
                {
                    "classifier": [run.as_dict() for run in runs],
                    "estimators": [r.as_dict() for r in results],
                    "estimator_run": facts,
                },
                indent=2,
            )
        )
        return 0
    print("fill/cancel classifier vs engine ground truth (fill + partial_fill = positive)")
    print(f"{'run':<20}{'decided':>9}{'precision':>11}{'recall':>9}{'accuracy':>10}{'ambig.':>8}")
    for run in runs:
        s = run.score
        print(
            f"{run.label:<20}{run.decisions:>9}{s.precision:>11.4f}{s.recall:>9.4f}"
            f"{s.accuracy:>10.4f}{s.ambiguous:>8}"
        )
    print()
    print(
        f"L2 queue estimators vs L3 truth: {facts['trials']} own orders near the touch, "
        f"{facts['filled']} filled, {facts['censored']} censored ({facts['steps']} steps)"
    )
    print(
        f"{'model':<13}{'MAE lots':>10}{'RMSE':>8}{'bias':>8}{'MAE/level':>11}"
        f"{'fills seen':>12}{'TTF MAE s':>11}{'TTF bias':>10}{'false':>7}"
    )
    for r in results:
        print(
            f"{r.model:<13}{r.mae_lots:>10.3f}{r.rmse_lots:>8.3f}{r.bias_lots:>8.3f}"
            f"{r.mae_share:>11.3f}{r.fill_detected:>6}/{r.fills:<5}{r.ttf_mae_s:>11.3f}"
            f"{r.ttf_bias_s:>10.3f}{r.false_fills:>7}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
