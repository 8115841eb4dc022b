"""Lua scripts of the notification store: each state change and its outbox event in one atomic step.

Notification hash fields: `by` creator, `at` created (unix ms), `ct` content type, `c` content, `exp`
expiry (unix s, empty for none), `to` recipients (space separated, empty for a broadcast), `bc` "1" for
a broadcast, `seq` commit sequence, `pending` recipients it has not reached yet (1 for a live broadcast),
`held` users who have it delivered and not deleted. A notification nobody can still receive or holds
is queued on the garbage zset and deleted after the retention.

Every change addressed to a user (create, seen, delete) takes the next commit sequence and writes it to
the user's feed (`<N|U|D>:<id>` -> seq, one member per notification); broadcasts stay in `broadcasts`
until a user changes one. The sequence is also the event's position: the scripts append it to the
serialised BrokerNotification as `notification.position` (protobuf merges a repeated embedded message),
because the body is built before the script knows the sequence.
"""

from __future__ import annotations

_EXPIRED = """
local function position_part(seq)
  -- BrokerNotification field 2 (notification) holding only Notification field 8 (position)
  local s = tostring(seq)
  local inner = string.char(0x42, #s) .. s
  return string.char(0x12, #inner) .. inner
end
local function feed_put(feed, letter, id, seq, floor)
  redis.call('ZREM', feed, 'N:' .. id, 'U:' .. id, 'D:' .. id)
  redis.call('ZADD', feed, seq, letter .. ':' .. id)
  redis.call('ZREMRANGEBYSCORE', feed, '-inf', floor)
end
local function wake_if_waiting(waiting, channel, user, now)
  if tonumber(redis.call('ZSCORE', waiting, user) or 0) >= now then
    redis.call('PUBLISH', channel, user)
  end
end
local function expired(exp, now)
  return exp ~= nil and exp ~= false and exp ~= '' and tonumber(exp) <= now
end
local function deliver(nkey, id, seq, delivered, unseen)
  redis.call('ZADD', delivered, seq, id)
  redis.call('ZADD', unseen, seq, id)
  redis.call('HINCRBY', nkey, 'held', 1)
end
local function unreferenced(nkey, id, garbage, due)
  local refs = redis.call('HMGET', nkey, 'pending', 'held')
  if tonumber(refs[1] or 0) <= 0 and tonumber(refs[2] or 0) <= 0 then
    redis.call('ZADD', garbage, due, id)
  end
end
"""

_APPLY = """
-- The part of a create that one shard commits: the shard's copy of the notification, its recipients'
-- undelivered index and feed, the expiry and the outbox event, with the shard's next sequence.
-- K: notification, seq, outbox, broadcasts, expiry, feed floor, waiting, then undelivered and feed of each
--    recipient of the shard from index `first`
-- m: id, by, at, ct, exp, to (the shard's recipients), bc ('1' broadcast), rk, wake, now
-- Returns 0 when the shard holds the notification already (a create applied again is a no-op).
local function apply(K, first, m, content, body)
  if redis.call('EXISTS', K[1]) == 1 then
    return 0
  end
  local seq = redis.call('INCR', K[2])
  local broadcast = m.bc == '1'
  local pending = broadcast and 1 or (#K - first + 1) / 2
  redis.call('HSET', K[1], 'by', m.by, 'at', m.at, 'ct', m.ct, 'c', content, 'exp', m.exp,
    'to', m.to, 'bc', m.bc, 'seq', seq, 'pending', pending, 'held', 0)
  if broadcast then
    redis.call('ZADD', K[4], seq, m.id)
  else
    local floor = redis.call('GET', K[6]) or 0
    for i = first, #K, 2 do
      redis.call('ZADD', K[i], seq, m.id)
      feed_put(K[i + 1], 'N', m.id, seq, floor)
    end
  end
  if m.exp ~= '' then
    redis.call('ZADD', K[5], m.exp, m.id)
  end
  redis.call('XADD', K[3], '*', 'rk', m.rk, 'b', body .. position_part(seq))
  local waiting = K[7]
  if broadcast then
    if redis.call('ZCOUNT', waiting, m.now, '+inf') > 0 then
      redis.call('PUBLISH', m.wake, '*')
    end
  else
    local woken = {}
    for user in string.gmatch(m.to, '%S+') do
      if tonumber(redis.call('ZSCORE', waiting, user) or 0) >= m.now then
        table.insert(woken, user)
      end
    end
    if #woken > 0 then
      redis.call('PUBLISH', m.wake, table.concat(woken, ' '))
    end
  end
  return 1
end
"""

CREATE = (
    _EXPIRED
    + _APPLY
    + """
-- A create whose recipients all live in its home shard: registration and the whole create in one step.
-- KEYS: producer ids, then the keys of apply
-- ARGV: producer_notification_id, meta (JSON, see apply), content, event body
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  return {0, existing}
end
local m = cjson.decode(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], m.id)
local K = {}
for i = 2, #KEYS do
  K[i - 1] = KEYS[i]
end
apply(K, 8, m, ARGV[3], ARGV[4])
return {1, m.id}
"""
)

REGISTER = """
-- Step 1 of a create spanning shards, in its home shard: the producer's id is taken and the create record
-- kept until every shard applied it.
-- KEYS: producer ids, create record, creating; ARGV: producer_notification_id, id, meta, content, event, now
-- Returns {1, id}, or {0, existing id, 1 while the existing create is unfinished else 0}.
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  return {0, existing, redis.call('ZSCORE', KEYS[3], existing) and 1 or 0}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], 'm', ARGV[3], 'c', ARGV[4], 'b', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[2])
return {1, ARGV[2]}
"""

APPLY = (
    _EXPIRED
    + _APPLY
    + """
-- Step 2 of a create spanning shards, in each shard with recipients (every shard for a broadcast).
-- KEYS: the keys of apply; ARGV: meta (JSON), content, event body (this shard's recipients or audience)
return apply(KEYS, 8, cjson.decode(ARGV[1]), ARGV[2], ARGV[3])
"""
)

DONE = """
-- Step 3 of a create spanning shards, in its home shard, once every shard applied it.
-- KEYS: creating, create record; ARGV: id
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])
"""

FETCH = (
    _EXPIRED
    + """
-- KEYS: undelivered, delivered, unseen, broadcast mark, broadcast done, broadcasts, garbage, waiting
-- ARGV: now (unix s), notification key prefix, limit, garbage due time, user, wait until (unix s) or 0
-- Returns seq, id, at, by, ct, c for each notification now delivered to the user. With nothing to
-- deliver and a wait, the user is marked waiting, so a create from now on wakes the poll.
local now, prefix, limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local out = {}
local function take(id, seq, row)
  table.insert(out, seq)
  table.insert(out, id)
  table.insert(out, row[1])
  table.insert(out, row[2])
  table.insert(out, row[3])
  table.insert(out, row[4])
end
local direct = redis.call('ZRANGE', KEYS[1], 0, limit - 1, 'WITHSCORES')
for i = 1, #direct, 2 do
  local id, seq = direct[i], direct[i + 1]
  local nkey = prefix .. id
  local row = redis.call('HMGET', nkey, 'at', 'by', 'ct', 'c', 'exp')
  redis.call('ZREM', KEYS[1], id)
  if row[1] then
    redis.call('HINCRBY', nkey, 'pending', -1)
    if expired(row[5], now) then
      unreferenced(nkey, id, KEYS[7], ARGV[4])
    else
      deliver(nkey, id, seq, KEYS[2], KEYS[3])
      take(id, seq, row)
    end
  end
end
local mark = tonumber(redis.call('GET', KEYS[4]) or 0)
local room = limit - #direct / 2
if room > 0 then
  local casts = redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. mark, '+inf', 'WITHSCORES', 'LIMIT', 0, room)
  for i = 1, #casts, 2 do
    local id, seq = casts[i], casts[i + 1]
    local nkey = prefix .. id
    if redis.call('SREM', KEYS[5], id) == 0 then
      local row = redis.call('HMGET', nkey, 'at', 'by', 'ct', 'c', 'exp')
      if row[1] and not expired(row[5], now) then
        deliver(nkey, id, seq, KEYS[2], KEYS[3])
        take(id, seq, row)
      end
    end
    mark = tonumber(seq)
  end
  redis.call('SET', KEYS[4], mark)
  if #casts / 2 < room then
    redis.call('DEL', KEYS[5])
  end
end
if #out == 0 and tonumber(ARGV[6]) > now then
  redis.call('ZADD', KEYS[8], 'GT', ARGV[6], ARGV[5])
end
return out
"""
)

_CONFIRM = """
-- K: undelivered, delivered, unseen, broadcast mark, broadcast done (keys of the user)
local function confirm_one(K, id, nkey, user, now)
  local row = redis.call('HMGET', nkey, 'bc', 'exp', 'seq', 'to')
  if not row[3] then
    return 'unknown'
  end
  if row[1] == '1' then
    local mark = tonumber(redis.call('GET', K[4]) or 0)
    if tonumber(row[3]) <= mark or redis.call('SISMEMBER', K[5], id) == 1 then
      return 'already_delivered'
    end
    if expired(row[2], now) then
      return 'expired'
    end
    redis.call('SADD', K[5], id)
    deliver(nkey, id, row[3], K[2], K[3])
    return 'delivered'
  end
  if not redis.call('ZSCORE', K[1], id) then
    if string.find(' ' .. row[4] .. ' ', ' ' .. user .. ' ', 1, true) then
      return 'already_delivered'
    end
    return 'not_recipient'
  end
  if expired(row[2], now) then
    return 'expired'
  end
  redis.call('ZREM', K[1], id)
  redis.call('HINCRBY', nkey, 'pending', -1)
  deliver(nkey, id, row[3], K[2], K[3])
  return 'delivered'
end
"""

CONFIRM = (
    _EXPIRED
    + _CONFIRM
    + """
-- KEYS: undelivered, delivered, unseen, broadcast mark, broadcast done, notification
-- ARGV: id, user, now
return confirm_one(KEYS, ARGV[1], KEYS[6], ARGV[2], tonumber(ARGV[3]))
"""
)

SEEN = (
    _EXPIRED
    + """
-- KEYS: delivered, seen, unseen, outbox, feed, seq, feed floor, waiting
-- ARGV: id, "1" seen or "" unseen, routing key, event body, wake channel, user, now
-- The change takes the next sequence in the user's feed; the user's feed long polls are woken.
local nseq = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not nseq then
  return 0
end
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[2], nseq, ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], nseq, ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local seq = redis.call('INCR', KEYS[6])
feed_put(KEYS[5], 'U', ARGV[1], seq, redis.call('GET', KEYS[7]) or 0)
redis.call('XADD', KEYS[4], '*', 'rk', ARGV[3], 'b', ARGV[4] .. position_part(seq))
wake_if_waiting(KEYS[8], ARGV[5], ARGV[6], tonumber(ARGV[7]))
return 1
"""
)

DELETE = (
    _EXPIRED
    + """
-- KEYS: delivered, seen, unseen, outbox, notification, garbage, feed, seq, feed floor, waiting
-- ARGV: id, routing key, event body, garbage due time, wake channel, user, now
-- The deletion stays in the user's feed as a DELETED entry at the next sequence until the feed's retention.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HINCRBY', KEYS[5], 'held', -1)
  unreferenced(KEYS[5], ARGV[1], KEYS[6], ARGV[4])
end
local seq = redis.call('INCR', KEYS[8])
feed_put(KEYS[7], 'D', ARGV[1], seq, redis.call('GET', KEYS[9]) or 0)
redis.call('XADD', KEYS[4], '*', 'rk', ARGV[2], 'b', ARGV[3] .. position_part(seq))
wake_if_waiting(KEYS[10], ARGV[5], ARGV[6], tonumber(ARGV[7]))
return 1
"""
)

FEED = (
    _EXPIRED
    + _CONFIRM
    + """
-- KEYS: feed, broadcasts, seq, feed floor, waiting, undelivered, delivered, unseen, broadcast mark,
--       broadcast done, seen
-- ARGV: after (a sequence, or empty for the oldest kept), limit, now, notification key prefix, user,
--       wait until (unix s) or 0
-- Returns {'ok', next, newly delivered, rows...} with position, id, status (N, U or D), seen, at, by, ct, c
-- per row, or
-- {'future', seq} / {'expired', floor}. The user's feed and the broadcasts are merged by sequence; a
-- broadcast the user changed is skipped there (its own feed entry stands for it). Expired and purged
-- notifications are passed over. A NEW entry handed out is delivered to the user (as a confirmation
-- does). With nothing to hand out and a wait, the user is marked waiting, so a change wakes the poll.
local limit, now, prefix, user = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local seq = tonumber(redis.call('GET', KEYS[3]) or 0)
local floor = tonumber(redis.call('GET', KEYS[4]) or 0)
local after = floor
if ARGV[1] ~= '' then
  after = tonumber(ARGV[1])
  if after > seq then
    return {'future', tostring(seq)}
  end
  if after < floor then
    return {'expired', tostring(floor)}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', floor)
local mine = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
local casts = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
local K = {KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]}
local out = {'ok', '', 0}
local function emit(letter, id, position)
  if letter == 'B' then
    if redis.call('ZSCORE', KEYS[1], 'U:' .. id) or redis.call('ZSCORE', KEYS[1], 'D:' .. id) then
      return
    end
    letter = 'N'
  end
  local row = {'', '', '', ''}
  if letter ~= 'D' then
    local nkey = prefix .. id
    row = redis.call('HMGET', nkey, 'at', 'by', 'ct', 'c', 'exp')
    if not row[1] or expired(row[5], now) then
      return
    end
    if letter == 'N' then
      if confirm_one(K, id, nkey, user, now) == 'delivered' then
        out[3] = out[3] + 1
      end
    end
  end
  local seen = redis.call('ZSCORE', KEYS[11], id) and '1' or '0'
  for _, v in ipairs({position, id, letter, seen, row[1], row[2], row[3], row[4]}) do
    table.insert(out, v)
  end
end
local i, j, taken, last = 1, 1, 0, tostring(after)
while taken < limit and (i <= #mine or j <= #casts) do
  if j > #casts or (i <= #mine and tonumber(mine[i + 1]) < tonumber(casts[j + 1])) then
    last = mine[i + 1]
    emit(string.sub(mine[i], 1, 1), string.sub(mine[i], 3), last)
    i = i + 2
  else
    last = casts[j + 1]
    emit('B', casts[j], last)
    j = j + 2
  end
  taken = taken + 1
end
out[2] = taken < limit and tostring(seq) or last
if #out == 3 and tonumber(ARGV[6]) > now then
  redis.call('ZADD', KEYS[5], 'GT', ARGV[6], user)
end
return out
"""
)

READ = """
-- KEYS: an index zset (delivered, seen or unseen), seen; ARGV: notification key prefix, start, stop, reverse
-- Returns id, seen, at, by, ct, c for each id of the range of the index.
local ids
if ARGV[4] == '1' then
  ids = redis.call('ZREVRANGE', KEYS[1], ARGV[2], ARGV[3])
else
  ids = redis.call('ZRANGE', KEYS[1], ARGV[2], ARGV[3])
end
local out = {}
for _, id in ipairs(ids) do
  local row = redis.call('HMGET', ARGV[1] .. id, 'at', 'by', 'ct', 'c')
  if row[1] then
    local seen = redis.call('ZSCORE', KEYS[2], id) and 1 or 0
    for _, v in ipairs({id, seen, row[1], row[2], row[3], row[4]}) do
      table.insert(out, v)
    end
  end
end
return out
"""

READ_ONE = """
-- KEYS: delivered, seen, notification; ARGV: id. Returns seen, at, by, ct, c or nothing.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {}
end
local row = redis.call('HMGET', KEYS[3], 'at', 'by', 'ct', 'c')
if not row[1] then
  return {}
end
local seen = redis.call('ZSCORE', KEYS[2], ARGV[1]) and 1 or 0
return {seen, row[1], row[2], row[3], row[4]}
"""

INVALIDATE_AT = (
    _EXPIRED
    + """
-- KEYS: notification, expiry; ARGV: id, producer, new expiry (unix s or empty), now
local row = redis.call('HMGET', KEYS[1], 'by', 'exp')
if row[1] ~= ARGV[2] or expired(row[2], tonumber(ARGV[4])) then
  return 0
end
redis.call('HSET', KEYS[1], 'exp', ARGV[3])
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
"""
)

PURGE = """
-- KEYS: expiry, garbage, broadcasts, waiting, seq, feed marks, feed floor, purger lease (of one shard)
-- ARGV: now, retention, limit, notification key prefix, user key prefix, feed retention, replica, lease ms
-- Expired notifications leave every undelivered index after the retention; a notification nobody holds
-- is deleted. The feed floor moves up to the newest sequence seen at least a feed retention ago (each
-- run marks the sequence it finds with the time it first found it). Returns the number deleted, or -1
-- when another replica holds the shard's lease (it purges the shard; this one leaves it alone).
local holder = redis.call('GET', KEYS[8])
if holder and holder ~= ARGV[7] then
  return -1
end
redis.call('SET', KEYS[8], ARGV[7], 'PX', ARGV[8])
local now, retention, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZADD', KEYS[6], 'NX', now, redis.call('GET', KEYS[5]) or '0')
local old = redis.call('ZREVRANGEBYSCORE', KEYS[6], now - tonumber(ARGV[6]), '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #old > 0 then
  if tonumber(old[1]) > tonumber(redis.call('GET', KEYS[7]) or 0) then
    redis.call('SET', KEYS[7], old[1])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. old[2])
end
local deleted = 0
local function drop(nkey)
  local refs = redis.call('HMGET', nkey, 'pending', 'held')
  if tonumber(refs[1] or 0) <= 0 and tonumber(refs[2] or 0) <= 0 then
    deleted = deleted + redis.call('DEL', nkey)
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - retention, 'LIMIT', 0, limit)) do
  local nkey = ARGV[4] .. id
  local row = redis.call('HMGET', nkey, 'to', 'bc')
  if row[2] == '1' then
    redis.call('ZREM', KEYS[3], id)
  elseif row[1] then
    for user in string.gmatch(row[1], '%S+') do
      redis.call('ZREM', ARGV[5] .. user .. ':undelivered', id)
    end
  end
  if row[2] then
    redis.call('HSET', nkey, 'pending', 0)
    drop(nkey)
  end
  redis.call('ZREM', KEYS[1], id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)) do
  drop(ARGV[4] .. id)
  redis.call('ZREM', KEYS[2], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
return deleted
"""
