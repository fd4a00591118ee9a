--[[ quarantine: a worker could not decode a leased job or has no agent for it. The job is kept
with the reason (never dropped) and counts as failed for its task until retried or discarded.

KEYS  1 leases  2 quarantine
ARGV  3 worker id  4 job id  5 lease token  6 reason
Returns {code}: OK, NOT_FOUND or STALE.
Events: job active -> quarantined; blocked dependents -> cancelled.
]]
local wid, id, token, reason = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local f = redis.call('HMGET', jkey(id), 'state', 'token', 'task')
if not f[1] then return { NOT_FOUND } end
if f[1] ~= 'active' or f[2] ~= token then return { STALE } end
redis.call('ZREM', KEYS[1], id)
redis.call('ZADD', KEYS[2], NOW, id)
redis.call('HSET', jkey(id), 'state', 'quarantined', 'reason', reason, 'finished', NOW)
redis.call('HDEL', jkey(id), 'token', 'deadline')
emit({ type = 'job', job = id, task = f[3], from = 'active', to = 'quarantined', worker = wid,
  reason = reason })
redis.call('HINCRBY', tkey(f[3]), 'dead', 1)
cascade_cancel(id, f[3], 'dependency ' .. id .. ' was quarantined')
refresh_task(f[3])
return { OK }
