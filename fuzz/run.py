"""Run every fuzz target for a bounded time: ``make fuzz FUZZ_SECONDS=60``.

Steps:

1. Build the extension out of place for fuzzing (``build/fuzz-asan/lib``): clang with
   ``BOOKENGINE_FUZZ=1 BOOKENGINE_ASAN=1`` (libFuzzer coverage of the C code and
   AddressSanitizer), preloaded with atheris's ``asan_with_fuzzer.so`` and run with
   ``PYTHONMALLOC=malloc`` so that ASan sees every allocation. Without clang (or with
   ``--no-native``) the in-place build is fuzzed: the C code is then exercised but not
   coverage-guided and not sanitized; the summary says which mode ran.
2. Run each target (``fuzz/fuzz_<target>.py``) for ``--seconds`` with libFuzzer, on a working
   corpus ``build/fuzz/corpus/<target>`` (kept between runs, grows) seeded from
   ``fuzz/corpus/<target>`` (the committed seeds, never written). ``-timeout`` turns an input
   that runs too long into a finding (a hang); ``-rss_limit_mb`` a runaway allocation.
3. Print and write ``build/fuzz/summary.json``: executions, coverage, corpus size and findings
   per target. Findings are saved as ``build/fuzz/findings/<target>-crash-*``; reproduce one
   with ``python fuzz/fuzz_<target>.py FILE`` (same environment, printed below), then add it
   to ``tests/hardening/test_fuzz_regressions.py``.

Exit status: 1 when any target found something, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
OUT = ROOT / "build" / "fuzz"
TARGETS = ("scan", "l2", "l3", "capture", "session")


def log(message: str) -> None:
    print(f"[fuzz] {message}", flush=True)


def native_build(python: str) -> Path | None:
    """Build the clang + ASan + libFuzzer-instrumented extension; None when impossible."""
    if shutil.which("clang") is None:
        log("clang not found: the C code will be exercised but not coverage-guided")
        return None
    base = ROOT / "build" / "fuzz-asan"
    env = dict(os.environ, BOOKENGINE_FUZZ="1", BOOKENGINE_ASAN="1")
    env.pop("BOOKENGINE_DEBUG", None)
    command = [
        python, "setup.py", "-q", "build", "--build-base", str(base),
        "--build-lib", str(base / "lib"), "-j", "2",
    ]  # fmt: skip
    log("building the instrumented extension (clang, ASan, fuzzer-no-link) ...")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        log("instrumented build failed; falling back to the in-place build:")
        print(result.stderr[-3000:], file=sys.stderr)
        return None
    return base / "lib"


def preload() -> Path | None:
    import atheris

    path = Path(atheris.path()) / "asan_with_fuzzer.so"
    return path if path.exists() else None


def environment(lib: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT)]
    if lib is not None:
        library = preload()
        if library is None:
            raise SystemExit("atheris has no asan_with_fuzzer.so: use --no-native")
        paths.insert(0, str(lib))
        env["LD_PRELOAD"] = str(library)
        # CPython's own allocations are not freed at exit: no leak reports. Every allocation
        # through malloc so that ASan sees overreads of Python objects (frames) too.
        env["ASAN_OPTIONS"] = "detect_leaks=0:allocator_may_return_null=1:handle_abort=1"
        env["PYTHONMALLOC"] = "malloc"
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONWARNINGS"] = "ignore"
    return env


STAT = re.compile(rb"stat::(\w+):\s+(\d+)")
PROGRESS = re.compile(rb"#(\d+)\s+\w+\s+(?:cov: (\d+) ft: (\d+) )?corp: (\d+)/(\S+)")


PYTHON_COVERAGE = {"scan": False, "l2": False, "l3": False, "capture": True, "session": True}
"""Whether a target instruments Python by default. The scan and book targets test the C code
(the Python reference is their oracle) and run ~6x faster with C coverage alone; the capture
reader and the session are Python."""


def run_target(
    target: str,
    seconds: int,
    env: dict[str, str],
    python: str,
    max_len: int,
    timeout_s: int,
    python_coverage: str,
) -> dict[str, object]:
    env = dict(env)
    on = PYTHON_COVERAGE[target] if python_coverage == "auto" else python_coverage == "on"
    env["FUZZ_PYTHON_COVERAGE"] = "1" if on else "0"
    work = OUT / "corpus" / target
    seeds = FUZZ / "corpus" / target
    findings = OUT / "findings"
    work.mkdir(parents=True, exist_ok=True)
    findings.mkdir(parents=True, exist_ok=True)
    logfile = OUT / f"{target}.log"
    command = [
        python, str(FUZZ / f"fuzz_{target}.py"),
        f"-max_total_time={seconds}", "-print_final_stats=1", f"-timeout={timeout_s}",
        "-rss_limit_mb=6144", f"-max_len={max_len}", f"-artifact_prefix={findings}/{target}-",
        f"-dict={FUZZ / 'kraken.dict'}", str(work), str(seeds),
    ]  # fmt: skip
    before = {p.name for p in findings.glob(f"{target}-*")}
    log(f"{target}: {seconds} s ...")
    started = time.monotonic()
    with logfile.open("wb") as out:
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    text = logfile.read_bytes()
    stats = {k.decode(): int(v) for k, v in STAT.findall(text)}
    last = PROGRESS.findall(text)
    found = sorted(p.name for p in findings.glob(f"{target}-*") if p.name not in before)
    summary: dict[str, object] = {
        "target": target,
        "python_coverage": on,
        "seconds": round(elapsed, 1),
        "executions": stats.get("number_of_executed_units", int(last[-1][0]) if last else 0),
        "exec_per_s": stats.get("average_exec_per_sec"),
        "coverage": int(last[-1][1]) if last and last[-1][1] else None,
        "features": int(last[-1][2]) if last and last[-1][2] else None,
        "corpus": len(list(work.iterdir())),
        "peak_rss_mb": stats.get("peak_rss_mb"),
        "exit": result.returncode,
        "findings": found,
        "log": str(logfile.relative_to(ROOT)),
    }
    if result.returncode != 0:
        tail = text[-4000:].decode("utf-8", "replace")
        log(f"{target}: FINDING (exit {result.returncode}); end of {logfile}:\n{tail}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="per target")
    parser.add_argument("--targets", nargs="*", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--no-native", action="store_true", help="skip the clang/ASan build")
    parser.add_argument("--max-len", type=int, default=4096)
    parser.add_argument("--timeout", type=int, default=20, help="seconds for one input")
    parser.add_argument(
        "--python-coverage",
        choices=("auto", "on", "off"),
        default="auto",
        help="instrument Python too (auto: for the capture and session targets)",
    )
    args = parser.parse_args(argv)
    python = sys.executable
    OUT.mkdir(parents=True, exist_ok=True)
    lib = None if args.no_native else native_build(python)
    if lib is None:
        subprocess.run(
            [python, "setup.py", "-q", "build_ext", "--inplace", "-j", "2"], cwd=ROOT, check=True
        )
    env = environment(lib)
    mode = (
        "native: C coverage-guided (clang -fsanitize=fuzzer-no-link) + ASan"
        if lib is not None
        else "python-only coverage: C exercised, not coverage-guided, not sanitized"
    )
    log(f"mode: {mode}")
    log(
        "reproduce a finding with: "
        + " ".join(
            f"{k}={env[k]}" for k in ("PYTHONPATH", "LD_PRELOAD", "ASAN_OPTIONS") if k in env
        )
        + (" PYTHONMALLOC=malloc" if lib is not None else "")
        + f" {python} fuzz/fuzz_<target>.py FILE"
    )
    results = [
        run_target(t, args.seconds, env, python, args.max_len, args.timeout, args.python_coverage)
        for t in args.targets
    ]
    summary = {"mode": mode, "seconds_per_target": args.seconds, "targets": results}
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n{'target':<9} {'seconds':>8} {'executions':>11} {'exec/s':>7} {'cov':>6} "
          f"{'corpus':>7}  findings")  # fmt: skip
    for r in results:
        print(
            f"{r['target']:<9} {r['seconds']:>8} {r['executions']:>11} {r['exec_per_s'] or '-':>7} "
            f"{r['coverage'] or '-':>6} {r['corpus']:>7}  {', '.join(r['findings']) or 'none'}"  # type: ignore[arg-type]
        )
    print(f"mode: {mode}; summary: {(OUT / 'summary.json').relative_to(ROOT)}")
    return 1 if any(r["exit"] != 0 for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
