"""Appending entries to users' pending lists, one round trip per batch, keeping the indexes right.

The write order is part of the bus protocol the puller relies on: first RPUSH the entries, then
`ZADD NX` the user into `due` (window close) and `pending_since` (oldest entry). A puller that finishes a
user removes it from both indexes *before* it looks at the pending list again, so an entry is always
either indexed or seen by that look. A user whose list reaches `max_items` is made due at once.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis

from workers.common.keys import BusKeys
from workers.common.mapping import StreamSettings


async def append_entries(
    redis: aioredis.Redis,
    *,
    keys: BusKeys,
    by_user: Mapping[str, list[str]],
    settings: StreamSettings,
    now_s: float,
) -> int:
    """Append each user's entries; returns the number of entries written."""
    if not by_user:
        return 0
    users = list(by_user)
    due_at = now_s + settings.window_s
    pipe = redis.pipeline(transaction=False)
    for user in users:
        pipe.rpush(keys.pending(user), *by_user[user])
    pipe.zadd(keys.due, dict.fromkeys(users, due_at), nx=True)
    pipe.zadd(keys.pending_since, dict.fromkeys(users, now_s), nx=True)
    lengths = (await pipe.execute())[: len(users)]
    full = [user for user, length in zip(users, lengths, strict=True) if int(length) >= settings.max_items]
    if full:
        await redis.zadd(keys.due, dict.fromkeys(full, now_s), lt=True)
    return sum(len(v) for v in by_user.values())
