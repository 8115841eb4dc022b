"""`notifier token`: mint a bearer token with the configured secret, for local use."""

from __future__ import annotations

from typing import Annotated

import typer

from workers.common.clikit import fail, out
from workers.common.contract.keys import ID_PATTERN, is_valid_id
from workers.common.runtime.auth import mint_token
from workers.common.runtime.settings import AuthSettings


def token(
    sub: Annotated[str, typer.Option("--sub", help="The caller: a user or producer id.")],
    role: Annotated[list[str] | None, typer.Option("--role", help="A role to grant; repeat for several.")] = None,
    ttl: Annotated[float, typer.Option("--ttl", help="Lifetime in seconds.", min=1)] = 3600.0,
    algorithm: Annotated[str, typer.Option("--algorithm", help="HS256 or HS512.")] = "HS256",
) -> None:
    """Print a signed JWT for SUB with the given roles (uses NOTIFIER_JWT_SECRET)."""
    if not is_valid_id(sub):
        raise fail(f"--sub must match {ID_PATTERN}", code=2)
    if algorithm not in ("HS256", "HS512"):
        raise fail("--algorithm must be HS256 or HS512", code=2)
    settings = AuthSettings()
    out.print(
        mint_token(
            secret=settings.jwt_secret,
            sub=sub,
            roles=role or [],
            ttl_s=ttl,
            algorithm=algorithm,
            roles_claim=settings.jwt_roles_claim,
        ),
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command("token")(token)
