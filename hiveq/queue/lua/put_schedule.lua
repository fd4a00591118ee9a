--[[ put_schedule: add a recurring schedule, or replace one's cron, zone and task (what it last
fired is kept); its next fire time is the one the caller computed from the cron.

KEYS  1 schedules   the schedule enters it (or moves), score = its next fire ms
      2 events      one schedule event
ARGV  3 name  4 cron  5 time zone (IANA name)  6 task JSON (a POST /tasks body, checked by the
      caller)  7 next fire ms  8 who (client name / host:pid)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  sched:<name>   the schedule's hash: TYPE-checked before the first write (a foreign type fails
                 the call cleanly, nothing written); created, or its spec replaced. A firing in
                 flight for the old spec then records nothing (schedule_fired sees `next` moved)
Returns {OK, 1 created | 0 replaced}.
Events: schedule (reason: "schedule <name> added | replaced by <who>"; data {name, next})
]]
local name, who, next_ms = ARGV[3], ARGV[8], ARGV[7]
local sk = skey(name)
check_type(sk, 'hash')
local created = redis.call('EXISTS', sk) == 0
redis.call('HSET', sk, 'name', name, 'cron', ARGV[4], 'tz', ARGV[5], 'task', ARGV[6], 'next', next_ms,
  'updated', NOW, 'by', who)
if created then redis.call('HSET', sk, 'created', NOW) end
redis.call('HDEL', sk, 'firing')
redis.call('ZADD', K.schedules, next_ms, name)
emit({ type = 'schedule', reason = 'schedule ' .. name .. (created and ' added' or ' replaced') .. ' by ' ..
  who, data = { name = name, next = tonumber(next_ms) } })
return { OK, created and 1 or 0 }
