"""RabbitMQ names and the one function that declares the topology (DESIGN section 7).

    notifier.reviews        direct exchange -> quorum queue notifier.reviews        (pushers compete)
    notifier.notifications  topic exchange, notification.new|updated|deleted      (a queue per ws_delivery)
    notifier.confirmations  direct exchange -> quorum queue notifier.confirmations  (core replicas compete)
    notifier.dlx            fanout exchange -> queue notifier.dead                  (dead letters)

Every name can carry a namespace prefix (`NOTIFIER_AMQP_NAMESPACE`), so tests and several local stacks
share one broker without seeing each other.

Dead letters: a consumer that refuses a message publishes a copy to `notifier.dlx` with the reason in the
header `x-notifier-reason` (and the queue, routing key and size it came with), then acks the original
(`dead_letter`); messages the broker dead-letters itself (`x-delivery-limit` reached) carry RabbitMQ's
`x-death` instead. `notifier.dead` is bounded: at most `DEAD_LETTER_MAX_MESSAGES` messages and
`DEAD_LETTER_MAX_BYTES` bytes, and past either the oldest dead letters are dropped (`x-overflow:
drop-head`): the newest garbage is the one worth reading, and a flood of it must not fill the broker's
disk. A copy keeps at most `DEAD_LETTER_BODY_BYTES` of the body (`x-notifier-truncated` says when cut).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue
from aiormq.abc import FieldTable
from pamqp.commands import Basic

from workers.common.contract.names import (
    DEAD_LETTER_BODY_BYTES,
    DEAD_LETTER_MAX_BYTES,
    DEAD_LETTER_MAX_MESSAGES,
    DELIVERY_LIMIT,
    PERSISTENT,
    REASON_HEADER,
    Topology,
    dead_letter_exchange_for,
)
from workers.common.runtime.faults import RABBITMQ
from workers.common.runtime.publishing import PUBLISH_ERRORS
from workers.common.runtime.retry import repeat

log = logging.getLogger(__name__)

DEAD_LETTER_ARGUMENTS: FieldTable = {
    "x-queue-type": "quorum",
    "x-max-length": DEAD_LETTER_MAX_MESSAGES,
    "x-max-length-bytes": DEAD_LETTER_MAX_BYTES,
    "x-overflow": "drop-head",
}
"""Arguments of `notifier.dead`. A broker holding the queue from a release without them refuses the
declaration (PRECONDITION_FAILED): read what it holds, delete it once, and the rooms declare it bounded."""


@dataclass(frozen=True, slots=True)
class Declared:
    reviews: AbstractExchange
    reviews_queue: AbstractQueue
    notifications: AbstractExchange
    confirmations: AbstractExchange
    confirmations_queue: AbstractQueue
    dead_letters: AbstractExchange
    dead_queue: AbstractQueue


async def declare_topology(channel: AbstractChannel, topology: Topology) -> Declared:
    """Declare every durable exchange and queue. Idempotent; robust channels repeat it after a reconnect."""
    dlx = await channel.declare_exchange(topology.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(topology.dead_letter_queue, durable=True, arguments=DEAD_LETTER_ARGUMENTS)
    await dead.bind(dlx, routing_key="")
    competing: FieldTable = {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": topology.dead_letter_exchange,
        "x-delivery-limit": DELIVERY_LIMIT,
    }
    reviews = await channel.declare_exchange(topology.reviews_exchange, aio_pika.ExchangeType.DIRECT, durable=True)
    reviews_queue = await channel.declare_queue(topology.reviews_queue, durable=True, arguments=competing)
    await reviews_queue.bind(reviews, routing_key=topology.reviews_routing_key)
    notifications = await channel.declare_exchange(
        topology.notifications_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    confirmations = await channel.declare_exchange(
        topology.confirmations_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    confirmations_queue = await channel.declare_queue(topology.confirmations_queue, durable=True, arguments=competing)
    await confirmations_queue.bind(confirmations, routing_key=topology.confirmations_routing_key)
    return Declared(
        reviews=reviews,
        reviews_queue=reviews_queue,
        notifications=notifications,
        confirmations=confirmations,
        confirmations_queue=confirmations_queue,
        dead_letters=dlx,
        dead_queue=dead,
    )


CANCEL_TIMEOUT_S = 5.0


async def stop_consuming(queue: AbstractQueue, tag: str) -> None:
    """Cancel a consumer when its room stops taking work. A channel or broker already gone took the consumer
    with it (its unacked messages go back to the queue), so that is logged, not raised: a stopping room must
    reach its drain whatever the broker does."""
    try:
        await queue.cancel(tag, timeout=CANCEL_TIMEOUT_S)
    except PUBLISH_ERRORS as exc:
        log.info("consumer %s of %s ended with its channel (%r)", tag, queue.name, exc)


async def dead_letter(message: AbstractIncomingMessage, *, reason: str, exchange: str = "") -> None:
    """Publish a copy of `message` with `reason` to the dead-letter exchange (by default the one of the
    exchange the message came through), then ack the original.

    On the message's own channel, so the copy and the ack go out in order; the channel is in confirm
    mode in every room, so the copy is on the broker before the original is acked. Raises what the
    channel raises (the broker redelivers the original, which is judged again).
    """
    body = message.body
    headers: FieldTable = {
        REASON_HEADER: reason[:512],
        "x-notifier-exchange": message.exchange or "",
        "x-notifier-routing-key": message.routing_key or "",
        "x-notifier-bytes": len(body),
    }
    if len(body) > DEAD_LETTER_BODY_BYTES:
        body = body[:DEAD_LETTER_BODY_BYTES]
        headers["x-notifier-truncated"] = True
    properties = Basic.Properties(
        headers=headers, delivery_mode=PERSISTENT, message_id=message.message_id, content_type=message.content_type
    )
    target = exchange or dead_letter_exchange_for(message.exchange or "")
    await message.channel.basic_publish(body, exchange=target, routing_key="", properties=properties)
    await message.ack()


async def dead_letter_depth(channel: AbstractChannel, topology: Topology) -> int:
    """Messages in `notifier.dead` now (a passive declaration: it never changes the queue)."""
    underlay = await channel.get_underlay_channel()  # a robust channel answers a passive one from its cache
    declared = await underlay.queue_declare(topology.dead_letter_queue, passive=True)
    return int(declared.message_count or 0)


async def watch_dead_letters(
    channel: AbstractChannel,
    topology: Topology,
    *,
    every_s: float,
    stopping: asyncio.Event,
    report: Callable[[int], None],
) -> None:
    """Report the depth of `notifier.dead` every `every_s` until stopped; while the broker is away the look
    is retried with the kernel's backoff (the connection's own recovery brings the channel back), and the
    gauge keeps its last value meanwhile."""

    async def look() -> float:
        report(await dead_letter_depth(channel, topology))
        return every_s

    await repeat(look, what="watch the dead letters", stopping=stopping, dependency=RABBITMQ)
