--[[ fail: a leased job failed. Retry it later with exponential backoff and jitter, or
dead-letter it after max_attempts (or at once when the failure is fatal).

FLAGS allow-oom: runs when Redis is full (it lands or hands back work already taken)
KEYS  1 leases      the failed jobs leave it
      2 delayed     a job to retry enters it, score = due ms
      3 stats       counters `failed`, `dead`
      4 dead        a job out of attempts (or fatal) enters it
      5 blocked     its blocked dependents leave it ...
      6 cancelled   ... and are cancelled (cascade)
      7 finished    a task that finishes without dead letters enters it (not in practice here:
                    a task with a dead letter stays out until it is handled)
      8 events      the events below
      9 suspended   a parent whose children have all finished leaves it (a child dead-lettered)
     10 quarantine  ... into quarantine instead of waiting when its queue key holds a foreign type
ARGV  3 worker id  4 backoff base ms  5 backoff max ms  6 tracebacks kept per job
      7… septuples: job id, lease token, the claim's attempt (0: unknown; named when the failure is
      refused as late), error text, mode ("retry" | "fatal"), jitter in [0,1),
      the agent's traceback text ('' when there is none; the caller bounds its size)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       each job's record, read with try (foreign: NOT_FOUND, anomaly) and written
                 only after that read; dependents' records read with try (foreign: skipped)
  job:<id>:tracebacks  a failure with a traceback appends {attempt, failure, ts, worker, error,
                 traceback} (JSON), trimmed to the newest ARGV[6]; RPUSH with try (foreign: the
                 traceback is dropped, anomaly; the error text is in the job and the event).
                 The traceback goes there only, never into the event stream.
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  task:<id>      counters and status, each first command with try (foreign: not updated,
                 anomaly)
  worker:<id>    the worker's host/pid/client, read with try (foreign: id only)
  job:<id>:steps a resumed parent's wait step, written with try (foreign: not stored, anomaly;
                 the parent then waits again and finds its children finished)
  q:<agent>      a resumed parent's queue: TYPE first, a foreign one quarantines it
  wake:<agent>   marked for a resumed parent (try: a foreign one is reported, not woken)
  lim:h|c|w:<key> for each of the job's limit keys (release_limits in _lib.lua): its slot
                 (lim:h:<key>), token reservation (lim:c:<key>), agents waiting (lim:w:<key>:
                 woken, wake:<agent>), each with try (foreign: skipped, anomaly)
Returns one code per job: OK, NOT_FOUND or STALE. A STALE failure whose token is not the one
this job last finished with (`last_token`) is another run's late failure: a `late` event.
Events: late (a failure refused for a stale token); job active -> delayed (reason: retry k of n in t) | active -> dead; blocked dependents
-> cancelled; task status changes; a suspended parent whose children have all finished ->
waiting | quarantined (foreign queue key); anomaly (a foreign derived key).
]]
local wid = ARGV[3]
local base, cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local kept = tonumber(ARGV[6])
local out = {}
local dirty = {}
for i = 7, #ARGV, 7 do
  local id, token, attempt, err, mode, jitter, tb = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
    ARGV[i + 4], tonumber(ARGV[i + 5]), ARGV[i + 6]
  local jk = jkey(id)
  local f = try('HMGET', jk, 'state', 'token', 'task', 'failures', 'max_attempts', 'attempts',
    'worker', 'last_token', 'lkeys')
  if f == FOREIGN then
    report_foreign(jk, 'hash', 'its failure was not recorded (NOT_FOUND)', id)
    out[#out + 1] = NOT_FOUND
  elseif not f[1] then
    out[#out + 1] = NOT_FOUND
  elseif f[1] ~= 'active' or f[2] ~= token then
    out[#out + 1] = STALE
    if f[8] ~= token then late_result(id, f[3], wid, 'failure', f[1], f[7], attempt) end
  else
    local tid = f[3]
    local failures = (tonumber(f[4]) or 0) + 1
    local maxa = tonumber(f[5])
    redis.call('HSET', jk, 'failures', failures, 'error', err, 'last_token', token)
    if tb ~= '' then
      local row = cjson.encode({ attempt = tonumber(f[6]), failure = failures, ts = NOW,
        worker = wid, error = err, traceback = tb })
      if try('RPUSH', tbkey(id), row) == FOREIGN then
        report_foreign(tbkey(id), 'list', 'the traceback of this failure was dropped', id, tid)
      else
        redis.call('LTRIM', tbkey(id), -kept, -1)
      end
    end
    redis.call('ZREM', K.leases, id)
    if f[9] then release_limits(id) end -- it holds a claim under limit keys
    if mode == 'fatal' or failures >= maxa then
      local why = (mode == 'fatal') and ('fatal error: ' .. err)
        or ('failed ' .. failures .. ' of ' .. maxa .. ' attempts; last error: ' .. err)
      to_dead(id, 'active', tid, why, wid)
      dirty[tid] = true
    else
      local delay = math.min(cap, base * 2 ^ (failures - 1))
      delay = math.floor(delay * (0.5 + 0.5 * jitter))
      local due = NOW + delay
      redis.call('ZADD', K.delayed, due, id)
      redis.call('HSET', jk, 'state', 'delayed', 'due', due)
      redis.call('HDEL', jk, 'token', 'deadline')
      emit_custody(by_worker({ type = 'job', job = id, task = tid, from = 'active', to = 'delayed',
        attempt = tonumber(f[6]),
        reason = 'retry ' .. (failures + 1) .. ' of ' .. maxa .. ' in ' .. delay .. ' ms: ' .. err }, wid))
    end
    redis.call('HINCRBY', K.stats, 'failed', 1)
    out[#out + 1] = OK
  end
end
for tid, _ in pairs(dirty) do refresh_task(tid) end
resume_parents()
return out
