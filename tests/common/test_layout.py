"""NOTIFIER_SHARDS and the stream's recorded layout: the first user records the count, another count fails
closed (a room exits 2, a command 1, each with one line), and the bus runs end to end in the count set."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import aio_pika
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import free_port
from tests.support.processes import notifier, start_room
from workers.common.contract.errors import InvalidSettings
from workers.common.contract.keys import BusKeys, layout_key, shard_of
from workers.common.contract.names import Topology
from workers.common.contract.streamspec import parse_spec
from workers.common.contract.wire import ReviewEvent, to_timestamp
from workers.common.runtime.amqp import declare_topology
from workers.common.runtime.layout import claim_layout
from workers.common.runtime.mapping_store import write_mapping

USERS = [str(user) for user in range(1, 13)]


def mismatch(stream: str, *, recorded: int, configured: int) -> str:
    return (
        f"stream {stream} is laid out in {recorded} shards; NOTIFIER_SHARDS={configured} would read other keys "
        "(drain the stream to change it)"
    )


async def shard_tags(redis: aioredis.Redis, stream: str) -> set[int]:
    """The shard of every hash-tagged key the stream has in Redis."""
    tag = re.compile(rf"\{{{re.escape(stream)}\.(\d+)\}}")
    found = set()
    async for key in redis.scan_iter(match=f"nf:{stream}:*", count=1000):
        match = tag.search(key)
        if match:
            found.add(int(match.group(1)))
    return found


async def load_mapping(redis: aioredis.Redis, stream: str, *, shards: int) -> None:
    spec = parse_spec({"brands": {"Brand1": USERS}, "digest": {"windowSeconds": 0, "maxItems": 100}})
    await write_mapping(redis, keys=BusKeys(stream, shard_count=shards), spec=spec)


async def test_first_caller_records_the_count_the_same_count_passes_another_is_refused(
    redis: aioredis.Redis, stream: str
) -> None:
    await claim_layout(redis, stream, 4)
    assert await redis.get(layout_key(stream)) == "4"
    await claim_layout(redis, stream, 4)
    with pytest.raises(InvalidSettings) as refused:
        await claim_layout(redis, stream, 16)
    assert str(refused.value) == mismatch(stream, recorded=4, configured=16)
    assert await redis.get(layout_key(stream)) == "4", "a refused count records nothing"


async def test_a_room_configured_with_another_count_exits_2_with_one_line(
    redis: aioredis.Redis, stream: str, env: dict[str, str], tmp_path: Path
) -> None:
    await claim_layout(redis, stream, 16)
    room = start_room("monitor", env={**env, "NOTIFIER_SHARDS": "4"}, log_dir=tmp_path, ops_port=free_port())
    try:
        code = await asyncio.to_thread(room.process.wait, 30)
    finally:
        room.terminate()
    assert code == 2, room.log
    assert mismatch(stream, recorded=16, configured=4) in room.log


@pytest.mark.parametrize(
    "command",
    [("push-valid-data",), ("push-invalid-data", "--user", "7777"), ("pull",), ("check",), ("clean", "1")],
)
async def test_a_command_configured_with_another_count_fails_before_touching_a_shard(
    redis: aioredis.Redis, stream: str, env: dict[str, str], command: tuple[str, ...]
) -> None:
    await claim_layout(redis, stream, 16)
    await load_mapping(redis, stream, shards=16)
    result = await asyncio.to_thread(notifier, *command, env={**env, "NOTIFIER_SHARDS": "4"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"error: {mismatch(stream, recorded=16, configured=4)}" in result.stderr.splitlines()
    assert await shard_tags(redis, stream) == set(), "nothing was written in either layout"


async def test_the_bus_runs_end_to_end_in_four_shards(
    redis: aioredis.Redis,
    stream: str,
    env: dict[str, str],
    tmp_path: Path,
    amqp: AbstractRobustConnection,
    topology: Topology,
) -> None:
    await load_mapping(redis, stream, shards=4)
    four = {**env, "NOTIFIER_SHARDS": "4", "NOTIFIER_CORE_URL": "", "NOTIFIER_PULLER_POLL_INTERVAL_S": "0.05"}
    pusher = start_room("pusher", env=four, log_dir=tmp_path, ops_port=free_port())
    puller = start_room("puller", env=four, log_dir=tmp_path, ops_port=free_port())
    try:
        await pusher.wait_ready()
        await puller.wait_ready()
        channel = await amqp.channel(publisher_confirms=True)
        declared = await declare_topology(channel, topology)
        review = ReviewEvent(
            brand_id="Brand1", review_id="r-four", kind=ReviewEvent.ADDED, occurred_at=to_timestamp(time.time())
        )
        await declared.reviews.publish(
            aio_pika.Message(review.SerializeToString()), routing_key=topology.reviews_routing_key
        )
        await channel.close()
        for user in USERS:
            await puller.wait_log(f"for user {user}: 1 reviews from 1 entries")
    finally:
        assert pusher.terminate() == 0, pusher.log
        assert puller.terminate() == 0, puller.log

    assert await redis.get(layout_key(stream)) == "4"
    keys = BusKeys(stream, shard_count=4)
    stamped = [await redis.hexists(keys.last_pulled_at(keys.shard_of(user)), user) for user in USERS]
    assert stamped == [True] * len(USERS), "each user's keys are where a 4-shard reader looks"
    used = {shard_of(user, 4) for user in USERS}
    assert len(used) > 1, "the users spread over several shards"
    assert used <= set(range(4))
    assert await shard_tags(redis, stream) == used, "every sharded key is in a user's shard of 4"
