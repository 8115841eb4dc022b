"""Wiring of the pusher: Redis, RabbitMQ, the mapping, the batch consumer."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from aio_pika.abc import AbstractQueue

from workers.common.contract.keys import BusKeys
from workers.common.contract.names import Topology
from workers.common.runtime.aio import pause
from workers.common.runtime.amqp import declare_topology, stop_consuming
from workers.common.runtime.connections import connect_amqp, connect_redis_for
from workers.common.runtime.faults import REDIS
from workers.common.runtime.layout import claim_layout
from workers.common.runtime.lifecycle import Room, run_room
from workers.common.runtime.mapping_store import MappingCache
from workers.common.runtime.retry import retrying
from workers.pusher.consumer import BatchConsumer
from workers.pusher.settings import PusherSettings

log = logging.getLogger(__name__)


class PusherRoom(Room):
    name = "pusher"

    def __init__(self, settings: PusherSettings) -> None:
        super().__init__()
        self.settings = settings
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._consumer: BatchConsumer | None = None

    async def start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        redis = await connect_redis_for(s)
        stack.push_async_callback(redis.aclose)
        await claim_layout(redis, s.stream, s.shards)
        amqp = await connect_amqp(s.amqp_url, timeout_s=s.connect_timeout_s)
        stack.push_async_callback(amqp.close)
        channel = await amqp.channel()
        await channel.set_qos(prefetch_count=s.amqp_prefetch)
        declared = await declare_topology(channel, Topology(s.amqp_namespace))
        keys = BusKeys(s.stream, shard_count=s.shards)
        mapping = MappingCache(redis, keys=keys, refresh_s=s.mapping_refresh_s)
        self._consumer = BatchConsumer(
            redis,
            keys=keys,
            mapping=mapping,
            batch_size=s.batch_size,
            linger_s=s.linger_s,
            horizon_s=s.redelivery_horizon_s,
        )
        self._queue = declared.reviews_queue
        self.spawn(self._consume(self._queue, self._consumer, mapping), name="pusher-consume")

    async def _consume(self, queue: AbstractQueue, consumer: BatchConsumer, mapping: MappingCache) -> None:
        announced = False
        while not (
            await retrying(mapping.get, what="read the mapping", stopping=self.stopping, dependency=REDIS)
        ).version:
            if not announced:
                log.warning("no mapping loaded for stream %s yet: waiting before consuming", self.settings.stream)
                announced = True
            if await pause(self.stopping, self.settings.mapping_refresh_s):
                return
        self._consumer_tag = await queue.consume(consumer.on_message)
        log.info("consuming %s for stream %s", queue.name, self.settings.stream)
        await consumer.run(self.stopping)

    async def stop_intake(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            await stop_consuming(self._queue, self._consumer_tag)
        await super().stop_intake()

    def summary(self) -> str:
        totals = self._consumer.totals if self._consumer else {}
        return (
            f"{totals.get('events', 0)} events, {totals.get('entries', 0)} entries written, "
            f"{totals.get('unknown_brand', 0)} of unknown brands, {totals.get('dead_lettered', 0)} dead-lettered, "
            f"{totals.get('written_before', 0)} redelivered after a lost ack and not written again"
        )


def run() -> int:
    return run_room(PusherRoom, settings=PusherSettings)
