--[[ expire_finished: delete tasks that finished longer ago than the retention, with their jobs,
results, custody logs and tracebacks. Tasks holding dead letters never enter `finished` until handled.

KEYS  1 finished  2 tasks  3 jobs  4 succeeded  5 cancelled
ARGV  3 retention ms  4 max tasks per call
Returns the number of tasks deleted. No events (the deletion is the end of the record).
]]
local tids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', NOW - tonumber(ARGV[3]), 'LIMIT', 0,
  tonumber(ARGV[4]))
for _, tid in ipairs(tids) do
  local t = redis.call('HMGET', tkey(tid), 'jobs', 'idem')
  for _, id in ipairs(cjson.decode(t[1] or '[]')) do
    redis.call('DEL', jkey(id), jkey(id) .. ':log', jkey(id) .. ':tracebacks')
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('ZREM', KEYS[5], id)
  end
  if t[2] and t[2] ~= '' then
    if redis.call('GET', P .. 'idem:' .. t[2]) == tid then redis.call('DEL', P .. 'idem:' .. t[2]) end
  end
  redis.call('DEL', tkey(tid))
  redis.call('ZREM', KEYS[2], tid)
  redis.call('ZREM', KEYS[1], tid)
end
return #tids
