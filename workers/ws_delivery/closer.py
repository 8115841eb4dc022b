"""Admin closes across instances: every instance listens on one Redis pub/sub channel of user ids.

Redis pub/sub keeps working while the broker is down, and needs no queue per instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as aioredis

from workers.common.contract.keys import GatewayKeys
from workers.common.runtime.pubsub import listen

log = logging.getLogger(__name__)


class CloseListener:
    def __init__(self, *, redis: aioredis.Redis, keys: GatewayKeys, on_close: Callable[[str], int]) -> None:
        self._redis = redis
        self._channel = keys.close_channel
        self._on_close = on_close
        self.subscribed = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        """Close the named users' devices here until `stopping`; resubscribes after Redis comes back."""
        await listen(self._redis, self._channel, self._close, stopping=stopping, subscribed=self.subscribed)

    def _close(self, user: str) -> None:
        closed = self._on_close(user)
        log.info("admin close of user %s: %d devices here", user, closed)
