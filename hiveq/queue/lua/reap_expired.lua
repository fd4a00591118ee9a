--[[ reap_expired: leases whose deadline passed (their worker stopped heartbeating) go back to
the queue with the delivery counted, or to the dead-letter set after max_deliveries, so a job
that kills its worker every time cannot loop forever. Also drops worker records whose
heartbeat is older than the stale limit.

KEYS  1 leases  2 workers
ARGV  3 max leases to reap  4 worker stale ms
Returns {requeued, dead-lettered, workers lost}.
Events: job active -> waiting | dead (reason names the worker); worker lost.
]]
local limit, stale = tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', NOW, 'LIMIT', 0, limit)
local requeued, dead = 0, 0
local dirty = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', jkey(id), 'state', 'attempts', 'max_deliveries', 'worker',
    'task', 'agent')
  redis.call('ZREM', KEYS[1], id)
  if f[1] ~= 'active' then
    emit({ type = 'anomaly', job = id, task = f[5], from = f[1], to = f[1],
      reason = 'lease entry for a job in state ' .. tostring(f[1]) .. '; lease dropped' })
  elseif tonumber(f[2]) >= tonumber(f[3]) then
    to_dead(id, 'active', f[5], f[6], 'delivered ' .. f[2] .. ' times and the lease expired each '
      .. 'time (worker ' .. f[4] .. ' stopped heartbeating); poison job?', f[4])
    dirty[f[5]] = true
    dead = dead + 1
  else
    to_waiting(id, 'active', 'lease expired: worker ' .. f[4] .. ' missed its heartbeats',
      { worker = f[4], attempt = tonumber(f[2]) })
    requeued = requeued + 1
  end
end
for tid, _ in pairs(dirty) do refresh_task(tid) end
local lost = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', NOW - stale, 'LIMIT', 0, 100)
for _, wid in ipairs(lost) do
  local w = worker_info(wid)
  emit({ type = 'worker', worker = wid, host = w.host, pid = w.pid, client = w.client,
    from = 'alive', to = 'lost', reason = 'no heartbeat for ' .. stale .. ' ms' })
  redis.call('ZREM', KEYS[2], wid)
  redis.call('DEL', P .. 'worker:' .. wid)
end
if requeued + dead > 0 then redis.call('HINCRBY', P .. 'stats', 'reaped', requeued + dead) end
return { requeued, dead, #lost }
