--[[ claim: lease up to N waiting jobs to one worker, strictly by priority across its agents,
FIFO within a priority.

KEYS  1 leases      each leased job, score = lease deadline
      2 stats       counter `claimed`
      3 quarantine* a queue member whose job record is missing or foreign-typed goes here,
                    unless hiveq enqueued it (in `jobs`: its record was deleted or evicted)
      4 jobs*       read (ZSCORE) for a head with no record: an indexed one is left in its queue
                    for the conservation watch (mark_vanished); the others are indexed (NX)
      5 finished*   touched by refresh_task for a task whose record says it is or would be
                    finished (never in a consistent state)
      6 events      the events below
      (*: checked only when the heads read before the first write show the call writes it)
ARGV  3 worker id  4 lease token  5 max jobs  6 lease ms  7… agent names served
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  q:<agent>      read (ZRANGE, one head more than wanted: whether any remain) for every agent
                 before the first write, so a foreign type fails the call cleanly; the later ZREM
                 on the same keys cannot fail
  job:<id>       each head's record, read with try: a foreign type quarantines the member
                 (record left as is); a dependency's `result` (try: foreign -> null, anomaly)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  task:<id>      read with try (foreign: no description/metadata, status not updated, anomaly)
  wake:<agent>   re-armed when jobs remain (try: a foreign one is reported, not woken)
  worker:<id>    the claiming worker's host/pid/client, read with try (foreign: id only)
Returns an array of JSON objects, one per leased job:
  {id, task, sub, agent, input, prio, attempt, max_attempts, timeout, token, deadline,
   description, metadata, deps: {job_id: result_json}, enq}
A queue member with no job record is never handed out or dropped: one hiveq enqueued (in the
`jobs` index) stays where it is for the watch to mark vanished and rebuild; any other is
quarantined with the reason (written by a foreign client).
Events: job waiting -> active (worker, host, pid, client, attempt, agent: so a deleted record's
agent can be rebuilt from its custody log) | waiting -> quarantined;
task queued -> running; anomaly (a member whose record is in another state: removed from the
queue, record left as is; a foreign derived key).
]]
local wid, token = ARGV[3], ARGV[4]
local want, lease_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local deadline = NOW + lease_ms
local heads = {}
local fetched, taken = {}, {} -- per agent: heads read (one more than wanted), heads taken
for i = 7, #ARGV do
  local agent = ARGV[i]
  if fetched[agent] == nil then -- an agent named twice is read once
    local r = redis.call('ZRANGE', qkey(agent), 0, want, 'WITHSCORES')
    fetched[agent] = #r / 2
    for k = 1, #r, 2 do heads[#heads + 1] = { tonumber(r[k + 1]), r[k], agent } end
  end
end
table.sort(heads, function(a, b) return a[1] < b[1] end)
-- Read the heads' records and their tasks before writing anything: they decide which of the
-- keys marked * this call writes, and those are checked first.
local take = math.min(want, #heads)
local recs, tasks, indexed = {}, {}, {}
local NO_TASK = { desc = '', meta = '{}' }
for n = 1, take do
  local f = try('HMGET', jkey(heads[n][2]), 'state', 'task', 'sub', 'input', 'prio', 'attempts',
    'max_attempts', 'timeout', 'deps', 'created')
  recs[n] = f
  if f ~= FOREIGN and not f[1] then
    check_later('jobs')
    indexed[n] = redis.call('ZSCORE', K.jobs, heads[n][2])
  end
  if f == FOREIGN or (not f[1] and not indexed[n]) then
    check_later('quarantine')
    check_later('jobs')
  elseif f[1] == 'waiting' and tasks[f[2]] == nil then
    local tid = f[2]
    local tf = try('HMGET', tkey(tid), 'description', 'metadata', unpack(TASK_FIELDS))
    if tf == FOREIGN then
      tasks[tid] = NO_TASK
    else
      local t = { desc = tf[1] or '', meta = tf[2] or '{}' }
      if tf[9] ~= '1' then -- TASK_FIELDS[7], `started`: the task starts now
        tf[9] = '1'
        t.refresh = { unpack(tf, 3, 10) }
        local settled = (tonumber(tf[5]) or 0) + (tonumber(tf[6]) or 0) + (tonumber(tf[7]) or 0)
        if TASK_TERMINAL[tf[3]] or settled >= (tonumber(tf[4]) or 0) then
          check_later('finished') -- its counters say it is or would be finished: inconsistent
        end
      end
      tasks[tid] = t
    end
  end
end

local out = {}
for n = 1, take do
  local id, agent = heads[n][2], heads[n][3]
  if not indexed[n] then
    zlater('ZREM', qkey(agent), id)
    taken[agent] = (taken[agent] or 0) + 1
  end
  local jk = jkey(id)
  local f = recs[n]
  if indexed[n] then
    -- hiveq's own job whose record is gone: left in its queue for the watch (mark_vanished)
  elseif f == FOREIGN then
    redis.call('ZADD', K.quarantine, NOW, id)
    redis.call('ZADD', K.jobs, 'NX', NOW, id)
    emit_custody(by_worker({ type = 'job', job = id, from = 'waiting', to = 'quarantined',
      reason = 'found in queue ' .. qkey(agent) .. ' but its record key ' .. jk .. ' holds a ' ..
      type_of(jk) .. ', not a hash (written by a foreign client?); record left as is' }, wid))
  elseif not f[1] then
    redis.call('HSET', jk, 'id', id, 'state', 'quarantined', 'agent', agent, 'task', '',
      'reason', 'found in queue ' .. qkey(agent) .. ' with no job record (written by a foreign client?)')
    redis.call('ZADD', K.quarantine, NOW, id)
    redis.call('ZADD', K.jobs, 'NX', NOW, id)
    emit_custody(by_worker({ type = 'job', job = id, from = 'waiting', to = 'quarantined',
      reason = 'no job record' }, wid))
  elseif f[1] ~= 'waiting' then
    emit_custody(by_worker({ type = 'anomaly', job = id, task = f[2], from = f[1], to = f[1],
      reason = 'job in waiting queue has state ' .. f[1] .. '; removed from the queue, record left as is' },
      wid))
  else
    local tid = f[2]
    local attempt = (tonumber(f[6]) or 0) + 1
    redis.call('HSET', jk, 'state', 'active', 'worker', wid, 'token', token,
      'deadline', deadline, 'attempts', attempt, 'started', NOW)
    zlater('ZADD', K.leases, deadline, id)
    local t = tasks[tid]
    if t == NO_TASK then
      report_foreign(tkey(tid), 'hash', 'its jobs are handed out without description or metadata',
        nil, tid)
    elseif t.refresh and not t.started then
      redis.call('HSET', tkey(tid), 'started', 1)
      t.started = true
    end
    local deps = {}
    for _, d in ipairs(id_list(f[9])) do
      local r = try('HGET', jkey(d), 'result')
      if r == FOREIGN then
        report_foreign(jkey(d), 'hash', 'its result was handed to ' .. id .. ' as null', d, tid)
        r = false
      end
      deps[d] = r or 'null'
    end
    emit_job(id, tid, 'waiting', 'active', worker_tail(wid) .. ',"attempt":' .. attempt ..
      ',"agent":' .. J(agent))
    out[#out + 1] = cjson.encode({ id = id, task = tid, sub = f[3], agent = agent, input = f[4],
      prio = tonumber(f[5]), attempt = attempt, max_attempts = tonumber(f[7]),
      timeout = tonumber(f[8]), token = token, deadline = deadline, description = t.desc,
      metadata = t.meta, deps = deps, enq = tonumber(f[10]) })
  end
end
zflush()
for tid, t in pairs(tasks) do if t.refresh then refresh_task(tid, t.refresh) end end
for agent, n in pairs(taken) do
  if fetched[agent] > n then wake(agent) end -- jobs remain: pass the wake-up on
end
if #out > 0 then redis.call('HINCRBY', K.stats, 'claimed', #out) end
return out
