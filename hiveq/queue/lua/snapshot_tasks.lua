--[[ snapshot_tasks: read tasks and their jobs at one instant, for the archiver (it changes
nothing). One call instead of a command per record: the archiver reads every task a batch of
events names.

KEYS  1 tasks       each task's score (its enqueue sequence)
ARGV  3 with logs: 1 to add each job's custody log, 0 not  4… task ids
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  task:<id>, job:<id>, job:<id>:tracebacks, job:<id>:steps, job:<id>:log  read with try (a
  foreign type reads as empty: the archive keeps what it had)
Returns {now ms, then per task: {task hash as a flat list (empty: no such task), its `tasks`
score or '', then per job of its `jobs` list: {job hash, tracebacks, steps hash, log rows (with
logs)}}}.
Events: none.
]]
local with_logs = ARGV[3] == '1'
local function read(...)
  local r = try(...)
  if r == FOREIGN then return {} end
  return r
end
local out = { NOW }
for i = 4, #ARGV do
  local tid = ARGV[i]
  local t = read('HGETALL', tkey(tid))
  local entry = { t, redis.call('ZSCORE', K.tasks, tid) or '' }
  if #t > 0 then
    local jobs_text
    for k = 1, #t, 2 do if t[k] == 'jobs' then jobs_text = t[k + 1] end end
    for _, jid in ipairs(id_list(jobs_text)) do
      local j = { read('HGETALL', jkey(jid)), read('LRANGE', tbkey(jid), 0, -1), read('HGETALL', stkey(jid)) }
      if with_logs then j[4] = read('LRANGE', lkey(jid), 0, -1) end
      entry[#entry + 1] = j
    end
  end
  out[#out + 1] = entry
end
return out
