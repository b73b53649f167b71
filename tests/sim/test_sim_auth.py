"""REST signing: Kraken's documented vector, verify, and the token client's error handling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from typing import Any

import pytest

from bookengine.auth import TokenError, _token_from_answer, next_nonce, sign, verify


def test_sign_reproduces_krakens_documented_example(signature_example: dict[str, Any]) -> None:
    ex = signature_example
    assert (
        sign(ex["private_key"], ex["uri_path"], ex["nonce"], ex["post_data"])
        == ex["expected_api_sign"]
    )


def test_sign_accepts_int_nonce_and_bytes_body(signature_example: dict[str, Any]) -> None:
    ex = signature_example
    signature = sign(
        ex["private_key"], ex["uri_path"], int(ex["nonce"]), ex["post_data"].encode("ascii")
    )
    assert signature == ex["expected_api_sign"]


def test_sign_matches_the_formula_written_out() -> None:
    secret = base64.b64encode(bytes(range(64))).decode()
    body = '{"nonce": 42}'
    message = b"/0/private/GetWebSocketsToken" + hashlib.sha256(b"42" + body.encode()).digest()
    expected = base64.b64encode(
        hmac.new(bytes(range(64)), message, hashlib.sha512).digest()
    ).decode()
    assert sign(secret, "/0/private/GetWebSocketsToken", 42, body) == expected


def test_verify_accepts_only_the_exact_request(signature_example: dict[str, Any]) -> None:
    ex = signature_example
    args = (ex["private_key"], ex["uri_path"], ex["nonce"], ex["post_data"])
    assert verify(*args, ex["expected_api_sign"])
    assert not verify(*args, ex["expected_api_sign"][:-3] + "AA==")
    assert not verify(
        ex["private_key"],
        ex["uri_path"],
        ex["nonce"],
        ex["post_data"] + "&x=1",
        ex["expected_api_sign"],
    )
    assert not verify(
        ex["private_key"], ex["uri_path"], "1616492376595", ex["post_data"], ex["expected_api_sign"]
    )
    assert not verify(
        ex["private_key"],
        "/0/private/Balance",
        ex["nonce"],
        ex["post_data"],
        ex["expected_api_sign"],
    )
    assert not verify("not base64!", ex["uri_path"], ex["nonce"], ex["post_data"], "x")


def test_sign_rejects_a_key_that_is_not_base64() -> None:
    with pytest.raises(ValueError):
        sign("@@@", "/0/private/GetWebSocketsToken", 1, "nonce=1")


def test_next_nonce_strictly_increases() -> None:
    nonces = [next_nonce() for _ in range(1000)]
    assert all(b > a for a, b in itertools.pairwise(nonces))


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        (b'{"error":["EAPI:Invalid nonce"]}', ["EAPI:Invalid nonce"]),
        (b'{"error":[],"result":{}}', []),
        (b"<html>", []),
        (b"[1]", []),
    ],
)
def test_token_answer_errors_raise(raw: bytes, errors: list[str]) -> None:
    with pytest.raises(TokenError) as info:
        _token_from_answer(raw)
    assert info.value.errors == errors


def test_token_answer_returns_the_token() -> None:
    raw = b'{"error":[],"result":{"token":"abc","expires":900}}'
    assert _token_from_answer(raw) == "abc"
