"""After a mapping change the puller puts back into `due` the valid users whose pending data is not scheduled."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from tests.puller.collect import CollectingSink
from workers.common.contract.entries import make_entry
from workers.common.contract.keys import DEFAULT_SHARDS, BusKeys, shard_of
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_settings, write_mapping
from workers.puller.settings import PullerSettings
from workers.puller.worker import Puller
from workers.pusher.writer import append_entries


async def test_a_new_mapping_schedules_again_the_valid_users_missing_from_due(
    redis: aioredis.Redis, stream: str
) -> None:
    keys = BusKeys(stream)
    await write_mapping(
        redis, keys=keys, spec=parse_spec({"brands": {"B": ["u1", "u2"]}, "digest": {"windowSeconds": 0}})
    )
    now_ms = int(time.time() * 1000)
    entry = make_entry(brand="B", review="r1", kind="added", pushed_ms=now_ms, occurred_ms=now_ms).encode()
    settings = await read_settings(redis, keys=keys)
    users = ["u1", "u2", "u3"]
    await append_entries(redis, keys=keys, by_user={u: [entry] for u in users}, settings=settings, now_s=now_ms / 1000)
    for user in users:
        await redis.zrem(keys.due(keys.shard_of(user)), user)

    sink = CollectingSink()
    puller = Puller(redis, keys=keys, sink=sink, settings=PullerSettings())
    assert await puller.cycle() == 2
    assert sorted(d.user for d in sink.digests) == ["u1", "u2"]
    assert await redis.zscore(keys.due(shard_of("u3", DEFAULT_SHARDS)), "u3") is None, (
        "a user of no brand stays unscheduled"
    )
