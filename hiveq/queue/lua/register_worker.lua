--[[ register_worker: a worker announces itself (or re-announces after being reaped).

KEYS  1 workers  2 agents
ARGV  3 worker id  4 fields JSON {host, pid, client, client_id, agents (JSON text), version,
      concurrency}
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
emit({ type = 'worker', worker = wid, host = w.host, pid = w.pid, client = w.client,
  from = '', to = 'alive', data = { agents = cjson.decode(w.agents) } })
return { OK }
