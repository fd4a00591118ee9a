--[[ mark_vanished: jobs that left hiveq's places without a hiveq script (a foreign pop or ZREM,
a DEL, an eviction) move to the `vanished` place. The only way into that state. Each gets a
custody event with what the watch saw: the key it left, when, its last custody event before,
and the suspects (non-hiveq clients on the server at that moment; what a MONITOR sample saw).

A job whose record is gone gets one rebuilt from what survives, so it can still be shown and
recovered: its id, task and subtask (from the id and the task hash), created (the `jobs` index),
priority (the task), its queue position and agent (the queue it sits in), else its agent and
attempts from its custody log (claims name the agent), its dependencies and dependents (its
siblings' `dependents` and `deps`), the job that spawned it (a sibling whose `children` name it),
and defaults for its limits; `rebuilt` = 1. Its input is lost
(JSON null: a recovered job's agent gets None).

KEYS  1 vanished    the jobs enter it
      2 jobs        only indexed jobs are hiveq's (ZSCORE; the score is a rebuilt job's created)
      3 stats       counter `vanished`
      4 foreign     prime suspects' addresses (ZADD), entries over an hour old dropped
      5 blocked     a place a job may still be in (ZSCORE), or a recordless job sits in (ZREM)
      6 delayed     ditto
      7 leases      ditto
      8 suspended   ditto
      9 succeeded   a place it may be in after all (ZSCORE)
      10 dead       ditto
      11 cancelled  ditto
      12 quarantine ditto
      13 agents     the queues where a recordless job may sit (SMEMBERS)
      14 events     the events below
ARGV  3 what was seen, JSON: {cause: '' | 'evicted', evicted: text, suspect: one line,
        suspects: [...], sample: {...} | null, prime: [addresses], recover: 'auto' | 'manual'}
      4 a rebuilt record's max attempts  5 its max deliveries  6 its timeout (s)
      7… pairs: job id, the key it was seen in without its record ('' when not known: a
        job whose record is gone is then looked for in every place, each agent's queue too)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua), each first read
with try, so a foreign type on one never stops the script half-way:
  job:<id>       the job's record (foreign: the job is left alone, WRONG_STATE), then written;
                 its task's other jobs' records, read to rebuild a record (foreign: skipped)
  job:<id>:log   read for the last custody event and a rebuilt job's agent (foreign: read as
                 empty); its row appended by emit_custody (try: a foreign log keeps the event in
                 the stream only)
  task:<id>      read for the enqueue event and to rebuild a record (foreign: read as missing)
  q:<agent>      ZSCORE (foreign: holds nothing), and ZREM of a rebuilt job's leftover member
  worker:<id>    an active job's worker's host/pid/client, read with try (foreign: id only)
Returns one code per job: OK; NOT_FOUND (not in the jobs index: not one of hiveq's jobs);
WRONG_STATE (it is in a place after all, or its record says it is not pending: nothing to do).
Events: job blocked | waiting | delayed | active | suspended -> vanished, data: {key, seen_ms, last_event,
record: kept | rebuilt, suspects, sample, evicted, recover}. stats: vanished. anomaly (a
foreign log key).
]]
local seen = cjson.decode(ARGV[3])
local dflt_attempts, dflt_deliveries, dflt_timeout = ARGV[4], ARGV[5], ARGV[6]
local PENDING_KEY = { blocked = K.blocked, delayed = K.delayed, active = K.leases, suspended = K.suspended }
local STATE_OF_KEY = { [K.blocked] = 'blocked', [K.delayed] = 'delayed', [K.leases] = 'active',
  [K.suspended] = 'suspended' }
local PENDING = { blocked = true, waiting = true, delayed = true, active = true, suspended = true }
local QPREFIX = qkey('')

local function member(key, id)
  local r = try('ZSCORE', key, id)
  return r ~= FOREIGN and r ~= false
end

local function decoded(text)
  if not text then return nil end
  local ok, v = pcall(cjson.decode, text)
  if ok and type(v) == 'table' then return v end
  return nil
end

-- The job's custody log, newest last (decoded rows); empty when its key holds a foreign type.
local function log_of(id)
  local rows = try('LRANGE', lkey(id), 0, -1)
  local out = {}
  if rows == FOREIGN then return out end
  for _, row in ipairs(rows) do
    local ev = decoded(row)
    if ev then out[#out + 1] = ev end
  end
  return out
end

-- A task hash's fields, or {} when it holds a foreign type.
local function task_fields(tid, ...)
  local t = try('HMGET', tkey(tid), ...)
  return t == FOREIGN and {} or t
end

-- Its enqueue event, rebuilt from the task hash as readers do (hiveq.queue.events).
local function enqueue_event(id, tid, deps)
  local t = task_fields(tid, 'eid', 'by', 'created')
  if not t[1] then return nil end
  return { id = t[1], type = 'job', job = id, task = tid, from = '',
    to = (deps and deps ~= '[]') and 'blocked' or 'waiting', reason = 'enqueued by ' .. (t[2] or '?'),
    ts = tonumber(t[3]) }
end

-- What survives of a job whose hash is gone (read only): the state it was last in (nil when
-- that was a finished one: nothing to mark), its agent, queue score and attempts.
local function survivors(id, where, log)
  local r = { prev = STATE_OF_KEY[where] or '', attempts = 0 }
  if string.sub(where, 1, #QPREFIX) == QPREFIX then
    r.agent, r.prev = string.sub(where, #QPREFIX + 1), 'waiting'
    local score = try('ZSCORE', where, id)
    if score ~= FOREIGN and score then r.score = score end
  end
  for i = #log, 1, -1 do
    local ev = log[i]
    if r.agent == nil and ev.agent then r.agent = ev.agent end
    if r.attempts == 0 and ev.attempt then r.attempts = tonumber(ev.attempt) or 0 end
    if r.prev == '' and ev.type == 'job' and ev.to then
      if not PENDING[ev.to] then return nil end -- it had finished
      r.prev = ev.to
    end
  end
  return r
end

-- Write a record for a job whose hash is gone; returns its previous state and the key it left.
local function rebuild(id, tid, sub, where, created, r)
  local t = task_fields(tid, 'jobs', 'priority')
  local prio = tonumber(t[2]) or 5
  local deps, dependents, pending, parent = {}, {}, 0, nil
  local quoted = '"' .. id .. '"'
  for _, sib in ipairs(decoded(t[1]) or {}) do
    if sib ~= id then
      local g = try('HMGET', jkey(sib), 'deps', 'dependents', 'state', 'children')
      if g ~= FOREIGN then
        if g[4] and string.find(g[4], quoted, 1, true) then parent = sib end
        if g[1] and string.find(g[1], quoted, 1, true) then dependents[#dependents + 1] = sib end
        if g[2] and string.find(g[2], quoted, 1, true) then
          deps[#deps + 1] = sib
          if g[3] ~= 'succeeded' then pending = pending + 1 end
        end
      end
    end
  end
  local prev = r.prev ~= '' and r.prev or ((#deps > 0) and 'blocked' or 'waiting')
  local fields = { 'id', id, 'task', tid, 'sub', sub, 'prio', prio,
    'score', r.score or string.format('%d', prio * PRIO_SHIFT), 'max_attempts', dflt_attempts,
    'max_deliveries', dflt_deliveries, 'timeout', dflt_timeout, 'created', created,
    'attempts', r.attempts, 'pending', pending, 'rebuilt', 1, 'input', 'null' }
  if r.agent then fields[#fields + 1] = 'agent'; fields[#fields + 1] = r.agent end
  if parent then fields[#fields + 1] = 'parent'; fields[#fields + 1] = parent end
  if #deps > 0 then fields[#fields + 1] = 'deps'; fields[#fields + 1] = cjson.encode(deps) end
  if #dependents > 0 then
    fields[#fields + 1] = 'dependents'; fields[#fields + 1] = cjson.encode(dependents)
  end
  redis.call('HSET', jkey(id), unpack(fields))
  if where ~= '' and member(where, id) then redis.call('ZREM', where, id) end
  local key = where
  if key == '' then key = PENDING_KEY[prev] or (r.agent and prev == 'waiting' and qkey(r.agent)) or '' end
  return prev, key
end

local function cause_of(rebuilt)
  if seen.cause == 'evicted' then return 'evicted by Redis: ' .. seen.evicted end
  if rebuilt then return 'its record was deleted outside hiveq (DEL or UNLINK)' end
  return 'taken outside hiveq (a foreign pop or ZREM)'
end

-- The place (key) that holds `id` now, if any: the fixed places and the queue of `agent`
-- (of every agent when `agent` is true).
local ALL_PLACES = { K.blocked, K.delayed, K.leases, K.suspended, K.succeeded, K.dead, K.cancelled,
  K.quarantine }
local function placed_in(id, agent)
  for _, key in ipairs(ALL_PLACES) do
    if member(key, id) then return key end
  end
  local agents = (agent == true) and redis.call('SMEMBERS', K.agents) or { agent }
  for _, a in ipairs(agents) do
    if member(qkey(a), id) then return qkey(a) end
  end
  return nil
end

local out, marked = {}, 0
for i = 7, #ARGV, 2 do
  local id, where = ARGV[i], ARGV[i + 1]
  local created = redis.call('ZSCORE', K.jobs, id)
  local tid, sub = string.match(id, '^([^.]+)%.(.+)$')
  local f = created and tid and try('HMGET', jkey(id), 'state', 'agent', 'worker', 'deps')
  if not created or not tid then
    out[#out + 1] = NOT_FOUND
  elseif f == FOREIGN then -- its record key holds a foreign type: not ours to move
    out[#out + 1] = WRONG_STATE
  else
    local prev, key, rebuilt = f[1], nil, false
    local log = log_of(id)
    local last = log[#log]
    if prev then
      if prev == 'waiting' and f[2] then key = qkey(f[2]) else key = PENDING_KEY[prev] end
      if key and placed_in(id, f[2]) then key = nil end -- in a place after all
      if key and not last then last = enqueue_event(id, tid, f[4]) end
    else
      local at = (where ~= '' and member(where, id)) and where or placed_in(id, true) or ''
      local r = survivors(id, at, log)
      if r and (at == '' or STATE_OF_KEY[at] or string.sub(at, 1, #QPREFIX) == QPREFIX) then
        rebuilt = true -- else it sits in a finished place, or had finished: it is not pending
        prev, key = rebuild(id, tid, sub, at, created, r)
        if not last then last = enqueue_event(id, tid, redis.call('HGET', jkey(id), 'deps')) end
      end
    end
    if not key then
      out[#out + 1] = WRONG_STATE
    else
      local reason = 'vanished from ' .. (key ~= '' and key or 'its place') .. ': ' .. cause_of(rebuilt)
      if rebuilt then reason = reason .. '; record rebuilt from its task and custody log (its input is lost)' end
      if seen.suspect and seen.suspect ~= '' then reason = reason .. '; suspect: ' .. seen.suspect end
      redis.call('ZADD', K.vanished, NOW, id)
      redis.call('HSET', jkey(id), 'state', 'vanished', 'vanished_key', key, 'vanished_at', NOW,
        'suspect', seen.suspect or '', 'reason', reason)
      redis.call('HDEL', jkey(id), 'token', 'deadline')
      local ev = { type = 'job', job = id, task = tid, from = prev, to = 'vanished', reason = reason,
        data = { key = key, seen_ms = NOW, last_event = last or cjson.null,
          record = rebuilt and 'rebuilt' or 'kept', suspects = seen.suspects, sample = seen.sample,
          evicted = seen.evicted, recover = seen.recover } }
      if prev == 'active' and f[3] then by_worker(ev, f[3]) end
      emit_custody(ev)
      marked = marked + 1
      out[#out + 1] = OK
    end
  end
end
if marked > 0 then
  redis.call('HINCRBY', K.stats, 'vanished', marked)
  for _, addr in ipairs(seen.prime or {}) do redis.call('ZADD', K.foreign, NOW, addr) end
  redis.call('ZREMRANGEBYSCORE', K.foreign, '-inf', NOW - 3600000) -- suspects of the last hour
end
return out
