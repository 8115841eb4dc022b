"""A Redis client sends each command once: after a lost connection the caller's retry decides, never redis-py,
so a write that ran is not run again behind the caller's back (workers/common/runtime/redis_once.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer
from workers.common.contract.errors import ServiceUnavailable
from workers.common.runtime.connections import redis_client
from workers.common.runtime.faults import temporary
from workers.common.runtime.scripts import ScriptCall, run_scripts_or_raise

COUNT = "redis.call('INCR', KEYS[1]) return 0"
"""Answers 0, as the pusher's append does when no user became due: a falsy reply."""


def one_key_per_master(cluster: RedisCluster) -> list[str]:
    keys: dict[int, str] = {}
    for n in range(1000):
        key = f"{{once-{n}}}:count"
        keys.setdefault(cluster.master_of(key).port, key)
        if len(keys) == cluster.masters:
            return list(keys.values())
    raise AssertionError("no key for some master")


async def counts(client: aioredis.Redis, keys: list[str]) -> list[int]:
    return [int(await client.get(key) or 0) for key in keys]


async def test_a_lost_master_neither_runs_the_other_masters_calls_twice_nor_strands_the_client(
    redis_cluster: RedisCluster,
) -> None:
    keys = one_key_per_master(redis_cluster)
    client = redis_client(redis_cluster.url, decode_responses=True)
    script = client.register_script(COUNT)
    calls: list[ScriptCall] = [(script, [key], []) for key in keys]
    try:
        assert await run_scripts_or_raise(client, calls) == [0, 0, 0]
        victim = redis_cluster.kill_master_of(keys[-1])  # the client still has the old layout
        try:
            sends, results, failures = 1, None, []
            while results is None and sends < 6:
                sends += 1
                try:
                    results = await run_scripts_or_raise(client, calls)
                except RedisConnectionError as exc:  # the old connection breaks, the old address refuses
                    failures.append(exc)
                    await asyncio.sleep(0.2)  # as the room's retry waits before the next try
            assert all(isinstance(temporary(exc), ServiceUnavailable) for exc in failures)
            assert results == [0, 0, 0], "the client found the promoted master"
            healthy = await counts(client, keys[:-1])
            assert all(2 <= ran <= sends for ran in healthy), f"{sends} sends ran the calls {healthy} times"
        finally:
            redis_cluster.restart(victim)
    finally:
        for key in keys:
            await client.delete(key)
        await client.aclose()


async def test_a_connection_lost_after_a_write_ran_raises_instead_of_writing_again(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    client = redis_client(server.url)
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.eval(COUNT, 1, "count")
            pipe.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no")  # the reply is lost
            pipe.ping()
            with pytest.raises(RedisConnectionError):
                await pipe.execute()
        assert await client.get("count") == b"1"
    finally:
        await client.aclose()
        server.stop()
