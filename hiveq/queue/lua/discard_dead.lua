--[[ discard_dead: a user handled a dead-lettered (or quarantined) job by discarding it. It moves
to the cancelled set with the reason; its task stays failed and its retention clock starts.

KEYS  1 dead        the job leaves it (when dead) ...
      2 quarantine  ... or leaves it (when quarantined)
      3 cancelled   ... and enters it, score = finished ms
      4 finished    the task enters it once no dead letter is left (retention clock)
      5 events      the events below
ARGV  3 job id  4 who asked
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       the job's record, read with a plain HMGET before the first write (a foreign
                 type fails cleanly)
  job:<id>:log   the custody row (try: a foreign log keeps the event in the stream only)
  task:<id>      counters and status, the first command with try (foreign: not updated,
                 anomaly)
Returns {code}: OK, NOT_FOUND or WRONG_STATE.
Events: job dead | quarantined -> cancelled; task status changes; anomaly (a foreign derived
key).
]]
local id, who = ARGV[3], ARGV[4]
local f = redis.call('HMGET', jkey(id), 'state', 'task')
if not f[1] then return { NOT_FOUND } end
if f[1] ~= 'dead' and f[1] ~= 'quarantined' then return { WRONG_STATE } end
redis.call('ZREM', (f[1] == 'dead') and K.dead or K.quarantine, id)
redis.call('ZADD', K.cancelled, NOW, id)
redis.call('HSET', jkey(id), 'state', 'cancelled', 'reason', 'discarded from ' .. f[1] ..
  ' by ' .. who, 'finished', NOW)
emit_custody({ type = 'job', job = id, task = f[2], from = f[1], to = 'cancelled',
  reason = 'discarded by ' .. who })
if f[2] and f[2] ~= '' and task_add(f[2], 'dead', -1) then
  redis.call('HINCRBY', tkey(f[2]), 'cancelled', 1)
  redis.call('HINCRBY', tkey(f[2]), 'discarded', 1)
  refresh_task(f[2])
end
return { OK }
