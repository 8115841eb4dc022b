"""Bearer tokens: verification for core and ws_delivery, minting for local use (`notifier token`).

HS256 and HS512 with the shared secret (only when one is set), RS256 with a public key when one is
configured; `alg: none` is refused. Verification is strict, so a token means one thing only:

- each of the three parts is canonical base64url (no `=` padding, no stray bits): a token cannot be
  altered into another string that verifies the same;
- `sub` is a string id; `exp` is a JSON number (not a string, not a boolean) and at most
  `NOTIFIER_JWT_MAX_LIFETIME_S` ahead, so a token minted to live for ever (`exp: 1e30`) is refused;
- `iat` and `nbf`, when present, are numbers too.

Roles come from a configurable claim path (default `realm_access.roles`).
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import jwt

from workers.common.contract.errors import InvalidInput, PermanentError
from workers.common.contract.keys import is_valid_id
from workers.common.runtime.settings import AuthSettings

HMAC_ALGORITHMS = ("HS256", "HS512")
MAX_TOKEN_BYTES = 8192
"""Longer strings are refused before any decoding."""
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


class InvalidToken(PermanentError):
    """Missing, malformed, expired or wrongly signed token (HTTP 401)."""


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles


class Verifier(Protocol):
    def verify(self, token: str) -> Principal: ...


def bearer_principal(verifier: Verifier, authorization: str) -> Principal:
    """The caller named by an `Authorization: Bearer <JWT>` header; InvalidToken saying why otherwise. The one
    header parser of core and ws_delivery."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("missing bearer token")
    return verifier.verify(token.strip())


class TokenVerifier:
    def __init__(
        self,
        *,
        secret: str,
        public_key: str = "",
        roles_claim: str = "realm_access.roles",
        max_lifetime_s: float = 86_400.0,
    ) -> None:
        self._secret = secret
        self._public_key = public_key
        self._roles_path = [p for p in roles_claim.split(".") if p]
        self._max_lifetime_s = max_lifetime_s

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> TokenVerifier:
        return cls(
            secret=settings.jwt_secret,
            public_key=settings.jwt_public_key,
            roles_claim=settings.jwt_roles_claim,
            max_lifetime_s=settings.jwt_max_lifetime_s,
        )

    def verify(self, token: str) -> Principal:
        _require_canonical(token)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if alg in HMAC_ALGORITHMS and self._secret:
            key = self._secret
        elif alg == "RS256" and self._public_key:
            key = self._public_key
        else:
            raise InvalidToken(f"token algorithm {alg!r} is not accepted")
        try:
            claims = jwt.decode(token, key, algorithms=[alg], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from None
        self._check_times(claims)
        sub = claims["sub"]
        if not isinstance(sub, str) or not is_valid_id(sub):
            raise InvalidToken("token subject is not a valid id")
        return Principal(sub=sub, roles=frozenset(self._roles(claims)))

    def _check_times(self, claims: dict[str, object]) -> None:
        for name in ("exp", "iat", "nbf"):
            if name in claims and not _is_number(claims[name]):
                raise InvalidToken(f"token claim {name} is not a number")
        exp = claims["exp"]
        assert isinstance(exp, int | float)
        if exp > time.time() + self._max_lifetime_s:
            raise InvalidToken(f"token lives longer than {self._max_lifetime_s:.0f} s")

    def _roles(self, claims: dict[str, object]) -> list[str]:
        node: object = claims
        for part in self._roles_path:
            if not isinstance(node, dict):
                return []
            node = node.get(part)
        if not isinstance(node, list):
            return []
        return [r for r in node if isinstance(r, str)]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _require_canonical(token: str) -> None:
    """Three parts of canonical base64url: no padding, no other alphabet, no bits set past the data."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("malformed token: too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token: not three parts")
    for part in parts:
        if not _SEGMENT.fullmatch(part) or len(part) % 4 == 1:
            raise InvalidToken("malformed token: not base64url")
        decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") != part:
            raise InvalidToken("malformed token: not canonical base64url")


def mint_token(
    *,
    secret: str,
    sub: str,
    roles: Iterable[str] = (),
    ttl_s: float = 3600.0,
    algorithm: str = "HS256",
    roles_claim: str = "realm_access.roles",
) -> str:
    """A signed token for local use and tests."""
    if not secret:
        raise InvalidInput("no secret to sign with: set NOTIFIER_JWT_SECRET")
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "iat": now, "exp": now + max(1, int(ttl_s))}
    path = [p for p in roles_claim.split(".") if p]
    node = claims
    for part in path[:-1]:
        child: dict[str, object] = {}
        node[part] = child
        node = child
    if path:
        node[path[-1]] = list(roles)
    return jwt.encode(claims, secret, algorithm=algorithm)
