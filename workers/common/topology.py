"""RabbitMQ names and the one function that declares the topology (DESIGN section 7).

    notifier.reviews        direct exchange -> quorum queue notifier.reviews        (pushers compete)
    notifier.notifications  topic exchange, notification.new|updated|deleted      (a queue per ws_delivery)
    notifier.confirmations  direct exchange -> quorum queue notifier.confirmations  (core replicas compete)
    notifier.dlx            fanout exchange -> queue notifier.dead                  (dead letters)

Every name can carry a namespace prefix (`NOTIFIER_AMQP_NAMESPACE`), so tests and several local stacks
share one broker without seeing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aiormq.abc import FieldTable

DELIVERY_LIMIT = 5
"""Redeliveries of one message (quorum queue `x-delivery-limit`) before it is dead-lettered."""


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str = ""

    def _name(self, base: str) -> str:
        return f"{self.namespace}{base}"

    @property
    def reviews_exchange(self) -> str:
        return self._name("notifier.reviews")

    @property
    def reviews_queue(self) -> str:
        return self._name("notifier.reviews")

    @property
    def reviews_routing_key(self) -> str:
        return "notifier.reviews"

    @property
    def notifications_exchange(self) -> str:
        return self._name("notifier.notifications")

    @property
    def confirmations_exchange(self) -> str:
        return self._name("notifier.confirmations")

    @property
    def confirmations_queue(self) -> str:
        return self._name("notifier.confirmations")

    @property
    def confirmations_routing_key(self) -> str:
        return "notifier.confirmations"

    @property
    def dead_letter_exchange(self) -> str:
        return self._name("notifier.dlx")

    @property
    def dead_letter_queue(self) -> str:
        return self._name("notifier.dead")


ROUTING_NEW = "notification.new"
ROUTING_UPDATED = "notification.updated"
ROUTING_DELETED = "notification.deleted"
ROUTING_ALL = "notification.*"
ROUTING_BY_STATUS = (ROUTING_NEW, ROUTING_UPDATED, ROUTING_DELETED)
"""Routing key per `Notification.Status` value (NEW=0, UPDATED=1, DELETED=2)."""


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
    dead = await channel.declare_queue(topology.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"})
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
