"""One source for the codes, value types and L3 error words: ``bookengine.core_types``.

Both implementations must take them from there. The compiled modules keep C copies of the codes
(``cdef enum``) and check them at import; these tests check the copies, that the check bites,
and that what each implementation hands out is the shared type with the shared number.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bookengine import Implementation, core_types
from bookengine._impl import compiled_available
from bookengine.core_types import (
    EVENT_ADD,
    EVENT_DELETE,
    EVENT_MODIFY,
    KIND_BOOK,
    KIND_LEVEL3,
    KIND_OTHER,
    KIND_V1_BOOK,
    Entry,
    OrderInfo,
    QueuePosition,
)

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "bookengine"
compiled = pytest.mark.skipif(not compiled_available(), reason="the compiled core is not built")


def test_codes_are_distinct_small_ints() -> None:
    kinds = [KIND_OTHER, KIND_BOOK, KIND_LEVEL3, KIND_V1_BOOK]
    events = [core_types.EVENT_NONE, EVENT_ADD, EVENT_MODIFY, EVENT_DELETE]
    stops = [core_types.STOP_END, core_types.STOP_HANDOFF]
    stops += [core_types.STOP_MISMATCH, core_types.STOP_CROSSED, core_types.STOP_LINE]
    stops += [core_types.STOP_APPLIED, core_types.STOP_TIME]
    for codes in (kinds, events, stops):
        assert sorted(codes) == list(range(len(codes)))
    assert core_types.EVENT_CODES == {"add": EVENT_ADD, "modify": EVENT_MODIFY, "delete": 3}
    assert core_types.SIDE_WORDS[core_types.SIDE_BID] == "bid"


@compiled
def test_the_compiled_codes_are_the_shared_ones() -> None:
    from bookengine._core import l2book, l3book, router, scan  # noqa: F401 (checks at import)

    assert {name: getattr(core_types, name) for name in scan._C_CODES} == scan._C_CODES
    assert set(scan._C_CODES) >= {"KIND_OTHER", "KIND_BOOK", "KIND_LEVEL3", "KIND_V1_BOOK"}
    assert set(scan._C_CODES) >= {"EVENT_NONE", "EVENT_ADD", "EVENT_MODIFY", "EVENT_DELETE"}
    # The line reader's stop codes are C copies of the shared ones: both readers answer alike.
    from bookengine._reference import router as twin

    lines = [
        (b"", 0, core_types.STOP_END),
        (b"#bookengine {}\n", 0, core_types.STOP_LINE),
        (b'{"channel":"status"}\n', 0, core_types.STOP_HANDOFF),
        (b'5\t{"channel":"heartbeat"}\n', 4, core_types.STOP_TIME),
    ]
    for data, until, stop in lines:
        for reader in (router.BookRouter(), twin.BookRouter()):
            assert reader.apply_lines(data, 0, core_types.LINES_KRAKEN, until)[1] == stop


def test_a_stale_build_refuses_to_import() -> None:
    core_types.check_compiled_codes({"KIND_BOOK": KIND_BOOK}, "m")
    with pytest.raises(ImportError, match=r"m was compiled .*'KIND_BOOK': \(7, 1\).*rebuild"):
        core_types.check_compiled_codes({"KIND_BOOK": 7}, "m")
    with pytest.raises(ImportError, match="KIND_NEW"):
        core_types.check_compiled_codes({"KIND_NEW": 4}, "m")
    with pytest.raises(ImportError, match="check_depth"):
        core_types.check_compiled_codes({"check_depth": 0}, "m")


FRAMES = [
    (b'{"channel":"heartbeat"}', KIND_OTHER),
    (b'{"channel":"book","type":"update","data":[{"symbol":"A/B","bids":[],"asks":[]}]}', 1),
    (b'[1,{"a":[["1.0","2.0","3.0"]]},"book-10","A/B"]', KIND_V1_BOOK),
]
L3_FRAME = (
    b'{"channel":"level3","type":"update","data":[{"symbol":"A/B","checksum":1,"bids":['
    b'{"event":"add","order_id":"O1","limit_price":1.5,"order_qty":2,"timestamp":"t"},'
    b'{"event":"modify","order_id":"O2","limit_price":1.5,"order_qty":2,"timestamp":"t"},'
    b'{"event":"delete","order_id":"O3","limit_price":1.5,"order_qty":2,"timestamp":"t"}],'
    b'"asks":[]}]}'
)


def test_each_scanner_returns_the_shared_kinds_and_entries(impl: Implementation) -> None:
    scanner = impl.FrameScanner()
    for frame, kind in FRAMES:
        assert scanner.scan(frame) == kind
    assert scanner.scan(L3_FRAME) == KIND_LEVEL3
    assert [type(e) for e in scanner.bids] == [Entry] * 3
    assert [e.event for e in scanner.bids] == [EVENT_ADD, EVENT_MODIFY, EVENT_DELETE]


def test_each_book_returns_the_shared_value_types(impl: Implementation) -> None:
    book = impl.L3Book("A/B", 10, 1, 0)
    book.apply_snapshot([{"order_id": "O1", "limit_price": "1.0", "order_qty": "2"}], [])
    assert type(book.order("O1")) is OrderInfo
    assert type(book.queue_position("O1")) is QueuePosition
    assert book.order("O1") == OrderInfo("O1", "bid", 10, 2, -1, 0, 0)


IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import\s+([^#]*)|c?import\s+([^#]*))", re.M)


def _imports(path: Path) -> set[str]:
    """Modules and names on the import lines of a .py/.pyx/.pyi/.pxd (first line of each)."""
    names: set[str] = set()
    for module, imported, plain in IMPORT.findall(path.read_text()):
        names.add(module)
        names.update(part.strip(" ()") for part in (imported or plain).split(","))
    return names


@pytest.mark.parametrize("pattern", ["*.pyx", "*.pyi", "*.pxd"])
def test_the_compiled_core_does_not_import_the_reference(pattern: str) -> None:
    files = sorted((PACKAGE / "_core").glob(pattern))
    assert files
    for path in files:
        assert not any("_reference" in name for name in _imports(path)), path.name


def test_the_reference_and_the_session_take_codes_from_core_types() -> None:
    reference = (PACKAGE / "_reference").glob("*.py")
    for path in [*reference, PACKAGE / "kraken" / "session.py"]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            # No module-level code number of its own: `KIND_X = 1`, `_STOP_Y, ... = 0, 1...`.
            if isinstance(node, ast.Assign):
                targets = [
                    t.id
                    for target in node.targets
                    for t in (target.elts if isinstance(target, ast.Tuple) else [target])
                    if isinstance(t, ast.Name)
                ]
                for name in targets:
                    bare = name.lstrip("_")
                    assert not bare.startswith(("KIND_", "EVENT_", "STOP_", "SIDE_")), (
                        path.name,
                        name,
                    )
