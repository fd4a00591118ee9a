--[=[ enqueue: persist whole tasks and their jobs; ready jobs become runnable, the rest blocked.

FLAGS none: refused as a whole when Redis is full (new work is not accepted, nothing written)
KEYS  1 seq         the enqueue sequence, one number per job (FIFO inside a priority)
      2 jobs        every job enters the job index, score = created ms
      3 tasks       every task enters the task index, score = sequence of its first job
      4 blocked*    a job with dependencies enters it, score = created ms (*: checked, before
                    the first write, only when the call has such a job)
      5 agents      every agent enqueued to is added
      6 stats       counter `enqueued`
      7 events      one entry per group of tasks (below)
      8 delayed*    a ready job of a task whose start (run_at / delay) is ahead enters it,
                    score = that start ms (*: checked only when the call has such a task)
ARGV  3 tasks JSON, positional (arrays decode faster than objects), defaults left out:
        [[task id, description, priority, planner, [[subtask id, agent, input, opts?], …],
          extra?], …]
        opts (only when a value differs from the default): {prio (default: the task's
        priority), max_attempts, timeout (defaults: ARGV 7, 8), title, deps, dependents, ndeps,
        limits (limit keys, space-separated), est (estimate_tokens)}
        extra (only when one is set): {metadata, idem, plan_note, run_at (ms), delay (ms)}:
        run_at or NOW + delay is the task's start; while it is ahead, its ready jobs are
        delayed (state `delayed`, `due` = the start) and promote_due makes them waiting then
        metadata, input, deps and dependents are JSON text, stored as is.
      4 idempotency-key TTL in seconds
      5 who enqueued (client name / host:pid), recorded in the task hash and its enqueue event
      6 max deliveries, 7 default max attempts, 8 default timeout (s): the same for every job
      9… agents whose queue keys must be checked too (those of a many-task call's other chunks)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  q:<agent>      every agent's queue (this chunk's and ARGV 9…) type-checked before the first
                 write; a ready job enters it, score = priority * 2^42 + sequence
  idem:<key>     every idempotency key type-checked before the first write; SET NX
  wake:<agent>   marked for each agent given a ready job (try: a foreign one is reported, not
                 woken; the job is in its queue)
  lim:c:<key>    a job with limits: its first key is its fairness flow; the flow's counters hash
                 is type-checked before the first write; field `tag` = the flow's last sequence
  q:<agent>      (again) for such a job, its queue's head is read (ZRANGE, after the check above)
  job:<id>, task:<id>  created; not type-checked: their names hold a fresh random task id (64
                 bits from the client's OS random source), so no other writer holds them
Returns a flat array: task_id, code (OK, or DUPLICATE with the id of the earlier task).
Errors with WRONGTYPE, before writing anything, when a queue or idempotency key holds a
foreign type.
Events: one stream entry per group of up to 64 tasks of the call:
  {"type": "enqueued", "reason": "enqueued by …", "ts": …,
   "tasks": [[task id, [[job id, "waiting" | "blocked" | "delayed"], …]], …]}
(readers expand it into each task's task -> queued event and one job event per job, all with
the entry's id). The task hash records that id (`eid`) and who enqueued it (`by`); a job's
custody log starts empty, readers put this enqueue event first. Fewer entries and no log
writes at enqueue keep its Redis time per task low.
Counters (attempts, failures, succeeded, …) start absent, meaning 0: HINCRBY creates them.
Fairness (docs/limits.md): a job with limit keys is scored by its flow's sequence, not the
global one: tag = max(the sequence part of its queue's head (or the global sequence when the
queue is empty), the flow's last tag) + 1. A burst of one flow is so spread one job a round, and
another flow's new job lands near the head; FIFO holds within a flow and among jobs without limits.
]=]
local tasks = cjson.decode(ARGV[3])
local idem_ttl = tonumber(ARGV[4])
local who = ARGV[5]
local by = ',"reason":' .. J('enqueued by ' .. who)
local max_deliveries, max_attempts, timeout = ARGV[6], ARGV[7], ARGV[8]
local NONE = {}
local function idem_of(t) return (t[6] or NONE).idem end
-- The task's start when it is ahead (its ready jobs are then delayed), else nil.
local function start_of(t)
  local x = t[6]
  if not x then return nil end
  local start = x.run_at or (x.delay and NOW + x.delay)
  if start and start > NOW then return start end
  return nil
end
local njobs = 0
local agents = {}
for _, t in ipairs(tasks) do
  njobs = njobs + #t[5]
  for _, j in ipairs(t[5]) do
    agents[j[2]] = true
    if j[4] and j[4].ndeps then check_later('blocked') end
  end
  if idem_of(t) then check_type(ikey(idem_of(t)), 'string') end
  if start_of(t) then check_later('delayed') end
end
-- Check every queue key (and above, idempotency key) before writing anything, so a foreign key
-- fails the call cleanly.
local agent_list = {}
for agent, _ in pairs(agents) do
  check_type(qkey(agent), 'zset')
  agent_list[#agent_list + 1] = agent
end
for i = 9, #ARGV do check_type(qkey(ARGV[i]), 'zset') end
local flows = {} -- fairness flow -> its last tag (false: not read yet)
for _, t in ipairs(tasks) do
  for _, j in ipairs(t[5]) do
    local lim = j[4] and j[4].limits
    if lim then
      local flow = string.match(lim, '^%S+')
      if flows[flow] == nil then
        check_type(limkey(flow), 'hash')
        flows[flow] = false
      end
    end
  end
end
local enqueued = 0
local seq = 0
if njobs > 0 then seq = redis.call('INCRBY', K.seq, njobs) - njobs end
local out = {}
local seq_start = seq
local vclocks = {}
-- The virtual time of an agent's queue: the sequence part of its head, or the global sequence.
local function vclock(agent)
  local v = vclocks[agent]
  if v == nil then
    local h = redis.call('ZRANGE', qkey(agent), 0, 0, 'WITHSCORES')
    v = h[2] and (tonumber(h[2]) % PRIO_SHIFT) or seq_start
    vclocks[agent] = v
  end
  return v
end
-- The position of a job with limits within its priority: one round after its flow's last job.
local function flow_tag(limits, agent)
  local flow = string.match(limits, '^%S+')
  local last = flows[flow]
  if last == false then last = tonumber(redis.call('HGET', limkey(flow), 'tag')) or 0 end
  local tag = math.max(vclock(agent), last) + 1
  flows[flow] = tag
  return tag
end

-- Write one task (not a duplicate) whose enqueue event is stream entry `eid`.
local function write_task(t, eid)
  local tid, jobs = t[1], t[5]
  local start = start_of(t)
  local jobs_json
  if #jobs == 1 and not jobs[1][4] and not start then
    -- the common one-job task with every default and no dependencies: no tables to build
    local j = jobs[1]
    seq = seq + 1
    local id = tid .. '.' .. j[1]
    local score = t[3] * PRIO_SHIFT + seq
    redis.call('HSET', jkey(id), 'id', id, 'task', tid, 'sub', j[1], 'agent', j[2],
      'state', 'waiting', 'prio', t[3], 'score', score, 'input', j[3], 'max_attempts', max_attempts,
      'max_deliveries', max_deliveries, 'timeout', timeout, 'created', NOW)
    zlater('ZADD', K.jobs, NOW, id)
    zlater('ZADD', qkey(j[2]), score, id)
    wake(j[2])
    jobs_json = '[' .. J(id) .. ']'
  else
    local ids = {}
    for _, j in ipairs(jobs) do
      local o = j[4] or NONE
      seq = seq + 1
      local id = tid .. '.' .. j[1]
      local prio = o.prio or t[3]
      local score = prio * PRIO_SHIFT + (o.limits and flow_tag(o.limits, j[2]) or seq)
      local state = o.ndeps and 'blocked' or (start and 'delayed' or 'waiting')
      local jf = { 'id', id, 'task', tid, 'sub', j[1], 'agent', j[2], 'state', state, 'prio', prio,
        'score', score, 'input', j[3], 'max_attempts', o.max_attempts or max_attempts,
        'max_deliveries', max_deliveries, 'timeout', o.timeout or timeout, 'created', NOW }
      if o.title then jf[#jf + 1] = 'title'; jf[#jf + 1] = o.title end
      if o.limits then jf[#jf + 1] = 'limits'; jf[#jf + 1] = o.limits end
      if o.est then jf[#jf + 1] = 'est'; jf[#jf + 1] = o.est end
      if o.deps then
        jf[#jf + 1] = 'deps'; jf[#jf + 1] = o.deps; jf[#jf + 1] = 'pending'; jf[#jf + 1] = o.ndeps
      end
      if o.dependents then jf[#jf + 1] = 'dependents'; jf[#jf + 1] = o.dependents end
      if state == 'delayed' then jf[#jf + 1] = 'due'; jf[#jf + 1] = start end
      redis.call('HSET', jkey(id), unpack(jf))
      zlater('ZADD', K.jobs, NOW, id)
      if state == 'waiting' then
        zlater('ZADD', qkey(j[2]), score, id)
        wake(j[2])
      elseif state == 'delayed' then
        zlater('ZADD', K.delayed, start, id)
      else
        zlater('ZADD', K.blocked, NOW, id)
      end
      ids[#ids + 1] = J(id)
    end
    jobs_json = '[' .. table.concat(ids, ',') .. ']'
  end
  local tk = tkey(tid)
  redis.call('HSET', tk, 'id', tid, 'description', t[2], 'priority', t[3], 'planner', t[4],
    'jobs', jobs_json, 'total', #jobs, 'status', 'queued', 'created', NOW, 'eid', eid, 'by', who)
  local x = t[6]
  if x then -- the optional fields, when any is set
    local tf = {}
    if x.metadata then tf[#tf + 1] = 'metadata'; tf[#tf + 1] = x.metadata end
    if x.idem then tf[#tf + 1] = 'idem'; tf[#tf + 1] = x.idem end
    if x.plan_note then tf[#tf + 1] = 'plan_note'; tf[#tf + 1] = x.plan_note end
    if x.run_at or x.delay then tf[#tf + 1] = 'run_at'; tf[#tf + 1] = x.run_at or NOW + x.delay end
    redis.call('HSET', tk, unpack(tf))
  end
  zlater('ZADD', K.tasks, seq - #jobs + 1, tid) -- enqueue order, also within one millisecond
  enqueued = enqueued + #jobs
end

-- Tasks go in groups of up to GROUP: first the group's one stream entry (its id is each task's
-- `eid`), then the records.
local GROUP = 64
for first = 1, #tasks, GROUP do
  local group, parts = {}, {}
  for n = first, math.min(first + GROUP - 1, #tasks) do
    local t = tasks[n]
    local tid = t[1]
    local dup = nil
    if idem_of(t) then
      local ik = ikey(idem_of(t))
      if not redis.call('SET', ik, tid, 'NX', 'EX', idem_ttl) then dup = redis.call('GET', ik) end
    end
    if dup then
      out[2 * n - 1], out[2 * n] = dup, DUPLICATE
    else
      local states = {}
      local ready = start_of(t) and ',"delayed"]' or ',"waiting"]'
      for _, j in ipairs(t[5]) do
        local state = (j[4] and j[4].ndeps) and ',"blocked"]' or ready
        states[#states + 1] = '[' .. J(tid .. '.' .. j[1]) .. state
      end
      parts[#parts + 1] = '[' .. J(tid) .. ',[' .. table.concat(states, ',') .. ']]'
      group[#group + 1] = n
      out[2 * n - 1], out[2 * n] = tid, OK
    end
  end
  if #group > 0 then
    local eid = redis.call('XADD', K.events, 'MAXLEN', '~', EV_MAXLEN, '*', 'e',
      '{"type":"enqueued"' .. by .. ',"tasks":[' .. table.concat(parts, ',') .. '],"ts":' .. NOW_TEXT ..
      '}')
    for _, n in ipairs(group) do write_task(tasks[n], eid) end
  end
end
zflush()
for flow, tag in pairs(flows) do
  if tag then redis.call('HSET', limkey(flow), 'tag', tag) end
end
if enqueued > 0 then
  redis.call('SADD', K.agents, unpack(agent_list))
  redis.call('HINCRBY', K.stats, 'enqueued', enqueued)
end
return out
