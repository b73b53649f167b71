"""Run the benchmark programs (``make bench``): ``bench_l2.py``, then ``bench_l3.py`` if present.

Every argument is forwarded to each program (both accept ``--messages``, ``--repeats`` and
``--quick``), e.g. ``python bench/run.py --quick`` or ``make bench BENCH_ARGS=--quick``.
Each program runs in its own process so one's allocations and warm caches do not colour the
other's numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROGRAMS = ("bench_l2.py", "bench_l3.py")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    status = 0
    for name in PROGRAMS:
        program = HERE / name
        if not program.exists():
            print(f"{name}: not present, skipped", file=sys.stderr)
            continue
        print(f"== {name} {' '.join(args)}", file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, str(program), *args], env=env, check=False)
        if result.returncode:
            print(f"{name} failed with exit status {result.returncode}", file=sys.stderr)
            status = status or result.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
