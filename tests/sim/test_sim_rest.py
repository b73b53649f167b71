"""The simulator's GetWebSocketsToken endpoint: Kraken's signature, nonce and key checks."""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from typing import Any

import pytest

from bookengine.auth import TOKEN_PATH, TokenError, fetch_token, sign
from bookengine.sim import Simulator
from bookengine.sim.rest import TokenIssuer

from .helpers import run

SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="


def _post(url: str, path: str, headers: dict[str, str], body: bytes, method: str = "POST") -> Any:
    request = urllib.request.Request(url + path, data=body or None, headers=headers, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def _signed(key: str, secret: str, nonce: int, form: bool = True) -> tuple[dict[str, str], bytes]:
    if form:
        body = f"nonce={nonce}".encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        body = json.dumps({"nonce": nonce}).encode()
        content_type = "application/json"
    headers = {
        "API-Key": key,
        "API-Sign": sign(secret, TOKEN_PATH, nonce, body),
        "Content-Type": content_type,
    }
    return headers, body


def test_token_endpoint_over_http() -> None:
    async def body() -> None:
        async with Simulator(symbols=["BTC/USD"], rate=1, api_key="KEY", api_secret=SECRET) as sim:
            url = sim.rest_url
            call = asyncio.to_thread

            status, answer = await call(_post, url, TOKEN_PATH, *_signed("KEY", SECRET, 100))
            assert status == 200 and answer["error"] == []
            assert answer["result"]["expires"] == 900
            assert (
                isinstance(answer["result"]["token"], str) and len(answer["result"]["token"]) > 20
            )

            # The same request again: a replayed nonce.
            status, answer = await call(_post, url, TOKEN_PATH, *_signed("KEY", SECRET, 100))
            assert answer == {"error": ["EAPI:Invalid nonce"]}
            # A lower nonce.
            status, answer = await call(_post, url, TOKEN_PATH, *_signed("KEY", SECRET, 99))
            assert answer == {"error": ["EAPI:Invalid nonce"]}
            # JSON body, higher nonce: accepted.
            _, answer = await call(_post, url, TOKEN_PATH, *_signed("KEY", SECRET, 101, False))
            assert answer["error"] == [] and answer["result"]["token"]

            # Signed with another secret.
            other = "A" * 86 + "=="
            _, answer = await call(_post, url, TOKEN_PATH, *_signed("KEY", other, 102))
            assert answer == {"error": ["EAPI:Invalid signature"]}
            # The body changed after signing.
            headers, _ = _signed("KEY", SECRET, 103)
            _, answer = await call(_post, url, TOKEN_PATH, headers, b"nonce=104")
            assert answer == {"error": ["EAPI:Invalid signature"]}
            # The bad signatures did not consume nonces: 103 is still fresh.
            _, answer = await call(_post, url, TOKEN_PATH, *_signed("KEY", SECRET, 103))
            assert answer["error"] == []

            # Unknown key.
            _, answer = await call(_post, url, TOKEN_PATH, *_signed("NOPE", SECRET, 200))
            assert answer == {"error": ["EAPI:Invalid key"]}
            # No nonce at all.
            headers = {"API-Key": "KEY", "API-Sign": sign(SECRET, TOKEN_PATH, "", b"x=1")}
            _, answer = await call(_post, url, TOKEN_PATH, headers, b"x=1")
            assert answer == {"error": ["EAPI:Invalid nonce"]}

            status, answer = await call(
                _post, url, "/0/private/Balance", *_signed("KEY", SECRET, 300)
            )
            assert status == 404 and answer["error"]
            status, answer = await call(_post, url, TOKEN_PATH, {}, b"", "GET")
            assert status == 405 and answer["error"]
            assert sim._issuer.issued == 3

    run(body())


def test_fetch_token_client_against_the_simulator() -> None:
    async def body() -> None:
        async with Simulator(symbols=["BTC/USD"], rate=1) as sim:
            token = await asyncio.to_thread(fetch_token, sim.rest_url, sim.api_key, sim.api_secret)
            assert sim._issuer.token_valid(token)
            with pytest.raises(TokenError) as info:
                await asyncio.to_thread(fetch_token, sim.rest_url, "bad", sim.api_secret)
            assert info.value.errors == ["EAPI:Invalid key"]
            with pytest.raises(TokenError) as info:
                await asyncio.to_thread(fetch_token, sim.rest_url, sim.api_key, sim.api_secret, 1)
            assert info.value.errors == ["EAPI:Invalid nonce"]

    run(body())


def test_tokens_expire_after_15_minutes() -> None:
    now = [1000.0]
    issuer = TokenIssuer({"K": SECRET}, random.Random(1), clock=lambda: now[0])
    answer = issuer.get_token("K", sign(SECRET, TOKEN_PATH, 5, b"nonce=5"), "", b"nonce=5")
    token = answer["result"]["token"]
    assert issuer.token_valid(token)
    now[0] += 899.0
    assert issuer.token_valid(token)
    now[0] += 1.0
    assert not issuer.token_valid(token)
    assert not issuer.token_valid("made-up")
    assert not issuer.token_valid(None)


def test_nonce_must_fit_uint64() -> None:
    issuer = TokenIssuer({"K": SECRET}, random.Random(1))
    nonce = 1 << 64
    body = f"nonce={nonce}".encode()
    answer = issuer.get_token("K", sign(SECRET, TOKEN_PATH, nonce, body), "", body)
    assert answer == {"error": ["EAPI:Invalid nonce"]}
