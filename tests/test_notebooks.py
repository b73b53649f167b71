"""The examples/ notebooks run headless, offline, from a fresh kernel (nbclient)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("name", ["gallery.ipynb", "capture_to_duckdb.ipynb"])
def test_notebook_runs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.delenv("BOOKENGINE_GALLERY_DIR", raising=False)  # never rewrite docs/ here
    # The kernel imports this checkout's bookengine (its cwd is examples/: a relative
    # PYTHONPATH would point elsewhere).
    root = str(EXAMPLES.parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    started = time.monotonic()
    client = nbclient.NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()
    assert time.monotonic() - started < 45
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    if name == "gallery.ipynb":
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(images) >= 4  # depth chart, heatmap, features, queue trajectories
        assert "feature rows" in text
    else:
        assert "l2 -> l2_book/symbol=BTC-USD/date=" in text
        assert "vs_mid_usd" in text and "buy" in text and "sell" in text
