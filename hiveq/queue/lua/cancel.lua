--[[ cancel: cancel one job (and the blocked jobs downstream of it) or a whole task (every job
not yet finished, running ones included: their leases are revoked, and the worker learns it at
its next heartbeat and stops the agent).

KEYS  1 cancelled  2 stats
ARGV  3 task id ('' when cancelling one job)  4 job id ('' when cancelling a task)  5 reason
Returns {code, number of jobs cancelled}: NOT_FOUND, WRONG_STATE (already finished) or OK.
Events: job <state> -> cancelled; task -> cancelled.
]]
local tid, one, reason = ARGV[3], ARGV[4], ARGV[5]

local function cancel_job(id)
  local f = redis.call('HMGET', jkey(id), 'state', 'agent', 'task', 'worker')
  if not f[1] or TERMINAL[f[1]] then return 0 end
  leave_place(id, f[1], f[2])
  redis.call('ZADD', KEYS[1], NOW, id)
  redis.call('HSET', jkey(id), 'state', 'cancelled', 'reason', reason, 'finished', NOW)
  redis.call('HDEL', jkey(id), 'token', 'deadline', 'due')
  local ev = { type = 'job', job = id, task = f[3], from = f[1], to = 'cancelled', reason = reason }
  if f[1] == 'active' then ev.worker = f[4] end
  emit(ev)
  return 1
end

local n = 0
if tid ~= '' then
  local t = redis.call('HMGET', tkey(tid), 'status', 'jobs')
  if not t[1] then return { NOT_FOUND, 0 } end
  if t[1] == 'succeeded' or t[1] == 'failed' or t[1] == 'cancelled' then return { WRONG_STATE, 0 } end
  redis.call('HSET', tkey(tid), 'user_cancelled', 1)
  for _, id in ipairs(cjson.decode(t[2])) do n = n + cancel_job(id) end
  redis.call('HINCRBY', tkey(tid), 'cancelled', n)
else
  local f = redis.call('HMGET', jkey(one), 'state', 'task')
  if not f[1] then return { NOT_FOUND, 0 } end
  if TERMINAL[f[1]] then return { WRONG_STATE, 0 } end
  tid = f[2]
  n = cancel_job(one)
  redis.call('HINCRBY', tkey(tid), 'cancelled', 1)
  -- cascade_cancel counts its own jobs on the task
  n = n + cascade_cancel(one, tid, 'dependency ' .. one .. ' was cancelled')
end
refresh_task(tid)
redis.call('HINCRBY', KEYS[2], 'cancelled', n)
return { OK, n }
