"""Wiring of the monitor: Redis and the watch loop."""

from __future__ import annotations

from contextlib import AsyncExitStack

from workers.common.contract.keys import BusKeys
from workers.common.runtime.connections import connect_redis_for
from workers.common.runtime.layout import claim_layout
from workers.common.runtime.lifecycle import Room, run_room
from workers.monitor.settings import MonitorSettings
from workers.monitor.watch import Monitor


class MonitorRoom(Room):
    name = "monitor"

    def __init__(self, settings: MonitorSettings) -> None:
        super().__init__()
        self.settings = settings
        self._monitor: Monitor | None = None

    async def start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        redis = await connect_redis_for(s)
        stack.push_async_callback(redis.aclose)
        await claim_layout(redis, s.stream, s.shards)
        self._monitor = Monitor(redis, keys=BusKeys(s.stream, shard_count=s.shards), settings=s)
        self.spawn(self._monitor.run(self.stopping), name="monitor-loop")

    def summary(self) -> str:
        if self._monitor is None:
            return ""
        return f"{self._monitor.cycles} cycles, {self._monitor.alerts} alerts"


def run() -> int:
    return run_room(MonitorRoom, settings=MonitorSettings)
