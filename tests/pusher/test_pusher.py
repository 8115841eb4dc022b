"""The pusher room against real RabbitMQ and Redis: fan-out, indexes, dead letters, unknown brands."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import BOTH_REDIS, free_port, take_bodies
from tests.support.bus import indexed
from tests.support.metrics import sample
from tests.support.processes import RoomProcess, notifier, start_room
from tests.support.waiting import eventually
from workers.common.contract.entries import decode
from workers.common.contract.keys import BusKeys
from workers.common.contract.names import Topology
from workers.common.contract.streamspec import parse_spec
from workers.common.contract.wire import ReviewEvent, to_timestamp
from workers.common.runtime.amqp import declare_topology
from workers.common.runtime.mapping_store import write_mapping

pytestmark = BOTH_REDIS


REFRESH_S = 0.2
"""How often the pusher reads the mapping pointer and the stream settings: a test that changes them waits that long."""


@pytest.fixture
async def pusher(
    redis: aioredis.Redis, stream: str, env: dict[str, str], tmp_path: Path, amqp: AbstractRobustConnection
) -> AsyncIterator[RoomProcess]:
    spec = parse_spec({"brands": {"Brand1": ["1", "2"], "Brand2": ["4"]}, "digest": {"windowSeconds": 30}})
    await write_mapping(redis, keys=BusKeys(stream), spec=spec)
    env = {**env, "NOTIFIER_PUSHER_MAPPING_REFRESH_S": str(REFRESH_S)}
    room = start_room("pusher", env=env, log_dir=tmp_path, ops_port=free_port())
    await room.wait_ready()
    yield room
    assert room.terminate() == 0, room.log


async def publish(amqp: AbstractRobustConnection, topology: Topology, *bodies: bytes) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    declared = await declare_topology(channel, topology)
    for body in bodies:
        await declared.reviews.publish(aio_pika.Message(body), routing_key=topology.reviews_routing_key)
    await channel.close()


def event(brand: str, review: str, kind: int = ReviewEvent.ADDED) -> bytes:
    return ReviewEvent(
        brand_id=brand,
        review_id=review,
        kind=kind,  # type: ignore[arg-type]
        occurred_at=to_timestamp(time.time()),
    ).SerializeToString()


async def test_each_event_reaches_every_user_of_its_brand_with_indexes(
    pusher: RoomProcess, redis: aioredis.Redis, stream: str, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    keys = BusKeys(stream)
    await publish(amqp, topology, *(event("Brand1", f"r{i}") for i in range(50)), event("Brand2", "x1", 2))
    await eventually(lambda: _len(redis, keys.pending("4"), 1))
    await eventually(lambda: _len(redis, keys.pending("2"), 50))
    reviews_1 = [decode(e).review for e in await redis.lrange(keys.pending("1"), 0, -1)]
    assert reviews_1 == [f"r{i}" for i in range(50)]
    [deleted] = await redis.lrange(keys.pending("4"), 0, -1)
    assert decode(deleted).kind == "deleted"
    due = await indexed(redis, keys, keys.due)
    assert set(due) == {"1", "2", "4"}
    since = await indexed(redis, keys, keys.pending_since)
    assert set(since) == {"1", "2", "4"}
    due_4 = due["4"]
    since_4 = since["4"]
    assert due_4 == pytest.approx(since_4 + 30, abs=0.01)


async def _len(redis: aioredis.Redis, key: str, n: int) -> bool:
    return int(await redis.llen(key)) == n


async def test_undecodable_and_invalid_events_are_dead_lettered_and_the_pusher_lives_on(
    pusher: RoomProcess, redis: aioredis.Redis, stream: str, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    keys = BusKeys(stream)
    await publish(
        amqp, topology, b"\xff\xfe not protobuf", event("Brand1", "bad id with spaces"), event("Brand2", "ok")
    )
    await eventually(lambda: _len(redis, keys.pending("4"), 1))
    bodies = await take_bodies(amqp, topology.dead_letter_queue, 2)
    assert bodies == [b"\xff\xfe not protobuf", event_body_review(bodies[1], "bad id with spaces")]
    assert await redis.llen(keys.pending("1")) == 0
    await pusher.wait_ready()
    metrics = await pusher.metrics()
    assert sample("notifier_pusher_events_total", {"outcome": "invalid"}, text=metrics) == 2


def event_body_review(body: bytes, review: str) -> bytes:
    assert ReviewEvent.FromString(body).review_id == review
    return body


async def test_events_of_an_unknown_brand_are_counted_logged_and_acked(
    pusher: RoomProcess, redis: aioredis.Redis, stream: str, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    keys = BusKeys(stream)
    await publish(amqp, topology, event("NoSuchBrand", "r1"), event("Brand2", "r2"))
    await eventually(lambda: _len(redis, keys.pending("4"), 1))
    await pusher.wait_log("review r1 of unknown brand NoSuchBrand")
    metrics = await pusher.metrics()
    assert sample("notifier_pusher_events_total", {"outcome": "unknown_brand"}, text=metrics) == 1
    channel = await amqp.channel()
    queue = await channel.declare_queue(topology.reviews_queue, passive=True)
    assert (await queue.declare()).message_count == 0


async def test_max_items_makes_the_user_due_at_once(
    pusher: RoomProcess, redis: aioredis.Redis, stream: str, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    keys = BusKeys(stream)
    await write_mapping(
        redis,
        keys=keys,
        spec=parse_spec(
            {"brands": {"Brand1": ["1", "2"], "Brand2": ["4"]}, "digest": {"windowSeconds": 600, "maxItems": 5}}
        ),
    )
    await asyncio.sleep(3 * REFRESH_S)  # the new settings reach the pusher within its mapping refresh
    await publish(amqp, topology, *(event("Brand2", f"r{i}") for i in range(5)))
    await eventually(lambda: _len(redis, keys.pending("4"), 5))
    assert (await indexed(redis, keys, keys.due))["4"] <= time.time()


def test_push_commands_print_what_they_pushed_and_refuse_misuse(
    env: dict[str, str], stream: str, tmp_path: Path
) -> None:
    no_mapping = notifier("push-valid-data", "--stream", stream, env=env)
    assert no_mapping.returncode == 1
    assert "no mapping" in no_mapping.stderr
    mapping_file = tmp_path / "m.json"
    mapping_file.write_text('{"Brand1": [1, 2], "Brand2": [4]}')
    assert notifier("mapping", "load", str(mapping_file), "--stream", stream, env=env).returncode == 0
    valid = notifier("push-valid-data", "--stream", stream, env=env)
    assert valid.returncode == 0, valid.stderr
    assert "of Brand1 to users 1, 2" in valid.stdout
    assert "of Brand2 to users 4" in valid.stdout
    invalid = notifier("push-invalid-data", "--stream", stream, "--user", "1", env=env)
    assert invalid.returncode == 1
    assert "not invalid" in invalid.stderr
    assert notifier("publish-reviews", "--count", "0", env=env).returncode == 2
