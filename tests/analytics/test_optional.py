"""Tables with and without pandas; pictures with and without matplotlib."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bookengine import Implementation
from bookengine.analytics import BookAnalytics, LevelSampler, Table
from bookengine.analytics.evaluate import SimStream
from bookengine.kraken.events import BookChanged

from .helpers import T0, ack, level3, order, session


def test_table_is_a_dict_of_arrays() -> None:
    table = Table({"a": [1, 2, 3], "b": np.array([0.5, 1.5, 2.5])})
    assert isinstance(table, dict) and table.rows == 3 and table.columns == ["a", "b"]
    assert table["a"].dtype == np.int64
    assert "3 rows" in repr(table)
    with pytest.raises(ValueError, match="rows"):
        Table({"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="1-D"):
        Table({"a": np.zeros((2, 2))})
    assert Table().rows == 0


def test_to_pandas() -> None:
    pd = pytest.importorskip("pandas")
    frame = Table({"a": [1, 2], "label": np.array(["x", "y"], dtype=object)}).to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert frame["a"].tolist() == [1, 2] and frame["label"].tolist() == ["x", "y"]


def test_clear_error_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'bookengine\[dataframe\]'"):
        Table({"a": [1]}).to_pandas()


def test_clear_error_without_matplotlib(
    monkeypatch: pytest.MonkeyPatch, impl: Implementation
) -> None:
    from bookengine.analytics import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    s = session(impl.name)
    s.receive(ack("level3", 10), T0)
    s.receive(level3("snapshot", [order("A", "100.0", "3")], [order("B", "100.1", "2")]), T0)
    with pytest.raises(ImportError, match=r"pip install 'bookengine\[plot\]'"):
        plots.depth_chart(s.book("level3:TST/USD"))


@pytest.fixture
def pyplot() -> Any:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_pictures_draw(pyplot: Any, tmp_path: Path, impl: Implementation) -> None:
    from bookengine.analytics import plots

    stream = SimStream(seed=5)
    s = stream.session(impl.name)
    analytics = BookAnalytics(s)
    sampler = LevelSampler(levels=10, every_ns=20_000_000)
    frames = list(stream.open_frames())
    for _ in range(300):
        frames += stream.step()
    tracked = None
    for recv, frame in frames:
        for event in analytics.receive(frame, recv):
            if isinstance(event, BookChanged) and event.key.startswith("level3"):
                sampler.add(event.book, recv)
                if tracked is None:
                    best = event.book.best_bid()
                    (front_id, _, _) = event.book.level_orders("bid", best[0])[-1]
                    tracked = analytics.track(front_id)
    analytics.flush()
    assert tracked is not None
    book = analytics.book("BTC/USD")
    ax = plots.depth_chart(book, levels=20)
    assert ax.get_lines()
    ax = plots.heatmap(sampler.arrays(), 1, 8)
    assert ax.images
    ax = plots.queue_trajectory(tracked, 8)
    assert ax.collections
    path = tmp_path / "queue.png"
    ax.figure.savefig(path)
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError):
        plots.heatmap(LevelSampler().arrays(), 1, 8)
