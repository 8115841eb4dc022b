"""Delivery confirmations: `BrokerConfirmation{user_id, id}` from the competing quorum queue
`notifier.confirmations` marks a notification delivered for that user (see `Store.confirm`).

Every decodable confirmation is acked and counted by outcome; an undecodable one is rejected without
requeue, so it goes to the dead-letter queue; while Redis is away a message is requeued and the
consumer pauses `retry_delay_s`.
"""

from __future__ import annotations

import asyncio
import logging

from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError

from workers.common.contract.errors import InvalidInput
from workers.common.contract.keys import is_valid_id
from workers.common.contract.wire import BrokerConfirmation
from workers.common.runtime.aio import Backoff, LingerInbox, pause
from workers.common.runtime.faults import HEALTH, REDIS, temporary
from workers.common.runtime.settling import Settler
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


BATCH = 500
"""Confirmations handled together: one Redis pipeline for their scripts, one ack for all of them."""


class Confirmations:
    """The consumer hands messages over; `run` takes what arrived as one batch, confirms it in one Redis
    pipeline and settles it in delivery order with one ack (`multiple`), so a thousand confirmations a
    second cost a few acks, not a thousand. A batch waits `linger_s` for more to arrive once its first is
    there: at a thousand confirmations a second that takes a third off the consumer's CPU, and a
    confirmation only marks delivery state, so nobody waits for it. Only one batch is in flight, so an ack
    never covers a message still being handled, and a rejected or requeued message is settled before an
    ack covers its tag (`runtime.settling.Settler`)."""

    def __init__(self, store: Store, *, retry_delay_s: float, linger_s: float = 0.0) -> None:
        self.store = store
        self.retry_delay_s = retry_delay_s
        self.handled = 0
        self.batches = 0
        self._inbox = LingerInbox[AbstractIncomingMessage](max_batch=BATCH, linger_s=linger_s)
        self._backoff = Backoff(first_s=retry_delay_s)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self._inbox.put(message)

    async def run(self, stopping: asyncio.Event) -> None:
        """Handle batches until `stopping` and nothing is left; what arrives later stays unacked (redelivered)."""
        while batch := await self._inbox.next_batch(stopping):
            self.batches += 1
            if await self.handle(batch):
                self._backoff.reset()
            else:
                await pause(stopping, self._backoff.next())

    async def handle(self, batch: list[AbstractIncomingMessage]) -> bool:
        """Confirm and settle one batch; False when Redis was away (those messages were requeued)."""
        decoded: list[BrokerConfirmation | InvalidInput] = []
        for message in batch:
            try:
                decoded.append(decode_confirmation(message.body))
            except InvalidInput as exc:
                decoded.append(exc)
        valid = [c for c in decoded if isinstance(c, BrokerConfirmation)]
        results = iter(
            await asyncio.gather(*(self.store.confirm(c.user_id, c.id) for c in valid), return_exceptions=True)
        )
        settler, redis_up = Settler(what="confirmations"), True
        for message, confirmation in zip(batch, decoded, strict=True):
            if isinstance(confirmation, InvalidInput):
                metrics.CONFIRMATIONS.labels("undecodable").inc()
                log.warning("dead-lettering confirmation message %s: %s", message.message_id or "-", confirmation)
                settler.reject(message, requeue=False)
                continue
            outcome = next(results)
            away = temporary(outcome, dependency=REDIS) if isinstance(outcome, Exception) else None
            if away is not None:
                HEALTH.failed(away, what="mark notifications delivered")
                redis_up = False
                log.warning("confirmation of %s for %s requeued: %s", confirmation.id, confirmation.user_id, outcome)
                settler.reject(message, requeue=True)
            elif isinstance(outcome, BaseException):
                user, nid = confirmation.user_id, confirmation.id
                log.error("dead-lettering confirmation of %s for %s: %r", nid, user, outcome)
                settler.reject(message, requeue=False)
            else:
                metrics.CONFIRMATIONS.labels(outcome).inc()
                if outcome == "delivered":
                    metrics.DELIVERED.labels("confirmation").inc()
                log.info("confirmation of %s for %s: %s", confirmation.id, confirmation.user_id, outcome)
                self.handled += 1
                settler.ack(message)
        await settler.flush()
        if redis_up and valid:
            HEALTH.ok(REDIS)
        return redis_up
