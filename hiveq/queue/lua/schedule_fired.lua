--[[ schedule_fired: record what one firing did and move the schedule on to its next fire time,
only when it is still the schedule the firing was handed (its `next` unchanged): one replaced,
removed or already recorded meanwhile is left alone.

KEYS  1 schedules   the schedule moves to its next fire ms
      2 events      one schedule event
ARGV  3 name  4 the `next` ms it was handed (due_schedules)  5 tick fired (ms; '' when none)
      6 next fire ms  7 task id ('' when none)  8 error ('' when none)  9 ticks missed (skipped
      by the catch-up policy)  10 holder id
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  sched:<name>   TYPE-checked and read before the first write (a foreign type fails the call
                 cleanly); `next`, `last_fired`, `last_task`, `last_error`, `fired`, `missed`
Returns {code}: OK, NOT_FOUND (removed meanwhile) or WRONG_STATE (replaced or recorded meanwhile).
Events: schedule (reason: "schedule <name> fired <tick> as task <id>" or "schedule <name>
could not fire <tick>: <error>"; task = the task id; data {name, tick, next, missed, by})
]]
local name, handed, tick, next_ms = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local tid, err, missed, holder = ARGV[7], ARGV[8], tonumber(ARGV[9]) or 0, ARGV[10]
local sk = skey(name)
check_type(sk, 'hash')
local f = redis.call('HMGET', sk, 'next', 'firing')
if not f[1] then return { NOT_FOUND } end
if f[1] ~= handed then return { WRONG_STATE } end
redis.call('HSET', sk, 'next', next_ms)
redis.call('HDEL', sk, 'firing', 'firing_until')
redis.call('ZADD', K.schedules, next_ms, name)
if missed > 0 then redis.call('HINCRBY', sk, 'missed', missed) end
local reason
if tick ~= '' then
  redis.call('HSET', sk, 'last_fired', tick, 'last_by', holder)
  if tid ~= '' then
    redis.call('HSET', sk, 'last_task', tid)
    redis.call('HINCRBY', sk, 'fired', 1)
  end
end
if err ~= '' then
  redis.call('HSET', sk, 'last_error', err)
  reason = 'schedule ' .. name .. ' could not fire: ' .. err
else
  redis.call('HDEL', sk, 'last_error')
  reason = 'schedule ' .. name .. ' fired as task ' .. tid
end
emit({ type = 'schedule', task = tid ~= '' and tid or nil, reason = reason,
  data = { name = name, tick = tonumber(tick), next = tonumber(next_ms), missed = missed, by = holder } })
return { OK }
