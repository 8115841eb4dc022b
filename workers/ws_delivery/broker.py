"""The room's RabbitMQ side: its own exclusive queue of notification events, confirmations out, broker status.

The queue (client-named, exclusive, auto-delete, bound to every `notification.*` key) and its consumer
are declared through the robust channel, so aio-pika re-declares them after a reconnect; the
connection's close and reconnect callbacks switch devices to long polling and back. An event is
handled without awaiting anything, so events are handled in delivery order and one ack with
`multiple` settles all those handled meanwhile (the queue dies with the connection anyway: acks here
are the prefetch window's flow control, not durability). Confirmations are published with publisher
confirms from a bounded backlog that waits out broker outages.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from contextlib import AsyncExitStack
from typing import Any, Protocol

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from workers.common.contract.errors import ServiceUnavailable
from workers.common.contract.names import PERSISTENT, ROUTING_ALL, Topology
from workers.common.contract.wire import BrokerConfirmation, BrokerNotification
from workers.common.runtime.aio import Backoff, first_of, pause
from workers.common.runtime.amqp import declare_topology
from workers.common.runtime.connections import connect_amqp
from workers.common.runtime.faults import HEALTH, RABBITMQ
from workers.common.runtime.publishing import Properties, publish_confirmed
from workers.common.runtime.settling import Settler
from workers.ws_delivery import metrics, validate
from workers.ws_delivery.settings import WsSettings

log = logging.getLogger(__name__)

BATCH = 256
"""Confirmations published concurrently before their broker confirms are awaited."""
DURABLE = Properties(delivery_mode=PERSISTENT)


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


class Deliveries(Protocol):
    """What the broker side needs of the devices (`hub.Hub` is one): events to deliver, and the broker's
    state to pass on."""

    def deliver(self, event: BrokerNotification) -> int: ...

    def set_broker(self, *, up: bool) -> None: ...


class BrokerLink:
    def __init__(self, *, settings: WsSettings, hub: Deliveries, confirmations: Confirmations) -> None:
        self._settings = settings
        self._topology = Topology(settings.amqp_namespace)
        self._hub = hub
        self._confirmations = confirmations
        self._up = asyncio.Event()
        self._channel: AbstractChannel | None = None
        self._connection: AbstractRobustConnection | None = None
        self._settler = Settler(what="handled events")
        self.stopping = False
        self.published = 0
        self._backoff = Backoff()

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
        self._channel = channel
        connection.close_callbacks.add(self._on_lost)
        connection.reconnect_callbacks.add(self._on_restored)
        self._up.set()
        HEALTH.ok(RABBITMQ)
        metrics.BROKER_CONNECTED.set(1)
        log.info("consuming notification events on queue %s", queue.name)

    async def _close(self) -> None:
        self.stopping = True
        if self._connection is not None:
            await self._connection.close()

    def _on_lost(self, _sender: Any, exc: BaseException | None = None) -> None:
        if self.stopping:
            return
        HEALTH.failed(ServiceUnavailable(f"connection lost: {exc!r}", dependency=RABBITMQ), what="receive events")
        self._up.clear()
        self._hub.set_broker(up=False)

    def _on_restored(self, _sender: Any) -> None:
        HEALTH.ok(RABBITMQ)
        self._up.set()
        self._hub.set_broker(up=True)

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        try:
            event = validate.notification_event(message.body, content_limit=self._settings.content_limit_bytes)
        except validate.InvalidEvent as exc:
            metrics.EVENTS.labels("invalid").inc()
            log.warning("notification event %s dead-lettered: %s", message.message_id or message.delivery_tag, exc)
            self._settler.dead_letter(message, reason=str(exc), exchange=self._topology.dead_letter_exchange)
            self._settler.flush_soon()
            return
        sent = self._hub.deliver(event)
        log.debug(
            "notification %s (status %d) sent to %d devices", event.notification.id, event.notification.status, sent
        )
        self._settler.ack(message)
        self._settler.flush_soon()

    async def publish_confirmations(self, stopping: asyncio.Event) -> None:
        """Publish acknowledged confirmations until stopped and flushed (or stopped while the broker is away)."""
        while True:
            if not len(self._confirmations):
                if stopping.is_set():
                    return
                await first_of(self._confirmations.wait(), stopping.wait())
                continue
            if not self._up.is_set():
                if stopping.is_set():
                    log.warning("%d confirmations not published: broker away at shutdown", len(self._confirmations))
                    return
                await first_of(self._up.wait(), stopping.wait())
                continue
            await self._publish(self._confirmations.take(BATCH))

    async def _publish(self, batch: list[bytes]) -> None:
        assert self._channel is not None
        key = self._topology.confirmations_routing_key
        failures = await publish_confirmed(
            self._channel,
            self._topology.confirmations_exchange,
            [(body, key, DURABLE) for body in batch],
            timeout_s=self._settings.publish_timeout_s,
        )
        failed = [body for body, failure in zip(batch, failures, strict=True) if failure is not None]
        confirmed = len(batch) - len(failed)
        self.published += confirmed
        metrics.CONFIRMATIONS.inc(confirmed)
        if failed:
            reason = next(failure for failure in failures if failure is not None)
            log.warning("publishing %d of %d confirmations failed (%r), retrying", len(failed), len(batch), reason)
            self._confirmations.give_back(failed)
            await pause(None, self._backoff.next())
        else:
            self._backoff.reset()
