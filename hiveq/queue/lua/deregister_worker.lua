--[[ deregister_worker: a worker that stopped cleanly removes its record. It must have released
or finished its leases first; any it still holds are left for reap_expired.

FLAGS allow-oom: runs when Redis is full (it lands or hands back work already taken)
KEYS  1 workers     the worker leaves it
      2 events      the worker event
ARGV  3 worker id  4 reason
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  worker:<id>    host/pid/client read with try for the event (foreign: id only), then deleted
                 (DEL works on any type)
  inbox:<id>     its cancel inbox, deleted (DEL works on any type)
Returns {OK}.
Events: worker alive -> stopped.
]]
local wid = ARGV[3]
emit(by_worker({ type = 'worker', from = 'alive', to = 'stopped', reason = ARGV[4] }, wid))
redis.call('ZREM', K.workers, wid)
redis.call('DEL', wkey(wid), inboxkey(wid))
return { OK }
