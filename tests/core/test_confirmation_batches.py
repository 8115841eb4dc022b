"""Confirmations are settled in batches: one ack for many, rejects in their place, nothing left unacked."""

from __future__ import annotations

from aio_pika.abc import AbstractRobustConnection

from tests.conftest import take_bodies
from tests.core.conftest import running_core, settings_for
from tests.core.test_confirmations import confirmation, publish
from tests.support.metrics import sample
from tests.support.waiting import eventually
from workers.common.contract.names import Topology


def unknown() -> float:
    return sample("notifier_core_confirmations_total", {"outcome": "unknown"})


async def test_a_burst_with_bad_messages_between_is_settled_past_a_small_prefetch_window(
    stream: str, amqp_namespace: str, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    """With a prefetch of 3, 60 confirmations are only all handled if every batch was acked; a reject out
    of tag order would close the channel and strand the rest."""
    bodies = []
    for i in range(60):
        if i % 9 == 4:
            bodies.append(f"bad {i}".encode())
        bodies.append(confirmation("alice", f"{i:016d}missing"))
    bad = [body for body in bodies if body.startswith(b"bad")]
    async with running_core(settings_for(stream, amqp_namespace, amqp_prefetch=3)) as core:
        assert core.confirmations is not None
        before = unknown()
        await publish(amqp, topology, *bodies)

        async def all_handled() -> bool:
            return core.confirmations is not None and core.confirmations.handled == 60

        await eventually(all_handled)
        assert unknown() == before + 60
    channel = await amqp.channel()
    queue = await channel.declare_queue(topology.confirmations_queue, passive=True)
    assert queue.declaration_result.message_count == 0, "nothing requeued or left behind"
    assert await take_bodies(amqp, topology.dead_letter_queue, len(bad)) == bad


async def test_confirmations_arriving_within_the_linger_share_one_batch(
    stream: str, amqp_namespace: str, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    bodies = [confirmation("alice", f"{i:016d}missing") for i in range(40)]
    settings = settings_for(stream, amqp_namespace, confirm_linger_s=0.5, amqp_prefetch=100)
    async with running_core(settings) as core:
        assert core.confirmations is not None
        await publish(amqp, topology, *bodies)

        async def all_handled() -> bool:
            return core.confirmations is not None and core.confirmations.handled == 40

        await eventually(all_handled)
        assert core.confirmations.batches == 1
