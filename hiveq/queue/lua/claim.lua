--[[ claim: lease up to N waiting jobs to one worker, strictly by priority across its agents,
FIFO within a priority; a job whose limit keys are at a limit is passed over (docs/limits.md).

KEYS  1 leases      each leased job, score = lease deadline
      2 stats       counter `claimed`
      3 quarantine* a queue member whose job record is missing or foreign-typed goes here,
                    unless hiveq enqueued it (in `jobs`: its record was deleted or evicted)
      4 jobs*       read (ZSCORE) for a head with no record: an indexed one is left in its queue
                    for the conservation watch (mark_vanished); the others are indexed (NX)
      5 finished*   touched by refresh_task for a task whose record says it is or would be
                    finished (never in a consistent state)
      6 events      the events below
      7 limits*     limit rules, read (HMGET) for a job with limit keys (checked when one is seen)
      (*: checked only when the heads read before the first write show the call writes it)
ARGV  3 worker id  4 lease token  5 max jobs  6 lease ms
      7 agents' default limit keys: JSON {agent: "key key"} or ''
      8… agent names served
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  q:<agent>      read (ZRANGE, one head more than wanted: whether any remain) for every agent
                 before the first write, so a foreign type fails the call cleanly; the later ZREM
                 on the same keys cannot fail
  job:<id>       each head's record, read with try: a foreign type quarantines the member
                 (record left as is); a dependency's `result` (try: foreign -> null, anomaly)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  task:<id>      read with try (foreign: no description/metadata, status not updated, anomaly)
  wake:<agent>   re-armed when jobs remain (try: a foreign one is reported, not woken)
  worker:<id>    the claiming worker's host/pid/client, read with try (foreign: id only)
  lim:c:<key>    per limit key of a job: counters (cool, tw/tu, bt/bu) read, reservations and
                 `thr` (throttled total) written, all with try (foreign: the job is held, anomaly);
                 a rate rule's ring of last starts (ri, rn, r<i>): one slot read per start, the
                 starts written (a changed N rebuilds the ring once)
  lim:h:<key>    its holders: ZCARD read (at the limit: each checked in `leases`, and one no
                 longer leased is cut), the claimed job added (try, as above)
  lim:w:<key>    a job held for a slot or budget adds its agent (try): woken by release_limits
  lim:k:<pattern> the concrete keys seen under a pattern rule: each key taken or held added (try)
Returns an array of JSON objects, one per leased job:
  {id, task, sub, agent, input, prio, attempt, max_attempts, timeout, token, deadline,
   description, metadata, deps: {job_id: result_json}, enq, fail?}
  (`fail`: a budget with on_exhausted=fail is spent: the worker dead-letters it with that reason)
and, last, the string "retry:<ms>" when a job was held by a window that refills (a rate, the
tokens of a minute, a 429 cool-down): the worker waits at most that long for a wake-up.
Held jobs stay where they are (their queue position is kept); the scan looks past at most
SCAN_MAX heads.
A queue member with no job record is never handed out or dropped: one hiveq enqueued (in the
`jobs` index) stays where it is for the watch to mark vanished and rebuild; any other is
quarantined with the reason (written by a foreign client).
Events: job waiting -> active (worker, host, pid, client, attempt, agent: so a deleted record's
agent can be rebuilt from its custody log) | waiting -> quarantined;
task queued -> running; anomaly (a member whose record is in another state: removed from the
queue, record left as is; a foreign derived key).
]]
local wid, token = ARGV[3], ARGV[4]
local want, lease_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local deadline = NOW + lease_ms
local defaults = ARGV[7] ~= '' and cjson.decode(ARGV[7]) or {}
local SCAN_MAX = 1000 -- heads a call looks at when jobs ahead are held by their limits
local TW = NOW - NOW % 60000 -- this minute's token window

-- Limits --------------------------------------------------------------------------------------
local rules = {} -- concrete key -> its rule (a table) or false: the exact key, else the longest pattern
local function rule_for(k)
  local r = rules[k]
  if r ~= nil then return r end
  local names = { k }
  for i = #k - 1, 0, -1 do names[#names + 1] = string.sub(k, 1, i) .. '*' end
  local got = redis.call('HMGET', K.limits, unpack(names))
  r = false
  for i = 1, #names do
    if got[i] then r = cjson.decode(got[i]); r.name = names[i]; break end
  end
  rules[k] = r
  return r
end
local L -- concrete key -> this pass's numbers (reset when the scan widens)
local function lstate(k)
  local s = L[k]
  if s then return s end
  s = { rule = rule_for(k), inuse = 0, starts = 0 }
  L[k] = s
  local c = try('HMGET', limkey(k), 'cool', 'tw', 'tu', 'bt', 'bu')
  if c == FOREIGN then s.foreign = limkey(k); return s end
  s.cool = tonumber(c[1]) or 0
  s.fresh = tonumber(c[2]) == TW
  s.tu = s.fresh and (tonumber(c[3]) or 0) or 0
  s.bt, s.bu = tonumber(c[4]) or 0, tonumber(c[5]) or 0
  local r = s.rule
  if r and r.concurrency then
    local n = try('ZCARD', lholdkey(k))
    if n == FOREIGN then
      s.foreign = lholdkey(k)
    elseif n >= r.concurrency then
      -- At the limit: count only holders still leased (one whose lease ended without a hiveq
      -- script, e.g. a vanished job, would hold its slot for ever); the others are cut below.
      s.inuse, s.stale = 0, {}
      for _, h in ipairs(redis.call('ZRANGE', lholdkey(k), 0, -1)) do
        if redis.call('ZSCORE', K.leases, h) then s.inuse = s.inuse + 1 else s.stale[#s.stale + 1] = h end
      end
    else
      s.inuse = n
    end
  end
  if r and r.rate_n then
    -- The key's last starts, a ring of rate_n slots in its counters hash (`ri` starts recorded,
    -- `rn` ring size, `r<i>` start ms): the next start's slot holds the rate_n-th latest start,
    -- so one HGET decides each start exactly as a log of the window would (docs/limits.md).
    local g = try('HMGET', limkey(k), 'ri', 'rn')
    if g == FOREIGN then
      s.foreign = limkey(k)
    else
      s.ri, s.rn = tonumber(g[1]) or 0, tonumber(g[2])
      if s.rn and s.rn ~= r.rate_n then
        -- The rule's N changed: rebuild the ring in order from its in-window starts (once).
        local names = {}
        for i = 0, s.rn - 1 do names[#names + 1] = 'r' .. i end
        local kept = {}
        for _, v in ipairs(redis.call('HMGET', limkey(k), unpack(names))) do
          v = tonumber(v)
          if v and v > NOW - r.rate_ms then kept[#kept + 1] = v end
        end
        table.sort(kept)
        while #kept > r.rate_n do table.remove(kept, 1) end
        s.rebuild, s.old_rn, s.ri = kept, s.rn, #kept
      end
    end
  end
  return s
end
-- The rate_n-th latest start before this call's j-th one under key k (0-based), or nil.
local function ring_slot(k, s, j)
  local n = s.rule.rate_n
  if j >= n then return NOW end -- this call's own starts fill the ring
  local i = (s.ri + j) % n
  if s.rebuild then return s.rebuild[i + 1] end
  local v = try('HGET', limkey(k), 'r' .. i)
  return v ~= FOREIGN and tonumber(v) or nil
end
-- nil when the job may start under all its keys (then its claim is counted), else why not:
-- {key, kind, refill ms or nil, fail?}
local function limit_check(keys, est)
  for _, k in ipairs(keys) do
    local s = lstate(k)
    local r = s.rule
    if s.foreign then return { k, 'foreign' } end
    if s.cool > NOW then return { k, 'cooling', s.cool } end
    if r then
      if r.concurrency and s.inuse >= r.concurrency then return { k, 'concurrency' } end
      if r.rate_n then
        local last = ring_slot(k, s, s.starts)
        if last and last > NOW - r.rate_ms then return { k, 'rate', last + r.rate_ms } end
      end
      if r.tokens and ((est > 0 and s.tu > 0 and s.tu + est > r.tokens) or (est == 0 and s.tu >= r.tokens)) then
        return { k, 'tokens', TW + 60000 }
      end
      if (r.budget_tokens and s.bt + est > r.budget_tokens) or (r.budget_usd and s.bu >= r.budget_usd) then
        return { k, 'budget', nil, r.on_exhausted == 'fail' }
      end
    end
  end
  for _, k in ipairs(keys) do
    local s = L[k]
    s.inuse = s.inuse + 1
    s.starts = s.starts + 1
    s.tu, s.bt = s.tu + est, s.bt + est
  end
  return nil
end
-- A job's limit keys: its own (record field `limits`) and its agent's defaults, without repeats.
local function keys_of(text, agent)
  local d = defaults[agent]
  if (not text or text == '') and not d then return nil end
  local keys, seen = {}, {}
  for _, src in ipairs({ text or '', d or '' }) do
    for k in string.gmatch(src, '%S+') do
      if not seen[k] then seen[k] = true; keys[#keys + 1] = k end
    end
  end
  return keys
end

-- The scan: heads in priority order; held ones are passed over, the rest taken up to `want`. When
-- too few were taken because of holds and more heads exist, it reads a wider window and starts
-- again (nothing is written before it ends).
local recs, indexed, jkeys = {}, {}, {} -- by job id: its record fields, jobs-index score, limit keys
local heads, fetched, scanned, chosen, holds, fails
local window = want
local NO_TASK = { desc = '', meta = '{}' }
local tasks = {}
while true do
  heads, fetched, scanned, chosen, holds, fails, L = {}, {}, {}, {}, {}, {}, {}
  for i = 8, #ARGV do
    local agent = ARGV[i]
    if fetched[agent] == nil then -- an agent named twice is read once
      local r = redis.call('ZRANGE', qkey(agent), 0, window, 'WITHSCORES')
      fetched[agent] = #r / 2
      scanned[agent] = 0
      for k = 1, #r, 2 do heads[#heads + 1] = { tonumber(r[k + 1]), r[k], agent } end
    end
  end
  table.sort(heads, function(a, b) return a[1] < b[1] end)
  local more = false -- some agent may have heads beyond the window
  for agent, n in pairs(fetched) do if n > window then more = true end end
  for n = 1, #heads do
    if #chosen == want then break end
    local id, agent = heads[n][2], heads[n][3]
    scanned[agent] = scanned[agent] + 1
    local f = recs[id]
    if f == nil then
      f = try('HMGET', jkey(id), 'state', 'task', 'sub', 'input', 'prio', 'attempts',
        'max_attempts', 'timeout', 'deps', 'created', 'limits', 'est')
      recs[id] = f
      if f ~= FOREIGN and f[1] == 'waiting' then jkeys[id] = keys_of(f[11], agent) or false end
    end
    local hold = nil
    if f ~= FOREIGN and f[1] == 'waiting' and jkeys[id] then
      check_later('limits')
      hold = limit_check(jkeys[id], tonumber(f[12]) or 0)
      if hold and hold[4] then fails[id] = hold; hold = nil end
    end
    if hold then
      holds[#holds + 1] = { id, agent, hold }
    else
      chosen[#chosen + 1] = n
    end
  end
  if #chosen == want or #holds == 0 or not more or window >= SCAN_MAX then break end
  window = math.min(SCAN_MAX, window * 4 + 16)
end

-- Read the chosen heads' tasks before writing anything: they decide which of the keys marked *
-- this call writes, and those are checked first.
for _, n in ipairs(chosen) do
  local id = heads[n][2]
  local f = recs[id]
  if f ~= FOREIGN and not f[1] then
    check_later('jobs')
    indexed[id] = redis.call('ZSCORE', K.jobs, id)
  end
  if f == FOREIGN or (not f[1] and not indexed[id]) then
    check_later('quarantine')
    check_later('jobs')
  elseif f[1] == 'waiting' and tasks[f[2]] == nil then
    local tid = f[2]
    local tf = try('HMGET', tkey(tid), 'description', 'metadata', unpack(TASK_FIELDS))
    if tf == FOREIGN then
      tasks[tid] = NO_TASK
    else
      local t = { desc = tf[1] or '', meta = tf[2] or '{}' }
      if tf[9] ~= '1' then -- TASK_FIELDS[7], `started`: the task starts now
        tf[9] = '1'
        t.refresh = { unpack(tf, 3, 10) }
        local settled = (tonumber(tf[5]) or 0) + (tonumber(tf[6]) or 0) + (tonumber(tf[7]) or 0)
        if TASK_TERMINAL[tf[3]] or settled >= (tonumber(tf[4]) or 0) then
          check_later('finished') -- its counters say it is or would be finished: inconsistent
        end
      end
      tasks[tid] = t
    end
  end
end

local out = {}
local taken = {}
local admitted = {} -- limit key -> {ids, starts, est}
for _, n in ipairs(chosen) do
  local id, agent = heads[n][2], heads[n][3]
  if not indexed[id] then
    zlater('ZREM', qkey(agent), id)
    taken[agent] = (taken[agent] or 0) + 1
  end
  local jk = jkey(id)
  local f = recs[id]
  if indexed[id] then
    -- hiveq's own job whose record is gone: left in its queue for the watch (mark_vanished)
  elseif f == FOREIGN then
    redis.call('ZADD', K.quarantine, NOW, id)
    redis.call('ZADD', K.jobs, 'NX', NOW, id)
    emit_custody(by_worker({ type = 'job', job = id, from = 'waiting', to = 'quarantined',
      reason = 'found in queue ' .. qkey(agent) .. ' but its record key ' .. jk .. ' holds a ' ..
      type_of(jk) .. ', not a hash (written by a foreign client?); record left as is' }, wid))
  elseif not f[1] then
    redis.call('HSET', jk, 'id', id, 'state', 'quarantined', 'agent', agent, 'task', '',
      'reason', 'found in queue ' .. qkey(agent) .. ' with no job record (written by a foreign client?)')
    redis.call('ZADD', K.quarantine, NOW, id)
    redis.call('ZADD', K.jobs, 'NX', NOW, id)
    emit_custody(by_worker({ type = 'job', job = id, from = 'waiting', to = 'quarantined',
      reason = 'no job record' }, wid))
  elseif f[1] ~= 'waiting' then
    emit_custody(by_worker({ type = 'anomaly', job = id, task = f[2], from = f[1], to = f[1],
      reason = 'job in waiting queue has state ' .. f[1] .. '; removed from the queue, record left as is' },
      wid))
  else
    local tid = f[2]
    local attempt = (tonumber(f[6]) or 0) + 1
    redis.call('HSET', jk, 'state', 'active', 'worker', wid, 'token', token,
      'deadline', deadline, 'attempts', attempt, 'started', NOW)
    local keys, failing = jkeys[id], fails[id]
    if keys and not failing then
      local est = tonumber(f[12]) or 0
      redis.call('HSET', jk, 'lkeys', table.concat(keys, ' '), 'lres', est, 'ltw', TW)
      for _, k in ipairs(keys) do
        local a = admitted[k]
        if not a then a = { ids = {}, n = 0, est = 0 }; admitted[k] = a end
        a.ids[#a.ids + 1] = NOW
        a.ids[#a.ids + 1] = id
        a.n = a.n + 1
        a.est = a.est + est
      end
    end
    zlater('ZADD', K.leases, deadline, id)
    local t = tasks[tid]
    if t == NO_TASK then
      report_foreign(tkey(tid), 'hash', 'its jobs are handed out without description or metadata',
        nil, tid)
    elseif t.refresh and not t.started then
      redis.call('HSET', tkey(tid), 'started', 1)
      t.started = true
    end
    local deps = {}
    for _, d in ipairs(id_list(f[9])) do
      local r = try('HGET', jkey(d), 'result')
      if r == FOREIGN then
        report_foreign(jkey(d), 'hash', 'its result was handed to ' .. id .. ' as null', d, tid)
        r = false
      end
      deps[d] = r or 'null'
    end
    emit_job(id, tid, 'waiting', 'active', worker_tail(wid) .. ',"attempt":' .. attempt ..
      ',"agent":' .. J(agent))
    local job = { id = id, task = tid, sub = f[3], agent = agent, input = f[4],
      prio = tonumber(f[5]), attempt = attempt, max_attempts = tonumber(f[7]),
      timeout = tonumber(f[8]), token = token, deadline = deadline, description = t.desc,
      metadata = t.meta, deps = deps, enq = tonumber(f[10]) }
    if failing then
      local s = L[failing[1]]
      job.fail = 'budget of limit ' .. s.rule.name .. ' for ' .. failing[1] .. ' is spent (' ..
        s.bt .. ' tokens, ' .. s.bu .. ' USD used) and its rule says on_exhausted=fail'
    end
    out[#out + 1] = cjson.encode(job)
  end
end
zflush()
-- What the admitted jobs took under their keys, one write per key and kind.
for k, a in pairs(admitted) do
  local s = L[k]
  if try('ZADD', lholdkey(k), unpack(a.ids)) == FOREIGN then
    report_foreign(lholdkey(k), 'zset', 'its holders are not counted')
  end
  local r = s.rule
  if r and r.rate_n then
    local n, set = r.rate_n, {}
    if s.rebuild then
      for i = 0, s.old_rn - 1 do set[#set + 1] = 'r' .. i; set[#set + 1] = '' end
      for i, v in ipairs(s.rebuild) do set[2 * i] = string.format('%d', v) end
    end
    for j = 0, math.min(a.n, n) - 1 do
      set[#set + 1] = 'r' .. ((s.ri + j) % n)
      set[#set + 1] = NOW_TEXT
    end
    try('HSET', limkey(k), 'ri', s.ri + a.n, 'rn', n, unpack(set))
    if s.rebuild and s.old_rn > n then
      local gone = {}
      for i = n, s.old_rn - 1 do gone[#gone + 1] = 'r' .. i end
      try('HDEL', limkey(k), unpack(gone))
    end
  end
  if a.est > 0 then
    if s.fresh then
      try('HINCRBY', limkey(k), 'tu', a.est)
    else
      try('HSET', limkey(k), 'tw', TW, 'tu', a.est)
    end
    try('HINCRBY', limkey(k), 'bt', a.est)
  end
end
-- What held the others: counted per key; a slot or budget wait is woken by release_limits, a
-- window that refills by the worker's own timed wait (the "retry:" hint).
local retry_at = nil
local held_by = {}
for _, h in ipairs(holds) do
  local k, kind, at = h[3][1], h[3][2], h[3][3]
  held_by[k] = (held_by[k] or 0) + 1
  if kind == 'foreign' then
    report_foreign(L[k].foreign, 'hash or zset', 'jobs under limit key ' .. k .. ' are held')
  elseif at then
    if not retry_at or at < retry_at then retry_at = at end
  else
    try('SADD', lwaitkey(k), h[2])
  end
end
for k, n in pairs(held_by) do try('HINCRBY', limkey(k), 'thr', n) end
-- The concrete keys under each pattern rule, for GET /limits and the metrics (no SCAN needed).
local seen_under = {}
for k, s in pairs(L) do
  local r = s.rule
  if r and r.name ~= k and (admitted[k] or held_by[k]) then
    local ks = seen_under[r.name]
    if not ks then ks = {}; seen_under[r.name] = ks end
    ks[#ks + 1] = k
  end
end
for name, ks in pairs(seen_under) do try('SADD', lpatkey(name), unpack(ks)) end
for k, s in pairs(L) do
  if s.stale and #s.stale > 0 then try('ZREM', lholdkey(k), unpack(s.stale)) end
end
for tid, t in pairs(tasks) do if t.refresh then refresh_task(tid, t.refresh) end end
for agent, n in pairs(taken) do
  if fetched[agent] > scanned[agent] then wake(agent) end -- jobs remain unlooked-at: pass it on
end
if #out > 0 then redis.call('HINCRBY', K.stats, 'claimed', #out) end
if retry_at then out[#out + 1] = 'retry:' .. string.format('%d', math.max(1, retry_at - NOW)) end
return out
