"""Removing a user's bus data: the user's own keys in one script, then the index entries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from workers.common.contract.keys import BusKeys

INSPECT_OR_DELETE = """
local user = ARGV[2]
local pending = redis.call('LLEN', KEYS[1])
local inflight = 0
local function count(batch)
  if batch then
    inflight = inflight + 1
    for _ in string.gmatch(batch, '\\n') do inflight = inflight + 1 end
  end
end
local record = redis.call('HGET', KEYS[4], user)
count(record and string.match(record, '\\n(.*)$'))
count(redis.call('HGET', KEYS[2], 'entries'))
local stamped = redis.call('HEXISTS', KEYS[5], user) + redis.call('EXISTS', KEYS[3])
if ARGV[1] == 'delete' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  redis.call('HDEL', KEYS[4], user)
  redis.call('HDEL', KEYS[5], user)
end
return {pending, inflight, stamped}
"""
"""Inspect or remove one user's bus data (`BusKeys.user_keys`: the pending list, the two per-user keys of the
earlier layout, the user's fields of the shard's in-flight and last_pulled_at hashes), all in one slot. An
in-flight batch counts its entries; a user caught in an upgrade may hold one in each layout."""


@dataclass(frozen=True, slots=True)
class Removal:
    user: str
    pending_entries: int
    inflight_entries: int
    last_pulled_at: bool
    indexed: bool
    done: bool

    @property
    def found(self) -> bool:
        return bool(self.pending_entries or self.inflight_entries or self.last_pulled_at or self.indexed)

    def describe(self) -> str:
        verb = "removed" if self.done else "would remove"
        parts = [f"{self.pending_entries} pending entries"]
        if self.inflight_entries:
            parts.append(f"an in-flight batch of {self.inflight_entries} entries")
        if self.last_pulled_at:
            parts.append("last_pulled_at")
        if self.indexed:
            parts.append("its index entries")
        return f"user {self.user}: {verb} {', '.join(parts)}"


class Purger:
    def __init__(self, redis: aioredis.Redis, *, keys: BusKeys) -> None:
        self._redis = redis
        self.keys = keys
        self._script = redis.register_script(INSPECT_OR_DELETE)

    async def remove(self, user: str, *, dry_run: bool) -> Removal:
        keys = self.keys
        shard = keys.shard_of(user)
        pipe = self._redis.pipeline(transaction=False)
        pipe.zscore(keys.due(shard), user)
        pipe.zscore(keys.pending_since(shard), user)
        due, since = await pipe.execute()
        pending, inflight, stamped = await self._script(
            keys=list(keys.user_keys(user)), args=["inspect" if dry_run else "delete", user]
        )
        indexed = due is not None or since is not None
        if not dry_run and indexed:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zrem(keys.due(shard), user)
            pipe.zrem(keys.pending_since(shard), user)
            await pipe.execute()
        return Removal(user, int(pending), int(inflight), bool(stamped), indexed, done=not dry_run)

    async def invalid_users(self) -> list[str] | None:
        """Users in the indexes who belong to no brand; None when the stream has no mapping at all."""
        # Imported here: the mapping's models and YAML parser are the larger part of `notifier clean USER`'s
        # start-up, and only the sweep of invalid users reads the mapping.
        from workers.common.runtime.mapping_store import read_mapping

        mapping = await read_mapping(self._redis, keys=self.keys)
        if not mapping.version:
            return None
        pipe = self._redis.pipeline(transaction=False)
        for shard in self.keys.shards:
            pipe.zrange(self.keys.pending_since(shard), 0, -1)
            pipe.zrange(self.keys.due(shard), 0, -1)
        users = {str(user) for found in await pipe.execute() for user in found}
        return sorted(u for u in users if not mapping.is_valid_user(u))

    async def remove_many(self, users: Sequence[str], *, dry_run: bool) -> list[Removal]:
        return [await self.remove(user, dry_run=dry_run) for user in users]
