"""Several pushers and pullers at once over the same users: no entry lost, none in two digests."""

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
from workers.common.contract.keys import BusKeys
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_settings, write_mapping
from workers.puller.settings import PullerSettings
from workers.puller.worker import Puller
from workers.pusher.writer import append_entries

USERS = [f"u{i}" for i in range(40)]
PUSHERS = 3
PULLERS = 3
ENTRIES_PER_PUSHER = 34_000  # 3 x 34k = 102k entries
BATCH = 500


async def test_three_pushers_and_three_pullers_lose_nothing_and_duplicate_nothing(
    redis: aioredis.Redis, stream: str
) -> None:
    keys = BusKeys(stream)
    spec = parse_spec(
        {"brands": {f"B{i}": [u] for i, u in enumerate(USERS)}, "digest": {"windowSeconds": 0, "maxItems": 700}}
    )
    await write_mapping(redis, keys=keys, spec=spec)
    clients = [aioredis.Redis.from_url(REDIS_URL, decode_responses=True) for _ in range(PUSHERS + PULLERS)]
    # One due user per shard and cycle: a puller that loops straight into its next cycle cannot claim every
    # due user each time, so all three contend for the same users (and each takes part).
    settings = PullerSettings(
        poll_interval_s=0.01, batch_users=1, content_limit_bytes=1_000_000, max_ids_per_brand=100_000
    )
    sinks = [CollectingSink() for _ in range(PULLERS)]
    pullers = [
        Puller(client, keys=keys, sink=sink, settings=settings)
        for client, sink in zip(clients[PUSHERS:], sinks, strict=True)
    ]
    stopping = asyncio.Event()

    async def push(index: int, client: aioredis.Redis) -> None:
        stream_settings = await read_settings(client, keys=keys)
        for start in range(0, ENTRIES_PER_PUSHER, BATCH):
            by_user: dict[str, list[str]] = {}
            now_ms = int(time.time() * 1000)
            for n in range(start, start + BATCH):
                user = USERS[(n * 7 + index) % len(USERS)]
                brand = f"B{USERS.index(user)}"
                entry = make_entry(
                    brand=brand, review=f"p{index}-{n}", kind="added", pushed_ms=now_ms, occurred_ms=now_ms
                )
                by_user.setdefault(user, []).append(entry.encode())
            await append_entries(client, keys=keys, by_user=by_user, settings=stream_settings, now_s=now_ms / 1000)

    pulling = [asyncio.create_task(p.run(stopping)) for p in pullers]
    await asyncio.gather(*(push(i, c) for i, c in enumerate(clients[:PUSHERS])))
    total = PUSHERS * ENTRIES_PER_PUSHER
    try:
        await eventually(lambda: sum(len(s.reviews()) for s in sinks) >= total, timeout_s=60)
    finally:
        stopping.set()
        await asyncio.gather(*pulling)
    for client in clients:
        await client.aclose()

    reviews = [pair for sink in sinks for pair in sink.reviews()]
    counts = Counter(reviews)
    duplicated = [pair for pair, n in counts.items() if n > 1]
    assert duplicated == []
    assert len(reviews) == total
    digest_ids = [d.digest_id for s in sinks for d in s.digests]
    assert len(digest_ids) == len(set(digest_ids))
    assert all(sink.digests for sink in sinks), "every puller took part"
    assert await indexed(redis, keys, keys.due) == {}
    assert await indexed(redis, keys, keys.pending_since) == {}
    assert [await redis.hlen(keys.inflight(shard)) for shard in keys.shards] == [0] * keys.shard_count
