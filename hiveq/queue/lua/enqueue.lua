--[[ enqueue: persist whole tasks and their jobs; ready jobs become runnable, the rest blocked.

KEYS  1 seq  2 jobs  3 tasks  4 blocked  5 agents  6 stats  7 events
ARGV  3 tasks JSON: [{id, description, priority, planner, metadata, idem, plan_note,
                      jobs: [{id, sub, agent, input, deps, dependents, ndeps, prio, max_attempts,
                              max_deliveries, timeout, title}]}]
        (metadata, input, deps and dependents are JSON text, stored as is; no nulls)
      4 idempotency-key TTL in seconds
      5 who enqueued (client name / host:pid), recorded in each job's custody log
Returns a flat array: task_id, code (OK, or DUPLICATE with the id of the earlier task).
Errors with WRONGTYPE, before writing anything, when a queue key holds a foreign type.
Events: task -> queued; each job -> waiting | blocked.
]]
local tasks = cjson.decode(ARGV[3])
local idem_ttl = tonumber(ARGV[4])
local who = ARGV[5]
local njobs = 0
local agents = {}
for _, t in ipairs(tasks) do
  njobs = njobs + #t.jobs
  for _, j in ipairs(t.jobs) do agents[j.agent] = true end
end
-- Check every queue key before writing anything, so a foreign key fails the call cleanly.
local agent_list = {}
for agent, _ in pairs(agents) do
  check_type(P .. 'q:' .. agent, 'zset')
  agent_list[#agent_list + 1] = agent
end
local enqueued = 0
local seq = redis.call('INCRBY', KEYS[1], njobs) - njobs
local out = {}
for _, t in ipairs(tasks) do
  local dup = nil
  if t.idem ~= '' then
    local ik = P .. 'idem:' .. t.idem
    if not redis.call('SET', ik, t.id, 'NX', 'EX', idem_ttl) then dup = redis.call('GET', ik) end
  end
  if dup then
    out[#out + 1] = dup
    out[#out + 1] = DUPLICATE
  else
    local ids = {}
    for i, j in ipairs(t.jobs) do ids[i] = j.id end
    redis.call('HSET', tkey(t.id), 'id', t.id, 'description', t.description,
      'priority', t.priority, 'planner', t.planner, 'metadata', t.metadata,
      'jobs', cjson.encode(ids), 'total', #t.jobs, 'succeeded', 0, 'dead', 0, 'cancelled', 0,
      'discarded', 0, 'started', 0, 'status', 'queued', 'created', NOW,
      'idem', t.idem, 'plan_note', t.plan_note)
    zlater('ZADD', KEYS[3], NOW, t.id)
    emit({ type = 'task', task = t.id, from = '', to = 'queued', data = { total = #t.jobs } })
    for _, j in ipairs(t.jobs) do
      seq = seq + 1
      local score = j.prio * PRIO_SHIFT + seq
      local state = (j.ndeps == 0) and 'waiting' or 'blocked'
      redis.call('HSET', jkey(j.id), 'id', j.id, 'task', t.id, 'sub', j.sub, 'agent', j.agent,
        'state', state, 'prio', j.prio, 'score', score, 'input', j.input,
        'deps', j.deps, 'dependents', j.dependents, 'pending', j.ndeps, 'attempts', 0, 'failures', 0, 'max_attempts', j.max_attempts,
        'max_deliveries', j.max_deliveries, 'timeout', j.timeout, 'title', j.title,
        'created', NOW)
      zlater('ZADD', KEYS[2], NOW, j.id)
      if state == 'waiting' then
        zlater('ZADD', P .. 'q:' .. j.agent, score, j.id)
        wake(j.agent)
      else
        zlater('ZADD', KEYS[4], NOW, j.id)
      end
      emit({ type = 'job', job = j.id, task = t.id, from = '', to = state,
        reason = 'enqueued by ' .. who })
    end
    enqueued = enqueued + #t.jobs
    out[#out + 1] = t.id
    out[#out + 1] = OK
  end
end
zflush()
if enqueued > 0 then
  redis.call('SADD', KEYS[5], unpack(agent_list))
  redis.call('HINCRBY', KEYS[6], 'enqueued', enqueued)
end
return out
