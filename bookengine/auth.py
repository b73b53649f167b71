"""Kraken REST request signing and the ``GetWebSocketsToken`` call that level3 needs.

Kraken rule (REST authentication)::

    API-Sign = base64(HMAC-SHA512(key=base64decode(private_key),
                                  msg=uri_path + SHA256(nonce + post_data)))

where ``uri_path`` is the path from ``/0/private`` on, ``SHA256`` is the raw 32-byte digest and
``post_data`` is exactly the body sent (url-encoded form or JSON text). The nonce must strictly
increase per API key.

The simulator (:mod:`bookengine.sim`) verifies signatures with the same functions, so a client
tested against it signs the way Kraken expects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .errors import BookError

TOKEN_PATH = "/0/private/GetWebSocketsToken"
"""URI path of the REST call that returns a WebSocket token."""

KRAKEN_REST_URL = "https://api.kraken.com"
"""Kraken's REST base URL."""

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class TokenError(BookError):
    """The token endpoint refused the request or answered something unreadable.

    ``errors`` holds Kraken's error strings (e.g. ``["EAPI:Invalid nonce"]``), empty when the
    failure was at the HTTP or JSON level.
    """

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _decode_key(private_key_b64: str) -> bytes:
    try:
        return base64.b64decode(private_key_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"private key is not valid base64: {exc}") from None


def sign(private_key_b64: str, uri_path: str, nonce: str | int, post_data: str | bytes) -> str:
    """Compute Kraken's ``API-Sign`` header for one private REST request.

    Args:
        private_key_b64: the API secret as Kraken shows it (base64).
        uri_path: the request path from ``/0/private`` on, e.g. ``/0/private/AddOrder``.
        nonce: the nonce sent in the body (its decimal text is hashed).
        post_data: the exact body bytes (or text, UTF-8 encoded) that are sent.

    Returns:
        The base64 signature.

    Raises:
        ValueError: the private key is not base64.
    """
    nonce_bytes = str(nonce).encode("ascii")
    digest = hashlib.sha256(nonce_bytes + _as_bytes(post_data)).digest()
    mac = hmac.new(_decode_key(private_key_b64), uri_path.encode("utf-8") + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode("ascii")


def verify(
    private_key_b64: str,
    uri_path: str,
    nonce: str | int,
    post_data: str | bytes,
    api_sign: str,
) -> bool:
    """True when ``api_sign`` is the signature :func:`sign` gives (constant-time compare)."""
    try:
        expected = sign(private_key_b64, uri_path, nonce, post_data)
    except ValueError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), api_sign.encode("utf-8", "replace"))


_nonce_lock = threading.Lock()
_last_nonce = 0
_request_lock = threading.Lock()
"""Held from a request's nonce to its answer: Kraken wants each nonce above the last one it
*received* for the key, so two requests of this process must not overtake each other."""


def next_nonce() -> int:
    """A strictly increasing nonce: Unix time in ms, bumped by one when called twice in one ms."""
    global _last_nonce
    with _nonce_lock:
        _last_nonce = max(_last_nonce + 1, time.time_ns() // 1_000_000)
        return _last_nonce


def fetch_token(
    rest_url: str,
    api_key: str,
    api_secret: str,
    nonce: int | None = None,
    timeout: float = 10.0,
) -> str:
    """Call ``POST /0/private/GetWebSocketsToken`` and return the token (blocking, urllib).

    Args:
        rest_url: base URL, e.g. ``https://api.kraken.com`` or the simulator's ``rest_url``.
        api_key: the public API key (``API-Key`` header).
        api_secret: the base64 private key used to sign.
        nonce: the nonce to send; default :func:`next_nonce`.
        timeout: socket timeout in seconds.

    Returns:
        The token string; use it within 15 minutes in a level3 subscribe.

    Requests of this process go one at a time (see ``_request_lock``).

    Raises:
        TokenError: Kraken answered with errors, or the answer was not a token.
    """
    with _request_lock:
        return _fetch_token(rest_url, api_key, api_secret, nonce, timeout)


def _fetch_token(
    rest_url: str, api_key: str, api_secret: str, nonce: int | None, timeout: float
) -> str:
    nonce_value = next_nonce() if nonce is None else nonce
    body = urllib.parse.urlencode({"nonce": nonce_value}).encode("ascii")
    headers = {
        "API-Key": api_key,
        "API-Sign": sign(api_secret, TOKEN_PATH, nonce_value, body),
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    }
    url = rest_url.rstrip("/") + TOKEN_PATH
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    host = urllib.parse.urlsplit(url).hostname or ""
    # A proxy configured for the internet must not swallow calls to a local simulator.
    handlers = [urllib.request.ProxyHandler({})] if host in _LOOPBACK_HOSTS else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        exc.close()
        if not raw:
            raise TokenError(f"GetWebSocketsToken: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TokenError(f"GetWebSocketsToken: {exc}") from None
    return _token_from_answer(raw)


def _token_from_answer(raw: bytes) -> str:
    try:
        answer: Any = json.loads(raw)
    except ValueError:
        raise TokenError(f"GetWebSocketsToken: not JSON: {raw[:80]!r}") from None
    if not isinstance(answer, dict):
        raise TokenError("GetWebSocketsToken: answer is not an object")
    errors = answer.get("error") or []
    if errors:
        texts = [str(e) for e in errors] if isinstance(errors, list) else [str(errors)]
        raise TokenError(f"GetWebSocketsToken: {', '.join(texts)}", texts)
    result = answer.get("result")
    token = result.get("token") if isinstance(result, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenError("GetWebSocketsToken: answer has no result.token")
    return token
