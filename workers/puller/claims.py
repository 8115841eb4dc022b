"""The puller's side of the bus protocol: many users per Redis round trip, one script per bus shard.

    1. claim_due   per shard of this puller's own (`ShardAssignment.mine`, the shards spread over the live
                   replicas): take users whose window closed and push their score to now + lease, so other
                   pullers skip them while this one works (and take them after a crash)
    2. take        per shard, for the users to digest: resume a user's in-flight batch (same digest id) when
                   its lease expired or is ours, else pop up to max_items pending entries into a new in-flight
                   batch, refusing while another puller's lease runs; users who belong to no brand leave `due`
                   (their data stays for the monitor and the cleaner); the same script renders each batch's
                   digest document (digest.RENDER) and hands back the finish argument of the shard
    3. (hand the digests to the sink)
    4. finish      per shard: drop each delivered batch (still holding its digest id) from the shard's in-flight
                   hash and stamp the user in its last_pulled_at hash, take the user out of `due` and
                   `pending_since`, and index again what is still pending

Every script touches the keys of one shard only (they share its hash tag), so it also runs on Redis Cluster;
the calls for all shards go out in one pipeline, and a shard's users travel as one argument of lines (ids
hold no space or newline). Whatever a pass holds, a step is one round trip of a few arguments per shard, and
Python touches each user only to wrap the finished digest: no entry is parsed unless a caller asks for it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from workers.common.contract.entries import Entry, decode
from workers.common.contract.keys import BusKeys
from workers.common.contract.stream import StreamSettings
from workers.common.runtime.scripts import ScriptCall, run_scripts_or_raise
from workers.puller.digest import RENDER

CLAIM_DUE = """
local users = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for first = 1, #users, 3000 do
  local args = {'ZADD', KEYS[1]}
  for at = first, math.min(first + 2999, #users) do
    args[#args + 1] = ARGV[3]
    args[#args + 1] = users[at]
  end
  redis.call(unpack(args))
end
return users
"""

CHUNK = 2000
"""Values per variadic command inside a script: Lua's `unpack` takes a few thousand."""

TAKE = (
    RENDER
    + f"local chunk = {CHUNK}\n"
    + """
local prefix, owner, now_ms, lease_ms, max_items = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local id_base, stream, max_bytes, max_ids = ARGV[8], ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
local details, most = ARGV[12] == '1', tonumber(max_items)
local until_ms = tostring(now_ms + lease_ms)
local renderable = not string.find(stream, unsafe)
local users, held, earlier = {}, {}, {}
for user in string.gmatch(ARGV[6], '%S+') do users[#users + 1] = user end
for first = 1, #users, chunk do
  local got = redis.call('HMGET', KEYS[2], unpack(users, first, math.min(first + chunk - 1, #users)))
  for at = 1, #got do held[first + at - 1] = got[at] end
end
local names, found = {}, 0
for at, user in ipairs(users) do
  if not held[at] then names[#names + 1] = prefix .. user .. ':inflight' end
end
for first = 1, #names, chunk do
  found = found + redis.call('EXISTS', unpack(names, first, math.min(first + chunk - 1, #names)))
end
if found > 0 then
  for at, user in ipairs(users) do
    local inflight = prefix .. user .. ':inflight'
    local entries = not held[at] and redis.call('HGET', inflight, 'entries')
    if entries then
      local old = redis.call('HMGET', inflight, 'claim', 'digest_id', 'owner', 'lease_until_ms', 'claimed_ms')
      local id, claimed, lease, holder
      if old[1] then
        id, claimed, lease, holder = string.match(old[1], '^(%S+) (%d+) (%d+) (.*)$')
      else
        id, holder, lease, claimed = old[2], old[3], old[4], old[5]
      end
      earlier[at] = {id, claimed, lease, holder, entries, inflight}
    end
  end
end
local out, finish, writes, moved = {''}, {}, {}, {}
for at, user in ipairs(users) do
  local state, id, entries, claimed, popped, lease, holder, line = 'empty', '-', nil, nil, nil, nil, nil, nil
  if held[at] then
    line, entries = string.match(held[at], '^([^\\n]*)\\n(.*)$')
    id, claimed, lease, holder = string.match(line, '^(%S+) (%d+) (%d+) (.*)$')
  elseif earlier[at] then
    id, claimed, lease, holder, entries = unpack(earlier[at], 1, 5)
  end
  if entries then
    if holder ~= owner and tonumber(lease) > now_ms then
      state = 'busy'
    else
      writes[#writes + 1] = user
      writes[#writes + 1] = id .. ' ' .. claimed .. ' ' .. until_ms .. ' ' .. owner .. '\\n' .. entries
      if earlier[at] then moved[#moved + 1] = earlier[at][6] end
      state, popped = 'resumed', {}
      for one in string.gmatch(entries, '[^\\n]+') do popped[#popped + 1] = one end
    end
  else
    popped = redis.call('LPOP', prefix .. user .. ':pending', most)
    if popped then
      id, entries, claimed = id_base .. string.format('%08x', at), table.concat(popped, '\\n'), ARGV[3]
      writes[#writes + 1] = user
      writes[#writes + 1] = id .. ' ' .. claimed .. ' ' .. until_ms .. ' ' .. owner .. '\\n' .. entries
      state = 'new'
    end
  end
  if state ~= 'busy' then finish[#finish + 1] = user .. ' ' .. id end
  if popped then
    local content, reviews, unique = false, 0, 0
    if renderable and (state == 'new' or not string.find(id, unsafe)) then
      content, reviews, unique = render(id, stream, user, popped, tonumber(claimed), max_bytes, max_ids)
    end
    local left = '-'
    if state == 'new' and #popped < most then
      left = 0
    elseif details then
      left = redis.call('LLEN', prefix .. user .. ':pending')
    end
    out[#out + 1] = user .. ' ' .. state .. ' ' .. id .. ' ' .. claimed .. ' ' .. #popped .. ' ' .. (reviews or 0) ..
                    ' ' .. (unique or 0) .. ' ' .. left
    out[#out + 1] = content or ''
    out[#out + 1] = (details or not content) and entries or ''
  else
    out[#out + 1] = user .. ' ' .. state
  end
end
for first = 1, #writes, 2 * chunk do
  redis.call('HSET', KEYS[2], unpack(writes, first, math.min(first + 2 * chunk - 1, #writes)))
end
for first = 1, #moved, chunk do
  redis.call('DEL', unpack(moved, first, math.min(first + chunk - 1, #moved)))
end
out[1] = table.concat(finish, '\\n')
for user in string.gmatch(ARGV[7], '%S+') do
  redis.call('ZREM', KEYS[1], user)
end
return out
"""
)
"""Claim a shard's users' batches (module docstring, step 2). The shard's in-flight hash (KEYS[2]) holds one
field per user with a batch: the line `<digest id> <claimed ms> <lease until ms> <owner>` (rewritten with the
new lease on resume), a newline, and the batch one entry per line. One HMGET finds the shard's held users, and
the batches taken or resumed go back in one HSET.

A record of the earlier per-user layout (the hash `<user>:inflight` with `claim`, or the six fields before it,
and `entries`), left by a puller of an earlier release, is resumed with its digest id and moved into the shard's
hash. One EXISTS over the part's free users tells whether any such record is there, so only then are they
looked up one by one.

Each user's reply is one line `<user> <state>` (`empty` or `busy`), or for a batch the line
`<user> <state> <digest id> <claimed ms> <entries> <reviews> <distinct reviews> <left or ->` followed by the
rendered document (empty if left to Python) and the raw entries, sent only when Python needs them: no
document, or `details` asked (ARGV[12]). `left` costs an LLEN unless the pop already showed the list empty, so
it is `-` (unknown) for a full batch without `details`."""

FINISH = (
    f"local chunk = {CHUNK}\n"
    + """
local prefix, now_s, window_s, max_items = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local users, digests, named = {}, {}, {}
for user, digest in string.gmatch(ARGV[5], '(%S+) (%S+)') do
  users[#users + 1] = user
  digests[#users] = digest
  if digest ~= '-' then named[#named + 1] = #users end
end
for first = 1, #users, chunk do
  local last = math.min(first + chunk - 1, #users)
  redis.call('ZREM', KEYS[1], unpack(users, first, last))
  redis.call('ZREM', KEYS[2], unpack(users, first, last))
end
local ours = {}
for first = 1, #named, chunk do
  local names = {}
  for k = first, math.min(first + chunk - 1, #named) do names[#names + 1] = users[named[k]] end
  local claims = redis.call('HMGET', KEYS[3], unpack(names))
  for k = 1, #names do
    local digest, claim = digests[named[first + k - 1]], claims[k]
    if claim and string.sub(claim, 1, #digest + 1) == digest .. ' ' then ours[#ours + 1] = names[k] end
  end
end
for first = 1, #ours, chunk do
  local last = math.min(first + chunk - 1, #ours)
  redis.call('HDEL', KEYS[3], unpack(ours, first, last))
  local stamps = {}
  for k = first, last do
    stamps[#stamps + 1] = ours[k]
    stamps[#stamps + 1] = ARGV[2]
  end
  redis.call('HSET', KEYS[4], unpack(stamps))
end
for _, user in ipairs(users) do
  local pending = prefix .. user .. ':pending'
  local length = redis.call('LLEN', pending)
  if length > 0 then
    local oldest = redis.call('LINDEX', pending, 0)
    local since = tonumber(string.match(oldest, '^[^|]*|[^|]*|[^|]*|(%d+)')) / 1000
    local due = since + window_s
    if length >= max_items then
      due = now_s
    end
    redis.call('ZADD', KEYS[1], due, user)
    redis.call('ZADD', KEYS[2], since, user)
  end
end
return #ours
"""
)
"""Release a shard's delivered batches (module docstring, step 4): one HMGET of the shard's in-flight hash
checks that each batch is still ours (its digest id), one HDEL drops them and one HSET stamps the shard's
`last_pulled_at` hash; then each user is indexed again by what is still pending (a push may have come since
`TAKE`)."""


class Batch(NamedTuple):
    """A user's leased batch: the digest document the script rendered from its entries (`content`; empty when
    left to Python: too large for one document) and, when Python builds it or the caller asked for them, the
    entries as stored (`raw`, one per line). A tuple: a pass makes one per user."""

    user: str
    digest_id: str
    raw: str
    claimed_ms: int
    resumed: bool
    size: int
    content: bytes = b""
    reviews: int = 0
    distinct: int = 0
    """Distinct review ids among the entries (a review of two brands counts once)."""
    left: int | None = 0
    """Entries still pending after this batch was taken; None when not asked for (`details`) and the batch was
    full, so only an LLEN could tell."""

    @property
    def entries(self) -> list[Entry]:
        if not self.raw:
            raise ValueError(f"batch {self.digest_id} was taken without its entries (claim_batches details=False)")
        return [decode(line) for line in self.raw.split("\n")]


@dataclass(frozen=True, slots=True)
class Claimed:
    batches: list[Batch]
    empty: list[str]
    busy: list[str]
    finishing: dict[int, str] = field(default_factory=dict)
    """Per shard, the `<user> <digest id or ->` lines that `finish` sends back once the digests are handed on."""


class Claims:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        keys: BusKeys,
        owner: str,
        lease_s: float,
        max_bytes: int,
        max_ids_per_brand: int,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._owner = owner
        self._lease_s = lease_s
        self._max_bytes = max_bytes
        self._max_ids_per_brand = max_ids_per_brand
        self._claim_due = redis.register_script(CLAIM_DUE)
        self._take = redis.register_script(TAKE)
        self._finish = redis.register_script(FINISH)

    async def claim_due(self, shards: Iterable[int], *, now_s: float, limit: int) -> list[str]:
        """Up to `limit` due users of each of `shards` (the puller's own, `ShardAssignment.mine`), leased to this
        puller."""
        lease = repr(now_s + self._lease_s)
        calls = [(self._claim_due, [self._keys.due(s)], [repr(now_s), limit, lease]) for s in shards]
        if not calls:
            return []
        return [str(user) for users in await run_scripts_or_raise(self._redis, calls) for user in users]

    async def next_due_s(self, shards: Iterable[int]) -> float | None:
        """The earliest time any user of `shards` becomes due (a lease running out included), or None."""
        pipe = self._redis.pipeline(transaction=False)
        for shard in shards:
            pipe.zrange(self._keys.due(shard), 0, 0, withscores=True)
        firsts = [float(found[0][1]) for found in await pipe.execute() if found]
        return min(firsts, default=None)

    async def claim_batches(
        self,
        users: Sequence[str],
        *,
        now_ms: int,
        max_items: int,
        unschedule: Sequence[str] = (),
        details: bool = True,
    ) -> Claimed:
        """Lease the batches of `users` (a new batch gets a new random digest id, a resumed one keeps its id);
        the `unschedule` users only leave `due`. Without `details` a batch whose digest the script rendered
        comes without its raw entries, and a full one without what it `left` pending: Redis does less and
        sends less when the caller only forwards the digests."""
        taking, leaving = self._keys.by_shard(users), self._keys.by_shard(unschedule)
        shards = sorted(taking.keys() | leaving.keys())
        calls: list[ScriptCall] = []
        for shard in shards:
            args = [
                self._keys.user_prefix(shard),
                self._owner,
                now_ms,
                int(self._lease_s * 1000),
                max_items,
                "\n".join(taking.get(shard, ())),
                "\n".join(leaving.get(shard, ())),
                secrets.token_hex(12),
                self._keys.stream,
                self._max_bytes,
                self._max_ids_per_brand,
                1 if details else 0,
            ]
            calls.append((self._take, [self._keys.due(shard), self._keys.inflight(shard)], args))
        claimed = Claimed([], [], [])
        batches, empty, busy = claimed.batches, claimed.empty, claimed.busy
        for shard, reply in zip(shards, await run_scripts_or_raise(self._redis, calls), strict=True):
            if reply[0]:
                claimed.finishing[shard] = reply[0]
            at, end = 1, len(reply)
            while at < end:
                head = reply[at].split(" ")
                if len(head) == 2:
                    (empty if head[1] == "empty" else busy).append(head[0])
                    at += 1
                    continue
                user, state, digest_id, claimed_ms, size, reviews, distinct, left = head
                batches.append(
                    Batch(
                        user,
                        digest_id,
                        reply[at + 2],
                        int(claimed_ms),
                        state == "resumed",
                        int(size),
                        reply[at + 1].encode(),
                        int(reviews),
                        int(distinct),
                        None if left == "-" else int(left),
                    )
                )
                at += 3
        return claimed

    async def finish(self, claimed: Claimed, *, settings: StreamSettings, now_s: float) -> int:
        """Drop the delivered batches of `claimed` and index again what the users still hold (the empty users
        too); returns how many batches were still ours to drop."""
        if not claimed.finishing:
            return 0
        calls: list[ScriptCall] = []
        for shard, lines in claimed.finishing.items():
            args = [self._keys.user_prefix(shard), repr(now_s), repr(settings.window_s), settings.max_items, lines]
            keys = self._keys
            names = [keys.due(shard), keys.pending_since(shard), keys.inflight(shard), keys.last_pulled_at(shard)]
            calls.append((self._finish, names, args))
        return sum(int(n) for n in await run_scripts_or_raise(self._redis, calls))

    async def schedule_valid(self, valid: set[str], *, settings: StreamSettings) -> int:
        """Put back into `due` every valid user with pending data missing from it (after a mapping change)."""
        pipe = self._redis.pipeline(transaction=False)
        for shard in self._keys.shards:
            pipe.execute_command("ZDIFF", 2, self._keys.pending_since(shard), self._keys.due(shard), "WITHSCORES")
        added = 0
        for shard, missing in zip(self._keys.shards, await pipe.execute(), strict=True):
            due = {str(user): float(since) + settings.window_s for user, since in _pairs(missing) if str(user) in valid}
            if due:
                added += int(await self._redis.zadd(self._keys.due(shard), due, nx=True))
        return added


def _pairs(reply: list[Any]) -> Iterable[tuple[Any, Any]]:
    """(member, score) of a WITHSCORES reply, which redis-py hands back as pairs or flat depending on the call."""
    if reply and not isinstance(reply[0], list | tuple):
        return zip(reply[::2], reply[1::2], strict=True)
    return [(member, score) for member, score in reply]
