"""Settling consumed messages with as few frames as the broker allows, and never one twice.

    settler = Settler(what="review events")
    settler.dead_letter(bad, reason="undecodable")   # or settler.reject(message, requeue=True)
    settler.ack(good_1)
    settler.ack(good_2)                              # supersedes good_1's ack: one frame for both
    await settler.flush()                            # dead letter, then ack(good_2, multiple=True)

A delivery tag is per channel, and `ack(multiple=True)` settles every unsettled tag of its channel up to
its own. So an ack is held, and only the latest one per channel is sent; every reject recorded before it
is sent first, so a multiple ack never covers a message that is to be rejected (a reject of a tag an ack
already covered is an unknown tag to the broker, which closes the channel). That holds when every message
of a channel passes through one settler, recorded in delivery order, and no message below an acked one
is still being handled.

One sender at a time sends in recording order: aiormq's bounded write queue does not keep the order of
concurrent writers (a new put may overtake a waiting one). A message of a channel that is gone cannot be
settled; the broker redelivers it, so that failure is logged and counted (`on_lost`), never raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage

from workers.common.runtime.amqp import dead_letter
from workers.common.runtime.publishing import PUBLISH_ERRORS

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Reject:
    message: AbstractIncomingMessage
    requeue: bool
    reason: str | None
    """None: a plain nack (the queue's own dead-letter exchange takes it unless requeued); else `dead_letter`."""
    exchange: str


class Settler:
    """Acks and rejects of consumed messages, sent by `flush` (or in the background after `flush_soon`)."""

    def __init__(self, *, what: str, on_lost: Callable[[BaseException], None] | None = None) -> None:
        self._what = what
        self._on_lost = on_lost
        self._rejects: deque[_Reject] = deque()
        self._acks: list[AbstractIncomingMessage] = []
        """The latest message to ack of each channel, oldest channel first."""
        self._sending: asyncio.Future[None] | None = None

    def ack(self, message: AbstractIncomingMessage) -> None:
        try:
            channel = message.channel
        except PUBLISH_ERRORS as exc:  # closed since the message came: the broker redelivers it
            self._lost(exc)
            return
        for held, earlier in enumerate(self._acks):
            if _channel(earlier) is channel:
                del self._acks[held]  # covered by the later one's `multiple`
                break
        self._acks.append(message)

    def reject(self, message: AbstractIncomingMessage, *, requeue: bool) -> None:
        """Nack: back to the queue, or (without `requeue`) to the queue's dead-letter exchange."""
        self._rejects.append(_Reject(message, requeue=requeue, reason=None, exchange=""))

    def dead_letter(self, message: AbstractIncomingMessage, *, reason: str, exchange: str = "") -> None:
        """Publish a copy carrying `reason` to the dead-letter exchange, then ack the message (`amqp.dead_letter`)."""
        self._rejects.append(_Reject(message, requeue=False, reason=reason, exchange=exchange))

    def __len__(self) -> int:
        return len(self._rejects) + len(self._acks)

    async def flush(self) -> None:
        """Send everything recorded, including what is recorded while sending; one sender at a time."""
        while self._sending is not None and not self._sending.done():
            await asyncio.shield(self._sending)
        if self:
            self._sending = asyncio.ensure_future(self._send())
            await asyncio.shield(self._sending)

    def flush_soon(self) -> None:
        """Send what is recorded in the background, for callers that must not await."""
        if self and (self._sending is None or self._sending.done()):
            self._sending = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        while self:
            try:
                if self._rejects:
                    await self._send_reject(self._rejects.popleft())
                else:
                    await self._acks.pop(0).ack(multiple=True)
            except PUBLISH_ERRORS as exc:
                self._lost(exc)

    def _lost(self, exc: BaseException) -> None:
        log.warning("settling %s lost with the channel (%r); the broker redelivers them", self._what, exc)
        if self._on_lost is not None:
            self._on_lost(exc)

    @staticmethod
    async def _send_reject(reject: _Reject) -> None:
        if reject.reason is None:
            await reject.message.nack(requeue=reject.requeue)
        else:
            await dead_letter(reject.message, reason=reject.reason, exchange=reject.exchange)


def _channel(message: AbstractIncomingMessage) -> object | None:
    """The message's channel, or None once it closed (aio-pika raises on reading a closed one)."""
    try:
        return message.channel
    except PUBLISH_ERRORS:
        return None
