"""Verified bearer tokens, remembered until they expire: producers and devices repeat the same token on
every request, and verifying a signature costs more than the rest of a small request."""

from __future__ import annotations

import base64
import binascii
import json
import time

from workers.common.runtime.auth import InvalidToken, Principal, TokenVerifier

MAX_REMEMBERED = 10_000
REMEMBER_AT_MOST_S = 300.0


def _expiry(token: str) -> float:
    """The `exp` claim of a token whose signature was already verified."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidToken(f"malformed token: {exc}") from None


class CachingVerifier:
    def __init__(self, verifier: TokenVerifier, *, size: int = MAX_REMEMBERED) -> None:
        self.verifier = verifier
        self.size = size
        self._known: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        now = time.time()
        known = self._known.get(token)
        if known is not None:
            principal, until = known
            if now < until:
                return principal
            del self._known[token]
        principal = self.verifier.verify(token)
        if len(self._known) >= self.size:
            self._known.clear()
        self._known[token] = (principal, min(_expiry(token), now + REMEMBER_AT_MOST_S))
        return principal
