"""The settler acks many messages with one frame and never lets an ack cover a message it rejects."""

from __future__ import annotations

import asyncio
import functools

import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from tests.conftest import take_bodies, take_messages
from workers.common.contract.names import REASON_HEADER, Topology
from workers.common.runtime.amqp import declare_topology, stop_consuming
from workers.common.runtime.publishing import Properties, publish_confirmed
from workers.common.runtime.settling import Settler


async def consumed(amqp: AbstractRobustConnection, topology: Topology, count: int) -> list[AbstractIncomingMessage]:
    """`count` review messages published as b"0", b"1", ... and taken off their queue on one channel, unacked."""
    channel = await amqp.channel(publisher_confirms=True)
    declared = await declare_topology(channel, topology)
    outgoing = [(b"%d" % n, topology.reviews_routing_key, Properties()) for n in range(count)]
    assert await publish_confirmed(channel, topology.reviews_exchange, outgoing, timeout_s=10) == [None] * count
    messages: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(10):
        while len(messages) < count:
            message = await declared.reviews_queue.get(no_ack=False, fail=False)
            if message is None:
                await asyncio.sleep(0.02)
            else:
                messages.append(message)
    return messages


async def left_in_queue(amqp: AbstractRobustConnection, topology: Topology) -> int:
    channel = await amqp.channel()
    queue = await channel.declare_queue(topology.reviews_queue, passive=True)
    await channel.close()
    return int(queue.declaration_result.message_count or 0)


async def test_rejects_between_acks_are_settled_once_and_the_rest_acked(
    amqp: AbstractRobustConnection, topology: Topology
) -> None:
    messages = await consumed(amqp, topology, 10)
    channel = messages[0].channel
    settler = Settler(what="test messages")
    for n, message in enumerate(messages):
        if n == 3:
            settler.reject(message, requeue=False)
        elif n == 6:
            settler.dead_letter(message, reason="bad six")
        elif n == 8:
            settler.reject(message, requeue=True)
        else:
            settler.ack(message)
    await settler.flush()
    assert len(settler) == 0
    assert not channel.is_closed, "an ack covered a rejected tag, or a tag was settled twice"
    await channel.close()  # anything still unacked goes back to the queue now
    assert await left_in_queue(amqp, topology) == 1, "only the requeued message is back"
    assert await take_bodies(amqp, topology.reviews_queue, 1) == [b"8"]
    dead = {
        message.body: message.headers.get(REASON_HEADER)
        for message in await take_messages(amqp, topology.dead_letter_queue, 2)
    }
    assert dead == {b"3": None, b"6": "bad six"}, "the nack went through the queue's dead-letter exchange"


async def test_an_ack_waits_for_flush(amqp: AbstractRobustConnection, topology: Topology) -> None:
    messages = await consumed(amqp, topology, 3)
    settler = Settler(what="test messages")
    for message in messages:
        settler.ack(message)
    assert len(settler) == 1, "the later acks of one channel supersede the earlier"
    await messages[0].channel.close()
    assert await take_bodies(amqp, topology.reviews_queue, 3) == [b"0", b"1", b"2"], "nothing was acked"


@pytest.mark.parametrize(
    ("recorded_before_close", "lost_when_recorded", "lost_in_all"),
    [
        (3, 0, 2),  # the channel closes before the flush: the dead letter and the one held ack are lost
        (1, 2, 3),  # a broker node dies mid-batch: the acks recorded after the close are lost at once too
    ],
)
async def test_a_settlement_lost_with_its_channel_is_reported_not_raised(
    amqp: AbstractRobustConnection,
    topology: Topology,
    recorded_before_close: int,
    lost_when_recorded: int,
    lost_in_all: int,
) -> None:
    messages = await consumed(amqp, topology, 3)
    lost: list[BaseException] = []
    settler = Settler(what="test messages", on_lost=lost.append)
    settle = [
        functools.partial(settler.dead_letter, messages[0], reason="bad"),
        functools.partial(settler.ack, messages[1]),
        functools.partial(settler.ack, messages[2]),
    ]
    for step in settle[:recorded_before_close]:
        step()
    await messages[0].channel.close()
    for step in settle[recorded_before_close:]:
        step()
    assert len(lost) == lost_when_recorded
    await settler.flush()
    assert len(lost) == lost_in_all
    assert len(settler) == 0
    assert await take_bodies(amqp, topology.reviews_queue, 3) == [b"0", b"1", b"2"], "the broker redelivers all"


async def test_flush_soon_sends_in_the_background(amqp: AbstractRobustConnection, topology: Topology) -> None:
    messages = await consumed(amqp, topology, 4)
    settler = Settler(what="test messages")
    for message in messages:
        settler.ack(message)
        settler.flush_soon()
    await settler.flush()  # waits for the background sender, then sends what it left
    await messages[0].channel.close()
    assert await left_in_queue(amqp, topology) == 0


async def test_stopping_a_consumer_whose_channel_closed_is_logged_not_raised(
    amqp: AbstractRobustConnection, topology: Topology
) -> None:
    """A room stops taking work after a broker node died under its consumer: its stop must still reach the drain."""
    channel = await amqp.channel()
    queue = (await declare_topology(channel, topology)).reviews_queue

    async def ignore(message: AbstractIncomingMessage) -> None:
        return None

    tag = await queue.consume(ignore)
    await channel.close()
    await stop_consuming(queue, tag)  # raised ChannelInvalidStateError before
    assert channel.is_closed
