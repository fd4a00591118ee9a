--[[ fail: a leased job failed. Retry it later with exponential backoff and jitter, or
dead-letter it after max_attempts (or at once when the failure is fatal).

KEYS  1 leases  2 delayed  3 stats
ARGV  3 worker id  4 backoff base ms  5 backoff max ms  6 tracebacks kept per job
      7… sextuples: job id, lease token, error text, mode ("retry" | "fatal"), jitter in [0,1),
      the agent's traceback text ('' when there is none; the caller bounds its size)
Derived key (from the prefix, same hash slot): job:<id>:tracebacks, a list to which a failure
with a traceback appends {attempt, failure, ts, worker, error, traceback} (JSON), trimmed to the
newest ARGV[6] entries. The traceback goes there only, never into the event stream.
Returns one code per job: OK, NOT_FOUND or STALE.
Events: job active -> delayed (reason: retry k of n in t) | active -> dead; blocked dependents
-> cancelled; task status changes.
]]
local wid = ARGV[3]
local base, cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local kept = tonumber(ARGV[6])
local out = {}
local dirty = {}
for i = 7, #ARGV, 6 do
  local id, token, err, mode, jitter, tb = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
    tonumber(ARGV[i + 4]), ARGV[i + 5]
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'state', 'token', 'task', 'agent', 'failures', 'max_attempts',
    'attempts')
  if not f[1] then
    out[#out + 1] = NOT_FOUND
  elseif f[1] ~= 'active' or f[2] ~= token then
    out[#out + 1] = STALE
  else
    local tid = f[3]
    local failures = (tonumber(f[5]) or 0) + 1
    local maxa = tonumber(f[6])
    redis.call('HSET', jk, 'failures', failures, 'error', err)
    if tb ~= '' then
      local tk = jk .. ':tracebacks'
      redis.call('RPUSH', tk, cjson.encode({ attempt = tonumber(f[7]), failure = failures, ts = NOW,
        worker = wid, error = err, traceback = tb }))
      redis.call('LTRIM', tk, -kept, -1)
    end
    if mode == 'fatal' or failures >= maxa then
      local why = (mode == 'fatal') and ('fatal error: ' .. err)
        or ('failed ' .. failures .. ' of ' .. maxa .. ' attempts; last error: ' .. err)
      to_dead(id, 'active', tid, f[4], why, wid)
      dirty[tid] = true
    else
      local delay = math.min(cap, base * 2 ^ (failures - 1))
      delay = math.floor(delay * (0.5 + 0.5 * jitter))
      local due = NOW + delay
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZADD', KEYS[2], due, id)
      redis.call('HSET', jk, 'state', 'delayed', 'due', due)
      redis.call('HDEL', jk, 'token', 'deadline')
      emit({ type = 'job', job = id, task = tid, from = 'active', to = 'delayed', worker = wid,
        attempt = tonumber(f[7]),
        reason = 'retry ' .. (failures + 1) .. ' of ' .. maxa .. ' in ' .. delay .. ' ms: ' .. err })
    end
    redis.call('HINCRBY', KEYS[3], 'failed', 1)
    out[#out + 1] = OK
  end
end
for tid, _ in pairs(dirty) do refresh_task(tid) end
return out
