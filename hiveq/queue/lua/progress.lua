--[[ progress: an agent reports progress on a leased job. Not a state transition; it is atomic
so that a stale worker cannot report on a job it no longer holds.

KEYS  1 events      the progress event
ARGV  3 worker id  4 job id  5 lease token  6 fraction 0..1  7 message
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       read with a plain HMGET before the first write (a foreign type fails cleanly);
                 then `progress`, `progress_msg`, `progress_n` written
  job:<id>:log   the event's custody row, for the first 100 only (try: foreign -> stream only)
  worker:<id>    host/pid/client for the event, read with try (foreign: id only)
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
emit_custody(by_worker({ type = 'progress', job = id, task = f[3], from = 'active', to = 'active',
  reason = ARGV[7], data = { progress = tonumber(ARGV[6]) } }, wid), not logged)
return { OK }
