"""The puller's side of the bus protocol: claiming due users, leasing their batches, finishing them.

    1. claim_due       one script on `due`: take users whose window closed and push their score to
                       now + lease, so other pullers skip them while this one works (and retry after a crash)
    2. claim_batch     one script on the user's own keys: resume the user's in-flight batch (same digest id)
                       when its lease expired or is ours, else pop up to max_items pending entries into a new
                       in-flight batch; refuses while another puller's lease runs
    3. (hand the digests to the sink)
    4. release         per user: drop the in-flight batch of that digest id, stamp last_pulled_at; then
                       remove the user from `due` and `pending_since`; then look at the pending list again
                       and re-index what arrived meanwhile (pushers RPUSH before they ZADD NX)

Scripts never mix a user's keys with a global key, so every step also runs on Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from workers.common.entries import Entry, decode
from workers.common.keys import BusKeys
from workers.common.mapping import StreamSettings

CLAIM_DUE = """
local users = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, user in ipairs(users) do
  redis.call('ZADD', KEYS[1], ARGV[3], user)
end
return users
"""

CLAIM_BATCH = """
local pending, inflight = KEYS[1], KEYS[2]
local owner, now_ms, lease_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local until_ms = tostring(now_ms + lease_ms)
if redis.call('EXISTS', inflight) == 1 then
  local holder = redis.call('HGET', inflight, 'owner')
  local lease = tonumber(redis.call('HGET', inflight, 'lease_until_ms'))
  if holder ~= owner and lease > now_ms then
    return {'busy'}
  end
  redis.call('HSET', inflight, 'owner', owner, 'lease_until_ms', until_ms)
  redis.call('HINCRBY', inflight, 'attempts', 1)
  local batch = redis.call('HMGET', inflight, 'digest_id', 'entries', 'claimed_ms')
  return {'resumed', batch[1], batch[2], batch[3]}
end
local entries = redis.call('LPOP', pending, tonumber(ARGV[4]))
if not entries then
  return {'empty'}
end
local joined = table.concat(entries, '\\n')
redis.call('HSET', inflight, 'digest_id', ARGV[5], 'owner', owner, 'lease_until_ms', until_ms,
           'entries', joined, 'claimed_ms', ARGV[2], 'attempts', 1)
return {'new', ARGV[5], joined, ARGV[2]}
"""

RELEASE = """
if redis.call('HGET', KEYS[1], 'digest_id') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Batch:
    user: str
    digest_id: str
    entries: list[Entry]
    claimed_ms: int
    resumed: bool


@dataclass(frozen=True, slots=True)
class Claimed:
    batches: list[Batch]
    empty: list[str]
    busy: list[str]


class Claims:
    def __init__(self, redis: aioredis.Redis, *, keys: BusKeys, owner: str, lease_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._owner = owner
        self._lease_s = lease_s
        self._claim_due = redis.register_script(CLAIM_DUE)
        self._claim_batch = redis.register_script(CLAIM_BATCH)
        self._release = redis.register_script(RELEASE)

    async def claim_due(self, *, now_s: float, limit: int) -> list[str]:
        users = await self._claim_due(keys=[self._keys.due], args=[repr(now_s), limit, repr(now_s + self._lease_s)])
        return [str(u) for u in users]

    async def claim_batches(
        self, users: Sequence[str], *, now_ms: int, max_items: int, new_ids: Sequence[str]
    ) -> Claimed:
        pipe = self._redis.pipeline(transaction=False)
        for user, new_id in zip(users, new_ids, strict=True):
            await self._claim_batch(
                keys=[self._keys.pending(user), self._keys.inflight(user)],
                args=[self._owner, now_ms, int(self._lease_s * 1000), max_items, new_id],
                client=pipe,
            )
        claimed = Claimed([], [], [])
        for user, reply in zip(users, await pipe.execute(), strict=True):
            state = str(reply[0])
            if state == "empty":
                claimed.empty.append(user)
            elif state == "busy":
                claimed.busy.append(user)
            else:
                entries = [decode(raw) for raw in str(reply[2]).split("\n")]
                claimed.batches.append(Batch(user, str(reply[1]), entries, int(reply[3]), state == "resumed"))
        return claimed

    async def release(self, batches: Sequence[Batch], *, now_s: float) -> int:
        """Drop delivered batches; returns how many were still ours to drop."""
        pipe = self._redis.pipeline(transaction=False)
        for batch in batches:
            await self._release(
                keys=[self._keys.inflight(batch.user), self._keys.last_pulled_at(batch.user)],
                args=[batch.digest_id, repr(now_s)],
                client=pipe,
            )
        return sum(int(r) for r in await pipe.execute())

    async def reindex(self, users: Sequence[str], *, settings: StreamSettings, now_s: float) -> list[str]:
        """Unindex finished users, then index again those whose pending list is not empty; returns those."""
        if not users:
            return []
        await self._redis.zrem(self._keys.due, *users)
        await self._redis.zrem(self._keys.pending_since, *users)
        pipe = self._redis.pipeline(transaction=False)
        for user in users:
            pipe.llen(self._keys.pending(user))
            pipe.lindex(self._keys.pending(user), 0)
        replies = await pipe.execute()
        due: dict[str, float] = {}
        since: dict[str, float] = {}
        for index, user in enumerate(users):
            length, oldest = int(replies[2 * index]), replies[2 * index + 1]
            if not length or oldest is None:
                continue
            first_s = decode(str(oldest)).pushed_ms / 1000
            since[user] = first_s
            due[user] = now_s if length >= settings.max_items else first_s + settings.window_s
        if due:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zadd(self._keys.due, due, lt=True)
            pipe.zadd(self._keys.pending_since, since, lt=True)
            await pipe.execute()
        return list(due)

    async def unschedule(self, users: Sequence[str]) -> None:
        """Take users out of `due` without touching their data (users who belong to no brand)."""
        if users:
            await self._redis.zrem(self._keys.due, *users)

    async def schedule_valid(self, valid: set[str], *, settings: StreamSettings) -> int:
        """Put back into `due` every valid user with pending data missing from it (after a mapping change)."""
        since = await self._redis.zrange(self._keys.pending_since, 0, -1, withscores=True)
        candidates = {str(user): float(score) for user, score in since if str(user) in valid}
        if not candidates:
            return 0
        due = {user: score + settings.window_s for user, score in candidates.items()}
        return int(await self._redis.zadd(self._keys.due, due, nx=True))
