--[[ cancel: cancel one job (with the blocked jobs downstream of it and every job it spawned) or
a whole task (every job not yet finished, running and suspended ones included). A running job's
lease is revoked and its worker's inbox marked, so the worker beats at once, learns it and stops
the agent (within a round trip, not at its next heartbeat).

KEYS  1 cancelled   every cancelled job enters it, score = finished ms
      2 stats       counter `cancelled`
      3 blocked     a cancelled blocked job leaves it
      4 delayed     a cancelled delayed job leaves it
      5 leases      a cancelled active job leaves it (its lease is revoked)
      6 finished    the task, once terminal without dead letters (retention clock)
      7 events      the events below
      8 suspended   a cancelled suspended job leaves it; a parent whose children have now all
                    finished (one cancelled alone) leaves it too, resumed
      9 quarantine  ... into quarantine instead of waiting when its queue key holds a foreign type
      10 vanished   a cancelled vanished job leaves it
ARGV  3 task id ('' when cancelling one job)  4 job id ('' when cancelling a task)  5 reason
      (who cancelled, e.g. "cancelled from the CLI by …": kept in each job and its event)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  task:<id>      the task asked for (task mode) read with a plain HMGET before the first write;
                 in job mode its counters' first command goes through try (foreign: not
                 updated, anomaly)
  job:<id>       the job asked for (job mode) read with a plain HMGET before the first write;
                 the task's other jobs and the dependents read with try (foreign: skipped)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  q:<agent>      a waiting job's queue, ZREM with try (foreign: the job is not in it)
  worker:<id>    an active job's worker's host/pid/client, read with try (foreign: id only)
  inbox:<id>     an active job's worker's cancel inbox, marked with try (foreign: the worker
                 learns it at its next heartbeat instead)
  job:<id>:steps a resumed parent's wait step, written with try (foreign: not stored, anomaly)
  wake:<agent>   marked for a resumed parent (try: a foreign one is reported, not woken)
  lim:h|c|w:<key> for each of the job's limit keys (release_limits in _lib.lua): its slot
                 (lim:h:<key>), token reservation (lim:c:<key>), agents waiting (lim:w:<key>:
                 woken, wake:<agent>), each with try (foreign: skipped, anomaly)
Returns {code, number of jobs cancelled}: NOT_FOUND, WRONG_STATE (already finished) or OK.
Events: job blocked | waiting | delayed | active | suspended | vanished -> cancelled (a job's spawned
children too); task -> cancelled; a suspended parent whose children have now all finished ->
waiting | quarantined (foreign queue key); anomaly (a foreign derived key).
]]
local tid, one, reason = ARGV[3], ARGV[4], ARGV[5]
local PLACE_OF = { blocked = K.blocked, delayed = K.delayed, active = K.leases, suspended = K.suspended,
  vanished = K.vanished }

-- Take a job out of its pending place.
local function leave_place(id, state, agent)
  if state == 'waiting' then
    if try('ZREM', qkey(agent), id) == FOREIGN then
      report_foreign(qkey(agent), 'zset', id .. ' was cancelled; it could not be in there', id)
    end
  elseif PLACE_OF[state] then
    redis.call('ZREM', PLACE_OF[state], id)
  end
end

local function cancel_job(id, why)
  local f = try('HMGET', jkey(id), 'state', 'agent', 'task', 'worker', 'parent')
  if f == FOREIGN then
    report_foreign(jkey(id), 'hash', 'not cancelled (no readable record)', id, tid)
    return 0
  end
  if not f[1] or TERMINAL[f[1]] then return 0 end
  leave_place(id, f[1], f[2])
  if f[1] == 'active' then release_limits(id) end
  redis.call('ZADD', K.cancelled, NOW, id)
  redis.call('HSET', jkey(id), 'state', 'cancelled', 'reason', why, 'finished', NOW)
  redis.call('HDEL', jkey(id), 'token', 'deadline', 'due', 'wait')
  local ev = { type = 'job', job = id, task = f[3], from = f[1], to = 'cancelled', reason = why }
  if f[1] == 'active' then
    by_worker(ev, f[4])
    if f[4] and try('ZADD', inboxkey(f[4]), 0, '1') == FOREIGN then
      report_foreign(inboxkey(f[4]), 'zset', 'its worker learns of the cancel at its next heartbeat', id)
    end
  end
  emit_custody(ev)
  child_finished(f[5])
  return 1
end

local n = 0
if tid ~= '' then
  local t = redis.call('HMGET', tkey(tid), 'status', 'jobs')
  if not t[1] then return { NOT_FOUND, 0 } end
  if TASK_TERMINAL[t[1]] then return { WRONG_STATE, 0 } end
  redis.call('HSET', tkey(tid), 'user_cancelled', 1)
  for _, id in ipairs(id_list(t[2])) do n = n + cancel_job(id, reason) end
  task_add(tid, 'cancelled', n)
else
  local f = redis.call('HMGET', jkey(one), 'state', 'task')
  if not f[1] then return { NOT_FOUND, 0 } end
  if TERMINAL[f[1]] then return { WRONG_STATE, 0 } end
  tid = f[2]
  -- The job, then every job it spawned (and they spawned), each with its blocked dependents.
  local queue, at, mine = { one }, 1, 0
  while at <= #queue do
    local id = queue[at]
    at = at + 1
    mine = mine + cancel_job(id, id == one and reason or ('parent ' .. one .. ' was cancelled: ' .. reason))
    local kids = try('HGET', jkey(id), 'children')
    if kids ~= FOREIGN then -- (a foreign record was reported by cancel_job)
      -- cascade_cancel counts its own jobs on the task
      n = n + cascade_cancel(id, tid, 'dependency ' .. id .. ' was cancelled')
      for _, c in ipairs(id_list(kids)) do queue[#queue + 1] = c end
    end
  end
  task_add(tid, 'cancelled', mine)
  n = n + mine
end
refresh_task(tid)
redis.call('HINCRBY', K.stats, 'cancelled', n)
resume_parents()
return { OK, n }
