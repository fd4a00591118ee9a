--[[ retry_dead: put a dead-lettered (or quarantined) job back in its queue with fresh attempt
counters, revive the jobs that were cancelled because of it (a dependent is revived only when
none of its other dependencies is still dead, quarantined or cancelled), and revive its task.

KEYS  1 dead  2 quarantine  3 cancelled  4 blocked
ARGV  3 job id  4 who asked
Returns {code}: OK, NOT_FOUND, or WRONG_STATE (not dead, its task was cancelled by a user, or it
is a foreign queue member with no task: discard it instead).
Events: job dead -> waiting; dependents cancelled -> blocked; task failed -> running.
]]
local id, who = ARGV[3], ARGV[4]
local f = redis.call('HMGET', jkey(id), 'state', 'task')
if not f[1] then return { NOT_FOUND } end
if f[1] ~= 'dead' and f[1] ~= 'quarantined' then return { WRONG_STATE } end
local tid = f[2]
if not tid or tid == '' then return { WRONG_STATE } end -- a foreign member: nothing to retry
if redis.call('HGET', tkey(tid), 'user_cancelled') == '1' then return { WRONG_STATE } end
redis.call('ZREM', (f[1] == 'dead') and KEYS[1] or KEYS[2], id)
redis.call('HSET', jkey(id), 'attempts', 0, 'failures', 0, 'finished', '', 'reason', '')
to_waiting(id, f[1], 'retried by ' .. who)
redis.call('HINCRBY', tkey(tid), 'dead', -1)
-- Revive everything downstream that a failure cascade cancelled (it has a `cause`), unless
-- another of its dependencies is still dead, quarantined or cancelled: then it stays cancelled
-- and is revived when that one is retried.
local FINISHED_BAD = { dead = true, quarantined = true, cancelled = true }
local function deps_alive(deps)
  for _, dep in ipairs(cjson.decode(deps or '[]')) do
    if FINISHED_BAD[redis.call('HGET', jkey(dep), 'state')] then return false end
  end
  return true
end
local queue = cjson.decode(redis.call('HGET', jkey(id), 'dependents') or '[]')
local revived = 0
local i = 1
while i <= #queue do
  local d = queue[i]
  i = i + 1
  local g = redis.call('HMGET', jkey(d), 'state', 'cause', 'dependents', 'deps')
  if g[1] == 'cancelled' and g[2] and g[2] ~= '' and deps_alive(g[4]) then
    redis.call('ZREM', KEYS[3], d)
    redis.call('ZADD', KEYS[4], NOW, d)
    redis.call('HSET', jkey(d), 'state', 'blocked', 'cause', '', 'reason', '', 'finished', '')
    emit({ type = 'job', job = d, task = tid, from = 'cancelled', to = 'blocked',
      reason = 'dependency ' .. id .. ' retried' })
    revived = revived + 1
    for _, dd in ipairs(cjson.decode(g[3] or '[]')) do queue[#queue + 1] = dd end
  end
end
if revived > 0 then redis.call('HINCRBY', tkey(tid), 'cancelled', -revived) end
refresh_task(tid)
return { OK }
