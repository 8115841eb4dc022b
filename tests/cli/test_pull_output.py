"""`notifier pull` prints every review id it drained (design section 13); `--summary` prints the totals only."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from tests.conftest import REDIS_URL
from tests.support.processes import clean_env, notifier
from workers.common.contract.entries import make_entry
from workers.common.contract.keys import BusKeys
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_settings, write_mapping
from workers.pusher.fanout import FanOut
from workers.pusher.writer import append_entries

REVIEWS = 45
"""More than any former cut (20 ids per user)."""


async def pending(redis: aioredis.Redis, stream: str, *, max_items: int = 1000) -> list[str]:
    """Load a mapping (digests of up to `max_items` entries) and give user 1 REVIEWS pending reviews; returns
    their ids."""
    keys = BusKeys(stream)
    spec = {"brands": {"Brand1": ["1"]}, "digest": {"maxItems": max_items}}
    await write_mapping(redis, keys=keys, spec=parse_spec(spec))
    now_ms = int(time.time() * 1000)
    fan = FanOut()
    ids = [f"r-{n:04d}" for n in range(REVIEWS)]
    for review in ids:
        fan.add(make_entry(brand="Brand1", review=review, kind="added", pushed_ms=now_ms, occurred_ms=now_ms), ["1"])
    settings = await read_settings(redis, keys=keys)
    await append_entries(redis, keys=keys, by_user=fan.by_user, settings=settings, now_s=now_ms / 1000)
    return ids


def env(stream: str) -> dict[str, str]:
    return {**clean_env(), "NOTIFIER_REDIS_URL": REDIS_URL, "NOTIFIER_STREAM": stream, "COLUMNS": "80"}


async def test_pull_prints_every_review_id_it_drained(redis: aioredis.Redis, stream: str) -> None:
    ids = await pending(redis, stream)
    result = notifier("pull", env=env(stream))
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("user 1:")]
    assert line == f"user 1: {REVIEWS} entries, reviews {', '.join(ids)}"


async def test_pull_summary_prints_the_totals_only(redis: aioredis.Redis, stream: str) -> None:
    await pending(redis, stream)
    result = notifier("pull", "--summary", env=env(stream))
    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith("user ")], "no line per user"
    assert f"1 users drained: {REVIEWS} entries, {REVIEWS} reviews in 1 digests" in result.stdout.splitlines()


async def test_pull_summary_of_a_user_drained_into_several_digests(redis: aioredis.Redis, stream: str) -> None:
    await pending(redis, stream, max_items=20)
    result = notifier("pull", "--summary", env=env(stream))
    assert result.returncode == 0, result.stderr
    assert f"1 users drained: {REVIEWS} entries, {REVIEWS} reviews in 3 digests" in result.stdout.splitlines()
    assert await redis.llen(BusKeys(stream).pending("1")) == 0, "drained to the end"
