--[[ remove_schedule: delete one recurring schedule; tasks it fired are left alone.

KEYS  1 schedules   the schedule leaves it
      2 events      one schedule event
ARGV  3 name  4 who (client name / host:pid)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  sched:<name>   TYPE-checked before the first write (a foreign type fails the call cleanly);
                 deleted. A firing in flight may still create its tick's task (idempotent), and
                 then records nothing
Returns {code}: OK, or NOT_FOUND when there was no such schedule.
Events: schedule (reason: "schedule <name> removed by <who>"; data {name})
]]
local name, who = ARGV[3], ARGV[4]
local sk = skey(name)
check_type(sk, 'hash')
local gone = redis.call('DEL', sk) + redis.call('ZREM', K.schedules, name)
if gone == 0 then return { NOT_FOUND } end
emit({ type = 'schedule', reason = 'schedule ' .. name .. ' removed by ' .. who, data = { name = name } })
return { OK }
