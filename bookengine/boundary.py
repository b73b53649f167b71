"""The command line's error boundary: every failure a user can cause becomes one line on stderr
and a documented exit status, never a traceback, and leaves no half-written output behind.

Commands raise :class:`CLIError` (or let ``KeyboardInterrupt``, ``BrokenPipeError``, a missing
optional package, an unreadable file... propagate); :func:`guarded` turns each into its line and
status. Commands that write files or folders register them with :func:`track_output` first: when
the command fails, what it created there is removed again (files it wrote, folders left empty).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from enum import IntEnum
from pathlib import Path
from typing import NoReturn


class ExitCode(IntEnum):
    """``bookengine``'s exit statuses (one table: the README and ``bookengine --help``)."""

    OK = 0
    """Clean: every checksum verified, nothing skipped, nothing refused."""
    DATA = 1
    """A data problem: checksum mismatches, bad or skipped frames, a file that is not a capture
    or holds no frames, a refused subscription, no data for --max-silence seconds."""
    USAGE = 2
    """Bad arguments or options, a file that cannot be opened."""
    CONNECTION = 3
    """No connection ever succeeded, or the URL is not a Kraken WebSocket endpoint."""
    DEPENDENCY = 4
    """An optional package this command needs is not installed."""
    SOFTWARE = 70
    """A bug in bookengine (the line says how to get the traceback)."""
    INTERRUPTED = 130
    """Ctrl-C (SIGINT) or SIGTERM."""
    PIPE = 141
    """The reader of stdout went away (``... | head -1``)."""


EXIT_CODES_TEXT = """exit status:
  0    clean: every checksum verified, nothing skipped or refused
  1    data problem: checksum mismatch, bad or skipped frames, not a capture / no frames,
       subscription refused, no data for --max-silence seconds
  2    usage: bad arguments, a file that cannot be opened
  3    connection: no connection ever succeeded, or the URL is not a Kraken endpoint
  4    an optional package this command needs is missing
  70   internal error (a bug: BOOKENGINE_DEBUG=1 shows the traceback)
  130  interrupted (Ctrl-C, SIGTERM)
  141  stdout closed early (e.g. piped into head)"""

# Optional packages and the extra that installs them.
_EXTRAS = {
    "pyarrow": "research",
    "zstandard": "research",
    "pandas": "dataframe",
    "matplotlib": "plot",
    "dask": "research",
    "rich": "",
}


class CLIError(Exception):
    """A failure to report as one line (``message``) with exit status ``code``."""

    def __init__(self, message: str, code: int = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.code = int(code)


# -- outputs the running command creates -------------------------------------------------------

_tracked: list[tuple[Path, bool, set[Path]]] = []


def track_output(path: str | Path) -> None:
    """Remember ``path`` (a file or a folder) before the command writes it.

    When the command then fails (an exception or a non-zero status), the files created under it
    since are deleted and folders it created that are left empty are removed; what existed
    before is left alone.
    """
    path = Path(path)
    existed = path.exists()
    before: set[Path] = set()
    if path.is_dir():
        before = set(path.rglob("*"))
    _tracked.append((path, existed, before))


def _cleanup() -> None:
    while _tracked:
        path, existed, before = _tracked.pop()
        try:
            if path.is_dir():
                for item in sorted(path.rglob("*"), reverse=True):
                    if item in before:
                        continue
                    if item.is_dir():
                        if not any(item.iterdir()):
                            item.rmdir()
                    else:
                        item.unlink()
                if not existed and not any(path.iterdir()):
                    path.rmdir()
            elif not existed and path.exists():
                path.unlink()
        except OSError:
            pass


# -- the boundary ------------------------------------------------------------------------------


def _argparse_error(self: argparse.ArgumentParser, message: str) -> NoReturn:
    raise CLIError(f"{self.prog}: {message} (see {self.prog} --help)", ExitCode.USAGE)


def guarded(command: Callable[[], int], prog: str = "bookengine") -> int:
    """Run ``command``; return its status, or the status of what it raised (and say why).

    Argument errors of every parser (also the ``sim`` and ``export`` commands' own) become one
    line instead of argparse's usage block.
    """
    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _argparse_error  # type: ignore[method-assign]
    _tracked.clear()
    message = ""
    try:
        code = command()
        sys.stdout.flush()  # a closed pipe shows here for short outputs
    except CLIError as exc:
        message, code = str(exc), exc.code
    except KeyboardInterrupt:
        message, code = "interrupted", ExitCode.INTERRUPTED
    except BrokenPipeError:
        _drop_stdout()
        message, code = "stdout was closed before the output was complete", ExitCode.PIPE
    except ModuleNotFoundError as exc:
        name = (exc.name or "").partition(".")[0]
        extra = _EXTRAS.get(name, "")
        hint = f"pip install 'bookengine[{extra}]'" if extra else f"pip install {name}"
        message, code = f"this needs the package {name!r}, not installed: {hint}", 4
    except FileNotFoundError as exc:
        message, code = f"{exc.filename}: no such file or directory", ExitCode.USAGE
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        message, code = f"{where}{exc.strerror or exc}", ExitCode.USAGE
    except SystemExit as exc:  # --help, --version, a command's own sys.exit
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if isinstance(exc.code, str):
            message = exc.code
    except Exception as exc:
        if os.environ.get("BOOKENGINE_DEBUG"):
            traceback.print_exc()
        message = (
            f"internal error: {type(exc).__name__}: {exc} (a bug: please report it; "
            "BOOKENGINE_DEBUG=1 shows the traceback)"
        )
        code = ExitCode.SOFTWARE
    finally:
        argparse.ArgumentParser.error = original  # type: ignore[method-assign]
    if code != 0:
        _cleanup()
    _tracked.clear()
    if message:
        line = " ".join(message.split())  # one line, whatever the message held
        if not line.startswith(prog):
            line = f"{prog}: {line}"
        with contextlib.suppress(BrokenPipeError, ValueError):
            print(line, file=sys.stderr, flush=True)
    return int(code)


def _drop_stdout() -> None:
    # Python flushes stdout again at exit; point it at /dev/null so that flush is quiet.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


# -- inputs ------------------------------------------------------------------------------------

_SNIFF_BYTES = 1 << 16
_SNIFF_LINES = 5


def check_captures(paths: Iterable[str | Path]) -> None:
    """Refuse, before any replay, a file that is empty or plainly not a capture.

    Raises:
        CLIError: ``no frames in FILE`` (nothing but blank lines), ``FILE is not a capture``
            (binary data, or its first lines are neither frames, headers nor sent requests);
            a missing file is left to the reader's own error.
    """
    from .capture import FORMATS_ACCEPTED, CaptureReport, _decoded_chunks, _Progress, expand_inputs
    from .errors import CaptureError

    try:
        files = expand_inputs(paths)  # folders: every capture inside
    except CaptureError as exc:
        raise CLIError(str(exc), ExitCode.USAGE) from None
    for path in files:
        if not path.is_file():
            continue  # the reader names it
        data = b""
        for chunk in _decoded_chunks(path, CaptureReport(), _Progress()):
            data += chunk
            if len(data) >= _SNIFF_BYTES:
                break
        head = data[:_SNIFF_BYTES]
        if not head.strip():
            raise CLIError(f"no frames in {path}", ExitCode.DATA)
        lines = [line for line in head.split(b"\n") if line.strip()]
        if len(data) >= _SNIFF_BYTES and len(lines) > 1:
            lines = lines[:-1]  # possibly cut by the sniff
        sample = lines[:_SNIFF_LINES]
        if b"\0" in head:
            raise CLIError(f"{path} is not a capture (binary data)", ExitCode.DATA)
        if not any(_looks_like_capture_line(line) for line in sample):
            shown = sample[0][:40].decode("utf-8", "replace")
            raise CLIError(
                f"{path}:1 is not a capture: its first lines are in no capture format read "
                f"here ({shown!r}); accepted: {FORMATS_ACCEPTED}",
                ExitCode.DATA,
            )


def _looks_like_capture_line(line: bytes) -> bool:
    from .capture import detect_line_format
    from .errors import CaptureError

    try:
        detect_line_format(line.strip())
    except CaptureError:
        return False
    return True


__all__ = [
    "EXIT_CODES_TEXT",
    "CLIError",
    "ExitCode",
    "check_captures",
    "guarded",
    "track_output",
]
