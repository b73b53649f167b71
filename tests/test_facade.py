"""``bookengine`` re-exports what a program needs first; ``import bookengine`` stays cheap; mypy
sees real types behind the names."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bookengine

ROOT = Path(__file__).parent.parent

# What the README's examples and a first program reach for.
FIRST_NEEDS = {
    "KrakenFeed": "bookengine.feed",
    "KrakenSession": "bookengine.kraken.session",
    "replay": "bookengine.replay",
    "Replayer": "bookengine.replay",
    "Instruments": "bookengine.instruments",
    "BookChanged": "bookengine.kraken.events",
    "ChecksumMismatch": "bookengine.kraken.events",
    "BookInvalid": "bookengine.kraken.events",
    "Event": "bookengine.kraken.events",
    "OrderInfo": "bookengine.core_types",
    "QueuePosition": "bookengine.core_types",
    "Book": "bookengine.core_types",
    "BookError": "bookengine.errors",
    "ChecksumError": "bookengine.errors",
}
HEAVY = [
    "asyncio",
    "websockets",
    "numpy",
    "bookengine._core.l2book",
    "bookengine.feed",
    "bookengine.replay",
    "bookengine.kraken",
]


def _ruff_order(name: str) -> tuple[int, str]:
    """ruff's RUF022 ("isort-style"): CONSTANTS, then Classes, then the rest."""
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return group, name


def test_all_is_sorted_and_unique() -> None:
    assert bookengine.__all__ == sorted(bookengine.__all__, key=_ruff_order)
    assert len(set(bookengine.__all__)) == len(bookengine.__all__)


def test_every_name_in_all_imports() -> None:
    for name in bookengine.__all__:
        assert getattr(bookengine, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from bookengine import *", namespace)
    assert set(bookengine.__all__) <= set(namespace)


def test_nothing_a_program_needs_first_is_missing() -> None:
    for name, module in FIRST_NEEDS.items():
        assert name in bookengine.__all__, name
        assert getattr(bookengine, name) is getattr(importlib.import_module(module), name)


def test_every_public_attribute_is_in_all() -> None:
    public = {
        name
        for name in dir(bookengine)
        if not name.startswith("_") and not isinstance(getattr(bookengine, name), type(sys))
    }
    assert public - {"annotations"} <= set(bookengine.__all__)
    assert set(bookengine.__all__) - {"__version__"} <= public


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_import_bookengine_leaves_the_feed_and_replay_unloaded() -> None:
    loaded = _run(f"""
        import sys
        import bookengine
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        bookengine.KrakenFeed
        print("bookengine.feed" in sys.modules)
    """)
    assert loaded.splitlines() == ["[]", "True"]


def test_replay_is_the_function_whichever_is_imported_first() -> None:
    out = _run("""
        from bookengine.replay import Replayer, replay
        import bookengine
        print(bookengine.replay is replay, bookengine.Replayer is Replayer)
        from bookengine import replay as again
        print(again is replay)
    """)
    assert out.splitlines() == ["True True", "True"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'KrakenFed'"):
        bookengine.KrakenFed  # noqa: B018


def test_mypy_sees_the_books_and_the_lazy_names(tmp_path: Path) -> None:
    program = tmp_path / "user.py"
    program.write_text(
        textwrap.dedent("""
        import bookengine
        from bookengine import Book, L3Book, OrderInfo

        def best(book: Book) -> int | None:
            bid = book.best_bid()
            return None if bid is None else bid[0]

        l2 = bookengine.L2Book("BTC/USD", 10, 1, 8)
        l3: L3Book = bookengine.L3Book("BTC/USD", 10, 1, 8)
        info: OrderInfo | None = l3.order("O1")
        best(l2)
        best(l3)
        l2.no_such_method()
        l3.order(1)
        bookengine.replay(["x.jsonl"], depth="deep")
        bookengine.KrakenFeed(book=["BTC/USD"], depth="deep")
        """)
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(program)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "", "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line.split(" error: ")[1] for line in out.stdout.splitlines() if " error: " in line]
    assert len(errors) == 4, out.stdout
    assert '"L2Book" has no attribute "no_such_method"' in errors[0]
    assert 'Argument 1 to "order" of "L3BookCore"' in errors[1]
    assert 'Argument "depth" to "replay"' in errors[2]
    assert 'Argument "depth" to "KrakenFeed"' in errors[3]


@pytest.mark.parametrize("given", [None, "3"])
def test_the_command_keeps_openblas_to_one_thread_unless_told(given: str | None) -> None:
    # numpy's OpenBLAS reads the variable once, when it loads: the entry point must set it
    # before anything imports numpy (importing the entry must not), and a caller's setting wins.
    code = """
        import os, sys
        import bookengine.__main__ as entry
        print("numpy" in sys.modules)
        sys.argv = ["bookengine", "--version"]
        entry.main()
        print("numpy" in sys.modules, os.environ.get("OPENBLAS_NUM_THREADS"))
    """
    env = {"PYTHONPATH": str(ROOT), "PATH": ""}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert out[0] == "False"
    assert out[-1] == f"True {given or '1'}"  # the command loaded numpy after setting it
