"""Tokens signed with the right key whose claims or encoding are lenient: each must be refused (401)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims: dict[str, object], key: bytes, *, pad: bool = False) -> str:
    """An HS256 token built by hand (PyJWT refuses an empty key); `pad` keeps the `=` of the payload."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
    if not pad:
        payload = payload.rstrip("=")
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _spare_bits_set(token: str) -> str:
    """The same signature bytes, the last character with its unused low bits set (32 bytes: 2 spare bits)."""
    head, _, signature = token.rpartition(".")
    return f"{head}.{signature[:-1]}{ALPHABET[ALPHABET.index(signature[-1]) | 0b11]}"


def lenient_tokens(secret: str, *, sub: str = "mallory") -> dict[str, str]:
    """Name -> a token each server holding `secret` must refuse."""
    now = int(time.time())
    key = secret.encode()
    valid = jwt.encode({"sub": sub, "exp": now + 60}, secret, algorithm="HS256")
    odd_payload = {"sub": sub, "exp": now + 60, "x": "a"}  # grown until its base64 needs padding
    while len(json.dumps(odd_payload)) % 3 == 0:
        odd_payload["x"] += "a"
    return {
        "exp-as-string": hs256({"sub": sub, "exp": str(now + 60)}, key),
        "exp-never": hs256({"sub": sub, "exp": 1e30}, key),
        "exp-past-max-lifetime": hs256({"sub": sub, "exp": now + 30 * 86_400}, key),
        "exp-as-bool": hs256({"sub": sub, "exp": True}, key),
        "iat-as-string": hs256({"sub": sub, "exp": now + 60, "iat": str(now)}, key),
        "sub-as-number": hs256({"sub": 7, "exp": now + 60}, key),
        "signature-padded": valid + "=",
        "payload-padded": hs256(odd_payload, key, pad=True),
        "signature-spare-bits": _spare_bits_set(valid),
        "empty-key": hs256({"sub": sub, "exp": now + 60}, b""),
    }
