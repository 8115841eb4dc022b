"""Names of the RabbitMQ corridor, declared once: exchanges, queues, routing keys, limits (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

PERSISTENT = 2
"""AMQP delivery mode of every message Notifier publishes: the durable paths keep messages across a broker
restart, and one spelling serves the relay, the pusher, ws_delivery and the dead letters."""
DELIVERY_LIMIT = 5
"""Redeliveries of one message (quorum queue `x-delivery-limit`) before it is dead-lettered."""

DEAD_LETTER_MAX_MESSAGES = 10_000

DEAD_LETTER_MAX_BYTES = 64 * 1024 * 1024

DEAD_LETTER_BODY_BYTES = 64 * 1024

REASON_HEADER = "x-notifier-reason"


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


def dead_letter_exchange_for(exchange: str) -> str:
    """The dead-letter exchange of the namespace an exchange's name carries (`<namespace><base name>`)."""
    plain = Topology()
    for base in (plain.reviews_exchange, plain.notifications_exchange, plain.confirmations_exchange):
        if exchange.endswith(base):
            return Topology(exchange[: -len(base)]).dead_letter_exchange
    return plain.dead_letter_exchange
