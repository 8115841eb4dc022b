"""The outbox relay: publishes outbox events to `notifier.notifications` with publisher confirms.

Each store shard has its outbox stream; every replica runs one relay that reads all of them, in one pipelined
round trip, through one consumer group per outbox, so an entry goes to one relay; an entry leaves its stream
(XACK + XDEL) only after the broker confirmed it. A relay with nothing to read waits until its own store writes
an outbox (`Store.written`), or `relay_block_s` at most (events other replicas wrote and did not relay), so one
relay publishes the events of every shard in shared batches. Entries a relay read but never confirmed (it
crashed, or the broker was away) stay pending: the same relay retries its own first, and after
`relay_claim_idle_s` any relay takes them over with XAUTOCLAIM. Delivery to the broker is at least once;
duplicates are only possible after a crash (or Redis going away) between the broker's confirm and the XACK,
and carry the same AMQP message id (`<shard>-<outbox entry id>`).

Reading and confirming overlap: while the broker confirms one batch the relay already reads and publishes
the next ones (up to `MAX_IN_FLIGHT` batches), and a settler removes confirmed entries in read order. An
entry so waits for one Redis read, not for the confirm round trip of the batch before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from aio_pika.abc import AbstractChannel
from redis.exceptions import RedisError, ResponseError

from workers.common.contract.names import PERSISTENT
from workers.common.runtime.aio import first_of, pause
from workers.common.runtime.faults import HEALTH, RABBITMQ, REDIS, temporary
from workers.common.runtime.publishing import Properties, publish_confirmed
from workers.common.runtime.replication import execute_replicated
from workers.common.runtime.retry import retrying
from workers.common.runtime.scripts import ScriptCall, run_scripts_or_raise
from workers.core import metrics
from workers.core.settings import CoreSettings

log = logging.getLogger(__name__)

GROUP = "relay"
CONTENT_TYPE = "application/x-protobuf"
MAX_BATCH_FACTOR = 8
"""A relay that is behind reads up to this many times `relay_batch` at once (a cycle costs the same loop turns)."""
MAX_IN_FLIGHT = 64
"""Batches published and not yet settled; the reader waits for the settler beyond that."""

Entry = tuple[int, bytes, dict[bytes, bytes] | None]
"""(the shard of its outbox, the entry's id, its fields: None when the entry was deleted before it was read)."""
Batch = tuple[list[Entry], "asyncio.Future[list[BaseException | None]]"]

SETTLE = """
-- KEYS: an outbox; ARGV: the group, then the ids of confirmed entries. Acknowledged and deleted together.
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
"""
SETTLE_IDS = 4000
"""Entry ids per SETTLE call (Lua's unpack takes a few thousand values)."""


class Relay:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        channel: AbstractChannel,
        exchange: str,
        outboxes: Sequence[str],
        consumer: str,
        settings: CoreSettings,
        written: asyncio.Event | None = None,
    ) -> None:
        self.redis = redis
        self.channel = channel
        self.exchange = exchange
        self.outboxes = list(outboxes)
        """Every shard's outbox, in shard order."""
        self.consumer = consumer
        self.settings = settings
        self.written = written or asyncio.Event()
        """Set by this process's store when it wrote an outbox: the relay reads at once."""
        self._settle_script = redis.register_script(SETTLE)
        self.published = 0
        self._gauges_at = 0.0
        self._claimed_at = 0.0
        self._count = settings.relay_batch
        self._failed = False

    async def ensure_group(self) -> None:
        for outbox in self.outboxes:
            try:
                await self.redis.xgroup_create(outbox, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self, stopping: asyncio.Event) -> None:
        """Publish until `stopping`, then wait for what is in flight; Redis or broker outages only pause it."""
        inflight: asyncio.Queue[Batch] = asyncio.Queue(MAX_IN_FLIGHT)
        settler = asyncio.create_task(self._settle(inflight), name="relay-settler")
        try:
            await self._read_and_publish(stopping, inflight)
            await inflight.join()
        finally:
            settler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settler

    async def _read_and_publish(self, stopping: asyncio.Event, inflight: asyncio.Queue[Batch]) -> None:
        own_backlog = True
        while not stopping.is_set():
            own_backlog = await retrying(
                functools.partial(self._read_one, stopping, inflight, own_backlog),
                what="relay the outbox",
                stopping=stopping,
                dependency=REDIS,
            )

    async def _read_one(self, stopping: asyncio.Event, inflight: asyncio.Queue[Batch], own_backlog: bool) -> bool:
        """Read and publish one batch; returns whether this relay's own pending entries come next."""
        await self._observe()
        if self._failed:  # a batch went unconfirmed: let the rest settle, pause, then retry what is pending
            await inflight.join()
            self._failed = False
            await pause(stopping, self.settings.retry_delay_s)
            return True
        entries = await self._claim_stale()
        if not entries:
            if own_backlog:
                await inflight.join()  # this relay's pending entries include the ones in flight
            entries = await self._read(own_backlog)
        if not entries:
            if not own_backlog:
                await first_of(self.written.wait(), stopping.wait(), timeout_s=self.settings.relay_block_s)
            return False
        await inflight.put((entries, asyncio.ensure_future(self._publish(entries))))
        return own_backlog

    async def _settle(self, inflight: asyncio.Queue[Batch]) -> None:
        """Forever: take the batches in read order, wait for their confirms and drop the confirmed entries
        from the outbox. Whatever goes wrong leaves entries pending and marks the relay failed."""
        while True:
            batches = [await inflight.get()]
            while not inflight.empty():
                batches.append(inflight.get_nowait())
            try:
                done: dict[int, list[bytes]] = defaultdict(list)
                for entries, publishing in batches:
                    confirmed = self._confirmed(entries, await publishing)
                    for shard, entry_id in confirmed:
                        done[shard].append(entry_id)
                    self._failed |= len(confirmed) < len(entries)
                calls: list[ScriptCall] = [
                    (self._settle_script, [self.outboxes[shard]], [GROUP, *ids[at : at + SETTLE_IDS]])
                    for shard, ids in done.items()
                    for at in range(0, len(ids), SETTLE_IDS)
                ]
                await run_scripts_or_raise(self.redis, calls)
            except Exception as exc:
                if temporary(exc, dependency=REDIS) is None:
                    log.exception("relay could not settle published entries; they go out again")
                else:
                    log.warning("relay could not drop %d published batches (%s); they go out again", len(batches), exc)
                self._failed = True
            finally:
                for _ in batches:
                    inflight.task_done()

    async def close(self) -> None:
        """Leave each outbox's group when nothing is pending for this relay there (else another relay claims it
        later)."""
        for outbox in self.outboxes:
            try:
                pending = await self.redis.xpending_range(outbox, GROUP, "-", "+", 1, consumername=self.consumer)
                if not pending:
                    await self.redis.xgroup_delconsumer(outbox, GROUP, self.consumer)
            except RedisError as exc:
                log.warning("relay %s could not leave the group of %s: %s", self.consumer, outbox, exc)

    async def _read(self, own_backlog: bool) -> list[Entry]:
        """The next batch, from every outbox in one round trip: up to `relay_batch` entries of each, up to 8 times
        more while the outboxes have a backlog. Clears `written` first, so a write after the read wakes the next
        wait."""
        self.written.clear()
        async with self.redis.pipeline(transaction=False) as pipe:
            start = "0" if own_backlog else ">"
            for outbox in self.outboxes:
                pipe.xreadgroup(GROUP, self.consumer, {outbox: start}, count=self._count)
            # Published only once replicas have the entries read (and so the changes written before them).
            replies = await execute_replicated(self.redis, pipe, keys=self.outboxes)
        entries = [
            (shard, entry_id, fields)
            for shard, reply in enumerate(replies)
            for _, found in reply or []
            for entry_id, fields in found
        ]
        full = any(sum(len(found) for _, found in reply or []) >= self._count for reply in replies)
        self._count = (
            min(self._count * 2, MAX_BATCH_FACTOR * self.settings.relay_batch) if full else self.settings.relay_batch
        )
        return entries

    async def _claim_stale(self) -> list[Entry]:
        now = time.monotonic()
        if now - self._claimed_at < self.settings.relay_claim_idle_s / 2:
            return []
        self._claimed_at = now
        async with self.redis.pipeline(transaction=False) as pipe:
            for outbox in self.outboxes:
                pipe.xautoclaim(
                    outbox,
                    GROUP,
                    self.consumer,
                    min_idle_time=int(self.settings.relay_claim_idle_s * 1000),
                    start_id="0-0",
                    count=self.settings.relay_batch,
                )
            replies: list[Any] = await execute_replicated(self.redis, pipe, keys=self.outboxes)
        entries: list[Entry] = [
            (shard, entry_id, fields) for shard, reply in enumerate(replies) for entry_id, fields in reply[1]
        ]
        if entries:
            log.info("relay %s took over %d stale outbox entries", self.consumer, len(entries))
        return entries

    async def _publish(self, entries: list[Entry]) -> list[BaseException | None]:
        """Publish the live entries of a batch with confirms in flight together; per live entry, why it failed."""
        return await publish_confirmed(
            self.channel,
            self.exchange,
            [
                (
                    fields[b"b"],
                    fields[b"rk"].decode(),
                    Properties(
                        content_type=CONTENT_TYPE, delivery_mode=PERSISTENT, message_id=f"{shard}-{entry_id.decode()}"
                    ),
                )
                for shard, entry_id, fields in entries
                if fields
            ],
            timeout_s=self.settings.publish_timeout_s,
        )

    def _confirmed(self, entries: list[Entry], results: list[BaseException | None]) -> list[tuple[int, bytes]]:
        """(shard, id) of the entries that may leave their outbox: confirmed ones, and ones deleted before they
        were read."""
        live = [(shard, entry_id, fields) for shard, entry_id, fields in entries if fields]
        done = [(shard, entry_id) for shard, entry_id, fields in entries if not fields]
        failures: list[BaseException] = []
        for (shard, entry_id, fields), failure in zip(live, results, strict=True):
            if failure is None:
                done.append((shard, entry_id))
                metrics.PUBLISHED.labels(fields[b"rk"].decode()).inc()
            else:
                failures.append(failure)
        self.published += len(live) - len(failures)
        if not failures:
            if live:
                HEALTH.ok(RABBITMQ)
        else:
            broker_away = temporary(failures[0], dependency=RABBITMQ)
            if broker_away is not None:
                HEALTH.failed(broker_away, what="publish outbox events")
            metrics.PUBLISH_FAILURES.inc()
            log.warning(
                "broker confirmed %d of %d outbox events; %d retried later (%r)",
                len(live) - len(failures),
                len(live),
                len(failures),
                failures[0],
            )
        return done

    async def _observe(self) -> None:
        now = time.time()
        if now - self._gauges_at < 1.0:
            return
        self._gauges_at = now
        async with self.redis.pipeline(transaction=False) as pipe:
            for outbox in self.outboxes:
                pipe.xlen(outbox)
                pipe.xrange(outbox, "-", "+", count=1)
            replies = await pipe.execute()
        lengths, oldest = replies[0::2], [found[0][0] for found in replies[1::2] if found]
        metrics.OUTBOX_ENTRIES.set(sum(int(length) for length in lengths))
        age = now - min(int(entry_id.split(b"-")[0]) for entry_id in oldest) / 1000 if oldest else 0.0
        metrics.OUTBOX_AGE.set(max(0.0, age))
