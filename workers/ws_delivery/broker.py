"""The room's RabbitMQ side: its own exclusive queue of notification events, confirmations out, broker status.

The queue (client-named, exclusive, auto-delete, bound to every `notification.*` key) and its consumer
are declared through the robust channel, so aio-pika re-declares them after a reconnect; the
connection's close and reconnect callbacks switch devices to long polling and back. Confirmations are
published with publisher confirms from a bounded backlog that waits out broker outages.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from contextlib import AsyncExitStack
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from google.protobuf.message import DecodeError

from workers.common.connections import connect_amqp
from workers.common.topology import ROUTING_ALL, Topology, declare_topology
from workers.common.wire import BrokerConfirmation, BrokerNotification
from workers.ws_delivery import metrics
from workers.ws_delivery.hub import Hub
from workers.ws_delivery.settings import WsSettings

log = logging.getLogger(__name__)

PUBLISH_ERRORS = (AMQPError, ChannelInvalidStateError, ConnectionError, OSError, TimeoutError)
BATCH = 256
"""Confirmations published concurrently before their broker confirms are awaited."""


class Confirmations:
    """Acknowledged NEW notifications waiting to be published as BrokerConfirmation; the oldest go first."""

    def __init__(self, *, limit: int) -> None:
        self._backlog: deque[bytes] = deque(maxlen=limit)
        self._ready = asyncio.Event()

    def put(self, user_id: str, notification_id: str) -> None:
        if len(self._backlog) == self._backlog.maxlen:
            log.warning("confirmation backlog full, dropping the oldest (core's poll still marks it delivered)")
        self._backlog.append(BrokerConfirmation(user_id=user_id, id=notification_id).SerializeToString())
        self._ready.set()

    def take(self, count: int) -> list[bytes]:
        batch = [self._backlog.popleft() for _ in range(min(count, len(self._backlog)))]
        if not self._backlog:
            self._ready.clear()
        return batch

    def give_back(self, batch: list[bytes]) -> None:
        self._backlog.extendleft(reversed(batch))
        self._ready.set()

    def __len__(self) -> int:
        return len(self._backlog)

    async def wait(self) -> None:
        await self._ready.wait()


class BrokerLink:
    def __init__(self, *, settings: WsSettings, hub: Hub, confirmations: Confirmations) -> None:
        self._settings = settings
        self._topology = Topology(settings.amqp_namespace)
        self._hub = hub
        self._confirmations = confirmations
        self._up = asyncio.Event()
        self._exchange: AbstractExchange | None = None
        self._connection: AbstractRobustConnection | None = None
        self.stopping = False
        self.published = 0

    async def start(self, stack: AsyncExitStack) -> None:
        connection = await connect_amqp(self._settings.amqp_url, timeout_s=self._settings.connect_timeout_s)
        self._connection = connection
        stack.push_async_callback(self._close)
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._settings.amqp_prefetch)
        declared = await declare_topology(channel, self._topology)
        queue = await channel.declare_queue(
            None,
            exclusive=True,
            auto_delete=True,
            arguments={"x-dead-letter-exchange": self._topology.dead_letter_exchange},
        )
        await queue.bind(declared.notifications, routing_key=ROUTING_ALL)
        await queue.consume(self._on_event)
        self._exchange = declared.confirmations
        connection.close_callbacks.add(self._on_lost)
        connection.reconnect_callbacks.add(self._on_restored)
        self._up.set()
        metrics.BROKER_CONNECTED.set(1)
        log.info("consuming notification events on queue %s", queue.name)

    async def _close(self) -> None:
        self.stopping = True
        if self._connection is not None:
            await self._connection.close()

    def _on_lost(self, _sender: Any, exc: BaseException | None = None) -> None:
        if self.stopping:
            return
        log.warning("broker connection lost: %s", exc)
        self._up.clear()
        self._hub.set_broker(up=False)

    def _on_restored(self, _sender: Any) -> None:
        log.warning("broker connection restored")
        self._up.set()
        self._hub.set_broker(up=True)

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        try:
            event = BrokerNotification.FromString(message.body)
        except DecodeError:
            metrics.EVENTS.labels("invalid").inc()
            log.warning("undecodable notification event %s dead-lettered", message.message_id or message.delivery_tag)
            await message.reject(requeue=False)
            return
        sent = self._hub.deliver(event)
        log.debug(
            "notification %s (status %d) sent to %d devices", event.notification.id, event.notification.status, sent
        )
        await message.ack()

    async def publish_confirmations(self, stopping: asyncio.Event) -> None:
        """Publish acknowledged confirmations until stopped and flushed (or stopped while the broker is away)."""
        while True:
            if not len(self._confirmations):
                if stopping.is_set():
                    return
                await _first(self._confirmations.wait(), stopping.wait())
                continue
            if not self._up.is_set():
                if stopping.is_set():
                    log.warning("%d confirmations not published: broker away at shutdown", len(self._confirmations))
                    return
                await _first(self._up.wait(), stopping.wait())
                continue
            await self._publish(self._confirmations.take(BATCH))

    async def _publish(self, batch: list[bytes]) -> None:
        assert self._exchange is not None
        exchange, key = self._exchange, self._topology.confirmations_routing_key
        try:
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), key, timeout=10
                    )
                    for body in batch
                )
            )
        except PUBLISH_ERRORS as exc:
            log.warning("publishing %d confirmations failed (%r), retrying", len(batch), exc)
            self._confirmations.give_back(batch)
            await asyncio.sleep(0.2)
            return
        self.published += len(batch)
        metrics.CONFIRMATIONS.inc(len(batch))


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
