--[[ quarantine: a worker could not decode a leased job or has no agent for it. The job is kept
with the reason (never dropped) and counts as failed for its task until retried or discarded.

FLAGS allow-oom: runs when Redis is full (it lands or hands back work already taken)
KEYS  1 leases      the job leaves it
      2 quarantine  ... and enters it, score = finished ms
      3 blocked     its blocked dependents leave it ...
      4 cancelled   ... and are cancelled (cascade)
      5 finished    touched by refresh_task only if the task was terminal (not in practice)
      6 events      the events below
      7 suspended   a parent whose children have all finished leaves it (resumed)
ARGV  3 worker id  4 job id  5 lease token  6 reason
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       the job's record, read with a plain HMGET before the first write (a foreign
                 type fails cleanly); dependents' records read with try (foreign: skipped)
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
Returns {code}: OK, NOT_FOUND or STALE.
Events: job active -> quarantined; blocked dependents -> cancelled; task status changes; a
suspended parent whose children have all finished -> waiting | quarantined (foreign queue key);
anomaly (a foreign derived key).
]]
local wid, id, token, reason = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local f = redis.call('HMGET', jkey(id), 'state', 'token', 'task', 'parent')
if not f[1] then return { NOT_FOUND } end
if f[1] ~= 'active' or f[2] ~= token then return { STALE } end
redis.call('ZREM', K.leases, id)
release_limits(id)
redis.call('ZADD', K.quarantine, NOW, id)
redis.call('HSET', jkey(id), 'state', 'quarantined', 'reason', reason, 'finished', NOW)
redis.call('HDEL', jkey(id), 'token', 'deadline')
emit_custody(by_worker({ type = 'job', job = id, task = f[3], from = 'active', to = 'quarantined',
  reason = reason }, wid))
task_add(f[3], 'dead', 1)
child_finished(f[4])
cascade_cancel(id, f[3], 'dependency ' .. id .. ' was quarantined')
refresh_task(f[3])
resume_parents()
return { OK }
