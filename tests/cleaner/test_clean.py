"""`notifier clean`: removes exactly a user's bus data, dry runs remove nothing, misuse is a clear error."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from tests.support.bus import indexed
from tests.support.processes import notifier
from workers.common.contract.keys import BusKeys
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_settings, write_mapping
from workers.pusher.writer import append_entries


async def seed(redis: aioredis.Redis, stream: str) -> BusKeys:
    keys = BusKeys(stream)
    await write_mapping(redis, keys=keys, spec=parse_spec({"brands": {"B": ["1"]}}))
    settings = await read_settings(redis, keys=keys)
    now = time.time()
    by_user = {"1": ["B|r1|A|1|1"], "900": ["B|r2|A|1|1", "B|r3|A|1|1"], "901": ["B|r4|A|1|1"]}
    await append_entries(redis, keys=keys, by_user=by_user, settings=settings, now_s=now)
    shard = keys.shard_of("900")
    await redis.hset(keys.inflight(shard), "900", "d 1 2 puller-gone\nB|r0|A|1|1\nB|r5|A|1|1")
    await redis.hset(keys.last_pulled_at(shard), "900", now)
    # 901 holds a batch and a stamp in the earlier per-user layout
    await redis.hset(keys.user_inflight("901"), mapping={"claim": "e 1 2 puller-gone", "entries": "B|r6|A|1|1"})
    await redis.set(keys.user_last_pulled_at("901"), now)
    return keys


async def left_of(redis: aioredis.Redis, keys: BusKeys, user: str) -> list[object]:
    """What is left of the user's bus data: its own keys that exist, and its fields in the shard's hashes."""
    pending, user_inflight, user_stamp, inflight, stamps = keys.user_keys(user)
    found: list[object] = [key for key in (pending, user_inflight, user_stamp) if await redis.exists(key)]
    found += [key for key in (inflight, stamps) if await redis.hexists(key, user)]
    return found


def clean(stream: str, env: dict[str, str], *args: str) -> str:
    """The output of `notifier clean ARGS --stream STREAM`, which must succeed."""
    result = notifier("clean", *args, "--stream", stream, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("user", "removed", "other"),
    [
        ("900", "2 pending entries, an in-flight batch of 2 entries", "901"),
        ("901", "1 pending entries, an in-flight batch of 1 entries", "900"),
    ],
    ids=["shard's hashes", "earlier per-user keys"],
)
async def test_clean_user_removes_its_data_and_index_entries_only(
    redis: aioredis.Redis, stream: str, env: dict[str, str], user: str, removed: str, other: str
) -> None:
    keys = await seed(redis, stream)
    output = clean(stream, env, user)
    assert f"user {user}: removed {removed}, last_pulled_at, its index entries" in output
    assert await left_of(redis, keys, user) == []
    assert user not in await indexed(redis, keys, keys.due)
    assert user not in await indexed(redis, keys, keys.pending_since)
    assert len(await left_of(redis, keys, other)) == 3, "the other user's pending list, batch and stamp stay"
    assert await redis.llen(keys.pending("1")) == 1


async def test_dry_run_shows_and_removes_nothing(redis: aioredis.Redis, stream: str, env: dict[str, str]) -> None:
    keys = await seed(redis, stream)
    output = clean(stream, env, "--invalid", "--dry-run")
    assert "user 900: would remove" in output
    assert "user 901: would remove 1 pending entries" in output
    assert "would remove 2 invalid users" in output
    assert await redis.llen(keys.pending("900")) == 2
    assert "901" in await indexed(redis, keys, keys.pending_since)


async def test_clean_invalid_removes_every_user_of_no_brand_and_keeps_valid_ones(
    redis: aioredis.Redis, stream: str, env: dict[str, str]
) -> None:
    keys = await seed(redis, stream)
    output = clean(stream, env, "--invalid")
    assert "removed 2 invalid users" in output
    assert set(await indexed(redis, keys, keys.pending_since)) == {"1"}
    assert await redis.llen(keys.pending("1")) == 1


async def test_misuse_and_unknown_users_are_clear_errors(
    redis: aioredis.Redis, stream: str, env: dict[str, str]
) -> None:
    unknown = notifier("clean", "nobody", "--stream", stream, env=env)
    assert unknown.returncode == 1
    assert "user nobody has no data" in unknown.stderr
    no_mapping = notifier("clean", "--invalid", "--stream", stream, env=env)
    assert no_mapping.returncode == 1
    assert "has no mapping" in no_mapping.stderr
    both = notifier("clean", "1", "--invalid", "--stream", stream, env=env)
    assert both.returncode == 2
    neither = notifier("clean", "--stream", stream, env=env)
    assert neither.returncode == 2
    bad_id = notifier("clean", "a b", "--stream", stream, env=env)
    assert bad_id.returncode == 2
    assert "Traceback" not in unknown.stderr + no_mapping.stderr + both.stderr + bad_id.stderr
