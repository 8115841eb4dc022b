"""A pass over more users than one part: the parts overlap, and every user still gets exactly one digest."""

from __future__ import annotations

import json
import time

import redis.asyncio as aioredis

from tests.puller.collect import CollectingSink
from workers.common.contract.entries import make_entry
from workers.common.contract.keys import BusKeys
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_settings, write_mapping
from workers.puller import worker
from workers.puller.settings import PullerSettings
from workers.puller.worker import Puller
from workers.pusher.writer import append_entries


async def test_a_pass_in_overlapping_parts_digests_every_user_once(redis: aioredis.Redis, stream: str) -> None:
    keys = BusKeys(stream)
    users = [f"u{i}" for i in range(2 * worker.OVERLAP_USERS + 300)]
    await write_mapping(redis, keys=keys, spec=parse_spec({"brands": {"B": users}, "digest": {"windowSeconds": 0}}))
    now_ms = int(time.time() * 1000)
    entry = make_entry(brand="B", review="r1", kind="updated", pushed_ms=now_ms, occurred_ms=now_ms).encode()
    settings = await read_settings(redis, keys=keys)
    await append_entries(redis, keys=keys, by_user={u: [entry] for u in users}, settings=settings, now_s=now_ms / 1000)

    sink = CollectingSink()
    puller = Puller(redis, keys=keys, sink=sink, settings=PullerSettings(batch_users=10_000))
    assert await puller.cycle() == len(users)
    assert sorted(d.user for d in sink.digests) == sorted(users)
    assert len({d.digest_id for d in sink.digests}) == len(users)
    assert {json.loads(d.content)["brands"]["B"]["updated"] for d in sink.digests} == {1}
    assert await puller.cycle() == 0, "every user finished: nothing due any more"
