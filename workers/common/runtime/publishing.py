"""Publishing a batch with publisher confirms, a level below aio-pika's `Exchange.publish`.

`Exchange.publish` builds a `Message` and a chain of coroutines per message, which at a thousand
messages a second costs more CPU than the broker's round trip. Here every frame of the batch goes to
aiormq at once (`wait=False`: no drain per message) and only the broker's confirms are awaited.
The channel is a robust aio-pika channel, so after a reconnect the batch goes to its new underlay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import cast

import aiormq
from aio_pika.abc import AbstractChannel
from aiormq.exceptions import AMQPError, ChannelInvalidStateError, DeliveryError
from pamqp.commands import Basic

log = logging.getLogger(__name__)

PUBLISH_ERRORS = (AMQPError, ChannelInvalidStateError, ConnectionError, OSError, TimeoutError)
"""What publishing raises while the broker is away or failing."""

Properties = Basic.Properties
Outgoing = tuple[bytes, str, Basic.Properties]
"""(body, routing key, properties) of one message."""


async def publish_confirmed(
    channel: AbstractChannel, exchange: str, messages: Sequence[Outgoing], *, timeout_s: float
) -> list[BaseException | None]:
    """Publish every message on a channel in confirm mode; per message None once the broker confirmed
    it, else why not (a nack, a timeout, a lost channel). Broker trouble is returned, never raised."""
    try:
        async with asyncio.timeout(timeout_s):  # unlike wait_for, no task: no extra loop turn before publishing
            underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
    except PUBLISH_ERRORS as exc:
        return [exc] * len(messages)
    results = await asyncio.gather(
        *(
            underlay.basic_publish(
                body, exchange=exchange, routing_key=key, properties=properties, timeout=timeout_s, wait=False
            )
            for body, key, properties in messages
        ),
        return_exceptions=True,
    )
    if any(isinstance(result, DeliveryError) for result in results):
        await _renew(underlay)
    return [_failure(result) for result in results]


async def _renew(nacking: aiormq.Channel) -> None:
    """Close the AMQP channel under a robust channel the broker nacked on; aio-pika reopens it at once, with
    what was declared through it, and the caller's retry publishes on the new one.

    RabbitMQ (3.10 here) can leave a channel that first published to a quorum queue while the queue's leader
    was being re-elected, after a node was lost, nacking every later publish, while a new channel is confirmed
    at once. A nack is rare otherwise (the broker could not take the message), and a new channel costs one
    round trip."""
    log.warning("the broker nacked a publish: renewing the channel")
    with contextlib.suppress(*PUBLISH_ERRORS):
        await nacking.close()


def _failure(result: object) -> BaseException | None:
    if isinstance(result, Basic.Ack):
        return None
    if isinstance(result, BaseException):
        return result
    return RuntimeError(f"the broker did not confirm the message: {result!r}")
