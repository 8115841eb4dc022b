"""Admin closes across instances: every instance listens on one Redis pub/sub channel of user ids.

Redis pub/sub keeps working while the broker is down, and needs no queue per instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from workers.common.connections import REDIS_DOWN
from workers.common.keys import GatewayKeys

log = logging.getLogger(__name__)


class CloseListener:
    def __init__(self, *, redis: aioredis.Redis, keys: GatewayKeys, on_close: Callable[[str], int]) -> None:
        self._pubsub: Any = redis.pubsub(ignore_subscribe_messages=True)
        self._channel = keys.close_channel
        self._on_close = on_close

    async def subscribe(self) -> None:
        await self._pubsub.subscribe(self._channel)

    async def run(self, stopping: asyncio.Event) -> None:
        delay = 0.1
        try:
            while not stopping.is_set():
                try:
                    message = await self._pubsub.get_message(timeout=0.5)
                except REDIS_DOWN as exc:
                    log.warning("admin close channel unavailable (%s), retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                delay = 0.1
                if message is None or message.get("type") != "message":
                    continue
                data = message["data"]
                user = data.decode() if isinstance(data, bytes) else str(data)
                closed = self._on_close(user)
                log.info("admin close of user %s: %d devices here", user, closed)
        finally:
            await self._pubsub.aclose()
