--[[ register_worker: a worker announces itself (or re-announces after being reaped).

FLAGS allow-oom: runs when Redis is full (it lands or hands back work already taken)
KEYS  1 workers        the worker's score = now
      2 agents         the agents it serves are added
      3 agent_modules  agent -> the module the worker loaded it from (when `modules` is given)
      4 events         the worker event
      5 clock          ticked (tick_clock in _lib.lua): a worker's first claim always follows a
                       tick, so a freeze right after it is seen as a gap
ARGV  3 worker id  4 fields JSON {host, pid, client, client_id, agents (JSON text), version,
      concurrency, modules (optional: {agent: module that defines it}, for `hiveq why` hints)}
      5 gap ms (see heartbeat.lua)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  worker:<id>    type-checked (hash) before the first write, then written whole
Returns {OK}.
Events: worker -> alive.
]]
local wid = ARGV[3]
local w = cjson.decode(ARGV[4])
local wk = wkey(wid)
check_type(wk, 'hash')
tick_clock(tonumber(ARGV[5]))
redis.call('HSET', wk, 'id', wid, 'host', w.host, 'pid', w.pid, 'client', w.client,
  'client_id', w.client_id, 'agents', w.agents, 'version', w.version,
  'concurrency', w.concurrency, 'started', NOW, 'last_hb', NOW, 'running', 0)
redis.call('ZADD', K.workers, NOW, wid)
local agents = cjson.decode(w.agents)
if #agents > 0 then redis.call('SADD', K.agents, unpack(agents)) end
if type(w.modules) == 'table' then
  for a, m in pairs(w.modules) do redis.call('HSET', K.agent_modules, a, m) end
end
emit({ type = 'worker', worker = wid, host = w.host, pid = w.pid, client = w.client,
  from = '', to = 'alive', data = { agents = agents } })
return { OK }
