--[[ release: a worker hands leased jobs back at once (shutdown, or the agent raised
RateLimited after a provider's 429), to the head of their priority. The hand-back does not count
as a delivery. With a cool-down, the jobs' limit keys (or the one named) are paused for everyone.

FLAGS allow-oom: runs when Redis is full (it lands or hands back work already taken)
KEYS  1 leases      the released jobs leave it
      2 quarantine  a job whose queue key holds a foreign type goes here instead of waiting
      3 blocked     ... its blocked dependents leave it ...
      4 cancelled   ... and are cancelled (cascade)
      5 finished    ... and a task that so finishes without dead letters (not in practice:
                    the quarantined job counts as one)
      6 events      the events below
      7 suspended   a parent resumed when a released job is quarantined (foreign queue key) and
                    its other children have finished
ARGV  3 worker id  4 reason  5 cool-down ms (0: none)  6 limit key to cool ('': each job's own)
      7… pairs: job id, lease token
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       each job's record, read with try (foreign: NOT_FOUND) and written only after
                 that read; dependents' records read with try (foreign: skipped)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  q:<agent>      the job's queue: TYPE first, a foreign one quarantines the job
  wake:<agent>   marked for each job put back (try: a foreign one is reported, not woken)
  lim:c:<key>    with a cool-down: `cool` (paused until, ms) raised on the keys, with try
                 (foreign: not paused, anomaly)
  task:<id>      counters and status on quarantine, each first command with try (foreign: not
                 updated, anomaly)
  worker:<id>    the worker's host/pid/client, read with try (foreign: id only)
  job:<id>:steps such a resumed parent's wait step, written with try (foreign: not stored, anomaly)
  lim:h|c|w:<key> for each of the job's limit keys (release_limits in _lib.lua): its slot
                 (lim:h:<key>), token reservation (lim:c:<key>), agents waiting (lim:w:<key>:
                 woken, wake:<agent>), each with try (foreign: skipped, anomaly)
Returns one code per job: OK, NOT_FOUND or STALE.
Events: job active -> waiting (reason) | active -> quarantined (foreign queue key), with its
blocked dependents -> cancelled and task status changes; a suspended parent whose children have
all finished -> waiting | quarantined; anomaly (a foreign derived key).
]]
local wid, reason = ARGV[3], ARGV[4]
local cool_ms, cool_key = tonumber(ARGV[5]) or 0, ARGV[6]
local until_ms = NOW + cool_ms
-- Pause a limit key until `until_ms` (never shortening a longer pause).
local function cool(k)
  local c = try('HGET', limkey(k), 'cool')
  if c == FOREIGN then
    report_foreign(limkey(k), 'hash', 'the key was not paused')
  elseif (tonumber(c) or 0) < until_ms then
    redis.call('HSET', limkey(k), 'cool', until_ms)
  end
end
local out = {}
for i = 7, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = try('HMGET', jkey(id), 'state', 'token')
  if f == FOREIGN or not f[1] then
    out[#out + 1] = NOT_FOUND
  elseif f[1] ~= 'active' or f[2] ~= token then
    out[#out + 1] = STALE
  else
    redis.call('ZREM', K.leases, id)
    if cool_ms > 0 then
      if cool_key ~= '' then
        cool(cool_key)
      else
        local lk = redis.call('HGET', jkey(id), 'lkeys')
        for k in string.gmatch(lk or '', '%S+') do cool(k) end
      end
    end
    release_limits(id)
    redis.call('HINCRBY', jkey(id), 'attempts', -1)
    to_waiting(id, 'active', reason, by_worker({}, wid))
    out[#out + 1] = OK
  end
end
resume_parents() -- a job released into a foreign-typed queue key is quarantined: its parent may wait
return out
