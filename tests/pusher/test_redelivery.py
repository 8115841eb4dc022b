"""A lost ack: the broker redelivers events a pusher had written; they must not reach a second digest.

The consumer runs in the test against real RabbitMQ and Redis. Its channel is closed before it acks,
which is what the broker sees when a pusher dies between its Redis write and its ack: the events come
back with `redelivered` set. A puller with a zero window runs meanwhile, so the first copy is already
in a digest when the redelivery arrives, the window boundary at which a second copy would count again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from tests.puller.collect import CollectingSink
from tests.pusher.test_pusher import event, publish
from tests.support.bus import indexed
from tests.support.waiting import eventually
from workers.common.contract.keys import DEFAULT_SHARDS, BusKeys, shard_of
from workers.common.contract.names import Topology
from workers.common.contract.stream import StreamSettings
from workers.common.contract.streamspec import parse_spec
from workers.common.contract.wire import ReviewEvent, to_timestamp
from workers.common.runtime.amqp import declare_topology
from workers.common.runtime.mapping_store import MappingCache, write_mapping
from workers.puller.settings import PullerSettings
from workers.puller.worker import Puller
from workers.pusher.consumer import BatchConsumer
from workers.pusher.fanout import event_key
from workers.pusher.writer import already_pushed, append_entries


@pytest.fixture
async def sink(redis: aioredis.Redis, stream: str) -> AsyncIterator[CollectingSink]:
    keys = BusKeys(stream)
    spec = parse_spec({"brands": {"B": ["1", "2"]}, "digest": {"windowSeconds": 0}})
    await write_mapping(redis, keys=keys, spec=spec)
    collected = CollectingSink()
    puller = Puller(redis, keys=keys, sink=collected, settings=PullerSettings(poll_interval_s=0.05))
    stopping = asyncio.Event()
    task = asyncio.create_task(puller.run(stopping))
    yield collected
    stopping.set()
    await task


def consumer(redis: aioredis.Redis, stream: str) -> BatchConsumer:
    keys = BusKeys(stream)
    return BatchConsumer(
        redis,
        keys=keys,
        mapping=MappingCache(redis, keys=keys, refresh_s=0.1),
        batch_size=100,
        linger_s=0,
        horizon_s=300.0,
    )


async def take(amqp: AbstractRobustConnection, topology: Topology, count: int) -> list[AbstractIncomingMessage]:
    """`count` messages off the reviews queue on a fresh channel, unacked."""
    channel = await amqp.channel()
    queue = await channel.get_queue(topology.reviews_queue)
    messages: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(10):
        while len(messages) < count:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                await asyncio.sleep(0.02)
            else:
                messages.append(message)
    return messages


async def listed(sink: CollectingSink, count: int) -> list[tuple[str, str]]:
    await eventually(lambda: len(sink.reviews()) >= count)
    await asyncio.sleep(0.3)  # several puller cycles: nothing more may arrive
    return sorted(sink.reviews())


async def test_events_written_before_a_lost_ack_are_not_written_again(
    redis: aioredis.Redis, stream: str, amqp: AbstractRobustConnection, topology: Topology, sink: CollectingSink
) -> None:
    channel = await amqp.channel()
    await declare_topology(channel, topology)
    await publish(amqp, topology, event("B", "r1"), event("B", "r2"))
    pusher = consumer(redis, stream)
    first = await take(amqp, topology, 2)
    await first[0].channel.close()  # the ack that follows the write is lost
    await pusher.process(first, stopping=asyncio.Event())
    assert await listed(sink, 4) == [("1", "r1"), ("1", "r2"), ("2", "r1"), ("2", "r2")]

    again = await take(amqp, topology, 2)
    assert all(message.redelivered for message in again)
    await pusher.process(again, stopping=asyncio.Event())
    assert await listed(sink, 4) == [("1", "r1"), ("1", "r2"), ("2", "r1"), ("2", "r2")], "each review once"
    assert pusher.totals["written_before"] == 2
    assert await take_nothing(amqp, topology), "the redelivery was acked"


async def test_a_redelivered_event_that_was_never_written_is_written(
    redis: aioredis.Redis, stream: str, amqp: AbstractRobustConnection, topology: Topology, sink: CollectingSink
) -> None:
    channel = await amqp.channel()
    await declare_topology(channel, topology)
    await publish(amqp, topology, event("B", "r1"))
    (lost,) = await take(amqp, topology, 1)
    await lost.channel.close()  # the pusher died before it wrote anything
    pusher = consumer(redis, stream)
    (again,) = await take(amqp, topology, 1)
    assert again.redelivered
    await pusher.process([again], stopping=asyncio.Event())
    assert await listed(sink, 2) == [("1", "r1"), ("2", "r1")]
    assert pusher.totals["written_before"] == 0


async def take_nothing(amqp: AbstractRobustConnection, topology: Topology) -> bool:
    channel = await amqp.channel()
    queue = await channel.get_queue(topology.reviews_queue)
    await asyncio.sleep(0.2)
    message = await queue.get(no_ack=True, fail=False)
    await channel.close()
    return message is None


async def test_event_keys_are_kept_for_the_horizon_only(redis: aioredis.Redis, stream: str) -> None:
    keys = BusKeys(stream)
    settings = StreamSettings(window_s=60, max_items=1000)
    now = time.time()
    for at, key in ((now - 10, "old"), (now - 1, "recent"), (now, "new")):
        await append_entries(
            redis,
            keys=keys,
            by_user={"1": [f"B|{key}|A|0|0"]},
            settings=settings,
            now_s=at,
            pushed={shard_of("1", DEFAULT_SHARDS): [key]},
            horizon_s=5,
        )
    found = await already_pushed(redis, keys=keys, event_keys=["old", "recent", "new", "never"])
    assert found == {(shard_of("1", DEFAULT_SHARDS), "recent"), (shard_of("1", DEFAULT_SHARDS), "new")}
    assert set(await indexed(redis, keys, keys.pushed)) == {"recent", "new"}


def test_an_event_is_keyed_by_what_it_says_not_by_when_it_arrives() -> None:
    added = ReviewEvent(brand_id="B", review_id="r1", kind=ReviewEvent.ADDED, occurred_at=to_timestamp(1.5))
    undated = ReviewEvent(brand_id="B", review_id="r1", kind=ReviewEvent.ADDED)
    assert event_key(ReviewEvent.FromString(added.SerializeToString())) == event_key(added) == "B|r1|0|1500"
    assert event_key(undated) == "B|r1|0|0", "an event without a time keys the same on every delivery"
    assert event_key(ReviewEvent(brand_id="B", review_id="r1", kind=ReviewEvent.UPDATED)) != event_key(undated)
