"""Pipelined script calls on a single node and on a cluster: routed by slot, reloaded after a flush, never run twice."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.cluster import key_slot

from tests.conftest import BOTH_REDIS
from workers.common.contract.addresses import is_cluster_url
from workers.common.contract.errors import ServiceUnavailable
from workers.common.contract.keys import BusKeys
from workers.common.runtime.replication import require_replicas
from workers.common.runtime.scripts import run_scripts, run_scripts_or_raise

pytestmark = BOTH_REDIS

INCR = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


async def test_calls_on_every_shard_run_once_each_and_keep_their_order(redis: aioredis.Redis, stream: str) -> None:
    keys = BusKeys(stream)
    counters = [f"{keys.user_prefix(shard)}counter" for shard in keys.shards]
    assert len({key_slot(k.encode()) for k in counters}) > 1, "the calls go to several slots"
    script = redis.register_script(INCR)
    calls = [(script, [key], [shard + 1]) for shard, key in enumerate(counters)]
    assert await run_scripts_or_raise(redis, calls) == [shard + 1 for shard in keys.shards]
    await redis.script_flush()  # as after a restart or a failover: the nodes forgot the script
    assert await run_scripts_or_raise(redis, calls) == [2 * (shard + 1) for shard in keys.shards]
    assert [int(await redis.get(k)) for k in counters] == [2 * (shard + 1) for shard in keys.shards]


async def test_a_failing_call_is_its_own_result_and_the_others_run(redis: aioredis.Redis, stream: str) -> None:
    keys = BusKeys(stream)
    good, bad = f"{keys.user_prefix(0)}n", f"{keys.user_prefix(1)}n"
    await redis.set(bad, "not a number")
    script = redis.register_script(INCR)
    results = await run_scripts(redis, [(script, [good], [5]), (script, [bad], [5])])
    assert results[0] == 5
    assert isinstance(results[1], aioredis.ResponseError)
    assert await redis.get(good) == "5"


async def test_writes_wait_for_a_replica_and_without_one_are_a_temporary_redis_error(
    redis: aioredis.Redis, stream: str, redis_url: str
) -> None:
    keys = BusKeys(stream)
    key = f"{keys.user_prefix(3)}n"
    script = redis.register_script(INCR)
    require_replicas(redis, 1, timeout_s=0.2)
    if is_cluster_url(redis_url):  # every master of the test cluster has a replica
        assert await run_scripts_or_raise(redis, [(script, [key], [1])]) == [1]
    else:  # the local node has none: the write happened, but nobody may act on it
        with pytest.raises(ServiceUnavailable) as caught:
            await run_scripts_or_raise(redis, [(script, [key], [1])])
        assert caught.value.dependency == "redis"
    require_replicas(redis, 0, timeout_s=0.2)
    assert await run_scripts_or_raise(redis, [(script, [key], [1])]) == [2]
