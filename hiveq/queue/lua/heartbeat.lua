--[[ heartbeat: a live worker extends the leases it still holds and records that it is alive.
A lease is extended only for the same token; anything else is reported lost. First it checks the
namespace epoch the worker knows: another (or none) means Redis lost the namespace's data, and
the call changes nothing (the worker reports the loss with record_loss, then registers again).

FLAGS allow-oom: runs when Redis is full (it lands or hands back work already taken)
KEYS  1 meta        `epoch` read: the namespace's identity since it was created
      2 leases      deadlines of the leases still held (ZADD XX: never adds a job)
      3 workers     the worker's score = now (only while its record exists)
      4 clock       ticked (see tick_clock in _lib.lua): reap_expired waits out a gap
ARGV  3 worker id  4 lease ms  5 number of running jobs  6 the namespace epoch this worker knows
      7 gap ms (a longer silence of every worker means Redis was away)  8… pairs: job id, token
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  worker:<id>    TYPE before the first write: written only when it is a hash (a foreign type
                 reads as "not registered", and register_worker then names the key)
  job:<id>       each job's record, read with try (foreign: reported lost); `deadline` written
                 only after that read
Returns {registered (1|0), epoch matches (1|0), lost job id…}. registered 0 means the worker
record was reaped (the worker must register again); epoch 0: nothing was done (data loss).
Events: none (heartbeats are not transitions).
]]
if redis.call('HGET', K.meta, 'epoch') ~= ARGV[6] then return { 0, 0 } end
local wid, lease_ms = ARGV[3], tonumber(ARGV[4])
tick_clock(tonumber(ARGV[7]))
local wk = wkey(wid)
local registered = (type_of(wk) == 'hash') and 1 or 0
if registered == 1 then
  redis.call('HSET', wk, 'last_hb', NOW, 'running', ARGV[5])
  redis.call('ZADD', K.workers, NOW, wid)
end
local out = { registered, 1 }
local deadline = NOW + lease_ms
for i = 8, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = try('HMGET', jkey(id), 'state', 'token')
  if f ~= FOREIGN and f[1] == 'active' and f[2] == token then
    redis.call('ZADD', K.leases, 'XX', deadline, id)
    redis.call('HSET', jkey(id), 'deadline', deadline)
  else
    out[#out + 1] = id
  end
end
return out
