"""Delivery confirmations from `notifier.confirmations`: delivered per user, everything else acked and counted."""

from __future__ import annotations

from collections.abc import Awaitable

import aio_pika
import httpx
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import take_bodies
from tests.core.helpers import create, take
from tests.support.metrics import sample
from tests.support.store import expire
from tests.support.tokens import bearer
from tests.support.waiting import eventually
from workers.common.contract import paths
from workers.common.contract.keys import StoreKeys
from workers.common.contract.names import Topology
from workers.common.contract.wire import BrokerConfirmation
from workers.core.main import CoreRoom

pytestmark = pytest.mark.usefixtures("core")


def outcomes() -> dict[str, float]:
    names = ("delivered", "already_delivered", "not_recipient", "expired", "unknown", "undecodable")
    return {n: sample("notifier_core_confirmations_total", {"outcome": n}) for n in names}


async def publish(amqp: AbstractRobustConnection, topology: Topology, *bodies: bytes) -> None:
    channel = await amqp.channel()
    exchange = await channel.get_exchange(topology.confirmations_exchange)
    for message_body in bodies:
        await exchange.publish(
            aio_pika.Message(message_body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=topology.confirmations_routing_key,
        )
    await channel.close()


def confirmation(user: str, notification_id: str) -> bytes:
    return BrokerConfirmation(user_id=user, id=notification_id).SerializeToString()


def settle(core: CoreRoom, count: int) -> Awaitable[bool]:
    """Completes once the room has handled `count` more confirmations than when this was called."""
    assert core.confirmations is not None
    target = core.confirmations.handled + count

    async def done() -> bool:
        assert core.confirmations is not None
        return core.confirmations.handled >= target

    return eventually(done)


def delivered_path(notification_id: str) -> str:
    return paths.DELIVERED_ONE.replace("{id}", notification_id)


async def test_confirmation_marks_delivered_for_that_user_only(
    http: httpx.AsyncClient, core: CoreRoom, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    nid = await create(http, ["alice", "bob"], "c1")
    before = outcomes()
    settled = settle(core, 1)
    await publish(amqp, topology, confirmation("alice", nid))
    await settled
    assert outcomes()["delivered"] == before["delivered"] + 1
    assert (await http.get(delivered_path(nid), headers=bearer("alice"))).status_code == 200
    assert await take(http, "alice") == []
    assert [n["id"] for n in await take(http, "bob")] == [nid]


async def test_confirmations_that_change_nothing_are_acked_and_counted(
    http: httpx.AsyncClient,
    core: CoreRoom,
    amqp: AbstractRobustConnection,
    topology: Topology,
    redis: aioredis.Redis,
    stream: str,
) -> None:
    keys = StoreKeys(stream)
    # A user of alice's shard is told apart as no recipient; elsewhere the notification is unknown (no copy).
    intruder = next(u for u in (f"mallory-{n}" for n in range(10_000)) if keys.shard_of(u) == keys.shard_of("alice"))
    stranger = next(u for u in (f"mallory-{n}" for n in range(10_000)) if keys.shard_of(u) != keys.shard_of("alice"))
    mine = await create(http, ["alice"], "c2")
    taken = await create(http, ["alice"], "c3")
    await take(http, "alice")
    later = await create(http, ["alice"], "c4")
    await expire(redis, keys, later, at=1)  # expired long ago
    before = outcomes()
    settled = settle(core, 5)
    await publish(
        amqp,
        topology,
        confirmation(intruder, mine),
        confirmation(stranger, mine),
        confirmation("alice", taken),
        confirmation("alice", later),
        confirmation("alice", "0000000000000000unknown"),
    )
    await settled
    after = outcomes()
    for outcome, more in (("not_recipient", 1), ("already_delivered", 1), ("expired", 1), ("unknown", 2)):
        assert after[outcome] == before[outcome] + more, outcome
    assert after["delivered"] == before["delivered"]
    assert (await http.get(delivered_path(mine), headers=bearer(intruder))).status_code == 404
    assert (await http.get(delivered_path(later), headers=bearer("alice"))).status_code == 404
    queue = await (await amqp.channel()).declare_queue(topology.confirmations_queue, passive=True)
    assert queue.declaration_result.message_count == 0


async def test_broadcast_confirmation_delivers_to_that_user_once(
    http: httpx.AsyncClient, core: CoreRoom, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    nid = await create(http, [], "c-all")
    before = outcomes()
    settled = settle(core, 2)
    await publish(amqp, topology, confirmation("alice", nid), confirmation("alice", nid))
    await settled
    after = outcomes()
    assert after["delivered"] == before["delivered"] + 1
    assert after["already_delivered"] == before["already_delivered"] + 1
    assert await take(http, "alice") == []
    assert (await http.get(delivered_path(nid), headers=bearer("alice"))).status_code == 200
    assert [n["id"] for n in await take(http, "bob")] == [nid]


async def test_undecodable_confirmations_go_to_the_dead_letter_queue(
    core: CoreRoom, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    before = outcomes()["undecodable"]
    await publish(amqp, topology, b"\xff\xfe not protobuf", confirmation("", "x"))
    bodies = await take_bodies(amqp, topology.dead_letter_queue, 2)
    assert bodies == [b"\xff\xfe not protobuf", confirmation("", "x")]
    assert outcomes()["undecodable"] == before + 2
