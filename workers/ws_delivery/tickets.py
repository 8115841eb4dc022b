"""Single-use WebSocket tickets in Redis: SET with an expiry at issue, GETDEL at use (so one use wins a race)."""

from __future__ import annotations

import re
import secrets

import redis.asyncio as aioredis

from workers.common.contract.keys import GatewayKeys

_TICKET = re.compile(r"^[A-Za-z0-9_-]{32}$")


async def issue(redis: aioredis.Redis, keys: GatewayKeys, *, user: str, ttl_s: float) -> str:
    ticket = secrets.token_urlsafe(24)
    await redis.set(keys.ticket(ticket), user, px=max(1, round(ttl_s * 1000)))
    return ticket


async def redeem(redis: aioredis.Redis, keys: GatewayKeys, ticket: str) -> str | None:
    """The user the ticket was issued to, or None for an unknown, used or expired ticket."""
    if not _TICKET.fullmatch(ticket):
        return None
    user = await redis.getdel(keys.ticket(ticket))
    if user is None:
        return None
    return user.decode() if isinstance(user, bytes) else str(user)
