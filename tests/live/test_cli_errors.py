"""The CLI error boundary: every user mistake is one line on stderr and the documented exit
status, through the real command (a subprocess), with no half-written output left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from bookengine.boundary import ExitCode

from .helpers import CAPTURE, INSTRUMENTS, cli, command, env, one_line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["watch", "--depth", "7", "BTC/USD"], "--depth must be one of Kraken's book depths"),
        (["record", "--depth", "7", "-o", "x.jsonl", "BTC/USD"], "--depth must be one of"),
        (["watch", "--level3", "--depth", "25", "BTC/USD"], "level3 depth must be"),
        (["watch", "--depth", "ten", "BTC/USD"], "depth must be a positive integer"),
        (["watch", "BTC/USD", "--max-silence", "-1"], "positive number of seconds"),
        (["record", "BTC/USD"], "-o/--output"),
        (["replay"], "the following arguments are required: FILE"),
        (["replay", str(CAPTURE), "--precision", "BTC/USD"], "expected SYMBOL=PRICE/QTY"),
        (["replay", str(CAPTURE), "--depth", "7"], "--depth must be one of"),
        (["demo", "--duration", "soon"], "invalid float value"),
        (["nosuchcommand"], "invalid choice"),
        (["sim", "--bogus"], "unrecognized arguments: --bogus"),
        (["export", "--levels", "x", "-o", "out", str(CAPTURE)], "--levels"),
    ],
)
def test_bad_arguments(args: list[str], needle: str, tmp_path: Path) -> None:
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert needle in one_line(result.stderr)
    assert not list(tmp_path.iterdir())  # nothing created


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = cli("replay", str(empty))
    assert result.returncode == ExitCode.DATA
    assert one_line(result.stderr) == f"bookengine: no frames in {empty}"
    assert result.stdout == ""


def test_file_with_only_blank_lines_and_a_header_has_no_frames(tmp_path: Path) -> None:
    path = tmp_path / "headers.jsonl"
    path.write_text("\n\n#a comment\n")
    result = cli("replay", str(path))
    assert result.returncode == ExitCode.DATA
    assert "no frames in" in one_line(result.stderr)


def test_binary_file(tmp_path: Path) -> None:
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(bytes(range(256)) * 200)
    for args in (["replay", str(binary)], ["export", "-o", str(tmp_path / "out"), str(binary)]):
        result = cli(*args)
        assert result.returncode == ExitCode.DATA
        assert one_line(result.stderr) == f"bookengine: {binary} is not a capture (binary data)"
    assert not (tmp_path / "out").exists()


def test_wrong_format(tmp_path: Path) -> None:
    text = tmp_path / "prices.csv"
    text.write_text("time,price,qty\n" + "1,29430.2,0.1\n" * 3000)
    result = cli("replay", str(text))
    assert result.returncode == ExitCode.DATA
    assert f"{text}:1 is not a capture" in one_line(result.stderr)


def test_gzip_of_garbage(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(gzip.compress(b"hello world\n" * 100))
    result = cli("replay", str(path))
    assert result.returncode == ExitCode.DATA
    assert "is not a capture" in one_line(result.stderr)


def test_missing_file(tmp_path: Path) -> None:
    result = cli("replay", str(tmp_path / "nope.jsonl"))
    assert result.returncode == ExitCode.USAGE
    assert "nope.jsonl" in one_line(result.stderr)


def test_a_folder_without_captures(tmp_path: Path) -> None:
    # A folder is an input (every capture inside); one holding none is a usage error.
    (tmp_path / "notes.md").write_text("not a capture")
    result = cli("replay", str(tmp_path))
    assert result.returncode == ExitCode.USAGE
    assert "a folder with no capture files" in one_line(result.stderr)


def test_closed_pipe() -> None:
    # stdout is a pipe whose reader is gone (``replay ... | head -1`` once head has exited)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            command("replay", str(CAPTURE), "--instruments", str(INSTRUMENTS), "--levels", "10"),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
            check=False,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.returncode == ExitCode.PIPE
    assert "stdout was closed" in one_line(result.stderr)


def test_closed_pipe_through_head() -> None:
    shell = " ".join(
        [*command("replay", str(CAPTURE), "--instruments", str(INSTRUMENTS)), "| head -1"]
    )
    result = subprocess.run(
        ["bash", "-c", shell + '; echo "status ${PIPESTATUS[0]}" >&2'],
        capture_output=True,
        text=True,
        env=env(),
        check=False,
        timeout=60,
    )
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert result.stderr.splitlines()[-1] in ("status 0", "status 141")


def _interrupt_while_reading(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``args`` on a FIFO capture, feed it part of a capture, then press Ctrl-C."""
    fifo = tmp_path / "live.jsonl"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        command(*[str(fifo) if arg == "FIFO" else arg for arg in args]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    timer = threading.Timer(30, process.kill)
    timer.start()
    try:
        with fifo.open("wb") as writer:  # opens once the command reads the capture
            writer.write(INSTRUMENTS.read_bytes() + CAPTURE.read_bytes()[:20000])
            writer.flush()
            time.sleep(0.5)
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=30)
    finally:
        timer.cancel()
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def test_ctrl_c_during_replay(tmp_path: Path) -> None:
    result = _interrupt_while_reading(tmp_path, ["replay", "FIFO"])
    assert result.returncode == ExitCode.INTERRUPTED
    assert one_line(result.stderr) == "bookengine: interrupted"


def test_ctrl_c_during_export_leaves_no_output(tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = _interrupt_while_reading(tmp_path, ["export", "-o", str(out), "FIFO"])
    assert result.returncode == ExitCode.INTERRUPTED
    assert one_line(result.stderr) == "bookengine: interrupted"
    assert not out.exists()


def test_ctrl_c_during_export_keeps_what_was_there(tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = _interrupt_while_reading(tmp_path, ["export", "-o", str(out), "FIFO"])
    assert result.returncode == ExitCode.INTERRUPTED
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_missing_optional_dependency(tmp_path: Path) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "pyarrow.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'pyarrow'\", name='pyarrow')\n"
    )
    out = tmp_path / "out"
    result = cli(
        "export", "-o", str(out), str(CAPTURE), "--instruments", str(INSTRUMENTS), env=env(hide)
    )
    assert result.returncode == ExitCode.DEPENDENCY
    assert "needs pyarrow" in one_line(result.stderr)
    assert not out.exists()


def test_missing_dependency_through_the_boundary(tmp_path: Path) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "zstandard.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'zstandard'\", name='zstandard')\n"
    )
    output = tmp_path / "x.jsonl.zst"
    # (the URL is never reached: the missing package is found first)
    url = "ws://127.0.0.1:9/v2"
    result = cli("record", "-o", str(output), "--url", url, "BTC/USD", env=env(hide))
    assert result.returncode == ExitCode.DEPENDENCY
    line = one_line(result.stderr)
    assert "zstandard" in line and "pip install" in line
    assert not output.exists()


def test_help_lists_the_exit_codes() -> None:
    result = cli("--help")
    assert result.returncode == 0
    text = result.stdout
    for code in ExitCode:
        assert f"\n  {int(code):<4} " in text, code


def test_a_filter_that_matches_nothing_says_what_was_skipped() -> None:
    result = cli("replay", str(CAPTURE), "--instruments", str(INSTRUMENTS), "--symbols", "ETH/USD")
    assert result.returncode == ExitCode.DATA
    assert one_line(result.stderr).endswith("(510 of other symbols skipped)")
    assert "no frames of ETH/USD in" in one_line(result.stderr)
