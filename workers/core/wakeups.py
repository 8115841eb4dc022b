"""Long-poll wake-ups across replicas: every create publishes its recipients on a Redis channel (inside the
create script), and each replica wakes its local waiters for those users (`*` wakes everyone).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import redis.asyncio as aioredis

from workers.common.runtime.pubsub import listen


class Wakeups:
    def __init__(self, *, channel: str) -> None:
        self.channel = channel
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
        """Relay the channel to local waiters until `stopping`; after a resubscription everyone wakes, for
        anything published while the subscription was away."""
        await listen(
            redis, self.channel, self.wake, stopping=stopping, subscribed=self.subscribed, on_subscribed=self.wake_all
        )
