--[[ discard_dead: a user handled a dead-lettered (or quarantined) job by discarding it. It moves
to the cancelled set with the reason; its task stays failed and its retention clock starts.

KEYS  1 dead  2 quarantine  3 cancelled
ARGV  3 job id  4 who asked
Returns {code}: OK, NOT_FOUND or WRONG_STATE.
Events: job dead -> cancelled.
]]
local id, who = ARGV[3], ARGV[4]
local f = redis.call('HMGET', jkey(id), 'state', 'task')
if not f[1] then return { NOT_FOUND } end
if f[1] ~= 'dead' and f[1] ~= 'quarantined' then return { WRONG_STATE } end
redis.call('ZREM', (f[1] == 'dead') and KEYS[1] or KEYS[2], id)
redis.call('ZADD', KEYS[3], NOW, id)
redis.call('HSET', jkey(id), 'state', 'cancelled', 'reason', 'discarded from ' .. f[1] ..
  ' by ' .. who, 'finished', NOW)
emit({ type = 'job', job = id, task = f[2], from = f[1], to = 'cancelled',
  reason = 'discarded by ' .. who })
if f[2] and f[2] ~= '' then
  redis.call('HINCRBY', tkey(f[2]), 'dead', -1)
  redis.call('HINCRBY', tkey(f[2]), 'cancelled', 1)
  redis.call('HINCRBY', tkey(f[2]), 'discarded', 1)
  refresh_task(f[2])
end
return { OK }
