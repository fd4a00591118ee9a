--[[ _lib.lua: shared prelude. hiveq/queue/assemble.py sends each script with the top-level
statements of this file that it uses (directly or through each other) and every statement that
defines nothing (the key checks): Lua runs them all on every call, so unused helpers would cost
Redis CPU. Sending the whole file works too.

Conventions for every script:
  ARGV[1]  namespace prefix, e.g. "hiveq:{app:env}:"  (all keys share its hash tag)
  ARGV[2]  events stream MAXLEN (approximate cap; with an archive attached the client sends a
           cap no stream reaches, and the archiver trims what it has archived: trim_events.lua)
  ARGV[3…] the script's own arguments, listed in its header.
Return codes (hiveq/contract/errors.py Code): 0 OK, 1 NOT_FOUND, 2 STALE_TOKEN, 3 WRONG_STATE,
4 DUPLICATE, 5 NAMESPACE_MISMATCH, 6 PROTOCOL_MISMATCH.

Fixed keys (the suffixes of hiveq/queue/keys.py FIXED_KEY_TYPES: meta, seq, agents, jobs,
blocked, delayed, leases, suspended, succeeded, dead, cancelled, quarantine, vanished, tasks,
finished, events, workers, stats, agent_modules, watch, foreign, clock, archiver, limits, schedules): every one a script can write or read is in
its KEYS, in the order of its header's KEYS list. assemble.py reads that list and puts it, with
each key's Redis type from hiveq/queue/keys.py, in front of this prelude as DECLARED. The
prelude below checks, once per call and before the script writes anything, that KEYS[i] is the
i-th declared key and that it holds its type or does not exist; otherwise the call fails with
"WRONGTYPE hiveq key <key> holds a <found>, expected a <type>". Scripts use them as K.<name>.
A key that only some calls write (`*` after its name in the header) is checked by those calls
only, with check_later(name), as soon as the script knows it will write it and still before its
first write: an idle maintenance call or a job without dependents then pays no TYPE for it.

Derived keys (per-record: job:<id>, job:<id>:log, job:<id>:tracebacks, job:<id>:steps,
job:<id>:signals, job:<id>:output, task:<id>, q:<agent>, wake:<agent>, worker:<id>,
inbox:<id>, idem:<key>, lim:c|h|s|w:<limit key>, lim:k:<pattern>, sched:<name>; and, for set_aside only,
<suffix> and aside:<suffix>:<ms>) are built from the prefix by the helpers jkey … skey below, never
elsewhere. They carry the prefix's {app:env} hash tag, so they are in the same cluster slot as
KEYS. They are not in KEYS (their names are known only from the records), so each script's
header names the ones it touches and how a foreign Redis type there is kept from stopping it
half-way: either the script reads the key with a plain command before its first write (a
foreign type fails the call cleanly, nothing written), or every command on it that can run
after a write goes through try(), which changes nothing on a foreign type and lets the script
carry on as its header says (usually: the record is treated as missing and an anomaly event
names the key). A key's type cannot change during a script, so after one successful command
on a key, the later ones on it cannot fail on its type.
]]
local P = ARGV[1]
local EV_MAXLEN = tonumber(ARGV[2])
local OK, NOT_FOUND, STALE, WRONG_STATE, DUPLICATE = 0, 1, 2, 3, 4
local PRIO_SHIFT = 4398046511104 -- 2^42: score = priority * 2^42 + enqueue sequence
local TERMINAL = { succeeded = true, dead = true, cancelled = true, quarantined = true }
local TASK_TERMINAL = { succeeded = true, failed = true, cancelled = true }

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local NOW = now_ms()
local NOW_TEXT = string.format('%d', NOW)

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

-- The fixed keys, checked before anything is written (see the header). DECLARED holds, per
-- KEYS entry: its name, its type, and whether the script checks it later (`*` in its header).
local K = setmetatable({}, { __index = function(_, name)
  error({ err = 'hiveq script ' .. SCRIPT .. ' uses fixed key ' .. name .. ', which is not in its KEYS' })
end })
local LATER = {}
for i = 1, #DECLARED, 3 do
  local n = (i + 2) / 3
  local name, key = DECLARED[i], KEYS[n]
  if key ~= P .. name then
    error({ err = 'hiveq script ' .. SCRIPT .. ': KEYS[' .. n .. '] must be ' .. P .. name .. ', not ' ..
      tostring(key) })
  end
  if DECLARED[i + 2] then LATER[name] = DECLARED[i + 1] else check_type(key, DECLARED[i + 1]) end
  rawset(K, name, key)
end

-- Check a key marked `*` in the header (only some calls write it): a script calls this for each
-- such key as soon as it knows it will write it, before its first write.
local function check_later(name)
  local expected = LATER[name]
  if expected then
    check_type(K[name], expected)
    LATER[name] = nil
  end
end
-- Check every key marked `*` at once (a call that may write any of them).
local function check_later_all()
  for name, expected in pairs(LATER) do check_type(K[name], expected) end
  LATER = {}
end

-- Derived keys: the only places they are built.
local function jkey(id) return P .. 'job:' .. id end
local function lkey(id) return P .. 'job:' .. id .. ':log' end
local function tbkey(id) return P .. 'job:' .. id .. ':tracebacks' end
local function stkey(id) return P .. 'job:' .. id .. ':steps' end -- a durable agent's steps
local function sigkey(id) return P .. 'job:' .. id .. ':signals' end -- signals kept for it
local function outkey(id) return P .. 'job:' .. id .. ':output' end -- its streamed output
local function tkey(id) return P .. 'task:' .. id end
local function qkey(agent) return P .. 'q:' .. agent end
local function wakekey(agent) return P .. 'wake:' .. agent end
local function wkey(wid) return P .. 'worker:' .. wid end
local function inboxkey(wid) return P .. 'inbox:' .. wid end -- marked when a lease of it is revoked
local function ikey(idem) return P .. 'idem:' .. idem end
-- Any key of the namespace by its suffix, and where `hiveq repair` sets a foreign value aside.
local function anykey(suffix) return P .. suffix end
local function asidekey(suffix, ms) return P .. 'aside:' .. suffix .. ':' .. ms end
-- Limit keys (docs/limits.md), per concrete limit key: counters (hash), the jobs holding a slot
-- (zset, score = claim ms), agents waiting for a slot (set); a rate's last starts are a ring in the counters.
local function limkey(k) return P .. 'lim:c:' .. k end
local function lholdkey(k) return P .. 'lim:h:' .. k end
local function lwaitkey(k) return P .. 'lim:w:' .. k end
local function lpatkey(rule) return P .. 'lim:k:' .. rule end -- the keys seen under a pattern rule (set)
local function skey(name) return P .. 'sched:' .. name end -- a recurring schedule (docs/schedules.md)

-- One command on a derived key that may hold a foreign type: its reply, or FOREIGN (then Redis
-- changed nothing). Any other error still stops the script.
local FOREIGN = {}
local function try(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then
    if string.sub(r.err, 1, 9) ~= 'WRONGTYPE' then error(r) end
    return FOREIGN
  end
  return r
end

-- Decode a JSON list of job ids; most jobs have none, so skip the decoder for "[]".
local function id_list(text)
  if not text or text == '[]' or text == '' then return {} end
  return cjson.decode(text)
end

local worker_cache = {}
-- host/pid/client of a registered worker, for custody events; nil when unknown (no record, or
-- its key holds a foreign type: custody then names the worker id only).
local function worker_info(wid)
  if wid == nil or wid == '' then return nil end
  local w = worker_cache[wid]
  if w == nil then
    local f = try('HMGET', wkey(wid), 'host', 'pid', 'client')
    if f == FOREIGN then f = {} end
    w = { host = f[1] or nil, pid = tonumber(f[2]), client = f[3] or nil }
    worker_cache[wid] = w
  end
  return w
end

-- Append one event to the capped stream (not to any job's custody log).
local function emit(ev)
  ev.ts = NOW
  return redis.call('XADD', K.events, 'MAXLEN', '~', EV_MAXLEN, '*', 'e', cjson.encode(ev))
end

local reported = {}
-- Announce, once per key and call, that a derived key holds a foreign type and what was done.
local function report_foreign(key, expected, done, job, tid)
  if reported[key] then return end
  reported[key] = true
  emit({ type = 'anomaly', job = job, task = tid, reason = key .. ' holds a ' .. type_of(key) ..
    ', not a ' .. expected .. ' (another application using the same key name?); ' .. done })
end

-- Append a job's custody-log row; a foreign log key loses the row (the stream keeps the event).
local function log_row(id, row)
  if try('RPUSH', lkey(id), row) == FOREIGN then
    report_foreign(lkey(id), 'list', 'its events are in the stream only', id)
  end
end

-- Append one event about a job to the stream and to the job's custody log (unless `nolog`).
local function emit_custody(ev, nolog)
  ev.ts = NOW
  local body = cjson.encode(ev)
  local id = redis.call('XADD', K.events, 'MAXLEN', '~', EV_MAXLEN, '*', 'e', body)
  if not nolog then log_row(ev.job, '{"id":"' .. id .. '",' .. string.sub(body, 2)) end
  return id
end

-- Name the worker in an event: its id, and host/pid/client when its record says.
local function by_worker(ev, wid)
  ev.worker = wid
  local w = worker_info(wid)
  if w then ev.host = w.host; ev.pid = w.pid; ev.client = w.client end
  return ev
end

-- The hot transitions (enqueue, claim, complete) write their job events through emit_job, which
-- builds the same JSON as emit by concatenation: encoding a table costs several times more.
-- `tail` is a JSON fragment of extra members, starting with a comma (or '').
local J = cjson.encode
local function emit_job(id, tid, from, to, tail)
  local rest = '"type":"job","job":' .. J(id) .. ',"task":' .. J(tid) .. ',"from":"' .. from ..
    '","to":"' .. to .. '"' .. tail .. ',"ts":' .. NOW_TEXT .. '}'
  local sid = redis.call('XADD', K.events, 'MAXLEN', '~', EV_MAXLEN, '*', 'e', '{' .. rest)
  log_row(id, '{"id":"' .. sid .. '",' .. rest)
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

-- Wake blocked fetchers of `agent` (a hint: a foreign wake key only costs them the wake-up).
local woken = {}
local function wake(agent)
  if not woken[agent] then
    woken[agent] = true
    if try('ZADD', wakekey(agent), 0, '1') == FOREIGN then
      report_foreign(wakekey(agent), 'zset', 'workers blocked on it are not woken; the job is in its queue')
    end
  end
end

-- Sorted-set writes gathered in a script's main loop and sent at the end as one variadic call
-- per (command, key): a batch of N jobs costs a few calls instead of N. Only for keys that no
-- other write in the same script touches in between, and whose type is already known.
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

-- Parents to look at once this call's jobs have moved (resume_parents, below): a job a durable
-- agent spawned (`parent` in its record) that finishes may be the last child its parent waits for.
local parents_to_check = {}
local function child_finished(parent)
  if parent and parent ~= '' then parents_to_check[parent] = true end
end

-- Add `n` to a task counter; false (and an anomaly) when the task key holds a foreign type.
local function task_add(tid, field, n)
  if try('HINCRBY', tkey(tid), field, n) == FOREIGN then
    report_foreign(tkey(tid), 'hash', 'its counters and status were not updated', nil, tid)
    return false
  end
  return true
end

-- The task fields refresh_task derives the status from, in this order.
local TASK_FIELDS = { 'status', 'total', 'succeeded', 'dead', 'cancelled', 'discarded', 'started',
  'user_cancelled' }

-- Derive a task's status from its counters; write and announce it when it changes. `known`: the
-- TASK_FIELDS the caller read in this call, when nothing but `started` changed since (it saves a
-- read). `finished` holds exactly the terminal tasks without an unhandled dead letter: a task that
-- was not terminal before is not in it, so it is only touched when the task is or was terminal.
local function refresh_task(tid, known)
  local tk = tkey(tid)
  local t = known or try('HMGET', tk, unpack(TASK_FIELDS))
  if t == FOREIGN then
    report_foreign(tk, 'hash', 'its counters and status were not updated', nil, tid)
    return
  end
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
  local terminal = TASK_TERMINAL[status]
  if terminal and d == 0 then
    redis.call('ZADD', K.finished, 'NX', NOW, tid) -- retention clock starts
  elseif TASK_TERMINAL[t[1]] then
    redis.call('ZREM', K.finished, tid) -- revived, or dead letters to handle first
  end
  if status ~= t[1] then
    redis.call('HSET', tk, 'status', status, 'finished', terminal and NOW or '')
    -- the task event, built by concatenation like emit_job's
    redis.call('XADD', K.events, 'MAXLEN', '~', EV_MAXLEN, '*', 'e', '{"type":"task","task":' ..
      J(tid) .. ',"from":' .. J(t[1]) .. ',"to":"' .. status .. '","data":{"total":' .. total ..
      ',"succeeded":' .. s .. ',"dead":' .. d .. ',"cancelled":' .. c .. '},"ts":' .. NOW_TEXT .. '}')
  end
end

-- Cancel every blocked job downstream of `cause` (its dependency was dead-lettered, quarantined
-- or cancelled). `cause`'s record is a hash (the caller read it); a dependent whose record key
-- holds a foreign type is skipped.
local function cascade_cancel(cause, tid, why)
  local queue = id_list(redis.call('HGET', jkey(cause), 'dependents'))
  local n = 0
  local i = 1
  while i <= #queue do
    local d = queue[i]
    i = i + 1
    local f = try('HMGET', jkey(d), 'state', 'dependents', 'parent')
    if f ~= FOREIGN and f[1] == 'blocked' then
      child_finished(f[3])
      redis.call('ZREM', K.blocked, d)
      redis.call('ZADD', K.cancelled, NOW, d)
      redis.call('HSET', jkey(d), 'state', 'cancelled', 'cause', cause, 'finished', NOW,
        'reason', why)
      emit_custody({ type = 'job', job = d, task = tid, from = 'blocked', to = 'cancelled', reason = why })
      n = n + 1
      for _, dd in ipairs(id_list(f[2])) do queue[#queue + 1] = dd end
    end
  end
  if n > 0 then task_add(tid, 'cancelled', n) end
  return n
end

-- Dead-letter a job its caller already took out of its place; cancels what depended on it.
local function to_dead(id, from, tid, reason, worker)
  redis.call('ZADD', K.dead, NOW, id)
  redis.call('HSET', jkey(id), 'state', 'dead', 'reason', reason, 'finished', NOW)
  redis.call('HDEL', jkey(id), 'token', 'deadline', 'due')
  emit_custody(by_worker({ type = 'job', job = id, task = tid, from = from, to = 'dead', reason = reason },
    worker))
  task_add(tid, 'dead', 1)
  redis.call('HINCRBY', K.stats, 'dead', 1)
  child_finished(redis.call('HGET', jkey(id), 'parent'))
  cascade_cancel(id, tid, 'dependency ' .. id .. ' was dead-lettered')
end

-- Put a job its caller already took out of its place into its agent's priority queue at its
-- original position. When the queue key holds a foreign type, the job is quarantined with that
-- reason instead (kept, never lost); when its own record is missing or foreign, it is dropped
-- with an anomaly event (audit then reports it vanished).
local function to_waiting(id, from, reason, extra)
  local f = try('HMGET', jkey(id), 'agent', 'score', 'task', 'parent')
  if f == FOREIGN or not f[1] or not f[2] then
    local what = (f == FOREIGN) and ('record key ' .. jkey(id) .. ' holds a ' .. type_of(jkey(id)))
      or ('no job record for ' .. id)
    emit_custody({ type = 'anomaly', job = id, from = from, to = from,
      reason = what .. ' in ' .. from .. '; dropped from there' })
    return
  end
  local q = qkey(f[1])
  local qtype = type_of(q)
  if qtype ~= 'none' and qtype ~= 'zset' then
    redis.call('ZADD', K.quarantine, NOW, id)
    local why = 'queue key ' .. q .. ' holds a ' .. qtype ..
      ', not a zset (another application using the same key name?)'
    redis.call('HSET', jkey(id), 'state', 'quarantined', 'reason', why, 'finished', NOW)
    redis.call('HDEL', jkey(id), 'token', 'deadline', 'due')
    emit_custody({ type = 'job', job = id, task = f[3], from = from, to = 'quarantined', reason = why })
    child_finished(f[4])
    if f[3] and f[3] ~= '' then
      task_add(f[3], 'dead', 1)
      cascade_cancel(id, f[3], 'dependency ' .. id .. ' was quarantined')
      refresh_task(f[3])
    end
    return
  end
  redis.call('ZADD', q, f[2], id)
  redis.call('HSET', jkey(id), 'state', 'waiting')
  redis.call('HDEL', jkey(id), 'token', 'deadline', 'due')
  wake(f[1])
  local ev = { type = 'job', job = id, task = f[3], from = from, to = 'waiting', reason = reason }
  if extra then for k, v in pairs(extra) do ev[k] = v end end
  emit_custody(ev)
end

-- Outages and freezes -------------------------------------------------------------------------
-- Liveness is judged on Redis time, and Redis time runs on while Redis is away (a restart, a
-- SIGSTOP): a lease must not expire because Redis could not hear its worker. Every heartbeat and
-- reap call ticks K.clock: `seen` = this call's time; `up_since` = the start of the current stretch
-- in which workers reached Redis with no gap longer than `gap_ms`. Returns `up_since`.
local function tick_clock(gap_ms)
  local c = redis.call('HMGET', K.clock, 'seen', 'up_since')
  local seen, up = tonumber(c[1]), tonumber(c[2])
  if seen == nil then up = up or 0 -- first use, or Redis came back empty: no lease to protect
  elseif NOW - seen > gap_ms or NOW < seen or up == nil then up = NOW end
  redis.call('HSET', K.clock, 'seen', NOW, 'up_since', up)
  return up
end

-- A result or failure refused for a stale token is history: the late worker ran the job too.
-- Appends "late result refused from worker W, attempt N" to the job's custody (N: the delivery
-- the late worker's claim was, as it says; '?' when it does not).
local function late_result(id, tid, wid, what, state, holder, attempt)
  local n = tonumber(attempt)
  if n == 0 then n = nil end
  emit_custody(by_worker({ type = 'late', job = id, task = tid, attempt = n,
    data = { state = state, holder = holder or nil }, reason = 'late ' .. what .. ' refused from worker ' .. wid .. ', attempt ' ..
    tostring(n or '?') .. ': its lease had expired (the job was ' .. tostring(state) ..
    (holder and holder ~= '' and (' with worker ' .. holder) or '') .. ')' }, wid))
end

-- Limits (docs/limits.md) --------------------------------------------------------------------
-- A job leaving `active` (complete, fail, release, reap, cancel, suspend) gives back what its
-- claim took under its limit keys (`lkeys` in its record): its slot, the unused part of its token
-- reservation (`lres`: in the minute window `ltw` it was made in, and in the budget), and wakes
-- the agents whose jobs wait for a slot of those keys. A job without limits pays one HMGET.
local function release_limits(id)
  local f = try('HMGET', jkey(id), 'lkeys', 'lres', 'ltw')
  if f == FOREIGN or not f[1] or f[1] == '' then return end
  local res = tonumber(f[2]) or 0
  for k in string.gmatch(f[1], '%S+') do
    if try('ZREM', lholdkey(k), id) == FOREIGN then
      report_foreign(lholdkey(k), 'zset', 'its holders are not counted', id)
    end
    if res > 0 then
      local c = try('HMGET', limkey(k), 'tw')
      if c ~= FOREIGN then
        if c[1] == f[3] then redis.call('HINCRBY', limkey(k), 'tu', -res) end
        redis.call('HINCRBY', limkey(k), 'bt', -res)
      end
    end
    local w = try('SMEMBERS', lwaitkey(k))
    if w ~= FOREIGN and #w > 0 then
      for _, agent in ipairs(w) do wake(agent) end
      redis.call('DEL', lwaitkey(k))
    end
  end
  redis.call('HDEL', jkey(id), 'lkeys', 'lres', 'ltw')
end

-- Durable agents (docs/durable.md) ------------------------------------------------------------
-- A job's stored steps: job:<id>:steps, step key -> JSON text; `steps_bytes` in its record counts
-- their size (step_done.lua bounds it). With try: a foreign steps key loses the step (anomaly),
-- never stops a script half-way. The job's record is a hash (the caller read it).
local function save_step(id, key, text)
  if try('HSET', stkey(id), key, text) == FOREIGN then
    report_foreign(stkey(id), 'hash', 'step ' .. key .. ' was not stored; the job runs it again', id)
    return false
  end
  redis.call('HINCRBY', jkey(id), 'steps_bytes', #text)
  return true
end

-- A suspended job's wait ends: what it receives (`outcome`, JSON text) is stored as the wait's
-- step and the job goes back to its queue at its first position; any worker runs it again.
local function resume(id, wait, outcome, reason)
  save_step(id, wait.step, outcome)
  redis.call('ZREM', K.suspended, id)
  redis.call('HDEL', jkey(id), 'wait')
  to_waiting(id, 'suspended', reason)
end

-- {"children": {job id: state}} when every child of a children wait has finished, else nil
-- (a child whose record key holds a foreign type counts as not finished).
local function children_done(wait)
  local states = {}
  for _, c in ipairs(wait.ids) do
    local s = try('HGET', jkey(c), 'state')
    if s == FOREIGN or not TERMINAL[s] then return nil end
    states[c] = s
  end
  return cjson.encode({ children = states })
end

-- Resume every suspended parent (collected by child_finished) whose children have all finished.
-- A script that can finish a job calls this last. A resume can quarantine the parent (a foreign
-- queue key), which may finish more jobs, so it runs until nothing is left to look at.
local function resume_parents()
  while next(parents_to_check) do
    local batch = parents_to_check
    parents_to_check = {}
    for p, _ in pairs(batch) do
      local f = try('HMGET', jkey(p), 'state', 'wait')
      if f ~= FOREIGN and f[1] == 'suspended' and f[2] then
        local wait = cjson.decode(f[2])
        if wait.kind == 'children' then
          local outcome = children_done(wait)
          if outcome then resume(p, wait, outcome, 'its children finished') end
        end
      end
    end
  end
end

-- ---------------------------------------------------------------------------------------------
