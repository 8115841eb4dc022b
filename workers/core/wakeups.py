"""Long-poll wake-ups across replicas: every create publishes its recipients on a Redis channel (inside the
create script), and each replica wakes its local waiters for those users (`*` wakes everyone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import redis.asyncio as aioredis

from workers.common.connections import REDIS_DOWN

log = logging.getLogger(__name__)


class Wakeups:
    def __init__(self, *, channel: str, retry_delay_s: float = 1.0) -> None:
        self.channel = channel
        self.retry_delay_s = retry_delay_s
        self.subscribed = asyncio.Event()
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def watch(self, user: str) -> Iterator[asyncio.Event]:
        """An event set whenever a notification for `user` may have arrived, while the block runs."""
        event = asyncio.Event()
        self._waiters.setdefault(user, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(user)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[user]

    def wake(self, message: str) -> None:
        if message == "*":
            targets = [event for events in self._waiters.values() for event in events]
        else:
            targets = [event for user in message.split() for event in self._waiters.get(user, ())]
        for event in targets:
            event.set()

    def wake_all(self) -> None:
        self.wake("*")

    async def listen(self, redis: aioredis.Redis, stopping: asyncio.Event) -> None:
        """Relay the channel to local waiters until `stopping`; resubscribes after Redis comes back."""
        while not stopping.is_set():
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                self.wake_all()  # anything published while we were away
                while not stopping.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        data = message["data"]
                        self.wake(data.decode() if isinstance(data, bytes) else str(data))
            except REDIS_DOWN as exc:
                self.subscribed.clear()
                log.warning("wake-up channel lost (%s), resubscribing in %.1fs", exc, self.retry_delay_s)
                await asyncio.sleep(self.retry_delay_s)
            finally:
                await pubsub.aclose()
