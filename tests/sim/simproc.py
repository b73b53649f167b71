"""Run ``bookengine sim`` in a subprocess (its own core and event loop) and read its banner.

Clients that block their event loop on synchronous REST calls (python-kraken-sdk's
``SpotOrderBookClient`` calls ``Market.get_asset_pairs`` from inside its message handler) cannot
share a loop with the simulator; a subprocess also gives the simulator the second core.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
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

    def banner_value(self, label: str) -> str:
        """The last word of the banner line naming ``label`` (``"API key"``)."""
        return next(line.split()[-1] for line in self.banner if label in line)

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
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    reader: threading.Thread | None = None
    try:
        urls: dict[str, str] = {}
        banner: list[str] = []
        lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout

        # A thread reads stdout: select() on the pipe would miss lines already buffered.
        def pump() -> None:
            for text in stdout:
                lines.put(text)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        while len(urls) < 3 or not any("API secret" in seen for seen in banner):
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"bookengine sim printed no banner: {banner}") from None
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
        if reader is not None:
            reader.join(10)  # the pipe ends with the process
        if process.stdout is not None:
            process.stdout.close()
