--[[ expire_finished: delete tasks that finished longer ago than the retention, with their jobs,
results, custody logs, tracebacks, stored steps, kept signals and output. Tasks holding dead
letters never enter `finished` until handled.

KEYS  1 finished    expired tasks leave it
      2 tasks*      ... and the task index
      3 jobs*       their jobs leave the job index ...
      4 succeeded*  ... and their place (a finished task's jobs are succeeded ...
      5 cancelled*  ... or cancelled)
      6 events*     an anomaly when a record key holds a foreign type
      (*: checked only when a task has expired, before the first write: an idle call checks
      finished)
      7 meta        read: `archive` says an archive is attached (archive_lease.lua)
ARGV  3 retention ms (no archive)  4 max tasks per call  5 archived tail ms (with an archive)
With an archive attached Redis keeps only a tail: a task goes once it finished longer than the
archived tail ago AND its `archived` mark (mark_archived.lua) is later than its finish, i.e. the
archive holds its final state; a task not archived yet stays, however old (the archive catches
up, then it goes). Up to 4 x max tasks of the oldest candidates are looked at per call.
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  task:<id>      with an archive, its `archived` mark read with try (foreign: not expired here);
                 read with try (foreign: the task only leaves `finished`, its keys are left for
                 an operator, anomaly), then deleted
  job:<id>, job:<id>:log, job:<id>:tracebacks, job:<id>:steps, job:<id>:signals,
  job:<id>:output  deleted (DEL works on any type)
  idem:<key>     deleted only when it still names this task (GET with try: a foreign value is
                 not ours to delete)
Returns the number of tasks deleted.
Events: none for the deletion (it is the end of the record); anomaly (a foreign task record).
]]
local limit = tonumber(ARGV[4])
local tids
if redis.call('HEXISTS', K.meta, 'archive') == 1 then
  local rows = redis.call('ZRANGEBYSCORE', K.finished, '-inf', NOW - tonumber(ARGV[5]), 'WITHSCORES',
    'LIMIT', 0, 4 * limit)
  tids = {}
  for i = 1, #rows, 2 do
    local mark = try('HGET', tkey(rows[i]), 'archived')
    mark = mark ~= FOREIGN and tonumber(mark or '') or nil
    if mark and mark > tonumber(rows[i + 1]) then
      tids[#tids + 1] = rows[i]
      if #tids >= limit then break end
    end
  end
else
  tids = redis.call('ZRANGEBYSCORE', K.finished, '-inf', NOW - tonumber(ARGV[3]), 'LIMIT', 0, limit)
end
if #tids > 0 then check_later_all() end
local deleted = 0
for _, tid in ipairs(tids) do
  redis.call('ZREM', K.finished, tid)
  local t = try('HMGET', tkey(tid), 'jobs', 'idem')
  if t == FOREIGN then
    report_foreign(tkey(tid), 'hash', 'the task left `finished`; its keys were not deleted', nil, tid)
  else
    for _, id in ipairs(id_list(t[1])) do
      redis.call('DEL', jkey(id), lkey(id), tbkey(id), stkey(id), sigkey(id), outkey(id))
      redis.call('ZREM', K.jobs, id)
      redis.call('ZREM', K.succeeded, id)
      redis.call('ZREM', K.cancelled, id)
    end
    if t[2] and t[2] ~= '' and try('GET', ikey(t[2])) == tid then redis.call('DEL', ikey(t[2])) end
    redis.call('DEL', tkey(tid))
    redis.call('ZREM', K.tasks, tid)
    deleted = deleted + 1
  end
end
return deleted
