"""Two puller replicas of one stream split its shards: each claims only its own, together they digest everyone."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import redis.asyncio as aioredis

from tests.conftest import REDIS_URL
from tests.puller.collect import CollectingSink
from tests.support.bus import indexed
from tests.support.waiting import eventually
from workers.common.contract.entries import make_entry
from workers.common.contract.keys import BusKeys, members_key
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_settings, write_mapping
from workers.puller.settings import PullerSettings
from workers.puller.worker import Puller
from workers.pusher.writer import append_entries

USERS = [f"u{i}" for i in range(64)]
ROUNDS = 5


async def test_two_pullers_claim_only_their_own_shards_and_together_digest_every_user(
    redis: aioredis.Redis, stream: str
) -> None:
    keys = BusKeys(stream)
    spec = parse_spec({"brands": {"B": USERS}, "digest": {"windowSeconds": 0, "maxItems": 100}})
    await write_mapping(redis, keys=keys, spec=spec)
    settings = PullerSettings(poll_interval_s=0.02, membership_ttl_s=2.0, membership_beat_s=0.05)
    clients = [aioredis.Redis.from_url(REDIS_URL, decode_responses=True) for _ in range(2)]
    sinks = [CollectingSink(), CollectingSink()]
    pullers = [
        Puller(client, keys=keys, sink=sink, settings=settings, owner=owner, share_shards=True)
        for client, sink, owner in zip(clients, sinks, ["puller-a", "puller-b"], strict=True)
    ]
    stopping = asyncio.Event()
    running = [asyncio.create_task(puller.run(stopping)) for puller in pullers]
    try:
        await eventually(lambda: all(len(p.assignment.members) == 2 for p in pullers if p.assignment), what="live")
        a, b = (set(puller.shards) for puller in pullers)
        assert a, "each replica holds shards"
        assert b, "each replica holds shards"
        assert a.isdisjoint(b), "no shard has two owners"
        assert a | b == set(keys.shards), "no shard is left out"

        stream_settings = await read_settings(redis, keys=keys)
        for round_ in range(ROUNDS):
            now_ms = int(time.time() * 1000)
            by_user = {
                user: [
                    make_entry(
                        brand="B", review=f"r{round_}-{user}", kind="added", pushed_ms=now_ms, occurred_ms=now_ms
                    ).encode()
                ]
                for user in USERS
            }
            await append_entries(redis, keys=keys, by_user=by_user, settings=stream_settings, now_s=now_ms / 1000)
        await eventually(lambda: sum(len(s.reviews()) for s in sinks) >= len(USERS) * ROUNDS, timeout_s=30)
    finally:
        stopping.set()
        await asyncio.gather(*running)
        for client in clients:
            await client.aclose()

    for puller, sink in zip(pullers, sinks, strict=True):
        assert sink.digests, "each replica did its share"
        assert {keys.shard_of(d.user) for d in sink.digests} <= set(puller.shards), "no claim outside its shards"
    reviews = Counter(pair for sink in sinks for pair in sink.reviews())
    assert [pair for pair, n in reviews.items() if n > 1] == []
    assert set(reviews) == {(user, f"r{r}-{user}") for user in USERS for r in range(ROUNDS)}
    assert await indexed(redis, keys, keys.due) == {}
    assert await redis.zcard(members_key(stream, "puller")) == 0, "both left on a clean stop"
