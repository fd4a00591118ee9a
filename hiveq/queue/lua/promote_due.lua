--[[ promote_due: delayed jobs whose retry time (or whose task's run_at) has come go to their agent's queue, and
suspended jobs whose signal wait timed out are woken (their wait's step records the timeout).

FLAGS allow-oom: runs when Redis is full (it lands or hands back work already taken)
KEYS  1 delayed     due jobs leave it
      2 suspended   timed-out signal waits leave it
      3 quarantine* a job whose queue key holds a foreign type goes here instead of waiting
      4 blocked*    ... its blocked dependents leave it ...
      5 cancelled*  ... and are cancelled (cascade)
      6 finished*   touched by refresh_task only if the task was terminal (not in practice)
      7 events*     the events below
      (*: checked only when a job is due, before the first write: an idle call checks delayed
      and suspended)
ARGV  3 max jobs to promote (and, apart, to wake)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       each job's record, read with try (missing or foreign: dropped from delayed with
                 an anomaly, audit reports it vanished; a timed-out wait's entry in suspended is
                 dropped the same way); dependents' records read with try
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  job:<id>:steps a woken job's wait step {"timeout": true}, written with try (foreign: not
                 stored, anomaly: the job then waits again)
  q:<agent>      the job's queue: TYPE first, a foreign one quarantines the job
  wake:<agent>   marked for each job promoted (try: a foreign one is reported, not woken)
  task:<id>      counters and status on quarantine, each first command with try (foreign: not
                 updated, anomaly)
Returns the number of jobs promoted and woken.
Events: job delayed -> waiting (reason: retry backoff elapsed | run_at reached) | delayed -> quarantined (foreign queue key); job suspended ->
waiting (reason: the signal wait timed out) | suspended -> quarantined (foreign queue key); their
blocked dependents -> cancelled and task status changes; anomaly (a missing or foreign record);
a suspended parent whose children have all finished -> waiting (a job quarantined on the way).
]]
local max = tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', NOW, 'LIMIT', 0, max)
local due = redis.call('ZRANGEBYSCORE', K.suspended, '-inf', NOW, 'LIMIT', 0, max)
if #ids > 0 or #due > 0 then check_later_all() end
for _, id in ipairs(ids) do
  redis.call('ZREM', K.delayed, id)
  -- a delayed job that never failed was delayed by its task's run_at (enqueue.lua)
  local failures = try('HGET', jkey(id), 'failures')
  to_waiting(id, 'delayed', failures == false and 'run_at reached' or 'retry backoff elapsed')
end
for _, id in ipairs(due) do
  local f = try('HMGET', jkey(id), 'state', 'wait', 'task')
  if f == FOREIGN or f[1] ~= 'suspended' or not f[2] then
    redis.call('ZREM', K.suspended, id)
    local what = (f == FOREIGN) and ('a record key holding a ' .. type_of(jkey(id)))
      or ('state ' .. tostring(f[1]))
    emit({ type = 'anomaly', job = id, reason = 'entry in suspended for a job with ' .. what ..
      '; entry dropped' })
  else
    local wait = cjson.decode(f[2])
    local waited = NOW - (tonumber(wait.since) or NOW)
    resume(id, wait, '{"timeout":true}', 'no signal ' .. tostring(wait.name) .. ' within ' ..
      string.format('%.1f', waited / 1000) .. ' s: the wait timed out')
  end
end
resume_parents()
return #ids + #due
