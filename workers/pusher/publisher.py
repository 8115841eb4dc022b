"""A review source for demos and load: generated ReviewEvents published to `notifier.reviews`.

Publishes with publisher confirms, a bounded number of messages in flight, and an optional steady rate.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Sequence

import aio_pika
from aio_pika.abc import AbstractExchange

from workers.common.contract.names import PERSISTENT, Topology
from workers.common.contract.wire import ReviewEvent, to_timestamp


def generated_event(brands: Sequence[str], *, rng: random.Random) -> ReviewEvent:
    return ReviewEvent(
        brand_id=rng.choice(brands),
        review_id=f"r-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
        kind=rng.choice((ReviewEvent.ADDED, ReviewEvent.ADDED, ReviewEvent.UPDATED, ReviewEvent.DELETED)),
        occurred_at=to_timestamp(time.time()),
    )


async def publish_events(
    exchange: AbstractExchange,
    *,
    topology: Topology,
    events: Sequence[ReviewEvent] | Callable[[int], ReviewEvent],
    count: int,
    rate: float = 0.0,
    in_flight: int = 500,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Publish `count` events (a list, or a factory called with the index); returns how many were confirmed."""
    window = asyncio.Semaphore(in_flight)
    started = time.monotonic()
    confirmed = 0
    pending: set[asyncio.Task[None]] = set()

    async def one(event: ReviewEvent) -> None:
        nonlocal confirmed
        try:
            await exchange.publish(
                aio_pika.Message(event.SerializeToString(), delivery_mode=PERSISTENT),
                routing_key=topology.reviews_routing_key,
            )
            confirmed += 1
            if progress is not None:
                progress(1)
        finally:
            window.release()

    for index in range(count):
        if rate > 0:
            ahead = started + index / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        await window.acquire()
        event = events(index) if callable(events) else events[index]
        task = asyncio.create_task(one(event))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    return confirmed
