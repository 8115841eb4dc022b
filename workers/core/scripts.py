"""Lua scripts of the notification store: each state change and its outbox event in one atomic step.

Notification hash fields: `by` creator, `at` created (unix ms), `ct` content type, `c` content, `exp`
expiry (unix s, empty for none), `to` recipients (space separated, empty for a broadcast), `bc` "1" for
a broadcast, `seq` commit sequence, `pending` recipients it has not reached yet (1 for a live broadcast),
`held` users who have it delivered and not deleted. A notification nobody can still receive or holds
is queued on the garbage zset and deleted after the retention.
"""

from __future__ import annotations

_EXPIRED = """
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

CREATE = """
-- KEYS: producer ids, notification, seq, outbox, broadcasts, expiry, undelivered of each recipient, waiting
-- ARGV: meta (JSON: pnid, id, by, at, ct, exp, to, rk, wake, now), content, event body
-- Recipients with a long poll waiting are woken through the wake channel.
local m = cjson.decode(ARGV[1])
local existing = redis.call('HGET', KEYS[1], m.pnid)
if existing then
  return {0, existing}
end
redis.call('HSET', KEYS[1], m.pnid, m.id)
local seq = redis.call('INCR', KEYS[3])
local broadcast = #KEYS == 7
local pending = broadcast and 1 or (#KEYS - 7)
redis.call('HSET', KEYS[2], 'by', m.by, 'at', m.at, 'ct', m.ct, 'c', ARGV[2], 'exp', m.exp,
  'to', m.to, 'bc', broadcast and '1' or '', 'seq', seq, 'pending', pending, 'held', 0)
if broadcast then
  redis.call('ZADD', KEYS[5], seq, m.id)
else
  for i = 7, #KEYS - 1 do
    redis.call('ZADD', KEYS[i], seq, m.id)
  end
end
if m.exp ~= '' then
  redis.call('ZADD', KEYS[6], m.exp, m.id)
end
redis.call('XADD', KEYS[4], '*', 'rk', m.rk, 'b', ARGV[3])
local waiting = KEYS[#KEYS]
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
return {1, m.id}
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

CONFIRM = (
    _EXPIRED
    + """
-- KEYS: undelivered, delivered, unseen, broadcast mark, broadcast done, notification
-- ARGV: id, user, now
local row = redis.call('HMGET', KEYS[6], 'bc', 'exp', 'seq', 'to')
if not row[3] then
  return 'unknown'
end
if row[1] == '1' then
  local mark = tonumber(redis.call('GET', KEYS[4]) or 0)
  if tonumber(row[3]) <= mark or redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 1 then
    return 'already_delivered'
  end
  if expired(row[2], tonumber(ARGV[3])) then
    return 'expired'
  end
  redis.call('SADD', KEYS[5], ARGV[1])
  deliver(KEYS[6], ARGV[1], row[3], KEYS[2], KEYS[3])
  return 'delivered'
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if string.find(' ' .. row[4] .. ' ', ' ' .. ARGV[2] .. ' ', 1, true) then
    return 'already_delivered'
  end
  return 'not_recipient'
end
if expired(row[2], tonumber(ARGV[3])) then
  return 'expired'
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[6], 'pending', -1)
deliver(KEYS[6], ARGV[1], row[3], KEYS[2], KEYS[3])
return 'delivered'
"""
)

SEEN = """
-- KEYS: delivered, seen, unseen, outbox; ARGV: id, "1" seen or "" unseen, routing key, event body
local seq = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not seq then
  return 0
end
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[2], seq, ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], seq, ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('XADD', KEYS[4], '*', 'rk', ARGV[3], 'b', ARGV[4])
return 1
"""

DELETE = (
    _EXPIRED
    + """
-- KEYS: delivered, seen, unseen, outbox, notification, garbage
-- ARGV: id, routing key, event body, garbage due time
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HINCRBY', KEYS[5], 'held', -1)
  unreferenced(KEYS[5], ARGV[1], KEYS[6], ARGV[4])
end
redis.call('XADD', KEYS[4], '*', 'rk', ARGV[2], 'b', ARGV[3])
return 1
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
-- KEYS: expiry, garbage, broadcasts, waiting; ARGV: now, retention, limit, notification key prefix,
--       user key prefix
-- Expired notifications leave every undelivered index after the retention; a notification nobody holds
-- is deleted. Returns the number of notifications deleted.
local now, retention, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
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
      redis.call('ZREM', ARGV[5] .. '{' .. user .. '}:undelivered', id)
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
