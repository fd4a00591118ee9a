--[[ _lib.lua: shared prelude, prepended to every script by scripts.py.

Conventions for every script:
  ARGV[1]  namespace prefix, e.g. "hiveq:{app:env}:"  (all keys share its hash tag)
  ARGV[2]  events stream MAXLEN (approximate cap)
  ARGV[3…] the script's own arguments, listed in its header.
Fixed keys are passed in KEYS; per-record keys (job:<id>, task:<id>, q:<agent>) are derived
from the prefix and hash to the same cluster slot because of the {app:env} hash tag.
Return codes (hiveq/contract/errors.py Code): 0 OK, 1 NOT_FOUND, 2 STALE_TOKEN, 3 WRONG_STATE,
4 DUPLICATE, 5 NAMESPACE_MISMATCH, 6 PROTOCOL_MISMATCH.
Before its body runs, every script checks that each fixed key in KEYS, and the events stream,
holds its documented type (or does not exist); otherwise it fails with a "WRONGTYPE hiveq key
<key> holds a <found>, expected a <type>" error before writing anything.
]]
local P = ARGV[1]
local EV_MAXLEN = tonumber(ARGV[2])
local OK, NOT_FOUND, STALE, WRONG_STATE, DUPLICATE = 0, 1, 2, 3, 4
local PRIO_SHIFT = 4398046511104 -- 2^42: score = priority * 2^42 + enqueue sequence
local TERMINAL = { succeeded = true, dead = true, cancelled = true, quarantined = true }

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local NOW = now_ms()
local NOW_TEXT = string.format('%d', NOW)

-- Type checks: a script refuses to start when one of our keys holds another Redis type (a
-- foreign client wrote it), so a transition never stops half-way on a WRONGTYPE error.
-- Mirrors hiveq/queue/keys.py FIXED_KEY_TYPES; the client names the key in its error.
local FIXED_TYPES = { meta = 'hash', seq = 'string', agents = 'set', jobs = 'zset',
  blocked = 'zset', delayed = 'zset', leases = 'zset', succeeded = 'zset', dead = 'zset',
  cancelled = 'zset', quarantine = 'zset', tasks = 'zset', finished = 'zset', events = 'stream',
  workers = 'zset', stats = 'hash', agent_modules = 'hash' }
local function type_of(key)
  local t = redis.call('TYPE', key)
  return type(t) == 'table' and t.ok or t
end
local function check_type(key, expected)
  local found = type_of(key)
  if found ~= 'none' and found ~= expected then
    error({ err = 'WRONGTYPE hiveq key ' .. key .. ' holds a ' .. found .. ', expected a ' .. expected })
  end
end
local events_checked = false
for _, key in ipairs(KEYS) do
  local suffix = string.sub(key, #P + 1)
  if FIXED_TYPES[suffix] then check_type(key, FIXED_TYPES[suffix]) end
  if suffix == 'events' then events_checked = true end
end
if not events_checked then check_type(P .. 'events', 'stream') end -- every transition appends to it

local function jkey(id) return P .. 'job:' .. id end
-- Decode a JSON list of job ids; most jobs have none, so skip the decoder for "[]".
local function id_list(text)
  if not text or text == '[]' or text == '' then return {} end
  return cjson.decode(text)
end
local function tkey(id) return P .. 'task:' .. id end

local worker_cache = {}
-- host/pid/client of a registered worker, for custody events.
local function worker_info(wid)
  if wid == nil or wid == '' then return nil end
  local w = worker_cache[wid]
  if w == nil then
    local f = redis.call('HMGET', P .. 'worker:' .. wid, 'host', 'pid', 'client')
    w = { host = f[1] or nil, pid = tonumber(f[2]), client = f[3] or nil }
    worker_cache[wid] = w
  end
  return w
end

-- Append one event to the capped stream and, for job events, to the job's custody log
-- (unless `nolog`).
local function emit(ev, nolog)
  ev.ts = NOW
  if ev.worker and ev.host == nil then
    local w = worker_info(ev.worker)
    if w then ev.host = w.host; ev.pid = w.pid; ev.client = w.client end
  end
  local body = cjson.encode(ev)
  local id = redis.call('XADD', P .. 'events', 'MAXLEN', '~', EV_MAXLEN, '*', 'e', body)
  if ev.job and not nolog then
    redis.call('RPUSH', P .. 'job:' .. ev.job .. ':log', '{"id":"' .. id .. '",' .. string.sub(body, 2))
  end
  return id
end

-- The hot transitions (enqueue, claim, complete) write their job events through emit_job, which
-- builds the same JSON as emit by concatenation: encoding a table costs several times more.
-- `tail` is a JSON fragment of extra members, starting with a comma (or '').
local J = cjson.encode
local function emit_job(id, tid, from, to, tail)
  local rest = '"type":"job","job":' .. J(id) .. ',"task":' .. J(tid) .. ',"from":"' .. from ..
    '","to":"' .. to .. '"' .. tail .. ',"ts":' .. NOW_TEXT .. '}'
  local sid = redis.call('XADD', P .. 'events', 'MAXLEN', '~', EV_MAXLEN, '*', 'e', '{' .. rest)
  redis.call('RPUSH', P .. 'job:' .. id .. ':log', '{"id":"' .. sid .. '",' .. rest)
  return sid
end

-- `,"worker":…,"host":…,"pid":…,"client":…` for emit_job, built once per worker and call.
local worker_tails = {}
local function worker_tail(wid)
  local t = worker_tails[wid]
  if t == nil then
    local w = worker_info(wid)
    t = ',"worker":' .. J(wid)
    if w then
      if w.host then t = t .. ',"host":' .. J(w.host) end
      if w.pid then t = t .. ',"pid":' .. string.format('%d', w.pid) end
      if w.client then t = t .. ',"client":' .. J(w.client) end
    end
    worker_tails[wid] = t
  end
  return t
end

local woken = {}
local function wake(agent)
  if not woken[agent] then
    redis.call('ZADD', P .. 'wake:' .. agent, 0, '1')
    woken[agent] = true
  end
end

-- Sorted-set writes gathered in a script's main loop and sent at the end as one variadic call
-- per (command, key): a batch of N jobs costs a few calls instead of N. Only for keys that no
-- other write in the same script touches in between.
local zq, zq_index = {}, { ZADD = {}, ZREM = {} }
local function zlater(cmd, key, a, b)
  local e = zq_index[cmd][key]
  if not e then
    e = { cmd, key, {}, 0 }
    zq_index[cmd][key] = e
    zq[#zq + 1] = e
  end
  local args, n = e[3], e[4] + 1
  args[n] = a
  if b ~= nil then n = n + 1; args[n] = b end
  e[4] = n
end
local function zflush()
  for _, e in ipairs(zq) do
    local args = e[3]
    for i = 1, #args, 4000 do redis.call(e[1], e[2], unpack(args, i, math.min(i + 3999, #args))) end
  end
  zq, zq_index = {}, { ZADD = {}, ZREM = {} }
end

-- Derive a task's status from its counters; write and announce it when it changes.
local function refresh_task(tid)
  local tk = tkey(tid)
  local t = redis.call('HMGET', tk, 'status', 'total', 'succeeded', 'dead', 'cancelled',
    'discarded', 'started', 'user_cancelled')
  if not t[1] then return end
  -- counters that never moved are absent (HINCRBY creates them)
  local total, s, d = tonumber(t[2]), tonumber(t[3]) or 0, tonumber(t[4]) or 0
  local c, x = tonumber(t[5]) or 0, tonumber(t[6]) or 0
  local status
  if s + d + c >= total then
    if s >= total then status = 'succeeded'
    elseif t[8] == '1' then status = 'cancelled'
    elseif d > 0 or x > 0 then status = 'failed'
    else status = 'cancelled' end
  elseif t[7] == '1' then status = 'running'
  else status = 'queued' end
  local terminal = status == 'succeeded' or status == 'failed' or status == 'cancelled'
  if terminal and d == 0 then
    redis.call('ZADD', P .. 'finished', 'NX', NOW, tid) -- retention clock starts
  elseif not terminal or d > 0 then
    redis.call('ZREM', P .. 'finished', tid) -- dead letters are kept until handled
  end
  if status ~= t[1] then
    redis.call('HSET', tk, 'status', status, 'finished', terminal and NOW or '')
    emit({ type = 'task', task = tid, from = t[1], to = status,
      data = { total = total, succeeded = s, dead = d, cancelled = c } })
  end
end

-- Move a job from wherever it is into a terminal place (zset `place`) with a reason.
local PLACE_OF = { blocked = 'blocked', delayed = 'delayed', active = 'leases' }
local function leave_place(id, state, agent)
  if state == 'waiting' then redis.call('ZREM', P .. 'q:' .. agent, id)
  elseif PLACE_OF[state] then redis.call('ZREM', P .. PLACE_OF[state], id) end
end

-- Cancel every blocked job downstream of `cause` (its dependency was dead-lettered or cancelled).
local function cascade_cancel(cause, tid, why)
  local queue = cjson.decode(redis.call('HGET', jkey(cause), 'dependents') or '[]')
  local n = 0
  local i = 1
  while i <= #queue do
    local d = queue[i]
    i = i + 1
    local f = redis.call('HMGET', jkey(d), 'state', 'dependents')
    if f[1] == 'blocked' then
      redis.call('ZREM', P .. 'blocked', d)
      redis.call('ZADD', P .. 'cancelled', NOW, d)
      redis.call('HSET', jkey(d), 'state', 'cancelled', 'cause', cause, 'finished', NOW,
        'reason', why)
      emit({ type = 'job', job = d, task = tid, from = 'blocked', to = 'cancelled', reason = why })
      n = n + 1
      for _, dd in ipairs(cjson.decode(f[2] or '[]')) do queue[#queue + 1] = dd end
    end
  end
  if n > 0 then redis.call('HINCRBY', tkey(tid), 'cancelled', n) end
  return n
end

-- Dead-letter an active (or any pending) job; cancels what depended on it.
local function to_dead(id, from, tid, agent, reason, worker)
  leave_place(id, from, agent)
  redis.call('ZADD', P .. 'dead', NOW, id)
  redis.call('HSET', jkey(id), 'state', 'dead', 'reason', reason, 'finished', NOW)
  redis.call('HDEL', jkey(id), 'token', 'deadline', 'due')
  emit({ type = 'job', job = id, task = tid, from = from, to = 'dead', reason = reason, worker = worker })
  redis.call('HINCRBY', tkey(tid), 'dead', 1)
  redis.call('HINCRBY', P .. 'stats', 'dead', 1)
  cascade_cancel(id, tid, 'dependency ' .. id .. ' was dead-lettered')
end

-- Put a job into its agent's priority queue at its original position. When the queue key holds
-- a foreign type, the job is quarantined with that reason instead (kept, never lost).
local function to_waiting(id, from, reason, extra)
  local f = redis.call('HMGET', jkey(id), 'agent', 'score', 'task')
  if not f[1] or not f[2] then
    emit({ type = 'anomaly', job = id, from = from, to = from,
      reason = 'no job record for ' .. id .. ' in ' .. from .. '; dropped from there' })
    return
  end
  local qtype = type_of(P .. 'q:' .. f[1])
  if qtype ~= 'none' and qtype ~= 'zset' then
    redis.call('ZADD', P .. 'quarantine', NOW, id)
    local why = 'queue key ' .. P .. 'q:' .. f[1] .. ' holds a ' .. qtype ..
      ', not a zset (another application using the same key name?)'
    redis.call('HSET', jkey(id), 'state', 'quarantined', 'reason', why, 'finished', NOW)
    redis.call('HDEL', jkey(id), 'token', 'deadline', 'due')
    emit({ type = 'job', job = id, task = f[3], from = from, to = 'quarantined', reason = why })
    if f[3] and f[3] ~= '' then
      redis.call('HINCRBY', tkey(f[3]), 'dead', 1)
      cascade_cancel(id, f[3], 'dependency ' .. id .. ' was quarantined')
      refresh_task(f[3])
    end
    return
  end
  redis.call('ZADD', P .. 'q:' .. f[1], f[2], id)
  redis.call('HSET', jkey(id), 'state', 'waiting')
  redis.call('HDEL', jkey(id), 'token', 'deadline', 'due')
  wake(f[1])
  local ev = { type = 'job', job = id, task = f[3], from = from, to = 'waiting', reason = reason }
  if extra then for k, v in pairs(extra) do ev[k] = v end end
  emit(ev)
end

-- ---------------------------------------------------------------------------------------------
