--[[ reap_expired: leases whose deadline passed (their worker stopped heartbeating) go back to
the queue with the delivery counted, or to the dead-letter set after max_deliveries, so a job
that kills its worker every time cannot loop forever. Also drops worker records (and their
cancel inboxes) whose heartbeat is older than the stale limit.

FLAGS allow-oom: runs when Redis is full (it lands or hands back work already taken)
KEYS  1 leases      expired leases leave it
      2 workers     stale workers leave it
      3 stats*      counters `reaped`, `dead`
      4 dead*       a job past max_deliveries enters it
      5 quarantine* a job whose queue key holds a foreign type goes here instead of waiting
      6 blocked*    blocked dependents of a dead or quarantined job leave it ...
      7 cancelled*  ... and are cancelled (cascade)
      8 finished*   touched by refresh_task only if a task was terminal (not in practice)
      9 events*     the events below
     10 suspended*  a parent whose children have all finished leaves it (a child dead-lettered)
     11 clock       ticked (tick_clock in _lib.lua); nothing is reaped until `grace ms` have
                    passed since workers last reached Redis after a gap (an outage, a freeze)
      (*: checked only when a lease expired (all of them) or a worker is stale (events), before
      the first write: an idle call checks leases and workers)
ARGV  3 max leases to reap  4 worker stale ms  5 gap ms  6 grace ms
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       each expired job's record, read with try (foreign: lease dropped, anomaly)
                 and written only after that read; dependents' records read with try
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  q:<agent>      a requeued job's queue: TYPE first, a foreign one quarantines the job
  wake:<agent>   marked for each job requeued (try: a foreign one is reported, not woken)
  task:<id>      counters and status, each first command with try (foreign: not updated,
                 anomaly)
  worker:<id>    the job's last worker's host/pid/client, read with try (foreign: id only);
                 a stale worker's record is deleted (DEL works on any type)
  inbox:<id>     a stale worker's cancel inbox, deleted (DEL works on any type)
  job:<id>:steps a resumed parent's wait step, written with try (foreign: not stored, anomaly;
                 the parent then waits again and finds its children finished)
  lim:h|c|w:<key> for each of the job's limit keys (release_limits in _lib.lua): its slot
                 (lim:h:<key>), token reservation (lim:c:<key>), agents waiting (lim:w:<key>:
                 woken, wake:<agent>), each with try (foreign: skipped, anomaly)
Returns {requeued, dead-lettered, workers lost, paused ms (> 0: within the grace after a gap,
nothing reaped; the ms left)}.
Events: job active -> waiting | dead | quarantined (foreign queue key), reason names the
worker; blocked dependents -> cancelled; task status changes; worker alive -> lost; anomaly (a
lease of a job in another state, or with a foreign record: the lease is dropped); a suspended
parent whose children have all finished -> waiting | quarantined (foreign queue key).
]]
local limit, stale = tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', K.leases, '-inf', NOW, 'LIMIT', 0, limit)
local lost = redis.call('ZRANGEBYSCORE', K.workers, '-inf', NOW - stale, 'LIMIT', 0, 100)
if #ids > 0 then check_later_all() elseif #lost > 0 then check_later('events') end
local up = tick_clock(tonumber(ARGV[5]))
local grace = tonumber(ARGV[6])
if NOW - up < grace then return { 0, 0, 0, grace - (NOW - up) } end
local requeued, dead = 0, 0
local dirty = {}
for _, id in ipairs(ids) do
  local f = try('HMGET', jkey(id), 'state', 'attempts', 'max_deliveries', 'worker', 'task')
  redis.call('ZREM', K.leases, id)
  if f == FOREIGN then
    report_foreign(jkey(id), 'hash', 'its expired lease was dropped', id)
  elseif f[1] ~= 'active' then
    emit_custody({ type = 'anomaly', job = id, task = f[5], from = f[1], to = f[1],
      reason = 'lease entry for a job in state ' .. tostring(f[1]) .. '; lease dropped' })
  elseif tonumber(f[2]) >= tonumber(f[3]) then
    release_limits(id)
    to_dead(id, 'active', f[5], 'delivered ' .. f[2] .. ' times and the lease expired each '
      .. 'time (worker ' .. f[4] .. ' stopped heartbeating); poison job?', f[4])
    dirty[f[5]] = true
    dead = dead + 1
  else
    release_limits(id)
    local ev = by_worker({ attempt = tonumber(f[2]) }, f[4])
    to_waiting(id, 'active', 'lease expired: worker ' .. f[4] .. ' missed its heartbeats', ev)
    requeued = requeued + 1
  end
end
for tid, _ in pairs(dirty) do refresh_task(tid) end
resume_parents()
for _, wid in ipairs(lost) do
  emit(by_worker({ type = 'worker', from = 'alive', to = 'lost',
    reason = 'no heartbeat for ' .. stale .. ' ms' }, wid))
  redis.call('ZREM', K.workers, wid)
  redis.call('DEL', wkey(wid), inboxkey(wid))
end
if requeued + dead > 0 then redis.call('HINCRBY', K.stats, 'reaped', requeued + dead) end
return { requeued, dead, #lost, 0 }
