--[[ register_worker: a worker announces itself (or re-announces after being reaped).

KEYS  1 workers  2 agents  3 agent_modules
ARGV  3 worker id  4 fields JSON {host, pid, client, client_id, agents (JSON text), version,
      concurrency, modules (optional: {agent: module that defines it}, for `hiveq why` hints)}
Returns {OK}. Events: worker -> alive.
]]
local wid = ARGV[3]
local w = cjson.decode(ARGV[4])
local wk = P .. 'worker:' .. wid
redis.call('HSET', wk, 'id', wid, 'host', w.host, 'pid', w.pid, 'client', w.client,
  'client_id', w.client_id, 'agents', w.agents, 'version', w.version,
  'concurrency', w.concurrency, 'started', NOW, 'last_hb', NOW, 'running', 0)
redis.call('ZADD', KEYS[1], NOW, wid)
for _, a in ipairs(cjson.decode(w.agents)) do redis.call('SADD', KEYS[2], a) end
if type(w.modules) == 'table' then
  for a, m in pairs(w.modules) do redis.call('HSET', KEYS[3], a, m) end
end
emit({ type = 'worker', worker = wid, host = w.host, pid = w.pid, client = w.client,
  from = '', to = 'alive', data = { agents = cjson.decode(w.agents) } })
return { OK }
