--[[ spawn: a running durable agent adds subtasks to its task's graph, all at once or none. They
may depend on each other and on subtasks of the task that already succeeded; the graph stays
acyclic (a new subtask cannot be a dependency of an existing one, and the client checked the new
ones among themselves), and the task's subtask limit holds. The ids are stored as the spawn's
step in the same step, so a redelivered parent that spawns again gets the same ids back and
creates nothing.

FLAGS none: refused as a whole when Redis is full (new work is not accepted, nothing written)
KEYS  1 seq         the enqueue sequence (FIFO within a priority), advanced by the new jobs
      2 jobs        the new jobs enter the job index
      3 blocked     a new job that depends on a sibling enters it
      4 agents      the new jobs' agents
      5 stats       counter `enqueued`
      6 finished    touched by refresh_task only if the task was terminal (never: its parent runs)
      7 events      the events below
ARGV  3 worker id  4 parent job id  5 lease token  6 the spawn's step key
      7 jobs JSON, positional as in enqueue: [[subtask id, agent, input JSON text, opts?], …] with
        opts {prio, max_attempts, timeout, title, deps, dependents} (deps: JSON text of job ids,
        new or succeeded; dependents: JSON text of the new jobs that depend on this one)
      8 max subtasks per task  9 max deliveries  10 default max attempts  11 default timeout s
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       the parent's record (lease check, `prio`, `children`), each new job's (EXISTS:
                 it must not exist) and each dependency's state: all read with plain commands
                 before the first write (a foreign type fails the call cleanly, nothing written)
  job:<id>:steps the parent's stored spawn, read with a plain HGET before the first write; the
                 new ids are stored with try (foreign: not stored, anomaly)
  task:<id>      `jobs` and `total`, read with a plain HMGET before the first write
  q:<agent>      each new waiting job's queue: type-checked before the first write
  wake:<agent>   marked for each new waiting job (try: a foreign one is reported, not woken)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  worker:<id>    the worker's host/pid/client, read with try (foreign: id only)
Returns {code, ids JSON | why}: OK with the new job ids (or the stored ones); NOT_FOUND; STALE;
WRONG_STATE with why (an id taken, a dependency not succeeded, the subtask limit).
Events: job -> waiting | blocked for each new job (reason: spawned by the parent; worker), in
its custody log; step on the parent (data {name, children}); task status.
]]
local wid, pid, token, key = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local jobs = cjson.decode(ARGV[7])
local most, deliveries, attempts, timeout = tonumber(ARGV[8]), ARGV[9], ARGV[10], ARGV[11]
local f = redis.call('HMGET', jkey(pid), 'state', 'token', 'task', 'prio', 'children')
if not f[1] then return { NOT_FOUND, '' } end
if f[1] ~= 'active' or f[2] ~= token then return { STALE, '' } end
local stored = redis.call('HGET', stkey(pid), key)
if stored then return { OK, stored } end
local tid = f[3]
local t = redis.call('HMGET', tkey(tid), 'jobs', 'total')
local total = tonumber(t[2]) or 0
if total + #jobs > most then
  return { WRONG_STATE, 'the task would have ' .. (total + #jobs) .. ' subtasks, over the limit of ' ..
    most .. ' (HIVEQ_MAX_SUBTASKS)' }
end
-- Every check before the first write.
local NONE = {}
local new = {}
for _, j in ipairs(jobs) do
  local cid = tid .. '.' .. j[1]
  if redis.call('EXISTS', jkey(cid)) == 1 then
    return { WRONG_STATE, 'subtask ' .. j[1] .. ' already exists in task ' .. tid ..
      '; give each spawned subtask a new id' }
  end
  new[cid] = true
  check_type(qkey(j[2]), 'zset')
end
local pending = {}
for _, j in ipairs(jobs) do
  local n = 0
  for _, d in ipairs(id_list((j[4] or NONE).deps)) do
    if new[d] then
      n = n + 1
    else
      local s = redis.call('HGET', jkey(d), 'state')
      if s ~= 'succeeded' then
        return { WRONG_STATE, 'subtask ' .. j[1] .. ' depends on ' .. d .. ', which is ' ..
          (s or 'not a subtask of this task') .. '; a spawned subtask may depend only on subtasks ' ..
          'spawned with it or on subtasks that already succeeded' }
      end
    end
  end
  pending[j[1]] = n
end
local seq = redis.call('INCRBY', K.seq, #jobs) - #jobs
local ids = {}
local tail = worker_tail(wid)
for _, j in ipairs(jobs) do
  local o = j[4] or NONE
  seq = seq + 1
  local cid = tid .. '.' .. j[1]
  local prio = o.prio or tonumber(f[4])
  local score = prio * PRIO_SHIFT + seq
  local n = pending[j[1]]
  local state = n > 0 and 'blocked' or 'waiting'
  local jf = { 'id', cid, 'task', tid, 'sub', j[1], 'agent', j[2], 'state', state, 'prio', prio,
    'score', score, 'input', j[3], 'max_attempts', o.max_attempts or attempts,
    'max_deliveries', deliveries, 'timeout', o.timeout or timeout, 'created', NOW, 'parent', pid }
  if o.title then jf[#jf + 1] = 'title'; jf[#jf + 1] = o.title end
  if o.deps then jf[#jf + 1] = 'deps'; jf[#jf + 1] = o.deps end
  if n > 0 then jf[#jf + 1] = 'pending'; jf[#jf + 1] = n end
  if o.dependents then jf[#jf + 1] = 'dependents'; jf[#jf + 1] = o.dependents end
  redis.call('HSET', jkey(cid), unpack(jf))
  redis.call('ZADD', K.jobs, NOW, cid)
  if state == 'waiting' then
    redis.call('ZADD', qkey(j[2]), score, cid)
    wake(j[2])
  else
    redis.call('ZADD', K.blocked, NOW, cid)
  end
  emit_job(cid, tid, '', state, tail .. ',"reason":' .. J('spawned by ' .. pid))
  ids[#ids + 1] = cid
  redis.call('SADD', K.agents, j[2])
end
local all, mine = id_list(t[1]), id_list(f[5])
for _, cid in ipairs(ids) do
  all[#all + 1] = cid
  mine[#mine + 1] = cid
end
local ids_json = cjson.encode(ids)
redis.call('HSET', tkey(tid), 'jobs', cjson.encode(all), 'total', total + #ids)
redis.call('HSET', jkey(pid), 'children', cjson.encode(mine))
save_step(pid, key, ids_json)
emit_custody(by_worker({ type = 'step', job = pid, task = tid, reason = key,
  data = { name = key, children = ids } }, wid))
redis.call('HINCRBY', K.stats, 'enqueued', #ids)
refresh_task(tid)
return { OK, ids_json }
