"""Reading the review bus's sharded keys in tests: every member of `due`, `pending_since` or `pushed`, and who holds
a batch in flight."""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis

from workers.common.contract.keys import BusKeys


async def indexed(redis: aioredis.Redis, keys: BusKeys, index: Callable[[int], str]) -> dict[str, float]:
    """Member -> score of one index (`keys.due`, `keys.pending_since`, `keys.pushed`) over every shard."""
    pipe = redis.pipeline(transaction=False)
    for shard in keys.shards:
        pipe.zrange(index(shard), 0, -1, withscores=True)
    found: dict[str, float] = {}
    for members in await pipe.execute():
        found.update({str(member): float(score) for member, score in members})
    return found


async def held(redis: aioredis.Redis, keys: BusKeys, *users: str) -> list[bool]:
    """Whether each user has an in-flight batch in its shard's `inflight` hash."""
    pipe = redis.pipeline(transaction=False)
    for user in users:
        pipe.hexists(keys.inflight(keys.shard_of(user)), user)
    return [bool(found) for found in await pipe.execute()]
