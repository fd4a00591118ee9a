--[[ step_done: a durable agent's step succeeded; store its result under the job, so a later run
of the job (after a crash or a suspension) returns it without running the step again.

KEYS  1 events      the step event
ARGV  3 worker id  4 job id  5 lease token  6 step key (its name, "#n" for the n-th call of a name
      in one run)  7 result JSON  8 time the step took, ms  9 max steps per job  10 max bytes of
      all step results of a job together
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       the job's record (lease check, `steps_bytes`), read with a plain HMGET before
                 the first write (a foreign type fails cleanly)
  job:<id>:steps step key -> result JSON, read with plain HEXISTS and HLEN before the first write
                 (a foreign type fails cleanly)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  worker:<id>    the worker's host/pid/client, read with try (foreign: id only)
Returns {code, why}: OK (stored, or stored already under this key: kept as it was); NOT_FOUND;
STALE (the lease is not this token's: a stale worker never writes a step); WRONG_STATE with why
"steps" or "bytes" (the job's bounds, ARGV 9 and 10, would be passed).
Events: step (reason: the step's key; data {name, ms, bytes}; worker), also in the custody log.
]]
local wid, id, token, key, result = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local f = redis.call('HMGET', jkey(id), 'state', 'token', 'task', 'steps_bytes', 'attempts')
if not f[1] then return { NOT_FOUND, '' } end
if f[1] ~= 'active' or f[2] ~= token then return { STALE, '' } end
if redis.call('HEXISTS', stkey(id), key) == 1 then return { OK, '' } end
if redis.call('HLEN', stkey(id)) >= tonumber(ARGV[9]) then return { WRONG_STATE, 'steps' } end
if (tonumber(f[4]) or 0) + #result > tonumber(ARGV[10]) then return { WRONG_STATE, 'bytes' } end
save_step(id, key, result)
emit_custody(by_worker({ type = 'step', job = id, task = f[3], attempt = tonumber(f[5]), reason = key,
  data = { name = key, ms = tonumber(ARGV[8]), bytes = #result } }, wid))
return { OK, '' }
