--[[ mark_archived: record that the archive holds a task as it was at `snapshot ms` (the Redis
time of the archiver's read). expire_finished deletes an archived namespace's finished task only
once this mark is later than its finish, so the archive always holds its final state before
Redis lets it go.

KEYS  (none)
ARGV  3 snapshot ms  4… task ids
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  task:<id>  `archived` set with try (a missing task is skipped; a foreign type is left alone)
Returns the number of tasks marked.
Events: none.
]]
local n = 0
for i = 4, #ARGV do
  local tk = tkey(ARGV[i])
  if redis.call('EXISTS', tk) == 1 and try('HSET', tk, 'archived', ARGV[3]) ~= FOREIGN then n = n + 1 end
end
return n
