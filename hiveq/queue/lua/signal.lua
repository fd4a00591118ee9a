--[[ signal: a person or another system sends a named signal (a JSON payload) to a job. A job
suspended in a wait for that name receives it at once: it is stored as the wait's step and the
job goes back to its queue. Otherwise the signal is kept (oldest first) until a wait of that
name takes it; each wait receives exactly one signal.

KEYS  1 suspended   a job whose wait this signal ends leaves it
      2 events      the events below
      3 quarantine* ... into quarantine instead of waiting when its queue key holds a foreign type
      4 blocked*    ... with its blocked dependents leaving it ...
      5 cancelled*  ... cancelled (cascade)
      6 finished*   touched by refresh_task only if the task was terminal (not in practice)
      (*: checked only when the signal ends a wait, before the first write)
ARGV  3 job id  4 signal name  5 payload JSON  6 who sent it  7 most signals a job keeps
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       the job's record (state, `wait`), read with a plain HMGET before the first write
  job:<id>:signals the kept signals ({"name", "by", "ts", "data"} JSON entries), LLEN read
                 before the first write (a foreign type fails cleanly)
  job:<id>:steps the ended wait's step, written with try (foreign: not stored, anomaly; the job
                 then waits again and finds no signal: send it again)
  job:<id>:log   custody rows (try: a foreign log keeps the event in the stream only)
  q:<agent>      a resumed job's queue: TYPE first, a foreign one quarantines it
  wake:<agent>   marked for a resumed job (try: a foreign one is reported, not woken)
  task:<id>      counters and status on quarantine, each first command with try (foreign: not
                 updated, anomaly)
Returns {code, delivered 1|0, signals kept, why}: OK; NOT_FOUND; WRONG_STATE with why
"finished" (nothing will ever wait for it) or "full" (ARGV 7 signals are kept already).
Events: signal (reason: name, sender and whether it woke the job; data {name, delivered}), also
in the custody log; job suspended -> waiting | quarantined (foreign queue key) when it woke it,
with that job's blocked dependents -> cancelled and task status changes; a suspended parent
whose children have all finished -> waiting.
]]
local id, name, data, who, most = ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local f = redis.call('HMGET', jkey(id), 'state', 'task', 'wait')
if not f[1] then return { NOT_FOUND, 0, 0, '' } end
local kept = redis.call('LLEN', sigkey(id))
if TERMINAL[f[1]] then return { WRONG_STATE, 0, kept, 'finished' } end
local entry = '{"name":' .. J(name) .. ',"by":' .. J(who) .. ',"ts":' .. NOW_TEXT .. ',"data":' .. data .. '}'
local wait = (f[1] == 'suspended' and f[3]) and cjson.decode(f[3]) or nil
local delivered = wait and wait.kind == 'signal' and wait.name == name
if delivered then
  check_later_all()
elseif kept >= most then
  return { WRONG_STATE, 0, kept, 'full' }
else
  kept = redis.call('RPUSH', sigkey(id), entry)
end
emit_custody({ type = 'signal', job = id, task = f[2],
  reason = 'signal ' .. name .. ' from ' .. who .. (delivered and ': the job resumes' or
    ': kept until the job waits for it'),
  data = { name = name, delivered = delivered and true or false } })
if delivered then
  resume(id, wait, entry, 'received signal ' .. name .. ' from ' .. who)
  resume_parents() -- a resume into a foreign-typed queue key quarantines the job
end
return { OK, delivered and 1 or 0, kept, '' }
