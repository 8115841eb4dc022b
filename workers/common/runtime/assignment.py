"""Spreading a stream's shards over the live replicas of a room: membership in Redis, rendezvous hashing.

    assignment = ShardAssignment(redis, stream="reviews", room="puller", member=owner, shards=keys.shards,
                                 ttl_s=5.0, beat_s=1.0)
    tasks.spawn(assignment.run(stopping))       # beats every beat_s, leaves on a clean stop
    for shard in assignment.mine: ...           # the shards this replica serves now

Membership: every replica `beat`s into the zset `members_key(stream, room)` (replica id -> expiry, unix
seconds) in one round trip: ZADD its own expiry (now + ttl), ZREMRANGEBYSCORE the expired, ZRANGE the live
ones. A replica that stops cleanly `leave`s (ZREM); one that dies drops out once its expiry passes.

Assignment: shard `s` belongs to the live member with the highest `weight(member, s)` (rendezvous, or highest
random weight, hashing). Every replica computes the same owners from the same member list, each shard has
exactly one owner, and when a member comes or goes only the shards it wins or held move.

Why overlap is harmless. Replicas see a membership change at different moments (up to `beat_s` apart, or
`ttl_s` when a member dies without leaving), so for a while two replicas may both serve a shard, or, after a
death, nobody does until the expiry passes. The assignment only spreads the work: correctness never rests
on it. The work on a shard is done by atomic scripts on leased items (the puller's `CLAIM_DUE` moves a due
user's score to its lease expiry in one step, `TAKE` refuses a batch another replica's lease holds), so two
replicas on one shard contend, as every replica did on every shard before, but never do one item twice; and
a shard nobody serves waits at most `ttl_s + beat_s`, its items staying where they are.

Failures: until the first beat succeeds `mine` is every shard, so a lone replica, or one that starts while
Redis is away, serves everything; a failed beat keeps the last assignment (`run` retries it like every loop,
`workers/common/runtime/retry.py`). Expiries come from each replica's clock, so the replicas' clocks must
agree to well within `ttl_s` (the batch leases already assume as much).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis
from prometheus_client import Gauge

from workers.common.contract.keys import members_key
from workers.common.runtime.faults import REDIS, temporary
from workers.common.runtime.retry import repeat

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 5.0
"""How long a replica counts as live after its last beat: a replica that dies without leaving holds its shards
this long (plus one beat of the others) before they move."""
DEFAULT_BEAT_S = 1.0
"""How often a replica renews its membership and reads the others'; well under the ttl, so a slow beat or two
do not drop a live replica."""

OWN_SHARDS = Gauge("notifier_assignment_shards", "Shards this replica serves of those its room spreads.", ["room"])
LIVE_MEMBERS = Gauge(
    "notifier_assignment_members", "Live replicas of the room, as this replica last saw them.", ["room"]
)


def weight(member: str, shard: int) -> int:
    """The rendezvous weight of `member` for `shard`: 64 bits of BLAKE2b over `<member>/<shard>`, the same in
    every process and every release."""
    digest = hashlib.blake2b(f"{member}/{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner_of(shard: int, members: Iterable[str]) -> str:
    """The member that serves `shard`: the highest weight, ties (never seen with 64 bits) to the larger id."""
    return max(members, key=lambda member: (weight(member, shard), member))


def shards_of(member: str, *, members: Iterable[str], shards: Iterable[int]) -> list[int]:
    """The shards `member` serves when `members` are live (`member` counts as live whether listed or not)."""
    live = set(members) | {member}
    return [shard for shard in shards if owner_of(shard, live) == member]


class ShardAssignment:
    """This replica's share of a stream's shards among the live replicas of its room (see the module docstring).

    `mine` is every shard until the first beat succeeds, then the shards this member wins among the live
    members of the last successful beat."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str,
        room: str,
        member: str,
        shards: Sequence[int],
        ttl_s: float = DEFAULT_TTL_S,
        beat_s: float = DEFAULT_BEAT_S,
    ) -> None:
        if not 0 < beat_s < ttl_s:
            raise ValueError(f"the beat ({beat_s}s) must be positive and shorter than the membership ttl ({ttl_s}s)")
        self.key = members_key(stream, room)
        self.room = room
        self.member = member
        self.shards = list(shards)
        self.ttl_s = ttl_s
        self.beat_s = beat_s
        self.members: list[str] = []
        """The live members of the last successful beat (empty before the first)."""
        self._redis = redis
        self._mine = list(self.shards)
        OWN_SHARDS.labels(room).set(len(self._mine))

    @property
    def mine(self) -> list[int]:
        """The shards this replica serves now."""
        return self._mine

    async def beat(self) -> list[int]:
        """Renew this member, drop the expired ones and take the share of the live ones, in one round trip;
        returns `mine`. A Redis error propagates and leaves the last assignment in place."""
        now = time.time()
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(self.key, {self.member: now + self.ttl_s})
        pipe.zremrangebyscore(self.key, "-inf", f"({now!r}")
        pipe.zrange(self.key, 0, -1)
        pipe.expire(self.key, math.ceil(self.ttl_s) + 1)
        *_, live, _ = await pipe.execute()
        members = sorted(_text(member) for member in live)
        if members != self.members:
            self._mine = shards_of(self.member, members=members, shards=self.shards)
            self.members = members
            log.info(
                "%s %s serves %d of %d shards (%s) with %d live replicas",
                self.room,
                self.member,
                len(self._mine),
                len(self.shards),
                _ranges(self._mine),
                len(members),
            )
        OWN_SHARDS.labels(self.room).set(len(self._mine))
        LIVE_MEMBERS.labels(self.room).set(len(members))
        return self._mine

    async def leave(self) -> None:
        """Take this member out at once (a clean stop), so its shards move without waiting for its expiry. With
        Redis away it stays in until the expiry passes."""
        try:
            await self._redis.zrem(self.key, self.member)
        except Exception as exc:
            if temporary(exc, dependency=REDIS) is None:
                raise
            log.warning(
                "%s %s could not leave (%s): its shards move when its membership expires", self.room, self.member, exc
            )

    async def run(self, stopping: asyncio.Event) -> None:
        """Beat every `beat_s` until `stopping`, then leave. While Redis is away the beat is retried with the
        kernel's backoff and `mine` stays as it was."""

        async def step() -> float:
            await self.beat()
            return self.beat_s

        await repeat(step, what=f"renew the {self.room} membership", stopping=stopping, dependency=REDIS)
        await self.leave()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ranges(shards: Sequence[int]) -> str:
    """`0-3,7,9-10`: a sorted shard list in short."""
    parts: list[str] = []
    start = previous = None
    for shard in [*shards, None]:
        if shard is not None and previous is not None and shard == previous + 1:
            previous = shard
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = shard
    return ",".join(parts) or "none"
