"""The pull cycle: claim due users, lease their batches, build one digest each, hand them on, release.

A puller running as a room (`share_shards`) claims due users only on its own shards: the stream's shards are
spread over the live puller replicas (workers/common/runtime/assignment.py), so replicas do not contend on
every shard. Correctness does not rest on it: claims are atomic and batches leased, so a shard served by two
replicas while the membership changes is pulled once all the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from workers.common.contract.keys import BusKeys
from workers.common.contract.stream import Mapping, StreamSettings
from workers.common.runtime.aio import first_of
from workers.common.runtime.assignment import ShardAssignment
from workers.common.runtime.mapping_store import MappingCache
from workers.common.runtime.pubsub import listen
from workers.common.runtime.retry import repeat, retrying
from workers.puller import metrics
from workers.puller.claims import Batch, Claimed, Claims
from workers.puller.digest import build_digests
from workers.puller.settings import PullerSettings
from workers.puller.sink import Digest, DigestSink

log = logging.getLogger(__name__)

OVERLAP_USERS = 2048
"""Users per part of a pass: small enough that two parts overlap (Redis on one, Python on the other), large
enough that a part still costs a few script calls per shard."""


@dataclass(frozen=True, slots=True)
class Pulled:
    """What one pass handed on: the batches, and the digests built from them."""

    batches: list[Batch]
    digests: list[Digest]
    claimed: Claimed


class Puller:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        keys: BusKeys,
        sink: DigestSink,
        settings: PullerSettings,
        owner: str | None = None,
        share_shards: bool = False,
    ) -> None:
        """`share_shards`: serve only this replica's share of the stream's shards, the live puller replicas
        (those `run`ning with it) splitting them; else every shard (a one-off command, a lone test puller)."""
        self.keys = keys
        self.settings = settings
        self.sink = sink
        self.owner = owner or f"puller-{uuid.uuid4().hex[:12]}"
        self.assignment: ShardAssignment | None = None
        if share_shards:
            self.assignment = ShardAssignment(
                redis,
                stream=keys.stream,
                room="puller",
                member=self.owner,
                shards=keys.shards,
                ttl_s=settings.membership_ttl_s,
                beat_s=settings.membership_beat_s,
            )
        self.claims = Claims(
            redis,
            keys=keys,
            owner=self.owner,
            lease_s=settings.lease_s,
            max_bytes=settings.content_limit_bytes,
            max_ids_per_brand=settings.max_ids_per_brand,
        )
        self.mapping = MappingCache(redis, keys=keys, refresh_s=settings.mapping_refresh_s)
        self._redis = redis
        self._mapping_version = ""
        self._woken = asyncio.Event()
        self._stopping: asyncio.Event | None = None
        """Set while running as a room: retries last until it stops. A command gives up after the connect timeout."""
        self.totals: Tally[str] = Tally()

    async def run(self, stopping: asyncio.Event) -> None:
        """Pull until `stopping`; Redis or core away only pauses it (the batches in hand stay in flight).

        Between passes the puller sleeps until the earliest due time of its shards, a pusher's wake-up
        (`BusKeys.wake`: users became due) or at most `poll_interval_s`, whichever comes first, so a zero
        window costs no poll interval and an idle puller one look per interval. With `share_shards` it also
        keeps its membership alive and leaves when it stops."""
        self._stopping = stopping
        subscribed = asyncio.Event()
        listening = asyncio.create_task(
            listen(self._redis, self.keys.wake, lambda _: self._woken.set(), stopping=stopping, subscribed=subscribed),
            name="puller-wakeups",
        )
        helpers = [listening]
        if self.assignment is not None:
            helpers.append(asyncio.create_task(self.assignment.run(stopping), name="puller-membership"))
        try:
            await repeat(self._next, what="pull due users", stopping=stopping)
        finally:
            for task in helpers:
                if task is listening or not stopping.is_set():
                    task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    @property
    def shards(self) -> list[int]:
        """The shards this puller claims due users on: its share with `share_shards`, else every shard."""
        return self.assignment.mine if self.assignment is not None else list(self.keys.shards)

    async def _next(self) -> float:
        self._woken.clear()
        if await self.cycle():
            return 0.0
        next_due = await self.claims.next_due_s(self.shards)
        idle = self.settings.poll_interval_s
        wait = idle if next_due is None else min(max(next_due - time.time(), 0.0), idle)
        assert self._stopping is not None
        await first_of(self._woken.wait(), self._stopping.wait(), timeout_s=wait)
        return 0.0

    async def cycle(self) -> int:
        """One pass over the users of this puller's shards whose window closed; returns how many it took."""
        mapping = await self._current_mapping()
        stream_settings = self.mapping.settings
        users = await self.claims.claim_due(self.shards, now_s=time.time(), limit=self.settings.batch_users)
        if not users:
            return 0
        started = time.perf_counter()
        valid: list[str] = []
        invalid: list[str] = []
        is_valid = mapping.is_valid_user
        for user in users:
            (valid if is_valid(user) else invalid).append(user)
        if invalid:
            metrics.USERS.labels("invalid").inc(len(invalid))
            log.warning("users %s belong to no brand: left for the monitor and the cleaner", ", ".join(invalid[:10]))
        await self.pull(valid, settings=stream_settings, unschedule=invalid, details=False)
        metrics.CYCLE_SECONDS.observe(time.perf_counter() - started)
        return len(users)

    async def pull(
        self,
        users: Sequence[str],
        *,
        settings: StreamSettings,
        unschedule: Sequence[str] = (),
        details: bool = True,
    ) -> list[Pulled]:
        """Claim, digest, hand on and finish the batches of `users` (due or not), a few round trips per part;
        the `unschedule` users (of no brand) only leave `due`. `details`: the batches handed back carry their
        entries and what they left pending (`Claims.claim_batches`); a pass that only forwards digests does
        without.

        The users go in parts of at most OVERLAP_USERS, two parts at a time: Redis runs one part's scripts
        while this process wraps the other's digests, and no script holds Redis for long."""
        parts = [users[at : at + OVERLAP_USERS] for at in range(0, len(users), OVERLAP_USERS)] or [[]]
        slots = asyncio.Semaphore(2)

        async def part(index: int) -> Pulled:
            async with slots:
                claimed = await self.claims.claim_batches(
                    parts[index],
                    now_ms=int(time.time() * 1000),
                    max_items=settings.max_items,
                    unschedule=unschedule if index == 0 else (),
                    details=details,
                )
                digests = self._digests(claimed.batches)
                if digests:
                    await retrying(
                        lambda: self.sink.deliver(digests),
                        what="hand digests to core",
                        stopping=self._stopping,
                        deadline_s=None if self._stopping else self.settings.connect_timeout_s,
                    )
                released = await self.claims.finish(claimed, settings=settings, now_s=time.time())
                self._count(claimed, digests, released)
                return Pulled(claimed.batches, digests, claimed)

        return list(await asyncio.gather(*(part(index) for index in range(len(parts)))))

    def _digests(self, batches: list[Batch]) -> list[Digest]:
        """One digest per batch, as the claim script rendered it; the Python builder only for the batches the
        script left to it (larger than one document)."""
        stream, logged = self.keys.stream, log.isEnabledFor(logging.INFO)
        digests = []
        for batch in batches:
            if batch.content:
                made = [Digest(batch.digest_id, stream, batch.user, batch.content, batch.size, batch.reviews)]
            else:
                made = self._built(batch)
            digests.extend(made)
            if logged:
                for digest in made:
                    log.info(
                        "digest %s for user %s: %d reviews from %d entries%s",
                        digest.digest_id,
                        batch.user,
                        digest.reviews,
                        batch.size,
                        " (resumed batch)" if batch.resumed else "",
                    )
        return digests

    def _built(self, batch: Batch) -> list[Digest]:
        docs = build_digests(
            digest_id=batch.digest_id,
            stream=self.keys.stream,
            user=batch.user,
            entries=batch.entries,
            window_end_ms=batch.claimed_ms,
            max_bytes=self.settings.content_limit_bytes,
            max_ids_per_brand=self.settings.max_ids_per_brand,
        )
        return [
            Digest(doc.digest_id, self.keys.stream, batch.user, doc.content, batch.size, doc.reviews) for doc in docs
        ]

    def _count(self, claimed: Claimed, digests: list[Digest], released: int) -> None:
        entries = sum(b.size for b in claimed.batches)
        resumed = sum(1 for b in claimed.batches if b.resumed)
        metrics.USERS.labels("digested").inc(len(claimed.batches))
        metrics.USERS.labels("empty").inc(len(claimed.empty))
        metrics.USERS.labels("busy").inc(len(claimed.busy))
        metrics.DIGESTS.inc(len(digests))
        metrics.ENTRIES.inc(entries)
        metrics.RESUMED.inc(resumed)
        self.totals.update(digests=len(digests), entries=entries, resumed=resumed, released=released)

    async def _current_mapping(self) -> Mapping:
        mapping = await self.mapping.get()
        if mapping.version != self._mapping_version:
            self._mapping_version = mapping.version
            added = await self.claims.schedule_valid(set(mapping.user_brands), settings=self.mapping.settings)
            if added:
                log.info("mapping %s: %d users with waiting data scheduled again", mapping.version, added)
        return mapping
