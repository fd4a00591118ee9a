--[[ progress: an agent reports progress on a leased job. Not a state transition; it is atomic
so that a stale worker cannot report on a job it no longer holds.

KEYS  (none besides the derived job key)
ARGV  3 worker id  4 job id  5 lease token  6 fraction 0..1  7 message
Returns {code}: OK, NOT_FOUND or STALE.
Events: progress (fraction, message). Only the first 100 progress events of a job also go to
its custody log, so a chatty long job cannot grow its log without bound (the stream is capped).
]]
local wid, id, token = ARGV[3], ARGV[4], ARGV[5]
local f = redis.call('HMGET', jkey(id), 'state', 'token', 'task')
if not f[1] then return { NOT_FOUND } end
if f[1] ~= 'active' or f[2] ~= token then return { STALE } end
redis.call('HSET', jkey(id), 'progress', ARGV[6], 'progress_msg', ARGV[7])
local logged = redis.call('HINCRBY', jkey(id), 'progress_n', 1) <= 100
emit({ type = 'progress', job = id, task = f[3], worker = wid, from = 'active', to = 'active',
  reason = ARGV[7], data = { progress = tonumber(ARGV[6]) } }, not logged)
return { OK }
