--[[ claim: lease up to N waiting jobs to one worker, strictly by priority across its agents,
FIFO within a priority.

KEYS  1 leases  2 stats
ARGV  3 worker id  4 lease token  5 max jobs  6 lease ms  7… agent names served
Returns an array of JSON objects, one per leased job:
  {id, task, sub, agent, input, prio, attempt, max_attempts, timeout, token, deadline,
   description, metadata, deps: {job_id: result_json}, enq}
A queue member with no job record is quarantined (reason recorded), never handed out or dropped.
Events: job waiting -> active (worker, host, pid, client, attempt); task queued -> running.
]]
local wid, token = ARGV[3], ARGV[4]
local want, lease_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local deadline = NOW + lease_ms
local heads = {}
for i = 7, #ARGV do
  local agent = ARGV[i]
  local r = redis.call('ZRANGE', P .. 'q:' .. agent, 0, want - 1, 'WITHSCORES')
  for k = 1, #r, 2 do heads[#heads + 1] = { tonumber(r[k + 1]), r[k], agent } end
end
table.sort(heads, function(a, b) return a[1] < b[1] end)
local out = {}
local tasks = {}
local touched = {}
for n = 1, math.min(want, #heads) do
  local id, agent = heads[n][2], heads[n][3]
  zlater('ZREM', P .. 'q:' .. agent, id)
  touched[agent] = true
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'state', 'task', 'sub', 'input', 'prio', 'attempts',
    'max_attempts', 'timeout', 'deps', 'created')
  if not f[1] then
    redis.call('HSET', jk, 'id', id, 'state', 'quarantined', 'agent', agent, 'task', '',
      'reason', 'found in queue ' .. P .. 'q:' .. agent .. ' with no job record (written by a foreign client?)')
    redis.call('ZADD', P .. 'quarantine', NOW, id)
    redis.call('ZADD', P .. 'jobs', NOW, id)
    emit({ type = 'job', job = id, from = 'waiting', to = 'quarantined', worker = wid,
      reason = 'no job record' })
  elseif f[1] ~= 'waiting' then
    emit({ type = 'anomaly', job = id, task = f[2], from = f[1], to = f[1], worker = wid,
      reason = 'job in waiting queue has state ' .. f[1] .. '; removed from the queue, record left as is' })
  else
    local tid = f[2]
    local attempt = (tonumber(f[6]) or 0) + 1
    redis.call('HSET', jk, 'state', 'active', 'worker', wid, 'token', token,
      'deadline', deadline, 'attempts', attempt, 'started', NOW)
    zlater('ZADD', KEYS[1], deadline, id)
    local t = tasks[tid]
    if t == nil then
      local tf = redis.call('HMGET', tkey(tid), 'description', 'metadata', 'started')
      t = { desc = tf[1] or '', meta = tf[2] or '{}' }
      if tf[3] ~= '1' then redis.call('HSET', tkey(tid), 'started', 1); t.refresh = true end
      tasks[tid] = t
    end
    local deps = {}
    for _, d in ipairs(id_list(f[9])) do
      deps[d] = redis.call('HGET', jkey(d), 'result') or 'null'
    end
    emit_job(id, tid, 'waiting', 'active', worker_tail(wid) .. ',"attempt":' .. attempt)
    out[#out + 1] = cjson.encode({ id = id, task = tid, sub = f[3], agent = agent, input = f[4],
      prio = tonumber(f[5]), attempt = attempt, max_attempts = tonumber(f[7]),
      timeout = tonumber(f[8]), token = token, deadline = deadline, description = t.desc,
      metadata = t.meta, deps = deps, enq = tonumber(f[10]) })
  end
end
zflush()
for tid, t in pairs(tasks) do if t.refresh then refresh_task(tid) end end
for agent, _ in pairs(touched) do
  if redis.call('ZCARD', P .. 'q:' .. agent) > 0 then wake(agent) end
end
if #out > 0 then redis.call('HINCRBY', KEYS[2], 'claimed', #out) end
return out
