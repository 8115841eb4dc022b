"""The demo's review source: ReviewEvents published at a steady rate, each one's publish time remembered.

Review ids are unique per source (`r<tag>-<n>`), short enough that a digest of `maxItems` entries lists
them all, so a device's digests tell exactly which reviews reached it and how long each one took.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractExchange

from workers.common.contract.names import PERSISTENT, Topology
from workers.common.contract.wire import ReviewEvent, to_timestamp

TICK_S = 0.02
KINDS = (ReviewEvent.ADDED, ReviewEvent.ADDED, ReviewEvent.UPDATED, ReviewEvent.DELETED)
KIND_NAMES = {ReviewEvent.ADDED: "added", ReviewEvent.UPDATED: "updated", ReviewEvent.DELETED: "deleted"}


@dataclass(frozen=True, slots=True)
class Published:
    brand: str
    kind: str
    at_s: float


@dataclass
class ReviewSource:
    exchange: AbstractExchange
    topology: Topology
    brands: Sequence[str]
    rng: random.Random = field(default_factory=random.Random)
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    published: dict[str, Published] = field(default_factory=dict)

    async def publish(
        self,
        *,
        rate: float,
        duration_s: float,
        stopping: asyncio.Event | None = None,
        brands: Sequence[str] = (),
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Publish `rate` events per second for `duration_s` (or until `stopping`); returns how many."""
        total = max(1, round(rate * duration_s))
        started = time.monotonic()
        sent = 0
        while sent < total and not (stopping is not None and stopping.is_set()):
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            if due > sent:
                await self.burst(due - sent, brands=brands)
                if progress is not None:
                    progress(due - sent)
                sent = due
            await asyncio.sleep(TICK_S)
        return sent

    async def burst(self, count: int, *, brands: Sequence[str] = ()) -> list[str]:
        """Publish `count` events at once (publisher confirms awaited together); returns their review ids."""
        first = len(self.published) + 1
        events = [self._event(brands or self.brands, number=first + i) for i in range(count)]
        now = time.time()
        for event in events:
            self.published[event.review_id] = Published(event.brand_id, KIND_NAMES[event.kind], now)
        await asyncio.gather(
            *(
                self.exchange.publish(
                    aio_pika.Message(event.SerializeToString(), delivery_mode=PERSISTENT),
                    routing_key=self.topology.reviews_routing_key,
                )
                for event in events
            )
        )
        return [event.review_id for event in events]

    def _event(self, brands: Sequence[str], *, number: int) -> ReviewEvent:
        return ReviewEvent(
            brand_id=self.rng.choice(brands),
            review_id=f"r{self.tag}-{number}",
            kind=self.rng.choice(KINDS),
            occurred_at=to_timestamp(time.time()),
        )
