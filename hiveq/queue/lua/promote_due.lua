--[[ promote_due: delayed jobs whose retry time has come go back to their agent's queue.

KEYS  1 delayed     due jobs leave it
      2 quarantine* a job whose queue key holds a foreign type goes here instead of waiting
      3 blocked*    ... its blocked dependents leave it ...
      4 cancelled*  ... and are cancelled (cascade)
      5 finished*   touched by refresh_task only if the task was terminal (not in practice)
      6 events*     the events below
      (*: checked only when a job is due, before the first write: an idle call checks delayed)
ARGV  3 max jobs to promote
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       each job's record, read with try (missing or foreign: dropped from delayed with
                 an anomaly, audit reports it vanished); dependents' records read with try
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  q:<agent>      the job's queue: TYPE first, a foreign one quarantines the job
  wake:<agent>   marked for each job promoted (try: a foreign one is reported, not woken)
  task:<id>      counters and status on quarantine, each first command with try (foreign: not
                 updated, anomaly)
Returns the number promoted.
Events: job delayed -> waiting | delayed -> quarantined (foreign queue key), with its blocked
dependents -> cancelled and task status changes; anomaly (a missing or foreign record).
]]
local ids = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[3]))
if #ids > 0 then check_later_all() end
for _, id in ipairs(ids) do
  redis.call('ZREM', K.delayed, id)
  to_waiting(id, 'delayed', 'retry backoff elapsed')
end
return #ids
