"""Shards spread over a room's live replicas: disjoint, covering, moving only what a leaving member held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import BOTH_REDIS, REDIS_URL
from tests.support.metrics import sample
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually
from workers.common.contract.keys import members_key
from workers.common.runtime.assignment import ShardAssignment, owner_of, shards_of
from workers.common.runtime.connections import redis_client
from workers.common.runtime.faults import temporary

SHARDS = range(16)


def member(redis: aioredis.Redis, stream: str, name: str, *, ttl_s: float = 5.0, room: str = "r") -> ShardAssignment:
    return ShardAssignment(redis, stream=stream, room=room, member=name, shards=SHARDS, ttl_s=ttl_s, beat_s=0.05)


async def settle(*members: ShardAssignment) -> None:
    """Beat every member twice: after the second round each has seen all the others."""
    for _ in range(2):
        for one in members:
            await one.beat()


def assert_partition(*members: ShardAssignment) -> None:
    owned = [shard for one in members for shard in one.mine]
    assert sorted(owned) == list(SHARDS), "every shard has exactly one owner"


@BOTH_REDIS
@pytest.mark.parametrize("count", [2, 3])
async def test_members_get_disjoint_shards_that_cover_every_shard(
    redis: aioredis.Redis, stream: str, count: int
) -> None:
    members = [member(redis, stream, f"replica-{n}") for n in range(count)]
    await settle(*members)
    assert_partition(*members)
    names = [one.member for one in members]
    for one in members:
        assert one.members == sorted(names)
        assert one.mine == [s for s in SHARDS if owner_of(s, names) == one.member]
    assert await redis.zcard(members_key(stream, "r")) == count


async def test_before_its_first_beat_a_member_serves_every_shard(redis: aioredis.Redis, stream: str) -> None:
    first, second = member(redis, stream, "a"), member(redis, stream, "b")
    await first.beat()
    assert second.mine == list(SHARDS), "a replica that has not beaten yet leaves no shard unserved"
    assert first.mine == list(SHARDS), "a lone live member serves every shard"


async def test_a_member_that_leaves_hands_over_only_its_own_shards(redis: aioredis.Redis, stream: str) -> None:
    a, b, c = (member(redis, stream, name) for name in ("a", "b", "c"))
    await settle(a, b, c)
    before = {one.member: set(one.mine) for one in (a, b, c)}
    await c.leave()
    await a.beat()
    await b.beat()
    assert a.members == b.members == ["a", "b"]
    assert_partition(a, b)
    for one in (a, b):
        assert before[one.member] <= set(one.mine), "a remaining member keeps what it had"
        assert set(one.mine) - before[one.member] <= before["c"], "only the leaver's shards moved"


async def test_a_member_that_stops_beating_expires_and_its_shards_move(redis: aioredis.Redis, stream: str) -> None:
    a, b = member(redis, stream, "a"), member(redis, stream, "b")
    gone = member(redis, stream, "gone", ttl_s=0.3)
    await settle(a, b, gone)
    assert len(a.members) == 3
    held = set(gone.mine)

    async def gone_expired() -> bool:
        await a.beat()
        return a.members == ["a", "b"]

    await eventually(gone_expired, what="the silent member dropped out")
    await b.beat()
    assert b.members == ["a", "b"]
    assert_partition(a, b)
    assert held <= set(a.mine) | set(b.mine), "no shard of the silent member is left unserved"


async def test_a_clean_run_beats_until_stopping_and_then_leaves(redis: aioredis.Redis, stream: str) -> None:
    a, b = member(redis, stream, "a", room="run"), member(redis, stream, "b", room="run")
    await b.beat()
    stopping = asyncio.Event()
    running = asyncio.create_task(a.run(stopping))

    async def a_joined() -> bool:
        await b.beat()
        return b.members == ["a", "b"]

    await eventually(a_joined, what="the running member joined")
    await eventually(lambda: a.members == ["a", "b"], what="the running member saw the other")
    assert_partition(a, b)
    assert sample("notifier_assignment_shards", {"room": "run"}) in {len(a.mine), len(b.mine)}
    stopping.set()
    await running
    assert await redis.zscore(members_key(stream, "run"), "a") is None, "a clean stop leaves at once"
    await b.beat()
    assert b.mine == list(SHARDS)


@pytest.fixture
async def cut_off(stream: str) -> AsyncIterator[tuple[TcpProxy, aioredis.Redis]]:
    """A Redis client that goes through a proxy the test can cut."""
    host, port = REDIS_URL.removeprefix("redis://").split("/")[0].split(":")
    async with TcpProxy(host, int(port)) as proxy:
        client = redis_client(f"redis://127.0.0.1:{proxy.port}/0", decode_responses=True)
        yield proxy, client
        await client.aclose()


async def test_a_member_that_cannot_beat_keeps_its_last_assignment(
    redis: aioredis.Redis, stream: str, cut_off: tuple[TcpProxy, aioredis.Redis]
) -> None:
    proxy, through_proxy = cut_off
    a = member(through_proxy, stream, "a", ttl_s=0.3)
    b = member(redis, stream, "b")
    await settle(a, b)
    share = list(a.mine)
    assert share, "two members: each holds some shards"
    assert share != list(SHARDS)

    await proxy.cut()
    with pytest.raises(RedisConnectionError) as failed:
        await a.beat()
    assert temporary(failed.value) is not None, "the kernel reads it as Redis away, retried"
    assert a.mine == share, "a failed beat keeps the last assignment"

    async def b_alone() -> bool:
        await b.beat()
        return b.members == ["b"]

    await eventually(b_alone, what="the unreachable member expired for the others")
    assert b.mine == list(SHARDS), "the others take over what the unreachable member held"
    assert a.mine == share

    proxy.restore()
    await a.beat()
    await b.beat()
    assert_partition(a, b)
    assert a.mine == share == shards_of("a", members=["a", "b"], shards=SHARDS)


def test_a_beat_must_be_shorter_than_the_ttl(redis: aioredis.Redis, stream: str) -> None:
    with pytest.raises(ValueError, match="shorter than the membership ttl"):
        ShardAssignment(redis, stream=stream, room="r", member="a", shards=SHARDS, ttl_s=1.0, beat_s=1.0)
