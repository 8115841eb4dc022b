"""Delivery confirmations: `BrokerConfirmation{user_id, id}` from the competing quorum queue
`notifier.confirmations` marks a notification delivered for that user (see `Store.confirm`).

Every decodable confirmation is acked and counted by outcome; an undecodable one is rejected without
requeue, so it goes to the dead-letter queue; while Redis is away a message is requeued.
"""

from __future__ import annotations

import logging

from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError

from workers.common.connections import REDIS_DOWN
from workers.common.errors import InvalidInput
from workers.common.keys import is_valid_id
from workers.common.wire import BrokerConfirmation
from workers.core import metrics
from workers.core.store import Store

log = logging.getLogger(__name__)


def decode_confirmation(body: bytes) -> BrokerConfirmation:
    try:
        confirmation = BrokerConfirmation.FromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"not a BrokerConfirmation: {exc}") from None
    if not is_valid_id(confirmation.user_id) or not is_valid_id(confirmation.id):
        raise InvalidInput("BrokerConfirmation without a valid user_id and id")
    return confirmation


class Confirmations:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.handled = 0

    async def handle(self, message: AbstractIncomingMessage) -> None:
        try:
            confirmation = decode_confirmation(message.body)
        except InvalidInput as exc:
            metrics.CONFIRMATIONS.labels("undecodable").inc()
            log.warning("dead-lettering confirmation message %s: %s", message.message_id or "-", exc)
            await message.reject(requeue=False)
            return
        try:
            outcome = await self.store.confirm(confirmation.user_id, confirmation.id)
        except REDIS_DOWN as exc:
            log.warning("confirmation of %s for %s requeued: %s", confirmation.id, confirmation.user_id, exc)
            await message.nack(requeue=True)
            return
        metrics.CONFIRMATIONS.labels(outcome).inc()
        if outcome == "delivered":
            metrics.DELIVERED.labels("confirmation").inc()
        log.info("confirmation of %s for %s: %s", confirmation.id, confirmation.user_id, outcome)
        self.handled += 1
        await message.ack()
