"""`notifier clean`: removes exactly a user's bus data, dry runs remove nothing, misuse is a clear error."""

from __future__ import annotations

import time

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
    await redis.hset(keys.inflight("900"), mapping={"digest_id": "d", "entries": "B|r0|A|1|1"})
    await redis.set(keys.last_pulled_at("900"), now)
    return keys


def clean(stream: str, env: dict[str, str], *args: str) -> str:
    """The output of `notifier clean ARGS --stream STREAM`, which must succeed."""
    result = notifier("clean", *args, "--stream", stream, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_clean_user_removes_its_keys_and_index_entries_only(
    redis: aioredis.Redis, stream: str, env: dict[str, str]
) -> None:
    keys = await seed(redis, stream)
    output = clean(stream, env, "900")
    assert "user 900: removed 2 pending entries, an in-flight batch of 1 entries, last_pulled_at" in output
    assert await redis.exists(*keys.user_keys("900")) == 0
    assert "900" not in await indexed(redis, keys, keys.due)
    assert "900" not in await indexed(redis, keys, keys.pending_since)
    assert await redis.llen(keys.pending("901")) == 1
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
