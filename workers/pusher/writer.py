"""Appending entries to users' pending lists: one script call per bus shard, all shards in one round trip.

The script of a shard RPUSHes each user's entries, then `ZADD NX`es its users into the shard's `due` (window
close) and `pending_since` (oldest entry), and makes a user whose list reached `max_items` due at once; the
ZADDs are variadic (a few thousand users per call), so a user costs Redis one RPUSH.
A puller finishes a user of the same shard in one script too, so the two never interleave.

Last in the same script, each written event's key goes into the shard's `pushed` with its push time, and
keys older than the horizon are trimmed. A redelivered event whose key is in a shard's `pushed` was written
for that shard's users before (its ack was lost), so it is not written there again; an event fans out over
several shards, and each shard's part is written and marked in one script, so a shard either has all its
entries of the event and the mark or neither.

A shard's entries travel as one argument of `<user> <entry>` lines (ids and entries hold no space or
newline), so a batch of 100,000 entries is 16 script calls of a few arguments each: neither a pipeline of
one command per user nor 100,000 arguments for the client to encode. The reply tells whether users became
due, and the pusher then publishes one wake-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from workers.common.contract.keys import BusKeys
from workers.common.contract.stream import StreamSettings
from workers.common.runtime.scripts import ScriptCall, run_scripts_or_raise

WRITE = """
local prefix, due_at, now_s, max_items = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local due, since, full = {}, {}, {}
local function zadd(key, options, members)
  local changed = 0
  for first = 1, #members, 3000 do
    local args = {'ZADD', key, unpack(options)}
    for at = first, math.min(first + 2999, #members) do args[#args + 1] = members[at] end
    changed = changed + redis.call(unpack(args))
  end
  return changed
end
local function append(user, entries)
  local list = prefix .. user .. ':pending'
  local length = 0
  for first = 1, #entries, 1000 do
    length = redis.call('RPUSH', list, unpack(entries, first, math.min(first + 999, #entries)))
  end
  due[#due + 1] = due_at
  due[#due + 1] = user
  since[#since + 1] = now_s
  since[#since + 1] = user
  if length >= max_items then
    full[#full + 1] = now_s
    full[#full + 1] = user
  end
end
local user, entries = nil, {}
for who, entry in string.gmatch(ARGV[7], '(%S+) (%S+)') do
  if who ~= user then
    if user then append(user, entries) end
    user, entries = who, {}
  end
  entries[#entries + 1] = entry
end
if user then append(user, entries) end
local woken = zadd(KEYS[1], {'NX'}, due)
zadd(KEYS[2], {'NX'}, since)
woken = woken + zadd(KEYS[1], {'LT', 'CH'}, full)
if ARGV[8] ~= '' then
  local marks = {}
  for key in string.gmatch(ARGV[8], '[^\\n]+') do
    marks[#marks + 1] = ARGV[5]
    marks[#marks + 1] = key
  end
  zadd(KEYS[3], {}, marks)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[6])
end
return woken
"""


async def append_entries(
    redis: aioredis.Redis,
    *,
    keys: BusKeys,
    by_user: Mapping[str, list[str]],
    settings: StreamSettings,
    now_s: float,
    pushed: Mapping[int, Sequence[str]] | None = None,
    horizon_s: float | None = None,
) -> int:
    """Append each user's entries and mark the `pushed` event keys (by shard); wakes idle pullers when users
    became due. Returns the number of entries written."""
    if not by_user:
        return 0
    shards = keys.by_shard(by_user)
    marks = pushed or {}
    if marks and horizon_s is None:
        raise ValueError("marking pushed event keys needs the redelivery horizon")
    now_ms = int(now_s * 1000)
    cut_ms = now_ms - int((horizon_s or 0.0) * 1000)
    script = redis.register_script(WRITE)
    calls: list[ScriptCall] = []
    for shard, users in shards.items():
        lines = "\n".join(f"{user} {entry}" for user in users for entry in by_user[user])
        args = [
            keys.user_prefix(shard),
            repr(now_s + settings.window_s),
            repr(now_s),
            settings.max_items,
            now_ms,
            cut_ms,
            lines,
            "\n".join(marks.get(shard, ())),
        ]
        calls.append((script, [keys.due(shard), keys.pending_since(shard), keys.pushed(shard)], args))
    woken = sum(int(n) for n in await run_scripts_or_raise(redis, calls))
    if woken:
        await redis.publish(keys.wake, str(woken))
    return sum(len(v) for v in by_user.values())


async def already_pushed(redis: aioredis.Redis, *, keys: BusKeys, event_keys: Sequence[str]) -> set[tuple[int, str]]:
    """(shard, event key) of each of `event_keys` written for that shard within the horizon (the events of a
    lost ack)."""
    if not event_keys:
        return set()
    pipe = redis.pipeline(transaction=False)
    for shard in keys.shards:
        pipe.zmscore(keys.pushed(shard), list(event_keys))
    found: set[tuple[int, str]] = set()
    for shard, scores in zip(keys.shards, await pipe.execute(), strict=True):
        found.update((shard, key) for key, score in zip(event_keys, scores, strict=True) if score is not None)
    return found
