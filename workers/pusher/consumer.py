"""Consuming `notifier.reviews` in batches: decode, fan out, one Redis round trip, then one multi-ack.

A message is acked only after its entries are in Redis. An undecodable or invalid event is dead-lettered
(nack without requeue -> `notifier.dlx`); an event of an unknown brand is counted, logged and acked.
While Redis is down the batch is retried (`workers.common.runtime.retry`) and stays unacked; if the process dies,
or stops before Redis is back, the broker redelivers it. A redelivered event whose key is in `pushed` was
written before its ack was lost and is acked without writing it again, so it cannot count in a second
digest after a window closed between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Sequence

import redis.asyncio as aioredis
from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError

from workers.common.contract.entries import Entry
from workers.common.contract.errors import InvalidInput
from workers.common.contract.keys import BusKeys
from workers.common.contract.wire import ReviewEvent
from workers.common.runtime.aio import LingerInbox
from workers.common.runtime.faults import REDIS
from workers.common.runtime.mapping_store import MappingCache
from workers.common.runtime.retry import retrying
from workers.common.runtime.settling import Settler
from workers.pusher import metrics
from workers.pusher.fanout import FanOut, entry_of, event_key
from workers.pusher.writer import already_pushed, append_entries

log = logging.getLogger(__name__)


class BatchConsumer:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        keys: BusKeys,
        mapping: MappingCache,
        batch_size: int,
        linger_s: float,
        horizon_s: float,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._mapping = mapping
        self._horizon_s = horizon_s
        self.inbox = LingerInbox[AbstractIncomingMessage](max_batch=batch_size, linger_s=linger_s)
        self.totals: Tally[str] = Tally()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.inbox.put(message)

    async def run(self, stopping: asyncio.Event) -> None:
        """Process batches until `stopping` is set and the inbox is empty."""
        while batch := await self.inbox.next_batch(stopping):
            await self.process(batch, stopping=stopping)

    async def process(self, batch: Sequence[AbstractIncomingMessage], *, stopping: asyncio.Event) -> None:
        started = time.perf_counter()
        now_s = time.time()
        now_ms = int(now_s * 1000)
        mapping = await retrying(self._mapping.get, what="read the mapping", stopping=stopping, dependency=REDIS)
        fan = FanOut(shards=self._keys.shard_count)
        placed: list[tuple[Entry, Sequence[str], str, bool]] = []
        settler = Settler(what="review events", on_lost=_count_lost)
        last_good: AbstractIncomingMessage | None = None
        for message in batch:
            try:
                event = ReviewEvent.FromString(message.body)
                entry = entry_of(event, now_ms=now_ms)
            except (DecodeError, InvalidInput) as exc:
                self._dead_letter(settler, message, reason=str(exc) or "undecodable ReviewEvent")
                continue
            users = mapping.brand_users.get(entry.brand)
            if users is None:
                fan.unknown_brands[entry.brand] += 1
                log.warning("review %s of unknown brand %s: counted and dropped", entry.review, entry.brand)
            else:
                placed.append((entry, users, event_key(event), bool(message.redelivered)))
            last_good = message
        await settler.flush()  # the dead letters: they wait for nothing
        if last_good is None:
            return
        redelivered = [key for _entry, _users, key, again in placed if again]
        written_before = await retrying(
            lambda: already_pushed(self._redis, keys=self._keys, event_keys=redelivered),
            what="check redelivered events",
            stopping=stopping,
            dependency=REDIS,
        )
        for entry, recipients, key, again in placed:
            if again:  # written before for some shards' users: only the rest get it now
                recipients = [user for user in recipients if (self._keys.shard_of(user), key) not in written_before]
            if recipients:
                fan.add(entry, recipients, key=key)
        attempts = 0

        async def write() -> None:
            # A failed attempt may have reached Redis for some shards, or for all with only the wait for a
            # replica failing: each later attempt writes what the shards' marks say is still missing.
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                await self._write(fan, now_s=now_s)
                return
            keys = [key for _entry, _recipients, key, _again in placed]
            done = await already_pushed(self._redis, keys=self._keys, event_keys=keys)
            rest = FanOut(shards=self._keys.shard_count)
            for entry, recipients, key, _again in placed:
                missing = [user for user in recipients if (self._keys.shard_of(user), key) not in done]
                if missing:
                    rest.add(entry, missing, key=key)
            await self._write(rest, now_s=now_s)

        await retrying(write, what="write a batch", stopping=stopping, dependency=REDIS)
        unknown = sum(fan.unknown_brands.values())
        repeated = len(placed) - fan.events
        metrics.EVENTS.labels("written").inc(fan.events)
        metrics.EVENTS.labels("unknown_brand").inc(unknown)
        metrics.EVENTS.labels("written_before").inc(repeated)
        metrics.ENTRIES.inc(fan.entries)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        self.totals.update(events=fan.events, entries=fan.entries, unknown_brand=unknown, written_before=repeated)
        if repeated:
            log.info("%d redelivered events were written before their ack was lost: acked, not written again", repeated)
        settler.ack(last_good)
        await settler.flush()
        log.debug("batch of %d events: %d entries for %d users", len(batch), fan.entries, len(fan.by_user))

    async def _write(self, fan: FanOut, *, now_s: float) -> None:
        settings = await self._mapping.stream_settings()
        await append_entries(
            self._redis,
            keys=self._keys,
            by_user=fan.by_user,
            settings=settings,
            now_s=now_s,
            pushed=fan.pushed,
            horizon_s=self._horizon_s,
        )

    def _dead_letter(self, settler: Settler, message: AbstractIncomingMessage, *, reason: str) -> None:
        metrics.EVENTS.labels("invalid").inc()
        self.totals.update(dead_lettered=1)
        log.warning("dead-lettering message %s: %s", message.message_id or message.delivery_tag, reason)
        settler.dead_letter(message, reason=reason)


def _count_lost(_exc: BaseException) -> None:
    metrics.ACK_FAILURES.inc()
