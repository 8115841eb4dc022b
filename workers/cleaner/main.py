"""Wiring of the cleaner: a long-lived process (so operators can `kubectl exec ... notifier clean USER`)
that optionally removes invalid users on a schedule."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from workers.cleaner import metrics
from workers.cleaner.purge import Purger
from workers.cleaner.settings import CleanerSettings
from workers.common.contract.keys import BusKeys
from workers.common.runtime.connections import connect_redis_for
from workers.common.runtime.faults import REDIS
from workers.common.runtime.layout import claim_layout
from workers.common.runtime.lifecycle import Room, run_room
from workers.common.runtime.retry import repeat

log = logging.getLogger(__name__)


class CleanerRoom(Room):
    name = "cleaner"

    def __init__(self, settings: CleanerSettings) -> None:
        super().__init__()
        self.settings = settings
        self.removed = 0

    async def start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        redis = await connect_redis_for(s)
        stack.push_async_callback(redis.aclose)
        await claim_layout(redis, s.stream, s.shards)
        if s.invalid_interval_s > 0:
            purger = Purger(redis, keys=BusKeys(s.stream, shard_count=s.shards))
            self.spawn(self._sweep(purger), name="cleaner-sweep")

    async def _sweep(self, purger: Purger) -> None:
        await repeat(
            lambda: self._sweep_once(purger), what="remove invalid users", stopping=self.stopping, dependency=REDIS
        )

    async def _sweep_once(self, purger: Purger) -> float:
        users = await purger.invalid_users()
        if users:
            for removal in await purger.remove_many(users, dry_run=False):
                log.warning("%s (belongs to no brand)", removal.describe())
                metrics.ENTRIES_REMOVED.inc(removal.pending_entries + removal.inflight_entries)
            metrics.USERS_REMOVED.inc(len(users))
            self.removed += len(users)
        return self.settings.invalid_interval_s

    def summary(self) -> str:
        return f"{self.removed} invalid users removed"


def run() -> int:
    return run_room(CleanerRoom, settings=CleanerSettings)
