"""`notifier.dead` is bounded with drop-head, and core reports its depth (DESIGN section 7)."""

from __future__ import annotations

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import take_messages
from tests.core.conftest import running_core, settings_for
from tests.support.metrics import sample
from tests.support.waiting import eventually
from workers.common.contract.names import DEAD_LETTER_MAX_MESSAGES, Topology
from workers.common.runtime.amqp import dead_letter_depth, declare_topology
from workers.common.runtime.publishing import Properties, publish_confirmed

OVER = 5


async def test_past_its_length_bound_the_oldest_dead_letters_are_dropped(
    amqp: AbstractRobustConnection, topology: Topology
) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    await declare_topology(channel, topology)
    bodies = [b"%d" % n for n in range(DEAD_LETTER_MAX_MESSAGES + OVER)]
    for start in range(0, len(bodies), 1000):
        failures = await publish_confirmed(
            channel,
            topology.dead_letter_exchange,
            [(body, "", Properties()) for body in bodies[start : start + 1000]],
            timeout_s=30,
        )
        assert failures == [None] * len(failures)
    assert await dead_letter_depth(channel, topology) == DEAD_LETTER_MAX_MESSAGES
    [oldest] = await take_messages(amqp, topology.dead_letter_queue, 1)
    assert oldest.body == b"%d" % OVER, "the oldest dead letters were not the ones dropped"
    await channel.close()


async def test_core_reports_the_depth_of_the_dead_letter_queue(
    stream: str, amqp_namespace: str, amqp: AbstractRobustConnection, topology: Topology, redis: object
) -> None:
    settings = settings_for(stream, amqp_namespace, dead_letter_watch_s=0.05)
    async with running_core(settings):
        channel = await amqp.channel(publisher_confirms=True)
        messages = [(b"garbage", "", Properties()) for _ in range(3)]
        assert await publish_confirmed(channel, topology.dead_letter_exchange, messages, timeout_s=10) == [None] * 3
        await channel.close()
        await eventually(lambda: sample("notifier_core_dead_letter_messages") == 3)
    assert sample("notifier_core_dead_letter_messages") == pytest.approx(3)
