"""Listening on a Redis pub/sub channel for as long as a room runs, through Redis outages.

A subscription does not survive its connection: after Redis comes back the channel is subscribed again
and `on_subscribed` runs, so the listener can make up for what was published meanwhile (pub/sub keeps
nothing for absent subscribers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis.asyncio as aioredis

from workers.common.runtime.faults import HEALTH, REDIS
from workers.common.runtime.retry import retrying


async def listen(
    redis: aioredis.Redis,
    channel: str,
    on_message: Callable[[str], object],
    *,
    stopping: asyncio.Event,
    subscribed: asyncio.Event,
    on_subscribed: Callable[[], object] = lambda: None,
) -> None:
    """Call `on_message` with every message on `channel` until `stopping`; `subscribed` is set while the
    subscription stands."""

    async def session() -> None:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            HEALTH.ok(REDIS)
            subscribed.set()
            on_subscribed()
            while not stopping.is_set():
                message = await pubsub.get_message(timeout=0.5)
                if message is not None and message["type"] == "message":
                    data = message["data"]
                    on_message(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            subscribed.clear()
            await pubsub.aclose()

    await retrying(session, what=f"listen on {channel}", stopping=stopping, dependency=REDIS)
