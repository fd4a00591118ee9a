--[[ complete: record results of leased jobs (a succeeded job's progress is 1, whatever it last
reported), release dependents whose dependencies are all done, and update each task's progress
and status — all in one step.

KEYS  1 leases  2 succeeded  3 stats
ARGV  3 worker id  4… triples: job id, lease token, result JSON
Returns one code per job: OK, NOT_FOUND, or STALE (lease lost: expired, reclaimed, cancelled).
Events: job active -> succeeded; dependents blocked -> waiting; task status changes.
]]
local wid = ARGV[3]
local out = {}
local dirty = {}
local n = 0
for i = 4, #ARGV, 3 do
  local id, token, result = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'state', 'token', 'task', 'dependents', 'attempts')
  if not f[1] then
    out[#out + 1] = NOT_FOUND
  elseif f[1] ~= 'active' or f[2] ~= token then
    out[#out + 1] = STALE
  else
    local tid = f[3]
    redis.call('HSET', jk, 'state', 'succeeded', 'result', result, 'finished', NOW, 'progress', 1)
    redis.call('HDEL', jk, 'token', 'deadline')
    zlater('ZREM', KEYS[1], id)
    zlater('ZADD', KEYS[2], NOW, id)
    emit_job(id, tid, 'active', 'succeeded', worker_tail(wid) .. ',"attempt":' .. (f[5] or '0'))
    dirty[tid] = (dirty[tid] or 0) + 1
    for _, d in ipairs(id_list(f[4])) do
      local left = redis.call('HINCRBY', jkey(d), 'pending', -1)
      if left <= 0 and redis.call('HGET', jkey(d), 'state') == 'blocked' then
        redis.call('ZREM', P .. 'blocked', d)
        to_waiting(d, 'blocked', 'dependencies succeeded')
      end
    end
    n = n + 1
    out[#out + 1] = OK
  end
end
zflush()
for tid, done in pairs(dirty) do
  redis.call('HINCRBY', tkey(tid), 'succeeded', done)
  refresh_task(tid)
end
if n > 0 then redis.call('HINCRBY', KEYS[3], 'succeeded', n) end
return out
