"""Script calls batched into one pipeline per event-loop turn: results, errors and unloaded scripts per call."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from workers.core.batching import ScriptBatcher


async def test_concurrent_calls_each_get_their_own_result_even_for_a_script_redis_never_saw(
    redis: aioredis.Redis, stream: str
) -> None:
    script = redis.register_script(f"-- {uuid.uuid4()}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
    batcher = ScriptBatcher(redis)
    key = f"nf:{stream}:core:test-counter"
    totals = await asyncio.gather(*(batcher.call(script, keys=[key], args=[n]) for n in range(1, 21)))
    running = sorted(int(t) for t in totals)
    added = [after - before for before, after in zip([0, *running], running, strict=False)]
    assert sorted(added) == list(range(1, 21)), "every call ran once and saw its own total"
    assert int(await redis.get(key)) == sum(range(1, 21))


async def test_a_failing_call_fails_alone(redis: aioredis.Redis, stream: str) -> None:
    script = redis.register_script(
        f"-- {uuid.uuid4()}\nif ARGV[1] == 'bad' then return redis.error_reply('bad input') end return ARGV[1]"
    )
    batcher = ScriptBatcher(redis)
    key = f"nf:{stream}:core:unused"
    good, bad, also_good = await asyncio.gather(
        batcher.call(script, keys=[key], args=["a"]),
        batcher.call(script, keys=[key], args=["bad"]),
        batcher.call(script, keys=[key], args=["b"]),
        return_exceptions=True,
    )
    assert (good, also_good) == ("a", "b")
    assert isinstance(bad, ResponseError)
    with pytest.raises(ResponseError):  # the script is loaded now: the pipelined path
        await batcher.call(script, keys=[key], args=["bad"])
