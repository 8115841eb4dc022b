"""Reaching into core's store from tests: a notification is kept once per shard that has recipients of it."""

from __future__ import annotations

import redis.asyncio as aioredis

from workers.common.contract.keys import StoreKeys


async def copies(redis: aioredis.Redis, keys: StoreKeys, notification_id: str) -> list[int]:
    """The shards that keep a copy of the notification."""
    return [shard for shard in keys.shards if await redis.exists(keys.notification(shard, notification_id))]


async def expire(redis: aioredis.Redis, keys: StoreKeys, *notification_ids: str, at: float) -> None:
    """Give the notifications expiry time `at` in every shard that keeps them, one transaction per shard (as if
    their `invalidate_at` had passed at once: a shard's purger sees all of its copies aged or none)."""
    by_shard: dict[int, list[str]] = {}
    for nid in notification_ids:
        for shard in await copies(redis, keys, nid):
            by_shard.setdefault(shard, []).append(nid)
    assert by_shard, "no copy of the notifications to expire"
    for shard, nids in by_shard.items():
        async with redis.pipeline(transaction=True) as pipe:
            for nid in nids:
                pipe.hset(keys.notification(shard, nid), "exp", repr(at))
                pipe.zadd(keys.expiry(shard), {nid: at})
            await pipe.execute()


async def outbox_entries(redis: aioredis.Redis, keys: StoreKeys) -> int:
    """Events in every shard's outbox."""
    return sum([int(await redis.xlen(keys.outbox(shard))) for shard in keys.shards])
