"""Many users per Redis round trip: one script per bus shard and step, each on one Cluster slot; a woken puller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from tests.puller.collect import CollectingSink
from tests.support.redis_server import RedisServer
from tests.support.waiting import eventually
from workers.common.contract.entries import make_entry
from workers.common.contract.keys import DEFAULT_SHARDS, BusKeys, shard_of
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_settings, write_mapping
from workers.puller.settings import PullerSettings
from workers.puller.worker import Puller
from workers.pusher.writer import append_entries


def test_a_users_keys_and_its_shards_indexes_share_one_cluster_slot() -> None:
    keys = BusKeys("reviews")
    for user in ("1", "2", "alice", "user@example.com", "x" * 128):
        shard = shard_of(user, DEFAULT_SHARDS)
        slots = {key_slot(key.encode()) for key in (*keys.user_keys(user), keys.due(shard), keys.pending_since(shard))}
        assert len(slots | {key_slot(keys.pushed(shard).encode())}) == 1, user
    spread = {shard_of(str(user), DEFAULT_SHARDS) for user in range(1000)}
    assert spread == set(range(DEFAULT_SHARDS)), "users spread over every shard"
    slots = {key_slot(keys.due(shard).encode()) for shard in keys.shards}
    assert len(slots) == DEFAULT_SHARDS, "no two shards share a slot, so a cluster spreads them"


async def _commands(redis: aioredis.Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {name: int(value["calls"]) for name, value in stats.items()}


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    """A redis-server of this test's own: its command counts are this test's alone."""
    server = RedisServer(tmp_path / "redis").start()
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
        server.stop()


async def test_a_pass_over_2000_users_costs_a_few_script_calls_per_shard(own_redis: aioredis.Redis) -> None:
    redis = own_redis
    keys = BusKeys("batched")
    users = [f"u{i}" for i in range(2000)]
    await write_mapping(redis, keys=keys, spec=parse_spec({"brands": {"B": users}, "digest": {"windowSeconds": 0}}))
    now_ms = int(time.time() * 1000)
    entry = make_entry(brand="B", review="r1", kind="added", pushed_ms=now_ms, occurred_ms=now_ms).encode()
    settings = await read_settings(redis, keys=keys)

    before = await _commands(redis)
    await append_entries(redis, keys=keys, by_user={u: [entry] for u in users}, settings=settings, now_s=now_ms / 1000)
    written = await _commands(redis)
    assert written.get("cmdstat_evalsha", 0) - before.get("cmdstat_evalsha", 0) <= DEFAULT_SHARDS
    assert written.get("cmdstat_rpush", 0) - before.get("cmdstat_rpush", 0) == len(users), "inside the scripts"

    sink = CollectingSink()
    puller = Puller(redis, keys=keys, sink=sink, settings=PullerSettings(batch_users=10_000))
    assert await puller.cycle() == len(users)
    pulled = await _commands(redis)
    scripts = pulled.get("cmdstat_evalsha", 0) - written.get("cmdstat_evalsha", 0)
    assert scripts <= 3 * DEFAULT_SHARDS, f"{scripts} script calls for {len(users)} users"
    assert sorted(d.user for d in sink.digests) == sorted(users)
    assert [await redis.llen(keys.pending(user)) for user in users[:50]] == [0] * 50


async def test_a_pusher_wakes_an_idle_puller_instead_of_its_next_poll(redis: aioredis.Redis, stream: str) -> None:
    keys = BusKeys(stream)
    await write_mapping(redis, keys=keys, spec=parse_spec({"brands": {"B": ["1"]}, "digest": {"windowSeconds": 0}}))
    sink = CollectingSink()
    puller = Puller(redis, keys=keys, sink=sink, settings=PullerSettings(poll_interval_s=60))
    stopping = asyncio.Event()
    running = asyncio.create_task(puller.run(stopping))
    try:
        await asyncio.sleep(0.5)  # the puller found nothing and sleeps for up to its 60 s poll interval
        now_ms = int(time.time() * 1000)
        entry = make_entry(brand="B", review="r1", kind="added", pushed_ms=now_ms, occurred_ms=now_ms).encode()
        settings = await read_settings(redis, keys=keys)
        await append_entries(redis, keys=keys, by_user={"1": [entry]}, settings=settings, now_s=now_ms / 1000)
        await eventually(lambda: sink.digests)
        assert [d.user for d in sink.digests] == ["1"]
    finally:
        stopping.set()
        await asyncio.wait_for(running, 10)
