"""Run pytest under valgrind memcheck and judge the errors that involve the compiled core.

``make memcheck`` builds the debug extension into ``build/debug/lib`` and runs::

    python tests/hardening/memcheck.py --lib build/debug/lib TESTS...

CPython 3.11 under valgrind reports false positives of its own (uninitialised reads in small
int and frame handling, glibc's loader); rather than a suppression file tied to one CPython
build, every error valgrind reports is read from its XML output and counted against the core
when any frame of its stack is in a ``bookengine/_core`` object or C file. Leaks are judged
the same way ("definitely lost" blocks allocated from the core). The full log stays in
``build/memcheck/``. Exit status 1 on any core error or leak, or when pytest failed.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "memcheck"


def frames(error: ET.Element) -> list[str]:
    out = []
    for frame in error.iter("frame"):
        parts = [frame.findtext(tag) or "" for tag in ("obj", "fn", "dir", "file", "line")]
        out.append(" ".join(p for p in parts if p))
    return out


def in_core(stack: list[str]) -> bool:
    return any("bookengine/_core" in f for f in stack)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", required=True, help="the debug build's lib directory")
    parser.add_argument("tests", nargs="+")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    xml_file = OUT / "memcheck.xml"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(args.lib).resolve()), str(ROOT)]),
        PYTHONMALLOC="malloc",  # every allocation visible to memcheck
        BOOKENGINE_SANITIZER="valgrind",
    )
    command = [
        "valgrind", "--tool=memcheck", "--xml=yes", f"--xml-file={xml_file}",
        "--leak-check=full", "--show-leak-kinds=definite", "--num-callers=30",
        "--track-origins=no", str(Path(sys.executable)),
        "-m", "pytest", "-q", "-p", "no:cacheprovider",
        *[str((ROOT / t).resolve()) for t in args.tests],
    ]  # fmt: skip
    print("running:", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=ROOT / "tests", env=env)
    tree = ET.parse(xml_file)
    kinds: collections.Counter[str] = collections.Counter()
    core: list[tuple[str, list[str]]] = []
    for error in tree.getroot().iter("error"):
        kind = error.findtext("kind") or "?"
        stack = frames(error)
        kinds[kind] += 1
        if in_core(stack):
            core.append((kind, stack))
    print(f"valgrind errors by kind (all code): {dict(kinds)}")
    print(f"errors and definite leaks involving bookengine/_core: {len(core)}")
    for kind, stack in core[:20]:
        print(f"  {kind}:")
        for line in stack[:12]:
            print(f"      {line}")
    if result.returncode != 0:
        print(f"pytest under valgrind failed (exit {result.returncode})")
    return 1 if core or result.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
