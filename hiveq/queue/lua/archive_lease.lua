--[[ archive_lease: take, keep or give up the one archiver lease of a namespace; while an
archiver holds it, the namespace's meta says an archive is attached (`meta.archive`), which
makes every client stop trimming the event stream (broker.py) and expire_finished wait for the
archive. `detach` is the operator's way back to a namespace without an archive.

KEYS  1 archiver    the holder's id, with a TTL
      2 meta        `archive` (what the archive is) and `archive_seen` (ms) while it is held
ARGV  3 holder id  4 lease ms  5 mode: take | keep | drop | detach  6 what the archive is (for
      meta.archive, e.g. "sqlite" or "postgresql"; never a URL, which may hold a password)
Derived keys: none.
Returns {held 1/0, the current holder or '', fresh 1/0 (the lease was free before this call)}:
  take    sets the lease when it is free or already ours (then also meta.archive);
  keep    extends it only while it is ours (then also meta.archive);
  drop    deletes it only when it is ours (meta.archive stays: the archive is still attached);
  detach  deletes it when it is free or ours and removes meta.archive.
Events: none.
]]
local holder = redis.call('GET', K.archiver)
local me, ms, mode = ARGV[3], tonumber(ARGV[4]), ARGV[5]
if mode == 'take' or mode == 'keep' then
  if holder == me or (mode == 'take' and not holder) then
    redis.call('SET', K.archiver, me, 'PX', ms)
    redis.call('HSET', K.meta, 'archive', ARGV[6], 'archive_seen', NOW)
    return { 1, me, holder and 0 or 1 }
  end
  return { 0, holder or '' }
end
if mode == 'drop' then
  if holder == me then redis.call('DEL', K.archiver); return { 0, '' } end
  return { 0, holder or '' }
end
if mode == 'detach' then
  if holder and holder ~= me then return { 0, holder } end
  redis.call('DEL', K.archiver)
  redis.call('HDEL', K.meta, 'archive', 'archive_seen')
  return { 0, '' }
end
return redis.error_reply('archive_lease: unknown mode ' .. tostring(mode))
