--[[ record_loss: a process that knew the namespace's epoch finds another one, or none: Redis
lost the namespace's data (a restart without persistence, FLUSHALL, a failover to a replica that
lacked the writes). Records the loss once per lost epoch (the first reporter), adds each
reporter's jobs that are gone, re-creates the owner record when it went with the data (so the
loss is remembered: `lost_at`, `previous_epoch`, `loss`), and announces it.

KEYS  1 meta        read; re-created when missing (owner, a new epoch); loss fields written
      2 events      the event below
ARGV  3 the epoch the caller knew  4 a new epoch id (used when meta is gone)  5 app  6 env
      7 protocol  8 who (worker id or client name)  9 cause (the caller's reading of INFO)
      10 when the data went, ms (a restart: the server's start; 0: now)
      11 losses the caller has seen (the counter survives a loss that took it)
      12 JSON list of job ids the caller held that are gone
Derived keys: none.
Returns {lost (1|0), the epoch now, losses recorded, first (1: this call recorded the loss)}:
lost 0 when meta holds the caller's epoch (nothing was written).
Events: data_loss (worker, reason = cause, data = {lost_epoch, epoch, at, jobs}), one per call
that finds a loss.
]]
local known = ARGV[3]
local m = redis.call('HMGET', K.meta, 'epoch', 'app', 'data_losses', 'loss')
if m[1] == known then return { 0, known, tonumber(m[3]) or 0, 0 } end
local jobs = cjson.decode(ARGV[12])
local at = tonumber(ARGV[10])
if at == 0 then at = NOW end
local epoch = m[1]
if not m[2] then
  epoch = ARGV[4]
  redis.call('HSET', K.meta, 'app', ARGV[5], 'env', ARGV[6], 'protocol', ARGV[7], 'created', NOW,
    'created_by', ARGV[8], 'epoch', epoch)
elseif not epoch then
  epoch = ARGV[4]
  redis.call('HSET', K.meta, 'epoch', epoch)
end
local loss = m[4] and cjson.decode(m[4]) or nil
local count = tonumber(m[3]) or 0
local first = 0
if type(loss) ~= 'table' or loss.lost_epoch ~= known then
  first = 1
  count = math.max(count, tonumber(ARGV[11]) or 0) + 1
  loss = { lost_epoch = known, epoch = epoch, at = at, detected = NOW, cause = ARGV[9],
    reported_by = {}, jobs = {} }
  redis.call('HSET', K.meta, 'data_losses', count, 'lost_at', at, 'previous_epoch', known)
end
local by, held = loss.reported_by, {}
if type(by) ~= 'table' then by = {} end
local seen_by = false
for _, w in ipairs(by) do if w == ARGV[8] then seen_by = true end end
if not seen_by and #by < 1000 then by[#by + 1] = ARGV[8] end
loss.reported_by = by
if type(loss.jobs) ~= 'table' then loss.jobs = {} end
for _, j in ipairs(loss.jobs) do held[j] = true end
for _, j in ipairs(jobs) do
  if not held[j] and #loss.jobs < 10000 then
    held[j] = true
    loss.jobs[#loss.jobs + 1] = j
  end
end
redis.call('HSET', K.meta, 'loss', cjson.encode(loss))
emit({ type = 'data_loss', worker = ARGV[8], reason = ARGV[9],
  data = { lost_epoch = known, epoch = epoch, at = at, jobs = jobs } })
return { 1, epoch, count, first }
