"""Run ``bookengine sim`` in a subprocess (its own core and event loop) and read its banner.

Clients that block their event loop on synchronous REST calls (python-kraken-sdk's
``SpotOrderBookClient`` calls ``Market.get_asset_pairs`` from inside its message handler) cannot
share a loop with the simulator; a subprocess also gives the simulator the second core.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

_URL = re.compile(r"^\s+(v2 public|v1 public|REST public)\s+(\S+)")


@dataclass
class SimProcess:
    process: subprocess.Popen[str]
    url_v2: str
    url_v1: str
    rest_url: str
    banner: list[str]

    @property
    def ws_base(self) -> str:
        """``ws://127.0.0.1:PORT`` (python-kraken-sdk appends ``/v2``)."""
        return self.url_v2.removesuffix("/v2")


@contextlib.contextmanager
def sim_process(*args: str, timeout: float = 20.0) -> Iterator[SimProcess]:
    """Start ``python -m bookengine sim ARGS``, yield its URLs, stop it (SIGINT) at the end."""
    env = dict(os.environ)
    process = subprocess.Popen(
        [sys.executable, "-m", "bookengine", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        urls: dict[str, str] = {}
        banner: list[str] = []
        deadline = time.monotonic() + timeout
        assert process.stdout is not None
        while len(urls) < 3:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([process.stdout], [], [], max(0.0, remaining))
            if not ready:
                raise AssertionError(f"bookengine sim printed no banner: {banner}")
            line = process.stdout.readline()
            if not line:
                assert process.stderr is not None
                raise AssertionError(f"bookengine sim exited: {banner} {process.stderr.read()}")
            banner.append(line.rstrip("\n"))
            match = _URL.match(line)
            if match:
                urls[match.group(1)] = match.group(2)
        rest = urls["REST public"].removesuffix("/0/public/")
        yield SimProcess(process, urls["v2 public"], urls["v1 public"], rest, banner)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
