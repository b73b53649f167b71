"""Run the benchmark programs (``make bench``, ``bookengine bench``): L2, L3 and the live path.

Options both programs understand (``--quick``, ``--repeats R``) go to each of them; anything
for one program only goes through ``--l2 "..."`` or ``--l3 "..."`` (the L2 program counts
``--messages`` and takes ``--depth``, the L3 one counts ``--events`` and takes ``--depths``)::

    python bench/run.py --quick
    python bench/run.py --repeats 7 --l2 "--messages 200000 --depth 100" --l3 "--events 200000"
    make bench BENCH_ARGS="--quick"

Each program runs in its own process, so one's allocations and warm caches do not colour the
other's numbers.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROGRAMS = {"l2": "bench_l2.py", "l3": "bench_l3.py", "live": "bench_live.py"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small streams, 2 repeats")
    parser.add_argument("--repeats", type=int, help="timed rounds per program")
    parser.add_argument("--only", choices=sorted(PROGRAMS), help="run one program")
    for key in PROGRAMS:
        parser.add_argument(f"--{key}", default="", metavar="ARGS", help=f"extra {key} arguments")
    args = parser.parse_args(argv)
    common = (["--quick"] if args.quick else []) + (
        ["--repeats", str(args.repeats)] if args.repeats else []
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    status = 0
    for key, name in PROGRAMS.items():
        if args.only and key != args.only:
            continue
        program = HERE / name
        if not program.exists():
            print(f"{name}: not present, skipped", file=sys.stderr)
            continue
        command = [sys.executable, str(program), *common, *shlex.split(getattr(args, key))]
        print(f"== {' '.join(command[1:])}", file=sys.stderr, flush=True)
        result = subprocess.run(command, env=env, check=False)
        if result.returncode:
            print(f"{name} failed with exit status {result.returncode}", file=sys.stderr)
            status = status or result.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
