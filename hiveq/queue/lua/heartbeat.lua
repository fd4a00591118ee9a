--[[ heartbeat: a live worker extends the leases it still holds and records that it is alive.
A lease is extended only for the same token; anything else is reported lost.

KEYS  1 leases  2 workers
ARGV  3 worker id  4 lease ms  5 number of running jobs  6… pairs: job id, lease token
Returns {registered (1|0), lost job id…}. registered 0 means the worker record was reaped
(the worker must register again). No events: heartbeats are not transitions.
]]
local wid, lease_ms = ARGV[3], tonumber(ARGV[4])
local wk = P .. 'worker:' .. wid
local registered = redis.call('EXISTS', wk)
if registered == 1 then
  redis.call('HSET', wk, 'last_hb', NOW, 'running', ARGV[5])
  redis.call('ZADD', KEYS[2], NOW, wid)
end
local out = { registered }
local deadline = NOW + lease_ms
for i = 6, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', jkey(id), 'state', 'token')
  if f[1] == 'active' and f[2] == token then
    redis.call('ZADD', KEYS[1], 'XX', deadline, id)
    redis.call('HSET', jkey(id), 'deadline', deadline)
  else
    out[#out + 1] = id
  end
end
return out
