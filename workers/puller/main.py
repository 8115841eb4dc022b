"""Wiring of the puller: Redis, the digest sink (core or the log), the pull loop."""

from __future__ import annotations

from contextlib import AsyncExitStack

from workers.common.contract.keys import BusKeys
from workers.common.runtime.connections import connect_redis_for
from workers.common.runtime.layout import claim_layout
from workers.common.runtime.lifecycle import Room, run_room
from workers.puller.settings import PullerSettings
from workers.puller.sink import make_sink
from workers.puller.worker import Puller


class PullerRoom(Room):
    name = "puller"

    def __init__(self, settings: PullerSettings) -> None:
        super().__init__()
        self.settings = settings
        self._puller: Puller | None = None

    async def start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        redis = await connect_redis_for(s)
        stack.push_async_callback(redis.aclose)
        await claim_layout(redis, s.stream, s.shards)
        sink = make_sink(s)
        stack.push_async_callback(sink.close)
        self._puller = Puller(
            redis, keys=BusKeys(s.stream, shard_count=s.shards), sink=sink, settings=s, share_shards=True
        )
        self.spawn(self._puller.run(self.stopping), name="puller-loop")

    def summary(self) -> str:
        totals = self._puller.totals if self._puller else {}
        return (
            f"{totals.get('digests', 0)} digests from {totals.get('entries', 0)} entries, "
            f"{totals.get('resumed', 0)} resumed batches"
        )


def run() -> int:
    return run_room(PullerRoom, settings=PullerSettings)
