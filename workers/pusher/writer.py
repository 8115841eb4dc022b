"""Appending entries to users' pending lists, one round trip per batch, keeping the indexes right.

The write order is part of the bus protocol the puller relies on: first RPUSH the entries, then
`ZADD NX` the user into `due` (window close) and `pending_since` (oldest entry). A puller that finishes a
user removes it from both indexes *before* it looks at the pending list again, so an entry is always
either indexed or seen by that look. A user whose list reaches `max_items` is made due at once.

Last in the same pipeline, each written event's key goes into `pushed` with its push time, and keys
older than the horizon are trimmed. A redelivered event whose key is there was written before (its ack
was lost), so it is acked without writing it twice; the order makes a key present only if every entry of
its event is, and an interrupted pipeline errs towards writing again, never towards losing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    pushed: Sequence[str] = (),
    horizon_s: float = 300.0,
) -> int:
    """Append each user's entries, then mark the `pushed` event keys; returns the number of entries written."""
    if not by_user:
        return 0
    users = list(by_user)
    due_at = now_s + settings.window_s
    pipe = redis.pipeline(transaction=False)
    for user in users:
        pipe.rpush(keys.pending(user), *by_user[user])
    pipe.zadd(keys.due, dict.fromkeys(users, due_at), nx=True)
    pipe.zadd(keys.pending_since, dict.fromkeys(users, now_s), nx=True)
    if pushed:
        now_ms = int(now_s * 1000)
        pipe.zadd(keys.pushed, dict.fromkeys(pushed, now_ms))
        pipe.zremrangebyscore(keys.pushed, "-inf", f"({now_ms - int(horizon_s * 1000)}")
    lengths = (await pipe.execute())[: len(users)]
    full = [user for user, length in zip(users, lengths, strict=True) if int(length) >= settings.max_items]
    if full:
        await redis.zadd(keys.due, dict.fromkeys(full, now_s), lt=True)
    return sum(len(v) for v in by_user.values())


async def already_pushed(redis: aioredis.Redis, *, keys: BusKeys, event_keys: Sequence[str]) -> set[str]:
    """Those of `event_keys` written within the horizon (the events of a lost ack)."""
    if not event_keys:
        return set()
    scores = await redis.zmscore(keys.pushed, list(event_keys))
    return {key for key, score in zip(event_keys, scores, strict=True) if score is not None}
