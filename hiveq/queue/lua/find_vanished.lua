--[[ find_vanished: the watch's targeted sweep, read-only. Run when the tripwire (watch_tick)
says that jobs left their places: among some indexed job ids, the ones that are in none of the
places, with what their records say. One atomic snapshot per call, so an id returned was in no
place at that moment. Which ids it looks at (the watch tries them in this order and stops once
it found as many as the tripwire's shortfall):
  ids    given ids (the jobs the watch marked lately: a thief that took one takes it again);
  heads  for each agent's queue, the jobs indexed at or just before its head's creation: a pop
         on a backlog takes the head, the oldest waiting job;
  rank   a window of the `jobs` index by rank, newest first (a thief on an empty queue takes
         each new job); windows in turn read the whole index.
Each place is asked once per call with ZMSCORE for the ids that no earlier place held, the
largest places first, so the cost is about one hash lookup per id and place that holds none.

KEYS  1 jobs        the index: the ids looked at (ranks, or scores around the queue heads)
      2 blocked     asked with ZMSCORE, as is each place below
      3 delayed
      4 leases
      5 suspended
      6 succeeded
      7 dead
      8 cancelled
      9 quarantine
      10 vanished
ARGV  3 mode: 'ids' | 'heads' | 'rank'
      ids:   4 n, 5… n job ids, then the agents
      heads: 4 ids per queue, 5… the agents
      rank:  4 start rank (0 = the newest job), 5 window size, 6… the agents
      (at most 5,000 ids per call: Lua's unpack limit is 8,000)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua): q:<agent> of each
agent given (ZRANGE, ZCARD, ZMSCORE with try: a foreign type holds nothing), job:<id> of each id
found in no place (HMGET with try: a foreign type reads as state 'foreign').
Returns {ids looked at, {job id, state ('' when the record is missing, 'foreign' when its key
holds another type), agent, …}}.
Events: none (no writes).
]]
local mode = ARGV[3]
local ids, first_agent = {}, 0
if mode == 'ids' then
  local n = tonumber(ARGV[4])
  for i = 5, 4 + n do ids[#ids + 1] = ARGV[i] end
  first_agent = 5 + n
elseif mode == 'heads' then
  local per, seen = tonumber(ARGV[4]), {}
  first_agent = 5
  for i = 5, #ARGV do
    local head = try('ZRANGE', qkey(ARGV[i]), 0, 0)
    local created = head ~= FOREIGN and head[1] and redis.call('ZSCORE', K.jobs, head[1])
    if created then
      for _, id in ipairs(redis.call('ZREVRANGEBYSCORE', K.jobs, created, '-inf', 'LIMIT', 0, per)) do
        if not seen[id] then seen[id] = true; ids[#ids + 1] = id end
      end
    end
  end
else
  local start, size = tonumber(ARGV[4]), math.min(tonumber(ARGV[5]), 5000)
  ids = redis.call('ZREVRANGE', K.jobs, start, start + size - 1)
  first_agent = 6
end
local places = {}
for _, key in ipairs({ K.blocked, K.delayed, K.leases, K.suspended, K.succeeded, K.dead,
  K.cancelled, K.quarantine, K.vanished }) do
  places[#places + 1] = { key, redis.call('ZCARD', key) }
end
for i = first_agent, #ARGV do
  local q = qkey(ARGV[i])
  local n = try('ZCARD', q)
  if n ~= FOREIGN and n > 0 then places[#places + 1] = { q, n } end
end
table.sort(places, function(a, b) return a[2] > b[2] end)
local left = ids
for _, place in ipairs(places) do
  if #left == 0 then break end
  if place[2] > 0 then
    local scores = redis.call('ZMSCORE', place[1], unpack(left))
    local still = {}
    for k, id in ipairs(left) do
      if not scores[k] then still[#still + 1] = id end
    end
    left = still
  end
end
local out = {}
for _, id in ipairs(left) do
  local f = try('HMGET', jkey(id), 'state', 'agent')
  if f == FOREIGN then f = { 'foreign' } end
  out[#out + 1] = id
  out[#out + 1] = f[1] or ''
  out[#out + 1] = f[2] or ''
end
return { #ids, out }
