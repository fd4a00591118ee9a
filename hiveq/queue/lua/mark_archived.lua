--[[ mark_archived: record that the archive holds a task as it was at `snapshot ms` (the Redis
time of the archiver's read, taken in the same MULTI as the records). expire_finished deletes
an archived namespace's finished task only once this mark is later than its finish, so the
archive always holds its final state before Redis lets it go.

KEYS  (none: only task records, derived from the prefix)
ARGV  3 snapshot ms  4… task ids
Returns the number of tasks marked (a task whose record is gone is skipped). No events.
]]
local n = 0
for i = 4, #ARGV do
  local tk = tkey(ARGV[i])
  if redis.call('EXISTS', tk) == 1 then
    redis.call('HSET', tk, 'archived', ARGV[3])
    n = n + 1
  end
end
return n
