--[[ trim_events: with an archive attached, clients add events without trimming; the archiver
trims here what it has archived, never an entry its consumer group still holds unacknowledged.

KEYS  1 events      trimmed below the bound
ARGV  3 consumer group  4 bound: the caller archived every entry before this id (and wants the
      newest HIVEQ_EVENTS_MAXLEN kept, so it passes the lower of the two)
Derived keys: none.
Returns the number of entries deleted: those older than min(bound, the group's oldest pending
entry), with XTRIM MINID ~ (whole radix nodes only, so it may keep a few more).
Events: none.
]]
local function older(a, b) -- is stream id a before b?
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
if redis.call('EXISTS', K.events) == 0 then return 0 end
local bound = ARGV[4]
if not string.match(bound, '^%d+%-%d+$') then return 0 end
local pending = redis.pcall('XPENDING', K.events, ARGV[3])
if pending.err then return 0 end -- no such group: nothing was archived through it
if tonumber(pending[1]) > 0 and older(pending[2], bound) then bound = pending[2] end
return redis.call('XTRIM', K.events, 'MINID', '~', bound)
