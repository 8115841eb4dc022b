"""The in-flight hash: two fields (`claim`, `entries`), a record of the earlier six-field layout resumed with its
digest id, and a pass that only forwards digests takes no raw entries back from Redis."""

from __future__ import annotations

import json
import time

import redis.asyncio as aioredis

from tests.puller.collect import CollectingSink
from workers.common.contract.entries import make_entry
from workers.common.contract.keys import BusKeys
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_settings, write_mapping
from workers.puller.claims import Claims
from workers.puller.settings import PullerSettings
from workers.puller.worker import Puller
from workers.pusher.writer import append_entries

OLD_DIGEST_ID = "0123456789abcdef0123456789abcdef"


async def _setup(redis: aioredis.Redis, stream: str, *, users: list[str], reviews: int = 1) -> BusKeys:
    keys = BusKeys(stream)
    spec = {"brands": {"B": users}, "digest": {"windowSeconds": 0, "maxItems": 100}}
    await write_mapping(redis, keys=keys, spec=parse_spec(spec))
    now_ms = int(time.time() * 1000)
    entries = [
        make_entry(brand="B", review=f"r{i}", kind="added", pushed_ms=now_ms, occurred_ms=now_ms).encode()
        for i in range(reviews)
    ]
    settings = await read_settings(redis, keys=keys)
    await append_entries(redis, keys=keys, by_user={u: entries for u in users}, settings=settings, now_s=now_ms / 1000)
    return keys


async def _old_record(redis: aioredis.Redis, keys: BusKeys, user: str, *, owner: str, lease_until_ms: int) -> int:
    """An in-flight batch as the earlier release wrote it; returns its claimed time."""
    claimed_ms = int(time.time() * 1000) - 5000
    line = make_entry(brand="B", review="old-1", kind="updated", pushed_ms=claimed_ms, occurred_ms=claimed_ms)
    fields = {
        "digest_id": OLD_DIGEST_ID,
        "owner": owner,
        "lease_until_ms": lease_until_ms,
        "entries": line.encode(),
        "claimed_ms": claimed_ms,
        "attempts": 1,
    }
    await redis.hset(keys.inflight(user), mapping=fields)  # type: ignore[arg-type]
    return claimed_ms


async def test_a_new_batch_is_held_in_two_fields_and_released(redis: aioredis.Redis, stream: str) -> None:
    keys = await _setup(redis, stream, users=["1"])
    claims = Claims(redis, keys=keys, owner="puller-a", lease_s=30, max_bytes=60_000, max_ids_per_brand=20)
    now_ms = int(time.time() * 1000)
    claimed = await claims.claim_batches(["1"], now_ms=now_ms, max_items=100)
    (batch,) = claimed.batches
    record = await redis.hgetall(keys.inflight("1"))
    assert set(record) == {"claim", "entries"}
    assert record["claim"] == f"{batch.digest_id} {now_ms} {now_ms + 30_000} puller-a"
    assert record["entries"] == batch.raw
    assert batch.left == 0, "the pop showed the list empty"
    settings = await read_settings(redis, keys=keys)
    assert await claims.finish(claimed, settings=settings, now_s=time.time()) == 1
    assert await redis.exists(keys.inflight("1")) == 0


async def test_a_record_of_the_earlier_layout_is_resumed_with_its_digest_id(redis: aioredis.Redis, stream: str) -> None:
    keys = await _setup(redis, stream, users=["1"])
    claimed_ms = await _old_record(redis, keys, "1", owner="puller-gone", lease_until_ms=int(time.time() * 1000) - 1)
    sink = CollectingSink()
    puller = Puller(redis, keys=keys, sink=sink, settings=PullerSettings())
    assert await puller.cycle() == 1
    (digest,) = sink.digests
    assert digest.digest_id == OLD_DIGEST_ID
    doc = json.loads(digest.content)
    assert doc["brands"]["B"]["review_ids"] == ["old-1"], "the batch's own entries, not the pending one"
    assert doc["window"]["end"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(claimed_ms / 1000)))
    assert puller.totals["resumed"] == 1
    assert puller.totals["released"] == 1, "finish recognises the old record's digest id"
    assert await redis.exists(keys.inflight("1")) == 0
    assert await redis.llen(keys.pending("1")) == 1, "the pending entry waits for the next batch"


async def test_a_running_lease_of_the_earlier_layout_is_respected(redis: aioredis.Redis, stream: str) -> None:
    keys = await _setup(redis, stream, users=["1"])
    await _old_record(redis, keys, "1", owner="puller-other", lease_until_ms=int(time.time() * 1000) + 60_000)
    claims = Claims(redis, keys=keys, owner="puller-a", lease_s=30, max_bytes=60_000, max_ids_per_brand=20)
    claimed = await claims.claim_batches(["1"], now_ms=int(time.time() * 1000), max_items=100)
    assert claimed.busy == ["1"]
    assert claimed.batches == []
    assert (await redis.hgetall(keys.inflight("1")))["owner"] == "puller-other"


async def test_a_running_lease_is_respected_and_its_owner_resumes_it(redis: aioredis.Redis, stream: str) -> None:
    keys = await _setup(redis, stream, users=["1"])
    mine = Claims(redis, keys=keys, owner="puller-a", lease_s=30, max_bytes=60_000, max_ids_per_brand=20)
    other = Claims(redis, keys=keys, owner="puller-b", lease_s=30, max_bytes=60_000, max_ids_per_brand=20)
    now_ms = int(time.time() * 1000)
    (first,) = (await mine.claim_batches(["1"], now_ms=now_ms, max_items=100)).batches
    assert (await other.claim_batches(["1"], now_ms=now_ms + 1000, max_items=100)).busy == ["1"]
    (again,) = (await mine.claim_batches(["1"], now_ms=now_ms + 2000, max_items=100)).batches
    assert (again.digest_id, again.resumed, again.content) == (first.digest_id, True, first.content)
    (taken,) = (await other.claim_batches(["1"], now_ms=now_ms + 40_000, max_items=100)).batches
    assert (taken.digest_id, taken.resumed, taken.content) == (first.digest_id, True, first.content)
    claim = await redis.hget(keys.inflight("1"), "claim")
    assert claim == f"{first.digest_id} {now_ms} {now_ms + 70_000} puller-b"


async def test_a_forwarding_pass_takes_entries_back_only_for_digests_python_builds(
    redis: aioredis.Redis, stream: str
) -> None:
    keys = await _setup(redis, stream, users=["small", "large"], reviews=3)
    await redis.rpush(keys.pending("large"), *[f"B|r-{i:05d}|A|1|1" for i in range(400)])
    claims = Claims(redis, keys=keys, owner="puller-a", lease_s=30, max_bytes=600, max_ids_per_brand=1_000)
    now_ms = int(time.time() * 1000)
    claimed = await claims.claim_batches(["small", "large"], now_ms=now_ms, max_items=100, details=False)
    by_user = {batch.user: batch for batch in claimed.batches}
    small, large = by_user["small"], by_user["large"]
    assert small.content, "rendered by the script"
    assert small.raw == "", "so no entries sent back"
    assert small.left == 0
    assert large.content == b"", "too large for one document: Python builds it"
    assert len(large.entries) == 100, "from the entries sent back"
    assert large.left is None, "a full batch does not pay an LLEN unless asked"

    detailed = await claims.claim_batches(["small", "large"], now_ms=now_ms + 1, max_items=100)
    by_user = {batch.user: batch for batch in detailed.batches}
    assert [entry.review for entry in by_user["small"].entries] == ["r0", "r1", "r2"], "asked for: sent back"
    assert by_user["large"].left == 303
