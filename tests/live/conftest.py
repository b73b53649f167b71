"""A ``bookengine sim`` process on 127.0.0.1 for the live command tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from .helpers import command, env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def simulator(*args: str) -> Iterator[str]:
    """Run ``bookengine sim ARGS``; yield its base URL (``ws://127.0.0.1:PORT``)."""
    port = free_port()
    process = subprocess.Popen(
        command("sim", "--port", str(port), "--rate", "100", *args),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with simulator() as url:
        yield url
