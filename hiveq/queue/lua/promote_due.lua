--[[ promote_due: delayed jobs whose retry time has come go back to their agent's queue.

KEYS  1 delayed
ARGV  3 max jobs to promote
Returns the number promoted.
Events: job delayed -> waiting.
]]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  to_waiting(id, 'delayed', 'retry backoff elapsed')
end
return #ids
