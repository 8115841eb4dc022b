"""Several real core processes on one stream: shared confirmations, long polls woken across replicas."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import free_port
from tests.core.helpers import create, take
from tests.support.processes import RoomProcess, core_process
from tests.support.tokens import SECRET, bearer
from tests.support.waiting import eventually
from workers.common.contract import paths
from workers.common.contract.names import Topology
from workers.common.contract.wire import BrokerConfirmation


@pytest.fixture
async def cores(env: dict[str, str], redis: object, amqp: AbstractRobustConnection) -> AsyncIterator[list[RoomProcess]]:
    settings_env = {
        **env,
        "NOTIFIER_JWT_SECRET": SECRET,
        "NOTIFIER_AMQP_PREFETCH": "1",
        "NOTIFIER_LOG_LEVEL": "WARNING",
        "NOTIFIER_CORE_RELAY_BLOCK_S": "0.2",
    }
    async with contextlib.AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(
                stack.enter_async_context(core_process(settings_env, http_port=free_port(), ops_port=free_port()))
                for _ in range(2)
            )
        )
        yield list(started)


async def test_two_core_processes_share_the_confirmations(
    cores: list[RoomProcess], amqp: AbstractRobustConnection, topology: Topology
) -> None:
    one, two = cores
    channel = await amqp.channel()
    queue = await channel.declare_queue(topology.confirmations_queue, passive=True)
    assert queue.declaration_result.consumer_count == 2
    async with httpx.AsyncClient(base_url=one.url, timeout=30) as http:
        created = [(f"user-{i}", await create(http, [f"user-{i}"], f"s-{i}")) for i in range(60)]
    exchange = await channel.get_exchange(topology.confirmations_exchange)
    for user, nid in created:
        body = BrokerConfirmation(user_id=user, id=nid).SerializeToString()
        await exchange.publish(aio_pika.Message(body), routing_key=topology.confirmations_routing_key)

    async def all_handled() -> bool:
        counts = [await core.metric("notifier_core_confirmations_total", {"outcome": "delivered"}) for core in cores]
        return sum(counts) == len(created)

    await eventually(all_handled, timeout_s=20)
    for core in cores:
        assert await core.metric("notifier_core_confirmations_total", {"outcome": "delivered"}) > 0
    async with httpx.AsyncClient(base_url=two.url, timeout=30) as http:
        for user, nid in created[:5]:
            response = await http.get(paths.DELIVERED_ONE.replace("{id}", nid), headers=bearer(user))
            assert response.status_code == 200
            assert await take(http, user) == []


async def test_a_long_poll_on_one_process_wakes_on_a_create_at_another(cores: list[RoomProcess]) -> None:
    one, two = cores
    async with (
        httpx.AsyncClient(base_url=one.url, timeout=30) as first,
        httpx.AsyncClient(base_url=two.url, timeout=30) as second,
    ):
        poll = asyncio.create_task(take(first, "alice", wait=30))

        async def waiting() -> bool:
            return await one.metric("notifier_core_waiting_polls", {}) == 1

        await eventually(waiting)
        nid = await create(second, ["alice"], "cross")
        assert [n["id"] for n in await asyncio.wait_for(poll, 20)] == [nid]
