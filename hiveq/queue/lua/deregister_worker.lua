--[[ deregister_worker: a worker that stopped cleanly removes its record. It must have released
or finished its leases first; any it still holds are left for reap_expired.

KEYS  1 workers
ARGV  3 worker id  4 reason
Returns {OK}. Events: worker alive -> stopped.
]]
local wid = ARGV[3]
local w = worker_info(wid)
emit({ type = 'worker', worker = wid, host = w.host, pid = w.pid, client = w.client,
  from = 'alive', to = 'stopped', reason = ARGV[4] })
redis.call('ZREM', KEYS[1], wid)
redis.call('DEL', P .. 'worker:' .. wid)
return { OK }
