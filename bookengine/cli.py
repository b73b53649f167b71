"""The ``bookengine`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._impl import active_name
from .boundary import EXIT_CODES_TEXT, CLIError, ExitCode, check_captures, guarded
from .capture import CaptureRecord
from .core_types import BOOK_DEPTHS, LEVEL3_DEPTHS
from .errors import BookError
from .instruments import Instruments
from .kraken.session import BookState
from .replay import ReplayResult, replay

DATA = Path(__file__).parent / "data"


def _sim(argv: list[str]) -> int:
    from .sim.cli import main as sim_main

    return sim_main(argv)


def _export(argv: list[str]) -> int:
    from .export import main as export_main

    return export_main(argv)


def _bench(argv: list[str]) -> int:
    # The benchmark programs live in the source checkout's bench/ (with their peers' setup).
    runner = Path(__file__).resolve().parent.parent / "bench" / "run.py"
    if not runner.exists():
        print(
            "bookengine bench: needs a source checkout (bench/run.py); see bench/README.md",
            file=sys.stderr,
        )
        return 2
    import subprocess

    return subprocess.run([sys.executable, str(runner), *argv], check=False).returncode


DELEGATED = {"sim": _sim, "export": _export, "bench": _bench}


def _precision(text: str) -> tuple[str, tuple[int, int]]:
    symbol, sep, scales = text.rpartition("=")
    price, slash, qty = scales.partition("/")
    if not sep or not symbol or not slash or not price.isdigit() or not qty.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected SYMBOL=PRICE/QTY (e.g. BTC/USD=1/8), got {text!r}"
        )
    return symbol, (int(price), int(qty))


def _depth(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"depth must be a positive integer, got {text!r}")
    return int(text)


def _size(text: str) -> int:
    units = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}
    number, unit = text[:-1], text[-1:].lower()
    if unit.isdigit():
        number, unit = text, ""
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size like 500M, got {text!r}")
    return int(number) * units[unit]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bookengine",
        description="Exact Kraken Spot order books and queue analytics.",
        epilog=EXIT_CODES_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bookengine {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    play = commands.add_parser(
        "replay",
        help="rebuild books from captures, verifying every checksum",
        description="Replay capture files (one raw Kraken frame per line, optionally "
        "'recv_ts<TAB>frame'; plain or .gz) through the live code path. Exit status 0 only "
        "when no checksum mismatched and no frame was bad.",
    )
    play.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="capture files, or folders: every capture inside, in time order",
    )
    play.add_argument(
        "--instruments",
        action="append",
        default=[],
        metavar="FILE",
        help="a capture of v2 'instrument' frames giving precisions",
    )
    play.add_argument(
        "--precision",
        action="append",
        default=[],
        type=_precision,
        metavar="SYMBOL=P/Q",
        help="price/qty precision of a v2 symbol",
    )
    play.add_argument("--depth", type=_depth, help="depth when the capture has no subscribe ack")
    play.add_argument(
        "--symbols",
        type=_symbols,
        metavar="S1,S2",
        help="read only these symbols' book, level3 and trade frames (skipped unread: faster)",
    )
    play.add_argument("--json", action="store_true", help="print one JSON summary object")
    play.add_argument("--levels", type=int, default=5, help="levels per side to print (text)")

    # Commands with their own parsers, in their own modules.
    for name, text in (
        ("sim", "run the local Kraken-compatible simulator"),
        ("export", "export captures to Parquet or LOBSTER files"),
        ("bench", "run the benchmarks against peer libraries (source checkout)"),
    ):
        delegated = commands.add_parser(name, help=text, add_help=False)
        delegated.add_argument("args", nargs=argparse.REMAINDER)

    def live_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("symbols", nargs="+", metavar="SYMBOL")
        command.add_argument("--depth", type=_depth, default=10)
        command.add_argument("--level3", action="store_true", help="order-by-order level3 books")
        command.add_argument("--v1", action="store_true", help="the legacy v1 book feed")
        command.add_argument("--beta", action="store_true", help="Kraken's beta endpoints")
        command.add_argument("--url", help="public WebSocket URL (default: Kraken's)")
        command.add_argument("--level3-url", help="level3 WebSocket URL (default: Kraken's)")
        command.add_argument("--rest-url", help="REST base URL for the level3 token")
        command.add_argument(
            "--duration", type=_seconds, metavar="S", help="stop after this many seconds"
        )
        command.add_argument(
            "--max-silence",
            type=_seconds,
            metavar="S",
            help="fail (exit 1) when no frame at all arrives for S seconds",
        )
        command.add_argument(
            "--health-every",
            type=_seconds,
            metavar="S",
            help="print a health line on stderr every S seconds (default 60; the full-screen "
            "view shows it all the time)",
        )

    watch = commands.add_parser("watch", help="live books in the terminal, every CRC32 verified")
    live_options(watch)
    watch.add_argument("--json", action="store_true", help="print a JSON summary at the end")

    record = commands.add_parser(
        "record",
        help="record raw frames for replay",
        description="Record a crash-safe capture: one 'recv_ts<TAB>frame' line per frame, "
        "sent requests as 'ts<TAB>>request' (tokens redacted), a '#bookengine' header per "
        "segment. The suffix picks the compression: .gz (gzip), .zst (zstd), else plain.",
    )
    live_options(record)
    record.add_argument(
        "--trades", action="store_true", help="also record the trade channel (always on --level3)"
    )
    record.add_argument("-o", "--output", required=True, metavar="FILE")
    record.add_argument(
        "--rotate-bytes",
        type=_size,
        metavar="N",
        help="start a new segment (FILE -> NAME.0001.jsonl.gz, ...) after N bytes on disk "
        "(suffixes k, M, G allowed)",
    )
    record.add_argument(
        "--rotate-seconds",
        type=_seconds,
        metavar="S",
        help="start a new segment every S seconds",
    )

    demo = commands.add_parser("demo", help="watch the built-in simulator live")
    demo.add_argument("--duration", type=float, default=12.0)
    demo.add_argument(
        "--replay", action="store_true", help="replay the bundled real Kraken capture instead"
    )
    return parser


def _credentials() -> tuple[str | None, str | None]:
    # From the environment only: secrets never go on a command line (ps, shell history).
    return os.environ.get("KRAKEN_API_KEY"), os.environ.get("KRAKEN_API_SECRET")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bookengine`` command; returns the exit status (see ExitCode).

    Every failure a user can cause is one line on stderr (see :mod:`bookengine.boundary`).
    """
    return guarded(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Delegated commands parse their own options (argparse's REMAINDER would refuse a leading
    # option such as --help).
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]](argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "replay":
        if args.depth is not None and args.depth not in BOOK_DEPTHS:
            raise CLIError(
                f"bookengine replay: --depth must be one of Kraken's depths "
                f"{', '.join(map(str, BOOK_DEPTHS))}, got {args.depth}"
            )
        return _replay(
            args.files,
            args.instruments,
            dict(args.precision),
            args.depth,
            args.json,
            args.levels,
            args.symbols,
        )
    if args.command in DELEGATED:
        return DELEGATED[args.command](args.args)
    if args.command in ("watch", "record"):
        from .watch import run_record, run_watch

        if args.level3 and args.depth not in LEVEL3_DEPTHS:
            raise CLIError(f"bookengine {args.command}: level3 depth must be 10, 100 or 1000")
        if not args.level3 and args.depth not in BOOK_DEPTHS:
            raise CLIError(
                f"bookengine {args.command}: --depth must be one of Kraken's book depths "
                f"{', '.join(map(str, BOOK_DEPTHS))}, got {args.depth}"
            )
        api_key, api_secret = _credentials()
        if args.level3 and not (api_key and api_secret):
            print(
                "bookengine: --level3 needs KRAKEN_API_KEY and KRAKEN_API_SECRET in the "
                "environment",
                file=sys.stderr,
            )
            return 2
        common: dict[str, Any] = dict(
            depth=args.depth,
            level3=args.level3,
            url=args.url,
            level3_url=args.level3_url,
            rest_url=args.rest_url,
            api_key=api_key,
            api_secret=api_secret,
            protocol="v1" if args.v1 else "v2",
            duration_s=args.duration,
            max_silence_s=args.max_silence,
        )
        if args.command == "watch":
            return run_watch(
                args.symbols,
                beta=args.beta,
                as_json=args.json,
                health_every_s=60.0 if args.health_every is None else args.health_every,
                **common,
            )
        return run_record(
            args.symbols,
            args.output,
            rotate_bytes=args.rotate_bytes,
            trades=args.trades,
            rotate_seconds=args.rotate_seconds,
            health_every_s=60.0 if args.health_every is None else args.health_every,
            **common,
        )
    if args.command == "demo":
        if args.replay:
            return _demo()
        from .watch import run_demo

        return run_demo(args.duration)
    raise AssertionError(args.command)


def _symbols(text: str) -> list[str]:
    symbols = [part.strip() for part in text.split(",") if part.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError("give one or more symbols: BTC/USD,ETH/USD")
    return symbols


def _replay(
    files: list[str],
    instrument_files: list[str],
    precisions: dict[str, tuple[int, int]],
    depth: int | None,
    as_json: bool,
    levels: int,
    symbols: list[str] | None = None,
) -> int:
    def problem(record: CaptureRecord, message: str) -> None:
        if "no precision known" in message:
            message += " (replay: pass --instruments FILE or --precision SYMBOL=P/Q)"
        print(f"{record.path}:{record.line}: {message}", file=sys.stderr)

    check_captures(files)
    try:
        instruments = Instruments()
        for path in instrument_files:
            loaded = Instruments.from_file(path)
            for symbol in loaded.symbols():
                item = loaded.get(symbol)
                assert item is not None
                instruments.set(symbol, item.price_precision, item.qty_precision, item.status)
        result = replay(
            files,
            instruments=instruments,
            precisions=precisions,
            depth=depth,
            symbols=symbols,
            on_problem=problem,
            progress=sys.stderr.isatty() and not as_json,
        )
    except BookError as exc:
        raise CLIError(f"bookengine replay: {exc}", ExitCode.USAGE) from None
    if result.frames == 0:
        wanted = f" of {','.join(symbols)}" if symbols else ""
        skipped = f" ({result.skipped} of other symbols skipped)" if result.skipped else ""
        raise CLIError(
            f"bookengine replay: no frames{wanted} in {', '.join(files)}{skipped}", ExitCode.DATA
        )
    if as_json:
        print(json.dumps(result.summary()))
    else:
        _print_table(result, levels)
    return 0 if result.ok else 1


def _print_table(result: ReplayResult, levels: int) -> None:
    print(
        f"{result.frames} frames, {result.bad_frames} bad, {result.checksum_mismatches} "
        f"mismatched, {result.skipped_frames} skipped while stale, "
        f"implementation {active_name()}"
    )
    for key, state in sorted(result.books.items()):
        print()
        _print_book(key, state, levels)


def _print_book(key: str, state: BookState, levels: int) -> None:
    verdict = "OK" if state.checksum_mismatches == 0 and not state.stale else "NOT VERIFIED"
    print(
        f"{key} ({state.protocol}, depth {state.depth}): {state.messages} messages, "
        f"{state.checksums_checked} checksums verified, {state.checksum_mismatches} mismatched "
        f"[{verdict}]"
    )
    book = state.book
    if book is None:
        print("  no snapshot")
        return
    spread = book.spread()
    print(
        f"  {book.bid_levels} bid / {book.ask_levels} ask levels, spread "
        f"{'-' if spread is None else book.price_text(spread)}, checksum {book.checksum()}"
    )
    bids = book.levels_text("bid", levels)
    asks = book.levels_text("ask", levels)
    width = max([len(p) + len(q) for p, q in bids + asks] + [20]) + 3
    print(f"  {'bids (qty @ price)':>{width}}   {'asks (price x qty)':<{width}}")
    for row in range(max(len(bids), len(asks))):
        left = f"{bids[row][1]} @ {bids[row][0]}" if row < len(bids) else ""
        right = f"{asks[row][0]} x {asks[row][1]}" if row < len(asks) else ""
        print(f"  {left:>{width}}   {right:<{width}}")


def _demo() -> int:
    capture = DATA / "v2-book-btcusd-depth10.jsonl"
    print(
        "bookengine demo: replaying a real Kraken v2 BTC/USD capture (2023-07-30), every "
        "CRC32 verified\n"
    )
    return _replay(
        [str(capture)], [str(DATA / "v2-instrument-snapshot.jsonl")], {}, None, False, 10
    )


if __name__ == "__main__":
    sys.exit(main())
