--[[ suspend: a durable agent waits for its children or for a signal without holding a worker
slot. When there is nothing to wait for (every child finished, or a signal of that name was
kept), what the wait receives is stored as its step at once and the job runs on; otherwise the
job leaves its lease for `suspended` and is resumed, on any worker, by the script that ends the
wait (complete, fail, quarantine, cancel, reap_expired for children; signal; promote_due for a
timeout), which stores what the wait receives under the same step key.

KEYS  1 leases      a suspended job leaves it (its lease ends)
      2 suspended   ... and enters it, score = the signal wait's deadline ms, or +inf
      3 events      the events below
ARGV  3 worker id  4 job id  5 lease token  6 kind: "children" | "signal"  7 the wait's step key
      8 children: JSON list of job ids; signal: its name  9 signal: timeout ms, '' for none (the
      deadline is Redis time + this)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       the job's record, read with a plain HMGET before the first write: lease check,
                 `children`; then `wait` = JSON {kind, step, ids | name, deadline, since} and
                 `attempts` - 1 (a suspension hands the job back: it is not a delivery)
  job:<child>    each child's state, read with try (foreign: not finished)
  job:<id>:signals kept signals, each {"name", "by", "ts", "data"}: read with a plain LRANGE
                 before the first write; the first of the name is taken
  job:<id>:steps the wait's step when there is nothing to wait for (try: foreign, not stored,
                 anomaly)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  worker:<id>    the worker's host/pid/client, read with try (foreign: id only)
  lim:h|c|w:<key> for each of the job's limit keys (release_limits in _lib.lua): its slot
                 (lim:h:<key>), token reservation (lim:c:<key>), agents waiting (lim:w:<key>:
                 woken, wake:<agent>), each with try (foreign: skipped, anomaly)
Returns {code, ready, outcome}: OK, 1, outcome JSON (nothing to wait for: {"children": {job id:
state}} or the kept signal; the job stays active); OK, 0, '' (suspended); NOT_FOUND; STALE;
WRONG_STATE, 0, the job id that this job did not spawn.
Events: job active -> suspended (reason: what it waits for; worker); signal (a kept signal taken).
]]
local wid, id, token, kind, key = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local f = redis.call('HMGET', jkey(id), 'state', 'token', 'task', 'children')
if not f[1] then return { NOT_FOUND, 0, '' } end
if f[1] ~= 'active' or f[2] ~= token then return { STALE, 0, '' } end
local tid = f[3]
local wait = { kind = kind, step = key, since = NOW }
local why
if kind == 'children' then
  local mine = {}
  for _, c in ipairs(id_list(f[4])) do mine[c] = true end
  wait.ids = cjson.decode(ARGV[8])
  for _, c in ipairs(wait.ids) do
    if not mine[c] then return { WRONG_STATE, 0, c } end
  end
  local outcome = children_done(wait)
  if outcome then
    save_step(id, key, outcome)
    return { OK, 1, outcome }
  end
  why = 'waiting for its children ' .. table.concat(wait.ids, ', ')
else
  local name = ARGV[8]
  local head = '{"name":' .. J(name) .. ','
  for _, entry in ipairs(redis.call('LRANGE', sigkey(id), 0, -1)) do
    if string.sub(entry, 1, #head) == head then
      redis.call('LREM', sigkey(id), 1, entry)
      save_step(id, key, entry)
      emit_custody(by_worker({ type = 'signal', job = id, task = tid,
        reason = 'received signal ' .. name .. ', kept since it was sent', data = { name = name } }, wid))
      return { OK, 1, entry }
    end
  end
  wait.name = name
  why = 'waiting for signal ' .. name
  if ARGV[9] ~= '' then
    wait.deadline = NOW + tonumber(ARGV[9])
    why = why .. ' (times out in ' .. string.format('%.1f', (wait.deadline - NOW) / 1000) .. ' s)'
  end
end
redis.call('ZREM', K.leases, id)
release_limits(id) -- a suspended job holds no slot
redis.call('ZADD', K.suspended, wait.deadline or '+inf', id)
redis.call('HSET', jkey(id), 'state', 'suspended', 'wait', cjson.encode(wait))
redis.call('HDEL', jkey(id), 'token', 'deadline')
local attempt = redis.call('HINCRBY', jkey(id), 'attempts', -1) + 1
emit_custody(by_worker({ type = 'job', job = id, task = tid, from = 'active', to = 'suspended',
  attempt = attempt, reason = why }, wid))
return { OK, 0, '' }
