"""Runs one target of :mod:`fuzz.harness` under atheris (libFuzzer).

``python fuzz/fuzz_<target>.py [libFuzzer options] [corpus dirs or files]``; ``fuzz/run.py``
(``make fuzz``) sets up the instrumented build, the preload and the options. Given files
instead of directories, each is run once: that is how a crasher is reproduced.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(target: str) -> None:
    import atheris

    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))  # after PYTHONPATH: an instrumented build comes first
    # Python coverage for bookengine (reference, session, capture) and the harness; the C
    # extension reports its own coverage when built with BOOKENGINE_FUZZ=1. Instrumented
    # Python runs several times slower: FUZZ_PYTHON_COVERAGE=0 turns it off.
    if os.environ.get("FUZZ_PYTHON_COVERAGE", "1") == "1":
        with atheris.instrument_imports(include=["bookengine", "fuzz"]):
            from fuzz import harness
    else:
        from fuzz import harness

    check = harness.CHECKS[target]
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
