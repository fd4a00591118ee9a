--[[ retry_dead: put a dead-lettered (or quarantined) job back in its queue with fresh attempt
counters, revive the jobs that were cancelled because of it (a dependent is revived only when
none of its other dependencies is still dead, quarantined or cancelled), and revive its task.

KEYS  1 dead        the job leaves it (when dead) ...
      2 quarantine  ... or leaves it (when quarantined), and enters it again when its queue key
                    holds a foreign type
      3 cancelled   revived dependents leave it (the cascade of a new quarantine could add
                    to it, but finds none blocked: they were cancelled before)
      4 blocked     ... and enter it
      5 finished    the task leaves it if it was there (not in practice: a task with a dead
                    letter is kept out)
      6 events      the events below
      7 suspended   a parent resumed when the retried job is quarantined again (foreign queue
                    key) and its other children have finished
ARGV  3 job id  4 who asked
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       the job's record, read with a plain HMGET before the first write (a foreign
                 type fails cleanly); dependents' records and their dependencies' states read
                 with try (foreign: not revived)
  task:<id>      `user_cancelled` read with a plain HGET before the first write; counters and
                 status after
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  q:<agent>      the job's queue: TYPE first, a foreign one quarantines it again
  wake:<agent>   marked for the job (try: a foreign one is reported, not woken)
  job:<id>:steps such a resumed parent's wait step, written with try (foreign: not stored, anomaly)
Returns {code}: OK, NOT_FOUND, or WRONG_STATE (not dead, its task was cancelled by a user, or it
is a foreign queue member with no task: discard it instead).
Events: job dead | quarantined -> waiting, or -> quarantined when its queue key holds a foreign
type; dependents cancelled -> blocked; task failed -> running | queued; a suspended parent whose
children have all finished -> waiting | quarantined; anomaly (a foreign derived key).
]]
local id, who = ARGV[3], ARGV[4]
local f = redis.call('HMGET', jkey(id), 'state', 'task')
if not f[1] then return { NOT_FOUND } end
if f[1] ~= 'dead' and f[1] ~= 'quarantined' then return { WRONG_STATE } end
local tid = f[2]
if not tid or tid == '' then return { WRONG_STATE } end -- a foreign member: nothing to retry
if redis.call('HGET', tkey(tid), 'user_cancelled') == '1' then return { WRONG_STATE } end
redis.call('ZREM', (f[1] == 'dead') and K.dead or K.quarantine, id)
redis.call('HSET', jkey(id), 'attempts', 0, 'failures', 0, 'finished', '', 'reason', '')
to_waiting(id, f[1], 'retried by ' .. who)
task_add(tid, 'dead', -1)
-- Revive everything downstream that a failure cascade cancelled (it has a `cause`), unless
-- another of its dependencies is still dead, quarantined or cancelled: then it stays cancelled
-- and is revived when that one is retried.
local FINISHED_BAD = { dead = true, quarantined = true, cancelled = true }
local function deps_alive(deps)
  for _, dep in ipairs(id_list(deps)) do
    local s = try('HGET', jkey(dep), 'state')
    if s == FOREIGN or FINISHED_BAD[s] then return false end
  end
  return true
end
local queue = id_list(redis.call('HGET', jkey(id), 'dependents'))
local revived = 0
local i = 1
while i <= #queue do
  local d = queue[i]
  i = i + 1
  local g = try('HMGET', jkey(d), 'state', 'cause', 'dependents', 'deps')
  if g ~= FOREIGN and g[1] == 'cancelled' and g[2] and g[2] ~= '' and deps_alive(g[4]) then
    redis.call('ZREM', K.cancelled, d)
    redis.call('ZADD', K.blocked, NOW, d)
    redis.call('HSET', jkey(d), 'state', 'blocked', 'cause', '', 'reason', '', 'finished', '')
    emit_custody({ type = 'job', job = d, task = tid, from = 'cancelled', to = 'blocked',
      reason = 'dependency ' .. id .. ' retried' })
    revived = revived + 1
    for _, dd in ipairs(id_list(g[3])) do queue[#queue + 1] = dd end
  end
end
if revived > 0 then task_add(tid, 'cancelled', -revived) end
refresh_task(tid)
resume_parents() -- a job retried into a foreign-typed queue key is quarantined: its parent may wait
return { OK }
