"""The example capture (simulator, level3 + book + trade + executions) replays clean through
both implementations, and the analytics over it agree.

This capture once caught the compiled L3 book out (a checksum mismatch 73 lines in, while the
reference replayed it clean); it stays here as a regression stream.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bookengine.analytics import BookAnalytics, OrderOutcome
from bookengine.kraken.events import BookInvalid, ChecksumMismatch
from bookengine.kraken.session import KrakenSession

CAPTURE = Path(__file__).resolve().parents[2] / "examples" / "data" / "sim_capture.jsonl.gz"


def _analyse(name: str) -> tuple[list[Any], list[Any], list[Any]]:
    analytics = BookAnalytics()
    events = list(analytics.replay([CAPTURE], KrakenSession(implementation_name=name)))
    bad = [e for e in events if isinstance(e, ChecksumMismatch | BookInvalid)]
    decisions = [
        (c.change.order_id, c.change.orders_ahead, c.label) for c in analytics.classifications
    ]
    outcomes = [e for e in events if isinstance(e, OrderOutcome)]
    return bad, decisions, outcomes


def test_capture_replays_clean_and_both_implementations_agree() -> None:
    names = ["python"] if os.environ.get("BOOKENGINE_PURE") == "1" else ["cython", "python"]
    runs = {name: _analyse(name) for name in names}
    for name, (bad, decisions, outcomes) in runs.items():
        assert bad == [], name
        assert len(decisions) > 500
        # Own orders announced on executions were tracked to an outcome.
        finals = [o for o in outcomes if o.final]
        assert len(finals) >= 4 and {o.outcome for o in finals} <= {"filled", "cancelled"}
    first = runs[names[0]]
    for other in names[1:]:
        assert runs[other][1] == first[1]
        assert runs[other][2] == first[2]
