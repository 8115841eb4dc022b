"""Bearer tokens: verification for core and ws_delivery, minting for local use (`notifier token`).

HS256 and HS512 with the shared secret, RS256 with a public key when one is configured. `exp` and `sub`
are required; `alg: none` is refused. Roles come from a configurable claim path (default
`realm_access.roles`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import jwt

from workers.common.errors import PermanentError
from workers.common.keys import is_valid_id
from workers.common.settings import AuthSettings

HMAC_ALGORITHMS = ("HS256", "HS512")


class InvalidToken(PermanentError):
    """Missing, malformed, expired or wrongly signed token (HTTP 401)."""


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles


class TokenVerifier:
    def __init__(self, *, secret: str, public_key: str = "", roles_claim: str = "realm_access.roles") -> None:
        self._secret = secret
        self._public_key = public_key
        self._roles_path = [p for p in roles_claim.split(".") if p]

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> TokenVerifier:
        return cls(secret=settings.jwt_secret, public_key=settings.jwt_public_key, roles_claim=settings.jwt_roles_claim)

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if alg in HMAC_ALGORITHMS:
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
        sub = claims["sub"]
        if not isinstance(sub, str) or not is_valid_id(sub):
            raise InvalidToken("token subject is not a valid id")
        return Principal(sub=sub, roles=frozenset(self._roles(claims)))

    def _roles(self, claims: dict[str, object]) -> list[str]:
        node: object = claims
        for part in self._roles_path:
            if not isinstance(node, dict):
                return []
            node = node.get(part)
        if not isinstance(node, list):
            return []
        return [r for r in node if isinstance(r, str)]


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
