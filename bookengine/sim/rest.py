"""The simulator's REST side: ``POST /0/private/GetWebSocketsToken``, signed like Kraken's.

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
from collections.abc import Callable
from typing import Any

from ..auth import TOKEN_PATH, verify

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


class RestServer:
    """The HTTP/1.1 listener that serves a :class:`TokenIssuer` on a loopback port."""

    def __init__(self, issuer: TokenIssuer, host: str, port: int) -> None:
        self.issuer = issuer
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
