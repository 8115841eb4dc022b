"""The shard count a stream's keys were laid out with, recorded by the first room that uses them.

A user's shard is `crc32(user) % NOTIFIER_SHARDS`, so a process with another count than the rest of the stream
would push to, pull from and clean keys nobody else reads, and lose nothing loudly. `claim_layout` makes the
count part of the stream's data instead: the first room or command to use the stream records it in
`nf:<stream>:layout`, and every later one with another count fails closed (a room exits 2, a command 1) before
it touches a per-shard key. The key lives as long as the stream's data: deleting the mapping leaves both, and
changing the count means draining the stream, then deleting the key.
"""

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
    if recorded is None:  # deleted between the two calls: nothing holds the stream to another count
        return
    text = recorded.decode() if isinstance(recorded, bytes) else str(recorded)
    if text != str(shards):
        raise InvalidSettings(
            f"stream {stream} is laid out in {text} shards; NOTIFIER_SHARDS={shards} would read other keys "
            "(drain the stream to change it)"
        )
