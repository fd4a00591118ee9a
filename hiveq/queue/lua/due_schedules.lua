--[[ due_schedules: hand the schedules whose fire time has come to one firing process, each under a
lease: its member moves to now + lease ms, so no other process gets it while it fires, and if the
holder dies another one gets it when the lease ends (and fires the same tick: the task's
idempotency key `schedule:<name>:<tick>` makes a second task impossible). An idle call is one
ZRANGEBYSCORE.

KEYS  1 schedules   due members (score <= now) move to now + lease ms
      2 events*     an anomaly for a member without a schedule record (*: checked only then,
                    before the first write)
ARGV  3 now ms ('' = the Redis time; a test may pass its clock)  4 holder id  5 lease ms
      6 max schedules per call
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  sched:<name>   each due schedule's record, read with try (missing or foreign: its member is
                 dropped, anomaly); `firing` = the holder, `firing_until` = the lease end
Returns {now ms, {name, next ms, cron, tz, task JSON}…}: next is the fire time it was due at
(the firing computes the latest tick since then: docs/schedules.md).
Events: anomaly (a member of schedules without a schedule record)
]]
local now = tonumber(ARGV[3]) or NOW
local holder, lease, max = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local names = redis.call('ZRANGEBYSCORE', K.schedules, '-inf', now, 'LIMIT', 0, max)
local out = { string.format('%d', now) }
local found, strays = {}, {}
for _, name in ipairs(names) do -- read every record first: the writes come after every check
  local f = try('HMGET', skey(name), 'next', 'cron', 'tz', 'task')
  if f == FOREIGN or not f[1] or not f[4] then
    strays[#strays + 1] = { name, (f == FOREIGN) and ('a record key holding a ' .. type_of(skey(name)))
      or 'no record' }
  else
    found[#found + 1] = { name, f[1], f[2], f[3], f[4] }
  end
end
if #strays > 0 then check_later('events') end
for _, s in ipairs(strays) do
  redis.call('ZREM', K.schedules, s[1])
  emit({ type = 'anomaly', reason = 'schedule ' .. s[1] .. ' had ' .. s[2] .. '; dropped from ' ..
    K.schedules })
end
for _, r in ipairs(found) do
  redis.call('ZADD', K.schedules, 'XX', now + lease, r[1])
  redis.call('HSET', skey(r[1]), 'firing', holder, 'firing_until', now + lease)
  out[#out + 1] = r
end
return out
