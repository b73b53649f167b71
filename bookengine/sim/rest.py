"""The simulator's REST side: Kraken's public market data and ``GetWebSocketsToken``.

* ``GET`` (or ``POST``) ``/0/public/AssetPairs`` (``?pair=`` comma list of v2 names, wsnames,
  altnames or ids), ``/0/public/Assets`` (``?asset=``), ``/0/public/Time`` and
  ``/0/public/SystemStatus``: :class:`PublicApi`, values from :mod:`.catalog`;
* ``POST /0/private/GetWebSocketsToken``, signed like Kraken's: :class:`TokenIssuer`.

Answers use Kraken's envelope, ``{"error": [], "result": {...}}``, with HTTP 200 also for errors
(``{"error": ["EQuery:Unknown asset pair"]}``).

``websockets`` only parses GET upgrade requests (a body is refused), so the token endpoint is a
tiny HTTP/1.1 server of its own, on a second loopback port of the same simulator. It answers
one request per connection (``Connection: close``), which is all ``urllib`` and most REST
clients need.

Checks, in Kraken's order: ``API-Key`` known (else ``EAPI:Invalid key``), ``API-Sign`` equal to
:func:`bookengine.auth.sign` over the exact body (else ``EAPI:Invalid signature``), nonce an
unsigned 64-bit integer strictly above the key's previous one (else ``EAPI:Invalid nonce``).
Errors come back with HTTP 200 and ``{"error": [...]}``, as Kraken does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from ..auth import TOKEN_PATH, verify
from .catalog import UnknownName, asset_pairs, assets
from .specs import SymbolSpec
from .wire import rfc3339

TOKEN_EXPIRES_S = 900
"""A token must be used within 15 minutes."""

_MAX_HEADER_BYTES = 16_384
_MAX_BODY_BYTES = 65_536
_READ_TIMEOUT_S = 10.0
_UINT64_MAX = (1 << 64) - 1


def _token_text(rng: random.Random) -> str:
    # Kraken tokens look like 32 random bytes in base64 without padding (43 characters).
    return base64.b64encode(rng.getrandbits(256).to_bytes(32, "big")).decode("ascii").rstrip("=")


class TokenIssuer:
    """API keys, their nonces, and the WebSocket tokens issued to them. No I/O.

    Args:
        credentials: API key -> base64 private key.
        rng: source of token text (seeded: runs are reproducible).
        clock: monotonic seconds, for token expiry.
    """

    def __init__(
        self,
        credentials: dict[str, str],
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = dict(credentials)
        self._rng = rng
        self._clock = clock
        self._last_nonce: dict[str, int] = {}
        self._tokens: dict[str, float] = {}
        self.issued = 0
        """Tokens issued so far."""

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        """Answer one HTTP request: (status code, JSON-able body).

        Args:
            headers: header names lower-cased.
        """
        if path.split("?", 1)[0] != TOKEN_PATH:
            return 404, {"error": ["EGeneral:Unknown method"]}
        if method != "POST":
            return 405, {"error": ["EGeneral:Invalid arguments"]}
        return 200, self.get_token(
            headers.get("api-key", ""),
            headers.get("api-sign", ""),
            headers.get("content-type", ""),
            body,
        )

    def get_token(
        self, api_key: str, api_sign: str, content_type: str, body: bytes
    ) -> dict[str, Any]:
        """The ``GetWebSocketsToken`` answer for one signed request."""
        secret = self._credentials.get(api_key)
        if secret is None:
            return {"error": ["EAPI:Invalid key"]}
        nonce_text = _nonce_text(content_type, body)
        if nonce_text is None or not verify(secret, TOKEN_PATH, nonce_text, body, api_sign):
            # Without a readable nonce the signature cannot be checked either.
            return {
                "error": [
                    "EAPI:Invalid signature" if nonce_text is not None else "EAPI:Invalid nonce"
                ]
            }
        nonce = int(nonce_text)
        if nonce > _UINT64_MAX or nonce <= self._last_nonce.get(api_key, 0):
            return {"error": ["EAPI:Invalid nonce"]}
        self._last_nonce[api_key] = nonce
        token = _token_text(self._rng)
        self._tokens[token] = self._clock() + TOKEN_EXPIRES_S
        self.issued += 1
        return {"error": [], "result": {"token": token, "expires": TOKEN_EXPIRES_S}}

    def token_valid(self, token: object) -> bool:
        """True for a token this issuer gave out less than 15 minutes ago."""
        if not isinstance(token, str):
            return False
        expiry = self._tokens.get(token)
        return expiry is not None and self._clock() < expiry


def _nonce_text(content_type: str, body: bytes) -> str | None:
    """The nonce as sent (decimal digits), from a form or JSON body; None if absent or bad."""
    value: Any
    if "json" in content_type.lower():
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        value = parsed.get("nonce") if isinstance(parsed, dict) else None
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            value = str(value)
    else:
        try:
            form = urllib.parse.parse_qs(body.decode("ascii"), strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            return None
        values = form.get("nonce")
        value = values[0] if values and len(values) == 1 else None
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    return value


PUBLIC_PREFIX = "/0/public/"
_SYSTEM_STATUS = {"online", "maintenance", "cancel_only", "post_only"}


class PublicApi:
    """Kraken's public REST endpoints over the simulator's instruments. No I/O.

    Args:
        specs: the simulated pairs (the same the ``instrument`` channel lists).
        system: returns the current system state (``online``, ``maintenance``, ...).
        clock_ns: wall clock in ns (``Time``).
    """

    def __init__(
        self,
        specs: Sequence[SymbolSpec],
        system: Callable[[], str],
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.specs = list(specs)
        self._system = system
        self._clock_ns = clock_ns
        self._changed_ns = clock_ns()
        self._last_system = system()

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """Answer one ``/0/public/...`` request: (status code, JSON-able body)."""
        route, _, query = path.partition("?")
        if method not in ("GET", "POST"):
            return 405, {"error": ["EGeneral:Invalid arguments"]}
        try:
            params = urllib.parse.parse_qs(query, keep_blank_values=True)
            if method == "POST" and body:
                params.update(urllib.parse.parse_qs(body.decode("ascii"), keep_blank_values=True))
        except (ValueError, UnicodeDecodeError):
            return 200, {"error": ["EGeneral:Invalid arguments"]}

        def one(name: str) -> str | None:
            values = params.get(name)
            return None if not values else ",".join(values)

        name = route[len(PUBLIC_PREFIX) :]
        try:
            if name == "AssetPairs":
                result: Any = asset_pairs(self.specs, self._system(), one("pair"))
            elif name == "Assets":
                result = assets(self.specs, one("asset"))
            elif name == "Time":
                now_ns = self._clock_ns()
                seconds = now_ns // 1_000_000_000
                result = {
                    "unixtime": seconds,
                    "rfc1123": time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(seconds)),
                }
            elif name == "SystemStatus":
                result = self.system_status()
            else:
                return 404, {"error": ["EGeneral:Unknown method"]}
        except UnknownName as exc:
            return 200, {"error": [str(exc)]}
        return 200, {"error": [], "result": result}

    def system_status(self) -> dict[str, str]:
        """``{"status": "online", "timestamp": ...}``: the state and when it last changed."""
        system = self._system()
        if system != self._last_system:
            self._last_system = system
            self._changed_ns = self._clock_ns()
        status = system if system in _SYSTEM_STATUS else "maintenance"
        return {"status": status, "timestamp": rfc3339(self._changed_ns, 0)}


class RestServer:
    """The HTTP/1.1 listener that serves a :class:`TokenIssuer` and a :class:`PublicApi`."""

    def __init__(
        self, issuer: TokenIssuer, host: str, port: int, public: PublicApi | None = None
    ) -> None:
        self.issuer = issuer
        self.public = public
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.requests = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("REST server not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self._host, self._port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await asyncio.wait_for(self._serve_one(reader, writer), _READ_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            await _respond(writer, 431, {"error": ["EGeneral:Invalid arguments"]})
            return
        if len(head) > _MAX_HEADER_BYTES:
            await _respond(writer, 431, {"error": ["EGeneral:Invalid arguments"]})
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await _respond(writer, 400, {"error": ["EGeneral:Invalid arguments"]})
            return
        method, path = parts[0], parts[1]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                await _respond(writer, 400, {"error": ["EGeneral:Invalid arguments"]})
                return
            headers[name.strip().lower()] = value.strip()
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit() or int(length_text) > _MAX_BODY_BYTES:
            await _respond(writer, 413, {"error": ["EGeneral:Invalid arguments"]})
            return
        body = await reader.readexactly(int(length_text))
        self.requests += 1
        if self.public is not None and path.startswith(PUBLIC_PREFIX):
            status, answer = self.public.handle(method, path, body)
        else:
            status, answer = self.issuer.handle(method, path, headers, body)
        await _respond(writer, status, answer)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
}


async def _respond(writer: asyncio.StreamWriter, status: int, answer: Any) -> None:
    body = json.dumps(answer, separators=(",", ":")).encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode("ascii") + body)
    await writer.drain()
