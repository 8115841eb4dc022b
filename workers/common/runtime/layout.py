"""The shard count a stream's keys were laid out with, recorded by the first room that uses them."""

from __future__ import annotations

import redis.asyncio as aioredis

from workers.common.contract.errors import InvalidSettings
from workers.common.contract.keys import layout_key


async def claim_layout(redis: aioredis.Redis, stream: str, shards: int) -> None:
    """Record `shards` as the stream's layout unless one is recorded; InvalidSettings when the recorded one
    differs (the room would read and write other keys than the rest of the stream)."""
    key = layout_key(stream)
    await redis.set(key, shards, nx=True)
    recorded = await redis.get(key)
    if recorded is not None and int(recorded) != shards:
        raise InvalidSettings(
            f"stream {stream} is laid out in {int(recorded)} shards; NOTIFIER_SHARDS={shards} would read other keys "
            "(drain the stream to change it)"
        )
