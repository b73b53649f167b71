"""Secrets and trust: credentials never leak, TLS is verified, bad credentials fail fast.

* A level3 session against the simulator with every logger at DEBUG: neither the API secret
  nor any level3 token appears in a log record, an event's repr, the feed's repr or summary,
  or a capture written by the recorder (frames and sent requests); the raw ``on_frame``
  stream never carries them either.
* ``wss://`` and ``https://`` are verified by default: a TLS server on 127.0.0.1 with a
  self-signed certificate is refused with a certificate error, promptly, by the feed and by
  the token fetch; the feed never passes an ``ssl`` argument that would weaken it.
* Bad credentials (unknown key, secret that is not base64, wrong secret) end a level3 feed
  with a FeedError within seconds, and the error does not quote the secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from bookengine.auth import TokenError, fetch_token
from bookengine.capture import Recorder
from bookengine.feed import FeedError, KrakenFeed
from bookengine.kraken.events import BookChanged, ConnectionLost, ConnectionOpened, Event
from bookengine.sim import Simulator

FAST: dict[str, Any] = {
    "liveness_s": 1.0,
    "ping_interval_s": 0.5,
    "reconnect_policy": {"immediate": 1, "floor_s": 0.2, "cap_s": 0.5},
    "resync_backoff_s": (0.2, 1.0),
    "resync_timeout_s": 1.0,
}


class Records(logging.Handler):
    """Every log record of every logger, formatted (args included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append((record.name, text))


@pytest.fixture
def debug_logs() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def run(coroutine: Any, timeout: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def test_level3_session_leaks_no_secret(tmp_path: Path, debug_logs: Records) -> None:
    capture = tmp_path / "l3.jsonl"
    raw_frames: list[bytes] = []
    sent: list[str] = []
    events: list[Event] = []

    async def main() -> dict[str, Any]:
        async with Simulator(seed=31, rate=300) as sim:
            secrets = {"api_secret": sim.api_secret}
            with Recorder(capture, url=sim.url_level3, redact=[sim.api_key, sim.api_secret]) as rec:

                def on_frame(recv_ts_ns: int, frame: bytes) -> None:
                    raw_frames.append(frame)
                    rec.write_frame(recv_ts_ns, frame)

                def on_send(sent_ts_ns: int, request: str) -> None:
                    sent.append(request)
                    rec.write_sent(sent_ts_ns, request)

                feed = KrakenFeed(
                    book=["ETH/USD"],
                    level3=["BTC/USD"],
                    url=sim.url_v2,
                    level3_url=sim.url_level3,
                    rest_url=sim.rest_url,
                    api_key=sim.api_key,
                    api_secret=sim.api_secret,
                    on_frame=on_frame,
                    on_send=on_send,
                    on_event=events.append,
                    **FAST,
                )
                async with feed:
                    deadline = time.monotonic() + 20
                    while True:
                        state = feed.books().get("level3:BTC/USD")
                        if state is not None and state.checksums_checked >= 30:
                            break
                        assert time.monotonic() < deadline, feed.summary()
                        await asyncio.sleep(0.05)
                    sim.inject("drop")  # a reconnect fetches a second token
                    await asyncio.sleep(0.2)
                    deadline = time.monotonic() + 20
                    while feed.metrics.reconnects < 2 or not feed.books()["level3:BTC/USD"].book:
                        assert time.monotonic() < deadline, feed.summary()
                        await asyncio.sleep(0.05)
                    sim.inject("corrupt", symbol="BTC/USD")  # a resync resends the token
                    await asyncio.sleep(1.5)
                    texts = {
                        "feed repr": repr(feed),
                        "feed str": str(feed),
                        "summary": json.dumps(feed.summary()),
                        "connections": repr([vars(c).keys() for c in feed.connections]),
                        "session books": repr(feed.books()),
                    }
            return {"secrets": secrets, "texts": texts}

    result = run(main())
    tokens = set()
    for request in sent:
        params = json.loads(request).get("params", {})
        if params.get("token"):
            tokens.add(params["token"])
    assert len(tokens) >= 2, sent  # one per connection: the test saw real tokens
    secrets = [result["secrets"]["api_secret"], *tokens]
    assert all(len(s) >= 8 for s in secrets)

    def leaks(text: str) -> list[str]:
        return [s for s in secrets if s in text]

    client_logs = [(n, t) for n, t in debug_logs.lines if not n.startswith("websockets.server")]
    assert debug_logs.lines, "DEBUG logging captured nothing: the test would be blind"
    leaked_logs = [(n, t[:300]) for n, t in client_logs if leaks(t)]
    assert not leaked_logs, f"secrets in log records: {leaked_logs[:3]}"
    for name, text in result["texts"].items():
        assert not leaks(text), name
    leaked_events = [repr(e)[:200] for e in events if leaks(repr(e))]
    assert not leaked_events, leaked_events
    recorded = capture.read_bytes()
    assert b">" in recorded and b'"level3"' in recorded  # requests and frames were written
    assert not leaks(recorded.decode("utf-8", "replace")), "secret in the recorder's capture"
    assert not [f for f in raw_frames if leaks(f.decode("utf-8", "replace"))], "token echoed"


def test_server_side_logs_of_the_simulator(debug_logs: Records) -> None:
    """The simulator's own DEBUG logs (server side, the websockets.server logger) may show
    what clients send; this documents where: only there."""
    with_tokens: list[str] = []

    async def main() -> None:
        async with (
            Simulator(seed=32, rate=100) as sim,
            KrakenFeed(
                level3=["BTC/USD"],
                url=sim.url_v2,
                level3_url=sim.url_level3,
                rest_url=sim.rest_url,
                api_key=sim.api_key,
                api_secret=sim.api_secret,
                on_send=lambda _, request: with_tokens.append(request),
                **FAST,
            ) as feed,
        ):
            await feed.wait_connected(10)
            await asyncio.sleep(0.3)

    run(main())
    tokens = {json.loads(r)["params"].get("token") for r in with_tokens if '"token"' in r}
    tokens.discard(None)
    assert tokens
    leaking = {n for n, t in debug_logs.lines if any(tok in t for tok in tokens)}
    assert leaking <= {"websockets.server"}, leaking


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _tls_context(cert_key: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, cert_key))
    return context


def test_wss_with_an_untrusted_certificate_is_refused(self_signed: tuple[Path, Path]) -> None:
    """A wss:// server with a self-signed certificate: the feed never opens a connection and
    reports the certificate failure (ConnectionLost) within seconds, retrying as usual."""
    from websockets.asyncio.server import serve

    async def main() -> list[Event]:
        async def handler(ws: Any) -> None:
            await ws.recv()

        seen: list[Event] = []
        async with serve(handler, "127.0.0.1", 0, ssl=_tls_context(self_signed)) as server:
            port = server.sockets[0].getsockname()[1]
            feed = KrakenFeed(book=["BTC/USD"], url=f"wss://127.0.0.1:{port}/v2", **FAST)
            started = time.monotonic()
            async with feed:
                while not any(isinstance(e, ConnectionLost) for e in seen):
                    assert time.monotonic() - started < 10, "no error within 10 s"
                    seen.append(await asyncio.wait_for(feed.__anext__(), 10))
        return seen

    seen = run(main())
    assert not any(isinstance(e, ConnectionOpened | BookChanged) for e in seen)
    lost = [e for e in seen if isinstance(e, ConnectionLost)]
    assert "CERTIFICATE_VERIFY_FAILED" in lost[0].reason or "certificate" in lost[0].reason


def test_feed_passes_no_ssl_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed lets websockets build its default (verifying) context for wss:// URLs."""
    import websockets.asyncio.client as client

    calls: list[tuple[str, dict[str, Any]]] = []

    class Stop(OSError):
        pass

    def fake_connect(url: str, **kwargs: Any) -> Any:
        calls.append((url, kwargs))
        raise Stop("stop here")

    monkeypatch.setattr(client, "connect", fake_connect)

    async def main() -> None:
        async with KrakenFeed(book=["BTC/USD"], **FAST) as feed:
            while not calls:
                await asyncio.sleep(0.01)
            await asyncio.wait_for(feed.__anext__(), 5)

    run(main(), 10)
    url, kwargs = calls[0]
    assert url.startswith("wss://")
    context = kwargs.get("ssl")
    assert (
        context is None
        or context is True
        or (
            isinstance(context, ssl.SSLContext)
            and context.verify_mode == ssl.CERT_REQUIRED
            and context.check_hostname
        )
    ), kwargs
    assert "server_hostname" not in kwargs or kwargs["server_hostname"]


def test_https_token_fetch_verifies_the_certificate(self_signed: tuple[Path, Path]) -> None:
    """fetch_token against an https server with a self-signed certificate: TokenError naming
    the certificate, at once (the handler would answer a token if it were ever reached)."""
    reached: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            reached.append(self.path)
            body = b'{"error":[],"result":{"token":"abcdefgh12345678","expires":900}}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = _tls_context(self_signed).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        started = time.monotonic()
        with pytest.raises(TokenError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            fetch_token(url, "key", "c2VjcmV0c2VjcmV0", timeout=5)
        assert time.monotonic() - started < 5
        assert not reached
    finally:
        server.shutdown()
        server.server_close()


# -- bad credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "secret", "match"),
    [
        ("unknown-key", None, "token refused"),
        (None, "this is not base64!", "credentials unusable"),
        (None, "d3JvbmcgYnV0IHZhbGlkIGJhc2U2NA==", "token refused"),
    ],
    ids=["bad-key", "secret-not-base64", "wrong-secret"],
)
def test_bad_level3_credentials_fail_fast_and_quietly(
    key: str | None, secret: str | None, match: str, debug_logs: Records
) -> None:
    async def main() -> tuple[FeedError, float, str]:
        async with Simulator(seed=33, rate=50) as sim:
            api_secret = secret or sim.api_secret
            feed = KrakenFeed(
                level3=["BTC/USD"],
                url=sim.url_v2,
                level3_url=sim.url_level3,
                rest_url=sim.rest_url,
                api_key=key or sim.api_key,
                api_secret=api_secret,
                **FAST,
            )
            started = time.monotonic()
            async with feed:
                with pytest.raises(FeedError, match=match) as info:
                    while True:
                        await asyncio.wait_for(feed.__anext__(), 5)
            return info.value, time.monotonic() - started, api_secret

    error, elapsed, api_secret = run(main())
    assert elapsed < 5, elapsed
    for text in (str(error), repr(error), repr(error.__cause__), repr(error.__context__)):
        assert api_secret not in text
    assert not [t for _, t in debug_logs.lines if api_secret in t]


def test_websockets_debug_logs_show_no_piece_of_a_token(debug_logs: Records) -> None:
    """With DEBUG logging the ``websockets.client`` logger printed every frame the feed sent,
    shortened to its first and last characters: for a level3 subscribe
    (``{"method":"subscribe","params":{...,"token":"<43 chars>"},"req_id":1}``) the last ~9
    characters of the token landed in the log (fixed in b2ad9bd: the feed never logs frames).
    No 8-character piece of a token may appear in a client-side log record."""
    sent: list[str] = []

    async def main() -> None:
        async with (
            Simulator(seed=34, rate=100) as sim,
            KrakenFeed(
                level3=["BTC/USD"],
                url=sim.url_v2,
                level3_url=sim.url_level3,
                rest_url=sim.rest_url,
                api_key=sim.api_key,
                api_secret=sim.api_secret,
                on_send=lambda _, request: sent.append(request),
                **FAST,
            ) as feed,
        ):
            await feed.wait_connected(10)
            await asyncio.sleep(0.3)

    run(main())
    tokens = {json.loads(r)["params"].get("token") for r in sent if '"token"' in r}
    tokens.discard(None)
    assert tokens
    pieces = {tok[i : i + 8] for tok in tokens for i in range(len(tok) - 7)}
    client = [(n, t) for n, t in debug_logs.lines if not n.startswith("websockets.server")]
    leaked = [(n, t[:200]) for n, t in client if any(p in t for p in pieces)]
    assert not leaked, f"token pieces in client DEBUG logs: {leaked[:2]}"
