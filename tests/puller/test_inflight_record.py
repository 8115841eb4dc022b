"""The shard's in-flight hash: one field per user holding a batch (its claim line and entries), records of the
earlier per-user layouts resumed with their digest ids and moved into it, and a pass that only forwards digests
takes no raw entries back from Redis."""

from __future__ import annotations

import json
import time

import pytest
import redis.asyncio as aioredis

from tests.puller.collect import CollectingSink
from tests.support.bus import held
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


async def _old_record(
    redis: aioredis.Redis, keys: BusKeys, user: str, *, owner: str, lease_until_ms: int, fields: int = 6
) -> int:
    """An in-flight batch as an earlier release wrote it, a hash of the user's own (`fields`: 6 for the first
    layout, 2 for `claim` and `entries`); returns its claimed time."""
    claimed_ms = int(time.time() * 1000) - 5000
    line = make_entry(brand="B", review="old-1", kind="updated", pushed_ms=claimed_ms, occurred_ms=claimed_ms)
    if fields == 6:
        record: dict[str, str | int] = {
            "digest_id": OLD_DIGEST_ID,
            "owner": owner,
            "lease_until_ms": lease_until_ms,
            "entries": line.encode(),
            "claimed_ms": claimed_ms,
            "attempts": 1,
        }
    else:
        record = {"claim": f"{OLD_DIGEST_ID} {claimed_ms} {lease_until_ms} {owner}", "entries": line.encode()}
    await redis.hset(keys.user_inflight(user), mapping=record)  # type: ignore[arg-type]
    return claimed_ms


async def test_a_new_batch_is_one_field_of_the_shards_hash_and_released(redis: aioredis.Redis, stream: str) -> None:
    keys = await _setup(redis, stream, users=["1"])
    shard = keys.shard_of("1")
    claims = Claims(redis, keys=keys, owner="puller-a", lease_s=30, max_bytes=60_000, max_ids_per_brand=20)
    now_ms = int(time.time() * 1000)
    claimed = await claims.claim_batches(["1"], now_ms=now_ms, max_items=100)
    (batch,) = claimed.batches
    record = await redis.hget(keys.inflight(shard), "1")
    assert record == f"{batch.digest_id} {now_ms} {now_ms + 30_000} puller-a\n{batch.raw}"
    assert await redis.exists(keys.user_inflight("1")) == 0, "no key of the user's own"
    assert batch.left == 0, "the pop showed the list empty"
    settings = await read_settings(redis, keys=keys)
    finished_s = time.time()
    assert await claims.finish(claimed, settings=settings, now_s=finished_s) == 1
    assert await redis.hexists(keys.inflight(shard), "1") is False
    assert await redis.hget(keys.last_pulled_at(shard), "1") == repr(finished_s)


async def test_finish_leaves_a_batch_that_is_no_longer_ours(redis: aioredis.Redis, stream: str) -> None:
    keys = await _setup(redis, stream, users=["1", "2"])
    mine = Claims(redis, keys=keys, owner="puller-a", lease_s=30, max_bytes=60_000, max_ids_per_brand=20)
    other = Claims(redis, keys=keys, owner="puller-b", lease_s=30, max_bytes=60_000, max_ids_per_brand=20)
    settings = await read_settings(redis, keys=keys)
    now_ms = int(time.time() * 1000)
    claimed = await mine.claim_batches(["1", "2"], now_ms=now_ms, max_items=100)
    taken = await other.claim_batches(["1"], now_ms=now_ms + 40_000, max_items=100)  # 1's lease ran out
    assert await other.finish(taken, settings=settings, now_s=time.time()) == 1
    await redis.rpush(keys.pending("1"), "B|r-next|A|1|1")
    (newer,) = (await other.claim_batches(["1"], now_ms=now_ms + 41_000, max_items=100)).batches
    assert newer.digest_id != claimed.batches[0].digest_id
    assert await mine.finish(claimed, settings=settings, now_s=time.time()) == 1, "only 2's batch is still ours"
    assert await held(redis, keys, "1", "2") == [True, False], "the other puller's newer batch stays"


@pytest.mark.parametrize("fields", [6, 2], ids=["six-field record", "claim-and-entries record"])
async def test_a_record_of_an_earlier_layout_is_resumed_with_its_digest_id(
    redis: aioredis.Redis, stream: str, fields: int
) -> None:
    keys = await _setup(redis, stream, users=["1"])
    lease_until_ms = int(time.time() * 1000) - 1
    claimed_ms = await _old_record(redis, keys, "1", owner="puller-gone", lease_until_ms=lease_until_ms, fields=fields)
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
    assert await redis.exists(keys.user_inflight("1")) == 0, "moved into the shard's hash, then released"
    assert await held(redis, keys, "1") == [False]
    assert await redis.llen(keys.pending("1")) == 1, "the pending entry waits for the next batch"


async def test_a_user_held_in_both_layouts_gets_both_batches(redis: aioredis.Redis, stream: str) -> None:
    """While pullers of two releases run side by side, a user may hold a batch in each layout: both are handed on,
    each once, the shard's first."""
    keys = await _setup(redis, stream, users=["1"])
    claims = Claims(redis, keys=keys, owner="puller-a", lease_s=30, max_bytes=60_000, max_ids_per_brand=20)
    now_ms = int(time.time() * 1000)
    first = await claims.claim_batches(["1"], now_ms=now_ms, max_items=100)
    await _old_record(redis, keys, "1", owner="puller-gone", lease_until_ms=now_ms - 1, fields=2)
    settings = await read_settings(redis, keys=keys)
    again = await claims.claim_batches(["1"], now_ms=now_ms + 1, max_items=100)
    assert [b.digest_id for b in again.batches] == [first.batches[0].digest_id], "the shard's batch first"
    assert await claims.finish(again, settings=settings, now_s=time.time()) == 1
    (old,) = (await claims.claim_batches(["1"], now_ms=now_ms + 2, max_items=100)).batches
    assert (old.digest_id, old.resumed, [e.review for e in old.entries]) == (OLD_DIGEST_ID, True, ["old-1"])
    assert await redis.exists(keys.user_inflight("1")) == 0


async def test_a_running_lease_of_the_earlier_layout_is_respected(redis: aioredis.Redis, stream: str) -> None:
    keys = await _setup(redis, stream, users=["1"])
    await _old_record(redis, keys, "1", owner="puller-other", lease_until_ms=int(time.time() * 1000) + 60_000)
    claims = Claims(redis, keys=keys, owner="puller-a", lease_s=30, max_bytes=60_000, max_ids_per_brand=20)
    claimed = await claims.claim_batches(["1"], now_ms=int(time.time() * 1000), max_items=100)
    assert claimed.busy == ["1"]
    assert claimed.batches == []
    assert (await redis.hgetall(keys.user_inflight("1")))["owner"] == "puller-other", "left where it is"
    assert await held(redis, keys, "1") == [False]


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
    record = await redis.hget(keys.inflight(keys.shard_of("1")), "1")
    assert record == f"{first.digest_id} {now_ms} {now_ms + 70_000} puller-b\n{first.raw}"


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
