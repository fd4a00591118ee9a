--[[ watch_tick: one tick of the conservation watch. Writes nothing but its own lease.

Only one process of a namespace runs the watch: the holder of the `watch` lease (a string with
the holder's id and a short expiry, taken over when its holder stops renewing it). For the
holder, in one atomic snapshot:
- the tripwire: ZCARD of the `jobs` index and of every place. Every hiveq script keeps the index
  equal to the sum of the places (a job enters the index and a place in one step, moves between
  places in one step, and leaves both in one step), so a smaller sum means that a job left a
  place without a hiveq script (a foreign pop or ZREM, a deleted or evicted place key);
- a window of the rolling record sweep: the members of the pending places (blocked, delayed,
  leases, suspended, then each agent's queue, agents sorted; ranks counted across them in that
  order) from
  `cursor` on, checked for their job records (a DEL or an eviction of job:<id>) with one EXISTS
  per 256 members. Lua's cost per member grows with the number of members one call touches, so
  the caller keeps windows small (a few thousand) and makes several calls when it needs more.

KEYS  1 watch       the lease: taken when free or expired, renewed when it is the holder's
      2 jobs        the index (ZCARD; ZSCORE of a member whose record is missing)
      3 agents      which queues there are (SMEMBERS)
      4 blocked     ZCARD; swept
      5 delayed     ZCARD; swept
      6 leases      ZCARD; swept
      7 suspended   ZCARD; swept
      8 succeeded   ZCARD
      9 dead        ZCARD
      10 cancelled  ZCARD
      11 quarantine ZCARD
      12 vanished   ZCARD
ARGV  3 holder id  4 lease ms  5 sweep cursor (a rank across the pending places)
      6 sweep window (how many members to check)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua): q:<agent> of
each member of `agents` (ZCARD and ZRANGE with try: a foreign type counts 0, is skipped, and the
tripwire then sees its jobs missing), job:<id> of each member in the window (EXISTS, which works
on any type). The only write is the lease, after every read.
Returns {0, holder} when another process holds the lease; else
  {1, jobs, {blocked, delayed, leases, suspended, succeeded, dead, cancelled, quarantine, vanished},
   {agent, queue size, …}, pending total, next cursor, wrapped (1: the window reached the end),
   {key, job id, …} pending members whose record is missing (only ids in the jobs index)}
Events: none.
]]
local holder, lease_ms = ARGV[3], tonumber(ARGV[4])
local cursor, window = tonumber(ARGV[5]), tonumber(ARGV[6])
local CHUNK = 256
local current = redis.call('GET', K.watch)
if current and current ~= holder then return { 0, current } end

local jobs = redis.call('ZCARD', K.jobs)
local PLACES = { K.blocked, K.delayed, K.leases, K.suspended, K.succeeded, K.dead, K.cancelled,
  K.quarantine, K.vanished }
local fixed = {}
for i, key in ipairs(PLACES) do fixed[i] = redis.call('ZCARD', key) end
local agents = redis.call('SMEMBERS', K.agents)
table.sort(agents)
local by_agent = {}
-- The pending places in sweep order, with their sizes.
local segments = { { K.blocked, fixed[1] }, { K.delayed, fixed[2] }, { K.leases, fixed[3] },
  { K.suspended, fixed[4] } }
for _, agent in ipairs(agents) do
  local q = qkey(agent)
  local n = try('ZCARD', q)
  if n == FOREIGN then n = 0 end -- a foreign type: its jobs count as missing
  by_agent[#by_agent + 1] = agent
  by_agent[#by_agent + 1] = n
  if n > 0 then segments[#segments + 1] = { q, n } end
end
local total = 0
for _, s in ipairs(segments) do total = total + s[2] end

local missing = {}
local next_cursor, wrapped = 0, 1
if total > 0 then
  if cursor >= total then cursor = 0 end
  local first, last = cursor, math.min(cursor + window, total) - 1
  local base = 0
  for _, s in ipairs(segments) do
    local lo, hi = math.max(first - base, 0), math.min(last - base, s[2] - 1)
    for from = lo, hi, CHUNK do
      local ids = redis.call('ZRANGE', s[1], from, math.min(from + CHUNK - 1, hi))
      local keys = {}
      for i, id in ipairs(ids) do keys[i] = jkey(id) end
      -- one EXISTS for the chunk; only a short count looks at each member
      if #keys > 0 and redis.call('EXISTS', unpack(keys)) < #keys then
        for i, id in ipairs(ids) do
          if redis.call('EXISTS', keys[i]) == 0 and redis.call('ZSCORE', K.jobs, id) then
            missing[#missing + 1] = s[1]
            missing[#missing + 1] = id
          end
        end
      end
    end
    base = base + s[2]
  end
  if last + 1 < total then next_cursor, wrapped = last + 1, 0 end
end
redis.call('SET', K.watch, holder, 'PX', lease_ms)
return { 1, jobs, fixed, by_agent, total, next_cursor, wrapped, missing }
