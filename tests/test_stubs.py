"""The typed faces cannot drift: every compiled module against its ``.pyi`` (mypy's stubtest),
and the reference against the compiled core, name by name and signature by signature."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bookengine._impl import compiled_available, implementation

ROOT = Path(__file__).parent.parent
CORE = ROOT / "bookengine" / "_core"
pytestmark = pytest.mark.skipif(not compiled_available(), reason="the compiled core is not built")


def test_every_compiled_module_has_a_stub() -> None:
    modules = {path.stem for path in CORE.glob("*.pyx")}
    assert modules >= {"scan", "l2book", "l3book", "checksum", "router", "ladder"}
    assert modules == {path.stem for path in CORE.glob("*.pyi")}


def test_stubs_match_the_compiled_modules(tmp_path: Path) -> None:
    modules = [f"bookengine._core.{path.stem}" for path in sorted(CORE.glob("*.pyx"))]
    allowlist = Path(__file__).parent / "stubtest_allowlist.txt"
    command = [sys.executable, "-m", "mypy.stubtest", "--allowlist", str(allowlist), *modules]
    out = subprocess.run(
        command,
        cwd=tmp_path,  # no mypy cache or config from the tree: the stubs as they are
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _public(obj: object) -> dict[str, Any]:
    """Public members of an instance (attributes set in ``__init__`` included), by name."""
    return {
        name: getattr(type(obj), name, None)
        for name in dir(obj)
        if not name.startswith("_") or name in ("__len__", "__contains__", "_check")
    }


def _parameters(member: Any) -> list[tuple[str, Any]] | None:
    if not callable(member):
        return None  # a property or a plain attribute
    return [(p.name, p.default) for p in inspect.signature(member).parameters.values()]


@pytest.mark.parametrize("name", ["FrameScanner", "L2Book", "L3Book"])
def test_the_reference_has_the_compiled_api(name: str) -> None:
    """The public classes (cores with the display mixin) of both implementations."""
    instances = []
    for impl in (implementation("cython"), implementation("python")):
        cls = getattr(impl, name)
        instances.append(cls() if name == "FrameScanner" else cls("A/B", 10, 1, 8))
    ours, theirs = (_public(obj) for obj in instances)
    assert sorted(ours) == sorted(theirs)
    for member in ours:
        if not member.startswith("__"):  # slot wrappers name their arguments their own way
            assert _parameters(ours[member]) == _parameters(theirs[member]), member
