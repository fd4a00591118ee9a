--[[ cancel: cancel one job (and the blocked jobs downstream of it) or a whole task (every job
not yet finished, running ones included: their leases are revoked, and the worker learns it at
its next heartbeat and stops the agent).

KEYS  1 cancelled   every cancelled job enters it, score = finished ms
      2 stats       counter `cancelled`
      3 blocked     a cancelled blocked job leaves it
      4 delayed     a cancelled delayed job leaves it
      5 leases      a cancelled active job leaves it (its lease is revoked)
      6 finished    the task, once terminal without dead letters (retention clock)
      7 events      the events below
ARGV  3 task id ('' when cancelling one job)  4 job id ('' when cancelling a task)  5 reason
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  task:<id>      the task asked for (task mode) read with a plain HMGET before the first write;
                 in job mode its counters' first command goes through try (foreign: not
                 updated, anomaly)
  job:<id>       the job asked for (job mode) read with a plain HMGET before the first write;
                 the task's other jobs and the dependents read with try (foreign: skipped)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  q:<agent>      a waiting job's queue, ZREM with try (foreign: the job is not in it)
  worker:<id>    an active job's worker's host/pid/client, read with try (foreign: id only)
Returns {code, number of jobs cancelled}: NOT_FOUND, WRONG_STATE (already finished) or OK.
Events: job blocked | waiting | delayed | active -> cancelled; task -> cancelled; anomaly (a
foreign derived key).
]]
local tid, one, reason = ARGV[3], ARGV[4], ARGV[5]
local PLACE_OF = { blocked = K.blocked, delayed = K.delayed, active = K.leases }

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

local function cancel_job(id)
  local f = try('HMGET', jkey(id), 'state', 'agent', 'task', 'worker')
  if f == FOREIGN then
    report_foreign(jkey(id), 'hash', 'not cancelled (no readable record)', id, tid)
    return 0
  end
  if not f[1] or TERMINAL[f[1]] then return 0 end
  leave_place(id, f[1], f[2])
  redis.call('ZADD', K.cancelled, NOW, id)
  redis.call('HSET', jkey(id), 'state', 'cancelled', 'reason', reason, 'finished', NOW)
  redis.call('HDEL', jkey(id), 'token', 'deadline', 'due')
  local ev = { type = 'job', job = id, task = f[3], from = f[1], to = 'cancelled', reason = reason }
  if f[1] == 'active' then by_worker(ev, f[4]) end
  emit_custody(ev)
  return 1
end

local n = 0
if tid ~= '' then
  local t = redis.call('HMGET', tkey(tid), 'status', 'jobs')
  if not t[1] then return { NOT_FOUND, 0 } end
  if TASK_TERMINAL[t[1]] then return { WRONG_STATE, 0 } end
  redis.call('HSET', tkey(tid), 'user_cancelled', 1)
  for _, id in ipairs(id_list(t[2])) do n = n + cancel_job(id) end
  task_add(tid, 'cancelled', n)
else
  local f = redis.call('HMGET', jkey(one), 'state', 'task')
  if not f[1] then return { NOT_FOUND, 0 } end
  if TERMINAL[f[1]] then return { WRONG_STATE, 0 } end
  tid = f[2]
  n = cancel_job(one)
  task_add(tid, 'cancelled', 1)
  -- cascade_cancel counts its own jobs on the task
  n = n + cascade_cancel(one, tid, 'dependency ' .. one .. ' was cancelled')
end
refresh_task(tid)
redis.call('HINCRBY', K.stats, 'cancelled', n)
return { OK, n }
