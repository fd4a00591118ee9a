--[[ recover: put a vanished job back where it belongs, counting one delivery (the vanishing
took one). Where it belongs, by its dependencies: blocked while one is still pending (cancelled
instead, with its blocked dependents, when one was dead-lettered, quarantined or cancelled
meanwhile), delayed while its retry backoff runs, else waiting at its old queue position. At
the delivery limit (max_deliveries) it is dead-lettered instead, with the reason, so a
persistent thief cannot loop it forever.

KEYS  1 vanished    the job leaves it
      2 blocked     it enters it while a dependency is pending; its blocked dependents leave
                    it when it is cancelled or dead-lettered (cascade)
      3 delayed     it enters it while its retry backoff runs
      4 dead        it enters it at the delivery limit
      5 cancelled   it (and its blocked dependents) enter it when a dependency is dead
      6 quarantine  it enters it instead of waiting when its queue key holds a foreign type
      7 finished    touched by refresh_task only if its task was terminal (not in practice)
      8 stats       counters `recovered`, `dead`
      9 events      the events below
      10 suspended  its parent, waiting for its children, leaves it (resumed) when it finished it
                    (dead, cancelled or quarantined here)
ARGV  3 job id  4 who asked (recorded in the event)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       the job's record, read with a plain HMGET before the first write (a foreign
                 type fails the call cleanly); its dependencies' and dependents' records read
                 with try (foreign: not dead, skipped)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  task:<id>      counters and status, each first command with try (foreign: not updated,
                 anomaly)
  q:<agent>      the job's queue: TYPE first, a foreign one quarantines it
  wake:<agent>   marked for the job (try: a foreign one is reported, not woken)
  worker:<id>    named in a dead-letter event (none here: the vanishing ended the lease)
  job:<id>:steps a resumed parent's wait step, written with try (foreign: not stored, anomaly)
Returns {code, state}: OK with the state the job went to; NOT_FOUND; WRONG_STATE with its
state (not vanished), or with 'vanished' when its agent is unknown (a rebuilt record of a job
never claimed nor queued: resubmit its task).
Events: job vanished -> waiting | blocked | delayed | dead | cancelled | quarantined (foreign
queue key) (reason: who, delivery n of max); blocked dependents -> cancelled; a suspended parent
whose children have now all finished -> waiting | quarantined; task status changes; anomaly (a
foreign derived key). stats: recovered.
]]
local id, who = ARGV[3], ARGV[4]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 'state', 'task', 'agent', 'pending', 'due', 'attempts',
  'max_deliveries', 'vanished_key', 'suspect', 'deps')
if not f[1] then return { NOT_FOUND, '' } end
if f[1] ~= 'vanished' then return { WRONG_STATE, f[1] } end
if not f[3] or f[3] == '' then return { WRONG_STATE, 'vanished' } end
local tid = f[2]
local attempts = (tonumber(f[6]) or 0) + 1
local max = tonumber(f[7]) or attempts
local delivery = 'delivery ' .. attempts .. ' of ' .. max
redis.call('ZREM', K.vanished, id)
redis.call('HSET', jk, 'attempts', attempts, 'reason', '')
redis.call('HINCRBY', K.stats, 'recovered', 1)

local function moved(to, reason)
  emit_custody({ type = 'job', job = id, task = tid, from = 'vanished', to = to, reason = reason })
end

if attempts >= max then
  local why = 'vanished (last from ' .. (f[8] or '?') .. '; suspect: ' ..
    ((f[9] and f[9] ~= '') and f[9] or 'unknown') .. ') with its deliveries used up (' .. delivery ..
    '): dead-lettered so that a client that keeps taking it cannot loop it forever; stop that ' ..
    'client, then `hiveq dlq retry ' .. id .. '`'
  to_dead(id, 'vanished', tid, why, nil)
  refresh_task(tid)
  resume_parents()
  return { OK, 'dead' }
end

local recovered = 'recovered by ' .. who .. ' (' .. delivery .. ')'
if (tonumber(f[4]) or 0) > 0 then
  for _, dep in ipairs(id_list(f[10])) do
    local s = try('HGET', jkey(dep), 'state') -- a foreign record reads as FOREIGN: not dead
    if s == 'dead' or s == 'quarantined' or s == 'cancelled' then
      local why = 'dependency ' .. dep .. ' is ' .. s
      redis.call('ZADD', K.cancelled, NOW, id)
      redis.call('HSET', jk, 'state', 'cancelled', 'cause', dep, 'finished', NOW, 'reason', why)
      moved('cancelled', recovered .. '; ' .. why)
      task_add(tid, 'cancelled', 1)
      child_finished(redis.call('HGET', jk, 'parent'))
      cascade_cancel(id, tid, 'dependency ' .. id .. ' was cancelled')
      refresh_task(tid)
      resume_parents()
      return { OK, 'cancelled' }
    end
  end
  redis.call('ZADD', K.blocked, NOW, id)
  redis.call('HSET', jk, 'state', 'blocked')
  moved('blocked', recovered .. '; waiting for its dependencies')
  return { OK, 'blocked' }
end
local due = tonumber(f[5])
if due and due > NOW then
  redis.call('ZADD', K.delayed, due, id)
  redis.call('HSET', jk, 'state', 'delayed')
  moved('delayed', recovered .. '; its retry backoff runs until ' .. string.format('%d', due))
  return { OK, 'delayed' }
end
to_waiting(id, 'vanished', recovered)
resume_parents() -- a job recovered into a foreign-typed queue key is quarantined: its parent may wait
return { OK, redis.call('HGET', jk, 'state') }
