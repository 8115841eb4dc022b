"""Valid tokens for the rooms the tests start: one HS256 secret, a subject, roles.

    env = {**env, "NOTIFIER_JWT_SECRET": SECRET}   # a room that trusts the tests' tokens
    token("alice")                                 # a bearer token of user alice
    bearer("producer-1", "notifier_produce")       # {"Authorization": "Bearer <token>"} of a producer

Hostile tokens (lenient claims, odd encodings) are `tests.common.hostile_tokens`.
"""

from __future__ import annotations

from workers.common.runtime.auth import mint_token

SECRET = "notifier-tests-secret-" + "0123456789abcdef" * 3


def token(sub: str, *roles: str, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return mint_token(secret=secret, sub=sub, roles=roles, algorithm=algorithm)


def bearer(sub: str, *roles: str, secret: str = SECRET, algorithm: str = "HS256") -> dict[str, str]:
    """The Authorization header of `token(sub, *roles)`."""
    return {"Authorization": f"Bearer {token(sub, *roles, secret=secret, algorithm=algorithm)}"}
