--[[ complete: record results of leased jobs (a succeeded job's progress is 1, whatever it last
reported), release dependents whose dependencies are all done, and update each task's progress
and status — all in one step.

FLAGS allow-oom: runs when Redis is full (it lands or hands back work already taken)
KEYS  1 leases      the completed jobs leave it
      2 succeeded   ... and enter it, score = finished ms
      3 stats       counter `succeeded`
      4 blocked*    a released dependent leaves it
      5 quarantine* a dependent released into a foreign-typed queue key goes here instead
      6 cancelled*  ... and the blocked jobs downstream of it (cascade)
      7 finished*   a task that finishes without dead letters enters it (retention clock)
      8 events      the events below
      9 suspended*  a suspended parent whose children have now all finished leaves it (resumed)
      (*: checked only when the jobs and tasks read before the first write show the call may
      write it: blocked, quarantine, cancelled when a completed job has dependents; finished
      then too, or when a task may finish; all five when a completed job has a parent)
ARGV  3 worker id  4… quadruples: job id, lease token, the claim's attempt (0: unknown; named when
      the result is refused as late), result JSON
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       each job's record, read with try (foreign: NOT_FOUND, anomaly) and written
                 only after that read; a dependent's `pending` counted down with try (foreign:
                 not released, anomaly)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  task:<id>      read with try before the first write (foreign: not updated, anomaly); the
                 status derived from that read and this call's count, unless released dependents
                 changed more (then read again)
  q:<agent>      a released dependent's queue: TYPE first, a foreign one quarantines it
  wake:<agent>   marked for a released dependent (try: a foreign one is reported, not woken)
  worker:<id>    the worker's host/pid/client, read with try (foreign: id only)
  job:<id>:steps a resumed parent's wait step, written with try (foreign: not stored, anomaly;
                 the parent then waits again and finds its children finished)
  lim:h|c|w:<key> for each of the job's limit keys (release_limits in _lib.lua): its slot
                 (lim:h:<key>), token reservation (lim:c:<key>), agents waiting (lim:w:<key>:
                 woken, wake:<agent>), each with try (foreign: skipped, anomaly)
Returns one code per job: OK, NOT_FOUND, or STALE (lease lost: expired, reclaimed, cancelled).
A STALE result whose token is not the one this job last finished with (`last_token`: a resend of
a result already recorded) is another run's late result: a `late` custody event says so.
Events: job active -> succeeded; late (a result refused for a stale token: "late result refused
from worker W, attempt N"); dependents blocked -> waiting | quarantined (foreign queue key),
and their blocked dependents -> cancelled; task status changes; a suspended parent whose
children have all finished -> waiting | quarantined (foreign queue key); anomaly (a foreign
derived key).
]]
local wid = ARGV[3]
-- Read the jobs and their tasks before writing anything: they decide which keys marked * this
-- call writes, and those are checked first.
local recs, done_of, seen, reread = {}, {}, {}, {}
for i = 4, #ARGV, 4 do
  local id = ARGV[i]
  local f = try('HMGET', jkey(id), 'state', 'token', 'task', 'dependents', 'attempts', 'parent',
    'worker', 'last_token', 'lkeys')
  recs[i] = f
  if f ~= FOREIGN and f[1] == 'active' and f[2] == ARGV[i + 1] and not seen[id] then
    seen[id] = true
    done_of[f[3]] = (done_of[f[3]] or 0) + 1
    if f[4] and f[4] ~= '' and f[4] ~= '[]' then
      check_later('blocked')
      check_later('quarantine')
      check_later('cancelled')
      check_later('finished')
      reread[f[3]] = true -- released dependents may change more of the task: read it again
    end
    if f[6] and f[6] ~= '' then -- its parent may resume (and, on a foreign queue key, be quarantined)
      check_later_all()
      reread[f[3]] = true
    end
  end
end
local known = {}
for tid, done in pairs(done_of) do
  if not reread[tid] then
    local t = try('HMGET', tkey(tid), unpack(TASK_FIELDS))
    if t ~= FOREIGN and t[1] then
      t[3] = (tonumber(t[3]) or 0) + done
      local settled = t[3] + (tonumber(t[4]) or 0) + (tonumber(t[5]) or 0)
      if settled >= tonumber(t[2]) or TASK_TERMINAL[t[1]] then check_later('finished') end
      known[tid] = t
    end
  end
end

local out = {}
local dirty = {}
local n = 0
local completed = {}
for i = 4, #ARGV, 4 do
  local id, token, attempt, result = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local jk = jkey(id)
  local f = recs[i]
  if f == FOREIGN then
    report_foreign(jk, 'hash', 'its result was not recorded (NOT_FOUND)', id)
    out[#out + 1] = NOT_FOUND
  elseif not f[1] then
    out[#out + 1] = NOT_FOUND
  elseif f[1] ~= 'active' or f[2] ~= token or completed[id] then
    out[#out + 1] = STALE -- (the same job twice in one call: the second is stale)
    if f[8] ~= token and not completed[id] then -- not our own resend: another run's late result
      late_result(id, f[3], wid, 'result', f[1], f[7], attempt)
    end
  else
    local tid = f[3]
    completed[id] = true
    redis.call('HSET', jk, 'state', 'succeeded', 'result', result, 'finished', NOW, 'progress', 1,
      'last_token', token)
    redis.call('HDEL', jk, 'token', 'deadline')
    zlater('ZREM', K.leases, id)
    if f[9] then release_limits(id) end -- it holds a claim under limit keys
    zlater('ZADD', K.succeeded, NOW, id)
    emit_job(id, tid, 'active', 'succeeded', worker_tail(wid) .. ',"attempt":' .. (f[5] or '0'))
    dirty[tid] = (dirty[tid] or 0) + 1
    child_finished(f[6])
    for _, d in ipairs(id_list(f[4])) do
      local left = try('HINCRBY', jkey(d), 'pending', -1)
      if left == FOREIGN then
        report_foreign(jkey(d), 'hash', 'this dependent of ' .. id .. ' was not released', d, tid)
      elseif left <= 0 and redis.call('HGET', jkey(d), 'state') == 'blocked' then
        redis.call('ZREM', K.blocked, d)
        to_waiting(d, 'blocked', 'dependencies succeeded')
      end
    end
    n = n + 1
    out[#out + 1] = OK
  end
end
zflush()
for tid, done in pairs(dirty) do
  if task_add(tid, 'succeeded', done) then refresh_task(tid, known[tid]) end
end
if n > 0 then redis.call('HINCRBY', K.stats, 'succeeded', n) end
resume_parents()
return out
